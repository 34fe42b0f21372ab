/*
 * infer.c - type and shape inference driver and its helpers (layer 2).
 *
 * The pass walks every graph in topological order and calls the routine
 * ops.def names for each node. Three things make real exported models go
 * through completely:
 *   - symbolic dims: an input's "batch" (or an unnamed dynamic dim) flows
 *     through the graph as a symbol; arithmetic on it stays exact while it
 *     is affine (2*batch+1) and becomes a hash-consed derived symbol when
 *     it is not (floor((H-1)/2)), so equal expressions compare equal;
 *   - values: small integer tensors (Shape -> Gather -> Concat -> Reshape
 *     chains that exporters emit) are evaluated, symbols included, so a
 *     Reshape target is known even when it depends on the batch;
 *   - isolation: a node that cannot be inferred (unsupported operator,
 *     inconsistent attributes) gets unknown outputs and a recorded reason;
 *     the pass goes on and the report counts it.
 * Everything created here (values, derived symbols) lives in the model's
 * infer_arena, which each run resets.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/err.h"
#include "core/log.h"
#include "ir_impl.h"

/* ---- failure ------------------------------------------------------------------- */
int ir_fail(ir_ctx *c, const char *fmt, ...)
{
    char tmp[sizeof c->msg]; /* the arguments may include c->msg itself */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(c->msg, tmp, sizeof tmp);
    return USHER_ERR_SHAPE;
}

/* ---- derived symbols --------------------------------------------------------------- */
/* an operand of a derived expression, parenthesised when it is a sum or product */
static void operand(const ir_model *m, ir_dim d, char *buf, size_t n)
{
    char t[96];
    ir_dim_format(m, d, t, sizeof t);
    if (!ir_dim_is_lit(d) && (d.a != 1 || d.c != 0))
        snprintf(buf, n, "(%s)", t);
    else
        snprintf(buf, n, "%s", t);
}

/* register a new derived/unknown symbol under its hash-consing key */
static ir_dim intern(ir_ctx *c, const char *key, const char *name, ir_sym *s)
{
    ir_model *m = c->m;
    s->name = us_arena_strdup(&m->infer_arena, name);
    char *k = us_arena_strdup(&m->infer_arena, key);
    int32_t id = (s->name && k) ? ir_model_add_derived_sym(m, s) : -1;
    if (id < 0 || us_map_put(&m->sym_exprs, k, (void *)(uintptr_t)(id + 1), NULL) < 0) {
        c->oom = true;
        return ir_dim_lit(0);
    }
    return ir_dim_symbol(id);
}

static ir_dim derive(ir_ctx *c, ir_symop op, ir_dim x, ir_dim y)
{
    ir_model *m = c->m;
    char key[160];
    snprintf(key, sizeof key, "%d|%d:%lld:%lld|%d:%lld:%lld", (int)op, x.sym, (long long)x.a,
             (long long)x.c, y.sym, (long long)y.a, (long long)y.c);
    void *hit = us_map_get(&m->sym_exprs, key);
    if (hit)
        return ir_dim_symbol((int32_t)((uintptr_t)hit - 1));
    char xs[100], ys[100], name[224];
    operand(m, x, xs, sizeof xs);
    operand(m, y, ys, sizeof ys);
    switch (op) {
    case IR_SYMOP_ADD: snprintf(name, sizeof name, "(%s+%s)", xs, ys); break;
    case IR_SYMOP_MUL: snprintf(name, sizeof name, "(%s*%s)", xs, ys); break;
    case IR_SYMOP_FLOORDIV: snprintf(name, sizeof name, "floor(%s/%s)", xs, ys); break;
    case IR_SYMOP_CEILDIV: snprintf(name, sizeof name, "ceil(%s/%s)", xs, ys); break;
    case IR_SYMOP_MOD: snprintf(name, sizeof name, "(%s%%%s)", xs, ys); break;
    case IR_SYMOP_MIN: snprintf(name, sizeof name, "min(%s,%s)", xs, ys); break;
    case IR_SYMOP_MAX: snprintf(name, sizeof name, "max(%s,%s)", xs, ys); break;
    default: snprintf(name, sizeof name, "?"); break;
    }
    if (strlen(name) > 80)
        snprintf(name, sizeof name, "s%u", m->n_syms);
    ir_sym s = {0};
    s.kind = IR_SYM_DERIVED;
    s.op = op;
    s.lhs = x;
    s.rhs = y;
    return intern(c, key, name, &s);
}

ir_dim ir_d_unknown(ir_ctx *c, uint32_t slot, int axis)
{
    ir_model *m = c->m;
    char key[96];
    snprintf(key, sizeof key, "u|%u|%u|%d", c->n ? c->n->id : 0u, slot, axis);
    void *hit = us_map_get(&m->sym_exprs, key);
    if (hit)
        return ir_dim_symbol((int32_t)((uintptr_t)hit - 1));
    char name[160];
    const char *tn = (c->n && slot < c->n->n_out && c->n->out[slot]) ? c->n->out[slot]->name : "?";
    snprintf(name, sizeof name, "?%.100s:%d", tn, axis);
    ir_sym s = {0};
    s.kind = IR_SYM_UNKNOWN;
    s.op = IR_SYMOP_NONE;
    return intern(c, key, name, &s);
}

static ir_dim ovf(ir_ctx *c)
{
    ir_fail(c, "dimension arithmetic overflows 64 bits");
    c->oom = c->oom; /* not an allocation failure: the caller checks c->msg */
    return ir_dim_lit(0);
}

ir_dim ir_d_addc(ir_ctx *c, ir_dim x, int64_t k)
{
    int64_t r;
    if (__builtin_add_overflow(x.c, k, &r))
        return ovf(c);
    x.c = r;
    return x;
}

ir_dim ir_d_add(ir_ctx *c, ir_dim x, ir_dim y)
{
    if (ir_dim_is_lit(y))
        return ir_d_addc(c, x, y.c);
    if (ir_dim_is_lit(x))
        return ir_d_addc(c, y, x.c);
    if (x.sym == y.sym) {
        int64_t a, k;
        if (__builtin_add_overflow(x.a, y.a, &a) || __builtin_add_overflow(x.c, y.c, &k))
            return ovf(c);
        if (a == 0)
            return ir_dim_lit(k);
        ir_dim r = {x.sym, 0, a, k};
        return r;
    }
    /* canonical operand order for a commutative op */
    if (x.sym > y.sym) {
        ir_dim t = x;
        x = y;
        y = t;
    }
    /* keep the constants outside the derived symbol: (x - cx) + (y - cy) + (cx + cy) */
    int64_t k;
    if (__builtin_add_overflow(x.c, y.c, &k))
        return ovf(c);
    x.c = 0;
    y.c = 0;
    ir_dim r = derive(c, IR_SYMOP_ADD, x, y);
    return ir_d_addc(c, r, k);
}

ir_dim ir_d_mulc(ir_ctx *c, ir_dim x, int64_t k)
{
    if (k == 0)
        return ir_dim_lit(0);
    int64_t a = 0, r;
    if (__builtin_mul_overflow(x.c, k, &r) ||
        (!ir_dim_is_lit(x) && __builtin_mul_overflow(x.a, k, &a)))
        return ovf(c);
    x.c = r;
    if (!ir_dim_is_lit(x))
        x.a = a;
    return x;
}

ir_dim ir_d_mul(ir_ctx *c, ir_dim x, ir_dim y)
{
    if (ir_dim_is_lit(y))
        return ir_d_mulc(c, x, y.c);
    if (ir_dim_is_lit(x))
        return ir_d_mulc(c, y, x.c);
    if (x.sym > y.sym || (x.sym == y.sym && (x.a > y.a || (x.a == y.a && x.c > y.c)))) {
        ir_dim t = x;
        x = y;
        y = t;
    }
    return derive(c, IR_SYMOP_MUL, x, y);
}

static int64_t floordiv64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t ceildiv64(int64_t a, int64_t b) { return -floordiv64(-a, b); }

static ir_dim divide(ir_ctx *c, ir_dim x, ir_dim y, bool ceil_)
{
    if (ir_dim_is_lit(y)) {
        int64_t k = y.c;
        if (k <= 0) {
            ir_fail(c, "division of a dimension by %lld", (long long)k);
            return ir_dim_lit(0);
        }
        if (k == 1)
            return x;
        if (ir_dim_is_lit(x))
            return ir_dim_lit(ceil_ ? ceildiv64(x.c, k) : floordiv64(x.c, k));
        if (x.a % k == 0) {
            ir_dim r = {x.sym, 0, x.a / k, ceil_ ? ceildiv64(x.c, k) : floordiv64(x.c, k)};
            return r;
        }
    } else if (!ir_dim_is_lit(x) && ir_dim_eq(x, y)) {
        return ir_dim_lit(1);
    }
    return derive(c, ceil_ ? IR_SYMOP_CEILDIV : IR_SYMOP_FLOORDIV, x, y);
}

ir_dim ir_d_floordiv(ir_ctx *c, ir_dim x, ir_dim y) { return divide(c, x, y, false); }
ir_dim ir_d_ceildiv(ir_ctx *c, ir_dim x, ir_dim y) { return divide(c, x, y, true); }

static ir_dim minmax(ir_ctx *c, ir_dim x, ir_dim y, bool max_)
{
    if (ir_dim_is_lit(x) && ir_dim_is_lit(y))
        return ir_dim_lit(max_ ? (x.c > y.c ? x.c : y.c) : (x.c < y.c ? x.c : y.c));
    if (ir_dim_eq(x, y))
        return x;
    if (!ir_dim_is_lit(x) && !ir_dim_is_lit(y) && x.sym == y.sym && x.a == y.a)
        return (x.c > y.c) == max_ ? x : y;
    if (x.sym > y.sym) {
        ir_dim t = x;
        x = y;
        y = t;
    }
    return derive(c, max_ ? IR_SYMOP_MAX : IR_SYMOP_MIN, x, y);
}

ir_dim ir_d_min(ir_ctx *c, ir_dim x, ir_dim y) { return minmax(c, x, y, false); }
ir_dim ir_d_max(ir_ctx *c, ir_dim x, ir_dim y) { return minmax(c, x, y, true); }

/* ---- node access ---------------------------------------------------------------- */
bool ir_has_in(const ir_node *n, uint32_t i) { return i < n->n_in && n->in[i] != NULL; }

const ir_shape *ir_in_shape(const ir_node *n, uint32_t i)
{
    return ir_has_in(n, i) ? &n->in[i]->shape : NULL;
}

int ir_in_dtype(const ir_node *n, uint32_t i)
{
    return ir_has_in(n, i) ? n->in[i]->dtype : IR_DT_UNDEFINED;
}

int ir_set_out(ir_ctx *c, uint32_t slot, int dtype, const ir_shape *s)
{
    ir_node *n = c->n;
    if (slot >= n->n_out || !n->out[slot])
        return USHER_OK;
    if (s->rank > IR_MAX_RANK)
        return ir_fail(c, "output %u would have rank %d, over the limit of %d", slot, s->rank,
                       IR_MAX_RANK);
    ir_tensor *t = n->out[slot];
    t->dtype = dtype;
    t->shape = *s;
    for (int i = 0; i < s->rank; i++)
        if (ir_dim_is_lit(s->d[i]) && s->d[i].c < 0)
            return ir_fail(c, "output %u dim %d would be negative (%lld)", slot, i,
                           (long long)s->d[i].c);
    return USHER_OK;
}

int ir_set_out_unknown(ir_ctx *c, uint32_t slot, int dtype)
{
    ir_node *n = c->n;
    if (slot < n->n_out && n->out[slot]) {
        n->out[slot]->dtype = dtype;
        n->out[slot]->shape.rank = IR_RANK_UNKNOWN;
    }
    return USHER_OK;
}

int ir_norm_axis(ir_ctx *c, int64_t axis, int rank, const char *what, int *out)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return ir_fail(c, "%s %lld is out of range for rank %d", what, (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return USHER_OK;
}

int ir_broadcast(ir_ctx *c, const ir_shape *a, const ir_shape *b, ir_shape *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    ir_shape o;
    memset(&o, 0, sizeof o);
    o.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        ir_dim da = ia >= 0 ? a->d[ia] : ir_dim_lit(1);
        ir_dim db = ib >= 0 ? b->d[ib] : ir_dim_lit(1);
        if (ir_dim_is_lit(da) && da.c == 1)
            o.d[i] = db;
        else if (ir_dim_is_lit(db) && db.c == 1)
            o.d[i] = da;
        else if (ir_dim_eq(da, db))
            o.d[i] = da;
        else if (ir_dim_is_lit(da) && ir_dim_is_lit(db))
            return ir_fail(c, "cannot broadcast dim %lld against %lld (axis %d of the result)",
                           (long long)da.c, (long long)db.c, i);
        else /* one symbolic: a valid model has them equal; keep the literal if any */
            o.d[i] = ir_dim_is_lit(db) ? db : da;
    }
    *out = o;
    return USHER_OK;
}

/* ---- attributes ---------------------------------------------------------------- */
int64_t ir_attr_i(const ir_node *n, const char *name, int64_t def)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INT ? a->i : def;
}

float ir_attr_f(const ir_node *n, const char *name, float def)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_FLOAT ? a->f : def;
}

const char *ir_attr_s(const ir_node *n, const char *name, const char *def)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_STRING ? a->s : def;
}

long ir_attr_ints(const ir_node *n, const char *name, const int64_t **v)
{
    const ir_attr *a = ir_node_attr(n, name);
    if (!a || a->type != IR_ATTR_INTS)
        return -1;
    *v = a->ints;
    return (long)a->n;
}

/* ---- values ------------------------------------------------------------------------ */
ir_value *ir_value_new(ir_ctx *c, uint32_t n, bool is_float)
{
    ir_value *v = us_arena_alloc(&c->m->infer_arena, sizeof *v);
    if (!v) {
        c->oom = true;
        return NULL;
    }
    v->n = n;
    v->is_float = is_float;
    if (is_float)
        v->f = us_arena_array(&c->m->infer_arena, n ? n : 1, sizeof *v->f);
    else
        v->v = us_arena_array(&c->m->infer_arena, n ? n : 1, sizeof *v->v);
    if (is_float ? !v->f : !v->v) {
        c->oom = true;
        return NULL;
    }
    return v;
}

static double half_to_double(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1F, f = h & 0x3FF;
    double v;
    if (e == 0)
        v = f / 1024.0 / 16384.0;
    else if (e == 31)
        v = f ? 0.0 / 0.0 : 1.0 / 0.0;
    else {
        v = 1.0 + f / 1024.0;
        for (int i = 15; i < e; i++)
            v *= 2.0;
        for (int i = e; i < 15; i++)
            v /= 2.0;
    }
    return s ? -v : v;
}

ir_value *ir_value_of(ir_ctx *c, ir_tensor *t)
{
    if (!t)
        return NULL;
    if (t->value)
        return t->value;
    if (!(t->flags & IR_TF_CONST) || !t->data)
        return NULL;
    uint64_t n;
    if (!ir_shape_numel(&t->shape, &n) || n > IR_VALUE_MAX_ELEMS)
        return NULL;
    uint64_t need;
    if (!ir_dtype_nbytes(t->dtype, n, &need) || need > t->nbytes)
        return NULL;
    const uint8_t *p = t->data;
    bool fl = ir_dtype_is_float(t->dtype);
    if (!fl && !ir_dtype_is_int(t->dtype))
        return NULL;
    if (t->dtype == IR_DT_INT4 || t->dtype == IR_DT_UINT4)
        return NULL;
    if (fl && t->dtype != IR_DT_FLOAT && t->dtype != IR_DT_DOUBLE && t->dtype != IR_DT_FLOAT16 &&
        t->dtype != IR_DT_BFLOAT16)
        return NULL;
    ir_value *v = ir_value_new(c, (uint32_t)n, fl);
    if (!v)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case IR_DT_FLOAT: { float f; memcpy(&f, p + 4 * i, 4); v->f[i] = f; break; }
        case IR_DT_DOUBLE: { double d; memcpy(&d, p + 8 * i, 8); v->f[i] = d; break; }
        case IR_DT_FLOAT16: { uint16_t h; memcpy(&h, p + 2 * i, 2); v->f[i] = half_to_double(h); break; }
        case IR_DT_BFLOAT16: {
            uint16_t h; memcpy(&h, p + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); v->f[i] = f; break;
        }
        case IR_DT_INT8: v->v[i] = ir_dim_lit((int8_t)p[i]); break;
        case IR_DT_UINT8: case IR_DT_BOOL: v->v[i] = ir_dim_lit(p[i]); break;
        case IR_DT_INT16: { int16_t x; memcpy(&x, p + 2 * i, 2); v->v[i] = ir_dim_lit(x); break; }
        case IR_DT_UINT16: { uint16_t x; memcpy(&x, p + 2 * i, 2); v->v[i] = ir_dim_lit(x); break; }
        case IR_DT_INT32: { int32_t x; memcpy(&x, p + 4 * i, 4); v->v[i] = ir_dim_lit(x); break; }
        case IR_DT_UINT32: { uint32_t x; memcpy(&x, p + 4 * i, 4); v->v[i] = ir_dim_lit(x); break; }
        case IR_DT_INT64: { int64_t x; memcpy(&x, p + 8 * i, 8); v->v[i] = ir_dim_lit(x); break; }
        case IR_DT_UINT64: {
            uint64_t x; memcpy(&x, p + 8 * i, 8);
            v->v[i] = ir_dim_lit(x > INT64_MAX ? INT64_MAX : (int64_t)x); break;
        }
        default: return NULL;
        }
    }
    t->value = v;
    return v;
}

void ir_set_value(ir_ctx *c, uint32_t slot, ir_value *v)
{
    ir_node *n = c->n;
    if (v && slot < n->n_out && n->out[slot]) {
        uint64_t numel;
        if (ir_shape_numel(&n->out[slot]->shape, &numel) && numel == v->n)
            n->out[slot]->value = v;
    }
}

int ir_in_dims(ir_ctx *c, uint32_t i, ir_dim *out, uint32_t max, uint32_t *count)
{
    if (!ir_has_in(c->n, i))
        return 0;
    ir_value *v = ir_value_of(c, c->n->in[i]);
    if (!v || v->is_float || v->n > max)
        return -1;
    memcpy(out, v->v, (size_t)v->n * sizeof *out);
    *count = v->n;
    return 1;
}

int ir_in_ints(ir_ctx *c, uint32_t i, int64_t *out, uint32_t max, uint32_t *count)
{
    if (!ir_has_in(c->n, i))
        return 0;
    ir_value *v = ir_value_of(c, c->n->in[i]);
    if (!v || v->is_float || v->n > max)
        return -1;
    for (uint32_t k = 0; k < v->n; k++) {
        if (!ir_dim_is_lit(v->v[k]))
            return -1;
        out[k] = v->v[k].c;
    }
    *count = v->n;
    return 1;
}

int ir_ints_attr_or_input(ir_ctx *c, const char *attr, uint32_t input, int64_t *out, uint32_t max,
                          uint32_t *count)
{
    const int64_t *v;
    long na = ir_attr_ints(c->n, attr, &v);
    if (na >= 0) {
        if ((unsigned long)na > max)
            return -1;
        memcpy(out, v, (size_t)na * sizeof *out);
        *count = (uint32_t)na;
        return 1;
    }
    return ir_in_ints(c, input, out, max, count);
}

/* ---- driver ----------------------------------------------------------------------- */
typedef int (*infer_fn)(ir_ctx *, ir_node *);
static const infer_fn infer_table[] = {
#define IR_OP(id, nm, kind, infer, fpe) ir_inf_##infer,
#include "ops.def"
#undef IR_OP
};
_Static_assert(sizeof infer_table / sizeof infer_table[0] == IR_OP_COUNT, "infer table size");

ir_infer_params ir_infer_default_params(void)
{
    ir_infer_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static void reset_graph(ir_graph *g)
{
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        ir_tensor *t = g->tensors[i];
        t->value = NULL;
        if (t->flags & IR_TF_CONST)
            t->shape = t->decl;
        else if (!(t->flags & IR_TF_INPUT) || g->depth > 0)
            t->shape.rank = IR_RANK_UNKNOWN;
        if (t->producer && !(t->flags & IR_TF_CONST))
            t->dtype = IR_DT_UNDEFINED;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        memset(&n->cost, 0, sizeof n->cost);
        n->cost.exact = true; /* a node never reached (a dead If branch) costs nothing */
        n->infer_status = USHER_OK;
        n->infer_msg = NULL;
        for (uint32_t a = 0; a < n->n_attr; a++) {
            ir_attr *at = &n->attr[a];
            /* attribute tensors cache values too, in the arena about to be reset */
            if (at->t)
                at->t->value = NULL;
            for (size_t k = 0; at->tensors && k < at->n; k++)
                at->tensors[k]->value = NULL;
            if (at->g)
                reset_graph(at->g);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                reset_graph(at->graphs[k]);
        }
    }
}

static ir_infer_report *g_rep_dummy(void)
{
    static _Thread_local ir_infer_report r;
    return &r;
}

typedef struct run {
    ir_ctx c;
    ir_infer_report *rep;
} run;

static void note_problem(run *r, ir_node *n, const char *what)
{
    if (r->rep->first_problem)
        return;
    r->rep->first_problem = n;
    snprintf(r->rep->problem, sizeof r->rep->problem, "node '%s' (%s%s%s): %s", n->name,
             n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type, what);
}

static int infer_graph(run *r, ir_graph *g);

static void infer_node(run *r, ir_node *n)
{
    ir_ctx *c = &r->c;
    c->n = n;
    c->msg[0] = '\0';
    r->rep->n_nodes++;
    if (n->op == IR_OP_UNKNOWN) {
        for (uint32_t k = 0; k < n->n_out; k++)
            ir_set_out_unknown(c, k, IR_DT_UNDEFINED);
        n->infer_status = USHER_ERR_UNSUPPORTED;
        n->infer_msg = "operator not supported";
        n->cost.exact = false;
        r->rep->n_unsupported++;
        note_problem(r, n, "operator not supported");
        return;
    }
    bool blind = false;
    for (uint32_t k = 0; k < n->n_in; k++)
        if (n->in[k] && n->in[k]->shape.rank < 0)
            blind = true;
    int rc;
    if (blind && n->op != IR_OP_IF && n->op != IR_OP_LOOP) {
        /* an input's shape is unknown because of an earlier problem: pass it on,
         * and cost nothing (flagged inexact) */
        for (uint32_t k = 0; k < n->n_out; k++)
            ir_set_out_unknown(c, k, ir_in_dtype(n, 0));
        n->cost.exact = false;
        return;
    } else {
        rc = infer_table[n->op](c, n);
    }
    if (c->oom)
        return;
    if (rc == USHER_OK && c->msg[0])
        rc = USHER_ERR_SHAPE; /* arithmetic helpers record failures in msg */
    if (rc < 0) {
        for (uint32_t k = 0; k < n->n_out; k++)
            ir_set_out_unknown(c, k, n->out[k] ? n->out[k]->dtype : 0);
        n->infer_status = rc;
        n->cost.exact = false;
        n->infer_msg = us_arena_strdup(&c->m->infer_arena, c->msg[0] ? c->msg : usher_status_message(rc));
        if (!n->infer_msg)
            n->infer_msg = usher_status_message(rc);
        r->rep->n_failed++;
        note_problem(r, n, c->msg[0] ? c->msg : usher_status_message(rc));
        return;
    }
    ir_node_cost(c->m, n);
    if (us_log_get_level() >= US_LOG_DEBUG) {
        for (uint32_t k = 0; k < n->n_out; k++) {
            if (!n->out[k])
                continue;
            char sh[256];
            ir_shape_format(c->m, &n->out[k]->shape, sh, sizeof sh);
            US_LOGD("infer: %s (%s) out %u '%s' %s %s%s", n->name, n->op_type, k,
                    n->out[k]->name, ir_dtype_name(n->out[k]->dtype), sh,
                    n->out[k]->value ? " (value known)" : "");
        }
    }
}

int ir_infer_subgraph(ir_ctx *c, ir_graph *g)
{
    run *r = c->run;
    ir_node *saved = c->n;
    int rc = infer_graph(r, g);
    c->n = saved;
    c->msg[0] = '\0';
    return rc;
}

static int infer_graph(run *r, ir_graph *g)
{
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        infer_node(r, g->nodes[i]);
        if (r->c.oom)
            return USHER_ERR_NOMEM;
    }
    return USHER_OK;
}

static void count_unknown(const ir_graph *g, ir_infer_report *rep)
{
    for (uint32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->shape.rank < 0 && g->tensors[i]->n_consumers + (g->tensors[i]->flags & IR_TF_OUTPUT))
            rep->n_unknown_rank++;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t a = 0; a < g->nodes[i]->n_attr; a++) {
            const ir_attr *at = &g->nodes[i]->attr[a];
            if (at->g)
                count_unknown(at->g, rep);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                count_unknown(at->graphs[k], rep);
        }
}

#if US_DEBUG_ASSERTS
/* After an inference that did not run out of memory (debug and sanitizer builds): every
 * shape's rank is unknown or within IR_MAX_RANK, every symbolic dim names an existing
 * symbol, and every node's status is USHER_OK or an error. */
static void check_inferred(const ir_model *m, const ir_graph *g)
{
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        const ir_shape *s = &g->tensors[i]->shape;
        US_DEBUG_ASSERT(s->rank == IR_RANK_UNKNOWN || (s->rank >= 0 && s->rank <= IR_MAX_RANK));
        for (int32_t k = 0; k < s->rank; k++)
            US_DEBUG_ASSERT(ir_dim_is_lit(s->d[k]) || (uint32_t)s->d[k].sym < m->n_syms);
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        US_DEBUG_ASSERT(g->nodes[i]->infer_status <= USHER_OK);
        for (uint32_t a = 0; a < g->nodes[i]->n_attr; a++) {
            const ir_attr *at = &g->nodes[i]->attr[a];
            if (at->g)
                check_inferred(m, at->g);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                check_inferred(m, at->graphs[k]);
        }
    }
}
#endif

static ir_dim bind_dim(const ir_ctx *c, ir_dim d)
{
    if (!ir_dim_is_lit(d) && (uint32_t)d.sym < c->m->n_declared && c->is_bound[d.sym])
        return ir_dim_lit(d.a * c->bound[d.sym] + d.c);
    return d;
}

int ir_model_infer(ir_model *m, const ir_infer_params *p, ir_infer_report *rep, usher_error *err)
{
    ir_infer_params defaults = ir_infer_default_params();
    if (!p)
        p = &defaults;
    if (!rep)
        rep = g_rep_dummy();
    memset(rep, 0, sizeof *rep);
    if (!m->main)
        return us_err_set(err, USHER_ERR_STATE, "model has no graph");

    /* forget the previous run */
    m->n_syms = m->n_declared;
    us_map_free(&m->sym_exprs);
    us_map_init(&m->sym_exprs);
    us_arena_free(&m->infer_arena);
    us_arena_init(&m->infer_arena, 64 * 1024);

    run r;
    memset(&r, 0, sizeof r);
    r.rep = rep;
    r.c.m = m;
    uint32_t nd = m->n_declared ? m->n_declared : 1;
    r.c.is_bound = us_calloc(nd, sizeof *r.c.is_bound);
    r.c.bound = us_calloc(nd, sizeof *r.c.bound);
    int rc = USHER_OK;
    if (!r.c.is_bound || !r.c.bound) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n_bindings; i++) {
        const ir_binding *b = &p->bindings[i];
        void *v = b->name ? us_map_get(&m->sym_names, b->name) : NULL;
        if (!v) {
            rc = us_err_set(err, USHER_ERR_NOT_FOUND, "no dimension named '%s' in the model",
                            b->name ? b->name : "(null)");
            goto out;
        }
        if (b->value < 1 || b->value > ((int64_t)1 << 40)) {
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "dimension '%s' = %lld: must be between 1 and 2^40", b->name,
                            (long long)b->value);
            goto out;
        }
        uint32_t id = (uint32_t)((uintptr_t)v - 1);
        r.c.is_bound[id] = true;
        r.c.bound[id] = b->value;
    }
    if (p->batch != 0) {
        if (p->batch < 1 || p->batch > ((int64_t)1 << 40)) {
            rc = us_err_set(err, USHER_ERR_INVALID, "batch %lld: must be between 1 and 2^40",
                            (long long)p->batch);
            goto out;
        }
        for (uint32_t i = 0; i < m->main->n_inputs; i++) {
            const ir_tensor *t = m->main->inputs[i];
            if (t->decl.rank >= 1 && !ir_dim_is_lit(t->decl.d[0]) && t->decl.d[0].a == 1 &&
                t->decl.d[0].c == 0 && (uint32_t)t->decl.d[0].sym < m->n_declared &&
                !r.c.is_bound[t->decl.d[0].sym]) {
                r.c.is_bound[t->decl.d[0].sym] = true;
                r.c.bound[t->decl.d[0].sym] = p->batch;
            }
        }
    }

    /* what nothing bound takes the model's recorded default, if it has one */
    for (uint32_t i = 0; i < m->n_declared; i++)
        if (!r.c.is_bound[i] && m->syms[i].dflt > 0) {
            r.c.is_bound[i] = true;
            r.c.bound[i] = m->syms[i].dflt;
        }

    reset_graph(m->main);
    for (uint32_t i = 0; i < m->main->n_inputs; i++) {
        ir_tensor *t = m->main->inputs[i];
        if (t->flags & IR_TF_CONST)
            continue;
        t->shape = t->decl;
        for (int k = 0; k < t->shape.rank; k++)
            t->shape.d[k] = bind_dim(&r.c, t->shape.d[k]);
    }
    for (size_t i = 0; i < p->n_values; i++) {
        const ir_binding *b = &p->values[i];
        ir_tensor *t = b->name ? us_map_get(&m->main->names, b->name) : NULL;
        if (!t || !(t->flags & IR_TF_INPUT) || (t->flags & IR_TF_CONST)) {
            rc = us_err_set(err, USHER_ERR_NOT_FOUND, "no model input named '%s'",
                            b->name ? b->name : "(null)");
            goto out;
        }
        uint64_t numel;
        if (!ir_shape_numel(&t->shape, &numel) || numel != 1 || !ir_dtype_is_int(t->dtype)) {
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "input '%s' is not a one-element integer tensor: its value cannot "
                            "be given",
                            b->name);
            goto out;
        }
        ir_value *v = ir_value_new(&r.c, 1, false);
        if (!v) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        v->v[0] = ir_dim_lit(b->value);
        t->value = v;
    }
    r.c.run = &r;
    rc = infer_graph(&r, m->main);
    if (rc < 0 || r.c.oom) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory during shape inference");
        goto out;
    }
    count_unknown(m->main, rep);
#if US_DEBUG_ASSERTS
    check_inferred(m, m->main);
#endif
    if (rep->n_unsupported)
        rc = us_err_set(err, USHER_ERR_UNSUPPORTED, "%u unsupported node(s); first: %s",
                        rep->n_unsupported, rep->problem);
    else if (rep->n_failed)
        rc = us_err_set(err, USHER_ERR_SHAPE, "%u node(s) failed shape inference; first: %s",
                        rep->n_failed, rep->problem);
    else
        us_err_clear(err);
out:
    us_free(r.c.is_bound);
    us_free(r.c.bound);
    return rc;
}
