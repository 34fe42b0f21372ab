/*
 * test_zoo.c - golden figures for the committed model zoo (models/zoo).
 *
 * Parameter counts and multiply-accumulates at batch 1 must match the
 * published figures within 2%. Sources (also in docs/zoo.md):
 *   torchvision  "num_params" and "GFLOPS" of each model's weights entry in the
 *                torchvision 0.14 model documentation (GFLOPS there are MACs);
 *   paper        ShuffleNet V2 (146 M), MobileNetV3 (219 M MAdds), MobileNetV2
 *                (300 M MAdds), EfficientNet (0.39 B);
 *   HF           Hugging Face model cards / parameter counts (bert-base-uncased
 *                110 M = 109,482,240; bert-large 335,141,888; distilbert
 *                66,362,880; gpt2 124,439,808 without the tied LM head);
 *   analytic     transformer MACs at sequence 128: per layer
 *                4*s*d^2 + 2*s*d*f + 2*s^2*d (projections, FFN, attention), plus
 *                the pooler d^2 for BERT;
 *   torch        ssd300-resnet50 (NVIDIA DeepLearningExamples SSD300 v1.1, no
 *                figures published by NVIDIA): the torch module's parameter
 *                count (the "22.9 M" quoted for it) and its convolution MACs
 *                counted with forward hooks in torch, at 300x300;
 *   ultralytics  yolov8n: 3,157,200 parameters, 8.7 GFLOPs (= 2 x MACs) at 640;
 *   analytic     also t5-small-encoder (d 512, f 2048), whisper-base-encoder (the
 *                two convolutions plus 6 blocks at 1500 positions) and
 *                tinyllama-step (per layer the projections with 4 KV heads, the
 *                SwiGLU MLP and attention over past+1 = 513 positions, plus the
 *                LM head); parameters of HF T5EncoderModel t5-small, the
 *                WhisperEncoder of whisper-base (positions counted) and
 *                TinyLlama-1.1B (1,100,048,384).
 * Models with dims the user can set (seq, size, past) are checked here at the
 * default the file records. zoo_shapes_match_torch checks every model's output
 * shapes against what torch produced at export (models/zoo/shapes.tsv) at two
 * batch sizes and two values of each dim; zoo_dims_scale_costs checks how the
 * MACs move with each dim.
 * Our parameter count is the ONNX file's: batch norm folded into convolutions
 * where the exporter could (slightly fewer), running statistics counted where
 * it could not (DenseNet, slightly more); inception-v3 has no auxiliary head.
 */
#include "test.h"
#include "usher/model.h"

typedef struct golden {
    const char *name;
    double params, macs; /* published */
    const char *input0;  /* declared shape of the first input */
} golden;

#define TX(s, d, f) (4.0 * (s) * (d) * (d) + 2.0 * (s) * (d) * (f) + 2.0 * (s) * (s) * (d))
/* TinyLlama-1.1B, one new token over a cache of p: 22 layers of q and o (2048^2), k and v
 * (2048 x 256: 4 KV heads of 64), gate/up/down (3 x 2048 x 5632) and attention of 32 heads
 * of 64 over p + 1 positions (QK and PV), plus the LM head 2048 x 32000 */
#define LLAMA_MACS(p)                                                                              \
    (22 * (2.0 * 2048 * 2048 + 2.0 * 2048 * 256 + 3.0 * 2048 * 5632 + 2.0 * 32 * 64 * ((p) + 1)) + \
     2048.0 * 32000)

static const golden zoo[] = {
    {"resnet18", 11689512, 1.81e9, "[batch,3,224,224]"},
    {"resnet50", 25557032, 4.09e9, "[batch,3,224,224]"},
    {"resnet101", 44549160, 7.80e9, "[batch,3,224,224]"},
    {"resnet152", 60192808, 11.51e9, "[batch,3,224,224]"},
    {"vgg16", 138357544, 15.47e9, "[batch,3,224,224]"},
    {"vgg19", 143667240, 19.63e9, "[batch,3,224,224]"},
    {"alexnet", 61100840, 0.71e9, "[batch,3,224,224]"},
    {"inception-v3", 23834568, 5.71e9, "[batch,3,299,299]"},
    {"mobilenet-v2", 3504872, 0.300e9, "[batch,3,224,224]"},
    {"mobilenet-v3-large", 5483032, 0.219e9, "[batch,3,224,224]"},
    {"shufflenet-v2", 2278604, 0.146e9, "[batch,3,224,224]"},
    {"squeezenet", 1248424, 0.82e9, "[batch,3,224,224]"},
    {"efficientnet-b0", 5288548, 0.39e9, "[batch,3,224,224]"},
    {"densenet121", 7978856, 2.83e9, "[batch,3,224,224]"},
    {"densenet169", 14149480, 3.36e9, "[batch,3,224,224]"},
    {"densenet201", 20013928, 4.29e9, "[batch,3,224,224]"},
    {"vit-b16", 86567656, 17.56e9, "[batch,3,224,224]"},
    {"ssd300-resnet50", 22894902, 20150906112.0, "[batch,3,300,300]"},
    {"bert-base", 109482240, 12 * TX(128, 768, 3072) + 768.0 * 768, "[batch,seq]"},
    {"bert-large", 335141888, 24 * TX(128, 1024, 4096) + 1024.0 * 1024, "[batch,seq]"},
    {"distilbert", 66362880, 6 * TX(128, 768, 3072), "[batch,seq]"},
    {"gpt2", 124439808, 12 * TX(128, 768, 3072), "[batch,seq]"},
    {"swin-t", 28288354, 4.49e9, "[batch,3,224,224]"},
    {"convnext-t", 28589128, 4.46e9, "[batch,3,size,size]"},
    {"yolov8n", 3157200, 4.35e9, "[batch,3,size,size]"},
    {"t5-small-encoder", 35330816, 6 * TX(128, 512, 2048), "[batch,seq]"},
    {"whisper-base-encoder", 20590592,
     80.0 * 512 * 3 * 3000 + 512.0 * 512 * 3 * 1500 + 6 * TX(1500, 512, 2048), "[batch,80,3000]"},
    {"tinyllama-step", 1100048384, LLAMA_MACS(512), "[batch,1]"},
};

static usher_model *load(const char *name, usher_error *err)
{
    char rel[128];
    snprintf(rel, sizeof rel, "models/zoo/%s.onnx", name);
    usher_model *m = NULL;
    if (usher_model_load(test_path(test_source_dir(), rel), NULL, &m, err) < 0)
        return NULL;
    return m;
}

TEST(zoo_matches_published_figures)
{
    int bad = 0;
    printf("  %-20s %14s %14s %7s %10s %10s %7s\n", "model", "params", "published", "diff%",
           "GMACs", "published", "diff%");
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++) {
        const golden *g = &zoo[i];
        usher_error err;
        usher_model *m = load(g->name, &err);
        if (!m)
            FAIL_("%s", err.msg);
        usher_shape_params sp = usher_shape_default_params();
        sp.batch = 1;
        int rc = usher_model_infer(m, &sp, &err);
        usher_model_summary s;
        usher_model_get_summary(m, &s);
        usher_tensor_info in;
        usher_model_input(m, 0, &in);
        double dp = 100.0 * ((double)s.n_params - g->params) / g->params;
        double dm = 100.0 * ((double)s.macs - g->macs) / g->macs;
        printf("  %-20s %14llu %14.0f %+6.2f%% %10.3f %10.3f %+6.2f%%\n", g->name,
               (unsigned long long)s.n_params, g->params, dp, (double)s.macs / 1e9, g->macs / 1e9,
               dm);
        bool ok = rc == USHER_OK && s.exact && s.graph_only && dp < 2 && dp > -2 && dm < 2 &&
                  dm > -2 && strcmp(in.declared, g->input0) == 0;
        if (!ok) {
            fprintf(stderr, "  %s: rc %d (%s) exact %d graph_only %d input %s\n", g->name, rc,
                    rc ? err.msg : "", s.exact, s.graph_only, in.declared);
            bad++;
        }
        usher_model_free(m);
    }
    ASSERT_EQ_INT(bad, 0);
}

TEST(zoo_costs_scale_with_batch)
{
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++) {
        usher_error err;
        usher_model *m = load(zoo[i].name, &err);
        if (!m)
            FAIL_("%s", err.msg);
        usher_model_summary s1, s8;
        usher_shape_params sp = usher_shape_default_params();
        sp.batch = 1;
        usher_model_infer(m, &sp, &err);
        usher_model_get_summary(m, &s1);
        sp.batch = 8;
        usher_model_infer(m, &sp, &err);
        usher_model_get_summary(m, &s8);
        usher_tensor_info out;
        usher_model_output(m, 0, &out);
        bool ok = s8.macs == 8 * s1.macs && s8.exact && s8.peak_activation_bytes > s1.peak_activation_bytes &&
                  s8.n_params == s1.n_params && strncmp(out.shape, "[8,", 3) == 0;
        usher_model_free(m);
        if (!ok)
            FAIL_("%s: batch 8 does not scale batch 1 (MACs %llu vs 8 x %llu, output %s, exact %d, peak %llu vs %llu)",
                  zoo[i].name, (unsigned long long)s8.macs, (unsigned long long)s1.macs,
                  out.shape, s8.exact, (unsigned long long)s8.peak_activation_bytes, (unsigned long long)s1.peak_activation_bytes);
    }
}

/* Infer `name` at batch and the bindings "a=1,b=2" (batch excluded); 0 or an error. */
static int infer_at(usher_model *m, int64_t batch, const char *bind, usher_error *err)
{
    usher_dim_binding d[8];
    char buf[256], names[8][64];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", bind);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < 8; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) {
            snprintf(err->msg, sizeof err->msg, "bad binding '%s'", t);
            return USHER_ERR_INVALID;
        }
        *eq = '\0';
        if (strcmp(t, "batch") == 0)
            continue;
        snprintf(names[n], sizeof names[n], "%s", t);
        d[n].name = names[n];
        d[n++].value = strtoll(eq + 1, NULL, 10);
    }
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = batch;
    sp.dims = d;
    sp.n_dims = n;
    return usher_model_infer(m, &sp, err);
}

/* Every row of models/zoo/shapes.tsv (written by tools/zoo/export_zoo.py --shapes from
 * the torch modules themselves): usher infers the same output shape, exactly. */
TEST(zoo_shapes_match_torch)
{
    test_blob tb;
    ASSERT(test_read_file(test_path(test_source_dir(), "models/zoo/shapes.tsv"), &tb));
    char *text = malloc(tb.n + 1);
    ASSERT(text != NULL);
    memcpy(text, tb.p, tb.n);
    text[tb.n] = '\0';
    free(tb.p);
    int rows = 0, bad = 0;
    bool seen[sizeof zoo / sizeof zoo[0]] = {false};
    char cur[64] = "";
    usher_model *m = NULL;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (ln[0] == '#')
            continue;
        char name[64], bind[128], out[128], want[256];
        if (sscanf(ln, "%63[^\t]\t%127[^\t]\t%127[^\t]\t%255s", name, bind, out, want) != 4) {
            fprintf(stderr, "  bad row '%s'\n", ln);
            bad++;
            continue;
        }
        usher_error err;
        if (strcmp(name, cur) != 0) {
            usher_model_free(m);
            m = load(name, &err);
            snprintf(cur, sizeof cur, "%s", name);
            if (!m) {
                fprintf(stderr, "  %s: %s\n", name, err.msg);
                bad++;
                continue;
            }
            for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++)
                seen[i] |= strcmp(zoo[i].name, name) == 0;
        }
        if (!m)
            continue;
        rows++;
        int64_t batch = strtoll(bind + strlen("batch="), NULL, 10);
        int rc = infer_at(m, batch, bind, &err);
        usher_tensor_info ti = {0};
        bool found = false;
        for (uint32_t i = 0; !found && usher_model_output(m, i, &ti) == USHER_OK; i++)
            found = strcmp(ti.name, out) == 0;
        usher_model_summary s;
        usher_model_get_summary(m, &s);
        if (rc != USHER_OK || !found || !s.exact || strcmp(ti.shape, want) != 0) {
            fprintf(stderr, "  %s %s %s: usher %s (rc %d %s, exact %d), torch %s\n", name, bind,
                    out, found ? ti.shape : "(no such output)", rc, rc ? err.msg : "", s.exact,
                    want);
            bad++;
        }
    }
    usher_model_free(m);
    free(text);
    printf("  %d rows checked\n", rows);
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++)
        if (!seen[i]) {
            fprintf(stderr, "  %s: no rows in shapes.tsv\n", zoo[i].name);
            bad++;
        }
    ASSERT_EQ_INT(bad, 0);
}

static uint64_t macs_at(usher_model *m, const char *bind)
{
    usher_error err;
    if (infer_at(m, 1, bind, &err) != USHER_OK)
        return 0;
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    return s.exact ? s.macs : 0;
}

/* How MACs move with the dims users set: transformer encoders grow faster than linear in
 * seq (attention is quadratic) and equal the analytic count at 384; the decoder step grows
 * by exactly the attention over the extra cached positions; convolutional models grow with
 * the image area. Unset dims take the recorded defaults (the golden figures above). */
TEST(zoo_dims_scale_costs)
{
    usher_error err;
    static const struct {
        const char *name;
        double at384; /* analytic MACs at seq 384 */
    } enc[] = {
        {"bert-base", 12 * TX(384, 768, 3072) + 768.0 * 768},
        {"bert-large", 24 * TX(384, 1024, 4096) + 1024.0 * 1024},
        {"distilbert", 6 * TX(384, 768, 3072)},
        {"gpt2", 12 * TX(384, 768, 3072)},
        {"t5-small-encoder", 6 * TX(384, 512, 2048)},
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        usher_model *m = load(enc[i].name, &err);
        if (!m)
            FAIL_("%s", err.msg);
        int64_t dflt = 0;
        int drc = usher_model_symbol_default(m, "seq", &dflt);
        uint64_t d = macs_at(m, ""), a = macs_at(m, "seq=128"), b = macs_at(m, "seq=384");
        usher_model_free(m);
        if (drc != USHER_OK || dflt != 128 || d != a || a == 0 || (double)b <= 3.0 * a ||
            b != (uint64_t)enc[i].at384)
            FAIL_("%s: default seq %lld (rc %d); MACs default %llu, 128 %llu, 384 %llu (want > 3x "
                  "and %.0f)",
                  enc[i].name, (long long)dflt, drc, (unsigned long long)d, (unsigned long long)a,
                  (unsigned long long)b, enc[i].at384);
    }
    usher_model *m = load("tinyllama-step", &err);
    if (!m)
        FAIL_("%s", err.msg);
    uint64_t p0 = macs_at(m, ""), p1 = macs_at(m, "past=1024");
    usher_model_free(m);
    if (p0 != (uint64_t)LLAMA_MACS(512) || p1 != (uint64_t)LLAMA_MACS(1024))
        FAIL_("tinyllama-step: MACs %llu at the default past, %llu at 1024 (want %.0f, %.0f)",
              (unsigned long long)p0, (unsigned long long)p1, LLAMA_MACS(512), LLAMA_MACS(1024));
    static const struct {
        const char *name;
        int dflt, other;
    } img[] = {{"convnext-t", 224, 288}, {"yolov8n", 640, 320}};
    for (size_t i = 0; i < sizeof img / sizeof img[0]; i++) {
        m = load(img[i].name, &err);
        if (!m)
            FAIL_("%s", err.msg);
        char bind[64];
        snprintf(bind, sizeof bind, "size=%d", img[i].other);
        uint64_t a = macs_at(m, ""), b = macs_at(m, bind);
        usher_model_free(m);
        double want = (double)img[i].other * img[i].other / ((double)img[i].dflt * img[i].dflt);
        double got = a ? (double)b / (double)a : 0;
        if (a == 0 || got < want * 0.99 || got > want * 1.01)
            FAIL_("%s: MACs %llu at %d, %llu at %d: ratio %.4f, area ratio %.4f", img[i].name,
                  (unsigned long long)a, img[i].dflt, (unsigned long long)b, img[i].other, got,
                  want);
    }
}

/* The default a model records ("usher.dim.seq" = "128") is checked at import: a value that
 * is not a decimal in [1, 2^40], or a key naming no dim, fails the load naming the key. */
TEST(zoo_dim_default_metadata_checked)
{
    test_blob tb;
    ASSERT(test_read_file(test_path(test_source_dir(), "models/zoo/distilbert.onnx"), &tb));
    static const char key[] = "usher.dim.seq";
    uint8_t *k = NULL;
    for (size_t i = 0; i + sizeof key + 5 < tb.n && !k; i++)
        if (memcmp(tb.p + i, key, sizeof key - 1) == 0)
            k = tb.p + i;
    ASSERT(k != NULL);
    /* StringStringEntryProto: key, then field 2 (0x12), length 3, "128" */
    uint8_t *v = k + sizeof key - 1;
    ASSERT(v[0] == 0x12 && v[1] == 3 && memcmp(v + 2, "128", 3) == 0);
    static const struct {
        const char *val, *keych, *msg;
    } bad[] = {{"12a", NULL, "not a decimal"}, {"000", NULL, "not a decimal"},
               {"128", "z", "no dynamic dim 'sez'"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t save[3], savek = k[sizeof key - 2];
        memcpy(save, v + 2, 3);
        memcpy(v + 2, bad[i].val, 3);
        if (bad[i].keych)
            k[sizeof key - 2] = (uint8_t)bad[i].keych[0];
        usher_model *m = NULL;
        usher_error err;
        int rc = usher_model_load_memory(tb.p, tb.n, NULL, &m, &err);
        memcpy(v + 2, save, 3);
        k[sizeof key - 2] = savek;
        usher_model_free(m);
        if (rc != USHER_ERR_PARSE || !strstr(err.msg, "usher.dim.se") || !strstr(err.msg, bad[i].msg))
            FAIL_("value '%s': rc %d, '%s'", bad[i].val, rc, rc < 0 ? err.msg : "");
    }
    usher_model *m = NULL;
    usher_error err;
    int rc = usher_model_load_memory(tb.p, tb.n, NULL, &m, &err);
    free(tb.p);
    ASSERT_EQ_INT(rc, USHER_OK);
    usher_model_free(m);
}

TEST_MAIN(TEST_ENTRY(zoo_matches_published_figures), TEST_ENTRY(zoo_costs_scale_with_batch),
          TEST_ENTRY(zoo_shapes_match_torch), TEST_ENTRY(zoo_dims_scale_costs),
          TEST_ENTRY(zoo_dim_default_metadata_checked))
