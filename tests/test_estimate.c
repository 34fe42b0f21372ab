/*
 * test_estimate.c - the estimator (issue 3): calibration tables, the kernel
 * mapping, the timing model against hand-computed rooflines, properties over
 * the zoo (latency monotone in batch and share, Mreq growing with batch,
 * Creq in (0, 100], GEMM work equal to the IR's MACs), and bad input.
 */
#include <math.h>

#include "estimate/est.h"
#include "estimate/kernels.h"
#include "onnx/model_impl.h"
#include "test.h"
#include "usher/estimate.h"

static usher_model *zoo_model(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "models/zoo/%s.onnx", name);
    usher_model *m = NULL;
    usher_error err;
    if (usher_model_load(test_path(test_source_dir(), rel), NULL, &m, &err) < 0)
        fprintf(stderr, "  %s\n", err.msg);
    return m;
}

TEST(calibration_table_parses_and_falls_back)
{
    const char *text = "# comment\n"
                       "[a100-80gb pytorch-eager]\n"
                       "source = a test\n"
                       "eff_gemm = 0.5\n"
                       "launch_us = 20\n"
                       "fusion = none\n"
                       "\n"
                       "[* onnxruntime-cuda]\n"
                       "eff_mem = 0.7\n";
    gpu_calib_table t;
    usher_error err;
    ASSERT_OK(gpu_calib_parse(text, strlen(text), "t.txt", &t, &err));
    ASSERT_EQ_INT(t.n, 2);
    gpu_catalog *cat;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    const gpu_type *a100, *mig, *t4;
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb", &a100, &err));
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb:3g.40gb", &mig, &err));
    ASSERT_OK(gpu_catalog_find(cat, "t4", &t4, &err));
    bool found;
    gpu_calib c = gpu_calib_lookup(&t, mig, "pytorch-eager", &found); /* MIG -> parent */
    ASSERT(found && c.calibrated && c.eff_gemm == 0.5 && c.launch_us == 20);
    ASSERT_STR_EQ(c.fusion, "none");
    c = gpu_calib_lookup(&t, t4, "onnxruntime-cuda", &found); /* -> "*" */
    ASSERT(found && c.eff_mem == 0.7 && c.eff_gemm == gpu_calib_default().eff_gemm);
    c = gpu_calib_lookup(&t, t4, "tensorrt", &found); /* nothing: defaults */
    ASSERT(!found && !c.calibrated);
    /* format, then parse again: the same numbers */
    char buf[4096];
    c = gpu_calib_lookup(&t, a100, "pytorch-eager", &found);
    ASSERT(gpu_calib_format(&c, buf, sizeof buf) > 0);
    gpu_calib_table t2;
    ASSERT_OK(gpu_calib_parse(buf, strlen(buf), "again", &t2, &err));
    ASSERT(t2.n == 1 && t2.rows[0].eff_gemm == 0.5 && t2.rows[0].launch_us == 20);
    gpu_calib_table_free(&t2);
    gpu_calib_table_free(&t);
    gpu_catalog_free(cat);
}

TEST(calibration_table_errors_name_the_line)
{
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"eff_gemm = 1\n", ":1: a value before the first section"},
        {"[t4 x]\nbogus = 1\n", ":2: unknown key 'bogus'"},
        {"[t4 x]\neff_gemm = fast\n", ":2: eff_gemm = 'fast' is not a number"},
        {"[t4 x]\neff_gemm = 7\n", "is not a number in [0.001, 1]"},
        {"[t4 x]\neff_gemm = nan\n", "is not a number"},
        {"[t4 x]\neff_gemm = 0.5\neff_gemm = 0.6\n", ":3: 'eff_gemm' given twice"},
        {"[t4 x]\n[t4 x]\n", ":2: section [t4 x] appears twice"},
        {"[t4]\n", ":1: section needs a GPU key and a framework"},
        {"[T4 X]\n", "section needs a GPU key"},
        {"[t4 x\n", ":1: section header must be"},
        {"[t4 x]\nfusion = maybe\n", "fusion 'maybe' is not none, ort or full"},
        {"[t4 x]\njust words\n", ":2: expected 'name = value'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gpu_calib_table t;
        usher_error err;
        int rc = gpu_calib_parse(bad[i].text, strlen(bad[i].text), "cal.txt", &t, &err);
        if (rc >= 0 || !strstr(err.msg, bad[i].msg))
            FAIL_("case %zu: rc %d, message '%s', expected '%s'", i, rc, err.msg, bad[i].msg);
    }
    char nul[] = "[t4 x]\neff_gemm\0= 1\n";
    gpu_calib_table t;
    usher_error err;
    ASSERT_EQ_INT(gpu_calib_parse(nul, sizeof nul - 1, "n", &t, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "NUL");
    char longline[1200];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    ASSERT_EQ_INT(gpu_calib_parse(longline, strlen(longline), "l", &t, &err), USHER_ERR_LIMIT);
    ASSERT_EQ_INT(gpu_calib_load("/nonexistent/cal.txt", &t, &err), USHER_ERR_NOT_FOUND);
}

TEST(timing_matches_hand_rooflines)
{
    usher_error err;
    gpu_catalog *cat;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    const gpu_type *g;
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb", &g, &err));
    gpu_calib cal = gpu_calib_default();
    gpu_budget b;
    ASSERT_OK(gpu_budget_init(&b, g, 1.0, GPU_PREC_FP32, &cal, &err));
    /* a large SGEMM is compute bound: 2 N^3 / (peak x eff), waves fill evenly */
    gpu_kprob p;
    memset(&p, 0, sizeof p);
    p.cls = GPU_K_GEMM;
    p.m = p.n = p.k = 8192;
    p.batch = 1;
    p.repeat = 1;
    p.elem_bytes = 4;
    p.flops = 2.0 * 8192 * 8192 * 8192;
    p.bytes = 3.0 * 8192 * 8192 * 4;
    gpu_ktime t;
    gpu_ktime_eval(&b, &p, &t);
    double ideal = p.flops / (g->fp32_tflops * 1e12 * cal.eff_gemm);
    ASSERT_NEAR_PCT(t.seconds, ideal, 5);
    ASSERT(t.share > 0.9 && t.share <= 1.0);
    if (!(t.tile_m >= 64 && t.grid > 0 && t.blocks_per_sm >= 1))
        FAIL_("tile %dx%d grid %lld bps %d split %d", t.tile_m, t.tile_n, (long long)t.grid, t.blocks_per_sm, t.split_k);
    /* half the SMs: about twice as long */
    gpu_budget half;
    ASSERT_OK(gpu_budget_init(&half, g, 0.5, GPU_PREC_FP32, &cal, &err));
    gpu_ktime th;
    gpu_ktime_eval(&half, &p, &th);
    ASSERT_NEAR_PCT(th.seconds, 2 * t.seconds, 8);
    ASSERT(th.sm_share <= 0.5 + 1e-9);
    /* a 1 GB elementwise kernel is bandwidth bound */
    gpu_kprob e;
    memset(&e, 0, sizeof e);
    e.cls = GPU_K_ELEMWISE;
    e.repeat = 1;
    e.elem_bytes = 4;
    e.parallel = 125000000;
    e.bytes = 1e9;
    e.flops = 1.25e8;
    gpu_ktime te;
    gpu_ktime_eval(&b, &e, &te);
    ASSERT_NEAR_PCT(te.seconds, 1e9 / (g->mem_bw_gbs * 1e9 * cal.eff_mem), 3);
    ASSERT(te.bw_share > 0.75); /* what makes its compute share high despite low occupancy */
    /* tensor cores: FP16 on a V100, none for FP32 */
    const gpu_type *v;
    ASSERT_OK(gpu_catalog_find(cat, "v100-16gb", &v, &err));
    gpu_budget bv;
    ASSERT_OK(gpu_budget_init(&bv, v, 1.0, GPU_PREC_FP16, &cal, &err));
    ASSERT(bv.peak_tensor == v->fp16_tensor_tflops * 1e12);
    ASSERT_OK(gpu_budget_init(&bv, v, 1.0, GPU_PREC_TF32, &cal, &err));
    ASSERT(bv.peak_tensor == 0); /* no TF32 before Ampere */
    const gpu_type *mi;
    ASSERT_OK(gpu_catalog_find(cat, "mi300x", &mi, &err));
    ASSERT_EQ_INT(gpu_budget_init(&bv, mi, 1.0, GPU_PREC_FP32, &cal, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "not an NVIDIA CUDA GPU");
    gpu_catalog_free(cat);
}

TEST(kernel_plan_follows_the_graph)
{
    usher_model *m = zoo_model("resnet50");
    ASSERT(m);
    usher_error err;
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = 4;
    ASSERT_OK(usher_model_infer(m, &sp, &err));
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    gpu_fusion none = gpu_fusion_named("none", NULL), ort = gpu_fusion_named("ort", NULL);
    gpu_kplan a, b;
    ASSERT_OK(gpu_kmap_model(m->ir, GPU_PREC_FP32, &none, &a, &err));
    ASSERT_OK(gpu_kmap_model(m->ir, GPU_PREC_FP32, &ort, &b, &err));
    int gemms = 0;
    double work = 0;
    for (uint32_t i = 0; i < a.n; i++)
        if (a.k[i].cls == GPU_K_GEMM) {
            gemms++;
            work += 2.0 * (double)a.k[i].m * (double)a.k[i].n * (double)a.k[i].k * (double)a.k[i].batch;
        }
    ASSERT_EQ_INT(gemms, 54); /* 53 convolutions and the classifier */
    ASSERT_NEAR_PCT(work, 2.0 * (double)s.macs, 1e-9); /* FLOP totals equal the IR's */
    ASSERT(b.n < a.n); /* Conv+Relu and Conv+Add+Relu fused */
    ASSERT_NEAR_PCT(a.weight_bytes, 4.0 * (double)s.n_params, 0.1);
    gpu_kplan h;
    ASSERT_OK(gpu_kmap_model(m->ir, GPU_PREC_FP16, &ort, &h, &err));
    ASSERT_NEAR_PCT(h.weight_bytes, a.weight_bytes / 2, 0.1);
    gpu_kplan_free(&a);
    gpu_kplan_free(&b);
    gpu_kplan_free(&h);
    usher_model_free(m);
}

TEST(properties_over_the_zoo)
{
    const char *models[] = {"resnet50", "mobilenet-v2", "bert-base", "vgg16", "densenet121",
                            "inception-v3", "efficientnet-b0", "vit-b16", "vgg19", "gpt2"};
    const char *gpus[] = {"a100-80gb", "v100-16gb", "t4", "h100-sxm", "a100-80gb:2g.20gb"};
    const int batches[] = {1, 2, 4, 8, 16, 32, 64, 128};
    const double shares[] = {10, 25, 50, 75, 100};
    usher_estimator *e;
    usher_error err;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    int bad = 0, checked = 0;
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        usher_model *m = zoo_model(models[mi]);
        ASSERT(m);
        for (size_t gi = 0; gi < sizeof gpus / sizeof gpus[0]; gi++) {
            double lat[8][5], mreq[8];
            for (int bi = 0; bi < 8; bi++)
                for (int si = 0; si < 5; si++) {
                    usher_estimate_params p = usher_estimate_default_params();
                    p.gpu = gpus[gi];
                    p.batch = batches[bi];
                    p.share_pct = shares[si];
                    usher_profile pr;
                    if (usher_estimate(e, m, &p, &pr, &err) < 0) {
                        usher_model_free(m);
                        usher_estimator_free(e);
                        FAIL_("%s on %s: %s", models[mi], gpus[gi], err.msg);
                    }
                    checked++;
                    lat[bi][si] = pr.latency_ms;
                    mreq[bi] = pr.mreq_mb;
                    if (!(pr.creq_pct > 0 && pr.creq_pct <= 100) || !(pr.latency_ms > 0) ||
                        !(pr.energy_j > 0) || !(pr.bandwidth_gbs > 0)) {
                        if (bad++ < 5)
                            fprintf(stderr, "  %s %s b%d s%g: creq %g latency %g energy %g\n",
                                    models[mi], gpus[gi], batches[bi], shares[si], pr.creq_pct,
                                    pr.latency_ms, pr.energy_j);
                    }
                }
            for (int bi = 0; bi < 8; bi++)
                for (int si = 0; si < 5; si++) {
                    bool b_ok = bi == 0 || lat[bi][si] >= lat[bi - 1][si] * (1 - 1e-9);
                    bool s_ok = si == 0 || lat[bi][si] <= lat[bi][si - 1] * (1 + 1e-9);
                    bool m_ok = bi == 0 || mreq[bi] > mreq[bi - 1];
                    if ((!b_ok || !s_ok || !m_ok) && bad++ < 5)
                        fprintf(stderr, "  %s %s batch %d share %g: latency %g (batch before %g, "
                                        "share before %g), mreq %g\n",
                                models[mi], gpus[gi], batches[bi], shares[si], lat[bi][si],
                                bi ? lat[bi - 1][si] : 0, si ? lat[bi][si - 1] : 0, mreq[bi]);
                }
        }
        usher_model_free(m);
    }
    usher_estimator_free(e);
    printf("  %d configurations checked\n", checked);
    ASSERT_EQ_INT(bad, 0);
}

TEST(bad_input_is_named_not_crashed)
{
    usher_estimator *e;
    usher_error err;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    usher_model *m = zoo_model("resnet18");
    ASSERT(m);
    usher_estimate_params p = usher_estimate_default_params();
    usher_profile pr;
    p.gpu = "a100-90gb";
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "a100-80gb"); /* the alternatives are listed */
    p.gpu = "a100-80gb";
    p.share_pct = 0;
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_INVALID);
    p.share_pct = 100.5;
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_INVALID);
    p.share_pct = 50;
    p.batch = 0;
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_INVALID);
    p.batch = 1;
    p.precision = (usher_precision)9;
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_INVALID);
    p.precision = USHER_PRECISION_FP32;
    p.gpu = "mi300x";
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_UNSUPPORTED);
    p.gpu = "v100-sxm3-32gb"; /* the catalog lacks its bandwidth */
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "bandwidth");
    usher_model_free(m);

    /* an operator usher cannot map: a flagged, conservative profile */
    usher_load_params lp = usher_load_default_params();
    ASSERT_OK(usher_model_load(test_path(test_source_dir(), "fuzz/corpus/custom_op.onnx"), &lp, &m,
                               &err));
    p = usher_estimate_default_params();
    p.gpu = "t4";
    ASSERT_OK(usher_estimate(e, m, &p, &pr, &err));
    ASSERT(!pr.exact);
    ASSERT_CONTAINS(pr.warning, "com.example.FusedThing");
    usher_model_free(m);

    /* a dynamic dim without a binding: named */
    ASSERT_OK(usher_model_load(
        test_path(test_deps_dir(), "ricky0123-vad-web/package/dist/silero_vad_v5.onnx"), &lp, &m,
        &err));
    p.batch = 1;
    ASSERT_EQ_INT(usher_estimate(e, m, &p, &pr, &err), USHER_ERR_SHAPE);
    ASSERT_CONTAINS(err.msg, "input:1");
    usher_dim_binding dims[2] = {{"input:1", 512}, {"state:1", 1}};
    p.dims = dims;
    p.n_dims = 2;
    ASSERT_OK(usher_estimate(e, m, &p, &pr, &err)); /* LSTMs inside If branches */
    ASSERT(pr.latency_ms > 0 && pr.n_kernels > 0);
    usher_model_free(m);

    /* zero-size tensors: nothing to launch for them, still a profile */
    ASSERT_OK(usher_model_load(test_path(test_source_dir(), "fuzz/corpus/zero_size.onnx"), &lp, &m,
                               &err));
    p = usher_estimate_default_params();
    p.gpu = "a100-80gb";
    p.batch = 3;
    ASSERT_OK(usher_estimate(e, m, &p, &pr, &err));
    ASSERT(pr.latency_ms > 0);
    usher_model_free(m);
    usher_estimator_free(e);
}

TEST(cache_streams_and_calibration_rows)
{
    usher_estimator *e, *dag;
    usher_error err;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    usher_estimator_params ep = usher_estimator_default_params();
    ep.streams = 0;
    ep.framework = "pytorch-eager";
    ASSERT_OK(usher_estimator_new(&ep, &dag, &err));
    usher_model *m = zoo_model("inception-v3");
    ASSERT(m);
    usher_estimate_params p = usher_estimate_default_params();
    p.gpu = "a100-80gb:3g.40gb";
    p.batch = 8;
    usher_profile a, b, c;
    ASSERT_OK(usher_estimate(e, m, &p, &a, &err));
    ASSERT_OK(usher_estimate(e, m, &p, &b, &err)); /* from the cache: identical */
    ASSERT(memcmp(&a, &b, sizeof a) == 0);
    ASSERT(!a.calibrated); /* no onnxruntime-cuda row: the defaults (docs/calibration.md) */
    ASSERT_CONTAINS(a.warning, "uncalibrated");
    ASSERT_OK(usher_estimate(dag, m, &p, &c, &err));
    ASSERT(c.calibrated); /* the pytorch-eager row of the A100, for its MIG instance */
    ASSERT(c.creq_pct >= 0 && c.creq_pct <= 100);
    ep.streams = 2;
    usher_estimator *x = NULL;
    ASSERT_EQ_INT(usher_estimator_new(&ep, &x, &err), USHER_ERR_INVALID);
    ASSERT(x == NULL);
    ep.streams = 1;
    ep.calibration = "/nonexistent/calibration.txt";
    ASSERT_EQ_INT(usher_estimator_new(&ep, &x, &err), USHER_ERR_NOT_FOUND);
    usher_model_free(m);
    usher_estimator_free(e);
    usher_estimator_free(dag);
}

TEST(calibrate_without_a_gpu_says_so)
{
    usher_error err;
    char report[256], row[256];
    int rc = usher_calibrate_device(NULL, 0, NULL, report, sizeof report, row, sizeof row, &err);
    if (rc == USHER_OK)
        return; /* a machine with a GPU: nothing to check here */
    ASSERT_EQ_INT(rc, USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "no GPU");
}

TEST_MAIN(TEST_ENTRY(calibration_table_parses_and_falls_back),
          TEST_ENTRY(calibration_table_errors_name_the_line),
          TEST_ENTRY(timing_matches_hand_rooflines), TEST_ENTRY(kernel_plan_follows_the_graph),
          TEST_ENTRY(properties_over_the_zoo), TEST_ENTRY(bad_input_is_named_not_crashed),
          TEST_ENTRY(cache_streams_and_calibration_rows), TEST_ENTRY(calibrate_without_a_gpu_says_so))
