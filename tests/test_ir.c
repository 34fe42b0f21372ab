/*
 * test_ir.c - layer 2: graphs built by hand, then sorted, inferred and costed.
 * Each case checks shapes as text ("[batch,64,112,112]"), so symbolic dims
 * are compared exactly as users see them.
 */
#include <stdarg.h>

#include "ir/ir.h"
#include "test.h"

static ir_model *M;
static ir_graph *G;

static void begin(int64_t opset)
{
    M = ir_model_new();
    G = ir_graph_new(M, NULL, NULL, "main");
    M->opsets = us_arena_array(&M->arena, 1, sizeof *M->opsets);
    M->opsets[0].domain = "";
    M->opsets[0].version = opset;
    M->n_opsets = 1;
}

static void end(void)
{
    ir_model_free(M);
    M = NULL;
    G = NULL;
}

/* dims: "batch,3,224,224" - names become declared symbols */
static void parse_dims(ir_shape *s, const char *dims)
{
    s->rank = 0;
    if (!dims)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dims);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*tok >= '0' && *tok <= '9')
            s->d[s->rank++] = ir_dim_lit(strtoll(tok, NULL, 10));
        else
            s->d[s->rank++] = ir_dim_symbol(ir_model_symbol(M, tok));
    }
}

static ir_tensor *input_in(ir_graph *g, const char *name, int dt, const char *dims)
{
    ir_tensor *t = ir_graph_add_tensor(g, name, NULL);
    t->dtype = dt;
    if (dims)
        parse_dims(&t->decl, dims);
    ir_graph_add_input(g, t);
    return t;
}

static ir_tensor *input(const char *name, int dt, const char *dims)
{
    return input_in(G, name, dt, dims);
}

/* a weight: dims known, bytes absent (graph-only) */
static ir_tensor *weight(const char *name, const char *dims)
{
    ir_tensor *t = ir_graph_add_tensor(G, name, NULL);
    t->dtype = IR_DT_FLOAT;
    t->flags |= IR_TF_CONST | IR_TF_INITIALIZER | IR_TF_NODATA;
    parse_dims(&t->decl, dims);
    return t;
}

static ir_tensor *const_i64_in(ir_graph *g, const char *name, int rank, int n, ...)
{
    ir_tensor *t = ir_graph_add_tensor(g, name, NULL);
    int64_t *v = ir_model_alloc_blob(M, (size_t)(n ? n : 1) * 8);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        v[i] = va_arg(ap, int64_t);
    va_end(ap);
    t->dtype = IR_DT_INT64;
    t->flags |= IR_TF_CONST | IR_TF_INITIALIZER;
    t->decl.rank = rank;
    if (rank == 1)
        t->decl.d[0] = ir_dim_lit(n);
    t->data = (const uint8_t *)v;
    t->nbytes = (uint64_t)n * 8;
    return t;
}
#define CONST_I64(name, ...) const_i64_in(G, name, 1, __VA_ARGS__)

static ir_tensor *const_f32(const char *name, int n, const float *v)
{
    ir_tensor *t = ir_graph_add_tensor(G, name, NULL);
    float *b = ir_model_alloc_blob(M, (size_t)n * 4);
    memcpy(b, v, (size_t)n * 4);
    t->dtype = IR_DT_FLOAT;
    t->flags |= IR_TF_CONST | IR_TF_INITIALIZER;
    t->decl.rank = 1;
    t->decl.d[0] = ir_dim_lit(n);
    t->data = (const uint8_t *)b;
    t->nbytes = (uint64_t)n * 4;
    return t;
}

/* ins/outs: comma-separated names; "-" for an omitted optional input */
static ir_node *node_in(ir_graph *g, const char *op, const char *ins, const char *outs)
{
    char ib[512], ob[512];
    const char *iv[32], *ov[32];
    int ni = 0, no = 0;
    snprintf(ib, sizeof ib, "%s", ins);
    snprintf(ob, sizeof ob, "%s", outs);
    for (char *t = strtok(ib, ","); t && ni < 32; t = strtok(NULL, ","))
        iv[ni++] = t;
    for (char *t = strtok(ob, ","); t && no < 32; t = strtok(NULL, ","))
        ov[no++] = t;
    ir_node *n = ir_graph_add_node(g, outs, "", op, (uint32_t)ni, (uint32_t)no, 8);
    n->n_attr = 0;
    for (int i = 0; i < ni; i++)
        n->in[i] = strcmp(iv[i], "-") == 0 ? NULL : ir_graph_lookup(g, iv[i]);
    for (int i = 0; i < no; i++) {
        ir_tensor *t = ir_graph_add_tensor(g, ov[i], NULL);
        t->producer = n;
        t->producer_slot = (uint32_t)i;
        n->out[i] = t;
    }
    return n;
}
#define NODE(op, ins, outs) node_in(G, op, ins, outs)

static void a_int(ir_node *n, const char *name, int64_t v)
{
    ir_attr *a = &n->attr[n->n_attr++];
    a->name = name;
    a->type = IR_ATTR_INT;
    a->i = v;
}

static void a_ints(ir_node *n, const char *name, int cnt, ...)
{
    ir_attr *a = &n->attr[n->n_attr++];
    a->name = name;
    a->type = IR_ATTR_INTS;
    a->n = (size_t)cnt;
    a->ints = us_arena_array(&M->arena, (size_t)(cnt ? cnt : 1), sizeof(int64_t));
    va_list ap;
    va_start(ap, cnt);
    for (int i = 0; i < cnt; i++)
        a->ints[i] = va_arg(ap, int64_t);
    va_end(ap);
}

static void a_str(ir_node *n, const char *name, const char *s)
{
    ir_attr *a = &n->attr[n->n_attr++];
    a->name = name;
    a->type = IR_ATTR_STRING;
    a->s = s;
    a->s_len = strlen(s);
}

static ir_graph *a_graph(ir_node *n, const char *name)
{
    ir_attr *a = &n->attr[n->n_attr++];
    a->name = name;
    a->type = IR_ATTR_GRAPH;
    a->g = ir_graph_new(M, n->graph, n, name);
    return a->g;
}

static void output(const char *name) { ir_graph_add_output(G, ir_graph_lookup(G, name)); }

static ir_infer_report rep;

static int infer(int64_t batch)
{
    usher_error err;
    int rc = ir_model_finalize(M, &err);
    if (rc < 0)
        return rc;
    ir_infer_params p = ir_infer_default_params();
    p.batch = batch;
    return ir_model_infer(M, &p, &rep, &err);
}

static const char *shape_of(const char *name)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    ir_tensor *t = ir_graph_lookup(G, name);
    if (!t)
        return "(no such tensor)";
    ir_shape_format(M, &t->shape, b, 256);
    return b;
}

static ir_node *node_named(const char *name)
{
    for (uint32_t i = 0; i < G->n_nodes; i++)
        if (strcmp(G->nodes[i]->name, name) == 0)
            return G->nodes[i];
    return NULL;
}

TEST(conv_pool_shapes_and_cost)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,3,224,224");
    weight("w", "64,3,7,7");
    ir_node *c = NODE("Conv", "x,w", "c");
    a_ints(c, "strides", 2, 2, 2);
    a_ints(c, "pads", 4, 3, 3, 3, 3);
    ir_node *p = NODE("MaxPool", "c", "p");
    a_ints(p, "kernel_shape", 2, 3, 3);
    a_ints(p, "strides", 2, 2, 2);
    a_ints(p, "pads", 4, 1, 1, 1, 1);
    output("p");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("c"), "[batch,64,112,112]");
    ASSERT_STR_EQ(shape_of("p"), "[batch,64,56,56]");
    ASSERT_EQ_INT(infer(8), USHER_OK);
    ASSERT_STR_EQ(shape_of("p"), "[8,64,56,56]");
    ir_node *cn = node_named("c");
    ASSERT_EQ_U64(cn->cost.macs, 8ull * 64 * 112 * 112 * 3 * 7 * 7);
    ASSERT(cn->cost.exact);
    ir_stats st;
    ir_model_stats(M, &st);
    ASSERT_EQ_U64(st.n_params, 64 * 3 * 7 * 7);
    ASSERT_EQ_U64(st.macs, 8ull * 64 * 112 * 112 * 147);
    end();
}

TEST(conv_mismatch_is_reported_and_isolated)
{
    begin(17);
    input("x", IR_DT_FLOAT, "1,4,8,8");
    weight("w", "16,3,3,3");
    NODE("Conv", "x,w", "c");
    NODE("Relu", "c", "r");
    output("r");
    ASSERT_EQ_INT(infer(0), USHER_ERR_SHAPE);
    ASSERT_EQ_INT(rep.n_failed, 1); /* the Relu after it is not a second failure */
    ASSERT_CONTAINS(rep.problem, "channels");
    ASSERT_STR_EQ(shape_of("r"), "?");
    end();
}

TEST(pool_ceil_mode_and_same_padding)
{
    begin(17);
    input("x", IR_DT_FLOAT, "1,1,5,5");
    ir_node *a = NODE("MaxPool", "x", "floor");
    a_ints(a, "kernel_shape", 2, 2, 2);
    a_ints(a, "strides", 2, 2, 2);
    ir_node *b = NODE("AveragePool", "x", "ceil");
    a_ints(b, "kernel_shape", 2, 2, 2);
    a_ints(b, "strides", 2, 2, 2);
    a_int(b, "ceil_mode", 1);
    ir_node *c = NODE("MaxPool", "x", "same");
    a_ints(c, "kernel_shape", 2, 3, 3);
    a_ints(c, "strides", 2, 2, 2);
    a_str(c, "auto_pad", "SAME_UPPER");
    ir_node *d = NODE("AveragePool", "x", "lastwin");
    a_ints(d, "kernel_shape", 2, 2, 2);
    a_ints(d, "strides", 2, 3, 3);
    a_ints(d, "pads", 4, 1, 1, 1, 1);
    a_int(d, "ceil_mode", 1);
    output("floor");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("floor"), "[1,1,2,2]");
    ASSERT_STR_EQ(shape_of("ceil"), "[1,1,3,3]");
    ASSERT_STR_EQ(shape_of("same"), "[1,1,3,3]");
    /* (5+2-2)/3 -> ceil 2, +1 = 3, but window 3 would start at 6 >= 5+1: dropped */
    ASSERT_STR_EQ(shape_of("lastwin"), "[1,1,2,2]");
    end();
}

TEST(gemm_matmul_broadcasting)
{
    begin(17);
    input("a", IR_DT_FLOAT, "batch,512");
    weight("b", "1000,512");
    ir_node *g = NODE("Gemm", "a,b", "y");
    a_int(g, "transB", 1);
    input("p", IR_DT_FLOAT, "2,1,3,4");
    input("q", IR_DT_FLOAT, "5,4,6");
    NODE("MatMul", "p,q", "pq");
    input("v", IR_DT_FLOAT, "4");
    input("m", IR_DT_FLOAT, "4,6");
    NODE("MatMul", "v,m", "vm");
    NODE("MatMul", "m,v", "bad");
    output("y");
    ASSERT_EQ_INT(infer(4), USHER_ERR_SHAPE);
    ASSERT_STR_EQ(shape_of("y"), "[4,1000]");
    ASSERT_STR_EQ(shape_of("pq"), "[2,5,3,6]");
    ASSERT_STR_EQ(shape_of("vm"), "[6]");
    ASSERT_EQ_INT(rep.n_failed, 1);
    ASSERT_CONTAINS(rep.problem, "inner dimensions differ: 6 vs 4");
    ASSERT_EQ_U64(node_named("y")->cost.macs, 4ull * 1000 * 512);
    ASSERT_EQ_U64(node_named("pq")->cost.macs, 2ull * 5 * 3 * 6 * 4);
    end();
}

TEST(broadcast_rules)
{
    begin(17);
    input("a", IR_DT_FLOAT, "batch,1,5");
    input("b", IR_DT_FLOAT, "3,1");
    input("c", IR_DT_FLOAT, "3");
    input("d", IR_DT_FLOAT, "4");
    NODE("Add", "a,b", "ab");
    NODE("Sub", "c,d", "cd");
    NODE("Equal", "a,b", "eq");
    NODE("Where", "eq,a,b", "w");
    output("ab");
    ASSERT_EQ_INT(infer(0), USHER_ERR_SHAPE);
    ASSERT_STR_EQ(shape_of("ab"), "[batch,3,5]");
    ASSERT_STR_EQ(shape_of("w"), "[batch,3,5]");
    ASSERT_EQ_INT(ir_graph_lookup(G, "eq")->dtype, IR_DT_BOOL);
    ASSERT_CONTAINS(rep.problem, "cannot broadcast dim 3 against 4");
    end();
}

TEST(reshape_through_shape_arithmetic)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,128,768");
    NODE("Shape", "x", "s");
    CONST_I64("zero", 1, (int64_t)0);
    ir_node *g = NODE("Gather", "s,zero", "b");
    a_int(g, "axis", 0);
    CONST_I64("rest", 3, (int64_t)128, (int64_t)12, (int64_t)64);
    ir_node *cc = NODE("Concat", "b,rest", "target");
    a_int(cc, "axis", 0);
    NODE("Reshape", "x,target", "heads");
    CONST_I64("flat", 2, (int64_t)-1, (int64_t)768);
    NODE("Reshape", "x,flat", "rows");
    CONST_I64("keep", 2, (int64_t)0, (int64_t)-1);
    NODE("Reshape", "heads,keep", "back");
    output("back");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("heads"), "[batch,128,12,64]");
    ASSERT_STR_EQ(shape_of("rows"), "[128*batch,768]");
    ASSERT_STR_EQ(shape_of("back"), "[batch,98304]");
    ASSERT_EQ_INT(infer(3), USHER_OK);
    ASSERT_STR_EQ(shape_of("rows"), "[384,768]");
    end();
}

TEST(views_and_axes_inputs)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,1,7,1");
    CONST_I64("ax", 2, (int64_t)1, (int64_t)3);
    NODE("Squeeze", "x,ax", "sq");
    CONST_I64("ax0", 2, (int64_t)0, (int64_t)-1);
    NODE("Unsqueeze", "sq,ax0", "un");
    ir_node *t = NODE("Transpose", "x", "tr");
    a_ints(t, "perm", 4, 2, 0, 3, 1);
    ir_node *f = NODE("Flatten", "x", "fl");
    a_int(f, "axis", 2);
    output("un");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("sq"), "[batch,7]");
    ASSERT_STR_EQ(shape_of("un"), "[1,batch,7,1]");
    ASSERT_STR_EQ(shape_of("tr"), "[7,batch,1,1]");
    ASSERT_STR_EQ(shape_of("fl"), "[batch,7]");
    end();
}

TEST(slice_split_concat_symbolic)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,seq");
    CONST_I64("s", 1, (int64_t)1);
    CONST_I64("e", 1, INT64_MAX);
    CONST_I64("a", 1, (int64_t)1);
    NODE("Slice", "x,s,e,a", "tail");
    CONST_I64("s2", 1, (int64_t)-3);
    NODE("Slice", "x,s2,e,a", "last3");
    ir_node *c = NODE("Concat", "x,x", "cat");
    a_int(c, "axis", 1);
    input("y", IR_DT_FLOAT, "batch,6");
    ir_node *sp = NODE("Split", "y", "p0,p1,p2");
    a_int(sp, "axis", 1);
    CONST_I64("sizes", 2, (int64_t)2, (int64_t)4);
    ir_node *sp2 = NODE("Split", "y,sizes", "q0,q1");
    a_int(sp2, "axis", 1);
    output("cat");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("tail"), "[batch,seq-1]");
    ASSERT_STR_EQ(shape_of("last3"), "[batch,3]");
    ASSERT_STR_EQ(shape_of("cat"), "[batch,2*seq]");
    ASSERT_STR_EQ(shape_of("p2"), "[batch,2]");
    ASSERT_STR_EQ(shape_of("q1"), "[batch,4]");
    end();
}

TEST(equal_expressions_share_a_symbol)
{
    /* two identical strided convs over a symbolic H must give equal dims, so
     * adding their outputs is not a broadcast error */
    begin(17);
    input("x", IR_DT_FLOAT, "1,3,H,W");
    weight("w1", "8,3,3,3");
    weight("w2", "8,3,3,3");
    ir_node *a = NODE("Conv", "x,w1", "a");
    a_ints(a, "strides", 2, 2, 2);
    ir_node *b = NODE("Conv", "x,w2", "b");
    a_ints(b, "strides", 2, 2, 2);
    NODE("Add", "a,b", "sum");
    output("sum");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("sum"), shape_of("a"));
    ASSERT_STR_EQ(shape_of("a"), "[1,8,floor((H-3)/2)+1,floor((W-3)/2)+1]");
    end();
}

TEST(lstm_shapes_and_cost)
{
    begin(17);
    input("x", IR_DT_FLOAT, "seq,batch,10");
    weight("w", "2,80,10");
    weight("r", "2,80,20");
    ir_node *l = NODE("LSTM", "x,w,r", "y,yh,yc");
    a_int(l, "hidden_size", 20);
    a_str(l, "direction", "bidirectional");
    output("y");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("y"), "[seq,2,batch,20]");
    ASSERT_STR_EQ(shape_of("yh"), "[2,batch,20]");
    ir_binding b[2] = {{"seq", 7}, {"batch", 3}}; /* LSTM's batch is axis 1 */
    ir_infer_params p = ir_infer_default_params();
    p.bindings = b;
    p.n_bindings = 2;
    usher_error err;
    ASSERT_OK(ir_model_infer(M, &p, &rep, &err));
    ASSERT_EQ_U64(node_named("y,yh,yc")->cost.macs, 7ull * 3 * 2 * 80 * (10 + 20));
    end();
}

TEST(if_takes_known_branch_or_merges)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,4");
    input("flag", IR_DT_BOOL, "");
    /* cond unknown: then gives [batch,4], else [batch,8] -> dim 1 unknown */
    ir_node *n = NODE("If", "flag", "o");
    ir_graph *tg = a_graph(n, "then_branch");
    ir_graph *eg = a_graph(n, "else_branch");
    node_in(tg, "Relu", "x", "t_out");
    ir_graph_add_output(tg, ir_graph_lookup(tg, "t_out"));
    ir_node *cc = node_in(eg, "Concat", "x,x", "e_out");
    a_int(cc, "axis", 1);
    ir_graph_add_output(eg, ir_graph_lookup(eg, "e_out"));
    /* cond known true: exactly the then-branch, else-branch not inferred */
    const_i64_in(G, "one", 0, 1, (int64_t)1);
    ir_node *n2 = NODE("If", "one", "o2");
    ir_graph *tg2 = a_graph(n2, "then_branch");
    ir_graph *eg2 = a_graph(n2, "else_branch");
    node_in(tg2, "Relu", "x", "t2");
    ir_graph_add_output(tg2, ir_graph_lookup(tg2, "t2"));
    node_in(eg2, "Relu", "nonsense_is_never_inferred", "e2");
    ir_graph_add_output(eg2, ir_graph_lookup(eg2, "e2"));
    output("o");
    usher_error err;
    /* e2's input does not resolve: the else branch reads nothing (NULL input) */
    ASSERT_OK(ir_model_finalize(M, &err));
    ir_infer_params p = ir_infer_default_params();
    ASSERT_OK(ir_model_infer(M, &p, &rep, &err));
    ASSERT_STR_EQ(shape_of("o2"), "[batch,4]");
    const char *o = shape_of("o");
    ASSERT(strncmp(o, "[batch,?o:1", 11) == 0);
    /* the If node depends on x through its subgraph: x is an implicit input */
    ASSERT_EQ_INT(n->n_implicit, 1);
    ASSERT(n->implicit[0] == ir_graph_lookup(G, "x"));
    end();
}

TEST(loop_scan_outputs)
{
    begin(17);
    input("v0", IR_DT_FLOAT, "3");
    const_i64_in(G, "trips", 0, 1, (int64_t)5);
    ir_node *l = NODE("Loop", "trips,-,v0", "vf,scan");
    ir_graph *body = a_graph(l, "body");
    input_in(body, "i", IR_DT_INT64, "");
    input_in(body, "c", IR_DT_BOOL, "");
    input_in(body, "v", IR_DT_FLOAT, NULL);
    node_in(body, "Identity", "c", "c_out");
    node_in(body, "Relu", "v", "v_out");
    node_in(body, "Identity", "v", "s_out");
    ir_graph_add_output(body, ir_graph_lookup(body, "c_out"));
    ir_graph_add_output(body, ir_graph_lookup(body, "v_out"));
    ir_graph_add_output(body, ir_graph_lookup(body, "s_out"));
    output("scan");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    ASSERT_STR_EQ(shape_of("vf"), "[3]");
    ASSERT_STR_EQ(shape_of("scan"), "[5,3]");
    end();
}

TEST(topological_order_and_cycles)
{
    begin(17);
    input("x", IR_DT_FLOAT, "4");
    /* nodes listed consumer first */
    ir_node *b = NODE("Relu", "x", "b");
    ir_node *a = NODE("Neg", "x", "a");
    b->in[0] = ir_graph_lookup(G, "a");
    output("b");
    usher_error err;
    ASSERT_OK(ir_model_finalize(M, &err));
    ASSERT(G->nodes[0] == a && G->nodes[1] == b);
    end();

    begin(17);
    input("x", IR_DT_FLOAT, "4");
    ir_node *p = NODE("Add", "x,x", "p");
    ir_node *q = NODE("Add", "p,x", "q");
    p->in[1] = ir_graph_lookup(G, "q"); /* p <- q <- p */
    (void)q;
    ASSERT_EQ_INT(ir_model_finalize(M, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "cycle");
    end();
}

TEST(unsupported_operator_named)
{
    begin(17);
    input("x", IR_DT_FLOAT, "4");
    NODE("FancyNewOp", "x", "y");
    NODE("Relu", "y", "z");
    output("z");
    ASSERT_EQ_INT(infer(0), USHER_ERR_UNSUPPORTED);
    ASSERT_EQ_INT(rep.n_unsupported, 1);
    ASSERT_EQ_INT(rep.n_failed, 0);
    ASSERT_CONTAINS(rep.problem, "FancyNewOp");
    ASSERT_CONTAINS(rep.problem, "not supported");
    end();
}

TEST(peak_live_bytes_of_a_chain)
{
    begin(17);
    input("x", IR_DT_FLOAT, "1000");
    NODE("Relu", "x", "a");
    NODE("Relu", "a", "b");
    NODE("Relu", "b", "c");
    NODE("Relu", "x", "unused"); /* dead on arrival; x is still live when it runs */
    output("c");
    ASSERT_EQ_INT(infer(0), USHER_OK);
    bool exact;
    /* x+a, then a+b, then b+c (x kept for the last reader): at most 3 live */
    ASSERT_EQ_U64(ir_graph_peak_live_bytes(G, &exact), 12000);
    ASSERT(exact);
    end();
}

TEST(bindings_are_checked)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,4");
    NODE("Relu", "x", "y");
    output("y");
    usher_error err;
    ASSERT_OK(ir_model_finalize(M, &err));
    ir_binding b = {"nope", 3};
    ir_infer_params p = ir_infer_default_params();
    p.bindings = &b;
    p.n_bindings = 1;
    ASSERT_EQ_INT(ir_model_infer(M, &p, &rep, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "nope");
    b.name = "batch";
    b.value = 0;
    ASSERT_EQ_INT(ir_model_infer(M, &p, &rep, &err), USHER_ERR_INVALID);
    p.n_bindings = 0;
    p.batch = -2;
    ASSERT_EQ_INT(ir_model_infer(M, &p, &rep, &err), USHER_ERR_INVALID);
    end();
}

TEST(resize_scales_and_einsum)
{
    begin(17);
    input("x", IR_DT_FLOAT, "batch,3,H,W");
    float sc[4] = {1, 1, 2, 2};
    const_f32("scales", 4, sc);
    NODE("Resize", "x,-,scales", "up");
    input("p", IR_DT_FLOAT, "batch,5,7");
    input("q", IR_DT_FLOAT, "batch,7,9");
    ir_node *e = NODE("Einsum", "p,q", "pq");
    a_str(e, "equation", "bij,bjk->bik");
    output("up");
    ASSERT_EQ_INT(infer(2), USHER_OK);
    ASSERT_STR_EQ(shape_of("up"), "[2,3,2*H,2*W]");
    ASSERT_STR_EQ(shape_of("pq"), "[2,5,9]");
    ASSERT_EQ_U64(node_named("pq")->cost.macs, 2ull * 5 * 7 * 9);
    end();
}

TEST(op_table_is_consistent)
{
    for (unsigned i = 0; i < IR_OP_COUNT; i++) {
        ASSERT(ir_op_lookup("", ir_op_name((ir_op)i)) == (ir_op)i);
        ASSERT(ir_op_lookup("ai.onnx", ir_op_name((ir_op)i)) == (ir_op)i);
    }
    ASSERT(ir_op_lookup("com.microsoft", "Conv") == IR_OP_UNKNOWN);
    ASSERT(ir_op_lookup("", "conv") == IR_OP_UNKNOWN);
    ASSERT_EQ_INT(ir_dtype_bits(IR_DT_FLOAT16), 16);
    uint64_t nb;
    ASSERT(ir_dtype_nbytes(IR_DT_INT4, 3, &nb) && nb == 2);
    ASSERT(!ir_dtype_nbytes(IR_DT_DOUBLE, UINT64_MAX / 4, &nb));
}

TEST_MAIN(TEST_ENTRY(conv_pool_shapes_and_cost), TEST_ENTRY(conv_mismatch_is_reported_and_isolated),
          TEST_ENTRY(pool_ceil_mode_and_same_padding), TEST_ENTRY(gemm_matmul_broadcasting),
          TEST_ENTRY(broadcast_rules), TEST_ENTRY(reshape_through_shape_arithmetic),
          TEST_ENTRY(views_and_axes_inputs), TEST_ENTRY(slice_split_concat_symbolic),
          TEST_ENTRY(equal_expressions_share_a_symbol), TEST_ENTRY(lstm_shapes_and_cost),
          TEST_ENTRY(if_takes_known_branch_or_merges), TEST_ENTRY(loop_scan_outputs),
          TEST_ENTRY(topological_order_and_cycles), TEST_ENTRY(unsupported_operator_named),
          TEST_ENTRY(peak_live_bytes_of_a_chain), TEST_ENTRY(bindings_are_checked),
          TEST_ENTRY(resize_scales_and_einsum), TEST_ENTRY(op_table_is_consistent))
