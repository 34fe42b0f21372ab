/*
 * kmap.c - IR operators to the kernels a cuDNN/cuBLAS engine launches (layer 4).
 *
 * The mapping follows what ONNX Runtime's CUDA execution provider does with
 * each operator (docs/internals/estimate.md has the table):
 *   Conv            cuDNN implicit GEMM: M = N*out_spatial, N = C_out/group,
 *                   K = C_in/group * kernel, one GEMM per group; depthwise
 *                   (one input channel per group) a direct kernel
 *   ConvTranspose   a GEMM into columns and a col2im scatter
 *   Gemm, MatMul    cuBLAS (strided-batched for batched MatMul; a MatMul whose B
 *                   is one matrix folds A's leading dims into M: one GEMM)
 *   LSTM/GRU/RNN    the input projection as one GEMM, then per time step a
 *                   recurrent GEMM and a pointwise gate kernel
 *   elementwise, normalisation, softmax, reductions, pooling, data movement:
 *                   one kernel each, sized by their tensors
 *   views, Shape, Constant, Identity, Dropout: no kernel
 *   If: the costlier branch; Loop: the body per known trip
 * Fusions the engine applies are options (gpu_fusion): Conv(+Add)+Relu into
 * the convolution, chains of single-consumer elementwise ops (GELU and
 * friends) into one kernel, Add+LayerNormalization into one, or every
 * elementwise op into its producer.
 * Byte counts use the precision's element size for floating-point tensors.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "kernels.h"

static const char *const prec_names[GPU_PREC_COUNT] = {"fp32", "tf32", "fp16", "int8"};
static const char *const class_names[GPU_K_COUNT] = {
    "gemm", "depthwise", "elementwise", "reduce", "softmax", "norm", "pool", "move", "unknown"};

const char *gpu_precision_name(gpu_precision p)
{
    return (unsigned)p < GPU_PREC_COUNT ? prec_names[p] : "?";
}

int gpu_precision_parse(const char *s)
{
    for (int i = 0; s && i < GPU_PREC_COUNT; i++)
        if (strcmp(s, prec_names[i]) == 0)
            return i;
    return -1;
}

const char *gpu_kclass_name(gpu_kclass k)
{
    return (unsigned)k < GPU_K_COUNT ? class_names[k] : "?";
}

gpu_fusion gpu_fusion_named(const char *name, bool *ok)
{
    gpu_fusion f;
    memset(&f, 0, sizeof f);
    bool good = true;
    if (!name || strcmp(name, "ort") == 0) {
        f.conv_act = f.gelu = f.skip_layernorm = true;
    } else if (strcmp(name, "full") == 0) {
        f.conv_act = f.gelu = f.skip_layernorm = f.all_elementwise = true;
    } else if (strcmp(name, "none") != 0) {
        good = false;
    }
    if (ok)
        *ok = good;
    return f;
}

typedef struct kctx {
    const ir_model *m;
    gpu_precision prec;
    const gpu_fusion *fu;
    gpu_kplan *plan;
    usher_error *err;
    uint32_t *last_kernel; /* per node id: index of its last kernel + 1 (0: none) */
    uint8_t *fused;        /* per node id: 1 if it launches nothing (fused) */
    double elem_f;         /* bytes of a floating-point element at this precision */
    bool oom;
    int rc;
} kctx;

static int64_t ir_attr_i(const ir_node *n, const char *name, int64_t def)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INT ? a->i : def;
}

static double elem_bytes(const kctx *c, const ir_tensor *t)
{
    if (ir_dtype_is_float(t->dtype))
        return c->elem_f;
    unsigned b = ir_dtype_bits(t->dtype);
    return b ? b / 8.0 : 1.0;
}

static double numel(const ir_tensor *t)
{
    uint64_t n;
    return t && ir_shape_numel(&t->shape, &n) ? (double)n : 0.0;
}

static double tbytes(const kctx *c, const ir_tensor *t)
{
    return t ? numel(t) * elem_bytes(c, t) : 0.0;
}

static bool shaped(const ir_tensor *t) { return !t || ir_shape_is_static(&t->shape); }

/*
 * A graph input or output that is a decoder's KV cache stays on the GPU between
 * steps: a server binds past_key_values.* / present.* to device buffers (ONNX
 * Runtime I/O binding, as onnxruntime-genai and Hugging Face Optimum's
 * use_io_binding do) and feeds step t's present as step t+1's past, so it never
 * crosses PCIe. Named as the Hugging Face / Optimum exporters name them
 * (docs/internals/estimate.md section 3). The kernels still read and write it.
 */
static bool kv_cache(const ir_tensor *t)
{
    static const char *const prefixes[] = {"past_key_values.", "past_key_values_", "past.",
                                           "present.", "present_"};
    for (size_t i = 0; t && t->name && i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(t->name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static int need_shapes(kctx *c, const ir_node *n, usher_error *err)
{
    for (uint32_t i = 0; i < n->n_in + n->n_out; i++) {
        const ir_tensor *t = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
        if (shaped(t))
            continue;
        char sh[256];
        ir_shape_format(c->m, &t->shape, sh, sizeof sh);
        return us_err_set(err, USHER_ERR_SHAPE,
                          "tensor '%s' of node '%s' (%s) has shape %s: bind every dynamic dim "
                          "(batch, --dim) before estimating",
                          t->name, n->name, n->op_type, sh);
    }
    return USHER_OK;
}

static gpu_kprob *add(kctx *c, const ir_node *n, gpu_kclass cls)
{
    gpu_kplan *p = c->plan;
    if (p->n == p->cap) {
        uint32_t nc = p->cap ? p->cap * 2 : 256;
        gpu_kprob *nk = us_realloc(p->k, (size_t)nc * sizeof *nk);
        if (!nk) {
            c->oom = true;
            return NULL;
        }
        p->k = nk;
        p->cap = nc;
    }
    if (p->n_nodes == 0 || p->nodes[p->n_nodes - 1] != n) {
        const ir_node **nn = us_realloc(p->nodes, ((size_t)p->n_nodes + 1) * sizeof *nn);
        if (!nn) {
            c->oom = true;
            return NULL;
        }
        p->nodes = nn;
        p->nodes[p->n_nodes++] = n;
    }
    gpu_kprob *k = &p->k[p->n++];
    memset(k, 0, sizeof *k);
    k->cls = cls;
    k->node = p->n_nodes - 1;
    k->repeat = 1;
    k->batch = 1;
    k->elem_bytes = c->elem_f;
    for (int i = 0; i < 4; i++)
        k->dag_preds[i] = UINT32_MAX;
    /* wait for the kernels that produce this node's inputs */
    int np = 0;
    for (uint32_t i = 0; i < n->n_in + n->n_implicit && np < 4; i++) {
        const ir_tensor *t = i < n->n_in ? n->in[i] : n->implicit[i - n->n_in];
        if (t && t->producer && c->last_kernel[t->producer->id])
            k->dag_preds[np++] = c->last_kernel[t->producer->id] - 1;
    }
    c->last_kernel[n->id] = p->n;
    return k;
}

/* bytes of every input (weights flagged) and output of n */
static void io_bytes(kctx *c, const ir_node *n, gpu_kprob *k)
{
    for (uint32_t i = 0; i < n->n_in; i++) {
        const ir_tensor *t = n->in[i];
        if (!t)
            continue;
        double b = tbytes(c, t);
        k->bytes += b;
        if (t->flags & IR_TF_CONST)
            k->weight_bytes += b;
    }
    for (uint32_t i = 0; i < n->n_out; i++)
        k->bytes += tbytes(c, n->out[i]);
}

static double dim(const ir_shape *s, int i) { return (double)s->d[i].c; }

static double prod(const ir_shape *s, int from, int to)
{
    double p = 1;
    for (int i = from; i < to; i++)
        p *= dim(s, i);
    return p;
}

static bool tc_ok(const kctx *c) { return c->prec != GPU_PREC_FP32; }

/* strides and dilations all 1 */
static bool conv_unit_strides(const ir_node *n)
{
    const char *names[2] = {"strides", "dilations"};
    for (int i = 0; i < 2; i++) {
        const ir_attr *a = ir_node_attr(n, names[i]);
        for (size_t k = 0; a && a->type == IR_ATTR_INTS && k < a->n; k++)
            if (a->ints[k] != 1)
                return false;
    }
    return true;
}

static void map_conv(kctx *c, const ir_node *n)
{
    const ir_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *y = &n->out[0]->shape;
    double group = (double)ir_attr_i(n, "group", 1);
    double cin_g = dim(w, 1), cout = dim(w, 0), kern = prod(w, 2, w->rank);
    double macs = (double)n->cost.macs;
    if (cin_g == 1 && group > 1) {
        gpu_kprob *k = add(c, n, GPU_K_DEPTHWISE);
        if (!k)
            return;
        k->parallel = (int64_t)numel(n->out[0]);
        k->flops = 2 * macs;
        io_bytes(c, n, k);
        return;
    }
    gpu_kprob *k = add(c, n, GPU_K_GEMM);
    if (!k)
        return;
    k->m = (int64_t)(dim(y, 0) * prod(y, 2, y->rank));
    k->n = (int64_t)(cout / group);
    k->k = (int64_t)(cin_g * kern);
    k->batch = (int64_t)group;
    k->tensor = tc_ok(c);
    k->conv = true;
    k->winograd = w->rank == 4 && dim(w, 2) == 3 && dim(w, 3) == 3 && conv_unit_strides(n);
    k->parallel = k->m * k->n * k->batch;
    k->flops = 2 * macs;
    io_bytes(c, n, k);
    (void)x;
}

static void map_conv_transpose(kctx *c, const ir_node *n)
{
    const ir_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape;
    double group = (double)ir_attr_i(n, "group", 1);
    gpu_kprob *k = add(c, n, GPU_K_GEMM);
    if (!k)
        return;
    k->m = (int64_t)(dim(x, 0) * prod(x, 2, x->rank));
    k->n = (int64_t)(dim(w, 1) * prod(w, 2, w->rank));
    k->k = (int64_t)(dim(x, 1) / group);
    k->batch = (int64_t)group;
    k->tensor = tc_ok(c);
    k->parallel = k->m * k->n * k->batch;
    k->flops = 2.0 * (double)n->cost.macs;
    io_bytes(c, n, k);
    /* the columns are scattered into the output (col2im) */
    gpu_kprob *s = add(c, n, GPU_K_MOVE);
    if (!s)
        return;
    s->parallel = (int64_t)numel(n->out[0]);
    s->bytes = 2 * (double)k->m * (double)k->n * (double)k->batch * c->elem_f;
    s->flops = (double)k->m * (double)k->n * (double)k->batch;
}

static void map_gemm_like(kctx *c, const ir_node *n)
{
    const ir_shape *y = &n->out[0]->shape;
    gpu_kprob *k = add(c, n, GPU_K_GEMM);
    if (!k)
        return;
    double out = numel(n->out[0]);
    if (n->op == IR_OP_GEMM) {
        k->m = (int64_t)dim(y, 0);
        k->n = (int64_t)dim(y, 1);
    } else if (n->op == IR_OP_MATMUL) {
        const ir_shape *bs = &n->in[1]->shape;
        k->n = y->rank >= 1 ? (int64_t)dim(y, y->rank - 1) : 1;
        k->m = y->rank >= 2 && n->in[0]->shape.rank >= 2 ? (int64_t)dim(y, y->rank - 2) : 1;
        if (bs->rank == 1) { /* matrix x vector: the vector is N = 1 */
            k->m = y->rank >= 1 ? (int64_t)dim(y, y->rank - 1) : 1;
            k->n = 1;
        } else if (prod(bs, 0, bs->rank - 2) == 1 && k->n > 0) {
            /* B is one matrix shared by every leading index of A (a linear layer on
             * [seq, batch, features] or [batch, seq, features]): ONNX Runtime's
             * MatMul folds A's leading dims into M and calls one GEMM (MatMulComputeHelper
             * in onnxruntime/core/providers/cpu/math/matmul_helper.h) - not a
             * strided batch that re-reads B per index */
            k->m = (int64_t)(out / (double)k->n);
        }
    } else { /* Einsum: output elements x contraction */
        k->m = (int64_t)out;
        k->n = 1;
    }
    double mn = (double)k->m * (double)k->n;
    k->batch = mn > 0 ? (int64_t)llround(out / mn) : 1;
    if (k->batch < 1)
        k->batch = 1;
    double denom = out > 0 ? out : 1;
    k->k = (int64_t)llround((double)n->cost.macs / denom);
    if (k->k < 1)
        k->k = 1;
    k->tensor = tc_ok(c);
    k->parallel = (int64_t)out;
    k->flops = (double)n->cost.flops;
    io_bytes(c, n, k);
}

static void map_rnn(kctx *c, const ir_node *n)
{
    const ir_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *r = &n->in[2]->shape;
    bool bf = ir_attr_i(n, "layout", 0) != 0;
    double seq = dim(x, bf ? 1 : 0), batch = dim(x, bf ? 0 : 1), in = dim(x, 2);
    double dirs = dim(w, 0), rows = dim(w, 1), hid = dim(r, 2);
    double es = c->elem_f;
    gpu_kprob *p = add(c, n, GPU_K_GEMM); /* input projection, all steps at once */
    if (!p)
        return;
    p->m = (int64_t)(seq * batch);
    p->n = (int64_t)rows;
    p->k = (int64_t)in;
    p->batch = (int64_t)dirs;
    p->tensor = tc_ok(c);
    p->parallel = p->m * p->n * p->batch;
    p->flops = 2 * seq * batch * dirs * rows * in;
    p->bytes = (seq * batch * in + dirs * rows * in + seq * batch * dirs * rows) * es;
    p->weight_bytes = dirs * rows * in * es;
    gpu_kprob *h = add(c, n, GPU_K_GEMM); /* recurrent GEMM, one per step */
    if (!h)
        return;
    h->m = (int64_t)batch;
    h->n = (int64_t)rows;
    h->k = (int64_t)hid;
    h->batch = (int64_t)dirs;
    h->repeat = (uint32_t)(seq > 0 ? seq : 1);
    h->tensor = tc_ok(c);
    h->parallel = h->m * h->n * h->batch;
    h->flops = 2 * seq * batch * dirs * rows * hid;
    h->bytes = seq * (batch * hid + batch * rows) * dirs * es + dirs * rows * hid * es;
    h->weight_bytes = dirs * rows * hid * es;
    gpu_kprob *g = add(c, n, GPU_K_ELEMWISE); /* gates and cell update, one per step */
    if (!g)
        return;
    g->repeat = h->repeat;
    g->parallel = (int64_t)(batch * rows * dirs);
    g->flops = seq * batch * rows * dirs * 8;
    g->bytes = seq * batch * dirs * (2 * rows + 3 * hid) * es;
}

static double data_in_bytes(kctx *c, const ir_node *n)
{
    return n->n_in > 0 ? tbytes(c, n->in[0]) : 0;
}

static void map_simple(kctx *c, const ir_node *n, gpu_kclass cls)
{
    gpu_kprob *k = add(c, n, cls);
    if (!k)
        return;
    k->parallel = (int64_t)numel(n->out[0]);
    k->flops = (double)n->cost.flops;
    switch (cls) {
    case GPU_K_MOVE:
        /* data movers read their data input and write the output; index and
         * shape inputs are small and read once */
        k->bytes = data_in_bytes(c, n) + tbytes(c, n->out[0]);
        if (n->op == IR_OP_GATHER || n->op == IR_OP_GATHERELEMENTS || n->op == IR_OP_GATHERND)
            k->bytes = tbytes(c, n->out[0]) * 2 + tbytes(c, n->in[1]);
        if (n->op == IR_OP_CONCAT || n->op == IR_OP_SPLIT || n->op == IR_OP_WHERE) {
            k->bytes = 0;
            io_bytes(c, n, k);
        }
        break;
    case GPU_K_SOFTMAX: case GPU_K_NORM: case GPU_K_REDUCE: {
        io_bytes(c, n, k);
        const ir_shape *x = &n->in[0]->shape;
        double total = numel(n->in[0]);
        double row = 1;
        if (cls == GPU_K_SOFTMAX && x->rank > 0) {
            int64_t ax = ir_attr_i(n, "axis", -1);
            if (ax < 0)
                ax += x->rank;
            row = ax >= 0 && ax < x->rank ? dim(x, (int)ax) : 1;
        } else if (n->op == IR_OP_LAYERNORMALIZATION && x->rank > 0) {
            int64_t ax = ir_attr_i(n, "axis", -1);
            if (ax < 0)
                ax += x->rank;
            row = ax >= 0 && ax < x->rank ? prod(x, (int)ax, x->rank) : 1;
        } else if (cls == GPU_K_REDUCE) {
            double out = numel(n->out[0]);
            row = out > 0 ? total / out : total;
        } else if (n->op == IR_OP_BATCHNORMALIZATION) {
            row = 1; /* inference batch norm is a per-element scale and shift */
        }
        k->parallel = (int64_t)(row > 0 ? total / row : total);
        if (k->parallel < 1)
            k->parallel = 1;
        if (cls == GPU_K_SOFTMAX)
            k->flops = total * 5;
        break;
    }
    default:
        io_bytes(c, n, k);
    }
}

static void map_unknown(kctx *c, const ir_node *n)
{
    gpu_kprob *k = add(c, n, GPU_K_UNKNOWN);
    if (!k)
        return;
    double in = 0, out = 0;
    for (uint32_t i = 0; i < n->n_in; i++)
        if (n->in[i] && shaped(n->in[i]))
            in += tbytes(c, n->in[i]);
    for (uint32_t i = 0; i < n->n_out; i++)
        if (n->out[i] && shaped(n->out[i]) && n->out[i]->shape.rank >= 0)
            out += tbytes(c, n->out[i]);
    /* conservative: outputs unknown are taken as large as the inputs */
    k->bytes = in + (out > 0 ? out : in);
    k->parallel = (int64_t)(k->bytes / 8 > 1 ? k->bytes / 8 : 1);
    k->flops = k->bytes; /* one operation per byte: more than any pointwise kernel */
    gpu_kplan *p = c->plan;
    if (p->n_unknown++ == 0)
        snprintf(p->unknown_op, sizeof p->unknown_op, "%s%s%s", n->domain,
                 n->domain[0] ? "." : "", n->op_type);
    p->exact = false;
}

static bool single_consumer(const ir_tensor *t) { return t && t->n_consumers == 1 && !(t->flags & IR_TF_OUTPUT); }

/* the producer of input i, if it is a kernel-launching node in the same graph */
static const ir_node *producer(const ir_node *n, uint32_t i)
{
    return i < n->n_in && n->in[i] && n->in[i]->producer ? n->in[i]->producer : NULL;
}

static bool is_elementwise(const ir_node *n)
{
    return ir_op_kind_of(n->op) == IR_KIND_ELEMWISE && n->op != IR_OP_WHERE;
}

/* decide which nodes launch no kernel of their own */
static void plan_fusion(kctx *c, const ir_graph *g)
{
    const gpu_fusion *f = c->fu;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        const ir_node *p = producer(n, 0);
        if (f->conv_act && n->op == IR_OP_RELU && p && single_consumer(n->in[0])) {
            /* Conv -> Relu, or Conv -> Add(residual) -> Relu */
            if (p->op == IR_OP_CONV)
                c->fused[n->id] = 1;
            else if (p->op == IR_OP_ADD && !c->fused[p->id]) {
                for (uint32_t k = 0; k < 2; k++) {
                    const ir_node *q = producer(p, k);
                    if (q && q->op == IR_OP_CONV && single_consumer(p->in[k])) {
                        c->fused[n->id] = c->fused[p->id] = 1;
                        break;
                    }
                }
            }
        }
        if (f->gelu && is_elementwise(n) && p && is_elementwise(p) && single_consumer(n->in[0]))
            c->fused[n->id] = 1; /* a chain of pointwise ops: one kernel (GELU, FastGelu, ...) */
        if (f->gelu && is_elementwise(n) && !c->fused[n->id] && n->n_in > 1) {
            const ir_node *q = producer(n, 1);
            if (q && is_elementwise(q) && single_consumer(n->in[1]))
                c->fused[n->id] = 1;
        }
        if (f->skip_layernorm && n->op == IR_OP_LAYERNORMALIZATION && p && p->op == IR_OP_ADD &&
            single_consumer(n->in[0]))
            c->fused[p->id] = 1; /* the Add runs inside SkipLayerNorm */
        if (f->all_elementwise && is_elementwise(n) && p && single_consumer(n->in[0]) &&
            ir_op_kind_of(p->op) != IR_KIND_VIEW && ir_op_kind_of(p->op) != IR_KIND_CONTROL)
            c->fused[n->id] = 1;
    }
}

static double graph_flops(const ir_graph *g)
{
    double f = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        f += (double)g->nodes[i]->cost.flops;
    return f;
}

static bool graph_shaped(const ir_graph *g)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        for (uint32_t k = 0; k < n->n_out; k++)
            if (n->out[k] && !ir_shape_is_static(&n->out[k]->shape))
                return false;
    }
    return true;
}

static void map_graph(kctx *c, const ir_graph *g, uint32_t repeat);

static void map_node(kctx *c, const ir_node *n, uint32_t repeat)
{
    if (c->rc < 0 || c->oom)
        return;
    if (c->fused[n->id]) {
        /* runs inside its producer's kernel: readers wait for that kernel */
        const ir_node *p = producer(n, 0);
        if (p)
            c->last_kernel[n->id] = c->last_kernel[p->id];
        return;
    }
    ir_op_kind kind = ir_op_kind_of(n->op);
    if (n->op == IR_OP_IF) {
        const ir_attr *t = ir_node_attr(n, "then_branch"), *e = ir_node_attr(n, "else_branch");
        const ir_graph *tg = t ? t->g : NULL, *eg = e ? e->g : NULL;
        bool ts = tg && graph_shaped(tg), es = eg && graph_shaped(eg);
        const ir_graph *pick = ts && es ? (graph_flops(tg) >= graph_flops(eg) ? tg : eg)
                                        : ts ? tg : es ? eg : NULL;
        if (pick)
            map_graph(c, pick, repeat);
        return;
    }
    if (n->op == IR_OP_LOOP) {
        const ir_attr *b = ir_node_attr(n, "body");
        uint32_t trip = 1;
        const ir_value *mv = n->n_in > 0 && n->in[0] ? n->in[0]->value : NULL;
        if (mv && !mv->is_float && mv->n == 1 && ir_dim_is_lit(mv->v[0]) && mv->v[0].c > 0 &&
            mv->v[0].c < 1000000)
            trip = (uint32_t)mv->v[0].c;
        else
            c->plan->exact = false;
        if (b && b->g)
            map_graph(c, b->g, repeat * trip);
        return;
    }
    if (kind == IR_KIND_VIEW || n->op == IR_OP_CONSTANT)
        return;
    /* outputs known at inference time (shape arithmetic: Shape -> Gather -> Concat)
     * are computed on the host, or do not exist outside the exported graph */
    bool all_known = n->n_out > 0;
    for (uint32_t k = 0; k < n->n_out; k++)
        if (n->out[k] && !n->out[k]->value)
            all_known = false;
    if (all_known)
        return;
    if (n->op == IR_OP_UNKNOWN || n->infer_status < 0) {
        map_unknown(c, n);
        return;
    }
    /* the inputs' dims are all bound (checked first), so an unknown shape here comes
     * from an operator that could not be inferred, or a data-dependent size */
    usher_error ignored;
    if (need_shapes(c, n, &ignored) < 0) {
        map_unknown(c, n);
        return;
    }
    if (numel(n->out[0]) == 0 && n->n_out > 0 && n->out[0])
        return; /* zero-size output: nothing to launch */
    uint32_t first = c->plan->n;
    switch (n->op) {
    case IR_OP_CONV: map_conv(c, n); break;
    case IR_OP_CONVTRANSPOSE: map_conv_transpose(c, n); break;
    case IR_OP_GEMM: case IR_OP_MATMUL: case IR_OP_EINSUM: map_gemm_like(c, n); break;
    case IR_OP_LSTM: case IR_OP_GRU: case IR_OP_RNN: map_rnn(c, n); break;
    default:
        switch (kind) {
        case IR_KIND_ELEMWISE: map_simple(c, n, GPU_K_ELEMWISE); break;
        case IR_KIND_NORM: map_simple(c, n, GPU_K_NORM); break;
        case IR_KIND_SOFTMAX: map_simple(c, n, GPU_K_SOFTMAX); break;
        case IR_KIND_REDUCE: map_simple(c, n, GPU_K_REDUCE); break;
        case IR_KIND_POOL: map_simple(c, n, GPU_K_POOL); break;
        case IR_KIND_MOVE: map_simple(c, n, GPU_K_MOVE); break;
        default: map_unknown(c, n); break;
        }
    }
    for (uint32_t i = first; i < c->plan->n; i++) {
        gpu_kprob *k = &c->plan->k[i];
        if (repeat > 1) {
            k->repeat *= repeat;
            k->flops *= repeat;
            k->bytes *= repeat;
        }
        c->plan->total_flops += k->flops;
    }
}

static void map_graph(kctx *c, const ir_graph *g, uint32_t repeat)
{
    plan_fusion(c, g);
    for (uint32_t i = 0; i < g->n_nodes && c->rc == USHER_OK && !c->oom; i++)
        map_node(c, g->nodes[i], repeat);
}

int gpu_kmap_model(const ir_model *m, gpu_precision prec, const gpu_fusion *fusion,
                   gpu_kplan *plan, usher_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->exact = true;
    if (!m->main)
        return us_err_set(err, USHER_ERR_STATE, "model has no graph");
    if ((unsigned)prec >= GPU_PREC_COUNT)
        return us_err_set(err, USHER_ERR_INVALID, "unknown precision %d", (int)prec);
    gpu_fusion none;
    memset(&none, 0, sizeof none);
    kctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.prec = prec;
    c.fu = fusion ? fusion : &none;
    c.plan = plan;
    c.err = err;
    c.elem_f = prec == GPU_PREC_FP16 ? 2 : prec == GPU_PREC_INT8 ? 1 : 4;
    size_t nid = m->n_node_ids ? m->n_node_ids : 1;
    c.last_kernel = us_calloc(nid, sizeof *c.last_kernel);
    c.fused = us_calloc(nid, 1);
    if (!c.last_kernel || !c.fused) {
        us_free(c.last_kernel);
        us_free(c.fused);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    const ir_graph *g = m->main;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const ir_tensor *t = g->inputs[i];
        if (t->flags & IR_TF_CONST)
            continue;
        if (!shaped(t)) {
            char sh[256];
            ir_shape_format(m, &t->shape, sh, sizeof sh);
            c.rc = us_err_set(err, USHER_ERR_SHAPE,
                              "input '%s' has shape %s: bind every dynamic dim (batch, --dim) "
                              "before estimating",
                              t->name, sh);
            break;
        }
        if (!kv_cache(t))
            plan->io_bytes += tbytes(&c, t);
    }
    for (uint32_t i = 0; c.rc == USHER_OK && i < g->n_outputs; i++)
        if (shaped(g->outputs[i]) && !kv_cache(g->outputs[i]))
            plan->io_bytes += tbytes(&c, g->outputs[i]);
    if (c.rc == USHER_OK)
        map_graph(&c, g, 1);
    /* weights at this precision, every graph */
    if (c.rc == USHER_OK && !c.oom) {
        ir_stats st;
        ir_model_stats(m, &st);
        double float_w = 4.0 * (double)st.n_params;
        plan->weight_bytes = (double)st.weight_bytes - float_w + (double)st.n_params * c.elem_f;
        if (plan->weight_bytes < 0)
            plan->weight_bytes = (double)st.weight_bytes;
        bool ex = true;
        plan->peak_activation_bytes =
            (double)ir_graph_peak_live_bytes_as(g, (unsigned)c.elem_f, &ex);
        plan->exact = plan->exact && ex && st.exact;
    }
    us_free(c.last_kernel);
    us_free(c.fused);
    int rc = c.oom ? us_err_set(err, USHER_ERR_NOMEM, "out of memory") : c.rc;
    if (rc < 0)
        gpu_kplan_free(plan);
    return rc;
}

void gpu_kplan_free(gpu_kplan *plan)
{
    if (!plan)
        return;
    us_free(plan->k);
    us_free(plan->nodes);
    memset(plan, 0, sizeof *plan);
}
