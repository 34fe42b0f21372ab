/*
 * cost.c - MACs, FLOPs and bytes per node, model statistics, liveness and
 * weight hashing (layer 2).
 *
 * Counting rules (docs/internals/ir.md has the table):
 *   MACs   multiply-accumulates of Conv, ConvTranspose, Gemm, MatMul,
 *          Einsum and the gate matrices of LSTM/GRU/RNN - what papers and
 *          torchvision's "GFLOPS" column call FLOPs;
 *   FLOPs  2 per MAC, plus bias adds, plus FLOPS_PER_ELEM (ops.def) per
 *          output element of elementwise and normalisation ops, plus the
 *          window or reduction work of pooling, reductions and softmax;
 *   bytes  every input and output tensor read or written once (weights
 *          included in bytes_in, and counted again in weight_bytes);
 *          "view" ops (Reshape, Squeeze, ...) move nothing.
 * A symbolic or unknown dim counts as 1 and clears `exact`: the totals are
 * then lower bounds, never silently wrong.
 * Control flow: an If costs its more expensive branch; a Loop costs its body
 * times the trip count when known (once, and inexact, otherwise).
 */
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "ir_impl.h"

static const uint8_t fpe_table[] = {
#define IR_OP(id, nm, kind, infer, fpe) fpe,
#include "ops.def"
#undef IR_OP
};
_Static_assert(sizeof fpe_table == IR_OP_COUNT, "flops-per-element table size");

/* numel with symbolic dims counted as 1; *exact cleared if any */
static uint64_t numel_lb(const ir_shape *s, bool *exact)
{
    if (s->rank < 0) {
        *exact = false;
        return 0;
    }
    uint64_t p = 1;
    for (int i = 0; i < s->rank; i++) {
        uint64_t d = 1;
        if (ir_dim_is_lit(s->d[i]))
            d = (uint64_t)s->d[i].c;
        else
            *exact = false;
        if (__builtin_mul_overflow(p, d, &p)) {
            *exact = false;
            return UINT64_MAX;
        }
    }
    return p;
}

static uint64_t dim_lb(ir_dim d, bool *exact)
{
    if (ir_dim_is_lit(d))
        return (uint64_t)d.c;
    *exact = false;
    return 1;
}

static uint64_t tensor_bytes(const ir_tensor *t, bool *exact)
{
    uint64_t n = numel_lb(&t->shape, exact), b;
    if (!ir_dtype_nbytes(t->dtype, n, &b)) {
        *exact = false;
        return UINT64_MAX / 4;
    }
    return b;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static void add_cost(ir_cost *acc, const ir_cost *c)
{
    acc->macs = sat_add(acc->macs, c->macs);
    acc->flops = sat_add(acc->flops, c->flops);
    acc->bytes_in = sat_add(acc->bytes_in, c->bytes_in);
    acc->bytes_out = sat_add(acc->bytes_out, c->bytes_out);
    acc->weight_bytes = sat_add(acc->weight_bytes, c->weight_bytes);
    acc->exact = acc->exact && c->exact;
}

static ir_cost graph_cost(const ir_graph *g)
{
    ir_cost acc = {0};
    acc.exact = true;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        add_cost(&acc, &g->nodes[i]->cost);
    return acc;
}

static const ir_graph *node_graph_attr(const ir_node *n, const char *name)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_GRAPH ? a->g : NULL;
}

void ir_node_cost(ir_model *m, ir_node *n)
{
    (void)m;
    uint64_t einsum_macs = n->cost.macs;
    bool einsum_exact = n->cost.exact;
    ir_cost c = {0};
    c.exact = true;
    ir_op_kind kind = ir_op_kind_of(n->op);

    if (kind != IR_KIND_VIEW && kind != IR_KIND_CONTROL) {
        for (uint32_t i = 0; i < n->n_in; i++) {
            const ir_tensor *t = n->in[i];
            if (!t)
                continue;
            uint64_t b = tensor_bytes(t, &c.exact);
            c.bytes_in = sat_add(c.bytes_in, b);
            if (t->flags & IR_TF_CONST)
                c.weight_bytes = sat_add(c.weight_bytes, b);
        }
        for (uint32_t i = 0; i < n->n_out; i++)
            if (n->out[i])
                c.bytes_out = sat_add(c.bytes_out, tensor_bytes(n->out[i], &c.exact));
    }
    const ir_tensor *y = n->n_out > 0 ? n->out[0] : NULL;
    uint64_t out_n = y ? numel_lb(&y->shape, &c.exact) : 0;
    const ir_shape *x = n->n_in > 0 && n->in[0] ? &n->in[0]->shape : NULL;

    switch (n->op) {
    case IR_OP_CONV: {
        const ir_shape *w = &n->in[1]->shape;
        uint64_t per = 1;
        for (int i = 1; i < w->rank; i++) /* C/group * kernel */
            per = sat_mul(per, dim_lb(w->d[i], &c.exact));
        c.macs = sat_mul(out_n, per);
        c.flops = sat_add(sat_mul(2, c.macs), n->n_in > 2 && n->in[2] ? out_n : 0);
        break;
    }
    case IR_OP_CONVTRANSPOSE: {
        const ir_shape *w = &n->in[1]->shape;
        uint64_t per = 1;
        for (int i = 1; i < w->rank; i++) /* (M/group) * kernel per input element */
            per = sat_mul(per, dim_lb(w->d[i], &c.exact));
        c.macs = sat_mul(numel_lb(x, &c.exact), per);
        c.flops = sat_add(sat_mul(2, c.macs), n->n_in > 2 && n->in[2] ? out_n : 0);
        break;
    }
    case IR_OP_GEMM: {
        bool ta = ir_attr_i(n, "transA", 0) != 0;
        uint64_t K = dim_lb(x->d[ta ? 0 : 1], &c.exact);
        c.macs = sat_mul(out_n, K);
        c.flops = sat_add(sat_mul(2, c.macs), n->n_in > 2 && n->in[2] ? out_n : 0);
        break;
    }
    case IR_OP_MATMUL: {
        uint64_t K = dim_lb(x->d[x->rank - 1], &c.exact);
        c.macs = sat_mul(out_n, K);
        c.flops = sat_mul(2, c.macs);
        break;
    }
    case IR_OP_EINSUM:
        c.macs = einsum_macs;
        c.exact = c.exact && einsum_exact;
        c.flops = sat_mul(2, c.macs);
        break;
    case IR_OP_LSTM: case IR_OP_GRU: case IR_OP_RNN: {
        const ir_shape *w = &n->in[1]->shape, *r = &n->in[2]->shape;
        bool bf = ir_attr_i(n, "layout", 0) != 0;
        uint64_t seq = dim_lb(x->d[bf ? 1 : 0], &c.exact), batch = dim_lb(x->d[bf ? 0 : 1], &c.exact);
        uint64_t dirs = dim_lb(w->d[0], &c.exact), rows = dim_lb(w->d[1], &c.exact);
        uint64_t in = dim_lb(w->d[2], &c.exact), hid = dim_lb(r->d[2], &c.exact);
        uint64_t steps = sat_mul(sat_mul(seq, batch), dirs);
        c.macs = sat_mul(steps, sat_mul(rows, in + hid));
        /* gate nonlinearities and cell update: ~8 flops per gate element */
        c.flops = sat_add(sat_mul(2, c.macs), sat_mul(steps, sat_mul(rows, 8)));
        break;
    }
    case IR_OP_MAXPOOL: case IR_OP_AVERAGEPOOL: case IR_OP_LPPOOL: {
        const int64_t *k;
        long nk = ir_attr_ints(n, "kernel_shape", &k);
        uint64_t win = 1;
        for (long i = 0; i < nk; i++)
            win = sat_mul(win, (uint64_t)(k[i] > 0 ? k[i] : 1));
        c.flops = sat_mul(out_n, win);
        break;
    }
    case IR_OP_GLOBALAVERAGEPOOL: case IR_OP_GLOBALMAXPOOL: case IR_OP_GLOBALLPPOOL:
        c.flops = numel_lb(x, &c.exact);
        break;
    case IR_OP_SOFTMAX: case IR_OP_LOGSOFTMAX: case IR_OP_HARDMAX:
        c.flops = sat_mul(out_n, 5);
        break;
    case IR_OP_LRN:
        c.flops = sat_mul(out_n, (uint64_t)(ir_attr_i(n, "size", 1) > 0 ? ir_attr_i(n, "size", 1) : 1) + 4);
        break;
    case IR_OP_IF: {
        const ir_graph *tg = node_graph_attr(n, "then_branch"), *eg = node_graph_attr(n, "else_branch");
        ir_cost a = tg ? graph_cost(tg) : c, b = eg ? graph_cost(eg) : c;
        c = a.flops >= b.flops ? a : b;
        c.exact = a.exact && b.exact;
        break;
    }
    case IR_OP_LOOP: {
        const ir_graph *body = node_graph_attr(n, "body");
        if (!body)
            break;
        ir_cost b = graph_cost(body);
        uint64_t trip = 1;
        bool known = false;
        if (n->n_in > 0 && n->in[0] && n->in[0]->value && !n->in[0]->value->is_float &&
            n->in[0]->value->n == 1 && ir_dim_is_lit(n->in[0]->value->v[0]) &&
            (n->n_in < 2 || !n->in[1])) {
            trip = (uint64_t)(n->in[0]->value->v[0].c > 0 ? n->in[0]->value->v[0].c : 0);
            known = true;
        }
        c.macs = sat_mul(b.macs, trip);
        c.flops = sat_mul(b.flops, trip);
        c.bytes_in = sat_mul(b.bytes_in, trip);
        c.bytes_out = sat_mul(b.bytes_out, trip);
        c.weight_bytes = sat_mul(b.weight_bytes, trip);
        c.exact = b.exact && known;
        break;
    }
    default:
        switch (kind) {
        case IR_KIND_REDUCE:
            c.flops = numel_lb(x, &c.exact);
            break;
        case IR_KIND_ELEMWISE: case IR_KIND_NORM: case IR_KIND_MOVE:
            c.flops = sat_mul(out_n, fpe_table[n->op]);
            break;
        default:
            break;
        }
    }
    if (n->op >= IR_OP_COUNT)
        c.exact = false;
    n->cost = c;
}

/* ---- statistics -------------------------------------------------------------------------- */
static void const_stats(const ir_graph *g, ir_stats *st)
{
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        const ir_tensor *t = g->tensors[i];
        if (!(t->flags & IR_TF_CONST))
            continue;
        uint64_t n, b;
        if (!ir_shape_numel(&t->decl, &n) || !ir_dtype_nbytes(t->dtype, n, &b))
            continue;
        if (ir_dtype_is_float(t->dtype))
            st->n_params = sat_add(st->n_params, n);
        st->weight_bytes = sat_add(st->weight_bytes, b);
        if (t->data)
            st->weight_bytes_present = sat_add(st->weight_bytes_present, t->nbytes);
    }
    st->n_tensors += g->n_tensors;
    st->n_graphs++;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *x = g->nodes[i];
        st->n_nodes++;
        for (uint32_t a = 0; a < x->n_attr; a++) {
            const ir_attr *at = &x->attr[a];
            if (at->g)
                const_stats(at->g, st);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                const_stats(at->graphs[k], st);
        }
    }
}

/* bytes of t, with floating-point elements counted at float_bytes each when non-zero */
static uint64_t tensor_bytes_as(const ir_tensor *t, unsigned float_bytes, bool *exact)
{
    if (!float_bytes || !ir_dtype_is_float(t->dtype))
        return tensor_bytes(t, exact);
    return sat_mul(numel_lb(&t->shape, exact), float_bytes);
}

static void release(const ir_tensor *t, const ir_graph *g, uint32_t *left, uint64_t *live,
                    unsigned fb, bool *ex)
{
    if (!t || t->graph != g || (t->flags & (IR_TF_CONST | IR_TF_OUTPUT)))
        return;
    if (left[t->id] > 0 && --left[t->id] == 0)
        *live -= tensor_bytes_as(t, fb, ex);
}

uint64_t ir_graph_peak_live_bytes(const ir_graph *g, bool *exact)
{
    return ir_graph_peak_live_bytes_as(g, 0, exact);
}

uint64_t ir_graph_peak_live_bytes_as(const ir_graph *g, unsigned float_bytes, bool *exact)
{
    unsigned fb = float_bytes;
    bool ex = true;
    uint64_t live = 0, peak = 0;
    uint32_t *left = us_calloc(g->model->n_tensor_ids ? g->model->n_tensor_ids : 1, sizeof *left);
    if (!left) {
        if (exact)
            *exact = false;
        return 0;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *x = g->nodes[i];
        for (uint32_t k = 0; k < x->n_in; k++)
            if (x->in[k])
                left[x->in[k]->id]++;
        for (uint32_t k = 0; k < x->n_implicit; k++)
            left[x->implicit[k]->id]++;
    }
    for (uint32_t i = 0; i < g->n_inputs; i++)
        if (!(g->inputs[i]->flags & IR_TF_CONST))
            live = sat_add(live, tensor_bytes_as(g->inputs[i], fb, &ex));
    peak = live;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *x = g->nodes[i];
        for (uint32_t k = 0; k < x->n_out; k++)
            if (x->out[k] && !(x->out[k]->flags & IR_TF_CONST))
                live = sat_add(live, tensor_bytes_as(x->out[k], fb, &ex));
        if (live > peak)
            peak = live;
        for (uint32_t k = 0; k < x->n_in; k++)
            release(x->in[k], g, left, &live, fb, &ex);
        for (uint32_t k = 0; k < x->n_implicit; k++)
            release(x->implicit[k], g, left, &live, fb, &ex);
        for (uint32_t k = 0; k < x->n_out; k++) {
            const ir_tensor *t = x->out[k];
            if (t && !(t->flags & (IR_TF_CONST | IR_TF_OUTPUT)) && left[t->id] == 0)
                live -= tensor_bytes_as(t, fb, &ex); /* never read */
        }
    }
    us_free(left);
    if (exact)
        *exact = ex;
    return peak;
}

void ir_model_stats(const ir_model *m, ir_stats *st)
{
    memset(st, 0, sizeof *st);
    st->exact = true;
    if (!m->main)
        return;
    const ir_graph *g = m->main;
    const_stats(g, st);
    ir_cost total = graph_cost(g);
    st->macs = total.macs;
    st->flops = total.flops;
    st->exact = total.exact;
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        const ir_tensor *t = g->tensors[i];
        if (t->flags & IR_TF_CONST)
            continue;
        st->activation_bytes = sat_add(st->activation_bytes, tensor_bytes(t, &st->exact));
    }
    for (uint32_t i = 0; i < g->n_inputs; i++)
        if (!(g->inputs[i]->flags & IR_TF_CONST))
            st->io_bytes = sat_add(st->io_bytes, tensor_bytes(g->inputs[i], &st->exact));
    for (uint32_t i = 0; i < g->n_outputs; i++)
        st->io_bytes = sat_add(st->io_bytes, tensor_bytes(g->outputs[i], &st->exact));
    bool ex = true;
    st->peak_activation_bytes = ir_graph_peak_live_bytes(g, &ex);
    st->exact = st->exact && ex;
}

uint64_t ir_tensor_hash(ir_tensor *t)
{
    if (t->hashed)
        return t->hash;
    us_hash_state s;
    us_hash_init(&s, 0);
    int32_t meta[2] = {t->dtype, t->decl.rank};
    us_hash_update(&s, meta, sizeof meta);
    for (int i = 0; i < t->decl.rank && i < IR_MAX_RANK; i++) {
        int64_t d = ir_dim_is_lit(t->decl.d[i]) ? t->decl.d[i].c : -1;
        us_hash_update(&s, &d, sizeof d);
    }
    if (t->data)
        us_hash_update(&s, t->data, (size_t)t->nbytes);
    else
        us_hash_update(&s, "nodata", 6);
    t->hash = us_hash_final(&s);
    t->hashed = true;
    return t->hash;
}
