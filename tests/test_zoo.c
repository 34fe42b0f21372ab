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
 *                counted with forward hooks in torch, at 300x300.
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
    {"bert-base", 109482240, 12 * TX(128, 768, 3072) + 768.0 * 768, "[batch,128]"},
    {"bert-large", 335141888, 24 * TX(128, 1024, 4096) + 1024.0 * 1024, "[batch,128]"},
    {"distilbert", 66362880, 6 * TX(128, 768, 3072), "[batch,128]"},
    {"gpt2", 124439808, 12 * TX(128, 768, 3072), "[batch,128]"},
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

TEST_MAIN(TEST_ENTRY(zoo_matches_published_figures), TEST_ENTRY(zoo_costs_scale_with_batch))
