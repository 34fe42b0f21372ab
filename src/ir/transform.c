/*
 * transform.c - whole-model rewrites that do not change the graph (layer 2).
 *
 * ir_model_strip drops the bytes of large floating-point constants (and of
 * any constant too large for inference to track as a value, such as a
 * causal mask), which makes a "graph-only" model: every dim, type and small
 * constant (shape vectors, axes, scales) stays, so shapes, FLOPs and memory can still be
 * computed, but the file is tiny. ir_model_fill_random does the reverse
 * with deterministic pseudo-random values, for timing runs that need real
 * tensors but not trained weights.
 */
#include <string.h>

#include "core/alloc.h"
#include "ir.h"

typedef void (*tensor_fn)(ir_model *m, ir_tensor *t, void *ud, int *rc);

static void each_const(ir_model *m, ir_graph *g, tensor_fn fn, void *ud, int *rc)
{
    for (uint32_t i = 0; i < g->n_tensors && *rc == USHER_OK; i++) {
        ir_tensor *t = g->tensors[i];
        /* a Constant's output mirrors its attribute, handled below */
        if ((t->flags & IR_TF_CONST) && !(t->producer && t->producer->op == IR_OP_CONSTANT))
            fn(m, t, ud, rc);
    }
    for (uint32_t i = 0; i < g->n_nodes && *rc == USHER_OK; i++) {
        ir_node *n = g->nodes[i];
        for (uint32_t a = 0; a < n->n_attr; a++) {
            ir_attr *at = &n->attr[a];
            if (at->type == IR_ATTR_TENSOR && at->t)
                fn(m, at->t, ud, rc);
            for (size_t k = 0; at->tensors && k < at->n; k++)
                fn(m, at->tensors[k], ud, rc);
            if (at->g)
                each_const(m, at->g, fn, ud, rc);
            for (size_t k = 0; at->graphs && k < at->n; k++)
                each_const(m, at->graphs[k], fn, ud, rc);
        }
        const ir_attr *v = ir_node_attr(n, "value");
        if (n->op == IR_OP_CONSTANT && n->n_out > 0 && n->out[0] && v &&
            v->type == IR_ATTR_TENSOR && v->t) {
            ir_tensor *o = n->out[0];
            o->data = v->t->data;
            o->nbytes = v->t->nbytes;
            o->flags = (o->flags & ~(uint32_t)(IR_TF_NODATA | IR_TF_EXTERNAL)) |
                       (v->t->flags & (IR_TF_NODATA | IR_TF_EXTERNAL));
            o->hashed = false;
        }
    }
}

static void strip_one(ir_model *m, ir_tensor *t, void *ud, int *rc)
{
    uint64_t min = *(const uint64_t *)ud;
    (void)m;
    (void)rc;
    uint64_t numel = 0;
    bool big = ir_shape_numel(&t->decl, &numel) && numel > IR_VALUE_MAX_ELEMS;
    /* floating-point weights from min bytes; anything inference would never read
     * as a value (over IR_VALUE_MAX_ELEMS elements: masks, lookup tables) */
    if (t->data && ((ir_dtype_is_float(t->dtype) && t->nbytes >= min) || big)) {
        t->data = NULL;
        t->nbytes = 0;
        t->flags |= IR_TF_NODATA;
        t->flags &= ~(uint32_t)IR_TF_EXTERNAL;
        t->hashed = false;
    }
}

int ir_model_strip(ir_model *m, uint64_t min_bytes)
{
    int rc = USHER_OK;
    if (m->main)
        each_const(m, m->main, strip_one, &min_bytes, &rc);
    m->graph_only = true;
    return rc;
}

static uint64_t next(uint64_t *s)
{
    /* xorshift64*: fast, deterministic, good enough for synthetic weights */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void fill_one(ir_model *m, ir_tensor *t, void *ud, int *rc)
{
    uint64_t *seed = ud;
    if (!(t->flags & IR_TF_NODATA) || t->dtype == IR_DT_STRING)
        return;
    uint64_t n, bytes;
    if (!ir_shape_numel(&t->decl, &n) || !ir_dtype_nbytes(t->dtype, n, &bytes) ||
        bytes > SIZE_MAX / 2) {
        *rc = USHER_ERR_LIMIT;
        return;
    }
    uint8_t *b = ir_model_alloc_blob(m, (size_t)bytes);
    if (!b) {
        *rc = USHER_ERR_NOMEM;
        return;
    }
    memset(b, 0, (size_t)bytes);
    if (t->dtype == IR_DT_FLOAT) {
        for (uint64_t i = 0; i < n; i++) {
            /* uniform in [-0.05, 0.05): the scale of initialised conv weights */
            float f = (float)((double)(next(seed) >> 11) / 9007199254740992.0 * 0.1 - 0.05);
            memcpy(b + 4 * i, &f, 4);
        }
    } else if (t->dtype == IR_DT_FLOAT16 || t->dtype == IR_DT_BFLOAT16) {
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(0x2000 | (next(seed) & 0x03FF)); /* small positive halves */
            if (t->dtype == IR_DT_BFLOAT16)
                h = (uint16_t)(0x3C00 | (next(seed) & 0x7F));
            memcpy(b + 2 * i, &h, 2);
        }
    }
    t->data = b;
    t->nbytes = bytes;
    t->flags &= ~(uint32_t)IR_TF_NODATA;
    t->hashed = false;
}

int ir_model_fill_random(ir_model *m, uint64_t seed)
{
    int rc = USHER_OK;
    uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
    if (m->main)
        each_const(m, m->main, fill_one, &s, &rc);
    if (rc == USHER_OK)
        m->graph_only = false;
    return rc;
}
