/*
 * test_calib.c - physical calibration (issue 16 parts 2-3): the bounded fit
 * stops at an efficiency of 1 and reports the residual; a GPU or engine with
 * no row borrows its family's (or a related engine's) row and says so; the
 * accuracy report's folds never put a held-out source, architecture or model
 * family in training.
 */
#include <math.h>
#include <string.h>

#include "../tools/accuracy/split.h"
#include "core/alloc.h"
#include "core/file.h"
#include "estimate/est.h"
#include "estimate/kernels.h"
#include "gpu/csv.h"
#include "test.h"
#include "usher/estimate.h"

/* ---- the bounded fit -------------------------------------------------------------- */

/* a synthetic data set: large SGEMMs timed by the real kernel timing model */
typedef struct gemm_set {
    const gpu_type *g;
    gpu_kprob prob[4];
} gemm_set;

static double gemm_predict(void *ctx, size_t i, const gpu_calib *c)
{
    gemm_set *s = ctx;
    gpu_budget b;
    if (gpu_budget_init(&b, s->g, 1.0, GPU_PREC_FP32, c, NULL) < 0)
        return NAN;
    gpu_ktime t;
    gpu_ktime_eval(&b, &s->prob[i], &t);
    return (t.seconds + c->launch_us * 1e-6 + c->fixed_us * 1e-6) * 1e3;
}

static void gemm_problem(gpu_kprob *p, int64_t n)
{
    memset(p, 0, sizeof *p);
    p->cls = GPU_K_GEMM;
    p->repeat = 1;
    p->m = p->n = p->k = n;
    p->batch = 1;
    p->parallel = n * n;
    p->flops = 2.0 * (double)n * (double)n * (double)n;
    p->bytes = 3.0 * (double)n * (double)n * 4;
    p->weight_bytes = (double)n * (double)n * 4;
    p->elem_bytes = 4;
    for (int k = 0; k < 4; k++)
        p->dag_preds[k] = UINT32_MAX;
}

TEST(fit_that_would_need_eff_over_1_stops_at_1_with_a_residual)
{
    usher_error err;
    gpu_catalog *cat;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    gemm_set s;
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb", &s.g, &err));
    const int64_t sizes[4] = {4096, 6144, 8192, 12288};
    for (int i = 0; i < 4; i++)
        gemm_problem(&s.prob[i], sizes[i]);
    /* "measured": what the model says at eff_gemm = 1 with no fixed costs, 25% faster -
     * more than the GPU's FP32 peak allows */
    gpu_calib ideal = gpu_calib_default();
    ideal.eff_gemm = 1.0;
    ideal.kernel_us = ideal.launch_us = ideal.fixed_us = 0;
    double meas[4];
    for (int i = 0; i < 4; i++) {
        meas[i] = gemm_predict(&s, (size_t)i, &ideal) / 1.25;
        ASSERT(meas[i] > 0);
    }
    gpu_calib c = gpu_calib_default();
    double resid[4];
    gpu_calib_fit_stats st;
    ASSERT_OK(gpu_calib_fit(&c, 0, 4, meas, gemm_predict, &s, resid, &st, &err));
    ASSERT(c.eff_gemm == 1.0); /* the bound holds */
    ASSERT_CONTAINS(st.at_bound, "eff_gemm=1");
    /* what the bound cut is left as a residual: predicted ~25% slower than measured */
    for (int i = 0; i < 4; i++)
        ASSERT(resid[i] > 0.2 && resid[i] < 0.35);
    ASSERT(st.n == 4 && st.bias > 0.2 && st.mape > 0.2 && st.p90_ape >= st.median_ape);
    ASSERT(st.log_err_after <= st.log_err_before);
    /* every fitted coefficient inside its physical range */
    size_t nb;
    const gpu_calib_bound *b = gpu_calib_bounds(&nb);
    ASSERT(nb >= 9);
    for (size_t i = 0; i < nb; i++) {
        double v = *(const double *)(const void *)((const char *)&c + b[i].off);
        if (v < b[i].lo || v > b[i].hi)
            FAIL_("%s = %g outside [%g, %g]", b[i].name, v, b[i].lo, b[i].hi);
    }
    /* a reachable data set is fitted inside the bounds, with small residuals */
    ideal.eff_gemm = 0.6;
    for (int i = 0; i < 4; i++)
        meas[i] = gemm_predict(&s, (size_t)i, &ideal);
    c = gpu_calib_default();
    ASSERT_OK(gpu_calib_fit(&c, 0, 4, meas, gemm_predict, &s, resid, &st, &err));
    ASSERT(c.eff_gemm < 1.0 && st.mape < 0.05);
    /* bad input */
    meas[2] = 0;
    ASSERT_EQ_INT(gpu_calib_fit(&c, 0, 4, meas, gemm_predict, &s, NULL, NULL, &err),
                  USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "measured latency 2");
    ASSERT_EQ_INT(gpu_calib_fit(&c, 0, 0, meas, gemm_predict, &s, NULL, NULL, &err),
                  USHER_ERR_INVALID);
    gpu_catalog_free(cat);
}

TEST(clamp_and_file_bounds)
{
    gpu_calib c = gpu_calib_default();
    c.eff_gemm = 1.095; /* the old [v100-16gb pytorch] row */
    c.eff_mem = 1.2;
    c.kernel_us = 39.8;
    c.launch_us = 0.5;
    ASSERT_EQ_INT(gpu_calib_clamp(&c), 4);
    ASSERT(c.eff_gemm == 1.0 && c.eff_mem == 1.0 && c.kernel_us == 20.0 && c.launch_us == 2.0);
    ASSERT_EQ_INT(gpu_calib_clamp(&c), 0);
    const char *bad = "[v100-16gb pytorch]\neff_gemm = 1.095\n";
    gpu_calib_table t;
    usher_error err;
    ASSERT_EQ_INT(gpu_calib_parse(bad, strlen(bad), "c.txt", &t, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.txt:2: eff_gemm = '1.095' is not a number in [0.001, 1]");
    const char *arch = "[t4 x]\narch = kepler\n";
    ASSERT_EQ_INT(gpu_calib_parse(arch, strlen(arch), "c.txt", &t, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "arch 'kepler'");
    /* the embedded table parses: every row inside the bounds */
    usher_estimator *e;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    const gpu_calib_table *et = est_calibration(e);
    ASSERT(et->n > 0);
    for (uint32_t i = 0; i < et->n; i++) {
        gpu_calib x = et->rows[i];
        if (gpu_calib_clamp(&x))
            FAIL_("[%s %s] outside the physical bounds", et->rows[i].gpu,
                  et->rows[i].framework);
        ASSERT(et->rows[i].arch[0]); /* fitted rows say which family they can lend to */
    }
    usher_estimator_free(e);
}

/* ---- borrowing ------------------------------------------------------------------------ */

TEST(borrow_path_picks_the_family_row_and_says_so)
{
    const char *text = "[a100-40gb tensorflow]\n"
                       "eff_gemm = 0.7\nkernel_us = 5\nlaunch_us = 12\nfusion = ort\n"
                       "arch = ampere\nsms = 108\nclock_mhz = 1410\n"
                       "[t4 tensorflow]\n"
                       "eff_gemm = 0.4\nkernel_us = 9\nfusion = ort\n"
                       "arch = turing\nsms = 40\nclock_mhz = 1590\n"
                       "[v100-16gb pytorch]\n"
                       "eff_gemm = 0.9\nkernel_us = 4\nfusion = none\n"
                       "arch = volta\nsms = 80\nclock_mhz = 1530\n"
                       "[a30 tensorrt]\n" /* no arch: not lent */
                       "eff_gemm = 0.3\nfusion = full\n";
    gpu_calib_table t;
    usher_error err;
    ASSERT_OK(gpu_calib_parse(text, strlen(text), "t.txt", &t, &err));
    gpu_catalog *cat;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    const gpu_type *a100, *a40, *mig, *h100, *rtx, *a10;
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb", &a100, &err));
    ASSERT_OK(gpu_catalog_find(cat, "a40", &a40, &err));
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb:2g.20gb", &mig, &err));
    ASSERT_OK(gpu_catalog_find(cat, "h100-sxm", &h100, &err));
    ASSERT_OK(gpu_catalog_find(cat, "rtx2080ti", &rtx, &err));
    ASSERT_OK(gpu_catalog_find(cat, "a10", &a10, &err));
    ASSERT_STR_EQ(gpu_arch_family(a100), "ampere");
    ASSERT_STR_EQ(gpu_arch_family(h100), "hopper");
    ASSERT_STR_EQ(gpu_arch_family(rtx), "turing");
    bool found;
    /* its own row: not borrowed */
    const gpu_type *t4;
    ASSERT_OK(gpu_catalog_find(cat, "t4", &t4, &err));
    gpu_calib c = gpu_calib_lookup(&t, t4, "tensorflow", &found);
    ASSERT(found && !c.borrowed && c.eff_gemm == 0.4 && c.kernel_us == 9);
    ASSERT_STR_EQ(c.used, "[t4 tensorflow]");
    c = gpu_calib_lookup(&t, rtx, "tensorflow", &found); /* Turing: the T4's */
    ASSERT(found && c.borrowed && c.eff_gemm == 0.4);
    ASSERT_STR_EQ(c.used, "borrowed from [t4 tensorflow], Turing family");
    /* the same engine in the family, kernel_us scaled by the clocks */
    c = gpu_calib_lookup(&t, a40, "tensorflow", &found);
    ASSERT(found && c.borrowed && c.eff_gemm == 0.7);
    ASSERT_STR_EQ(c.used, "borrowed from [a100-40gb tensorflow], Ampere family");
    ASSERT_NEAR_PCT(c.kernel_us, 5.0 * 1410 / a40->boost_clock_mhz, 0.01);
    ASSERT(c.launch_us == 12); /* host costs are the engine's: kept */
    /* a MIG instance of a GPU with no row: the family row of its parent's family */
    c = gpu_calib_lookup(&t, mig, "tensorflow", &found);
    ASSERT(found && c.borrowed);
    ASSERT_CONTAINS(c.used, "[a100-40gb tensorflow], Ampere family");
    /* an engine with no row anywhere: a related engine of the family, its own fusion */
    c = gpu_calib_lookup(&t, a100, "tensorflow-xla", &found);
    ASSERT(found && c.borrowed && c.eff_gemm == 0.7);
    ASSERT_STR_EQ(c.used, "borrowed from [a100-40gb tensorflow], Ampere family, engine "
                          "tensorflow standing in for tensorflow-xla (host costs: the engine's "
                          "defaults)");
    ASSERT_STR_EQ(c.framework, "tensorflow-xla");
    ASSERT_STR_EQ(c.fusion, "full");
    /* GPU-side coefficients carry over; host costs are another engine's: defaults */
    ASSERT(c.launch_us == gpu_calib_default().launch_us && c.kernel_us == 5);
    /* the default engine borrows only its own engine's rows: none here, the defaults */
    c = gpu_calib_lookup(&t, a100, "onnxruntime-cuda", &found);
    ASSERT(!found && !c.calibrated && !c.borrowed);
    ASSERT_CONTAINS(c.used, "built-in defaults");
    const char *ort = "[a100-40gb onnxruntime-cuda]\neff_gemm = 0.65\narch = ampere\n"
                      "sms = 108\nclock_mhz = 1410\n";
    gpu_calib_table to;
    ASSERT_OK(gpu_calib_parse(ort, strlen(ort), "ort.txt", &to, &err));
    c = gpu_calib_lookup(&to, h100, "onnxruntime-cuda", &found); /* a measured ORT row: lent */
    ASSERT(found && c.borrowed && c.eff_gemm == 0.65);
    ASSERT_STR_EQ(c.used, "borrowed from [a100-40gb onnxruntime-cuda], Ampere family (no "
                          "Hopper row)");
    gpu_calib_table_free(&to);
    /* the engine's twin (PyTorch eager under its other name) of another family before
     * another engine of the family: an engine's kernels are not the GPU's */
    c = gpu_calib_lookup(&t, a10, "pytorch-eager", &found); /* pytorch only on Volta */
    ASSERT(found && c.borrowed && c.eff_gemm == 0.9);
    ASSERT_STR_EQ(c.used, "borrowed from [v100-16gb pytorch], Volta family (no Ampere row), "
                          "engine pytorch standing in for pytorch-eager (host costs: the "
                          "engine's defaults)");
    ASSERT_STR_EQ(c.fusion, "none");
    /* host costs: PyTorch eager's prior, not the lender's nor the ORT-like default */
    ASSERT(c.launch_us == gpu_calib_engine_default("pytorch-eager").launch_us);
    ASSERT(c.launch_us > gpu_calib_default().launch_us);
    /* another engine of the family when the engine has no row anywhere */
    c = gpu_calib_lookup(&t, a10, "tensorflow-xla", &found);
    ASSERT(found && c.borrowed && c.eff_gemm == 0.7);
    ASSERT_STR_EQ(c.used, "borrowed from [a100-40gb tensorflow], Ampere family, engine "
                          "tensorflow standing in for tensorflow-xla (host costs: the engine's "
                          "defaults)");
    ASSERT_STR_EQ(c.fusion, "full"); /* XLA fuses, whatever TF does */
    const gpu_type *v100;
    ASSERT_OK(gpu_catalog_find(cat, "v100-32gb", &v100, &err));
    c = gpu_calib_lookup(&t, v100, "pytorch-eager", &found);
    ASSERT(found && c.borrowed && c.eff_gemm == 0.9);
    ASSERT_STR_EQ(c.used, "borrowed from [v100-16gb pytorch], Volta family, engine pytorch "
                          "standing in for pytorch-eager (host costs: the engine's defaults)");

    /* a family with no row: the nearest family, flagged */
    c = gpu_calib_lookup(&t, h100, "tensorflow", &found);
    ASSERT(found && c.borrowed);
    ASSERT_CONTAINS(c.used, "[a100-40gb tensorflow], Ampere family (no Hopper row)");
    /* a row that does not say its GPU's family is never lent; an unknown engine borrows
     * only its own rows */
    c = gpu_calib_lookup(&t, a40, "tensorrt", &found);
    ASSERT(found && strstr(c.used, "a30") == NULL);
    c = gpu_calib_lookup(&t, a40, "my-engine", &found);
    ASSERT(!found && !c.calibrated && !c.borrowed);
    ASSERT_CONTAINS(c.used, "built-in defaults");
    gpu_calib_table_free(&t);
    gpu_catalog_free(cat);
    /* the estimator says which row it used */
    usher_estimator *e;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    char row[320];
    bool borrowed = false;
    ASSERT_OK(usher_estimator_calibration_row(e, "a100-80gb", NULL, row, sizeof row, &borrowed,
                                              &err));
    ASSERT(borrowed); /* no onnxruntime-cuda row is measured: the defaults, flagged */
    ASSERT_CONTAINS(row, "built-in defaults");
    ASSERT_OK(usher_estimator_calibration_row(e, "a30", "tensorrt", row, sizeof row, &borrowed,
                                              &err));
    ASSERT(borrowed);
    ASSERT_CONTAINS(row, "borrowed from [");
    ASSERT_CONTAINS(row, "tensorrt], Ampere family");
    ASSERT_OK(usher_estimator_calibration_row(e, "a100-80gb:3g.40gb", "pytorch-eager", row,
                                              sizeof row, &borrowed, &err));
    ASSERT(!borrowed);
    /* (followed by the coefficients its rows left to the defaults, if any) */
    ASSERT(strncmp(row, "[a100-80gb pytorch-eager], the MIG instance's parent GPU",
                   strlen("[a100-80gb pytorch-eager], the MIG instance's parent GPU")) == 0);
    ASSERT_EQ_INT(usher_estimator_calibration_row(e, "nope", NULL, row, sizeof row, NULL, &err),
                  USHER_ERR_NOT_FOUND);
    usher_estimator_free(e);
}

/* ---- the accuracy report's folds ------------------------------------------------------- */

TEST(report_folds_never_share_a_group_between_train_and_test)
{
    /* the real measurement rows: source, GPU family, model */
    usher_error err;
    us_mapped mm;
    ASSERT_OK(us_file_map(test_path(test_source_dir(), "data/measurements.csv"), 16u << 20, &mm,
                          &err));
    gpu_catalog *cat;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    gpu_csv r;
    ASSERT_OK(gpu_csv_init(&r, (const char *)mm.data, mm.len, "m.csv", 8192, 32, &err));
    ASSERT_EQ_INT(gpu_csv_next(&r, &err), 1); /* header: source,gpu,model,... */
    ASSERT_STR_EQ(gpu_csv_field(&r, 0), "source");
    ASSERT_STR_EQ(gpu_csv_field(&r, 2), "model");
    size_t n = 0, cap = 4096;
    acc_item *it = us_calloc(cap, sizeof *it);
    char (*strs)[3][64] = us_calloc(cap, sizeof *strs);
    ASSERT(it && strs);
    while (gpu_csv_next(&r, &err) == 1 && n < cap) {
        const char *gname = gpu_csv_field(&r, 1);
        const char *arch = "unknown";
        for (size_t i = 0; i < gpu_catalog_count(cat); i++)
            if (strcmp(gpu_catalog_at(cat, i)->name, gname) == 0)
                arch = gpu_arch_family(gpu_catalog_at(cat, i));
        snprintf(strs[n][0], 64, "%s", gpu_csv_field(&r, 0));
        snprintf(strs[n][1], 64, "%s", arch);
        snprintf(strs[n][2], 64, "%s", gpu_csv_field(&r, 2));
        it[n].source = strs[n][0];
        it[n].arch = strs[n][1];
        it[n].model = strs[n][2];
        n++;
    }
    gpu_csv_free(&r);
    us_file_unmap(&mm);
    ASSERT(n > 2000);
    char fam[64];
    acc_model_family("resnet50", fam, sizeof fam);
    ASSERT_STR_EQ(fam, "resnet");
    acc_model_family("bert-large", fam, sizeof fam);
    ASSERT_STR_EQ(fam, "bert");
    acc_model_family("efficientnet-b0", fam, sizeof fam);
    ASSERT_STR_EQ(fam, "efficientnet");
    for (int s = 0; s < ACC_SPLIT_COUNT; s++) {
        acc_fold *f;
        int nf = acc_make_folds((acc_split)s, it, n, &f);
        ASSERT(nf >= 1);
        if (s == ACC_SPLIT_SOURCE)
            ASSERT(nf >= 3); /* nvidia-dle, nvidia-dle-triton, parvagpu-a100-mig, ... */
        size_t *tested = us_calloc(n, sizeof *tested);
        ASSERT(tested);
        for (int k = 0; k < nf; k++) {
            char why[256];
            if (!acc_fold_check((acc_split)s, it, n, &f[k], why, sizeof why))
                FAIL_("%s fold %s: %s", acc_split_name((acc_split)s), f[k].key, why);
            ASSERT(f[k].n_test > 0);
            for (size_t i = 0; i < n; i++)
                tested[i] += f[k].test[i];
            if (s != ACC_SPLIT_SOURCE)
                continue;
            /* independently of split.c: no source both trained on and tested */
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; f[k].test[i] && j < n; j++)
                    if (f[k].train[j] && strcmp(it[i].source, it[j].source) == 0)
                        FAIL_("source %s in train and test of fold %s", it[i].source, f[k].key);
        }
        for (size_t i = 0; i < n; i++)
            ASSERT(tested[i] == 1); /* every row held out exactly once */
        /* the check can fail: put one held-out row's source back into training */
        if (s == ACC_SPLIT_SOURCE) {
            size_t ti = 0, tj = 0;
            while (!f[0].test[ti])
                ti++;
            for (tj = 0; tj < n; tj++)
                if (tj != ti && strcmp(it[tj].source, it[ti].source) == 0)
                    break;
            ASSERT(tj < n);
            f[0].train[tj] = true;
            char why[256];
            ASSERT(!acc_fold_check((acc_split)s, it, n, &f[0], why, sizeof why));
            ASSERT_CONTAINS(why, it[ti].source);
        }
        us_free(tested);
        acc_folds_free(f, nf);
    }
    us_free(it);
    us_free(strs);
    gpu_catalog_free(cat);
}

/* ---- coefficients a row's measurements did not determine ------------------------------ */

TEST(undetermined_coefficients_are_found_by_the_fit_and_never_lent)
{
    usher_error err;
    gpu_catalog *cat;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    gemm_set s;
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb", &s.g, &err));
    const int64_t sizes[4] = {4096, 6144, 8192, 12288};
    for (int i = 0; i < 4; i++)
        gemm_problem(&s.prob[i], sizes[i]);
    /* FP32 SGEMMs only: eff_gemm is measured; eff_tensor, eff_depthwise, eff_conv are not
     * (no tensor-core, depthwise or convolution kernel in the data) */
    gpu_calib truth = gpu_calib_default();
    truth.eff_gemm = 0.5;
    double meas[4];
    for (int i = 0; i < 4; i++)
        meas[i] = gemm_predict(&s, (size_t)i, &truth);
    gpu_calib c = gpu_calib_default();
    gpu_calib_fit_stats st;
    ASSERT_OK(gpu_calib_fit(&c, 0, 4, meas, gemm_predict, &s, NULL, &st, &err));
    size_t nb;
    const gpu_calib_bound *b = gpu_calib_bounds(&nb);
    uint32_t bit_gemm = 0, bit_tensor = 0, bit_depthwise = 0, bit_launch = 0;
    for (size_t i = 0; i < nb; i++) {
        if (strcmp(b[i].name, "eff_gemm") == 0)
            bit_gemm = 1u << i;
        if (strcmp(b[i].name, "eff_tensor") == 0)
            bit_tensor = 1u << i;
        if (strcmp(b[i].name, "eff_depthwise") == 0)
            bit_depthwise = 1u << i;
        if (strcmp(b[i].name, "launch_us") == 0)
            bit_launch = 1u << i;
    }
    ASSERT(!(c.undetermined & bit_gemm));
    ASSERT(c.undetermined & bit_tensor);
    ASSERT(c.undetermined & bit_depthwise);
    ASSERT(st.undetermined == c.undetermined);
    ASSERT_CONTAINS(st.undetermined_names, "eff_tensor");
    ASSERT(strstr(st.undetermined_names, "eff_gemm") == NULL);
    /* the file keeps it: format, parse, same mask */
    snprintf(c.gpu, sizeof c.gpu, "a100-80gb");
    snprintf(c.framework, sizeof c.framework, "tensorflow");
    snprintf(c.arch, sizeof c.arch, "ampere");
    c.sms = 108;
    c.clock_mhz = 1410;
    c.eff_tensor = 0.05; /* whatever the fit left: must never be lent */
    char text[4096];
    ASSERT(gpu_calib_format(&c, text, sizeof text) > 0);
    ASSERT_CONTAINS(text, "undetermined = ");
    const char *other = "[t4 tensorflow]\neff_gemm = 0.4\neff_tensor = 0.45\nlaunch_us = 40\n"
                        "fusion = ort\narch = turing\nsms = 40\nclock_mhz = 1590\n"
                        "[v100-16gb pytorch]\neff_tensor = 0.7\nlaunch_us = 70\n"
                        "arch = volta\nsms = 80\nclock_mhz = 1530\n";
    char all[8192];
    snprintf(all, sizeof all, "%s%s", text, other);
    gpu_calib_table t;
    ASSERT_OK(gpu_calib_parse(all, strlen(all), "u.txt", &t, &err));
    ASSERT(t.n == 3 && t.rows[0].undetermined == c.undetermined);
    const char *bad = "[t4 x]\nundetermined = eff_gemm eff_speed\n";
    gpu_calib_table tb;
    ASSERT_EQ_INT(gpu_calib_parse(bad, strlen(bad), "b.txt", &tb, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "b.txt:2: undetermined");
    /* its own row: eff_gemm as fitted; eff_tensor, which its rows did not measure, the
     * default - not what the fit left, nor another row's (the T4's 0.45 here) */
    const gpu_type *a100, *a40;
    ASSERT_OK(gpu_catalog_find(cat, "a100-80gb", &a100, &err));
    ASSERT_OK(gpu_catalog_find(cat, "a40", &a40, &err));
    bool found;
    gpu_calib l = gpu_calib_lookup(&t, a100, "tensorflow", &found);
    ASSERT(found && !l.borrowed);
    ASSERT_NEAR_PCT(l.eff_gemm, c.eff_gemm, 0.01);
    ASSERT(l.eff_tensor == gpu_calib_default().eff_tensor);
    ASSERT_CONTAINS(l.used, "[a100-80gb tensorflow]; defaults for what its rows did not "
                            "determine: ");
    ASSERT_CONTAINS(l.used, " eff_tensor");
    ASSERT(strstr(l.used, "eff_gemm") == NULL);
    ASSERT(l.undetermined == 0);
    /* lent to another GPU of the family: the same fill */
    l = gpu_calib_lookup(&t, a40, "tensorflow", &found);
    ASSERT(found && l.borrowed && l.eff_tensor == gpu_calib_default().eff_tensor);
    ASSERT_NEAR_PCT(l.eff_gemm, c.eff_gemm, 0.01);
    ASSERT_CONTAINS(l.used, "borrowed from [a100-80gb tensorflow], Ampere family; defaults");
    if (c.undetermined & bit_launch)
        ASSERT(l.launch_us == gpu_calib_default().launch_us);
    /* host costs of another engine's row are the defaults, even PyTorch eager's own
     * under another name (its launch_us depends on the host and harness) */
    const gpu_type *v100;
    ASSERT_OK(gpu_catalog_find(cat, "v100-32gb", &v100, &err));
    l = gpu_calib_lookup(&t, v100, "pytorch-eager", &found);
    ASSERT(found && l.borrowed &&
           l.launch_us == gpu_calib_engine_default("pytorch-eager").launch_us);
    ASSERT_CONTAINS(l.used, "(host costs: the engine's defaults)");
    gpu_calib_table_free(&t);
    gpu_catalog_free(cat);
}

TEST_MAIN(TEST_ENTRY(fit_that_would_need_eff_over_1_stops_at_1_with_a_residual),
          TEST_ENTRY(undetermined_coefficients_are_found_by_the_fit_and_never_lent),
          TEST_ENTRY(clamp_and_file_bounds),
          TEST_ENTRY(borrow_path_picks_the_family_row_and_says_so),
          TEST_ENTRY(report_folds_never_share_a_group_between_train_and_test))
