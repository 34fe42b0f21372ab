/*
 * ir_impl.h - what the IR's own files share and nobody else sees (layer 2).
 *
 * infer.c owns the inference driver and the helpers below (symbolic dim
 * arithmetic, tensor values, attribute access); infer_ops.c holds one
 * routine per inference column of ops.def; cost.c turns shapes into
 * MACs/FLOPs/bytes.
 */
#ifndef IR_IMPL_H
#define IR_IMPL_H

#include <stdarg.h>

#include "ir.h"

typedef struct ir_ctx {
    ir_model *m;
    ir_node *n; /* node being inferred */
    char msg[USHER_ERROR_MAX];
    bool oom;
    bool *is_bound; /* per declared symbol */
    int64_t *bound;
    struct run *run; /* the pass this context belongs to */
} ir_ctx;

/* one prototype per inference routine named in ops.def */
#define IR_OP(id, nm, kind, infer, fpe) int ir_inf_##infer(ir_ctx *c, ir_node *n);
#include "ops.def"
#undef IR_OP

/* infer a subgraph (If branch, Loop body) within the current pass */
int ir_infer_subgraph(ir_ctx *c, ir_graph *g);

int32_t ir_model_add_derived_sym(ir_model *m, const ir_sym *s);

/* failure of the current node: records the message, returns USHER_ERR_SHAPE */
int ir_fail(ir_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- dims ---- */
ir_dim ir_d_add(ir_ctx *c, ir_dim x, ir_dim y);
ir_dim ir_d_addc(ir_ctx *c, ir_dim x, int64_t k);
ir_dim ir_d_mul(ir_ctx *c, ir_dim x, ir_dim y);
ir_dim ir_d_mulc(ir_ctx *c, ir_dim x, int64_t k);
ir_dim ir_d_floordiv(ir_ctx *c, ir_dim x, ir_dim y); /* y must not be literal <= 0 */
ir_dim ir_d_ceildiv(ir_ctx *c, ir_dim x, ir_dim y);
ir_dim ir_d_min(ir_ctx *c, ir_dim x, ir_dim y);
ir_dim ir_d_max(ir_ctx *c, ir_dim x, ir_dim y);
/* a fresh data-dependent dim for output `slot`, axis `axis` of the current node */
ir_dim ir_d_unknown(ir_ctx *c, uint32_t slot, int axis);

/* ---- shapes and outputs ---- */
const ir_shape *ir_in_shape(const ir_node *n, uint32_t i); /* NULL if absent */
int ir_in_dtype(const ir_node *n, uint32_t i);
bool ir_has_in(const ir_node *n, uint32_t i);
int ir_set_out(ir_ctx *c, uint32_t slot, int dtype, const ir_shape *s);
int ir_set_out_unknown(ir_ctx *c, uint32_t slot, int dtype);
int ir_norm_axis(ir_ctx *c, int64_t axis, int rank, const char *what, int *out);
int ir_broadcast(ir_ctx *c, const ir_shape *a, const ir_shape *b, ir_shape *out);

/* ---- attributes ---- */
int64_t ir_attr_i(const ir_node *n, const char *name, int64_t def);
float ir_attr_f(const ir_node *n, const char *name, float def);
const char *ir_attr_s(const ir_node *n, const char *name, const char *def);
/* list attribute: element count, or -1 if absent */
long ir_attr_ints(const ir_node *n, const char *name, const int64_t **v);

/* ---- values ---- */
ir_value *ir_value_of(ir_ctx *c, ir_tensor *t); /* NULL if unknown */
ir_value *ir_value_new(ir_ctx *c, uint32_t n, bool is_float);
/* the value of input i as literal integers: 1 known, 0 input absent, -1 unknown/symbolic */
int ir_in_ints(ir_ctx *c, uint32_t i, int64_t *out, uint32_t max, uint32_t *count);
/* the value of input i as dims (may be symbolic): 1 known, 0 absent, -1 unknown */
int ir_in_dims(ir_ctx *c, uint32_t i, ir_dim *out, uint32_t max, uint32_t *count);
/* integer list from an attribute (older opsets) or an input (newer): same returns */
int ir_ints_attr_or_input(ir_ctx *c, const char *attr, uint32_t input, int64_t *out, uint32_t max,
                          uint32_t *count);
void ir_set_value(ir_ctx *c, uint32_t slot, ir_value *v);

/* ---- cost ---- */
void ir_node_cost(ir_model *m, ir_node *n);

#endif
