/*
 * test_merge.c - the merger's parts (issue 15): the Hungarian algorithm
 * against brute force, DBSCAN clusters of generated models, common weights
 * within the tolerance, and verification: a merge whose outputs disagree is
 * refused and leaves no file. The models come from tests/make_merge_models.py
 * (run once here with /usr/bin/python3). tests/test_merge.sh runs `usher
 * merge` end to end.
 */
#include <dirent.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "merge/merge_impl.h"
#include "test.h"
#include "usher/merge.h"

static const char *models(void)
{
    static char dir[512];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/models", test_tmpdir());
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/make_merge_models.py %s",
                 test_source_dir(), dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "make_merge_models.py failed\n");
            exit(1);
        }
    }
    return dir;
}

static const char *model(const char *name)
{
    static char slots[8][600];
    static int i;
    char *p = slots[i++ % 8];
    snprintf(p, 600, "%s/%s", models(), name);
    return p;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int n_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

TEST(hungarian_matches_brute_force)
{
    uint64_t s = 42;
    for (int trial = 0; trial < 50; trial++) {
        enum { N = 6 };
        double c[N * N];
        for (int i = 0; i < N * N; i++)
            c[i] = (double)(test_splitmix(&s) % 1000) / 10.0;
        uint32_t a[N];
        ASSERT_EQ_INT(merge_hungarian(c, N, a), USHER_OK);
        double got = 0;
        bool used[N] = {false};
        for (int i = 0; i < N; i++) {
            ASSERT(a[i] < N && !used[a[i]]);
            used[a[i]] = true;
            got += c[i * N + a[i]];
        }
        /* every permutation (Heap's algorithm) */
        int p[N], cnt[N] = {0};
        for (int i = 0; i < N; i++)
            p[i] = i;
        double best = DBL_MAX;
        for (int i = 0;;) {
            double v = 0;
            for (int r = 0; r < N; r++)
                v += c[r * N + p[r]];
            if (v < best)
                best = v;
            while (i < N && cnt[i] >= i)
                cnt[i++] = 0;
            if (i >= N)
                break;
            int j = i % 2 ? cnt[i] : 0, t = p[j];
            p[j] = p[i];
            p[i] = t;
            cnt[i]++;
            i = 0;
        }
        ASSERT(got <= best + 1e-9);
    }
}

TEST(dbscan_groups_architectures)
{
    const char *paths[5] = {model("mlp_a.onnx"), model("conv_a.onnx"), model("mlp_b.onnx"),
                            model("conv_b.onnx"), model("mlp_c.onnx")};
    double d[25];
    int label[5];
    usher_error err;
    usher_merge_params p = usher_merge_default_params();
    ASSERT_OK(usher_merge_cluster(paths, 5, &p, d, label, &err));
    ASSERT(d[0 * 5 + 2] == 0 && d[0 * 5 + 4] == 0); /* one architecture: distance 0 */
    ASSERT(d[0 * 5 + 1] > 0.5);
    ASSERT(label[0] >= 0 && label[0] == label[2] && label[0] == label[4]);
    ASSERT(label[1] >= 0 && label[1] == label[3] && label[1] != label[0]);
    /* eps 0 with minPts 2 still joins identical signatures; a lone model is noise */
    const char *three[3] = {model("mlp_a.onnx"), model("mlp_c.onnx"), model("conv_a.onnx")};
    ASSERT_OK(usher_merge_cluster(three, 3, &p, d, label, &err));
    ASSERT(label[0] == label[1] && label[0] >= 0 && label[2] == -1);
}

TEST(common_weights_within_tolerance)
{
    const char *paths[2] = {model("mlp_a.onnx"), model("mlp_b.onnx")};
    usher_merge *m;
    usher_error err;
    usher_merge_params p = usher_merge_default_params();
    ASSERT_OK(usher_merge_models(paths, 2, &p, &m, &err));
    const usher_merge_report *r = usher_merge_get_report(m);
    ASSERT_EQ_INT(r->n_weights_close, 3);
    ASSERT_EQ_INT(r->n_weights_identical, 0);
    ASSERT_EQ_INT(r->kind, USHER_MERGE_SHARED);
    ASSERT_EQ_INT(r->n_nodes_shared, 4);
    ASSERT_EQ_INT(r->n_nodes_matched, 4);
    usher_merge_free(m);
    p.weight_rtol = 5e-8; /* below some of the one-ulp differences */
    ASSERT_OK(usher_merge_models(paths, 2, &p, &m, &err));
    ASSERT(usher_merge_get_report(m)->n_weights_close < 3);
    ASSERT(usher_merge_get_report(m)->kind != USHER_MERGE_SHARED ||
           usher_merge_get_report(m)->n_nodes_shared < 4);
    usher_merge_free(m);
}

TEST(verification_failure_writes_nothing)
{
    const char *paths[2] = {model("mlp_a.onnx"), model("mlp_c.onnx")};
    usher_merge *m;
    usher_error err;
    usher_merge_params p = usher_merge_default_params();
    p.verify = true;
    ASSERT_OK(usher_merge_models(paths, 2, &p, &m, &err));
    ASSERT_EQ_INT(usher_merge_get_report(m)->kind, USHER_MERGE_STACKED);
    char dir[600], out[700];
    snprintf(dir, sizeof dir, "%s/verify", test_tmpdir());
    mkdir(dir, 0700);
    snprintf(out, sizeof out, "%s/good.onnx", dir);
    ASSERT_OK(usher_merge_write(m, out, &err));
    ASSERT(exists(out) && usher_merge_get_report(m)->verified);
    ASSERT(usher_merge_get_report(m)->verify_max_rel_err <= 1e-5);
    /* corrupt one stacked weight of the merged graph: verification must catch it */
    ir_graph *g = m->merged->main;
    bool done = false;
    for (uint32_t i = 0; i < g->n_tensors && !done; i++) {
        ir_tensor *t = g->tensors[i];
        if ((t->flags & IR_TF_INITIALIZER) && t->dtype == IR_DT_FLOAT && t->nbytes >= 64) {
            float *copy = ir_model_alloc_blob(m->merged, (size_t)t->nbytes);
            ASSERT(copy);
            memcpy(copy, t->data, (size_t)t->nbytes);
            copy[3] += 0.5f;
            t->data = (const uint8_t *)copy;
            done = true;
        }
    }
    ASSERT(done);
    snprintf(out, sizeof out, "%s/bad.onnx", dir);
    int rc = usher_merge_write(m, out, &err);
    ASSERT_EQ_INT(rc, USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "verification failed");
    ASSERT(!exists(out));
    ASSERT_EQ_INT(n_files(dir), 1); /* good.onnx only: no temporary file left */
    usher_merge_free(m);
}

TEST(tolerance_is_applied)
{
    /* near-equal weights shared: the outputs differ by ~1e-7 of their scale */
    const char *paths[2] = {model("mlp_a.onnx"), model("mlp_b.onnx")};
    usher_merge *m;
    usher_error err;
    usher_merge_params p = usher_merge_default_params();
    p.verify = true;
    p.verify_tol = 1e-12;
    ASSERT_OK(usher_merge_models(paths, 2, &p, &m, &err));
    char out[700];
    snprintf(out, sizeof out, "%s/tight.onnx", test_tmpdir());
    ASSERT_EQ_INT(usher_merge_write(m, out, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "allowed");
    ASSERT(!exists(out));
    usher_merge_free(m);
    p.verify_tol = 1e-5;
    ASSERT_OK(usher_merge_models(paths, 2, &p, &m, &err));
    ASSERT_OK(usher_merge_write(m, out, &err));
    ASSERT(usher_merge_get_report(m)->verify_max_rel_err > 0);
    usher_merge_free(m);
}

TEST(refusals_leave_nothing_allocated)
{
    size_t live = us_alloc_live_bytes();
    usher_error err;
    usher_merge *m = (usher_merge *)1;
    const char *second[] = {"mlp_int.onnx", "cycle.onnx", "custom.onnx", "mlp_op11.onnx",
                            "missing.onnx"};
    const char *want[] = {"different input types", "cycle", "Frobnicate", "mismatched opsets",
                          "missing.onnx"};
    char a[600], b[600];
    snprintf(a, sizeof a, "%s", model("mlp_a.onnx"));
    const char *pair[2] = {a, b};
    for (size_t i = 0; i < sizeof second / sizeof second[0]; i++) {
        snprintf(b, sizeof b, "%s", model(second[i]));
        ASSERT(usher_merge_models(pair, 2, NULL, &m, &err) < 0);
        ASSERT(m == NULL);
        ASSERT_CONTAINS(err.msg, want[i]);
    }
    ASSERT(usher_merge_models(pair, 1, NULL, &m, &err) == USHER_ERR_INVALID);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live);
}


/* every allocation of a merge (load, analysis, each kind's build and case (c); no ORT)
 * failed in turn:
 * the call fails with a message or succeeds, and nothing is left allocated */
TEST(allocation_failures_are_clean)
{
    const char *pairs[4][2] = {{NULL, NULL}, {NULL, NULL}, {NULL, NULL}, {NULL, NULL}};
    char p[8][600];
    const char *names[8] = {"mlp_a.onnx", "mlp_b.onnx", "conv_a.onnx", "conv_b.onnx",
                            "mlp_a.onnx", "mlp_c.onnx", "mlp_p0.onnx", "mlp_p1.onnx"};
    for (int i = 0; i < 8; i++) {
        snprintf(p[i], sizeof p[i], "%s", model(names[i]));
        pairs[i / 2][i % 2] = p[i];
    }
    int kinds[4] = {-1, USHER_MERGE_STACKED, USHER_MERGE_SIDE_BY_SIDE, USHER_MERGE_SHARED};
    for (int c = 0; c < 4; c++) {
        usher_merge_params mp = usher_merge_default_params();
        mp.kind = kinds[c];
        usher_error err;
        usher_merge *m;
        size_t live = us_alloc_live_bytes();
        uint64_t before = us_alloc_count();
        ASSERT_OK(usher_merge_models(pairs[c], 2, &mp, &m, &err));
        char *js = usher_merge_json(m);
        ASSERT(js);
        usher_merge_json_free(js);
        usher_merge_free(m);
        uint64_t n = us_alloc_count() - before;
        ASSERT(n > 10);
        int bad = 0;
        for (uint64_t k = 1; k <= n; k++) {
            memset(&err, 0, sizeof err);
            us_alloc_fail_nth(k);
            int rc = usher_merge_models(pairs[c], 2, &mp, &m, &err);
            us_alloc_fail_nth(0);
            if (rc == USHER_OK)
                usher_merge_free(m);
            if ((rc < 0 && (!err.msg[0] || m != NULL)) || us_alloc_live_bytes() != live) {
                if (bad++ < 3)
                    fprintf(stderr, "  case %d: allocation %llu of %llu: rc %d '%s', %zd bytes left\n",
                            c, (unsigned long long)k, (unsigned long long)n, rc, err.msg,
                            (ssize_t)(us_alloc_live_bytes() - live));
            }
        }
        ASSERT_EQ_INT(bad, 0);
    }
}

TEST_MAIN(TEST_ENTRY(hungarian_matches_brute_force), TEST_ENTRY(dbscan_groups_architectures),
          TEST_ENTRY(common_weights_within_tolerance),
          TEST_ENTRY(verification_failure_writes_nothing), TEST_ENTRY(tolerance_is_applied),
          TEST_ENTRY(refusals_leave_nothing_allocated),
          TEST_ENTRY(allocation_failures_are_clean))
