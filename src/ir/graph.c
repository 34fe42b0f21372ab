/*
 * graph.c - IR construction, validation and topological order (layer 2).
 *
 * ir_model_finalize establishes the invariants listed in ir.h. The order
 * is Kahn's algorithm with the file position as tie-break, so a model that
 * is already sorted keeps its order and the result never depends on hash
 * order. Dependencies through subgraphs (an If branch reading an outer
 * tensor) are made explicit as the owning node's implicit inputs first.
 */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/err.h"

struct ir_blob {
    ir_blob *next;
    void *base;
    size_t len;
    bool mapped;
};

/* ---- dtypes ------------------------------------------------------------------ */
static const struct {
    const char *name;
    unsigned bits;
} dtypes[IR_DT_COUNT] = {
    [IR_DT_UNDEFINED] = {"undefined", 0}, [IR_DT_FLOAT] = {"float32", 32},
    [IR_DT_UINT8] = {"uint8", 8},         [IR_DT_INT8] = {"int8", 8},
    [IR_DT_UINT16] = {"uint16", 16},      [IR_DT_INT16] = {"int16", 16},
    [IR_DT_INT32] = {"int32", 32},        [IR_DT_INT64] = {"int64", 64},
    [IR_DT_STRING] = {"string", 0},       [IR_DT_BOOL] = {"bool", 8},
    [IR_DT_FLOAT16] = {"float16", 16},    [IR_DT_DOUBLE] = {"float64", 64},
    [IR_DT_UINT32] = {"uint32", 32},      [IR_DT_UINT64] = {"uint64", 64},
    [IR_DT_COMPLEX64] = {"complex64", 64}, [IR_DT_COMPLEX128] = {"complex128", 128},
    [IR_DT_BFLOAT16] = {"bfloat16", 16},  [IR_DT_FLOAT8E4M3FN] = {"float8e4m3fn", 8},
    [IR_DT_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8}, [IR_DT_FLOAT8E5M2] = {"float8e5m2", 8},
    [IR_DT_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8}, [IR_DT_UINT4] = {"uint4", 4},
    [IR_DT_INT4] = {"int4", 4},
};

unsigned ir_dtype_bits(int dt)
{
    return dt > 0 && dt < IR_DT_COUNT ? dtypes[dt].bits : 0;
}

const char *ir_dtype_name(int dt)
{
    return dt >= 0 && dt < IR_DT_COUNT ? dtypes[dt].name : "?";
}

bool ir_dtype_is_float(int dt)
{
    switch (dt) {
    case IR_DT_FLOAT: case IR_DT_FLOAT16: case IR_DT_DOUBLE: case IR_DT_BFLOAT16:
    case IR_DT_FLOAT8E4M3FN: case IR_DT_FLOAT8E4M3FNUZ: case IR_DT_FLOAT8E5M2:
    case IR_DT_FLOAT8E5M2FNUZ:
        return true;
    default:
        return false;
    }
}

bool ir_dtype_is_int(int dt)
{
    switch (dt) {
    case IR_DT_UINT8: case IR_DT_INT8: case IR_DT_UINT16: case IR_DT_INT16: case IR_DT_INT32:
    case IR_DT_INT64: case IR_DT_BOOL: case IR_DT_UINT32: case IR_DT_UINT64: case IR_DT_UINT4:
    case IR_DT_INT4:
        return true;
    default:
        return false;
    }
}

bool ir_dtype_nbytes(int dt, uint64_t n, uint64_t *bytes)
{
    unsigned bits = ir_dtype_bits(dt);
    uint64_t b;
    if (__builtin_mul_overflow(n, (uint64_t)bits, &b) || b > UINT64_MAX - 7)
        return false;
    *bytes = (b + 7) / 8;
    return true;
}

/* ---- op table ------------------------------------------------------------------ */
static const struct {
    const char *name;
    ir_op_kind kind;
} op_table[] = {
#define IR_OP(id, nm, kind, infer, fpe) {nm, IR_KIND_##kind},
#include "ops.def"
#undef IR_OP
};
_Static_assert(sizeof op_table / sizeof op_table[0] == IR_OP_COUNT, "op table size");

const char *ir_op_name(ir_op op) { return op < IR_OP_COUNT ? op_table[op].name : "?"; }
ir_op_kind ir_op_kind_of(ir_op op) { return op < IR_OP_COUNT ? op_table[op].kind : IR_KIND_UNKNOWN; }

const char *ir_op_kind_name(ir_op_kind k)
{
    static const char *const names[] = {"elementwise", "conv", "gemm", "norm", "pool", "reduce",
                                        "softmax", "view", "move", "rnn", "control", "unknown"};
    return (unsigned)k <= IR_KIND_UNKNOWN ? names[k] : "unknown";
}

ir_op ir_op_lookup(const char *domain, const char *op_type)
{
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return IR_OP_UNKNOWN;
    /* binary search would need a sorted copy; 126 strcmp calls per node at
     * load time is well under a microsecond, so a linear scan it is */
    for (unsigned i = 0; i < IR_OP_COUNT; i++)
        if (strcmp(op_table[i].name, op_type) == 0)
            return (ir_op)i;
    return IR_OP_UNKNOWN;
}

/* ---- shapes -------------------------------------------------------------------- */
bool ir_shape_numel(const ir_shape *s, uint64_t *n)
{
    if (s->rank < 0)
        return false;
    uint64_t p = 1;
    for (int i = 0; i < s->rank; i++) {
        if (!ir_dim_is_lit(s->d[i]) || s->d[i].c < 0)
            return false;
        if (__builtin_mul_overflow(p, (uint64_t)s->d[i].c, &p))
            return false;
    }
    *n = p;
    return true;
}

bool ir_shape_is_static(const ir_shape *s)
{
    uint64_t n;
    return ir_shape_numel(s, &n);
}

/* ---- model ----------------------------------------------------------------------- */
ir_model *ir_model_new(void)
{
    ir_model *m = us_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    us_arena_init(&m->arena, 64 * 1024);
    us_arena_init(&m->infer_arena, 64 * 1024);
    us_map_init(&m->sym_names);
    us_map_init(&m->sym_exprs);
    return m;
}

static void graph_free_maps(ir_graph *g)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        us_free(n->implicit);
        for (uint32_t a = 0; a < n->n_attr; a++) {
            ir_attr *at = &n->attr[a];
            if (at->g)
                graph_free_maps(at->g);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                if (at->graphs[k])
                    graph_free_maps(at->graphs[k]);
        }
    }
    us_map_free(&g->names);
    us_free(g->tensors);
    us_free(g->nodes);
    us_free(g->inputs);
    us_free(g->outputs);
}

void ir_model_free(ir_model *m)
{
    if (!m)
        return;
    if (m->main)
        graph_free_maps(m->main);
    for (ir_blob *b = m->blobs; b;) {
        ir_blob *n = b->next;
        if (b->mapped)
            munmap(b->base, b->len);
        else
            us_free(b->base);
        us_free(b);
        b = n;
    }
    us_free(m->syms);
    us_map_free(&m->sym_names);
    us_map_free(&m->sym_exprs);
    us_arena_free(&m->infer_arena);
    us_arena_free(&m->arena);
    us_free(m);
}

int64_t ir_model_opset(const ir_model *m, const char *domain)
{
    bool def = !domain || !domain[0] || strcmp(domain, "ai.onnx") == 0;
    for (uint32_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        bool idef = !d || !d[0] || strcmp(d, "ai.onnx") == 0;
        if (def ? idef : (d && strcmp(d, domain) == 0))
            return m->opsets[i].version;
    }
    return 0;
}

int ir_model_add_mapping(ir_model *m, const void *base, size_t len)
{
    ir_blob *b = us_calloc(1, sizeof *b);
    if (!b)
        return USHER_ERR_NOMEM;
    b->base = (void *)(uintptr_t)base;
    b->len = len;
    b->mapped = true;
    b->next = m->blobs;
    m->blobs = b;
    return USHER_OK;
}

void *ir_model_alloc_blob(ir_model *m, size_t n)
{
    ir_blob *b = us_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->base = us_malloc(n ? n : 1);
    if (!b->base) {
        us_free(b);
        return NULL;
    }
    b->len = n;
    b->next = m->blobs;
    m->blobs = b;
    return b->base;
}

ir_graph *ir_graph_new(ir_model *m, ir_graph *parent, ir_node *owner, const char *name)
{
    ir_graph *g = us_arena_alloc(&m->arena, sizeof *g);
    if (!g)
        return NULL;
    g->model = m;
    g->parent = parent;
    g->owner = owner;
    g->depth = parent ? parent->depth + 1 : 0;
    g->name = us_arena_strdup(&m->arena, name ? name : "");
    if (!g->name)
        return NULL;
    us_map_init(&g->names);
    m->n_graphs++;
    if (!parent && !m->main)
        m->main = g;
    return g;
}

static int grow_ptrs(void ***arr, uint32_t *cap, uint32_t n)
{
    if (n < *cap)
        return 0;
    uint32_t nc = *cap ? *cap * 2 : 16;
    void **na = us_realloc(*arr, (size_t)nc * sizeof *na);
    if (!na)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

static void tensor_init(ir_tensor *t, ir_model *m)
{
    t->id = m->n_tensor_ids++;
    t->decl.rank = IR_RANK_UNKNOWN;
    t->shape.rank = IR_RANK_UNKNOWN;
}

ir_tensor *ir_graph_add_tensor(ir_graph *g, const char *name, ir_tensor **dup)
{
    ir_model *m = g->model;
    ir_tensor *existing = us_map_get(&g->names, name);
    if (existing) {
        if (dup)
            *dup = existing;
        return NULL;
    }
    if (dup)
        *dup = NULL;
    ir_tensor *t = us_arena_alloc(&m->arena, sizeof *t);
    if (!t)
        return NULL;
    t->name = us_arena_strdup(&m->arena, name);
    if (!t->name)
        return NULL;
    tensor_init(t, m);
    t->graph = g;
    if (grow_ptrs((void ***)&g->tensors, &g->cap_tensors, g->n_tensors) < 0)
        return NULL;
    if (us_map_put(&g->names, t->name, t, NULL) < 0)
        return NULL;
    g->tensors[g->n_tensors++] = t;
    return t;
}

ir_tensor *ir_model_new_attr_tensor(ir_model *m, const char *name)
{
    ir_tensor *t = us_arena_alloc(&m->arena, sizeof *t);
    if (!t)
        return NULL;
    t->name = us_arena_strdup(&m->arena, name ? name : "");
    if (!t->name)
        return NULL;
    tensor_init(t, m);
    t->flags = IR_TF_ATTR;
    return t;
}

ir_tensor *ir_graph_lookup(const ir_graph *g, const char *name)
{
    for (; g; g = g->parent) {
        ir_tensor *t = us_map_get(&g->names, name);
        if (t)
            return t;
    }
    return NULL;
}

ir_node *ir_graph_add_node(ir_graph *g, const char *name, const char *domain, const char *op_type,
                           uint32_t n_in, uint32_t n_out, uint32_t n_attr)
{
    ir_model *m = g->model;
    ir_node *n = us_arena_alloc(&m->arena, sizeof *n);
    if (!n)
        return NULL;
    n->name = us_arena_strdup(&m->arena, name ? name : "");
    n->domain = us_arena_strdup(&m->arena, domain ? domain : "");
    n->op_type = us_arena_strdup(&m->arena, op_type ? op_type : "");
    n->in = us_arena_array(&m->arena, n_in ? n_in : 1, sizeof *n->in);
    n->out = us_arena_array(&m->arena, n_out ? n_out : 1, sizeof *n->out);
    n->attr = us_arena_array(&m->arena, n_attr ? n_attr : 1, sizeof *n->attr);
    if (!n->name || !n->domain || !n->op_type || !n->in || !n->out || !n->attr)
        return NULL;
    n->n_in = n_in;
    n->n_out = n_out;
    n->n_attr = n_attr;
    n->graph = g;
    n->id = m->n_node_ids++;
    n->file_index = g->n_nodes;
    n->op = ir_op_lookup(n->domain, n->op_type);
    if (grow_ptrs((void ***)&g->nodes, &g->cap_nodes, g->n_nodes) < 0)
        return NULL;
    g->nodes[g->n_nodes++] = n;
    return n;
}

static int append_ptr(ir_tensor ***arr, uint32_t *n, ir_tensor *t)
{
    ir_tensor **na = us_realloc(*arr, ((size_t)*n + 1) * sizeof *na);
    if (!na)
        return USHER_ERR_NOMEM;
    na[(*n)++] = t;
    *arr = na;
    return USHER_OK;
}

int ir_graph_add_input(ir_graph *g, ir_tensor *t)
{
    t->flags |= IR_TF_INPUT;
    return append_ptr(&g->inputs, &g->n_inputs, t);
}

int ir_graph_add_output(ir_graph *g, ir_tensor *t)
{
    t->flags |= IR_TF_OUTPUT;
    return append_ptr(&g->outputs, &g->n_outputs, t);
}

static int32_t add_sym(ir_model *m, ir_sym *s)
{
    if (m->n_syms == m->cap_syms) {
        uint32_t nc = m->cap_syms ? m->cap_syms * 2 : 32;
        if (nc > (1u << 30))
            return -1;
        ir_sym *ns = us_realloc(m->syms, (size_t)nc * sizeof *ns);
        if (!ns)
            return -1;
        m->syms = ns;
        m->cap_syms = nc;
    }
    m->syms[m->n_syms] = *s;
    return (int32_t)m->n_syms++;
}

int32_t ir_model_symbol(ir_model *m, const char *name)
{
    void *v = us_map_get(&m->sym_names, name);
    if (v)
        return (int32_t)((uintptr_t)v - 1);
    /* declared symbols must come before any inference created derived ones */
    if (m->n_syms != m->n_declared)
        return -1;
    ir_sym s = {0};
    s.name = us_arena_strdup(&m->arena, name);
    if (!s.name)
        return -1;
    s.kind = IR_SYM_DECLARED;
    s.op = IR_SYMOP_NONE;
    int32_t id = add_sym(m, &s);
    if (id < 0)
        return -1;
    if (us_map_put(&m->sym_names, s.name, (void *)(uintptr_t)(id + 1), NULL) < 0) {
        m->n_syms--;
        return -1;
    }
    m->n_declared = m->n_syms;
    return id;
}

/* exposed to infer.c through ir_impl.h */
int32_t ir_model_add_derived_sym(ir_model *m, const ir_sym *s);
int32_t ir_model_add_derived_sym(ir_model *m, const ir_sym *s)
{
    ir_sym c = *s;
    return add_sym(m, &c);
}

/* ---- finalize --------------------------------------------------------------------- */

/* is `anc` g itself or one of its enclosing graphs? */
static bool graph_encloses(const ir_graph *anc, const ir_graph *g)
{
    for (; g; g = g->parent)
        if (g == anc)
            return true;
    return false;
}

typedef struct fin {
    ir_model *m;
    usher_error *err;
    uint32_t *mark; /* per tensor id: generation that last added it */
    uint32_t gen;
} fin;

/* add the outer tensors read anywhere inside subgraph sg to node n */
static int collect_implicit(fin *f, ir_node *n, const ir_graph *sg)
{
    for (uint32_t i = 0; i < sg->n_nodes; i++) {
        ir_node *x = sg->nodes[i];
        for (uint32_t k = 0; k < x->n_in; k++) {
            ir_tensor *t = x->in[k];
            if (!t || !graph_encloses(t->graph, n->graph) || f->mark[t->id] == f->gen)
                continue;
            f->mark[t->id] = f->gen;
            if (append_ptr(&n->implicit, &n->n_implicit, t) < 0)
                return USHER_ERR_NOMEM;
        }
        for (uint32_t a = 0; a < x->n_attr; a++) {
            const ir_attr *at = &x->attr[a];
            if (at->g) {
                int rc = collect_implicit(f, n, at->g);
                if (rc < 0)
                    return rc;
            }
            for (size_t k = 0; at->graphs && k < at->n; k++) {
                int rc = collect_implicit(f, n, at->graphs[k]);
                if (rc < 0)
                    return rc;
            }
        }
        /* graph outputs of a subgraph may name outer tensors directly */
    }
    for (uint32_t i = 0; i < sg->n_outputs; i++) {
        ir_tensor *t = sg->outputs[i];
        if (t && graph_encloses(t->graph, n->graph) && t->graph != sg &&
            f->mark[t->id] != f->gen) {
            f->mark[t->id] = f->gen;
            if (append_ptr(&n->implicit, &n->n_implicit, t) < 0)
                return USHER_ERR_NOMEM;
        }
    }
    return USHER_OK;
}

/* min-heap of node indices keyed by file position */
typedef struct heap {
    uint32_t *a;
    uint32_t n;
} heap;

static void heap_push(heap *h, ir_node **nodes, uint32_t v)
{
    uint32_t i = h->n++;
    h->a[i] = v;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (nodes[h->a[p]]->file_index <= nodes[h->a[i]]->file_index)
            break;
        uint32_t t = h->a[p];
        h->a[p] = h->a[i];
        h->a[i] = t;
        i = p;
    }
}

static uint32_t heap_pop(heap *h, ir_node **nodes)
{
    uint32_t top = h->a[0];
    h->a[0] = h->a[--h->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < h->n && nodes[h->a[l]]->file_index < nodes[h->a[s]]->file_index)
            s = l;
        if (r < h->n && nodes[h->a[r]]->file_index < nodes[h->a[s]]->file_index)
            s = r;
        if (s == i)
            break;
        uint32_t t = h->a[s];
        h->a[s] = h->a[i];
        h->a[i] = t;
        i = s;
    }
    return top;
}

static const char *gname(const ir_graph *g) { return g->depth == 0 ? "graph" : g->name; }

static int finalize_graph(fin *f, ir_graph *g)
{
    int rc = USHER_OK;
    uint32_t n = g->n_nodes;
    if (g->depth > IR_MAX_GRAPH_DEPTH)
        return us_err_set(f->err, USHER_ERR_LIMIT, "subgraph '%s' nested deeper than %d",
                          g->name, IR_MAX_GRAPH_DEPTH);

    /* subgraphs first (their own order), then implicit inputs of owners */
    for (uint32_t i = 0; i < n; i++) {
        ir_node *x = g->nodes[i];
        x->file_index = i;
        us_free(x->implicit);
        x->implicit = NULL;
        x->n_implicit = 0;
        bool has_sub = false;
        for (uint32_t a = 0; a < x->n_attr; a++) {
            ir_attr *at = &x->attr[a];
            if (at->g) {
                has_sub = true;
                if ((rc = finalize_graph(f, at->g)) < 0)
                    return rc;
            }
            for (size_t k = 0; at->graphs && k < at->n; k++) {
                has_sub = true;
                if ((rc = finalize_graph(f, at->graphs[k])) < 0)
                    return rc;
            }
        }
        if (has_sub) {
            f->gen++;
            for (uint32_t a = 0; a < x->n_attr; a++) {
                ir_attr *at = &x->attr[a];
                if (at->g && (rc = collect_implicit(f, x, at->g)) < 0)
                    return us_err_set(f->err, rc, "out of memory");
                for (size_t k = 0; at->graphs && k < at->n; k++)
                    if ((rc = collect_implicit(f, x, at->graphs[k])) < 0)
                        return us_err_set(f->err, rc, "out of memory");
            }
        }
        for (uint32_t k = 0; k < x->n_in; k++) {
            ir_tensor *t = x->in[k];
            if (t && !graph_encloses(t->graph, g))
                return us_err_set(f->err, USHER_ERR_PARSE,
                                  "%s: node '%s' (%s) reads '%s', which is not visible in its "
                                  "scope",
                                  gname(g), x->name, x->op_type, t->name);
        }
        for (uint32_t k = 0; k < x->n_out; k++) {
            ir_tensor *t = x->out[k];
            if (t && (t->producer != x || t->graph != g))
                return us_err_set(f->err, USHER_ERR_PARSE,
                                  "%s: output '%s' of node '%s' is produced more than once",
                                  gname(g), t->name, x->name);
        }
    }

    /* Kahn: indegree = inputs (explicit + implicit) produced in this graph */
    uint32_t *indeg = us_calloc(n ? n : 1, sizeof *indeg);
    uint32_t *order = us_calloc(n ? n : 1, sizeof *order);
    heap h = {us_calloc(n ? n : 1, sizeof *h.a), 0};
    /* consumers lists as CSR: count, then fill */
    uint32_t *cstart = us_calloc((size_t)n + 1, sizeof *cstart);
    uint32_t *clist = NULL;
    if (!indeg || !order || !h.a || !cstart) {
        rc = us_err_set(f->err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t nedges = 0;
    for (uint32_t i = 0; i < n; i++) {
        ir_node *x = g->nodes[i];
        for (uint32_t k = 0; k < x->n_in + x->n_implicit; k++) {
            ir_tensor *t = k < x->n_in ? x->in[k] : x->implicit[k - x->n_in];
            if (t && t->producer && t->producer->graph == g) {
                indeg[i]++;
                cstart[t->producer->file_index + 1]++;
                nedges++;
            }
        }
    }
    for (uint32_t i = 0; i < n; i++)
        cstart[i + 1] += cstart[i];
    clist = us_calloc(nedges ? nedges : 1, sizeof *clist);
    if (!clist) {
        rc = us_err_set(f->err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    {
        uint32_t *fillp = us_calloc(n ? n : 1, sizeof *fillp);
        if (!fillp) {
            rc = us_err_set(f->err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < n; i++) {
            ir_node *x = g->nodes[i];
            for (uint32_t k = 0; k < x->n_in + x->n_implicit; k++) {
                ir_tensor *t = k < x->n_in ? x->in[k] : x->implicit[k - x->n_in];
                if (t && t->producer && t->producer->graph == g) {
                    uint32_t p = t->producer->file_index;
                    clist[cstart[p] + fillp[p]++] = i;
                }
            }
        }
        us_free(fillp);
    }
    for (uint32_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            heap_push(&h, g->nodes, i);
    uint32_t done = 0;
    while (h.n > 0) {
        uint32_t i = heap_pop(&h, g->nodes);
        order[done++] = i;
        for (uint32_t e = cstart[i]; e < cstart[i + 1]; e++)
            if (--indeg[clist[e]] == 0)
                heap_push(&h, g->nodes, clist[e]);
    }
    if (done != n) {
        for (uint32_t i = 0; i < n; i++)
            if (indeg[i] > 0) {
                rc = us_err_set(f->err, USHER_ERR_PARSE,
                                "%s: node '%s' (%s) is part of a cycle or reads a value that "
                                "is never produced before it",
                                gname(g), g->nodes[i]->name, g->nodes[i]->op_type);
                break;
            }
        goto out;
    }
    {
        ir_node **sorted = us_calloc(n ? n : 1, sizeof *sorted);
        if (!sorted) {
            rc = us_err_set(f->err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < n; i++)
            sorted[i] = g->nodes[order[i]];
        memcpy(g->nodes, sorted, (size_t)n * sizeof *sorted);
        us_free(sorted);
    }
    for (uint32_t i = 0; i < g->n_tensors; i++)
        g->tensors[i]->n_consumers = 0;
out:
    us_free(indeg);
    us_free(order);
    us_free(h.a);
    us_free(cstart);
    us_free(clist);
    return rc;
}

/* consumer counts need every graph sorted first (implicit reads cross graphs) */
static void count_consumers(ir_graph *g)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        ir_node *x = g->nodes[i];
        for (uint32_t k = 0; k < x->n_in; k++)
            if (x->in[k])
                x->in[k]->n_consumers++;
        for (uint32_t k = 0; k < x->n_implicit; k++)
            x->implicit[k]->n_consumers++;
        for (uint32_t a = 0; a < x->n_attr; a++) {
            ir_attr *at = &x->attr[a];
            if (at->g)
                count_consumers(at->g);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                count_consumers(at->graphs[k]);
        }
    }
}

#if US_DEBUG_ASSERTS
/* After a successful finalize (debug and sanitizer builds): I1 and I3 hold in g and its
 * subgraphs, each output's producer is its node (I2), every read is counted (I4), and the
 * graph tree is consistent. pos[node id] = 1 + the node's place in its graph once seen. */
static void check_graph(const ir_graph *g, uint32_t *pos)
{
    US_DEBUG_ASSERT(g->depth <= IR_MAX_GRAPH_DEPTH);
    US_DEBUG_ASSERT(!g->parent || g->depth == g->parent->depth + 1);
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *x = g->nodes[i];
        US_DEBUG_ASSERT(x->graph == g);
        for (uint32_t k = 0; k < x->n_in + x->n_implicit; k++) {
            const ir_tensor *t = k < x->n_in ? x->in[k] : x->implicit[k - x->n_in];
            if (!t)
                continue;
            US_DEBUG_ASSERT(graph_encloses(t->graph, g));              /* I1 */
            US_DEBUG_ASSERT(!t->producer || t->producer->graph != g || /* I3 */
                            pos[t->producer->id] != 0);
            US_DEBUG_ASSERT(t->n_consumers > 0);                         /* I4 */
        }
        for (uint32_t k = 0; k < x->n_out; k++)
            US_DEBUG_ASSERT(!x->out[k] || (x->out[k]->producer == x && x->out[k]->graph == g));
        pos[x->id] = i + 1;
        for (uint32_t a = 0; a < x->n_attr; a++) {
            const ir_attr *at = &x->attr[a];
            if (at->g) {
                US_DEBUG_ASSERT(at->g->parent == g && at->g->owner == x);
                check_graph(at->g, pos);
            }
            for (size_t k = 0; at->graphs && k < at->n; k++) {
                US_DEBUG_ASSERT(at->graphs[k]->parent == g && at->graphs[k]->owner == x);
                check_graph(at->graphs[k], pos);
            }
        }
    }
}
#endif

int ir_model_finalize(ir_model *m, usher_error *err)
{
    if (!m->main)
        return us_err_set(err, USHER_ERR_PARSE, "model has no graph");
    fin f = {m, err, us_calloc(m->n_tensor_ids ? m->n_tensor_ids : 1, sizeof(uint32_t)), 0};
    if (!f.mark)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int rc = finalize_graph(&f, m->main);
    us_free(f.mark);
    if (rc < 0)
        return rc;
    count_consumers(m->main);
#if US_DEBUG_ASSERTS
    /* libc, not us_calloc: a debug check must not move the allocation-failure tests' counts */
    uint32_t *pos = calloc(m->n_node_ids ? m->n_node_ids : 1, sizeof *pos);
    if (pos) {
        US_DEBUG_ASSERT(m->main->depth == 0 && !m->main->parent);
        check_graph(m->main, pos);
        free(pos);
    }
#endif
    return USHER_OK;
}

/* ---- traversal and attributes ------------------------------------------------------ */
static void visit_graph(ir_graph *g, ir_node_visit_fn fn, void *ud)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        ir_node *x = g->nodes[i];
        fn(x, ud);
        for (uint32_t a = 0; a < x->n_attr; a++) {
            ir_attr *at = &x->attr[a];
            if (at->g)
                visit_graph(at->g, fn, ud);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                visit_graph(at->graphs[k], fn, ud);
        }
    }
}

void ir_model_visit(ir_model *m, ir_node_visit_fn fn, void *ud)
{
    if (m->main)
        visit_graph(m->main, fn, ud);
}

const ir_attr *ir_node_attr(const ir_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_attr; i++)
        if (n->attr[i].name && strcmp(n->attr[i].name, name) == 0)
            return &n->attr[i];
    return NULL;
}

/* ---- formatting -------------------------------------------------------------------- */
void ir_dim_format(const ir_model *m, ir_dim d, char *buf, size_t n)
{
    if (ir_dim_is_lit(d)) {
        snprintf(buf, n, "%lld", (long long)d.c);
        return;
    }
    const char *s = (m && (uint32_t)d.sym < m->n_syms) ? m->syms[d.sym].name : "?";
    char a[32] = "", c[32] = "";
    if (d.a != 1)
        snprintf(a, sizeof a, "%lld*", (long long)d.a);
    if (d.c > 0)
        snprintf(c, sizeof c, "+%lld", (long long)d.c);
    else if (d.c < 0)
        snprintf(c, sizeof c, "%lld", (long long)d.c);
    snprintf(buf, n, "%s%s%s", a, s, c);
}

void ir_shape_format(const ir_model *m, const ir_shape *s, char *buf, size_t n)
{
    if (n == 0)
        return;
    if (s->rank < 0) {
        snprintf(buf, n, "?");
        return;
    }
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < s->rank && len < n; i++) {
        char d[160];
        ir_dim_format(m, s->d[i], d, sizeof d);
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "", d);
    }
    if (len < n)
        snprintf(buf + len, n - len, "]");
}
