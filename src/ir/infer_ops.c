/*
 * infer_ops.c - one inference routine per ops.def "INFER" column (layer 2).
 *
 * Each routine checks what the ONNX operator specification requires of its
 * inputs and attributes, sets the type and shape of every output, and, for
 * operators that do arithmetic on shapes, the output's value. Attribute
 * and input conventions differ across opsets (axes as an attribute before
 * opset 13 and as an input after, Resize's four inputs, Slice's attributes
 * before opset 10): the routines accept both forms, whichever the node
 * carries. Messages name the input or attribute at fault; the driver adds
 * the node name.
 */
#include <math.h>
#include <string.h>

#include "ir_impl.h"

#define REQ_IN(i)                                                                                  \
    do {                                                                                           \
        if (!ir_has_in(n, (i)))                                                                    \
            return ir_fail(c, "input %d is required", (int)(i));                                   \
    } while (0)

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

static ir_shape shape_of_rank(int r)
{
    ir_shape s;
    memset(&s, 0, sizeof s);
    s.rank = r;
    return s;
}

/* ---- elementwise values ------------------------------------------------------------ */

/* flat index of output element e in an input of shape `in` broadcast to `out` */
static uint64_t bcast_index(const ir_shape *out, const ir_shape *in, uint64_t e)
{
    uint64_t idx = 0, stride = 1;
    for (int ax = out->rank - 1; ax >= 0; ax--) {
        uint64_t od = (uint64_t)out->d[ax].c;
        uint64_t coord = od ? e % od : 0;
        e = od ? e / od : 0;
        int ia = in->rank - out->rank + ax;
        if (ia < 0)
            continue;
        uint64_t id = (uint64_t)in->d[ia].c;
        if (id != 1)
            idx += coord * stride;
        stride *= id;
    }
    return idx;
}

static bool lit_binop(ir_op op, int64_t a, int64_t b, int64_t fmod_, int64_t *r)
{
    switch (op) {
    case IR_OP_ADD: case IR_OP_SUM: return !__builtin_add_overflow(a, b, r);
    case IR_OP_SUB: return !__builtin_sub_overflow(a, b, r);
    case IR_OP_MUL: return !__builtin_mul_overflow(a, b, r);
    case IR_OP_DIV:
        if (b == 0 || (a == INT64_MIN && b == -1))
            return false;
        *r = a / b;
        return true;
    case IR_OP_MOD:
        if (b == 0 || (a == INT64_MIN && b == -1))
            return false;
        *r = a % b;
        if (!fmod_ && *r != 0 && ((*r < 0) != (b < 0)))
            *r += b;
        return true;
    case IR_OP_MIN: *r = a < b ? a : b; return true;
    case IR_OP_MAX: *r = a > b ? a : b; return true;
    case IR_OP_EQUAL: *r = a == b; return true;
    case IR_OP_LESS: *r = a < b; return true;
    case IR_OP_GREATER: *r = a > b; return true;
    case IR_OP_LESSOREQUAL: *r = a <= b; return true;
    case IR_OP_GREATEROREQUAL: *r = a >= b; return true;
    case IR_OP_AND: *r = a && b; return true;
    case IR_OP_OR: *r = a || b; return true;
    case IR_OP_XOR: *r = !a != !b; return true;
    default: return false;
    }
}

static bool dim_binop(ir_ctx *c, ir_op op, ir_dim a, ir_dim b, int64_t fmod_, ir_dim *r)
{
    if (ir_dim_is_lit(a) && ir_dim_is_lit(b)) {
        int64_t v;
        if (!lit_binop(op, a.c, b.c, fmod_, &v))
            return false;
        *r = ir_dim_lit(v);
        return true;
    }
    switch (op) {
    case IR_OP_ADD: case IR_OP_SUM: *r = ir_d_add(c, a, b); return true;
    case IR_OP_SUB: *r = ir_d_add(c, a, ir_d_mulc(c, b, -1)); return true;
    case IR_OP_MUL: *r = ir_d_mul(c, a, b); return true;
    case IR_OP_DIV:
        if (!ir_dim_is_lit(b) || b.c <= 0)
            return false;
        *r = ir_d_floordiv(c, a, b); /* dims are non-negative: floor == trunc */
        return true;
    case IR_OP_MIN: *r = ir_d_min(c, a, b); return true;
    case IR_OP_MAX: *r = ir_d_max(c, a, b); return true;
    case IR_OP_EQUAL:
        if (!ir_dim_eq(a, b))
            return false;
        *r = ir_dim_lit(1);
        return true;
    default: return false;
    }
}

static bool float_binop(ir_op op, double a, double b, double *r)
{
    switch (op) {
    case IR_OP_ADD: case IR_OP_SUM: *r = a + b; return true;
    case IR_OP_SUB: *r = a - b; return true;
    case IR_OP_MUL: *r = a * b; return true;
    case IR_OP_DIV: *r = a / b; return true;
    case IR_OP_POW: *r = pow(a, b); return true;
    case IR_OP_MIN: *r = a < b ? a : b; return true;
    case IR_OP_MAX: *r = a > b ? a : b; return true;
    case IR_OP_EQUAL: *r = a == b; return true;
    case IR_OP_LESS: *r = a < b; return true;
    case IR_OP_GREATER: *r = a > b; return true;
    case IR_OP_LESSOREQUAL: *r = a <= b; return true;
    case IR_OP_GREATEROREQUAL: *r = a >= b; return true;
    default: return false;
    }
}

/* Evaluate a small elementwise node whose inputs are known. Best effort:
 * anything unusual leaves the output without a value, never fails the node. */
static void ew_value(ir_ctx *c, ir_node *n)
{
    if (n->n_out < 1 || !n->out[0] || n->n_in < 1 || n->n_in > 3)
        return;
    ir_tensor *o = n->out[0];
    uint64_t numel;
    if (!ir_shape_numel(&o->shape, &numel) || numel > IR_VALUE_MAX_ELEMS)
        return;
    ir_value *iv[3] = {0};
    uint32_t nin = n->op == IR_OP_CASTLIKE ? 1 : n->n_in;
    for (uint32_t i = 0; i < nin; i++) {
        if (!ir_has_in(n, i) || !ir_shape_is_static(&n->in[i]->shape))
            return;
        iv[i] = ir_value_of(c, n->in[i]);
        if (!iv[i])
            return;
    }
    bool out_float = ir_dtype_is_float(o->dtype);
    bool in_float = iv[0]->is_float;
    if (n->op == IR_OP_WHERE)
        in_float = iv[1]->is_float;
    for (uint32_t i = (n->op == IR_OP_WHERE); i < nin; i++)
        if (iv[i]->is_float != in_float)
            return;
    char saved = c->msg[0];
    ir_value *r = ir_value_new(c, (uint32_t)numel, out_float);
    if (!r)
        return;
    int64_t fmod_ = ir_attr_i(n, "fmod", 0);
    for (uint64_t e = 0; e < numel; e++) {
        uint64_t k[3];
        for (uint32_t i = 0; i < nin; i++)
            k[i] = bcast_index(&o->shape, &n->in[i]->shape, e);
        if (in_float) {
            double a = iv[0]->f[k[0]], res;
            switch (n->op) {
            case IR_OP_IDENTITY: res = a; break;
            case IR_OP_NEG: res = -a; break;
            case IR_OP_ABS: res = fabs(a); break;
            case IR_OP_FLOOR: res = floor(a); break;
            case IR_OP_CEIL: res = ceil(a); break;
            case IR_OP_ROUND: res = nearbyint(a); break;
            case IR_OP_SQRT: res = sqrt(a); break;
            case IR_OP_RECIPROCAL: res = 1.0 / a; break;
            case IR_OP_CAST: case IR_OP_CASTLIKE: res = a; break;
            case IR_OP_WHERE: {
                ir_dim cd = iv[0]->v[k[0]];
                if (iv[0]->is_float || !ir_dim_is_lit(cd))
                    return;
                res = cd.c ? iv[1]->f[k[1]] : iv[2]->f[k[2]];
                break;
            }
            default:
                if (nin < 2 || !float_binop(n->op, a, iv[1]->f[k[1]], &res))
                    return;
            }
            if (out_float) {
                r->f[e] = res;
            } else {
                if (!(res > -9.2e18 && res < 9.2e18))
                    return;
                r->v[e] = ir_dim_lit((int64_t)res);
            }
        } else {
            ir_dim a = iv[0]->v[k[0]], res;
            switch (n->op) {
            case IR_OP_IDENTITY: res = a; break;
            case IR_OP_NEG: res = ir_d_mulc(c, a, -1); break;
            case IR_OP_ABS:
                if (!ir_dim_is_lit(a) || a.c == INT64_MIN)
                    return;
                res = ir_dim_lit(a.c < 0 ? -a.c : a.c);
                break;
            case IR_OP_NOT:
                if (!ir_dim_is_lit(a))
                    return;
                res = ir_dim_lit(!a.c);
                break;
            case IR_OP_CAST: case IR_OP_CASTLIKE:
                if (o->dtype == IR_DT_BOOL) {
                    if (!ir_dim_is_lit(a))
                        return;
                    res = ir_dim_lit(a.c != 0);
                } else {
                    res = a;
                }
                break;
            case IR_OP_WHERE:
                if (!ir_dim_is_lit(a))
                    return;
                res = a.c ? iv[1]->v[k[1]] : iv[2]->v[k[2]];
                break;
            default:
                if (nin < 2 || !dim_binop(c, n->op, a, iv[1]->v[k[1]], fmod_, &res))
                    return;
            }
            if (out_float) {
                if (!ir_dim_is_lit(res))
                    return;
                r->f[e] = (double)res.c;
            } else {
                r->v[e] = res;
            }
        }
    }
    if (c->msg[0] && !saved) {
        c->msg[0] = '\0'; /* overflow in value arithmetic: drop the value only */
        return;
    }
    ir_set_value(c, 0, r);
}

/* ---- elementwise ------------------------------------------------------------------ */
int ir_inf_unary(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), ir_in_shape(n, 0)));
    ew_value(c, n);
    return USHER_OK;
}

int ir_inf_unary_bool(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    return ir_set_out(c, 0, IR_DT_BOOL, ir_in_shape(n, 0));
}

int ir_inf_cast(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    int to;
    if (n->op == IR_OP_CASTLIKE) {
        REQ_IN(1);
        to = ir_in_dtype(n, 1);
    } else {
        const ir_attr *a = ir_node_attr(n, "to");
        if (!a || a->type != IR_ATTR_INT)
            return ir_fail(c, "attribute 'to' is required");
        if (a->i <= 0 || a->i >= IR_DT_COUNT)
            return ir_fail(c, "attribute 'to' = %lld is not a known data type", (long long)a->i);
        to = (int)a->i;
    }
    TRY(ir_set_out(c, 0, to, ir_in_shape(n, 0)));
    ew_value(c, n);
    return USHER_OK;
}

int ir_inf_dropout(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), ir_in_shape(n, 0)));
    return ir_set_out(c, 1, IR_DT_BOOL, ir_in_shape(n, 0));
}

static int broadcast_all(ir_ctx *c, ir_node *n, uint32_t first, ir_shape *out)
{
    if (n->n_in <= first)
        return ir_fail(c, "at least %u input(s) required", first + 1);
    for (uint32_t i = first; i < n->n_in; i++)
        REQ_IN(i);
    *out = *ir_in_shape(n, first);
    for (uint32_t i = first + 1; i < n->n_in; i++) {
        ir_shape t;
        int rc = ir_broadcast(c, out, ir_in_shape(n, i), &t);
        if (rc < 0)
            return ir_fail(c, "inputs %u and %u: %s", first, i, c->msg);
        *out = t;
    }
    return USHER_OK;
}

int ir_inf_broadcast(ir_ctx *c, ir_node *n)
{
    ir_shape s;
    TRY(broadcast_all(c, n, 0, &s));
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &s));
    ew_value(c, n);
    return USHER_OK;
}

int ir_inf_broadcast_bool(ir_ctx *c, ir_node *n)
{
    ir_shape s;
    TRY(broadcast_all(c, n, 0, &s));
    TRY(ir_set_out(c, 0, IR_DT_BOOL, &s));
    ew_value(c, n);
    return USHER_OK;
}

int ir_inf_where(ir_ctx *c, ir_node *n)
{
    if (n->n_in != 3)
        return ir_fail(c, "Where takes 3 inputs, node has %u", n->n_in);
    ir_shape s;
    TRY(broadcast_all(c, n, 0, &s));
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 1), &s));
    ew_value(c, n);
    return USHER_OK;
}

/* ---- convolution and pooling --------------------------------------------------------- */
typedef struct window {
    int sp;
    int64_t k[IR_MAX_RANK], s[IR_MAX_RANK], d[IR_MAX_RANK], p[2 * IR_MAX_RANK];
    int64_t out_pad[IR_MAX_RANK];
    int auto_pad; /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    bool ceil_mode;
} window;

static int read_list(ir_ctx *c, ir_node *n, const char *name, int64_t *dst, int count,
                     int64_t def, int64_t min)
{
    const int64_t *v;
    long na = ir_attr_ints(n, name, &v);
    if (na < 0) {
        for (int i = 0; i < count; i++)
            dst[i] = def;
        return USHER_OK;
    }
    if (na != count)
        return ir_fail(c, "attribute '%s' has %ld values, %d expected", name, na, count);
    for (int i = 0; i < count; i++) {
        if (v[i] < min || v[i] > ((int64_t)1 << 32))
            return ir_fail(c, "attribute '%s'[%d] = %lld is out of range", name, i,
                           (long long)v[i]);
        dst[i] = v[i];
    }
    return USHER_OK;
}

static int read_window(ir_ctx *c, ir_node *n, int sp, const ir_shape *w, window *win)
{
    memset(win, 0, sizeof *win);
    win->sp = sp;
    const int64_t *ks;
    long nk = ir_attr_ints(n, "kernel_shape", &ks);
    if (nk >= 0) {
        TRY(read_list(c, n, "kernel_shape", win->k, sp, 1, 1));
    } else if (w) {
        for (int i = 0; i < sp; i++) {
            ir_dim d = w->d[2 + i];
            if (!ir_dim_is_lit(d) || d.c < 1)
                return ir_fail(c, "kernel size of spatial axis %d is not known", i);
            win->k[i] = d.c;
        }
    } else {
        return ir_fail(c, "attribute 'kernel_shape' is required");
    }
    TRY(read_list(c, n, "strides", win->s, sp, 1, 1));
    TRY(read_list(c, n, "dilations", win->d, sp, 1, 1));
    TRY(read_list(c, n, "pads", win->p, 2 * sp, 0, 0));
    TRY(read_list(c, n, "output_padding", win->out_pad, sp, 0, 0));
    const char *ap = ir_attr_s(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        win->auto_pad = 0;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        win->auto_pad = 1;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        win->auto_pad = 2;
    else if (strcmp(ap, "VALID") == 0)
        win->auto_pad = 3;
    else
        return ir_fail(c, "attribute 'auto_pad' = '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or "
                          "VALID",
                       ap);
    win->ceil_mode = ir_attr_i(n, "ceil_mode", 0) != 0;
    return USHER_OK;
}

/* output length of one spatial axis of a sliding window */
static int window_out(ir_ctx *c, const window *w, int i, ir_dim D, ir_dim *out)
{
    int64_t ek = w->d[i] * (w->k[i] - 1) + 1;
    ir_dim s = ir_dim_lit(w->s[i]);
    if (w->auto_pad == 1 || w->auto_pad == 2) {
        *out = ir_d_ceildiv(c, D, s);
        return USHER_OK;
    }
    int64_t pads = w->auto_pad == 3 ? 0 : w->p[i] + w->p[w->sp + i];
    ir_dim span = ir_d_addc(c, D, pads - ek);
    ir_dim o = w->ceil_mode ? ir_d_ceildiv(c, span, s) : ir_d_floordiv(c, span, s);
    o = ir_d_addc(c, o, 1);
    if (w->ceil_mode && ir_dim_is_lit(o) && ir_dim_is_lit(D) && w->auto_pad != 3) {
        /* the last window must start inside the input or the left padding */
        if ((o.c - 1) * w->s[i] >= D.c + w->p[i])
            o.c--;
    }
    if (ir_dim_is_lit(o) && o.c < 1)
        return ir_fail(c, "spatial axis %d: window %lld (dilated) is larger than the padded "
                          "input",
                       i, (long long)ek);
    *out = o;
    return USHER_OK;
}

/* what Conv and ConvTranspose check alike: X, W, group, the window */
static int conv_prologue(ir_ctx *c, ir_node *n, const char *op, const ir_shape **x,
                         const ir_shape **w, int64_t *group, window *win)
{
    REQ_IN(0);
    REQ_IN(1);
    *x = ir_in_shape(n, 0);
    *w = ir_in_shape(n, 1);
    if ((*x)->rank < 3)
        return ir_fail(c, "input X has rank %d; %s needs N, C and at least one spatial axis",
                       (*x)->rank, op);
    if ((*w)->rank != (*x)->rank)
        return ir_fail(c, "weight W has rank %d but input X has rank %d", (*w)->rank,
                       (*x)->rank);
    *group = ir_attr_i(n, "group", 1);
    if (*group < 1)
        return ir_fail(c, "attribute 'group' = %lld must be >= 1", (long long)*group);
    return read_window(c, n, (*x)->rank - 2, *w, win);
}

int ir_inf_conv(ir_ctx *c, ir_node *n)
{
    const ir_shape *x, *w;
    int64_t group;
    window win;
    TRY(conv_prologue(c, n, "Conv", &x, &w, &group, &win));
    ir_dim cin = x->d[1], wc = w->d[1];
    if (ir_dim_is_lit(cin) && ir_dim_is_lit(wc) && cin.c != wc.c * group)
        return ir_fail(c, "input X has %lld channels but W expects %lld (%lld per group x %lld "
                          "groups)",
                       (long long)cin.c, (long long)(wc.c * group), (long long)wc.c,
                       (long long)group);
    if (ir_dim_is_lit(w->d[0]) && w->d[0].c % group != 0)
        return ir_fail(c, "W has %lld output channels, not a multiple of group %lld",
                       (long long)w->d[0].c, (long long)group);
    ir_shape o = shape_of_rank(x->rank);
    o.d[0] = x->d[0];
    o.d[1] = w->d[0];
    for (int i = 0; i < win.sp; i++)
        TRY(window_out(c, &win, i, x->d[2 + i], &o.d[2 + i]));
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_conv_transpose(ir_ctx *c, ir_node *n)
{
    const ir_shape *x, *w;
    int64_t group;
    window win;
    TRY(conv_prologue(c, n, "ConvTranspose", &x, &w, &group, &win));
    int sp = win.sp;
    if (ir_dim_is_lit(x->d[1]) && ir_dim_is_lit(w->d[0]) && x->d[1].c != w->d[0].c)
        return ir_fail(c, "input X has %lld channels but W has %lld input channels",
                       (long long)x->d[1].c, (long long)w->d[0].c);
    ir_shape o = shape_of_rank(x->rank);
    o.d[0] = x->d[0];
    o.d[1] = ir_d_mulc(c, w->d[1], group);
    const int64_t *os;
    long nos = ir_attr_ints(n, "output_shape", &os);
    if (nos >= 0) {
        if (nos != sp && nos != sp + 2)
            return ir_fail(c, "attribute 'output_shape' has %ld values, %d expected", nos, sp);
        for (int i = 0; i < sp; i++) {
            int64_t v = os[nos - sp + i];
            if (v < 1)
                return ir_fail(c, "attribute 'output_shape'[%d] = %lld", i, (long long)v);
            o.d[2 + i] = ir_dim_lit(v);
        }
    } else {
        for (int i = 0; i < sp; i++) {
            ir_dim D = x->d[2 + i];
            if (win.auto_pad == 1 || win.auto_pad == 2) {
                o.d[2 + i] = ir_d_mulc(c, D, win.s[i]);
                continue;
            }
            int64_t ek = win.d[i] * (win.k[i] - 1) + 1;
            int64_t pads = win.auto_pad == 3 ? 0 : win.p[i] + win.p[sp + i];
            ir_dim v = ir_d_mulc(c, ir_d_addc(c, D, -1), win.s[i]);
            v = ir_d_addc(c, v, win.out_pad[i] + ek - pads);
            if (ir_dim_is_lit(v) && v.c < 1)
                return ir_fail(c, "spatial axis %d: output length %lld", i, (long long)v.c);
            o.d[2 + i] = v;
        }
    }
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_pool(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    if (x->rank < 3)
        return ir_fail(c, "input X has rank %d; pooling needs N, C and a spatial axis", x->rank);
    int sp = x->rank - 2;
    window win;
    TRY(read_window(c, n, sp, NULL, &win));
    ir_shape o = *x;
    for (int i = 0; i < sp; i++)
        TRY(window_out(c, &win, i, x->d[2 + i], &o.d[2 + i]));
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    return ir_set_out(c, 1, IR_DT_INT64, &o);
}

int ir_inf_global_pool(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    if (x->rank < 3)
        return ir_fail(c, "input X has rank %d; global pooling needs N, C and a spatial axis",
                       x->rank);
    ir_shape o = *x;
    for (int i = 2; i < x->rank; i++)
        o.d[i] = ir_dim_lit(1);
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

/* ---- linear algebra -------------------------------------------------------------------- */
static int check_k(ir_ctx *c, ir_dim ka, ir_dim kb)
{
    if (ir_dim_is_lit(ka) && ir_dim_is_lit(kb) && ka.c != kb.c)
        return ir_fail(c, "inner dimensions differ: %lld vs %lld", (long long)ka.c,
                       (long long)kb.c);
    return USHER_OK;
}

int ir_inf_gemm(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *a = ir_in_shape(n, 0), *b = ir_in_shape(n, 1);
    if (a->rank != 2 || b->rank != 2)
        return ir_fail(c, "Gemm needs 2-D A and B, got ranks %d and %d", a->rank, b->rank);
    bool ta = ir_attr_i(n, "transA", 0) != 0, tb = ir_attr_i(n, "transB", 0) != 0;
    ir_dim M = a->d[ta ? 1 : 0], K = a->d[ta ? 0 : 1];
    ir_dim Kb = b->d[tb ? 1 : 0], N = b->d[tb ? 0 : 1];
    TRY(check_k(c, K, Kb));
    ir_shape o = shape_of_rank(2);
    o.d[0] = M;
    o.d[1] = N;
    if (ir_has_in(n, 2)) {
        ir_shape t;
        if (ir_broadcast(c, ir_in_shape(n, 2), &o, &t) < 0)
            return ir_fail(c, "bias C does not broadcast to the output: %s", c->msg);
    }
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_matmul(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *a = ir_in_shape(n, 0), *b = ir_in_shape(n, 1);
    if (a->rank < 1 || b->rank < 1)
        return ir_fail(c, "MatMul inputs must have rank >= 1, got %d and %d", a->rank, b->rank);
    ir_shape ba = shape_of_rank(a->rank >= 2 ? a->rank - 2 : 0);
    ir_shape bb = shape_of_rank(b->rank >= 2 ? b->rank - 2 : 0);
    memcpy(ba.d, a->d, (size_t)ba.rank * sizeof(ir_dim));
    memcpy(bb.d, b->d, (size_t)bb.rank * sizeof(ir_dim));
    ir_shape batch;
    if (ir_broadcast(c, &ba, &bb, &batch) < 0)
        return ir_fail(c, "batch dimensions do not broadcast: %s", c->msg);
    ir_dim K = a->d[a->rank - 1];
    ir_dim Kb = b->rank >= 2 ? b->d[b->rank - 2] : b->d[0];
    TRY(check_k(c, K, Kb));
    ir_shape o = batch;
    if (a->rank >= 2)
        o.d[o.rank++] = a->d[a->rank - 2];
    if (b->rank >= 2)
        o.d[o.rank++] = b->d[b->rank - 1];
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

/* Einsum: explicit ("ij,jk->ik") and implicit forms, with "..." */
int ir_inf_einsum(ir_ctx *c, ir_node *n)
{
    const char *eq = ir_attr_s(n, "equation", NULL);
    if (!eq)
        return ir_fail(c, "attribute 'equation' is required");
    ir_dim label[52];
    bool seen[52] = {0};
    int count[52] = {0};
    ir_shape ell = shape_of_rank(0);
    bool have_ell = false;
    const char *p = eq, *arrow = strstr(eq, "->");
    uint32_t term = 0;
    while (p && *p && (!arrow || p < arrow)) {
        if (term >= n->n_in)
            return ir_fail(c, "equation '%s' has more terms than the node has inputs", eq);
        REQ_IN(term);
        const ir_shape *s = ir_in_shape(n, term);
        int letters = 0;
        bool has_e = false;
        const char *q = p;
        for (; *q && *q != ',' && (!arrow || q < arrow); q++) {
            if (*q == '.')
                has_e = true;
            else if (*q != ' ')
                letters++;
        }
        int ne = s->rank - letters;
        if (ne < 0 || (!has_e && ne != 0))
            return ir_fail(c, "equation term %u does not match the rank %d of input %u", term,
                           s->rank, term);
        int ax = 0;
        for (const char *r = p; r < q; r++) {
            if (*r == ' ')
                continue;
            if (*r == '.') {
                if (r + 2 >= q || r[1] != '.' || r[2] != '.')
                    return ir_fail(c, "malformed ellipsis in equation '%s'", eq);
                ir_shape es = shape_of_rank(ne), t;
                memcpy(es.d, s->d + ax, (size_t)ne * sizeof(ir_dim));
                if (ir_broadcast(c, &ell, &es, &t) < 0)
                    return USHER_ERR_SHAPE;
                ell = t;
                have_ell = true;
                ax += ne;
                r += 2;
                continue;
            }
            int li = (*r >= 'a' && *r <= 'z') ? *r - 'a' : (*r >= 'A' && *r <= 'Z') ? 26 + *r - 'A' : -1;
            if (li < 0)
                return ir_fail(c, "equation '%s' has an invalid label '%c'", eq, *r);
            if (ax >= s->rank)
                return ir_fail(c, "equation term %u is longer than input %u", term, term);
            ir_dim d = s->d[ax++];
            if (seen[li] && ir_dim_is_lit(label[li]) && ir_dim_is_lit(d) && label[li].c != d.c &&
                label[li].c != 1 && d.c != 1)
                return ir_fail(c, "label '%c' has sizes %lld and %lld", *r,
                               (long long)label[li].c, (long long)d.c);
            if (!seen[li] || (ir_dim_is_lit(label[li]) && label[li].c == 1))
                label[li] = d;
            seen[li] = true;
            count[li]++;
        }
        term++;
        p = (*q == ',') ? q + 1 : q;
    }
    ir_shape o = shape_of_rank(0);
    if (arrow) {
        for (const char *r = arrow + 2; *r; r++) {
            if (*r == ' ')
                continue;
            if (*r == '.') {
                if (r[1] != '.' || r[2] != '.')
                    return ir_fail(c, "malformed ellipsis in equation '%s'", eq);
                for (int i = 0; i < ell.rank && o.rank < IR_MAX_RANK; i++)
                    o.d[o.rank++] = ell.d[i];
                r += 2;
                continue;
            }
            int li = (*r >= 'a' && *r <= 'z') ? *r - 'a' : (*r >= 'A' && *r <= 'Z') ? 26 + *r - 'A' : -1;
            if (li < 0 || !seen[li])
                return ir_fail(c, "output label '%c' does not appear in the inputs", *r);
            if (o.rank >= IR_MAX_RANK)
                return ir_fail(c, "output rank over %d", IR_MAX_RANK);
            o.d[o.rank++] = label[li];
        }
    } else {
        for (int i = 0; have_ell && i < ell.rank; i++)
            o.d[o.rank++] = ell.d[i];
        for (int li = 0; li < 52; li++)
            if (seen[li] && count[li] == 1 && o.rank < IR_MAX_RANK)
                o.d[o.rank++] = label[li];
    }
    /* MACs: product over all labels and the ellipsis dims (cost.c reads it) */
    uint64_t macs = 1;
    bool exact = true;
    for (int li = 0; li < 52; li++)
        if (seen[li]) {
            if (ir_dim_is_lit(label[li]))
                macs = macs * (uint64_t)label[li].c;
            else
                exact = false;
        }
    for (int i = 0; i < ell.rank; i++) {
        if (ir_dim_is_lit(ell.d[i]))
            macs = macs * (uint64_t)ell.d[i].c;
        else
            exact = false;
    }
    n->cost.macs = macs;
    n->cost.exact = exact;
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

/* ---- normalisation ------------------------------------------------------------------------ */
int ir_inf_batchnorm(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    if (x->rank < 2)
        return ir_fail(c, "input X has rank %d; BatchNormalization needs N and C", x->rank);
    for (uint32_t i = 1; i < 5 && i < n->n_in; i++) {
        REQ_IN(i);
        const ir_shape *p = ir_in_shape(n, i);
        if (p->rank != 1)
            return ir_fail(c, "input %u must be 1-D, has rank %d", i, p->rank);
        if (ir_dim_is_lit(p->d[0]) && ir_dim_is_lit(x->d[1]) && p->d[0].c != x->d[1].c)
            return ir_fail(c, "input %u has %lld elements, X has %lld channels", i,
                           (long long)p->d[0].c, (long long)x->d[1].c);
    }
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), x));
    ir_shape cs = shape_of_rank(1);
    cs.d[0] = x->d[1];
    for (uint32_t k = 1; k < n->n_out; k++)
        TRY(ir_set_out(c, k, ir_in_dtype(n, 0), &cs));
    return USHER_OK;
}

int ir_inf_layernorm(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *x = ir_in_shape(n, 0);
    int axis;
    TRY(ir_norm_axis(c, ir_attr_i(n, "axis", -1), x->rank, "attribute 'axis'", &axis));
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), x));
    ir_shape st = *x;
    for (int i = axis; i < x->rank; i++)
        st.d[i] = ir_dim_lit(1);
    int stash = (int)ir_attr_i(n, "stash_type", IR_DT_FLOAT);
    TRY(ir_set_out(c, 1, stash, &st));
    return ir_set_out(c, 2, stash, &st);
}

/* ---- reductions ------------------------------------------------------------------------------ */
int ir_inf_reduce(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    bool keep = ir_attr_i(n, "keepdims", 1) != 0;
    bool noop = ir_attr_i(n, "noop_with_empty_axes", 0) != 0;
    int64_t axes[IR_MAX_RANK];
    uint32_t na = 0;
    int got = ir_ints_attr_or_input(c, "axes", 1, axes, IR_MAX_RANK, &na);
    if (got < 0) {
        if (!keep)
            return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
        ir_shape o = *x;
        for (int i = 0; i < o.rank; i++)
            o.d[i] = ir_d_unknown(c, 0, i);
        return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
    }
    bool red[IR_MAX_RANK] = {0};
    if (na == 0) {
        if (noop)
            return ir_set_out(c, 0, ir_in_dtype(n, 0), x);
        for (int i = 0; i < x->rank; i++)
            red[i] = true;
    }
    for (uint32_t i = 0; i < na; i++) {
        int a;
        TRY(ir_norm_axis(c, axes[i], x->rank, "axis", &a));
        red[a] = true;
    }
    ir_shape o = shape_of_rank(0);
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            o.d[o.rank++] = x->d[i];
        else if (keep)
            o.d[o.rank++] = ir_dim_lit(1);
    }
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    /* ReduceProd / ReduceSum of a known 1-D integer value (element counts) */
    if ((n->op == IR_OP_REDUCEPROD || n->op == IR_OP_REDUCESUM) && x->rank == 1) {
        ir_value *v = ir_value_of(c, n->in[0]);
        if (v && !v->is_float && (o.rank == 0 || (o.rank == 1 && keep))) {
            ir_value *r = ir_value_new(c, 1, false);
            if (!r)
                return USHER_OK;
            char saved = c->msg[0];
            ir_dim acc = ir_dim_lit(n->op == IR_OP_REDUCEPROD);
            for (uint32_t i = 0; i < v->n; i++)
                acc = n->op == IR_OP_REDUCEPROD ? ir_d_mul(c, acc, v->v[i])
                                                : ir_d_add(c, acc, v->v[i]);
            if (c->msg[0] && !saved)
                c->msg[0] = '\0';
            else {
                r->v[0] = acc;
                ir_set_value(c, 0, r);
            }
        }
    }
    return USHER_OK;
}

int ir_inf_argreduce(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int axis;
    TRY(ir_norm_axis(c, ir_attr_i(n, "axis", 0), x->rank, "attribute 'axis'", &axis));
    bool keep = ir_attr_i(n, "keepdims", 1) != 0;
    ir_shape o = shape_of_rank(0);
    for (int i = 0; i < x->rank; i++) {
        if (i != axis)
            o.d[o.rank++] = x->d[i];
        else if (keep)
            o.d[o.rank++] = ir_dim_lit(1);
    }
    return ir_set_out(c, 0, IR_DT_INT64, &o);
}

int ir_inf_topk(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int axis;
    TRY(ir_norm_axis(c, ir_attr_i(n, "axis", -1), x->rank, "attribute 'axis'", &axis));
    ir_shape o = *x;
    ir_dim k[1];
    uint32_t nk = 0;
    const ir_attr *ka = ir_node_attr(n, "k");
    if (ka && ka->type == IR_ATTR_INT)
        o.d[axis] = ir_dim_lit(ka->i);
    else if (ir_in_dims(c, 1, k, 1, &nk) == 1 && nk == 1)
        o.d[axis] = k[0];
    else
        o.d[axis] = ir_d_unknown(c, 0, axis);
    if (ir_dim_is_lit(o.d[axis]) && (o.d[axis].c < 0 ||
                                     (ir_dim_is_lit(x->d[axis]) && o.d[axis].c > x->d[axis].c)))
        return ir_fail(c, "K = %lld is outside [0, %lld]", (long long)o.d[axis].c,
                       (long long)x->d[axis].c);
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    return ir_set_out(c, 1, IR_DT_INT64, &o);
}

/* ---- shape manipulation --------------------------------------------------------------------------- */
static void pass_value(ir_ctx *c, ir_node *n)
{
    if (!ir_has_in(n, 0))
        return;
    ir_value *v = ir_value_of(c, n->in[0]);
    if (v)
        ir_set_value(c, 0, v);
}

/* value of a strided view of a small static tensor: output element o reads
 * input element with coordinate first[a] + o_a * step[a] on axis perm[a] */
static void strided_value(ir_ctx *c, ir_node *n, const int64_t *first, const int64_t *step,
                          const int *perm)
{
    const ir_shape *x = ir_in_shape(n, 0);
    const ir_tensor *o = n->out[0];
    uint64_t numel;
    if (!o || !ir_shape_is_static(x) || !ir_shape_numel(&o->shape, &numel) ||
        numel > IR_VALUE_MAX_ELEMS)
        return;
    ir_value *v = ir_value_of(c, n->in[0]);
    if (!v)
        return;
    ir_value *r = ir_value_new(c, (uint32_t)numel, v->is_float);
    if (!r)
        return;
    int rank = o->shape.rank;
    int64_t in_stride[IR_MAX_RANK];
    int64_t acc = 1;
    for (int a = x->rank - 1; a >= 0; a--) {
        in_stride[a] = acc;
        acc *= x->d[a].c;
    }
    for (uint64_t e = 0; e < numel; e++) {
        uint64_t rem = e;
        int64_t src = 0;
        for (int a = rank - 1; a >= 0; a--) {
            int64_t od = o->shape.d[a].c;
            int64_t coord = od ? (int64_t)(rem % (uint64_t)od) : 0;
            rem = od ? rem / (uint64_t)od : 0;
            int ia = perm ? perm[a] : a;
            int64_t ic = first[a] + coord * step[a];
            if (ic < 0 || ic >= x->d[ia].c)
                return;
            src += ic * in_stride[ia];
        }
        if (src < 0 || (uint64_t)src >= v->n)
            return;
        if (v->is_float)
            r->f[e] = v->f[src];
        else
            r->v[e] = v->v[src];
    }
    ir_set_value(c, 0, r);
}

/* product of dims [from, to) */
static ir_dim dims_product(ir_ctx *c, const ir_shape *s, int from, int to)
{
    ir_dim p = ir_dim_lit(1);
    for (int i = from; i < to; i++)
        p = ir_d_mul(c, p, s->d[i]);
    return p;
}

int ir_inf_reshape(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    ir_dim sv[IR_MAX_RANK + 1];
    uint32_t ns = 0;
    int got;
    const int64_t *sa;
    long nsa = ir_attr_ints(n, "shape", &sa);
    if (nsa >= 0 && !ir_has_in(n, 1)) {
        if (nsa > IR_MAX_RANK)
            return ir_fail(c, "target shape has rank %ld, over %d", nsa, IR_MAX_RANK);
        for (long i = 0; i < nsa; i++)
            sv[i] = ir_dim_lit(sa[i]);
        ns = (uint32_t)nsa;
        got = 1;
    } else {
        REQ_IN(1);
        got = ir_in_dims(c, 1, sv, IR_MAX_RANK + 1, &ns);
    }
    if (got != 1) {
        const ir_shape *ss = ir_in_shape(n, 1);
        if (ss && ss->rank == 1 && ir_dim_is_lit(ss->d[0])) {
            if (ss->d[0].c > IR_MAX_RANK)
                return ir_fail(c, "target shape has %lld elements, over rank %d",
                               (long long)ss->d[0].c, IR_MAX_RANK);
            ir_shape o = shape_of_rank((int)ss->d[0].c);
            for (int i = 0; i < o.rank; i++)
                o.d[i] = ir_d_unknown(c, 0, i);
            return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
        }
        return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
    }
    if (ns > IR_MAX_RANK)
        return ir_fail(c, "target shape has rank %u, over %d", ns, IR_MAX_RANK);
    bool allowzero = ir_attr_i(n, "allowzero", 0) != 0;
    ir_shape o = shape_of_rank((int)ns);
    int infer_at = -1;
    for (uint32_t i = 0; i < ns; i++) {
        ir_dim d = sv[i];
        if (ir_dim_is_lit(d) && d.c == -1) {
            if (infer_at >= 0)
                return ir_fail(c, "target shape has more than one -1");
            infer_at = (int)i;
            continue;
        }
        if (ir_dim_is_lit(d) && d.c == 0 && !allowzero) {
            if ((int)i >= x->rank)
                return ir_fail(c, "target dim %u is 0 (copy) but the input has rank %d", i,
                               x->rank);
            d = x->d[i];
        } else if (ir_dim_is_lit(d) && d.c < 0) {
            return ir_fail(c, "target dim %u is %lld", i, (long long)d.c);
        }
        o.d[i] = d;
    }
    if (infer_at >= 0) {
        /* cancel equal dims on both sides, then divide what is left */
        ir_dim a[IR_MAX_RANK], b[IR_MAX_RANK];
        int na = 0, nb = 0;
        for (int i = 0; i < x->rank; i++)
            a[na++] = x->d[i];
        for (uint32_t i = 0; i < ns; i++)
            if ((int)i != infer_at)
                b[nb++] = o.d[i];
        uint64_t pa = 1, pb = 1;
        ir_dim sa_[IR_MAX_RANK];
        int nsa_ = 0, nsb_ = 0;
        bool used[IR_MAX_RANK] = {0};
        for (int j = 0; j < nb; j++) {
            int hit = -1;
            if (!ir_dim_is_lit(b[j]))
                for (int i = 0; i < na; i++)
                    if (!used[i] && ir_dim_eq(a[i], b[j])) {
                        hit = i;
                        break;
                    }
            if (hit >= 0) {
                used[hit] = true;
                continue;
            }
            if (ir_dim_is_lit(b[j])) {
                if (__builtin_mul_overflow(pb, (uint64_t)b[j].c, &pb))
                    return ir_fail(c, "target shape overflows");
            } else
                nsb_++;
        }
        for (int i = 0; i < na; i++) {
            if (used[i])
                continue;
            if (ir_dim_is_lit(a[i])) {
                if (__builtin_mul_overflow(pa, (uint64_t)a[i].c, &pa))
                    return ir_fail(c, "input shape overflows");
            } else
                sa_[nsa_++] = a[i];
        }
        ir_dim r;
        if (nsb_ > 0) {
            r = ir_d_unknown(c, 0, infer_at);
        } else if (pb == 0) {
            return ir_fail(c, "cannot infer -1 when another target dim is 0");
        } else if (nsa_ == 0) {
            if (pa % pb != 0)
                return ir_fail(c, "input has %llu elements, not divisible by %llu",
                               (unsigned long long)pa, (unsigned long long)pb);
            r = ir_dim_lit((int64_t)(pa / pb));
        } else {
            r = ir_dim_lit((int64_t)pa);
            for (int i = 0; i < nsa_; i++)
                r = ir_d_mul(c, r, sa_[i]);
            r = ir_d_floordiv(c, r, ir_dim_lit((int64_t)pb));
        }
        o.d[infer_at] = r;
    } else {
        uint64_t ni, no;
        if (ir_shape_numel(x, &ni) && ir_shape_numel(&o, &no) && ni != no)
            return ir_fail(c, "cannot reshape %llu elements into %llu", (unsigned long long)ni,
                           (unsigned long long)no);
    }
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    pass_value(c, n);
    return USHER_OK;
}

int ir_inf_flatten(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t axis = ir_attr_i(n, "axis", 1);
    if (axis < -(int64_t)x->rank || axis > x->rank)
        return ir_fail(c, "attribute 'axis' = %lld out of range for rank %d", (long long)axis,
                       x->rank);
    int a = (int)(axis < 0 ? axis + x->rank : axis);
    ir_shape o = shape_of_rank(2);
    o.d[0] = dims_product(c, x, 0, a);
    o.d[1] = dims_product(c, x, a, x->rank);
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    pass_value(c, n);
    return USHER_OK;
}

int ir_inf_squeeze(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t axes[IR_MAX_RANK];
    uint32_t na = 0;
    int got = ir_ints_attr_or_input(c, "axes", 1, axes, IR_MAX_RANK, &na);
    if (got < 0)
        return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
    bool drop[IR_MAX_RANK] = {0};
    if (got == 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = ir_dim_is_lit(x->d[i]) && x->d[i].c == 1;
    } else {
        for (uint32_t i = 0; i < na; i++) {
            int a;
            TRY(ir_norm_axis(c, axes[i], x->rank, "axis", &a));
            if (ir_dim_is_lit(x->d[a]) && x->d[a].c != 1)
                return ir_fail(c, "cannot squeeze axis %d of size %lld", a,
                               (long long)x->d[a].c);
            drop[a] = true;
        }
    }
    ir_shape o = shape_of_rank(0);
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            o.d[o.rank++] = x->d[i];
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    pass_value(c, n);
    return USHER_OK;
}

int ir_inf_unsqueeze(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t axes[IR_MAX_RANK];
    uint32_t na = 0;
    int got = ir_ints_attr_or_input(c, "axes", 1, axes, IR_MAX_RANK, &na);
    if (got == 0)
        return ir_fail(c, "axes are required");
    if (got < 0)
        return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
    int r = x->rank + (int)na;
    if (r > IR_MAX_RANK)
        return ir_fail(c, "result rank %d is over %d", r, IR_MAX_RANK);
    bool ins[IR_MAX_RANK] = {0};
    for (uint32_t i = 0; i < na; i++) {
        int a;
        TRY(ir_norm_axis(c, axes[i], r, "axis", &a));
        if (ins[a])
            return ir_fail(c, "axis %d is listed twice", a);
        ins[a] = true;
    }
    ir_shape o = shape_of_rank(r);
    for (int i = 0, k = 0; i < r; i++)
        o.d[i] = ins[i] ? ir_dim_lit(1) : x->d[k++];
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    pass_value(c, n);
    return USHER_OK;
}

int ir_inf_shape(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t start = ir_attr_i(n, "start", 0), end = ir_attr_i(n, "end", x->rank);
    if (start < 0)
        start += x->rank;
    if (end < 0)
        end += x->rank;
    start = start < 0 ? 0 : start > x->rank ? x->rank : start;
    end = end < 0 ? 0 : end > x->rank ? x->rank : end;
    int len = end > start ? (int)(end - start) : 0;
    ir_shape o = shape_of_rank(1);
    o.d[0] = ir_dim_lit(len);
    TRY(ir_set_out(c, 0, IR_DT_INT64, &o));
    ir_value *v = ir_value_new(c, (uint32_t)len, false);
    if (v) {
        memcpy(v->v, x->d + start, (size_t)len * sizeof(ir_dim));
        ir_set_value(c, 0, v);
    }
    return USHER_OK;
}

int ir_inf_size(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    ir_shape o = shape_of_rank(0);
    TRY(ir_set_out(c, 0, IR_DT_INT64, &o));
    ir_value *v = ir_value_new(c, 1, false);
    if (v) {
        v->v[0] = dims_product(c, ir_in_shape(n, 0), 0, ir_in_shape(n, 0)->rank);
        ir_set_value(c, 0, v);
    }
    return USHER_OK;
}

int ir_inf_constant(ir_ctx *c, ir_node *n)
{
    /* the importer set the output's type, dims and bytes from the attribute */
    if (n->n_out < 1 || !n->out[0])
        return ir_fail(c, "Constant has no output");
    ir_tensor *t = n->out[0];
    if (t->decl.rank < 0)
        return ir_fail(c, "Constant has no 'value' attribute of a supported form");
    t->shape = t->decl;
    return USHER_OK;
}

/* ---- data movement ----------------------------------------------------------------------------- */
int ir_inf_transpose(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    const int64_t *perm;
    long np = ir_attr_ints(n, "perm", &perm);
    ir_shape o = shape_of_rank(x->rank);
    int pm[IR_MAX_RANK];
    if (np < 0) {
        for (int i = 0; i < x->rank; i++) {
            o.d[i] = x->d[x->rank - 1 - i];
            pm[i] = x->rank - 1 - i;
        }
    } else {
        if (np != x->rank)
            return ir_fail(c, "attribute 'perm' has %ld entries for rank %d", np, x->rank);
        bool used[IR_MAX_RANK] = {0};
        for (int i = 0; i < x->rank; i++) {
            int a;
            TRY(ir_norm_axis(c, perm[i], x->rank, "perm entry", &a));
            if (used[a])
                return ir_fail(c, "attribute 'perm' repeats axis %d", a);
            used[a] = true;
            o.d[i] = x->d[a];
            pm[i] = a;
        }
    }
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    int64_t first[IR_MAX_RANK] = {0}, step[IR_MAX_RANK];
    for (int i = 0; i < IR_MAX_RANK; i++)
        step[i] = 1;
    strided_value(c, n, first, step, pm);
    return USHER_OK;
}

int ir_inf_concat(ir_ctx *c, ir_node *n)
{
    if (n->n_in < 1)
        return ir_fail(c, "at least one input is required");
    REQ_IN(0);
    const ir_shape *x0 = ir_in_shape(n, 0);
    const ir_attr *aa = ir_node_attr(n, "axis");
    if (!aa || aa->type != IR_ATTR_INT)
        return ir_fail(c, "attribute 'axis' is required");
    int axis;
    TRY(ir_norm_axis(c, aa->i, x0->rank, "attribute 'axis'", &axis));
    ir_shape o = *x0;
    for (uint32_t i = 1; i < n->n_in; i++) {
        REQ_IN(i);
        const ir_shape *xi = ir_in_shape(n, i);
        if (xi->rank != x0->rank)
            return ir_fail(c, "input %u has rank %d, input 0 rank %d", i, xi->rank, x0->rank);
        for (int k = 0; k < o.rank; k++) {
            if (k == axis) {
                o.d[k] = ir_d_add(c, o.d[k], xi->d[k]);
            } else if (ir_dim_is_lit(o.d[k]) && ir_dim_is_lit(xi->d[k]) && o.d[k].c != xi->d[k].c) {
                return ir_fail(c, "input %u has %lld on axis %d, input 0 has %lld", i,
                               (long long)xi->d[k].c, k, (long long)o.d[k].c);
            } else if (!ir_dim_is_lit(o.d[k]) && ir_dim_is_lit(xi->d[k])) {
                o.d[k] = xi->d[k];
            }
        }
    }
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    if (o.rank == 1) {
        uint64_t total;
        if (!ir_shape_numel(&o, &total) || total > IR_VALUE_MAX_ELEMS)
            return USHER_OK;
        ir_value *vals[64];
        if (n->n_in > 64)
            return USHER_OK;
        bool fl = false;
        for (uint32_t i = 0; i < n->n_in; i++) {
            vals[i] = ir_value_of(c, n->in[i]);
            if (!vals[i] || (i > 0 && vals[i]->is_float != fl))
                return USHER_OK;
            fl = vals[i]->is_float;
        }
        ir_value *r = ir_value_new(c, (uint32_t)total, fl);
        if (!r)
            return USHER_OK;
        uint32_t at = 0;
        for (uint32_t i = 0; i < n->n_in; i++) {
            if (at + vals[i]->n > total)
                return USHER_OK;
            if (fl)
                memcpy(r->f + at, vals[i]->f, vals[i]->n * sizeof(double));
            else
                memcpy(r->v + at, vals[i]->v, vals[i]->n * sizeof(ir_dim));
            at += vals[i]->n;
        }
        if (at == total)
            ir_set_value(c, 0, r);
    }
    return USHER_OK;
}

int ir_inf_split(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int axis;
    TRY(ir_norm_axis(c, ir_attr_i(n, "axis", 0), x->rank, "attribute 'axis'", &axis));
    if (n->n_out < 1)
        return ir_fail(c, "Split has no outputs");
    int64_t sizes[1024];
    uint32_t ns = 0;
    if (n->n_out > 1024)
        return ir_fail(c, "Split has %u outputs, over 1024", n->n_out);
    int got = ir_ints_attr_or_input(c, "split", 1, sizes, 1024, &ns);
    ir_dim D = x->d[axis];
    if (got == 1) {
        if (ns != n->n_out)
            return ir_fail(c, "'split' has %u sizes for %u outputs", ns, n->n_out);
        int64_t sum = 0;
        for (uint32_t i = 0; i < ns; i++) {
            if (sizes[i] < 0 || __builtin_add_overflow(sum, sizes[i], &sum))
                return ir_fail(c, "'split'[%u] = %lld", i, (long long)sizes[i]);
        }
        if (ir_dim_is_lit(D) && sum != D.c)
            return ir_fail(c, "'split' sizes add up to %lld, axis %d has %lld", (long long)sum,
                           axis, (long long)D.c);
        for (uint32_t i = 0; i < ns; i++) {
            ir_shape o = *x;
            o.d[axis] = ir_dim_lit(sizes[i]);
            TRY(ir_set_out(c, i, ir_in_dtype(n, 0), &o));
        }
        return USHER_OK;
    }
    if (got < 0 && ir_has_in(n, 1)) {
        for (uint32_t i = 0; i < n->n_out; i++) {
            ir_shape o = *x;
            o.d[axis] = ir_d_unknown(c, i, axis);
            TRY(ir_set_out(c, i, ir_in_dtype(n, 0), &o));
        }
        return USHER_OK;
    }
    int64_t parts = ir_attr_i(n, "num_outputs", n->n_out);
    if (parts != n->n_out)
        return ir_fail(c, "'num_outputs' = %lld but the node has %u outputs", (long long)parts,
                       n->n_out);
    ir_dim each = ir_d_ceildiv(c, D, ir_dim_lit(parts));
    if (ir_dim_is_lit(D) && !ir_node_attr(n, "num_outputs") && D.c % parts != 0)
        return ir_fail(c, "axis %d of size %lld does not split evenly into %lld", axis,
                       (long long)D.c, (long long)parts);
    for (uint32_t i = 0; i < n->n_out; i++) {
        ir_shape o = *x;
        o.d[axis] = each;
        if (i + 1 == n->n_out && ir_dim_is_lit(D) && ir_dim_is_lit(each))
            o.d[axis] = ir_dim_lit(D.c - each.c * (parts - 1));
        TRY(ir_set_out(c, i, ir_in_dtype(n, 0), &o));
    }
    return USHER_OK;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* length of a slice of a literal dim; also the first index for value slicing */
static int64_t slice_len_lit(int64_t D, int64_t s, int64_t e, int64_t st, int64_t *first)
{
    if (s < 0)
        s = s < -D ? 0 : s + D;
    if (e < 0)
        e = e < -D ? -1 : e + D;
    if (st > 0) {
        s = clamp64(s, 0, D);
        e = clamp64(e, 0, D);
        *first = s;
        return e > s ? (e - s + st - 1) / st : 0;
    }
    s = clamp64(s, 0, D - 1);
    e = clamp64(e, -1, D - 1);
    *first = s;
    return s > e ? (s - e + (-st) - 1) / (-st) : 0;
}

int ir_inf_slice(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t starts[IR_MAX_RANK], ends[IR_MAX_RANK], axes[IR_MAX_RANK], steps[IR_MAX_RANK];
    uint32_t ns = 0, ne = 0, na = 0, nst = 0;
    int g1, g2, g3 = 0, g4 = 0;
    if (ir_node_attr(n, "starts")) {
        g1 = ir_ints_attr_or_input(c, "starts", 99, starts, IR_MAX_RANK, &ns);
        g2 = ir_ints_attr_or_input(c, "ends", 99, ends, IR_MAX_RANK, &ne);
        g3 = ir_ints_attr_or_input(c, "axes", 99, axes, IR_MAX_RANK, &na);
    } else {
        g1 = ir_in_ints(c, 1, starts, IR_MAX_RANK, &ns);
        g2 = ir_in_ints(c, 2, ends, IR_MAX_RANK, &ne);
        g3 = ir_in_ints(c, 3, axes, IR_MAX_RANK, &na);
        g4 = ir_in_ints(c, 4, steps, IR_MAX_RANK, &nst);
    }
    if (g1 == 0 || g2 == 0)
        return ir_fail(c, "starts and ends are required");
    ir_shape o = *x;
    if (g1 < 0 || g2 < 0 || g3 < 0 || g4 < 0) {
        /* bounds unknown: the sliced axes are unknown; if the axes are known, others stay */
        bool hit[IR_MAX_RANK] = {0};
        if (g3 == 1) {
            for (uint32_t i = 0; i < na; i++) {
                int a;
                TRY(ir_norm_axis(c, axes[i], x->rank, "axis", &a));
                hit[a] = true;
            }
        } else {
            for (int i = 0; i < x->rank; i++)
                hit[i] = true;
        }
        for (int i = 0; i < x->rank; i++)
            if (hit[i])
                o.d[i] = ir_d_unknown(c, 0, i);
        return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
    }
    if (ns != ne)
        return ir_fail(c, "starts has %u values, ends %u", ns, ne);
    if (g3 == 0) {
        if (ns > (uint32_t)x->rank)
            return ir_fail(c, "%u starts for rank %d", ns, x->rank);
        for (uint32_t i = 0; i < ns; i++)
            axes[i] = i;
    } else if (na != ns) {
        return ir_fail(c, "axes has %u values, starts %u", na, ns);
    }
    if (g4 == 0)
        for (uint32_t i = 0; i < ns; i++)
            steps[i] = 1;
    else if (nst != ns)
        return ir_fail(c, "steps has %u values, starts %u", nst, ns);
    int64_t firsts[IR_MAX_RANK] = {0}, stepv[IR_MAX_RANK];
    for (int i = 0; i < IR_MAX_RANK; i++)
        stepv[i] = 1;
    bool seen[IR_MAX_RANK] = {0};
    for (uint32_t i = 0; i < ns; i++) {
        int a;
        TRY(ir_norm_axis(c, axes[i], x->rank, "axis", &a));
        if (seen[a])
            return ir_fail(c, "axis %d is sliced twice", a);
        seen[a] = true;
        int64_t s = starts[i], e = ends[i], st = steps[i];
        if (st == 0)
            return ir_fail(c, "step of axis %d is 0", a);
        ir_dim D = x->d[a];
        if (ir_dim_is_lit(D)) {
            int64_t first;
            o.d[a] = ir_dim_lit(slice_len_lit(D.c, s, e, st, &first));
            firsts[a] = first;
            stepv[a] = st;
            continue;
        }
        const int64_t BIG = (int64_t)1 << 40;
        ir_dim len;
        if (st < 0) {
            if (s == -1 && e <= -BIG)
                len = D; /* full reversal */
            else {
                o.d[a] = ir_d_unknown(c, 0, a);
                continue;
            }
        } else if (s >= 0 && e >= BIG)
            len = ir_d_addc(c, D, -s);
        else if (s >= 0 && e >= 0)
            len = ir_dim_lit(e > s ? e - s : 0);
        else if (s >= 0 && e < 0)
            len = ir_d_addc(c, D, e - s);
        else if (s < 0 && e >= BIG)
            len = ir_dim_lit(-s);
        else if (s < 0 && e < 0)
            len = ir_dim_lit(e > s ? e - s : 0);
        else {
            o.d[a] = ir_d_unknown(c, 0, a);
            continue;
        }
        o.d[a] = st > 1 ? ir_d_ceildiv(c, len, ir_dim_lit(st)) : len;
    }
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    strided_value(c, n, firsts, stepv, NULL);
    return USHER_OK;
}

int ir_inf_gather(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *x = ir_in_shape(n, 0), *idx = ir_in_shape(n, 1);
    if (x->rank < 1)
        return ir_fail(c, "data must have rank >= 1");
    int axis;
    TRY(ir_norm_axis(c, ir_attr_i(n, "axis", 0), x->rank, "attribute 'axis'", &axis));
    int r = x->rank - 1 + idx->rank;
    if (r > IR_MAX_RANK)
        return ir_fail(c, "result rank %d is over %d", r, IR_MAX_RANK);
    ir_shape o = shape_of_rank(r);
    int k = 0;
    for (int i = 0; i < axis; i++)
        o.d[k++] = x->d[i];
    for (int i = 0; i < idx->rank; i++)
        o.d[k++] = idx->d[i];
    for (int i = axis + 1; i < x->rank; i++)
        o.d[k++] = x->d[i];
    TRY(ir_set_out(c, 0, ir_in_dtype(n, 0), &o));
    /* values: gathering from a known 1-D tensor (Shape -> Gather) */
    if (x->rank == 1 && ir_dim_is_lit(x->d[0])) {
        ir_value *dv = ir_value_of(c, n->in[0]);
        ir_value *iv = ir_value_of(c, n->in[1]);
        if (!dv || !iv || iv->is_float)
            return USHER_OK;
        ir_value *rv = ir_value_new(c, iv->n, dv->is_float);
        if (!rv)
            return USHER_OK;
        for (uint32_t i = 0; i < iv->n; i++) {
            if (!ir_dim_is_lit(iv->v[i]))
                return USHER_OK;
            int64_t j = iv->v[i].c;
            if (j < 0)
                j += (int64_t)dv->n;
            if (j < 0 || j >= (int64_t)dv->n)
                return ir_fail(c, "index %lld is out of range for %u elements",
                               (long long)iv->v[i].c, dv->n);
            if (dv->is_float)
                rv->f[i] = dv->f[j];
            else
                rv->v[i] = dv->v[j];
        }
        ir_set_value(c, 0, rv);
    }
    return USHER_OK;
}

int ir_inf_gather_elements(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *x = ir_in_shape(n, 0), *idx = ir_in_shape(n, 1);
    if (idx->rank != x->rank)
        return ir_fail(c, "indices have rank %d, data rank %d", idx->rank, x->rank);
    return ir_set_out(c, 0, ir_in_dtype(n, 0), idx);
}

int ir_inf_gather_nd(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *x = ir_in_shape(n, 0), *idx = ir_in_shape(n, 1);
    int64_t b = ir_attr_i(n, "batch_dims", 0);
    if (idx->rank < 1 || b < 0 || b >= idx->rank || b >= x->rank)
        return ir_fail(c, "batch_dims %lld is invalid for ranks %d and %d", (long long)b,
                       x->rank, idx->rank);
    ir_dim last = idx->d[idx->rank - 1];
    if (!ir_dim_is_lit(last))
        return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
    if (last.c < 1 || b + last.c > x->rank)
        return ir_fail(c, "indices' last dim %lld does not fit data rank %d", (long long)last.c,
                       x->rank);
    ir_shape o = shape_of_rank(0);
    for (int i = 0; i < idx->rank - 1; i++)
        o.d[o.rank++] = idx->d[i];
    for (int i = (int)(b + last.c); i < x->rank; i++) {
        if (o.rank >= IR_MAX_RANK)
            return ir_fail(c, "result rank over %d", IR_MAX_RANK);
        o.d[o.rank++] = x->d[i];
    }
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_pad(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t pads[2 * IR_MAX_RANK], axes[IR_MAX_RANK];
    uint32_t np = 0, na = 0;
    int got;
    if (ir_node_attr(n, "pads"))
        got = ir_ints_attr_or_input(c, "pads", 99, pads, 2 * IR_MAX_RANK, &np);
    else if (ir_node_attr(n, "paddings"))
        got = ir_ints_attr_or_input(c, "paddings", 99, pads, 2 * IR_MAX_RANK, &np);
    else
        got = ir_in_ints(c, 1, pads, 2 * IR_MAX_RANK, &np);
    if (got == 0)
        return ir_fail(c, "pads are required");
    ir_shape o = *x;
    if (got < 0) {
        for (int i = 0; i < o.rank; i++)
            o.d[i] = ir_d_unknown(c, 0, i);
        return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
    }
    int ga = ir_in_ints(c, 3, axes, IR_MAX_RANK, &na);
    if (ga < 0)
        return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
    if (ga == 0) {
        na = (uint32_t)x->rank;
        for (uint32_t i = 0; i < na; i++)
            axes[i] = i;
    }
    if (np != 2 * na)
        return ir_fail(c, "pads has %u values, %u expected", np, 2 * na);
    for (uint32_t i = 0; i < na; i++) {
        int a;
        TRY(ir_norm_axis(c, axes[i], x->rank, "axis", &a));
        o.d[a] = ir_d_addc(c, o.d[a], pads[i] + pads[na + i]);
        if (ir_dim_is_lit(o.d[a]) && o.d[a].c < 0)
            return ir_fail(c, "padding makes axis %d negative", a);
    }
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_resize(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    ir_shape o = *x;
    ir_dim sizes[IR_MAX_RANK];
    uint32_t nsz = 0;
    uint32_t scales_in = (n->op == IR_OP_UPSAMPLE || n->n_in == 2) ? 1 : 2;
    /* sizes (Resize >= 11, input 3) */
    if (n->op == IR_OP_RESIZE && ir_in_dims(c, 3, sizes, IR_MAX_RANK, &nsz) == 1 && nsz > 0) {
        if ((int)nsz != x->rank)
            return ir_fail(c, "'sizes' has %u values for rank %d", nsz, x->rank);
        memcpy(o.d, sizes, nsz * sizeof(ir_dim));
        return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
    }
    double scales[IR_MAX_RANK];
    uint32_t nsc = 0;
    const ir_attr *sa = ir_node_attr(n, "scales");
    if (sa && sa->type == IR_ATTR_FLOATS) {
        nsc = (uint32_t)sa->n;
        if (nsc > IR_MAX_RANK)
            return ir_fail(c, "'scales' has %u values", nsc);
        for (uint32_t i = 0; i < nsc; i++)
            scales[i] = sa->floats[i];
    } else if (ir_has_in(n, scales_in)) {
        ir_value *v = ir_value_of(c, n->in[scales_in]);
        if (v && v->is_float && v->n <= IR_MAX_RANK) {
            nsc = v->n;
            for (uint32_t i = 0; i < nsc; i++)
                scales[i] = v->f[i];
        } else if (!v && n->in[scales_in]->shape.rank == 1 &&
                   ir_dim_is_lit(n->in[scales_in]->shape.d[0]) &&
                   n->in[scales_in]->shape.d[0].c == 0) {
            nsc = 0; /* empty scales: sizes must be given, and were not known */
        } else {
            for (int i = 0; i < o.rank; i++)
                o.d[i] = ir_d_unknown(c, 0, i);
            return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
        }
    }
    if (nsc == 0) {
        for (int i = 0; i < o.rank; i++)
            o.d[i] = ir_d_unknown(c, 0, i);
        return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
    }
    if ((int)nsc != x->rank)
        return ir_fail(c, "'scales' has %u values for rank %d", nsc, x->rank);
    for (int i = 0; i < x->rank; i++) {
        double s = scales[i];
        if (!(s > 0) || s > 1e6)
            return ir_fail(c, "scale %g of axis %d is not positive and finite", s, i);
        ir_dim D = x->d[i];
        if (ir_dim_is_lit(D)) {
            o.d[i] = ir_dim_lit((int64_t)floor((double)D.c * s + 1e-9));
        } else if (s == floor(s)) {
            o.d[i] = ir_d_mulc(c, D, (int64_t)s);
        } else if (1.0 / s == floor(1.0 / s)) {
            o.d[i] = ir_d_floordiv(c, D, ir_dim_lit((int64_t)(1.0 / s)));
        } else {
            o.d[i] = ir_d_unknown(c, 0, i);
        }
    }
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_expand(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *x = ir_in_shape(n, 0);
    ir_dim sv[IR_MAX_RANK];
    uint32_t ns = 0;
    if (ir_in_dims(c, 1, sv, IR_MAX_RANK, &ns) != 1) {
        const ir_shape *ss = ir_in_shape(n, 1);
        if (ss->rank == 1 && ir_dim_is_lit(ss->d[0]) && ss->d[0].c <= IR_MAX_RANK) {
            int r = (int)ss->d[0].c > x->rank ? (int)ss->d[0].c : x->rank;
            ir_shape o = shape_of_rank(r);
            for (int i = 0; i < r; i++)
                o.d[i] = ir_d_unknown(c, 0, i);
            return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
        }
        return ir_set_out_unknown(c, 0, ir_in_dtype(n, 0));
    }
    ir_shape t = shape_of_rank((int)ns), o;
    for (uint32_t i = 0; i < ns; i++) {
        if (ir_dim_is_lit(sv[i]) && sv[i].c < 0)
            return ir_fail(c, "target shape dim %u is %lld", i, (long long)sv[i].c);
        t.d[i] = sv[i];
    }
    if (ir_broadcast(c, x, &t, &o) < 0)
        return ir_fail(c, "input does not broadcast to the target shape: %s", c->msg);
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_tile(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    const ir_shape *x = ir_in_shape(n, 0);
    ir_dim rep[IR_MAX_RANK];
    uint32_t nr = 0;
    ir_shape o = *x;
    if (ir_in_dims(c, 1, rep, IR_MAX_RANK, &nr) != 1) {
        for (int i = 0; i < o.rank; i++)
            o.d[i] = ir_d_unknown(c, 0, i);
        return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
    }
    if ((int)nr != x->rank)
        return ir_fail(c, "'repeats' has %u values for rank %d", nr, x->rank);
    for (int i = 0; i < x->rank; i++) {
        if (ir_dim_is_lit(rep[i]) && rep[i].c < 0)
            return ir_fail(c, "repeat %d is negative", i);
        o.d[i] = ir_d_mul(c, x->d[i], rep[i]);
    }
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_constant_of_shape(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    ir_dim sv[IR_MAX_RANK];
    uint32_t ns = 0;
    const ir_attr *va = ir_node_attr(n, "value");
    int dt = (va && va->type == IR_ATTR_TENSOR && va->t) ? va->t->dtype : IR_DT_FLOAT;
    int got = ir_in_dims(c, 0, sv, IR_MAX_RANK, &ns);
    if (got != 1) {
        const ir_shape *ss = ir_in_shape(n, 0);
        if (ss->rank == 1 && ir_dim_is_lit(ss->d[0]) && ss->d[0].c <= IR_MAX_RANK) {
            ir_shape o = shape_of_rank((int)ss->d[0].c);
            for (int i = 0; i < o.rank; i++)
                o.d[i] = ir_d_unknown(c, 0, i);
            return ir_set_out(c, 0, dt, &o);
        }
        return ir_set_out_unknown(c, 0, dt);
    }
    ir_shape o = shape_of_rank((int)ns);
    for (uint32_t i = 0; i < ns; i++) {
        if (ir_dim_is_lit(sv[i]) && sv[i].c < 0)
            return ir_fail(c, "shape element %u is %lld", i, (long long)sv[i].c);
        o.d[i] = sv[i];
    }
    TRY(ir_set_out(c, 0, dt, &o));
    uint64_t numel;
    if (ir_shape_numel(&o, &numel) && numel <= IR_VALUE_MAX_ELEMS) {
        ir_value *fill = (va && va->t) ? ir_value_of(c, va->t) : NULL;
        bool fl = ir_dtype_is_float(dt);
        if (va && va->t && (!fill || fill->n < 1 || fill->is_float != fl))
            return USHER_OK;
        ir_value *r = ir_value_new(c, (uint32_t)numel, fl);
        if (!r)
            return USHER_OK;
        for (uint64_t i = 0; i < numel; i++) {
            if (fl)
                r->f[i] = fill ? fill->f[0] : 0.0;
            else
                r->v[i] = fill ? fill->v[0] : ir_dim_lit(0);
        }
        ir_set_value(c, 0, r);
    }
    return USHER_OK;
}

int ir_inf_range(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    REQ_IN(2);
    ir_value *s = ir_value_of(c, n->in[0]), *l = ir_value_of(c, n->in[1]),
             *d = ir_value_of(c, n->in[2]);
    int dt = ir_in_dtype(n, 0);
    ir_shape o = shape_of_rank(1);
    if (!s || !l || !d || s->n != 1 || l->n != 1 || d->n != 1 || s->is_float != l->is_float ||
        s->is_float != d->is_float) {
        o.d[0] = ir_d_unknown(c, 0, 0);
        return ir_set_out(c, 0, dt, &o);
    }
    if (s->is_float) {
        double st = s->f[0], li = l->f[0], de = d->f[0];
        if (de == 0)
            return ir_fail(c, "delta is 0");
        double cnt = ceil((li - st) / de);
        if (!(cnt >= 0))
            cnt = 0;
        if (cnt > 1e12)
            return ir_fail(c, "range of %g elements", cnt);
        o.d[0] = ir_dim_lit((int64_t)cnt);
        TRY(ir_set_out(c, 0, dt, &o));
        if (cnt <= IR_VALUE_MAX_ELEMS) {
            ir_value *r = ir_value_new(c, (uint32_t)cnt, true);
            if (r) {
                for (uint32_t i = 0; i < r->n; i++)
                    r->f[i] = st + i * de;
                ir_set_value(c, 0, r);
            }
        }
        return USHER_OK;
    }
    ir_dim st = s->v[0], li = l->v[0], de = d->v[0];
    if (!ir_dim_is_lit(de) || de.c == 0) {
        if (ir_dim_is_lit(de))
            return ir_fail(c, "delta is 0");
        o.d[0] = ir_d_unknown(c, 0, 0);
        return ir_set_out(c, 0, dt, &o);
    }
    if (ir_dim_is_lit(st) && ir_dim_is_lit(li)) {
        int64_t diff;
        if (__builtin_sub_overflow(li.c, st.c, &diff))
            return ir_fail(c, "range bounds overflow");
        int64_t cnt = diff / de.c + ((diff % de.c) != 0 && ((diff < 0) == (de.c < 0)));
        if (cnt < 0)
            cnt = 0;
        o.d[0] = ir_dim_lit(cnt);
        TRY(ir_set_out(c, 0, dt, &o));
        if (cnt <= IR_VALUE_MAX_ELEMS) {
            ir_value *r = ir_value_new(c, (uint32_t)cnt, false);
            if (r) {
                for (int64_t i = 0; i < cnt; i++)
                    r->v[i] = ir_dim_lit(st.c + i * de.c);
                ir_set_value(c, 0, r);
            }
        }
        return USHER_OK;
    }
    if (de.c > 0) /* (limit - start) / delta, rounded up; symbolic bounds are >= start */
        o.d[0] = ir_d_ceildiv(c, ir_d_add(c, li, ir_d_mulc(c, st, -1)), ir_dim_lit(de.c));
    else
        o.d[0] = ir_d_unknown(c, 0, 0);
    return ir_set_out(c, 0, dt, &o);
}

int ir_inf_depth_to_space(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t b = ir_attr_i(n, "blocksize", 0);
    if (x->rank != 4 || b < 1)
        return ir_fail(c, "needs a 4-D input and blocksize >= 1");
    ir_shape o = *x;
    o.d[1] = ir_d_floordiv(c, x->d[1], ir_dim_lit(b * b));
    o.d[2] = ir_d_mulc(c, x->d[2], b);
    o.d[3] = ir_d_mulc(c, x->d[3], b);
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_space_to_depth(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    const ir_shape *x = ir_in_shape(n, 0);
    int64_t b = ir_attr_i(n, "blocksize", 0);
    if (x->rank != 4 || b < 1)
        return ir_fail(c, "needs a 4-D input and blocksize >= 1");
    ir_shape o = *x;
    o.d[1] = ir_d_mulc(c, x->d[1], b * b);
    o.d[2] = ir_d_floordiv(c, x->d[2], ir_dim_lit(b));
    o.d[3] = ir_d_floordiv(c, x->d[3], ir_dim_lit(b));
    return ir_set_out(c, 0, ir_in_dtype(n, 0), &o);
}

int ir_inf_onehot(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    REQ_IN(2);
    const ir_shape *x = ir_in_shape(n, 0);
    int r = x->rank + 1;
    if (r > IR_MAX_RANK)
        return ir_fail(c, "result rank over %d", IR_MAX_RANK);
    int axis;
    TRY(ir_norm_axis(c, ir_attr_i(n, "axis", -1), r, "attribute 'axis'", &axis));
    ir_dim depth[1];
    uint32_t nd = 0;
    ir_dim dd;
    ir_value *dv = ir_value_of(c, n->in[1]);
    if (dv && dv->n == 1)
        dd = dv->is_float ? ir_dim_lit((int64_t)dv->f[0]) : dv->v[0];
    else if (ir_in_dims(c, 1, depth, 1, &nd) == 1)
        dd = depth[0];
    else
        dd = ir_d_unknown(c, 0, axis);
    ir_shape o = shape_of_rank(r);
    for (int i = 0, k = 0; i < r; i++)
        o.d[i] = i == axis ? dd : x->d[k++];
    return ir_set_out(c, 0, ir_in_dtype(n, 2), &o);
}

int ir_inf_nonzero(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    ir_shape o = shape_of_rank(2);
    o.d[0] = ir_dim_lit(ir_in_shape(n, 0)->rank);
    o.d[1] = ir_d_unknown(c, 0, 1);
    return ir_set_out(c, 0, IR_DT_INT64, &o);
}

/* ---- recurrent ------------------------------------------------------------------------------- */
int ir_inf_rnn(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    REQ_IN(1);
    REQ_IN(2);
    const ir_shape *x = ir_in_shape(n, 0), *w = ir_in_shape(n, 1), *r = ir_in_shape(n, 2);
    if (x->rank != 3 || w->rank != 3 || r->rank != 3)
        return ir_fail(c, "X, W and R must be 3-D (ranks %d, %d, %d)", x->rank, w->rank, r->rank);
    const char *dir = ir_attr_s(n, "direction", "forward");
    int64_t dirs;
    if (strcmp(dir, "forward") == 0 || strcmp(dir, "reverse") == 0)
        dirs = 1;
    else if (strcmp(dir, "bidirectional") == 0)
        dirs = 2;
    else
        return ir_fail(c, "attribute 'direction' = '%s'", dir);
    int64_t gates = n->op == IR_OP_LSTM ? 4 : n->op == IR_OP_GRU ? 3 : 1;
    ir_dim H;
    const ir_attr *ha = ir_node_attr(n, "hidden_size");
    if (ha && ha->type == IR_ATTR_INT) {
        if (ha->i < 1)
            return ir_fail(c, "attribute 'hidden_size' = %lld", (long long)ha->i);
        H = ir_dim_lit(ha->i);
    } else {
        H = r->d[2];
    }
    if (ir_dim_is_lit(w->d[0]) && w->d[0].c != dirs)
        return ir_fail(c, "W has %lld directions, attribute 'direction' says %lld",
                       (long long)w->d[0].c, (long long)dirs);
    if (ir_dim_is_lit(w->d[1]) && ir_dim_is_lit(H) && w->d[1].c != gates * H.c)
        return ir_fail(c, "W has %lld rows, %lld gates x hidden %lld expected",
                       (long long)w->d[1].c, (long long)gates, (long long)H.c);
    if (ir_dim_is_lit(w->d[2]) && ir_dim_is_lit(x->d[2]) && w->d[2].c != x->d[2].c)
        return ir_fail(c, "W expects %lld input features, X has %lld", (long long)w->d[2].c,
                       (long long)x->d[2].c);
    bool bf = ir_attr_i(n, "layout", 0) != 0;
    ir_dim seq = bf ? x->d[1] : x->d[0], batch = bf ? x->d[0] : x->d[1];
    ir_shape y = shape_of_rank(4), yh = shape_of_rank(3);
    if (bf) {
        y.d[0] = batch; y.d[1] = seq; y.d[2] = ir_dim_lit(dirs); y.d[3] = H;
        yh.d[0] = batch; yh.d[1] = ir_dim_lit(dirs); yh.d[2] = H;
    } else {
        y.d[0] = seq; y.d[1] = ir_dim_lit(dirs); y.d[2] = batch; y.d[3] = H;
        yh.d[0] = ir_dim_lit(dirs); yh.d[1] = batch; yh.d[2] = H;
    }
    int dt = ir_in_dtype(n, 0);
    TRY(ir_set_out(c, 0, dt, &y));
    TRY(ir_set_out(c, 1, dt, &yh));
    return ir_set_out(c, 2, dt, &yh);
}

/* ---- control flow ------------------------------------------------------------------------------ */
static ir_graph *graph_attr(const ir_node *n, const char *name)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_GRAPH ? a->g : NULL;
}

/* the shape both branches agree on, dim by dim */
static void merge_shapes(ir_ctx *c, uint32_t slot, const ir_shape *a, const ir_shape *b,
                         ir_shape *o)
{
    if (a->rank < 0 || b->rank < 0 || a->rank != b->rank) {
        o->rank = IR_RANK_UNKNOWN;
        return;
    }
    *o = *a;
    for (int i = 0; i < a->rank; i++)
        if (!ir_dim_eq(a->d[i], b->d[i]))
            o->d[i] = ir_d_unknown(c, slot, i);
}

int ir_inf_if_(ir_ctx *c, ir_node *n)
{
    REQ_IN(0);
    ir_graph *tg = graph_attr(n, "then_branch"), *eg = graph_attr(n, "else_branch");
    if (!tg || !eg)
        return ir_fail(c, "attributes 'then_branch' and 'else_branch' are required");
    if (tg->n_outputs != n->n_out || eg->n_outputs != n->n_out)
        return ir_fail(c, "branches have %u and %u outputs, the node %u", tg->n_outputs,
                       eg->n_outputs, n->n_out);
    /* a known condition selects one branch: the other is dead and not inferred */
    ir_value *cv = ir_value_of(c, n->in[0]);
    int taken = -1;
    if (cv && cv->n == 1 && !cv->is_float && ir_dim_is_lit(cv->v[0]))
        taken = cv->v[0].c != 0;
    int rc;
    if (taken != 0 && (rc = ir_infer_subgraph(c, tg)) < 0)
        return rc;
    if (taken != 1 && (rc = ir_infer_subgraph(c, eg)) < 0)
        return rc;
    for (uint32_t k = 0; k < n->n_out; k++) {
        const ir_tensor *a = tg->outputs[k], *b = eg->outputs[k];
        ir_shape o;
        if (taken == 1)
            o = a->shape;
        else if (taken == 0)
            o = b->shape;
        else
            merge_shapes(c, k, &a->shape, &b->shape, &o);
        int dt = taken == 0 ? b->dtype : a->dtype ? a->dtype : b->dtype;
        if (o.rank < 0)
            ir_set_out_unknown(c, k, dt);
        else
            TRY(ir_set_out(c, k, dt, &o));
        if (taken >= 0 && (taken ? a : b)->value)
            ir_set_value(c, k, (taken ? a : b)->value);
    }
    return USHER_OK;
}

int ir_inf_loop(ir_ctx *c, ir_node *n)
{
    ir_graph *body = graph_attr(n, "body");
    if (!body)
        return ir_fail(c, "attribute 'body' is required");
    if (n->n_in < 2)
        return ir_fail(c, "Loop takes at least 2 inputs (M, cond), node has %u", n->n_in);
    uint32_t carried = n->n_in - 2;
    if (body->n_inputs != carried + 2)
        return ir_fail(c, "body has %u inputs, %u expected (iteration, condition, %u carried)",
                       body->n_inputs, carried + 2, carried);
    if (body->n_outputs < carried + 1)
        return ir_fail(c, "body has %u outputs, at least %u expected", body->n_outputs,
                       carried + 1);
    uint32_t scans = body->n_outputs - 1 - carried;
    if (n->n_out != carried + scans)
        return ir_fail(c, "node has %u outputs, body gives %u carried + %u scan", n->n_out,
                       carried, scans);
    ir_tensor *it = body->inputs[0], *cond = body->inputs[1];
    it->dtype = IR_DT_INT64;
    it->shape = shape_of_rank(0);
    cond->dtype = IR_DT_BOOL;
    cond->shape = shape_of_rank(0);
    for (uint32_t i = 0; i < carried; i++) {
        ir_tensor *bi = body->inputs[2 + i];
        if (ir_has_in(n, 2 + i)) {
            bi->dtype = n->in[2 + i]->dtype;
            bi->shape = n->in[2 + i]->shape;
        } else {
            bi->shape.rank = IR_RANK_UNKNOWN;
        }
    }
    int rc = ir_infer_subgraph(c, body);
    if (rc < 0)
        return rc;
    ir_dim trip = ir_d_unknown(c, carried, 0);
    ir_value *mv = ir_has_in(n, 0) ? ir_value_of(c, n->in[0]) : NULL;
    if (mv && mv->n == 1 && !mv->is_float && ir_dim_is_lit(mv->v[0]) && !ir_has_in(n, 1))
        trip = mv->v[0];
    for (uint32_t i = 0; i < carried; i++) {
        const ir_tensor *bo = body->outputs[1 + i];
        ir_shape o;
        if (ir_has_in(n, 2 + i))
            merge_shapes(c, i, &n->in[2 + i]->shape, &bo->shape, &o);
        else
            o = bo->shape;
        if (o.rank < 0)
            ir_set_out_unknown(c, i, bo->dtype);
        else
            TRY(ir_set_out(c, i, bo->dtype, &o));
    }
    for (uint32_t k = 0; k < scans; k++) {
        const ir_tensor *bo = body->outputs[1 + carried + k];
        if (bo->shape.rank < 0 || bo->shape.rank + 1 > IR_MAX_RANK) {
            ir_set_out_unknown(c, carried + k, bo->dtype);
            continue;
        }
        ir_shape o = shape_of_rank(bo->shape.rank + 1);
        o.d[0] = trip;
        memcpy(o.d + 1, bo->shape.d, (size_t)bo->shape.rank * sizeof(ir_dim));
        TRY(ir_set_out(c, carried + k, bo->dtype, &o));
    }
    return USHER_OK;
}
