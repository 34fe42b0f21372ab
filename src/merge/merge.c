/*
 * merge.c - the operator graph merger's analysis and public API (layer 4,
 * prefix merge_; docs/merge.md, docs/internals/merge.md).
 *
 * Why: a server that hosts fine-tuned variants of one backbone, or many
 * copies of one architecture, pays for every weight and every kernel launch
 * once per model. USHER (../shared/usher-notes.md §3) merges such models
 * into one graph; this module does the same and checks the result.
 *
 * Passes, in order (each refuses with the model and the reason):
 *   1. load every model (onnx_load_file: a cycle is refused there), refuse
 *      unknown operators, non-default domains, different default-domain
 *      opsets and different input counts or types; infer shapes with the
 *      batch left symbolic;
 *   2. signature per model: operator-type histogram and a hashed
 *      weight-shape histogram; distance = mean of the two weighted-Jaccard
 *      (Ruzicka) distances; DBSCAN (eps = cluster_eps, minPts = 2) must put
 *      every model in one cluster;
 *   3. common weights: every constant tensor (initializers and Constant
 *      outputs, subgraphs included) is hashed (ir_tensor_hash) and mapped to
 *      the first earlier tensor that is bit-identical, or equal within
 *      weight_rtol (same dtype and dims, every element);
 *   4. operator matching, model k against model 0: per operator type a cost
 *      matrix (attributes, output shape, topological position, weights) and
 *      the Hungarian algorithm (hungarian.c) give a one-to-one matching;
 *   5. build.c turns the matching into a merged graph (kind shared, stacked
 *      or side-by-side), verify.c checks it on ONNX Runtime.
 *
 * Invariants: the source models stay loaded for the life of the merge (the
 * merged IR points at their attribute arrays and weight bytes); nothing is
 * written before usher_merge_write, and that writes through a temporary
 * file.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "merge_impl.h"
#include "onnx/onnx.h"
#include "usher/model.h"

usher_merge_params usher_merge_default_params(void)
{
    usher_merge_params p;
    memset(&p, 0, sizeof p);
    p.weight_rtol = 1e-7;
    p.cluster_eps = 0.3;
    p.kind = -1;
    p.verify_tol = 1e-5;
    p.verify_runs = 2;
    p.seed = 1;
    p.verify_dim = 2;
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool is_kernel(const ir_node *n)
{
    if (n->op == IR_OP_CONSTANT || n->op == IR_OP_IDENTITY || n->op == IR_OP_SHAPE)
        return false;
    return n->op == IR_OP_UNKNOWN || ir_op_kind_of(n->op) != IR_KIND_VIEW;
}

uint32_t merge_kernel_count(const ir_graph *g)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        k += is_kernel(n);
        for (uint32_t a = 0; a < n->n_attr; a++) {
            if (n->attr[a].type == IR_ATTR_GRAPH && n->attr[a].g)
                k += merge_kernel_count(n->attr[a].g);
            for (size_t j = 0; n->attr[a].type == IR_ATTR_GRAPHS && j < n->attr[a].n; j++)
                k += merge_kernel_count(n->attr[a].graphs[j]);
        }
    }
    return k;
}

/* ---- constants -------------------------------------------------------------------- */
static bool same_decl(const ir_tensor *a, const ir_tensor *b)
{
    if (a->dtype != b->dtype || a->decl.rank != b->decl.rank)
        return false;
    for (int i = 0; i < a->decl.rank; i++)
        if (!ir_dim_eq(a->decl.d[i], b->decl.d[i]))
            return false;
    return true;
}

bool merge_tensor_close(const ir_tensor *a, const ir_tensor *b, double rtol)
{
    if (!same_decl(a, b) || a->nbytes != b->nbytes)
        return false;
    if (a->nbytes == 0)
        return true; /* empty tensors of one type and shape */
    if (!a->data || !b->data)
        return false;
    if (a->data == b->data || memcmp(a->data, b->data, (size_t)a->nbytes) == 0)
        return true;
    if (rtol <= 0 || (a->dtype != IR_DT_FLOAT && a->dtype != IR_DT_DOUBLE))
        return false;
    if (a->dtype == IR_DT_FLOAT) {
        size_t n = (size_t)(a->nbytes / 4);
        for (size_t i = 0; i < n; i++) {
            float x, y;
            memcpy(&x, a->data + 4 * i, 4);
            memcpy(&y, b->data + 4 * i, 4);
            double d = fabs((double)x - (double)y), s = fmax(fabs((double)x), fabs((double)y));
            if (!(d <= rtol * s))
                return false;
        }
        return true;
    }
    size_t n = (size_t)(a->nbytes / 8);
    for (size_t i = 0; i < n; i++) {
        double x, y;
        memcpy(&x, a->data + 8 * i, 8);
        memcpy(&y, b->data + 8 * i, 8);
        if (!(fabs(x - y) <= rtol * fmax(fabs(x), fabs(y))))
            return false;
    }
    return true;
}

/* the constant tensors of a graph, subgraphs included (Constant outputs, not their attrs) */
typedef void (*const_fn)(usher_merge *m, uint32_t k, ir_tensor *t, int *rc);

static void each_const(usher_merge *m, uint32_t k, ir_graph *g, const_fn fn, int *rc)
{
    for (uint32_t i = 0; i < g->n_tensors && *rc == USHER_OK; i++)
        if (g->tensors[i]->flags & IR_TF_CONST)
            fn(m, k, g->tensors[i], rc);
    for (uint32_t i = 0; i < g->n_nodes && *rc == USHER_OK; i++) {
        ir_node *n = g->nodes[i];
        for (uint32_t a = 0; a < n->n_attr; a++) {
            if (n->attr[a].type == IR_ATTR_GRAPH && n->attr[a].g)
                each_const(m, k, n->attr[a].g, fn, rc);
            for (size_t j = 0; n->attr[a].type == IR_ATTR_GRAPHS && j < n->attr[a].n; j++)
                each_const(m, k, n->attr[a].graphs[j], fn, rc);
        }
    }
}

static void add_weight(usher_merge *m, uint32_t k, ir_tensor *t, int *rc)
{
    merge_src *s = &m->src[k];
    if ((t->flags & IR_TF_NODATA) || (!t->data && t->nbytes))
        return; /* string constants: kept as they are, never shared */
    s->weight_bytes += t->nbytes;
    m->rep.n_weights++;
    merge_weight *found = NULL;
    bool exact = false;
    /* bit-identical: any tensor seen before, this model's own included (a repeated
     * constant is one weight); within the tolerance: earlier models' only, so a model's
     * own merely-close tensors stay apart. The IR's weight hash (XXH64 of every byte,
     * cached in the tensor) is computed only for a candidate whose first bytes match:
     * weights that differ are told apart by their first bytes, so merging models with
     * all-different weights hashes nothing */
    size_t head = t->nbytes < 64 ? (size_t)t->nbytes : 64;
    for (uint32_t i = 0; i < m->n_weights && !exact; i++) {
        merge_weight *w = &m->weights[i];
        if (!same_decl(w->src, t) || w->src->nbytes != t->nbytes)
            continue;
        if (t->nbytes == 0 ||
            (memcmp(w->src->data, t->data, head) == 0 &&
             ir_tensor_hash(w->src) == ir_tensor_hash(t) &&
             memcmp(w->src->data, t->data, (size_t)t->nbytes) == 0)) {
            found = w;
            exact = true;
        } else if (!found && w->model != k && m->p.weight_rtol > 0 &&
                   merge_tensor_close(w->src, t, m->p.weight_rtol)) {
            found = w;
        }
    }
    if (found) {
        s->wmap[t->id] = found;
        found->n_users++;
        if (exact)
            m->rep.n_weights_identical++;
        else
            m->rep.n_weights_close++;
        return;
    }
    if (m->n_weights == m->cap_weights) {
        uint32_t cap = m->cap_weights ? 2 * m->cap_weights : 256;
        merge_weight *nw = us_realloc(m->weights, (size_t)cap * sizeof *nw);
        if (!nw) {
            *rc = USHER_ERR_NOMEM;
            return;
        }
        /* wmap entries point into the array: rebase them */
        for (uint32_t j = 0; j <= k; j++)
            for (uint32_t id = 0; id < m->src[j].ir->n_tensor_ids; id++)
                if (m->src[j].wmap[id])
                    m->src[j].wmap[id] = nw + (m->src[j].wmap[id] - m->weights);
        m->weights = nw;
        m->cap_weights = cap;
    }
    merge_weight *w = &m->weights[m->n_weights++];
    memset(w, 0, sizeof *w);
    w->src = t;
    w->model = k;
    w->n_users = 1;
    s->wmap[t->id] = w;
}

/* ---- checks and signature ------------------------------------------------------------ */
static int check_ops(merge_src *s, ir_graph *g, usher_error *err)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
            return us_err_set(err, USHER_ERR_UNSUPPORTED,
                              "%s: cannot merge: node '%s' uses operator %s of domain '%s' "
                              "(only the default ONNX domain is merged)",
                              s->path, n->name, n->op_type, n->domain);
        if (n->op == IR_OP_UNKNOWN)
            return us_err_set(err, USHER_ERR_UNSUPPORTED,
                              "%s: cannot merge: node '%s' uses operator %s, which usher does "
                              "not know (src/ir/ops.def)",
                              s->path, n->name, n->op_type);
        for (uint32_t a = 0; a < n->n_attr; a++) {
            int rc = USHER_OK;
            if (n->attr[a].type == IR_ATTR_GRAPH && n->attr[a].g)
                rc = check_ops(s, n->attr[a].g, err);
            for (size_t j = 0; rc == USHER_OK && n->attr[a].type == IR_ATTR_GRAPHS &&
                               j < n->attr[a].n; j++)
                rc = check_ops(s, n->attr[a].graphs[j], err);
            if (rc < 0)
                return rc;
        }
    }
    return USHER_OK;
}

static void signature(merge_src *s)
{
    ir_graph *g = s->ir->main;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        s->sig_ops[g->nodes[i]->op == IR_OP_UNKNOWN ? IR_OP_COUNT : g->nodes[i]->op] += 1;
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        ir_tensor *t = g->tensors[i];
        if (!(t->flags & IR_TF_CONST))
            continue;
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)t->dtype;
        for (int d = 0; d < t->decl.rank; d++)
            h = (h ^ (uint64_t)t->decl.d[d].c) * 1099511628211ULL;
        s->sig_shapes[h % 64] += 1;
    }
}

static double ruzicka(const double *a, const double *b, size_t n)
{
    double mn = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        mn += fmin(a[i], b[i]);
        mx += fmax(a[i], b[i]);
    }
    return mx > 0 ? 1.0 - mn / mx : 0.0;
}

static double sig_distance(const merge_src *a, const merge_src *b)
{
    return 0.5 * ruzicka(a->sig_ops, b->sig_ops, IR_OP_COUNT + 1) +
           0.5 * ruzicka(a->sig_shapes, b->sig_shapes, 64);
}

/* DBSCAN with minPts = 2 over a distance matrix; labels -1 = noise */
static void dbscan(const double *d, uint32_t n, double eps, int *label)
{
    for (uint32_t i = 0; i < n; i++)
        label[i] = -2; /* unvisited */
    int c = 0;
    uint32_t stack[MERGE_MAX_MODELS];
    for (uint32_t i = 0; i < n; i++) {
        if (label[i] != -2)
            continue;
        uint32_t nb = 0;
        for (uint32_t j = 0; j < n; j++)
            nb += j != i && d[(size_t)i * n + j] <= eps;
        if (nb + 1 < 2) {
            label[i] = -1;
            continue;
        }
        label[i] = c;
        uint32_t top = 0;
        stack[top++] = i;
        while (top) {
            uint32_t p = stack[--top];
            uint32_t np = 0;
            for (uint32_t j = 0; j < n; j++)
                np += j != p && d[(size_t)p * n + j] <= eps;
            if (np + 1 < 2)
                continue; /* border point: does not expand */
            for (uint32_t j = 0; j < n; j++) {
                if (j == p || d[(size_t)p * n + j] > eps)
                    continue;
                if (label[j] == -1)
                    label[j] = c;
                if (label[j] != -2)
                    continue;
                label[j] = c;
                stack[top++] = j;
            }
        }
        c++;
    }
}

/* ---- operator matching ------------------------------------------------------------------ */
bool merge_attrs_equal(const ir_node *a, const ir_node *b)
{
    if (a->n_attr != b->n_attr)
        return false;
    for (uint32_t i = 0; i < a->n_attr; i++) {
        const ir_attr *x = &a->attr[i], *y = ir_node_attr(b, a->attr[i].name);
        if (!y || x->type != y->type)
            return false;
        switch (x->type) {
        case IR_ATTR_INT: if (x->i != y->i) return false; break;
        case IR_ATTR_FLOAT: if (memcmp(&x->f, &y->f, sizeof x->f) != 0) return false; break;
        case IR_ATTR_STRING:
            if (x->s_len != y->s_len || memcmp(x->s, y->s, x->s_len) != 0)
                return false;
            break;
        case IR_ATTR_INTS:
            if (x->n != y->n || (x->n && memcmp(x->ints, y->ints, x->n * sizeof *x->ints)))
                return false;
            break;
        case IR_ATTR_FLOATS:
            if (x->n != y->n || (x->n && memcmp(x->floats, y->floats, x->n * sizeof *x->floats)))
                return false;
            break;
        case IR_ATTR_TENSOR:
            if (!merge_tensor_close(x->t, y->t, 0))
                return false;
            break;
        default:
            return false; /* subgraphs and the rest: never treated as equal */
        }
    }
    return true;
}

static bool shape_like(const ir_shape *a, const ir_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++) {
        bool la = ir_dim_is_lit(a->d[i]), lb = ir_dim_is_lit(b->d[i]);
        if (la != lb || (la && a->d[i].c != b->d[i].c))
            return false;
    }
    return true;
}

static double node_cost(const usher_merge *m, uint32_t k, const ir_node *a, const ir_node *b)
{
    const merge_src *s0 = &m->src[0], *sk = &m->src[k];
    double c = 0;
    if (a->n_in != b->n_in || a->n_out != b->n_out || !merge_attrs_equal(a, b))
        c += 2;
    for (uint32_t o = 0; o < a->n_out && o < b->n_out; o++)
        if (a->out[o] && b->out[o] && !shape_like(&a->out[o]->shape, &b->out[o]->shape))
            c += 1;
    double pa = (double)s0->pos[a->id] / (s0->n_nodes ? s0->n_nodes : 1);
    double pb = (double)sk->pos[b->id] / (sk->n_nodes ? sk->n_nodes : 1);
    c += fabs(pa - pb);
    /* structure: what feeds each input (nothing, a constant, a graph input, an operator
     * of which type) */
    for (uint32_t i = 0; i < a->n_in && i < b->n_in; i++) {
        const ir_tensor *x = a->in[i], *y = b->in[i];
        if (!x || !y) {
            c += (!x) != (!y);
            continue;
        }
        bool cx = x->flags & IR_TF_CONST, cy = y->flags & IR_TF_CONST;
        if (cx != cy || (!x->producer) != (!y->producer))
            c += 1;
        else if (x->producer && y->producer && x->producer->op != y->producer->op)
            c += 0.5;
    }
    uint32_t nw = 0, diff = 0;
    for (uint32_t i = 0; i < a->n_in && i < b->n_in; i++) {
        ir_tensor *x = a->in[i], *y = b->in[i];
        if (!x || !y || !(x->flags & IR_TF_CONST) || !(y->flags & IR_TF_CONST))
            continue;
        nw++;
        merge_weight *wx = s0->wmap[x->id], *wy = sk->wmap[y->id];
        diff += !(wx && wx == wy);
    }
    if (nw)
        c += 0.5 * diff / nw;
    return c;
}

static int match_models(usher_merge *m, uint32_t k)
{
    merge_src *s0 = &m->src[0], *sk = &m->src[k];
    int rc = USHER_OK;
    uint32_t cap = s0->n_nodes > sk->n_nodes ? s0->n_nodes : sk->n_nodes;
    uint32_t *ra = us_mallocarray(cap ? cap : 1, sizeof *ra);
    uint32_t *rb = us_mallocarray(cap ? cap : 1, sizeof *rb);
    uint32_t *assign = us_mallocarray(cap ? cap : 1, sizeof *assign);
    double *cost = NULL;
    if (!ra || !rb || !assign) {
        rc = USHER_ERR_NOMEM;
        goto out;
    }
    for (int op = 0; op <= IR_OP_COUNT; op++) {
        uint32_t na = 0, nb = 0;
        for (uint32_t i = 0; i < s0->n_nodes; i++)
            if ((int)s0->nodes[i]->op == op)
                ra[na++] = i;
        for (uint32_t i = 0; i < sk->n_nodes; i++)
            if ((int)sk->nodes[i]->op == op)
                rb[nb++] = i;
        if (!na || !nb)
            continue;
        uint32_t n = na > nb ? na : nb;
        us_free(cost);
        cost = us_mallocarray((size_t)n * n, sizeof *cost);
        if (!cost) {
            rc = USHER_ERR_NOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++)
                cost[(size_t)i * n + j] =
                    i < na && j < nb ? node_cost(m, k, s0->nodes[ra[i]], sk->nodes[rb[j]]) : 100.0;
        if ((rc = merge_hungarian(cost, n, assign)) < 0)
            goto out;
        for (uint32_t i = 0; i < na; i++)
            if (assign[i] < nb) {
                sk->match[sk->nodes[rb[assign[i]]]->id] = s0->nodes[ra[i]];
                if (k == 1 || m->n_src == 2)
                    m->rep.n_nodes_matched++;
            }
    }
out:
    us_free(cost);
    us_free(ra);
    us_free(rb);
    us_free(assign);
    return rc;
}

/* ---- loading ---------------------------------------------------------------------------- */
static void make_label(merge_src *s, uint32_t k, const merge_src *all)
{
    const char *b = strrchr(s->path, '/');
    b = b ? b + 1 : s->path;
    size_t n = strlen(b);
    if (n > 5 && strcmp(b + n - 5, ".onnx") == 0)
        n -= 5;
    if (n >= MERGE_LABEL_MAX - 8)
        n = MERGE_LABEL_MAX - 8;
    snprintf(s->label, sizeof s->label, "%.*s", (int)n, b);
    for (char *c = s->label; *c; c++)
        if (*c == '/' || *c == '"' || *c == '\\' || (unsigned char)*c < 32)
            *c = '_';
    for (uint32_t j = 0; j < k; j++)
        if (strcmp(all[j].label, s->label) == 0) {
            size_t l = strlen(s->label);
            snprintf(s->label + l, sizeof s->label - l, "_%u", k);
            break;
        }
}

static int load_one(usher_merge *m, uint32_t k, usher_error *err)
{
    merge_src *s = &m->src[k];
    onnx_load_params lp = onnx_load_default_params();
    int rc = onnx_load_file(s->path, &lp, &s->ir, err);
    if (rc < 0)
        return us_err_prefix(err, rc, "cannot merge: ");
    make_label(s, k, m->src);
    if (s->ir->graph_only)
        return us_err_set(err, USHER_ERR_INVALID,
                          "%s: cannot merge: the model has no weights (graph-only); fill them "
                          "with 'usher convert --fill-random' first",
                          s->path);
    if ((rc = check_ops(s, s->ir->main, err)) < 0)
        return rc;
    ir_infer_report ir;
    ir_infer_params ip = ir_infer_default_params();
    rc = ir_model_infer(s->ir, &ip, &ir, err);
    if (rc < 0 && rc != USHER_ERR_SHAPE)
        return us_err_prefix(err, rc, "%s: cannot merge: ", s->path);
    s->nodes = s->ir->main->nodes;
    s->n_nodes = s->ir->main->n_nodes;
    uint32_t nt = s->ir->n_tensor_ids ? s->ir->n_tensor_ids : 1;
    uint32_t nn = s->ir->n_node_ids ? s->ir->n_node_ids : 1;
    s->wmap = us_calloc(nt, sizeof *s->wmap);
    s->match = us_calloc(nn, sizeof *s->match);
    s->pos = us_mallocarray(nn, sizeof *s->pos);
    if (!s->wmap || !s->match || !s->pos)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < nn; i++)
        s->pos[i] = -1;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        s->pos[s->nodes[i]->id] = (int32_t)i;
    s->kernels = merge_kernel_count(s->ir->main);
    signature(s);
    rc = USHER_OK;
    each_const(m, k, s->ir->main, add_weight, &rc);
    if (rc < 0)
        return us_err_set(err, rc, "out of memory");
    return USHER_OK;
}

static int check_pair(const merge_src *a, const merge_src *b, usher_error *err)
{
    int64_t oa = ir_model_opset(a->ir, ""), ob = ir_model_opset(b->ir, "");
    if (oa != ob)
        return us_err_set(err, USHER_ERR_INVALID,
                          "cannot merge: mismatched opsets: %s imports ONNX opset %lld, %s "
                          "opset %lld (convert them to one opset first)",
                          a->path, (long long)oa, b->path, (long long)ob);
    const ir_graph *ga = a->ir->main, *gb = b->ir->main;
    if (ga->n_inputs != gb->n_inputs)
        return us_err_set(err, USHER_ERR_INVALID,
                          "cannot merge: different inputs: %s has %u, %s has %u", a->path,
                          ga->n_inputs, b->path, gb->n_inputs);
    for (uint32_t i = 0; i < ga->n_inputs; i++) {
        int ta = ga->inputs[i]->dtype, tb = gb->inputs[i]->dtype;
        if (ta != tb)
            return us_err_set(err, USHER_ERR_INVALID,
                              "cannot merge: different input types: input %u is '%s' %s in %s "
                              "but '%s' %s in %s",
                              i, ga->inputs[i]->name, ir_dtype_name(ta), a->path,
                              gb->inputs[i]->name, ir_dtype_name(tb), b->path);
    }
    return USHER_OK;
}

static int copy_strs(char ***dst, const char *const *src, size_t n)
{
    if (!n)
        return USHER_OK;
    *dst = us_calloc(n, sizeof **dst);
    if (!*dst)
        return USHER_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (!src[i] || !((*dst)[i] = us_strdup(src[i])))
            return USHER_ERR_NOMEM;
    return USHER_OK;
}

static int open_all(const char *const *paths, size_t n, const usher_merge_params *p,
                    usher_merge **out, usher_error *err)
{
    *out = NULL;
    if (!paths || n < 2)
        return us_err_set(err, USHER_ERR_INVALID, "cannot merge: give at least two models");
    if (n > MERGE_MAX_MODELS)
        return us_err_set(err, USHER_ERR_LIMIT, "cannot merge: %zu models, at most %d", n,
                          MERGE_MAX_MODELS);
    usher_merge_params def = usher_merge_default_params();
    if (!p)
        p = &def;
    if (!(p->weight_rtol >= 0 && p->weight_rtol < 1) ||
        !(p->cluster_eps >= 0 && p->cluster_eps <= 1) ||
        !(p->verify_tol > 0) || p->verify_runs < 1 || p->verify_runs > 100 ||
        p->verify_dim < 1 || p->verify_dim > 4096 || p->kind < -1 ||
        p->kind > USHER_MERGE_SIDE_BY_SIDE)
        return us_err_set(err, USHER_ERR_INVALID,
                          "merge params: weight_rtol in [0,1), cluster_eps in [0,1], verify_tol "
                          "> 0, verify_runs 1..100, verify_dim 1..4096, kind -1..2");
    usher_merge *m = us_calloc(1, sizeof *m);
    if (!m)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    m->p = *p;
    m->src = us_calloc(n, sizeof *m->src);
    if (!m->src || copy_strs(&m->shape_strs, p->shapes, p->n_shapes) < 0 ||
        copy_strs(&m->value_strs, p->values, p->n_values) < 0 ||
        copy_strs(&m->data_strs, p->data, p->n_data) < 0) {
        usher_merge_free(m);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    m->p.shapes = (const char *const *)m->shape_strs;
    m->p.values = (const char *const *)m->value_strs;
    m->p.data = (const char *const *)m->data_strs;
    m->p.ort_library = NULL; /* not kept: the caller's string */
    if (p->ort_library && (m->p.ort_library = us_strdup(p->ort_library)) == NULL) {
        usher_merge_free(m);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        m->src[i].path = paths[i];
        m->n_src = (uint32_t)i + 1;
        int rc = load_one(m, (uint32_t)i, err);
        if (rc == USHER_OK && i > 0)
            rc = check_pair(&m->src[0], &m->src[i], err);
        if (rc < 0) {
            usher_merge_free(m);
            return rc;
        }
    }
    *out = m;
    return USHER_OK;
}

int usher_merge_cluster(const char *const *paths, size_t n, const usher_merge_params *p,
                        double *dist, int *labels, usher_error *err)
{
    usher_merge *m;
    int rc = open_all(paths, n, p, &m, err);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            dist[(size_t)i * n + j] = sig_distance(&m->src[i], &m->src[j]);
    dbscan(dist, (uint32_t)n, m->p.cluster_eps, labels);
    usher_merge_free(m);
    return USHER_OK;
}

int usher_merge_models(const char *const *paths, size_t n, const usher_merge_params *p,
                       usher_merge **out, usher_error *err)
{
    if (!out)
        return us_err_set(err, USHER_ERR_INVALID, "out is NULL");
    *out = NULL;
    double t0 = now_s();
    usher_merge *m;
    int rc = open_all(paths, n, p, &m, err);
    if (rc < 0)
        return rc;
    static_assert(MERGE_MAX_MODELS <= 64, "dist lives on the stack");
    double dist[MERGE_MAX_MODELS * MERGE_MAX_MODELS] = {0};
    int label[MERGE_MAX_MODELS] = {0};
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) {
            dist[i * n + j] = sig_distance(&m->src[i], &m->src[j]);
            if (dist[i * n + j] > m->rep.max_signature_distance)
                m->rep.max_signature_distance = dist[i * n + j];
        }
    dbscan(dist, (uint32_t)n, m->p.cluster_eps, label);
    for (uint32_t i = 0; i < n; i++)
        if (label[i] < 0 || label[i] != label[0]) {
            uint32_t near = i == 0 ? 1 : 0;
            for (uint32_t j = 0; j < n; j++)
                if (j != i && dist[i * n + j] < dist[i * n + near])
                    near = j;
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "cannot merge: the models do not form one cluster: %s is %s "
                            "(DBSCAN, eps %.2f over the signature distance; its nearest model "
                            "%s is at %.3f)",
                            m->src[i].path,
                            label[i] < 0 ? "near no other model" : "in another cluster",
                            m->p.cluster_eps, m->src[near].path, dist[i * n + near]);
            usher_merge_free(m);
            return rc;
        }
    for (uint32_t k = 1; k < n; k++)
        if ((rc = match_models(m, k)) < 0) {
            usher_merge_free(m);
            return us_err_set(err, rc, "out of memory");
        }
    m->rep.n_models = n;
    for (uint32_t k = 0; k < n; k++) {
        m->rep.weight_bytes_before += m->src[k].weight_bytes;
        m->rep.kernels_before += m->src[k].kernels;
    }
    if ((rc = merge_build(m, err)) < 0) {
        usher_merge_free(m);
        return rc;
    }
    m->rep.why = m->why;
    m->rep.build_seconds = now_s() - t0;
    *out = m;
    us_err_clear(err);
    return USHER_OK;
}

int usher_merge_write(usher_merge *m, const char *path, usher_error *err)
{
    if (!m || !path || !m->merged)
        return us_err_set(err, USHER_ERR_INVALID, "merge or path is NULL");
    size_t l = strlen(path) + 64;
    char *tmp = us_malloc(l);
    if (!tmp)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    snprintf(tmp, l, "%s.merge-%ld.tmp", path, (long)getpid());
    onnx_save_params sp = onnx_save_default_params();
    int rc = onnx_save_file(m->merged, tmp, &sp, err);
    if (rc < 0)
        goto out;
    if (m->p.verify && (rc = merge_verify(m, tmp, err)) < 0) {
        unlink(tmp);
        goto out;
    }
    if (m->p.verify && m->p.kind < 0 && m->rep.kind == USHER_MERGE_STACKED &&
        m->rep.measured_speedup > 0 && m->rep.measured_speedup < 1.0) {
        /* (b) must never be slower: keep the operators per model instead */
        unlink(tmp);
        double slow = m->rep.measured_speedup;
        char was[sizeof m->why];
        snprintf(was, sizeof was, "%s", m->why);
        ir_model_free(m->merged);
        m->merged = NULL;
        m->p.kind = USHER_MERGE_SIDE_BY_SIDE;
        rc = merge_build(m, err);
        m->p.kind = -1;
        if (rc < 0)
            goto out;
        size_t wl = strlen(m->why);
        snprintf(m->why + wl, sizeof m->why - wl,
                 " (stacked was built and verified but ran %.2fx the separate models' speed on "
                 "ONNX Runtime here, so it was dropped: %.200s)",
                 slow, was);
        m->rep.stacked_dropped = true;
        if ((rc = onnx_save_file(m->merged, tmp, &sp, err)) < 0)
            goto out;
        if ((rc = merge_verify(m, tmp, err)) < 0) {
            unlink(tmp);
            goto out;
        }
    }
    m->rep.verified = m->p.verify;
    if ((rc = us_file_replace(tmp, path, err)) < 0) {
        unlink(tmp);
        goto out;
    }
    rc = USHER_OK;
out:
    us_free(tmp);
    return rc;
}

const usher_merge_report *usher_merge_get_report(const usher_merge *m) { return m ? &m->rep : NULL; }

const char *usher_merge_label(const usher_merge *m, size_t i)
{
    return m && i < m->n_src ? m->src[i].label : NULL;
}

int usher_merge_member_dim(const usher_model *member, const char *label,
                           const usher_model *merged, const char *dim, const char **name)
{
    uint32_t in = 0, axis = 0;
    usher_tensor_info ti, tg;
    char want[512];
    if (usher_model_dim_where(member, dim, &in, &axis) < 0 ||
        usher_model_input(member, in, &ti) < 0)
        return USHER_ERR_NOT_FOUND;
    snprintf(want, sizeof want, "%s/%s", label, ti.name);
    for (uint32_t g = 0; usher_model_input(merged, g, &tg) == USHER_OK; g++)
        if (strcmp(tg.name, want) == 0)
            return usher_model_input_dim(merged, g, axis, name);
    return USHER_ERR_NOT_FOUND;
}

static void json_str(us_buf *b, const char *s)
{
    us_buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            us_buf_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 32)
            us_buf_printf(b, "\\u%04x", (unsigned)(unsigned char)*s);
        else
            us_buf_append(b, s, 1);
    }
    us_buf_append(b, "\"", 1);
}

char *usher_merge_json(const usher_merge *m)
{
    if (!m)
        return NULL;
    const usher_merge_report *r = &m->rep;
    us_buf b;
    us_buf_init(&b, 1u << 20);
    us_buf_printf(&b, "{\"models\":[");
    for (uint32_t k = 0; k < m->n_src; k++) {
        us_buf_printf(&b, "%s{\"label\":", k ? "," : "");
        json_str(&b, m->src[k].label);
        us_buf_printf(&b, ",\"path\":");
        json_str(&b, m->src[k].path);
        us_buf_printf(&b, ",\"weight_bytes\":%llu,\"kernels\":%u}",
                      (unsigned long long)m->src[k].weight_bytes, m->src[k].kernels);
    }
    us_buf_printf(&b, "],\"kind\":");
    json_str(&b, r->kind_name ? r->kind_name : "");
    us_buf_printf(&b, ",\"why\":");
    json_str(&b, m->why);
    us_buf_printf(&b,
                  ",\"weight_bytes_before\":%llu,\"weight_bytes_after\":%llu,"
                  "\"weight_bytes_saved\":%lld,\"kernels_before\":%llu,\"kernels_after\":%llu,"
                  "\"kernels_saved\":%lld,\"weights\":%u,\"weights_identical\":%u,"
                  "\"weights_close\":%u,\"weight_rtol\":%g,\"nodes_matched\":%u,"
                  "\"nodes_shared\":%u,\"nodes_partial\":%u,\"max_signature_distance\":%.4f,"
                  "\"build_seconds\":%.4f,\"verified\":%s,\"verify_max_rel_err\":%.3g,"
                  "\"verify_tol\":%g,\"measured_speedup\":%.3f,\"stacked_dropped\":%s}",
                  (unsigned long long)r->weight_bytes_before,
                  (unsigned long long)r->weight_bytes_after,
                  (long long)r->weight_bytes_before - (long long)r->weight_bytes_after,
                  (unsigned long long)r->kernels_before, (unsigned long long)r->kernels_after,
                  (long long)r->kernels_before - (long long)r->kernels_after, r->n_weights,
                  r->n_weights_identical, r->n_weights_close, m->p.weight_rtol,
                  r->n_nodes_matched, r->n_nodes_shared, r->n_nodes_partial,
                  r->max_signature_distance,
                  r->build_seconds, r->verified ? "true" : "false", r->verify_max_rel_err,
                  m->p.verify_tol, r->measured_speedup, r->stacked_dropped ? "true" : "false");
    char *s = us_buf_ok(&b) ? us_strdup(us_buf_str(&b)) : NULL;
    us_buf_free(&b);
    return s;
}

void usher_merge_json_free(char *s) { us_free(s); }

void usher_merge_free(usher_merge *m)
{
    if (!m)
        return;
    ir_model_free(m->merged);
    for (uint32_t k = 0; m->src && k < m->n_src; k++) {
        us_free(m->src[k].wmap);
        us_free(m->src[k].match);
        us_free(m->src[k].pos);
        ir_model_free(m->src[k].ir);
    }
    us_free(m->src);
    us_free(m->weights);
    for (size_t i = 0; m->shape_strs && i < m->p.n_shapes; i++)
        us_free(m->shape_strs[i]);
    for (size_t i = 0; m->value_strs && i < m->p.n_values; i++)
        us_free(m->value_strs[i]);
    for (size_t i = 0; m->data_strs && i < m->p.n_data; i++)
        us_free(m->data_strs[i]);
    us_free(m->shape_strs);
    us_free(m->value_strs);
    us_free(m->data_strs);
    us_free((void *)(uintptr_t)m->p.ort_library);
    us_free(m);
}
