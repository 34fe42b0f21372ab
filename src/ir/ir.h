/*
 * ir.h - usher's graph IR (layer 2).
 *
 * A model is a tree of graphs: the main graph, and the subgraphs held by
 * If/Loop attributes, each able to read tensors of the graphs around it
 * (lexical scope, as in ONNX). Everything a graph owns (nodes, tensors,
 * names, attribute arrays) comes from the model's arena and dies with the
 * model; weight bytes live in blobs (a mapped file region or a heap buffer)
 * that the model also owns.
 *
 * Invariants once ir_model_finalize() has succeeded:
 *   I1  every node input is NULL (an omitted optional input) or a tensor
 *       visible from the node's graph;
 *   I2  each tensor has at most one producer, and graph inputs and
 *       constants have none;
 *   I3  graph->nodes is in topological order, counting the tensors a
 *       subgraph reads from outer scopes as inputs of the owning node;
 *   I4  n_consumers counts every reading node, implicit reads included.
 *
 * Shapes. A dimension is an ir_dim: a literal, or an affine form a*S + c of
 * a symbol S. Symbols are declared ("batch", or "<input>:<axis>" for an
 * unnamed dynamic dim) or derived during inference (floor((H-1)/2), the
 * product of two symbols, a data-dependent size); derived symbols are
 * hash-consed, so the same expression always yields the same symbol and
 * broadcasting can see that two dims are equal. ir_model_infer() is
 * re-entrant per model: it resets derived symbols and recomputes every
 * shape from the declared inputs and a set of bindings (batch = 8, ...).
 *
 * Lifecycle:
 *   ir_model_new ──► add graphs/tensors/nodes ──► ir_model_finalize
 *        ──► ir_model_infer(bindings) ... (any number of times) ──► ir_model_free
 */
#ifndef IR_H
#define IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/hash.h"
#include "usher/status.h"

#define IR_MAX_RANK 16
#define IR_RANK_UNKNOWN (-1)
/* Largest tensor whose contents inference tracks (shape arithmetic). */
#define IR_VALUE_MAX_ELEMS 4096
/* Deepest nesting of subgraphs (If inside Loop inside ...). */
#define IR_MAX_GRAPH_DEPTH 64

/* ---- data types (ONNX TensorProto.DataType numbering) ---------------------- */
typedef enum ir_dtype {
    IR_DT_UNDEFINED = 0,
    IR_DT_FLOAT = 1,
    IR_DT_UINT8 = 2,
    IR_DT_INT8 = 3,
    IR_DT_UINT16 = 4,
    IR_DT_INT16 = 5,
    IR_DT_INT32 = 6,
    IR_DT_INT64 = 7,
    IR_DT_STRING = 8,
    IR_DT_BOOL = 9,
    IR_DT_FLOAT16 = 10,
    IR_DT_DOUBLE = 11,
    IR_DT_UINT32 = 12,
    IR_DT_UINT64 = 13,
    IR_DT_COMPLEX64 = 14,
    IR_DT_COMPLEX128 = 15,
    IR_DT_BFLOAT16 = 16,
    IR_DT_FLOAT8E4M3FN = 17,
    IR_DT_FLOAT8E4M3FNUZ = 18,
    IR_DT_FLOAT8E5M2 = 19,
    IR_DT_FLOAT8E5M2FNUZ = 20,
    IR_DT_UINT4 = 21,
    IR_DT_INT4 = 22,
    IR_DT_COUNT
} ir_dtype;

/* Bits per element; 0 for UNDEFINED, STRING and unknown codes. */
unsigned ir_dtype_bits(int dt);
const char *ir_dtype_name(int dt); /* "float32", ...; "?" if unknown */
bool ir_dtype_is_float(int dt);
bool ir_dtype_is_int(int dt); /* integer or bool */
/* Bytes for n elements (rounded up for 4-bit types); false on overflow. */
bool ir_dtype_nbytes(int dt, uint64_t n, uint64_t *bytes);

/* ---- dimensions and shapes ---------------------------------------------------- */
typedef struct ir_dim {
    int32_t sym; /* -1: literal c; else symbol id, value a*S + c */
    int32_t pad_;
    int64_t a, c;
} ir_dim;

static inline ir_dim ir_dim_lit(int64_t v)
{
    ir_dim d = {-1, 0, 0, v};
    return d;
}
static inline ir_dim ir_dim_symbol(int32_t s)
{
    ir_dim d = {s, 0, 1, 0};
    return d;
}
static inline bool ir_dim_is_lit(ir_dim d) { return d.sym < 0; }
static inline bool ir_dim_eq(ir_dim x, ir_dim y)
{
    return x.sym == y.sym && x.c == y.c && (x.sym < 0 || x.a == y.a);
}

typedef struct ir_shape {
    int32_t rank; /* IR_RANK_UNKNOWN or 0..IR_MAX_RANK */
    int32_t pad_;
    ir_dim d[IR_MAX_RANK];
} ir_shape;

/* Product of the dims if all are literal (false otherwise or on overflow). */
bool ir_shape_numel(const ir_shape *s, uint64_t *n);
bool ir_shape_is_static(const ir_shape *s);

/* ---- symbols ------------------------------------------------------------------- */
typedef enum ir_sym_kind {
    IR_SYM_DECLARED, /* named in the model (or "<input>:<axis>") */
    IR_SYM_DERIVED,  /* op(lhs, rhs) */
    IR_SYM_UNKNOWN,  /* data-dependent, unique per producing node output */
} ir_sym_kind;

typedef enum ir_symop {
    IR_SYMOP_ADD, IR_SYMOP_MUL, IR_SYMOP_FLOORDIV, IR_SYMOP_CEILDIV, IR_SYMOP_MOD,
    IR_SYMOP_MIN, IR_SYMOP_MAX, IR_SYMOP_NONE
} ir_symop;

typedef struct ir_sym {
    const char *name; /* declared name, or a generated one for derived/unknown */
    ir_sym_kind kind;
    bool anon; /* declared for a dim the file left unnamed ("<input>:<axis>") */
    ir_symop op;
    ir_dim lhs, rhs;
    int64_t dflt; /* declared symbols: value used when nothing binds it (model metadata
                     "usher.dim.<name>"), 0 = none */
} ir_sym;

/* ---- small tensor values tracked by inference (shape arithmetic) -------------- */
typedef struct ir_value {
    uint32_t n;     /* element count (== numel of the tensor) */
    bool is_float;  /* f[] valid, else v[] */
    ir_dim *v;      /* integers (and symbolic integers, e.g. from Shape) */
    double *f;
} ir_value;

/* ---- tensors ------------------------------------------------------------------- */
enum {
    IR_TF_INPUT = 1u << 0,       /* graph input (of its own graph) */
    IR_TF_OUTPUT = 1u << 1,      /* graph output */
    IR_TF_CONST = 1u << 2,       /* initializer or Constant output: value known */
    IR_TF_INITIALIZER = 1u << 3, /* listed in graph.initializer */
    IR_TF_NODATA = 1u << 4,      /* constant whose bytes were stripped (graph-only) */
    IR_TF_EXTERNAL = 1u << 5,    /* bytes came from an external data file */
    IR_TF_ATTR = 1u << 6,        /* tensor held by a node attribute, not a graph value */
};

struct ir_node;
struct ir_graph;
struct ir_model;

typedef struct ir_tensor {
    const char *name;
    uint32_t id, flags;
    int32_t dtype;  /* ir_dtype (inferred for produced tensors) */
    int32_t decl_dtype; /* as declared in the file (graph inputs/outputs), or 0 */
    ir_shape decl;  /* as declared in the file (inputs, value_info); rank may be unknown */
    ir_shape shape; /* inferred (constants: their dims) */
    struct ir_node *producer;
    uint32_t producer_slot, n_consumers;
    const uint8_t *data; /* little-endian element bytes; NULL if absent */
    uint64_t nbytes;     /* bytes at data (== numel * size when present) */
    ir_value *value;     /* contents known to inference, or NULL */
    uint64_t hash;       /* weight hash (ir_tensor_hash), valid if hashed */
    bool hashed;
    bool has_decl_type;  /* dtype came from the file */
    struct ir_graph *graph;
    const char *doc;     /* where external data came from, for messages */
} ir_tensor;

/* ---- attributes (ONNX AttributeProto.AttributeType numbering) -------------- */
typedef enum ir_attr_type {
    IR_ATTR_UNDEFINED = 0,
    IR_ATTR_FLOAT = 1,
    IR_ATTR_INT = 2,
    IR_ATTR_STRING = 3,
    IR_ATTR_TENSOR = 4,
    IR_ATTR_GRAPH = 5,
    IR_ATTR_FLOATS = 6,
    IR_ATTR_INTS = 7,
    IR_ATTR_STRINGS = 8,
    IR_ATTR_TENSORS = 9,
    IR_ATTR_GRAPHS = 10,
    IR_ATTR_SPARSE_TENSOR = 11,
    IR_ATTR_SPARSE_TENSORS = 12,
    IR_ATTR_TYPE_PROTO = 13,
    IR_ATTR_TYPE_PROTOS = 14,
} ir_attr_type;

typedef struct ir_attr {
    const char *name;
    ir_attr_type type;
    int64_t i;
    float f;
    const char *s; /* bytes, not necessarily NUL-free; s_len bytes + NUL */
    size_t s_len;
    size_t n; /* element count of the list forms */
    int64_t *ints;
    float *floats;
    const char **strings;
    size_t *string_lens;
    ir_tensor *t;
    ir_tensor **tensors;
    struct ir_graph *g;
    struct ir_graph **graphs;
} ir_attr;

/* ---- operators ----------------------------------------------------------------- */
typedef enum ir_op_kind {
    IR_KIND_ELEMWISE, IR_KIND_CONV, IR_KIND_GEMM, IR_KIND_NORM, IR_KIND_POOL,
    IR_KIND_REDUCE, IR_KIND_SOFTMAX, IR_KIND_VIEW, IR_KIND_MOVE, IR_KIND_RNN,
    IR_KIND_CONTROL, IR_KIND_UNKNOWN
} ir_op_kind;

typedef enum ir_op {
#define IR_OP(id, name, kind, infer, fpe) IR_OP_##id,
#include "ops.def"
#undef IR_OP
    IR_OP_COUNT,
    IR_OP_UNKNOWN = IR_OP_COUNT
} ir_op;

const char *ir_op_name(ir_op op);       /* ONNX name; "?" for IR_OP_UNKNOWN */
ir_op_kind ir_op_kind_of(ir_op op);
const char *ir_op_kind_name(ir_op_kind k);
/* Look up an op by domain ("" / "ai.onnx") and type; IR_OP_UNKNOWN if absent. */
ir_op ir_op_lookup(const char *domain, const char *op_type);

/* ---- cost of one node at the current shapes ------------------------------------ */
typedef struct ir_cost {
    uint64_t macs;  /* multiply-accumulates of conv/gemm/matmul/rnn */
    uint64_t flops; /* all floating-point operations (2 per MAC + the rest) */
    uint64_t bytes_in, bytes_out; /* activation bytes read and written (weights included in in) */
    uint64_t weight_bytes;        /* constant inputs read */
    bool exact;                   /* false if some dim was symbolic or unknown */
} ir_cost;

typedef struct ir_node {
    const char *name;
    const char *op_type;
    const char *domain; /* "" for ai.onnx */
    ir_op op;
    uint32_t id, n_in, n_out, n_attr;
    ir_tensor **in;  /* NULL entries for omitted optional inputs */
    ir_tensor **out; /* NULL entries for omitted optional outputs */
    ir_attr *attr;
    struct ir_graph *graph;
    ir_tensor **implicit; /* outer-scope tensors read by subgraphs */
    uint32_t n_implicit;
    uint32_t file_index; /* position in the file's node list */
    /* results of the last inference */
    ir_cost cost;
    int infer_status; /* USHER_OK, or the error of this node */
    const char *infer_msg; /* why, when infer_status < 0 */
} ir_node;

typedef struct ir_graph {
    const char *name;
    struct ir_model *model;
    struct ir_graph *parent;
    ir_node *owner; /* node whose attribute holds this subgraph (NULL for main) */
    uint32_t depth; /* 0 for the main graph */
    ir_tensor **tensors;
    uint32_t n_tensors, cap_tensors;
    ir_node **nodes;
    uint32_t n_nodes, cap_nodes;
    ir_tensor **inputs, **outputs;
    uint32_t n_inputs, n_outputs;
    us_map names; /* tensor name -> tensor, this scope only */
} ir_graph;

typedef struct ir_opset {
    const char *domain;
    int64_t version;
} ir_opset;

typedef struct ir_meta {
    const char *key, *value;
} ir_meta;

/* A region of memory holding weight bytes, owned by the model. */
typedef struct ir_blob ir_blob;

typedef struct ir_model {
    us_arena arena;
    ir_graph *main;
    int64_t ir_version;
    ir_opset *opsets;
    uint32_t n_opsets;
    const char *producer_name, *producer_version, *domain, *doc;
    int64_t model_version;
    ir_meta *meta;
    uint32_t n_meta;
    bool graph_only; /* constants may lack data */
    uint64_t fingerprint; /* hash of the model's structure (not its weights); 0 if unknown */
    ir_blob *blobs;
    /* symbols: [0, n_declared) persist, the rest are reset by each inference */
    ir_sym *syms;
    uint32_t n_syms, cap_syms, n_declared;
    us_map sym_names;  /* name -> (id + 1) */
    us_map sym_exprs;  /* expression key -> (id + 1), derived symbols */
    us_arena infer_arena; /* values and derived-symbol names of the last inference */
    uint32_t n_tensor_ids, n_node_ids;
    uint32_t n_graphs;
} ir_model;

/* ---- construction ---------------------------------------------------------------- */
ir_model *ir_model_new(void);
void ir_model_free(ir_model *m); /* NULL ok */
int64_t ir_model_opset(const ir_model *m, const char *domain); /* 0 if not imported */

/* Blobs: memory owned by the model that tensor data may point into. */
/* Takes ownership of a mapping (munmap on free). */
int ir_model_add_mapping(ir_model *m, const void *base, size_t len);
/* Heap buffer of n bytes owned by the model (us_free on free); NULL on OOM. */
void *ir_model_alloc_blob(ir_model *m, size_t n);

ir_graph *ir_graph_new(ir_model *m, ir_graph *parent, ir_node *owner, const char *name);
/* A new tensor named `name` in g's scope; NULL on OOM or if the name exists
 * in g (then *dup, when non-NULL, gets the existing one). */
ir_tensor *ir_graph_add_tensor(ir_graph *g, const char *name, ir_tensor **dup);
/* Tensor with no name in any scope (attribute tensors). */
ir_tensor *ir_model_new_attr_tensor(ir_model *m, const char *name);
/* Look a name up in g and then its enclosing graphs. */
ir_tensor *ir_graph_lookup(const ir_graph *g, const char *name);
ir_node *ir_graph_add_node(ir_graph *g, const char *name, const char *domain, const char *op_type,
                           uint32_t n_in, uint32_t n_out, uint32_t n_attr);
int ir_graph_add_input(ir_graph *g, ir_tensor *t);
int ir_graph_add_output(ir_graph *g, ir_tensor *t);
/* Declare (or find) a symbol by name; returns id or -1 on OOM. */
int32_t ir_model_symbol(ir_model *m, const char *name);

/*
 * Check the invariants I1-I4, sort every graph topologically, count
 * consumers and collect implicit inputs. On failure (a cycle, a tensor
 * produced twice, an unresolved name) err names the graph and node.
 */
int ir_model_finalize(ir_model *m, usher_error *err);

/* ---- inference --------------------------------------------------------------------- */
typedef struct ir_binding {
    const char *name; /* a declared symbol ("batch", "input:1") */
    int64_t value;
} ir_binding;

typedef struct ir_infer_params {
    int64_t batch;              /* > 0: bind the axis-0 symbol of every main-graph input */
    const ir_binding *bindings; /* extra bindings by symbol name; before batch; a declared
                                   symbol bound by neither takes its default (ir_sym.dflt) */
    size_t n_bindings;
    const ir_binding *values; /* contents of scalar main-graph inputs, by input name */
    size_t n_values;
} ir_infer_params;

ir_infer_params ir_infer_default_params(void);

typedef struct ir_infer_report {
    uint32_t n_nodes;       /* all nodes, subgraphs included */
    uint32_t n_unsupported; /* nodes whose operator is not in ops.def */
    uint32_t n_failed;      /* nodes whose inference failed (bad attributes, mismatches) */
    uint32_t n_unknown_rank; /* tensors left without a rank */
    ir_node *first_problem; /* first unsupported or failed node, or NULL */
    char problem[USHER_ERROR_MAX];
} ir_infer_report;

/*
 * Infer types and shapes of every tensor in every graph, then the cost of
 * every node. Unsupported operators and inconsistent nodes do not stop the
 * pass: their outputs get unknown shapes, the node's infer_status records
 * the reason and the report counts them. Returns USHER_OK when every node
 * was inferred, USHER_ERR_UNSUPPORTED / USHER_ERR_SHAPE otherwise (err
 * names the first problem node), USHER_ERR_NOT_FOUND for a binding naming
 * no symbol, USHER_ERR_NOMEM on allocation failure (the model is then
 * still valid and may be inferred again).
 */
int ir_model_infer(ir_model *m, const ir_infer_params *p, ir_infer_report *rep, usher_error *err);

/* Render a dim / shape ("batch", "2*batch+1", "[batch,3,224,224]"). */
void ir_dim_format(const ir_model *m, ir_dim d, char *buf, size_t n);
void ir_shape_format(const ir_model *m, const ir_shape *s, char *buf, size_t n);

/* ---- whole-model statistics ---------------------------------------------------------- */
typedef struct ir_stats {
    uint64_t n_nodes, n_tensors, n_graphs;
    uint64_t n_params;        /* elements of floating-point constant tensors */
    uint64_t weight_bytes;    /* bytes of all constant tensors (declared size) */
    uint64_t weight_bytes_present; /* of which actually present (graph-only: 0) */
    uint64_t macs, flops;
    uint64_t activation_bytes;      /* sum of all non-constant tensors' bytes */
    uint64_t peak_activation_bytes; /* peak live bytes in topological order */
    uint64_t io_bytes;              /* main graph inputs + outputs */
    bool exact; /* false if some dim was unknown: sums are lower bounds */
} ir_stats;

/* Statistics at the shapes of the last inference. */
void ir_model_stats(const ir_model *m, ir_stats *st);

/*
 * Peak live activation bytes over the main graph executed in topological
 * order: an output is allocated when its producer runs and released after
 * its last reader (graph outputs stay). Constants are excluded. This is
 * the same plan the estimator's memory requirement uses.
 */
uint64_t ir_graph_peak_live_bytes(const ir_graph *g, bool *exact);
/* The same with floating-point elements counted at float_bytes each (0: as typed),
 * for a model run at another precision. */
uint64_t ir_graph_peak_live_bytes_as(const ir_graph *g, unsigned float_bytes, bool *exact);

/*
 * Drop the bytes of floating-point constants of at least min_bytes, and of
 * any constant over IR_VALUE_MAX_ELEMS elements (they become IR_TF_NODATA),
 * and mark the model graph-only. Never fails today;
 * returns USHER_OK.
 */
int ir_model_strip(ir_model *m, uint64_t min_bytes);
/*
 * Give every constant without data deterministic pseudo-random contents
 * (uniform in [-0.05, 0.05) for float32; zeros for integer types).
 * USHER_ERR_NOMEM leaves some tensors filled and others not.
 */
int ir_model_fill_random(ir_model *m, uint64_t seed);

/* Hash of a constant tensor: dtype, dims and bytes (XXH64 algorithm). */
uint64_t ir_tensor_hash(ir_tensor *t);

/* Visit every node of every graph, outer graph first, in topological order. */
typedef void (*ir_node_visit_fn)(ir_node *n, void *ud);
void ir_model_visit(ir_model *m, ir_node_visit_fn fn, void *ud);

/* The attribute named `name` of node n, or NULL. */
const ir_attr *ir_node_attr(const ir_node *n, const char *name);

#endif
