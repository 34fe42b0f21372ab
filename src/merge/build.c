/*
 * build.c - the merged graph (layer 4, merge_; docs/internals/merge.md).
 *
 * Three builders over the analysis of merge.c, each producing a standard
 * ONNX graph in a new ir_model that keeps every original input and output as
 * "<label>/<name>":
 *
 *   shared        (a) operators whose weights are common to every model, whose
 *                 inputs are shared too and that act row by row on the batch
 *                 axis run once over the models' inputs concatenated on axis
 *                 0; where a model's operator diverges, the shared tensor is
 *                 sliced back to that model's rows (Shape -> offsets -> Slice);
 *   stacked       (b) models of one architecture with different weights: every
 *                 tensor becomes the stack of the K models' tensors on a new
 *                 leading axis [K, ...]; Conv/BatchNorm -> one grouped Conv /
 *                 BatchNorm over the models' channels, Gemm/MatMul -> one
 *                 batched MatMul, pooling over the folded [K*N, ...] batch,
 *                 elementwise ops on stacked tensors with stacked constants;
 *                 an operator without such a form refuses the kind (the
 *                 reason is reported) and the next kind is tried;
 *   side-by-side  every model's operators as they are, in one graph; each
 *                 common weight (merge.c) is stored once and read by all.
 *
 * Every constant (initializers and Constant outputs, subgraphs included) is
 * hoisted to a main-graph initializer, so models' subgraphs can share it too.
 * The merged IR points at the source models' attribute arrays and weight
 * bytes (they outlive it); new tensors' bytes are blobs of the merged model.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "merge_impl.h"

typedef struct bld {
    usher_merge *m;
    ir_model *M;
    ir_graph *g;
    usher_merge_kind kind;
    ir_tensor ***map;   /* per model, per tensor id: the merged tensor */
    ir_node ***rev;     /* per model, per ref node id: the model's node matched to it */
    ir_tensor **smap;   /* per ref tensor id: the shared / stacked merged tensor */
    bool *shared;       /* per ref node id (kind shared) */
    ir_tensor **off;    /* kind shared: K+1 row offsets (int64[1]) */
    int64_t opset;
    int32_t batch_sym;  /* kind shared: the first model's batch symbol */
    int batch_input;    /* kind shared: the input whose axis 0 counts each model's rows */
    uint64_t wbytes;    /* weight bytes written */
    uint32_t n_shared;
    uint32_t n_partial;  /* kind shared: operators whose weights are partly common (case c) */
    struct partial **partial; /* per ref node id, or NULL */
    char reason[512];   /* why this kind does not apply */
    usher_error *err;
} bld;

#define K(b) ((b)->m->n_src)

static int nomem(bld *b) { return us_err_set(b->err, USHER_ERR_NOMEM, "out of memory"); }

static int refuse(bld *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(bld *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->reason, sizeof b->reason, fmt, ap);
    va_end(ap);
    return USHER_ERR_UNSUPPORTED;
}

/* ---- small constructors ------------------------------------------------------------------ */
static ir_tensor *new_tensor(bld *b, ir_graph *g, const char *a, const char *c)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s", a, c);
    size_t l = strlen(name);
    for (uint32_t i = 1;; i++) {
        ir_tensor *dup = NULL, *t = ir_graph_add_tensor(g, name, &dup);
        if (t) {
            t->decl.rank = IR_RANK_UNKNOWN;
            t->shape.rank = IR_RANK_UNKNOWN;
            return t;
        }
        if (!dup || i > 100000)
            return NULL;
        snprintf(name + l, sizeof name - l, "#%u", i);
    }
}

static ir_node *add_node(bld *b, ir_graph *g, const char *name, const char *op, uint32_t n_in,
                         ir_tensor *const *in, uint32_t n_out, ir_tensor *const *out,
                         uint32_t n_attr)
{
    ir_node *n = ir_graph_add_node(g, name, "", op, n_in, n_out, n_attr);
    if (!n)
        return NULL;
    for (uint32_t i = 0; i < n_in; i++)
        n->in[i] = in[i];
    for (uint32_t i = 0; i < n_out; i++) {
        n->out[i] = out[i];
        out[i]->producer = n;
        out[i]->producer_slot = i;
    }
    return n;
}

static void attr_int(bld *b, ir_node *n, uint32_t i, const char *name, int64_t v)
{
    n->attr[i].name = us_arena_strdup(&b->M->arena, name);
    n->attr[i].type = IR_ATTR_INT;
    n->attr[i].i = v;
}

static bool attr_ints(bld *b, ir_node *n, uint32_t i, const char *name, const int64_t *v,
                      size_t cnt)
{
    n->attr[i].name = us_arena_strdup(&b->M->arena, name);
    n->attr[i].type = IR_ATTR_INTS;
    n->attr[i].n = cnt;
    n->attr[i].ints = us_arena_array(&b->M->arena, cnt ? cnt : 1, sizeof(int64_t));
    if (!n->attr[i].ints || !n->attr[i].name)
        return false;
    memcpy(n->attr[i].ints, v, cnt * sizeof *v);
    return true;
}

/* an initializer of the merged main graph with nbytes of its own (filled by the caller
 * through *bytes_out) */
static ir_tensor *new_const_blob(bld *b, const char *a, const char *c, int dtype,
                                 const int64_t *dims, int rank, size_t nbytes, void **bytes_out)
{
    ir_tensor *t = new_tensor(b, b->g, a, c);
    if (!t)
        return NULL;
    void *blob = ir_model_alloc_blob(b->M, nbytes ? nbytes : 1);
    if (!blob)
        return NULL;
    if (nbytes >= ((size_t)4 << 20)) {
        /* a large stacked weight: ask for huge pages (a hint; 4 ResNet-50s stack 400 MB,
         * and 4 KiB page faults were a third of the merge time) */
        uintptr_t lo = ((uintptr_t)blob + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1);
        uintptr_t hi = ((uintptr_t)blob + nbytes) & ~(((uintptr_t)2 << 20) - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    t->flags |= IR_TF_CONST | IR_TF_INITIALIZER;
    t->dtype = dtype;
    t->has_decl_type = true;
    t->decl.rank = rank;
    for (int i = 0; i < rank; i++)
        t->decl.d[i] = ir_dim_lit(dims[i]);
    t->shape = t->decl;
    t->data = blob;
    t->nbytes = nbytes;
    if (strcmp(a, "usher") != 0) /* shape vectors and indices of the merge are not weights */
        b->wbytes += nbytes;
    *bytes_out = blob;
    return t;
}

/* the same holding a copy of data */
static ir_tensor *new_const(bld *b, const char *a, const char *c, int dtype, const int64_t *dims,
                            int rank, const void *data, size_t nbytes)
{
    void *blob;
    ir_tensor *t = new_const_blob(b, a, c, dtype, dims, rank, nbytes, &blob);
    if (t && nbytes)
        memcpy(blob, data, nbytes);
    return t;
}

static ir_tensor *const_i64(bld *b, const char *name, const int64_t *v, int n, bool scalar)
{
    int64_t d = n;
    return new_const(b, "usher", name, IR_DT_INT64, &d, scalar ? 0 : 1, v, (size_t)n * 8);
}

/* a merged weight for model k's constant t (each common weight once) */
static ir_tensor *emit_weight(bld *b, uint32_t k, ir_tensor *t)
{
    merge_weight *w = b->m->src[k].wmap[t->id];
    if (!w)
        return NULL;
    if (w->emitted)
        return w->emitted;
    ir_tensor *s = w->src, *e = new_tensor(b, b->g, b->m->src[w->model].label, s->name);
    if (!e)
        return NULL;
    e->flags |= IR_TF_CONST | IR_TF_INITIALIZER;
    e->dtype = s->dtype;
    e->has_decl_type = true;
    e->decl = s->decl;
    e->shape = s->decl;
    e->data = s->data;
    e->nbytes = s->nbytes;
    b->wbytes += s->nbytes;
    w->emitted = e;
    return e;
}

/* a source model's dims in the merged model: literals stay, named symbols become
 * "<label>_<name>" (kind stacked: "<name>", the models share the batch), others unknown */
static ir_shape remap_shape(bld *b, uint32_t k, const ir_shape *s)
{
    ir_shape r = *s;
    const ir_model *src = b->m->src[k].ir;
    for (int i = 0; i < s->rank; i++) {
        ir_dim d = s->d[i];
        if (ir_dim_is_lit(d))
            continue;
        char name[256];
        const ir_sym *sym = (uint32_t)d.sym < src->n_syms ? &src->syms[d.sym] : NULL;
        bool named = sym && sym->kind == IR_SYM_DECLARED && !sym->anon && d.a == 1 && d.c == 0;
        if (named && b->kind == USHER_MERGE_STACKED)
            snprintf(name, sizeof name, "%s", sym->name);
        else if (named)
            snprintf(name, sizeof name, "%s_%s", b->m->src[k].label, sym->name);
        else
            snprintf(name, sizeof name, "?%s:%d:%d", b->m->src[k].label, i, d.sym);
        int32_t id = ir_model_symbol(b->M, name);
        if (id < 0) {
            r.rank = IR_RANK_UNKNOWN;
            return r;
        }
        b->M->syms[id].anon = !named;
        r.d[i] = ir_dim_symbol(id);
    }
    return r;
}

static void copy_meta(bld *b, uint32_t k, ir_tensor *dst, const ir_tensor *src)
{
    dst->dtype = src->dtype;
    dst->decl_dtype = src->decl_dtype;
    dst->has_decl_type = src->has_decl_type;
    dst->decl = remap_shape(b, k, &src->decl);
}

/* ---- cloning (side-by-side, and the per-model parts of shared) -------------------------- */
static ir_tensor *slice_rows(bld *b, uint32_t k, ir_tensor *t);

static ir_tensor *lookup(bld *b, uint32_t k, ir_tensor *t)
{
    if (!t)
        return NULL;
    ir_tensor *r = b->map[k][t->id];
    if (r)
        return r;
    if ((t->flags & IR_TF_CONST) && b->m->src[k].wmap[t->id])
        return b->map[k][t->id] = emit_weight(b, k, t);
    if (b->kind == USHER_MERGE_SHARED)
        return b->map[k][t->id] = slice_rows(b, k, t);
    return NULL;
}

static ir_graph *clone_graph(bld *b, uint32_t k, ir_graph *sg, ir_graph *parent, ir_node *owner);

static int clone_node(bld *b, uint32_t k, ir_node *n, ir_graph *dst, const char *prefix)
{
    if (n->op == IR_OP_CONSTANT && n->n_out == 1 && n->out[0] &&
        b->m->src[k].wmap[n->out[0]->id])
        return lookup(b, k, n->out[0]) ? USHER_OK : nomem(b);
    char name[512];
    snprintf(name, sizeof name, "%s/%s", prefix, n->name);
    ir_node *c = ir_graph_add_node(dst, name, n->domain, n->op_type, n->n_in, n->n_out, n->n_attr);
    if (!c)
        return nomem(b);
    for (uint32_t i = 0; i < n->n_in; i++) {
        if (n->in[i] && !(c->in[i] = lookup(b, k, n->in[i])))
            return b->err->code < 0 ? b->err->code
                                    : us_err_set(b->err, USHER_ERR_INTERNAL,
                                                 "merge: %s: tensor '%s' has no merged value",
                                                 b->m->src[k].path, n->in[i]->name);
    }
    for (uint32_t a = 0; a < n->n_attr; a++) {
        c->attr[a] = n->attr[a];
        if (n->attr[a].type == IR_ATTR_GRAPH && n->attr[a].g) {
            if (!(c->attr[a].g = clone_graph(b, k, n->attr[a].g, dst, c)))
                return b->err->code < 0 ? b->err->code : nomem(b);
        } else if (n->attr[a].type == IR_ATTR_GRAPHS) {
            c->attr[a].graphs = us_arena_array(&b->M->arena, n->attr[a].n ? n->attr[a].n : 1,
                                               sizeof(ir_graph *));
            if (!c->attr[a].graphs)
                return nomem(b);
            for (size_t j = 0; j < n->attr[a].n; j++)
                if (!(c->attr[a].graphs[j] = clone_graph(b, k, n->attr[a].graphs[j], dst, c)))
                    return b->err->code < 0 ? b->err->code : nomem(b);
        }
    }
    for (uint32_t o = 0; o < n->n_out; o++) {
        ir_tensor *t = n->out[o];
        if (!t)
            continue;
        ir_tensor *ct = new_tensor(b, dst, prefix, t->name);
        if (!ct)
            return nomem(b);
        copy_meta(b, k, ct, t);
        ct->producer = c;
        ct->producer_slot = o;
        c->out[o] = ct;
        b->map[k][t->id] = ct;
    }
    return USHER_OK;
}

static ir_graph *clone_graph(bld *b, uint32_t k, ir_graph *sg, ir_graph *parent, ir_node *owner)
{
    const char *label = b->m->src[k].label;
    ir_graph *g = ir_graph_new(b->M, parent, owner, sg->name);
    if (!g)
        return NULL;
    for (uint32_t i = 0; i < sg->n_inputs; i++) {
        ir_tensor *t = new_tensor(b, g, label, sg->inputs[i]->name);
        if (!t || ir_graph_add_input(g, t) < 0)
            return NULL;
        copy_meta(b, k, t, sg->inputs[i]);
        b->map[k][sg->inputs[i]->id] = t;
    }
    for (uint32_t i = 0; i < sg->n_nodes; i++)
        if (clone_node(b, k, sg->nodes[i], g, label) < 0)
            return NULL;
    for (uint32_t i = 0; i < sg->n_outputs; i++) {
        ir_tensor *t = lookup(b, k, sg->outputs[i]);
        if (!t)
            return NULL;
        if (t->graph != g || (t->flags & IR_TF_CONST)) {
            /* an outer or hoisted value: a local Identity makes it this graph's output */
            ir_tensor *o = new_tensor(b, g, label, sg->outputs[i]->name);
            if (!o || !add_node(b, g, o->name, "Identity", 1, &t, 1, &o, 0))
                return NULL;
            copy_meta(b, k, o, sg->outputs[i]);
            t = o;
        } else {
            copy_meta(b, k, t, sg->outputs[i]);
        }
        if (ir_graph_add_output(g, t) < 0)
            return NULL;
    }
    return g;
}

static int add_inputs(bld *b, uint32_t k)
{
    ir_graph *sg = b->m->src[k].ir->main;
    for (uint32_t i = 0; i < sg->n_inputs; i++) {
        ir_tensor *t = new_tensor(b, b->g, b->m->src[k].label, sg->inputs[i]->name);
        if (!t || ir_graph_add_input(b->g, t) < 0)
            return nomem(b);
        copy_meta(b, k, t, sg->inputs[i]);
        b->map[k][sg->inputs[i]->id] = t;
    }
    return USHER_OK;
}

/* model k's outputs, named "<label>/<name>" (an Identity where the value has another name) */
static int add_outputs(bld *b, uint32_t k, ir_tensor *(*value)(bld *, uint32_t, uint32_t))
{
    ir_graph *sg = b->m->src[k].ir->main;
    const char *label = b->m->src[k].label;
    for (uint32_t i = 0; i < sg->n_outputs; i++) {
        ir_tensor *src = sg->outputs[i], *t = value(b, k, i);
        if (!t)
            return b->err->code < 0 ? b->err->code
                                    : us_err_set(b->err, USHER_ERR_INTERNAL,
                                                 "merge: output '%s' of %s has no value",
                                                 src->name, b->m->src[k].path);
        char want[512];
        snprintf(want, sizeof want, "%s/%s", label, src->name);
        if (strcmp(t->name, want) != 0 || (t->flags & (IR_TF_INPUT | IR_TF_CONST | IR_TF_OUTPUT))) {
            ir_tensor *o = new_tensor(b, b->g, label, src->name);
            if (!o || !add_node(b, b->g, want, "Identity", 1, &t, 1, &o, 0))
                return nomem(b);
            t = o;
        }
        copy_meta(b, k, t, src);
        if (ir_graph_add_output(b->g, t) < 0)
            return nomem(b);
    }
    return USHER_OK;
}

static ir_tensor *out_by_lookup(bld *b, uint32_t k, uint32_t i)
{
    return lookup(b, k, b->m->src[k].ir->main->outputs[i]);
}

static int build_side_by_side(bld *b)
{
    int rc;
    for (uint32_t k = 0; k < K(b); k++)
        if ((rc = add_inputs(b, k)) < 0)
            return rc;
    for (uint32_t k = 0; k < K(b); k++) {
        merge_src *s = &b->m->src[k];
        for (uint32_t i = 0; i < s->n_nodes; i++)
            if ((rc = clone_node(b, k, s->nodes[i], b->g, s->label)) < 0)
                return rc;
    }
    for (uint32_t k = 0; k < K(b); k++)
        if ((rc = add_outputs(b, k, out_by_lookup)) < 0)
            return rc;
    snprintf(b->m->why + strlen(b->m->why), sizeof b->m->why - strlen(b->m->why),
             "%sside-by-side: every model's operators kept, each common weight stored once",
             b->m->why[0] ? "; " : "");
    return USHER_OK;
}

/* ---- alignment ------------------------------------------------------------------------------ */
static int input_index(const ir_graph *g, const ir_tensor *t)
{
    for (uint32_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == t)
            return (int)i;
    return -1;
}

static bool same_shape_lit(const ir_shape *a, const ir_shape *b)
{
    if (a->rank != b->rank || a->rank < 0)
        return false;
    for (int i = 0; i < a->rank; i++) {
        bool la = ir_dim_is_lit(a->d[i]), lb = ir_dim_is_lit(b->d[i]);
        if (la != lb || (la && a->d[i].c != b->d[i].c))
            return false;
    }
    return true;
}

/* node b of model k has the ref node a's op, attributes, shapes, and inputs that correspond */
static bool aligned(bld *b, uint32_t k, const ir_node *a, const ir_node *n)
{
    const merge_src *s0 = &b->m->src[0], *sk = &b->m->src[k];
    if (!n || n->op != a->op || n->n_in != a->n_in || n->n_out != a->n_out ||
        !merge_attrs_equal(a, n))
        return false;
    for (uint32_t o = 0; o < a->n_out; o++)
        if (!a->out[o] != !n->out[o] ||
            (a->out[o] && !same_shape_lit(&a->out[o]->shape, &n->out[o]->shape)))
            return false;
    for (uint32_t i = 0; i < a->n_in; i++) {
        const ir_tensor *x = a->in[i], *y = n->in[i];
        if (!x || !y) {
            if (x || y)
                return false;
            continue;
        }
        bool cx = x->flags & IR_TF_CONST, cy = y->flags & IR_TF_CONST;
        if (cx || cy) {
            if (!cx || !cy || !s0->wmap[x->id] || !sk->wmap[y->id] ||
                x->dtype != y->dtype || !same_shape_lit(&x->decl, &y->decl))
                return false;
            continue;
        }
        int ix = input_index(s0->ir->main, x), iy = input_index(sk->ir->main, y);
        if (ix >= 0 || iy >= 0) {
            if (ix != iy)
                return false;
            continue;
        }
        if (!x->producer || !y->producer || x->graph != s0->ir->main ||
            y->graph != sk->ir->main || sk->match[y->producer->id] != x->producer ||
            x->producer_slot != y->producer_slot)
            return false;
    }
    return true;
}

static bool has_subgraph(const ir_node *n)
{
    for (uint32_t a = 0; a < n->n_attr; a++)
        if (n->attr[a].type == IR_ATTR_GRAPH || n->attr[a].type == IR_ATTR_GRAPHS)
            return true;
    return false;
}

static int64_t attr_i(const ir_node *n, const char *name, int64_t def)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INT ? a->i : def;
}

/* the axes of n: attribute, or a constant int64 input at slot; false if given neither */
static bool node_axes(const ir_node *n, uint32_t slot, int64_t *ax, size_t *cnt)
{
    const ir_attr *a = ir_node_attr(n, "axes");
    if (a && a->type == IR_ATTR_INTS) {
        if (a->n > IR_MAX_RANK)
            return false;
        memcpy(ax, a->ints, a->n * sizeof *ax);
        *cnt = a->n;
        return true;
    }
    if (slot < n->n_in && n->in[slot] && (n->in[slot]->flags & IR_TF_CONST) &&
        n->in[slot]->dtype == IR_DT_INT64 && n->in[slot]->data &&
        n->in[slot]->nbytes <= 8 * IR_MAX_RANK) {
        *cnt = (size_t)(n->in[slot]->nbytes / 8);
        memcpy(ax, n->in[slot]->data, *cnt * 8);
        return true;
    }
    return false;
}

/* ---- kind shared ------------------------------------------------------------------------------ */
static bool batch_major(const bld *b, const ir_tensor *t)
{
    return t && t->shape.rank >= 1 && t->shape.d[0].sym == b->batch_sym && b->batch_sym >= 0 &&
           t->shape.d[0].a == 1 && t->shape.d[0].c == 0;
}

static bool concat_input_ok(bld *b, int i)
{
    const ir_tensor *r = b->m->src[0].ir->main->inputs[i];
    if (!batch_major(b, r))
        return false;
    for (uint32_t k = 1; k < K(b); k++) {
        const ir_tensor *t = b->m->src[k].ir->main->inputs[i];
        if (t->dtype != r->dtype || t->shape.rank != r->shape.rank || ir_dim_is_lit(t->shape.d[0]))
            return false;
        /* the other dims: equal literals, or symbolic in both (then every run must give
         * all members the same size there, as within any one batch) */
        for (int d = 1; d < r->shape.rank; d++) {
            bool lr = ir_dim_is_lit(r->shape.d[d]), lt = ir_dim_is_lit(t->shape.d[d]);
            if (lr != lt || (lr && r->shape.d[d].c != t->shape.d[d].c))
                return false;
        }
    }
    return true;
}

/* does ref node a act on every row of axis 0 separately (so it may run on concatenated rows)? */
static bool rowwise(bld *b, const ir_node *a)
{
    int r = a->out[0] ? a->out[0]->shape.rank : -1;
    if (r < 1)
        return false;
    for (uint32_t o = 0; o < a->n_out; o++)
        if (a->out[o] && !batch_major(b, a->out[o]))
            return false;
    int64_t ax[IR_MAX_RANK];
    size_t n = 0;
    switch (ir_op_kind_of(a->op)) {
    case IR_KIND_ELEMWISE:
        for (uint32_t i = 0; i < a->n_in; i++)
            if (a->in[i] && !(a->in[i]->flags & IR_TF_CONST) &&
                (!batch_major(b, a->in[i]) || a->in[i]->shape.rank != r))
                return false;
        return true;
    case IR_KIND_CONV:
    case IR_KIND_POOL:
        return a->op != IR_OP_UNKNOWN;
    case IR_KIND_NORM:
        if (a->op == IR_OP_BATCHNORMALIZATION)
            return a->n_out == 1;
        if (a->op == IR_OP_INSTANCENORMALIZATION || a->op == IR_OP_GROUPNORMALIZATION ||
            a->op == IR_OP_LRN)
            return true; /* per sample */
        if (a->op == IR_OP_LAYERNORMALIZATION || a->op == IR_OP_LPNORMALIZATION) {
            int64_t axis = attr_i(a, "axis", -1);
            return axis != 0 && axis != -(int64_t)a->in[0]->shape.rank;
        }
        return false;
    case IR_KIND_GEMM:
        if (a->op == IR_OP_GEMM)
            return attr_i(a, "transA", 0) == 0 && a->n_in >= 2 && a->in[1] &&
                   (a->in[1]->flags & IR_TF_CONST) &&
                   (a->n_in < 3 || !a->in[2] || (a->in[2]->flags & IR_TF_CONST));
        if (a->op == IR_OP_MATMUL)
            return a->in[0] && a->in[0]->shape.rank >= 2 && a->in[1] &&
                   (a->in[1]->flags & IR_TF_CONST);
        return false;
    case IR_KIND_SOFTMAX: {
        int64_t axis = attr_i(a, "axis", b->opset < 13 ? 1 : -1);
        return axis != 0 && axis != -r;
    }
    case IR_KIND_REDUCE:
        if (!node_axes(a, 1, ax, &n) || n == 0)
            return false;
        for (size_t i = 0; i < n; i++)
            if (ax[i] == 0 || ax[i] == -(int64_t)a->in[0]->shape.rank)
                return false;
        return true;
    case IR_KIND_VIEW:
        return a->op == IR_OP_FLATTEN || a->op == IR_OP_IDENTITY ||
               ((a->op == IR_OP_RESHAPE || a->op == IR_OP_SQUEEZE || a->op == IR_OP_UNSQUEEZE) &&
                (a->n_in < 2 || !a->in[1] || (a->in[1]->flags & IR_TF_CONST)));
    case IR_KIND_MOVE:
        if (a->op == IR_OP_TRANSPOSE) {
            const ir_attr *p = ir_node_attr(a, "perm");
            return p && p->n >= 1 && p->ints[0] == 0;
        }
        if (a->op == IR_OP_CONCAT) {
            int64_t axis = attr_i(a, "axis", 0);
            return axis != 0 && axis != -r;
        }
        if (a->op == IR_OP_GATHER) {
            /* a lookup table (a constant) indexed by batch-major indices: row by row */
            return attr_i(a, "axis", 0) == 0 && a->in[0] && (a->in[0]->flags & IR_TF_CONST) &&
                   a->in[1] && batch_major(b, a->in[1]);
        }
        if (a->op == IR_OP_RESIZE || a->op == IR_OP_UPSAMPLE) {
            /* a constant scale of 1 on axis 0 and no sizes: each row resized alone */
            uint32_t si = a->op == IR_OP_UPSAMPLE || b->opset < 11 ? 1 : 2;
            const ir_tensor *sc = si < a->n_in ? a->in[si] : NULL;
            float s0;
            if (!sc || !(sc->flags & IR_TF_CONST) || sc->dtype != IR_DT_FLOAT || !sc->data ||
                sc->nbytes < 4 || (si == 2 && a->n_in > 3 && a->in[3] && a->in[3]->nbytes))
                return false;
            memcpy(&s0, sc->data, 4);
            return s0 == 1.0f;
        }
        return false;
    default:
        return false;
    }
}

/* weights_may_differ: everything but the constant inputs' equality (case c) */
static bool shareable(bld *b, const ir_node *a, bool weights_may_differ)
{
    const merge_src *s0 = &b->m->src[0];
    if (has_subgraph(a) || a->op == IR_OP_CONSTANT || !rowwise(b, a))
        return false;
    for (uint32_t k = 1; k < K(b); k++) {
        const ir_node *n = b->rev[k][a->id];
        if (!aligned(b, k, a, n))
            return false;
        for (uint32_t i = 0; i < a->n_in && !weights_may_differ; i++)
            if (a->in[i] && (a->in[i]->flags & IR_TF_CONST) &&
                s0->wmap[a->in[i]->id] != b->m->src[k].wmap[n->in[i]->id])
                return false; /* the weight differs */
    }
    for (uint32_t i = 0; i < a->n_in; i++) {
        const ir_tensor *x = a->in[i];
        if (!x || (x->flags & IR_TF_CONST))
            continue;
        int ii = input_index(s0->ir->main, x);
        if (ii >= 0) {
            if (!concat_input_ok(b, ii))
                return false;
        } else if (!x->producer || !b->shared[x->producer->id] || !batch_major(b, x)) {
            return false;
        }
    }
    return true;
}

static ir_tensor *shared_in(bld *b, ir_tensor *x)
{
    if (b->smap[x->id])
        return b->smap[x->id];
    if (x->flags & IR_TF_CONST)
        return emit_weight(b, 0, x);
    int ii = input_index(b->m->src[0].ir->main, x);
    if (ii < 0)
        return NULL;
    /* the models' inputs concatenated on the batch axis */
    ir_tensor *parts[MERGE_MAX_MODELS], *o = new_tensor(b, b->g, "shared", x->name);
    if (!o)
        return NULL;
    for (uint32_t k = 0; k < K(b); k++)
        parts[k] = b->map[k][b->m->src[k].ir->main->inputs[ii]->id];
    ir_node *n = add_node(b, b->g, o->name, "Concat", K(b), parts, 1, &o, 1);
    if (!n)
        return NULL;
    attr_int(b, n, 0, "axis", 0);
    return b->smap[x->id] = o;
}

/* the offsets of each model's rows in the concatenated batch: off[k] .. off[k+1] */
static int row_offsets(bld *b, int ii)
{
    int64_t zero = 0, one = 1;
    ir_tensor *z = const_i64(b, "zero", &zero, 1, false), *u = const_i64(b, "one", &one, 1, false);
    if (!z || !u)
        return nomem(b);
    b->off[0] = z;
    for (uint32_t k = 0; k < K(b); k++) {
        const char *label = b->m->src[k].label;
        ir_tensor *in = b->map[k][b->m->src[k].ir->main->inputs[ii]->id];
        ir_tensor *shp = new_tensor(b, b->g, label, "usher_shape");
        ir_tensor *rows = new_tensor(b, b->g, label, "usher_rows");
        ir_tensor *end = new_tensor(b, b->g, label, "usher_row_end");
        if (!shp || !rows || !end)
            return nomem(b);
        ir_tensor *sin[3] = {shp, z, u}, *ain[2] = {b->off[k], rows};
        if (!add_node(b, b->g, shp->name, "Shape", 1, &in, 1, &shp, 0) ||
            !add_node(b, b->g, rows->name, "Slice", 3, sin, 1, &rows, 0) ||
            !add_node(b, b->g, end->name, "Add", 2, ain, 1, &end, 0))
            return nomem(b);
        b->off[k + 1] = end;
    }
    return USHER_OK;
}

/* model k's rows of the shared tensor behind model k's tensor t */
static ir_tensor *slice_rows(bld *b, uint32_t k, ir_tensor *t)
{
    const merge_src *sk = &b->m->src[k];
    if (!t->producer || t->graph != sk->ir->main)
        return NULL;
    ir_node *a = k == 0 ? t->producer : sk->match[t->producer->id];
    if (!a || !b->shared[a->id] || !a->out[t->producer_slot])
        return NULL;
    if (!b->off[1] && row_offsets(b, b->batch_input) < 0)
        return NULL;
    ir_tensor *s = b->smap[a->out[t->producer_slot]->id];
    ir_tensor *o = new_tensor(b, b->g, sk->label, t->name);
    int64_t zero = 0;
    ir_tensor *ax = const_i64(b, "axis0", &zero, 1, false);
    if (!s || !o || !ax)
        return NULL;
    copy_meta(b, k, o, t);
    ir_tensor *in[4] = {s, b->off[k], b->off[k + 1], ax};
    if (!add_node(b, b->g, o->name, "Slice", 4, in, 1, &o, 0))
        return NULL;
    return o;
}

/* ---- case (c): partly common weights ---------------------------------------------------
 * A Conv (group 1), Gemm (transA 0) or MatMul with a constant 2-D weight whose output
 * channels are in part equal in every model (weights and bias, within weight_rtol): the
 * common channels run once over the concatenated batch (the super-operator), each model's
 * own channels run on its rows, and each model's output is the two concatenated on the
 * channel axis (and put back in the original channel order with one Gather). */
typedef struct partial {
    uint32_t n_ch;        /* output channels */
    uint32_t n_common;
    uint32_t *common, *own; /* channel indices, ascending */
    int axis;             /* channel axis of the output: 1 (Conv) or -1 */
    bool rows;            /* the weight's channels are its rows (Conv, Gemm transB) */
    ir_tensor *super_out; /* the super-operator's output over all rows */
} partial;

/* element i of channel c of weight t ([M, ...] rows or [K, M] columns) */
static bool chan_equal(const ir_tensor *x, const ir_tensor *y, uint32_t c, const partial *p,
                       double rtol)
{
    uint64_t n = x->nbytes / 4;
    uint64_t per = n / p->n_ch;
    for (uint64_t i = 0; i < per; i++) {
        uint64_t e = p->rows ? (uint64_t)c * per + i : i * p->n_ch + c;
        float u, v;
        memcpy(&u, x->data + 4 * e, 4);
        memcpy(&v, y->data + 4 * e, 4);
        if (u != v && !(fabs((double)u - (double)v) <= rtol * fmax(fabs((double)u), fabs((double)v))))
            return false;
    }
    return true;
}

static int find_partial(bld *b, ir_node *a)
{
    if (!(a->op == IR_OP_CONV || a->op == IR_OP_GEMM || a->op == IR_OP_MATMUL) ||
        a->n_in < 2 || !a->in[1] || !(a->in[1]->flags & IR_TF_CONST) ||
        a->in[1]->dtype != IR_DT_FLOAT || !a->in[1]->data || !shareable(b, a, true))
        return USHER_OK;
    if (a->op == IR_OP_CONV && attr_i(a, "group", 1) != 1)
        return USHER_OK;
    if ((a->op != IR_OP_CONV && a->in[1]->decl.rank != 2) || a->in[1]->decl.rank < 2)
        return USHER_OK;
    ir_tensor *bias = a->n_in > 2 ? a->in[2] : NULL;
    partial p = {0};
    p.rows = a->op == IR_OP_CONV || (a->op == IR_OP_GEMM && attr_i(a, "transB", 0));
    p.axis = a->op == IR_OP_CONV ? 1 : -1;
    int64_t M = p.rows ? a->in[1]->decl.d[0].c : a->in[1]->decl.d[1].c;
    if (M < 2 || M > (1 << 20))
        return USHER_OK;
    if (bias && (!(bias->flags & IR_TF_CONST) || bias->dtype != IR_DT_FLOAT || !bias->data ||
                 bias->nbytes != (uint64_t)M * 4))
        return USHER_OK; /* a bias other than one value per channel: not split */
    p.n_ch = (uint32_t)M;
    uint32_t *idx = us_mallocarray(2 * p.n_ch, sizeof *idx);
    if (!idx)
        return nomem(b);
    uint32_t nc = 0, no = 0;
    double rtol = b->m->p.weight_rtol;
    for (uint32_t c = 0; c < p.n_ch; c++) {
        bool eq = true;
        for (uint32_t k = 1; k < K(b) && eq; k++) {
            ir_node *n = b->rev[k][a->id];
            eq = chan_equal(a->in[1], n->in[1], c, &p, rtol);
            if (eq && bias) {
                partial one = {.n_ch = p.n_ch, .rows = true};
                eq = chan_equal(bias, n->in[2], c, &one, rtol);
            }
        }
        if (eq)
            idx[nc++] = c;
        else
            idx[p.n_ch + no++] = c;
    }
    if (nc == 0 || no == 0) { /* nothing common, or all (then the weight itself is) */
        us_free(idx);
        return USHER_OK;
    }
    partial *q = us_arena_alloc(&b->M->arena, sizeof *q);
    uint32_t *ch = q ? us_arena_array(&b->M->arena, p.n_ch, sizeof *ch) : NULL;
    if (!ch) {
        us_free(idx);
        return nomem(b);
    }
    memcpy(ch, idx, nc * sizeof *ch);
    memcpy(ch + nc, idx + p.n_ch, no * sizeof *ch);
    us_free(idx);
    *q = p;
    q->n_common = nc;
    q->common = ch;
    q->own = ch + nc;
    b->partial[a->id] = q;
    b->n_partial++;
    return USHER_OK;
}

/* the channels chans[0..n) of model tensor t (a weight, or a bias when is_bias) */
static ir_tensor *pick_channels(bld *b, const partial *p, const ir_tensor *t, bool is_bias,
                                const uint32_t *chans, uint32_t n, const char *label)
{
    uint64_t per = t->nbytes / 4 / p->n_ch;
    bool rows = is_bias || p->rows;
    int64_t dims[IR_MAX_RANK];
    for (int i = 0; i < t->decl.rank; i++)
        dims[i] = t->decl.d[i].c;
    if (is_bias) /* [M] or [1, M]: one value per channel, in the last dim */
        dims[t->decl.rank - 1] = n;
    else if (rows)
        dims[0] = n;
    else
        dims[1] = n;
    void *blob;
    ir_tensor *o = new_const_blob(b, label, t->name, IR_DT_FLOAT, dims, t->decl.rank,
                                  (size_t)(per * n * 4), &blob);
    if (!o)
        return NULL;
    float *d = blob;
    for (uint32_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < per; i++) {
            uint64_t src = rows ? (uint64_t)chans[j] * per + i : i * p->n_ch + chans[j];
            uint64_t dst = rows ? (uint64_t)j * per + i : i * n + j;
            memcpy(&d[dst], t->data + 4 * src, 4);
        }
    return o;
}

/* node a (or its counterpart n of a model) over input x with the channels given */
static ir_tensor *partial_op(bld *b, const ir_node *n, ir_tensor *x, const partial *p,
                             const uint32_t *chans, uint32_t cnt, const char *label,
                             const char *what)
{
    ir_tensor *w = pick_channels(b, p, n->in[1], false, chans, cnt, label);
    ir_tensor *bi = n->n_in > 2 && n->in[2] ? pick_channels(b, p, n->in[2], true, chans, cnt, label)
                                            : NULL;
    char name[400];
    snprintf(name, sizeof name, "%s.%s", n->out[0]->name, what);
    ir_tensor *o = new_tensor(b, b->g, label, name);
    if (!w || !o || (n->n_in > 2 && n->in[2] && !bi))
        return NULL;
    ir_tensor *in[3] = {x, w, bi};
    char nn[512];
    snprintf(nn, sizeof nn, "%s/%s.%s", label, n->name, what);
    ir_node *c = add_node(b, b->g, nn, n->op_type, n->n_in > 2 && n->in[2] ? 3 : 2, in, 1, &o,
                          n->n_attr);
    if (!c)
        return NULL;
    for (uint32_t i = 0; i < n->n_attr; i++)
        c->attr[i] = n->attr[i];
    o->dtype = n->out[0]->dtype;
    return o;
}

/* model k's node n, whose ref node is partial: its own channels on its rows, the common
 * ones from the super-operator, concatenated and reordered */
static int emit_partial_model(bld *b, uint32_t k, ir_node *n, const partial *p)
{
    const char *label = b->m->src[k].label;
    ir_tensor *x = lookup(b, k, n->in[0]);
    if (!x || (!b->off[1] && row_offsets(b, b->batch_input) < 0))
        return nomem(b);
    ir_tensor *own = partial_op(b, n, x, p, p->own, p->n_ch - p->n_common, label, "own");
    int64_t zero = 0;
    ir_tensor *ax = const_i64(b, "axis0", &zero, 1, false);
    ir_tensor *com = new_tensor(b, b->g, label, "usher_common_rows");
    ir_tensor *sin[4] = {p->super_out, b->off[k], b->off[k + 1], ax};
    if (!own || !ax || !com || !add_node(b, b->g, com->name, "Slice", 4, sin, 1, &com, 0))
        return nomem(b);
    bool in_order = true;
    for (uint32_t i = 0; i < p->n_common && in_order; i++)
        in_order = p->common[i] == i;
    ir_tensor *out = new_tensor(b, b->g, label, n->out[0]->name);
    ir_tensor *cat = in_order ? out : new_tensor(b, b->g, label, "usher_channels");
    ir_tensor *cin[2] = {com, own};
    ir_node *c = out && cat ? add_node(b, b->g, cat->name, "Concat", 2, cin, 1, &cat, 1) : NULL;
    if (!c)
        return nomem(b);
    attr_int(b, c, 0, "axis", p->axis);
    if (!in_order) {
        int64_t *pos = us_mallocarray(p->n_ch, sizeof *pos);
        if (!pos)
            return nomem(b);
        for (uint32_t i = 0; i < p->n_common; i++)
            pos[p->common[i]] = i;
        for (uint32_t i = 0; i < p->n_ch - p->n_common; i++)
            pos[p->own[i]] = p->n_common + i;
        ir_tensor *perm = const_i64(b, "channel_order", pos, (int)p->n_ch, false);
        us_free(pos);
        ir_tensor *gin[2] = {cat, perm};
        ir_node *gn = perm ? add_node(b, b->g, out->name, "Gather", 2, gin, 1, &out, 1) : NULL;
        if (!gn)
            return nomem(b);
        attr_int(b, gn, 0, "axis", p->axis);
    }
    copy_meta(b, k, out, n->out[0]);
    b->map[k][n->out[0]->id] = out;
    return USHER_OK;
}

static int build_shared(bld *b)
{
    merge_src *s0 = &b->m->src[0];
    ir_graph *g0 = s0->ir->main;
    int rc, ii = -1;
    b->batch_sym = -1;
    for (uint32_t i = 0; i < g0->n_inputs && ii < 0; i++) {
        ir_tensor *t = g0->inputs[i];
        if (t->shape.rank >= 1 && !ir_dim_is_lit(t->shape.d[0])) {
            b->batch_sym = t->shape.d[0].sym;
            if (concat_input_ok(b, (int)i))
                ii = (int)i;
        }
    }
    if (ii < 0)
        return refuse(b, "shared: no input has a symbolic batch axis 0 and the same other "
                         "dims (literal or symbolic) in every model, so the batches cannot be "
                         "concatenated");
    if (b->opset < 11)
        return refuse(b, "shared: opset %lld is older than 11 (Slice with tensor inputs)",
                      (long long)b->opset);
    for (uint32_t i = 0; i < s0->n_nodes; i++) {
        ir_node *a = s0->nodes[i];
        b->shared[a->id] = shareable(b, a, false);
        b->n_shared += b->shared[a->id];
        if (!b->shared[a->id] && (rc = find_partial(b, a)) < 0)
            return rc;
    }
    if (!b->n_shared && !b->n_partial)
        return refuse(b, "shared: no operator has the same weights and inputs in every model "
                         "and acts row by row on the batch");
    for (uint32_t k = 0; k < K(b); k++)
        if ((rc = add_inputs(b, k)) < 0)
            return rc;
    b->batch_input = ii; /* row offsets: made when the first model-specific part needs them */
    for (uint32_t i = 0; i < s0->n_nodes; i++) {
        ir_node *a = s0->nodes[i];
        partial *p = b->partial[a->id];
        if (p) { /* case (c): the common channels once, over every model's rows */
            ir_tensor *x = shared_in(b, a->in[0]);
            if (!x || !(p->super_out = partial_op(b, a, x, p, p->common, p->n_common, "shared",
                                                  "common")))
                return nomem(b);
            continue;
        }
        if (!b->shared[a->id])
            continue;
        char name[512];
        snprintf(name, sizeof name, "shared/%s", a->name);
        ir_node *c = ir_graph_add_node(b->g, name, "", a->op_type, a->n_in, a->n_out, a->n_attr);
        if (!c)
            return nomem(b);
        for (uint32_t j = 0; j < a->n_in; j++)
            if (a->in[j] && !(c->in[j] = shared_in(b, a->in[j])))
                return nomem(b);
        for (uint32_t j = 0; j < a->n_attr; j++)
            c->attr[j] = a->attr[j];
        for (uint32_t o = 0; o < a->n_out; o++) {
            if (!a->out[o])
                continue;
            ir_tensor *t = new_tensor(b, b->g, "shared", a->out[o]->name);
            if (!t)
                return nomem(b);
            t->dtype = a->out[o]->dtype;
            t->producer = c;
            t->producer_slot = o;
            c->out[o] = t;
            b->smap[a->out[o]->id] = t;
        }
    }
    for (uint32_t k = 0; k < K(b); k++) {
        merge_src *s = &b->m->src[k];
        for (uint32_t i = 0; i < s->n_nodes; i++) {
            ir_node *n = s->nodes[i], *a = k == 0 ? n : s->match[n->id];
            if (a && b->shared[a->id])
                continue;
            if (a && b->partial[a->id]) {
                if ((rc = emit_partial_model(b, k, n, b->partial[a->id])) < 0)
                    return rc;
                continue;
            }
            if ((rc = clone_node(b, k, n, b->g, s->label)) < 0)
                return rc;
        }
    }
    for (uint32_t k = 0; k < K(b); k++)
        if ((rc = add_outputs(b, k, out_by_lookup)) < 0)
            return rc;
    uint32_t n_ops = 0;
    for (uint32_t i = 0; i < s0->n_nodes; i++)
        n_ops += s0->nodes[i]->op != IR_OP_CONSTANT;
    char partial_txt[200] = "";
    if (b->n_partial)
        snprintf(partial_txt, sizeof partial_txt,
                 "; %u more have partly common weights (case c: their common output channels "
                 "run once, each model's own channels on its rows)",
                 b->n_partial);
    snprintf(b->m->why, sizeof b->m->why,
             "shared: %u of %u operators have the same weights in all %u models and run once "
             "over the concatenated batch%s; the rest run per model on their rows",
             b->n_shared, n_ops, K(b), partial_txt);
    return USHER_OK;
}

/* ---- kind stacked ------------------------------------------------------------------------------ */
static ir_node *model_node(bld *b, uint32_t k, ir_node *a) { return k ? b->rev[k][a->id] : a; }

/* is the constant at slot j the same weight in every model? */
static bool common_const(bld *b, ir_node *a, uint32_t j)
{
    merge_weight *w = b->m->src[0].wmap[a->in[j]->id];
    for (uint32_t k = 1; k < K(b); k++)
        if (b->m->src[k].wmap[model_node(b, k, a)->in[j]->id] != w)
            return false;
    return true;
}

/* the K models' constants at slot j stacked: [K, 1 x (rank - r), dims...] */
static ir_tensor *stack_const(bld *b, ir_node *a, uint32_t j, int rank)
{
    ir_tensor *c = a->in[j];
    int r = c->decl.rank;
    if (r > rank)
        return NULL;
    int64_t dims[IR_MAX_RANK + 1];
    dims[0] = K(b);
    for (int i = 0; i < rank - r; i++)
        dims[1 + i] = 1;
    for (int i = 0; i < r; i++)
        dims[1 + rank - r + i] = c->decl.d[i].c;
    size_t nb = (size_t)c->nbytes, total = nb * K(b);
    for (uint32_t k = 0; k < K(b); k++) {
        ir_tensor *ck = model_node(b, k, a)->in[j];
        if (ck->nbytes != nb || !ck->data)
            return NULL;
    }
    void *blob;
    ir_tensor *t = new_const_blob(b, "stacked", c->name, c->dtype, dims, rank + 1, total, &blob);
    for (uint32_t k = 0; t && k < K(b); k++)
        memcpy((uint8_t *)blob + k * nb, model_node(b, k, a)->in[j]->data, nb);
    return t;
}

static ir_tensor *st_out(bld *b, ir_node *a, uint32_t o)
{
    ir_tensor *t = new_tensor(b, b->g, "stacked", a->out[o]->name);
    if (t) {
        t->dtype = a->out[o]->dtype;
        b->smap[a->out[o]->id] = t;
    }
    return t;
}

static ir_tensor *tmp(bld *b, ir_node *a, const char *what)
{
    char n[400];
    snprintf(n, sizeof n, "%s.%s", a->out[0]->name, what);
    return new_tensor(b, b->g, "stacked", n);
}

static ir_tensor *reshape(bld *b, ir_node *a, ir_tensor *x, const int64_t *dims, int n,
                          const char *what, ir_tensor *out)
{
    ir_tensor *shp = const_i64(b, "shape", dims, n, false);
    ir_tensor *o = out ? out : tmp(b, a, what);
    ir_tensor *in[2] = {x, shp};
    if (!shp || !o || !add_node(b, b->g, o->name, "Reshape", 2, in, 1, &o, 0))
        return NULL;
    return o;
}

static ir_tensor *transpose(bld *b, ir_node *a, ir_tensor *x, int rank, const char *what,
                            ir_tensor *out)
{
    int64_t perm[IR_MAX_RANK + 1];
    for (int i = 0; i < rank; i++)
        perm[i] = i;
    perm[0] = 1;
    perm[1] = 0;
    ir_tensor *o = out ? out : tmp(b, a, what);
    ir_node *n = o ? add_node(b, b->g, o->name, "Transpose", 1, &x, 1, &o, 1) : NULL;
    if (!n || !attr_ints(b, n, 0, "perm", perm, (size_t)rank))
        return NULL;
    return o;
}

/* a copy of node a over stacked inputs, with its attributes (axis-like ones shifted by the
 * caller through `fix`) */
static ir_node *st_clone(bld *b, ir_node *a, ir_tensor *const *in, uint32_t n_in, uint32_t extra)
{
    ir_tensor *outs[8];
    if (a->n_out > 8)
        return NULL;
    for (uint32_t o = 0; o < a->n_out; o++)
        if (!(outs[o] = st_out(b, a, o)))
            return NULL;
    char name[512];
    snprintf(name, sizeof name, "stacked/%s", a->name);
    ir_node *n = add_node(b, b->g, name, a->op_type, n_in, in, a->n_out, outs, a->n_attr + extra);
    if (!n)
        return NULL;
    for (uint32_t i = 0; i < a->n_attr; i++)
        n->attr[i] = a->attr[i];
    n->n_attr = a->n_attr;
    return n;
}

/* replace (or add) an integer attribute of a clone */
static void set_int(bld *b, ir_node *n, const char *name, int64_t v)
{
    for (uint32_t i = 0; i < n->n_attr; i++)
        if (strcmp(n->attr[i].name, name) == 0) {
            attr_int(b, n, i, name, v);
            return;
        }
    attr_int(b, n, n->n_attr++, name, v);
}

static bool set_ints(bld *b, ir_node *n, const char *name, const int64_t *v, size_t cnt)
{
    for (uint32_t i = 0; i < n->n_attr; i++)
        if (strcmp(n->attr[i].name, name) == 0)
            return attr_ints(b, n, i, name, v, cnt);
    return attr_ints(b, n, n->n_attr++, name, v, cnt);
}

static int64_t shift_axis(int64_t ax) { return ax >= 0 ? ax + 1 : ax; }

static bool lit_dims(const ir_shape *s, int from)
{
    for (int i = from; i < s->rank; i++)
        if (!ir_dim_is_lit(s->d[i]))
            return false;
    return s->rank >= 0;
}

/* Conv / BatchNormalization: the models' channels side by side, one grouped operator */
static int st_channel_fold(bld *b, ir_node *a, ir_tensor *x)
{
    const ir_shape *is = &a->in[0]->shape, *os = &a->out[0]->shape;
    if (is->rank < 3 || !lit_dims(is, 1) || !lit_dims(os, 1) || a->n_out != 1)
        return refuse(b, "stacked: %s '%s' needs literal channel and spatial dims", a->op_type,
                      a->name);
    int r = is->rank;
    int64_t C = is->d[1].c, M = os->d[1].c, dims[IR_MAX_RANK + 1];
    ir_tensor *t = transpose(b, a, x, r + 1, "nkc", NULL);
    dims[0] = 0;
    dims[1] = (int64_t)K(b) * C;
    for (int i = 2; i < r; i++)
        dims[i] = is->d[i].c;
    ir_tensor *f = t ? reshape(b, a, t, dims, r, "fold", NULL) : NULL;
    if (!f)
        return nomem(b);
    ir_tensor *in[5] = {f};
    for (uint32_t j = 1; j < a->n_in; j++) {
        if (!a->in[j]) {
            in[j] = NULL;
            continue;
        }
        if (!(a->in[j]->flags & IR_TF_CONST))
            return refuse(b, "stacked: %s '%s' input %u is not a constant", a->op_type, a->name, j);
        /* concatenated on axis 0: the stacked [K, d0, ...] read as [K*d0, ...] */
        ir_tensor *s = stack_const(b, a, j, a->in[j]->decl.rank);
        if (!s)
            return nomem(b);
        s->decl.rank -= 1;
        for (int d = 0; d < s->decl.rank; d++)
            s->decl.d[d] = d ? s->decl.d[d + 1] : ir_dim_lit(s->decl.d[0].c * s->decl.d[1].c);
        s->shape = s->decl;
        in[j] = s;
    }
    ir_tensor *y = tmp(b, a, "grouped");
    char name[512];
    snprintf(name, sizeof name, "stacked/%s", a->name);
    ir_node *n = y ? add_node(b, b->g, name, a->op_type, a->n_in, in, 1, &y, a->n_attr + 1) : NULL;
    if (!n)
        return nomem(b);
    for (uint32_t i = 0; i < a->n_attr; i++)
        n->attr[i] = a->attr[i];
    n->n_attr = a->n_attr;
    if (a->op == IR_OP_CONV)
        set_int(b, n, "group", attr_i(a, "group", 1) * K(b));
    dims[0] = 0;
    dims[1] = K(b);
    dims[2] = M;
    for (int i = 2; i < r; i++)
        dims[i + 1] = os->d[i].c;
    ir_tensor *u = reshape(b, a, y, dims, r + 1, "unfold", NULL);
    ir_tensor *o = st_out(b, a, 0);
    if (!u || !o || !transpose(b, a, u, r + 1, "knc", o))
        return nomem(b);
    return USHER_OK;
}

/* pooling: the models' batches folded into one */
static int st_batch_fold(bld *b, ir_node *a, ir_tensor *x)
{
    const ir_shape *is = &a->in[0]->shape, *os = &a->out[0]->shape;
    if (is->rank < 3 || !lit_dims(is, 1) || !lit_dims(os, 1) || a->n_out != 1)
        return refuse(b, "stacked: %s '%s' needs literal channel and spatial dims", a->op_type,
                      a->name);
    int64_t dims[IR_MAX_RANK + 1];
    dims[0] = -1;
    for (int i = 1; i < is->rank; i++)
        dims[i] = is->d[i].c;
    ir_tensor *f = reshape(b, a, x, dims, is->rank, "fold", NULL);
    ir_tensor *y = tmp(b, a, "pooled");
    char name[512];
    snprintf(name, sizeof name, "stacked/%s", a->name);
    ir_node *n = f && y ? add_node(b, b->g, name, a->op_type, 1, &f, 1, &y, a->n_attr) : NULL;
    if (!n)
        return nomem(b);
    for (uint32_t i = 0; i < a->n_attr; i++)
        n->attr[i] = a->attr[i];
    dims[0] = K(b);
    dims[1] = -1;
    for (int i = 1; i < os->rank; i++)
        dims[i + 1] = os->d[i].c;
    ir_tensor *o = st_out(b, a, 0);
    if (!o || !reshape(b, a, y, dims, os->rank + 1, "unfold", o))
        return nomem(b);
    return USHER_OK;
}

/* float32 [K, Kd, M] from the models' Gemm B (transB, alpha folded in) */
static ir_tensor *gemm_weight(bld *b, ir_node *a)
{
    ir_tensor *w = a->in[1];
    if (w->dtype != IR_DT_FLOAT || w->decl.rank != 2)
        return NULL;
    bool tb = attr_i(a, "transB", 0) != 0;
    const ir_attr *al = ir_node_attr(a, "alpha");
    float alpha = al && al->type == IR_ATTR_FLOAT ? al->f : 1.0f;
    int64_t r0 = w->decl.d[0].c, r1 = w->decl.d[1].c, kd = tb ? r1 : r0, mm = tb ? r0 : r1;
    size_t per = (size_t)(kd * mm), total = per * K(b) * 4;
    int64_t dims[3] = {K(b), kd, mm};
    void *blob;
    ir_tensor *t = new_const_blob(b, "stacked", w->name, IR_DT_FLOAT, dims, 3, total, &blob);
    float *buf = blob;
    if (!t)
        return NULL;
    for (uint32_t k = 0; k < K(b); k++) {
        const uint8_t *src = model_node(b, k, a)->in[1]->data;
        float *dst = buf + k * per;
        for (int64_t i = 0; i < kd; i++)
            for (int64_t j = 0; j < mm; j++) {
                float v;
                memcpy(&v, src + 4 * (size_t)(tb ? j * r1 + i : i * r1 + j), 4);
                dst[i * mm + j] = alpha * v;
            }
    }
    return t;
}

static ir_tensor *gemm_bias(bld *b, ir_node *a, int64_t mm)
{
    ir_tensor *c = a->in[2];
    uint64_t numel = 1;
    if (c->dtype != IR_DT_FLOAT || !ir_shape_numel(&c->decl, &numel) ||
        !(numel == 1 || numel == (uint64_t)mm))
        return NULL;
    const ir_attr *be = ir_node_attr(a, "beta");
    float beta = be && be->type == IR_ATTR_FLOAT ? be->f : 1.0f;
    size_t total = (size_t)mm * K(b) * 4;
    int64_t dims[3] = {K(b), 1, mm};
    void *blob;
    ir_tensor *t = new_const_blob(b, "stacked", c->name, IR_DT_FLOAT, dims, 3, total, &blob);
    float *buf = blob;
    if (!t)
        return NULL;
    for (uint32_t k = 0; k < K(b); k++) {
        const uint8_t *src = model_node(b, k, a)->in[2]->data;
        for (int64_t j = 0; j < mm; j++) {
            float v;
            memcpy(&v, src + 4 * (numel == 1 ? 0 : (size_t)j), 4);
            buf[k * mm + j] = beta * v;
        }
    }
    return t;
}

static int st_gemm(bld *b, ir_node *a, ir_tensor *x)
{
    if (attr_i(a, "transA", 0) || !a->in[1] || !(a->in[1]->flags & IR_TF_CONST) ||
        (a->n_in > 2 && a->in[2] && !(a->in[2]->flags & IR_TF_CONST)))
        return refuse(b, "stacked: Gemm '%s' needs transA = 0 and constant B and C", a->name);
    ir_tensor *w = gemm_weight(b, a);
    if (!w)
        return refuse(b, "stacked: Gemm '%s' needs a float32 2-D B", a->name);
    bool bias = a->n_in > 2 && a->in[2];
    ir_tensor *y = bias ? tmp(b, a, "matmul") : st_out(b, a, 0), *in[2] = {x, w};
    char name[512];
    snprintf(name, sizeof name, "stacked/%s", a->name);
    if (!y || !add_node(b, b->g, name, "MatMul", 2, in, 1, &y, 0))
        return nomem(b);
    if (!bias)
        return USHER_OK;
    ir_tensor *c = gemm_bias(b, a, w->decl.d[2].c);
    if (!c)
        return refuse(b, "stacked: Gemm '%s' needs a float32 C of 1 or N columns", a->name);
    ir_tensor *o = st_out(b, a, 0), *ain[2] = {y, c};
    snprintf(name, sizeof name, "stacked/%s.bias", a->name);
    if (!o || !add_node(b, b->g, name, "Add", 2, ain, 1, &o, 0))
        return nomem(b);
    return USHER_OK;
}

static int st_node(bld *b, ir_node *a)
{
    if (has_subgraph(a))
        return refuse(b, "stacked: %s '%s' holds a subgraph", a->op_type, a->name);
    int R = a->out[0] ? a->out[0]->shape.rank : -1;
    ir_tensor *in[16];
    if (a->n_in > 16 || R < 0)
        return refuse(b, "stacked: %s '%s' has an unknown output rank or too many inputs",
                      a->op_type, a->name);
    /* the first input must be a stacked activation for every form below */
    for (uint32_t j = 0; j < a->n_in; j++) {
        ir_tensor *x = a->in[j];
        in[j] = NULL;
        if (!x)
            continue;
        if (!(x->flags & IR_TF_CONST)) {
            if (!(in[j] = b->smap[x->id]))
                return refuse(b, "stacked: input '%s' of '%s' has no stacked value", x->name,
                              a->name);
        }
    }
    if (!in[0])
        return refuse(b, "stacked: %s '%s': its first input is a constant", a->op_type, a->name);
    int64_t ax[IR_MAX_RANK];
    size_t nax = 0;
    switch (a->op) {
    case IR_OP_CONV:
    case IR_OP_BATCHNORMALIZATION:
        return st_channel_fold(b, a, in[0]);
    case IR_OP_MAXPOOL:
    case IR_OP_AVERAGEPOOL:
    case IR_OP_GLOBALAVERAGEPOOL:
    case IR_OP_GLOBALMAXPOOL:
        return st_batch_fold(b, a, in[0]);
    case IR_OP_GEMM:
        return st_gemm(b, a, in[0]);
    case IR_OP_MATMUL:
        if (a->in[0]->shape.rank < 2 || !a->in[1] || a->in[1]->shape.rank < 2)
            return refuse(b, "stacked: MatMul '%s' with a 1-D operand", a->name);
        if (!in[1] && !(in[1] = stack_const(b, a, 1, a->in[0]->shape.rank)))
            return refuse(b, "stacked: MatMul '%s': weight rank over the input's", a->name);
        return st_clone(b, a, in, 2, 0) ? USHER_OK : nomem(b);
    case IR_OP_FLATTEN: {
        int64_t axis = attr_i(a, "axis", 1);
        const ir_shape *os = &a->out[0]->shape, *is = &a->in[0]->shape;
        int64_t dims[3] = {K(b), 0, -1};
        if (ir_dim_is_lit(os->d[0]))
            dims[1] = os->d[0].c;
        else if (!(axis == 1 && ir_dim_eq(os->d[0], is->d[0])))
            return refuse(b, "stacked: Flatten '%s' with a symbolic leading size", a->name);
        if (ir_dim_is_lit(os->d[1]))
            dims[2] = os->d[1].c;
        ir_tensor *o = st_out(b, a, 0);
        return o && reshape(b, a, in[0], dims, 3, "", o) ? USHER_OK : nomem(b);
    }
    case IR_OP_RESHAPE: {
        const ir_shape *os = &a->out[0]->shape, *is = &a->in[0]->shape;
        int64_t dims[IR_MAX_RANK + 1];
        int free_dims = 0;
        dims[0] = K(b);
        for (int i = 0; i < os->rank; i++) {
            if (ir_dim_is_lit(os->d[i]))
                dims[i + 1] = os->d[i].c;
            else if (i == 0 && is->rank > 0 && ir_dim_eq(os->d[0], is->d[0]))
                dims[i + 1] = 0;
            else
                dims[i + 1] = -1, free_dims++;
        }
        if (free_dims > 1 || os->rank < 0)
            return refuse(b, "stacked: Reshape '%s' to a shape with symbolic dims", a->name);
        ir_tensor *o = st_out(b, a, 0);
        return o && reshape(b, a, in[0], dims, os->rank + 1, "", o) ? USHER_OK : nomem(b);
    }
    case IR_OP_TRANSPOSE: {
        const ir_attr *p = ir_node_attr(a, "perm");
        if (!p || p->n > IR_MAX_RANK)
            return refuse(b, "stacked: Transpose '%s' without perm", a->name);
        int64_t perm[IR_MAX_RANK + 1] = {0};
        for (size_t i = 0; i < p->n; i++)
            perm[i + 1] = p->ints[i] + 1;
        ir_node *n = st_clone(b, a, in, 1, 0);
        return n && set_ints(b, n, "perm", perm, p->n + 1) ? USHER_OK : nomem(b);
    }
    case IR_OP_SOFTMAX:
    case IR_OP_LOGSOFTMAX:
    case IR_OP_CONCAT:
    case IR_OP_GATHER: {
        int64_t def = a->op == IR_OP_CONCAT || a->op == IR_OP_GATHER ? 0 : (b->opset < 13 ? 1 : -1);
        int64_t axis = attr_i(a, "axis", def);
        if (a->op == IR_OP_GATHER) {
            if (!a->in[1] || !(a->in[1]->flags & IR_TF_CONST) || !common_const(b, a, 1))
                return refuse(b, "stacked: Gather '%s' with indices that differ", a->name);
            if (!(in[1] = emit_weight(b, 0, a->in[1])))
                return nomem(b);
        }
        if (a->op == IR_OP_CONCAT)
            for (uint32_t j = 0; j < a->n_in; j++)
                if (!in[j] && a->in[j] && !(in[j] = stack_const(b, a, j, R)))
                    return nomem(b);
        ir_node *n = st_clone(b, a, in, a->n_in, 1);
        if (!n)
            return nomem(b);
        set_int(b, n, "axis", shift_axis(axis));
        return USHER_OK;
    }
    case IR_OP_SQUEEZE:
    case IR_OP_UNSQUEEZE:
    case IR_OP_REDUCEMEAN:
    case IR_OP_REDUCESUM:
    case IR_OP_REDUCEMAX:
    case IR_OP_REDUCEMIN:
    case IR_OP_REDUCEPROD:
    case IR_OP_REDUCEL2:
    case IR_OP_REDUCESUMSQUARE: {
        if (!node_axes(a, 1, ax, &nax) || nax == 0)
            return refuse(b, "stacked: %s '%s' over all axes", a->op_type, a->name);
        for (size_t i = 0; i < nax; i++)
            ax[i] = shift_axis(ax[i]);
        bool as_input = !ir_node_attr(a, "axes");
        if (as_input && !(in[1] = const_i64(b, "axes", ax, (int)nax, false)))
            return nomem(b);
        ir_node *n = st_clone(b, a, in, a->n_in, 0);
        if (!n)
            return nomem(b);
        return as_input || set_ints(b, n, "axes", ax, nax) ? USHER_OK : nomem(b);
    }
    default:
        break;
    }
    if (ir_op_kind_of(a->op) == IR_KIND_ELEMWISE || a->op == IR_OP_IDENTITY) {
        for (uint32_t j = 0; j < a->n_in; j++) {
            ir_tensor *x = a->in[j];
            if (!x)
                continue;
            if (!(x->flags & IR_TF_CONST)) {
                if (x->shape.rank != R)
                    return refuse(b, "stacked: %s '%s' broadcasts activations of different "
                                     "ranks",
                                  a->op_type, a->name);
                continue;
            }
            if (common_const(b, a, j)) {
                in[j] = emit_weight(b, 0, x);
            } else {
                if (a->op == IR_OP_CLIP)
                    return refuse(b, "stacked: Clip '%s' has different bounds per model", a->name);
                in[j] = stack_const(b, a, j, R);
            }
            if (!in[j])
                return nomem(b);
        }
        return st_clone(b, a, in, a->n_in, 0) ? USHER_OK : nomem(b);
    }
    return refuse(b, "stacked: operator %s (node '%s') has no grouped or batched form",
                  a->op_type, a->name);
}

static ir_tensor *stacked_out(bld *b, uint32_t k, uint32_t i)
{
    ir_tensor *s = b->smap[b->m->src[0].ir->main->outputs[i]->id];
    int64_t kk = k;
    ir_tensor *idx = const_i64(b, "model_index", &kk, 1, true);
    ir_tensor *o = new_tensor(b, b->g, b->m->src[k].label, b->m->src[k].ir->main->outputs[i]->name);
    ir_tensor *in[2] = {s, idx};
    ir_node *n = s && idx && o ? add_node(b, b->g, o->name, "Gather", 2, in, 1, &o, 1) : NULL;
    if (!n)
        return NULL;
    attr_int(b, n, 0, "axis", 0);
    return o;
}

static int build_stacked(bld *b)
{
    merge_src *s0 = &b->m->src[0];
    ir_graph *g0 = s0->ir->main;
    int rc;
    if (b->opset < 11)
        return refuse(b, "stacked: opset %lld is older than 11", (long long)b->opset);
    for (uint32_t k = 1; k < K(b); k++) {
        if (b->m->src[k].n_nodes != s0->n_nodes)
            return refuse(b, "stacked: %s has %u operators, %s %u", s0->label, s0->n_nodes,
                          b->m->src[k].label, b->m->src[k].n_nodes);
        for (uint32_t i = 0; i < g0->n_inputs; i++)
            if (!same_shape_lit(&g0->inputs[i]->shape,
                                &b->m->src[k].ir->main->inputs[i]->shape))
                return refuse(b, "stacked: input %u has different shapes in %s and %s", i,
                              s0->label, b->m->src[k].label);
        for (uint32_t i = 0; i < s0->n_nodes; i++) {
            ir_node *a = s0->nodes[i];
            if (a->op == IR_OP_CONSTANT)
                continue;
            if (!aligned(b, k, a, b->rev[k][a->id]))
                return refuse(b, "stacked: operator '%s' (%s) of %s has no counterpart of the "
                                 "same form in %s",
                              a->name, a->op_type, s0->label, b->m->src[k].label);
        }
    }
    for (uint32_t i = 0; i < g0->n_outputs; i++)
        if (!g0->outputs[i]->producer || g0->outputs[i]->graph != g0)
            return refuse(b, "stacked: output '%s' is not computed", g0->outputs[i]->name);
    for (uint32_t k = 0; k < K(b); k++)
        if ((rc = add_inputs(b, k)) < 0)
            return rc;
    for (uint32_t i = 0; i < g0->n_inputs; i++) {
        ir_tensor *parts[MERGE_MAX_MODELS];
        int64_t zero = 0;
        for (uint32_t k = 0; k < K(b); k++) {
            ir_tensor *x = b->map[k][b->m->src[k].ir->main->inputs[i]->id];
            ir_tensor *u = new_tensor(b, b->g, b->m->src[k].label, "usher_unsqueezed");
            ir_tensor *axes = b->opset >= 13 ? const_i64(b, "axes0", &zero, 1, false) : NULL;
            ir_tensor *uin[2] = {x, axes};
            ir_node *n = u ? add_node(b, b->g, u->name, "Unsqueeze", b->opset >= 13 ? 2 : 1, uin,
                                      1, &u, b->opset >= 13 ? 0 : 1)
                           : NULL;
            if (!n || (b->opset >= 13 && !axes) ||
                (b->opset < 13 && !attr_ints(b, n, 0, "axes", &zero, 1)))
                return nomem(b);
            parts[k] = u;
        }
        ir_tensor *o = new_tensor(b, b->g, "stacked", g0->inputs[i]->name);
        ir_node *n = o ? add_node(b, b->g, o->name, "Concat", K(b), parts, 1, &o, 1) : NULL;
        if (!n)
            return nomem(b);
        attr_int(b, n, 0, "axis", 0);
        b->smap[g0->inputs[i]->id] = o;
    }
    for (uint32_t i = 0; i < s0->n_nodes; i++) {
        ir_node *a = s0->nodes[i];
        if (a->op == IR_OP_CONSTANT)
            continue; /* read through the weights of the nodes that use them */
        if ((rc = st_node(b, a)) < 0)
            return rc;
    }
    for (uint32_t k = 0; k < K(b); k++)
        if ((rc = add_outputs(b, k, stacked_out)) < 0)
            return rc;
    snprintf(b->m->why, sizeof b->m->why,
             "stacked: all %u models have the same operators and shapes; each operator runs "
             "once over the stacked models (grouped Conv, batched MatMul, stacked elementwise)",
             K(b));
    return USHER_OK;
}

/* ---- driver ------------------------------------------------------------------------------------ */
static void bld_free(bld *b)
{
    for (uint32_t k = 0; b->map && k < K(b); k++)
        us_free(b->map[k]);
    for (uint32_t k = 0; b->rev && k < K(b); k++)
        us_free(b->rev[k]);
    us_free(b->map);
    us_free(b->rev);
    us_free(b->smap);
    us_free(b->shared);
    us_free(b->partial);
    us_free(b->off);
    ir_model_free(b->M);
    b->M = NULL;
}

static int meta(bld *b)
{
    ir_model *M = b->M;
    us_buf j;
    us_buf_init(&j, 1u << 24);
    us_buf_printf(&j, "{");
    for (uint32_t k = 0; k < K(b); k++) {
        merge_src *s = &b->m->src[k];
        us_buf_printf(&j, "%s\"%s\":{\"inputs\":{", k ? "," : "", s->label);
        for (uint32_t i = 0; i < s->ir->main->n_inputs; i++)
            us_buf_printf(&j, "%s\"%s\":\"%s/%s\"", i ? "," : "", s->ir->main->inputs[i]->name,
                          s->label, s->ir->main->inputs[i]->name);
        us_buf_printf(&j, "},\"outputs\":{");
        for (uint32_t i = 0; i < s->ir->main->n_outputs; i++)
            us_buf_printf(&j, "%s\"%s\":\"%s/%s\"", i ? "," : "", s->ir->main->outputs[i]->name,
                          s->label, s->ir->main->outputs[i]->name);
        us_buf_printf(&j, "}}");
    }
    us_buf_printf(&j, "}");
    M->meta = us_arena_array(&M->arena, 2, sizeof *M->meta);
    if (!us_buf_ok(&j) || !M->meta) {
        us_buf_free(&j);
        return nomem(b);
    }
    M->meta[0].key = "usher.merge.kind";
    M->meta[0].value = b->kind == USHER_MERGE_SHARED    ? "shared"
                       : b->kind == USHER_MERGE_STACKED ? "stacked"
                                                        : "side-by-side";
    M->meta[1].key = "usher.merge.map";
    M->meta[1].value = us_arena_strdup(&M->arena, us_buf_str(&j));
    us_buf_free(&j);
    if (!M->meta[1].value)
        return nomem(b);
    M->n_meta = 2;
    return USHER_OK;
}

static int try_kind(usher_merge *m, usher_merge_kind kind, bld *b, usher_error *err)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->kind = kind;
    b->err = err;
    b->opset = ir_model_opset(m->src[0].ir, "");
    for (uint32_t k = 0; k < m->n_src; k++)
        for (uint32_t i = 0; i < m->n_weights; i++)
            m->weights[i].emitted = NULL;
    for (uint32_t i = 0; i < m->n_weights; i++)
        m->weights[i].emitted = NULL;
    ir_model *src0 = m->src[0].ir;
    b->M = ir_model_new();
    b->map = us_calloc(m->n_src, sizeof *b->map);
    b->rev = us_calloc(m->n_src, sizeof *b->rev);
    b->smap = us_calloc(src0->n_tensor_ids + 1, sizeof *b->smap);
    b->shared = us_calloc(src0->n_node_ids + 1, sizeof *b->shared);
    b->partial = us_calloc(src0->n_node_ids + 1, sizeof *b->partial);
    b->off = us_calloc(m->n_src + 1, sizeof *b->off);
    if (!b->M || !b->map || !b->rev || !b->smap || !b->shared || !b->partial || !b->off)
        return nomem(b);
    for (uint32_t k = 0; k < m->n_src; k++) {
        merge_src *s = &m->src[k];
        b->map[k] = us_calloc(s->ir->n_tensor_ids + 1, sizeof **b->map);
        b->rev[k] = us_calloc(src0->n_node_ids + 1, sizeof **b->rev);
        if (!b->map[k] || !b->rev[k])
            return nomem(b);
        for (uint32_t i = 0; i < s->n_nodes; i++)
            if (k && s->match[s->nodes[i]->id])
                b->rev[k][s->match[s->nodes[i]->id]->id] = s->nodes[i];
    }
    ir_model *M = b->M;
    M->ir_version = src0->ir_version;
    for (uint32_t k = 1; k < m->n_src; k++)
        if (m->src[k].ir->ir_version > M->ir_version)
            M->ir_version = m->src[k].ir->ir_version;
    M->opsets = src0->opsets;
    M->n_opsets = src0->n_opsets;
    M->producer_name = "usher merge";
    M->producer_version = "0.1.0";
    M->domain = "";
    M->doc = "";
    b->g = ir_graph_new(M, NULL, NULL, "merged");
    if (!b->g)
        return nomem(b);
    int rc = kind == USHER_MERGE_SHARED    ? build_shared(b)
             : kind == USHER_MERGE_STACKED ? build_stacked(b)
                                           : build_side_by_side(b);
    if (rc < 0)
        return rc;
    if ((rc = meta(b)) < 0)
        return rc;
    if ((rc = ir_model_finalize(M, err)) < 0)
        return us_err_prefix(err, rc, "merge: the merged graph is not valid");
    return USHER_OK;
}

int merge_build(usher_merge *m, usher_error *err)
{
    static const char *names[] = {"shared", "stacked", "side-by-side"};
    bld b;
    int rc;
    m->why[0] = 0;
    usher_merge_kind order[3] = {USHER_MERGE_SHARED, USHER_MERGE_STACKED, USHER_MERGE_SIDE_BY_SIDE};
    int n_order = 3;
    if (m->p.kind >= 0) {
        order[0] = (usher_merge_kind)m->p.kind;
        n_order = 1;
    }
    char reasons[1024] = "";
    for (int i = 0; i < n_order; i++) {
        rc = try_kind(m, order[i], &b, err);
        uint32_t n_ops = 0; /* operators that compute (not Constant) */
        for (uint32_t j = 0; j < m->src[0].n_nodes; j++)
            n_ops += m->src[0].nodes[j]->op != IR_OP_CONSTANT;
        if (rc == USHER_OK && order[i] == USHER_MERGE_SHARED && n_order > 1 &&
            2 * b.n_shared < n_ops) {
            /* a small shared part: the stacked form may serve more; keep the better one */
            bld s;
            char keep[sizeof m->why];
            snprintf(keep, sizeof keep, "%s", m->why);
            if (try_kind(m, USHER_MERGE_STACKED, &s, err) == USHER_OK) {
                bld_free(&b);
                b = s;
                order[i] = USHER_MERGE_STACKED;
            } else {
                if (s.reason[0]) { /* say why the stacked form was not used either */
                    size_t l = strlen(reasons);
                    snprintf(reasons + l, sizeof reasons - l, "%s%s", l ? "; " : "", s.reason);
                }
                bld_free(&s);
                snprintf(m->why, sizeof m->why, "%s", keep);
                for (uint32_t w = 0; w < m->n_weights; w++)
                    m->weights[w].emitted = NULL;
                bld_free(&b);
                rc = try_kind(m, USHER_MERGE_SHARED, &b, err);
            }
        }
        if (rc == USHER_OK) {
            m->merged = b.M;
            b.M = NULL;
            m->rep.kind = order[i];
            m->rep.kind_name = names[order[i]];
            m->rep.n_nodes_shared = b.n_shared * (order[i] == USHER_MERGE_SHARED);
            m->rep.n_nodes_partial = b.n_partial * (order[i] == USHER_MERGE_SHARED);
            m->rep.weight_bytes_after = b.wbytes;
            m->rep.kernels_after = merge_kernel_count(m->merged->main);
            if (reasons[0]) {
                size_t l = strlen(m->why);
                snprintf(m->why + l, sizeof m->why - l, " (not %s)", reasons);
            }
            bld_free(&b);
            us_err_clear(err);
            return USHER_OK;
        }
        bld_free(&b);
        if (rc != USHER_ERR_UNSUPPORTED)
            return rc;
        size_t l = strlen(reasons);
        snprintf(reasons + l, sizeof reasons - l, "%s%s", l ? "; " : "", b.reason);
    }
    return us_err_set(err, USHER_ERR_UNSUPPORTED, "cannot merge as asked: %s", reasons);
}
