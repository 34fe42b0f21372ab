/*
 * test_plan_inputs.c - the planner's input readers on untrusted text
 * (src/plan/input.c): fuzz/corpus-plan and deterministic mutants of it
 * through the fuzz body (fuzz/fuzz_plan.c, which checks the contract and
 * aborts on a violation), then the messages of typical mistakes.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "fuzz_plan.h"
#include "plan/plan.h"
#include "test.h"

/* ---- the fuzz body over the seed corpus and its mutants ------------------- */

#define MAX_SEEDS 256
#define SEED_MAX_BYTES 65536

typedef test_blob seed;

/* every file of fuzz/corpus-plan, in name order */
static int load_seeds(seed *out, int max)
{
    return test_load_dir(test_path(test_source_dir(), "fuzz/corpus-plan"), "", out, max);
}

static uint64_t rng_state = 0x91A7C0FFEEULL;
static uint64_t rnd(void) { return test_splitmix(&rng_state); }

/* One mutant of a (and b for splices) into m (capacity cap); returns its length. */
static size_t mutate(const seed *a, const seed *b, uint8_t *m, size_t cap)
{
    /* YAML/JSON structure and number characters, so edits make interesting damage; mode
     * byte: which reader (cluster, workload, running plan) */
    test_mutator mu = {":-[]{},#&*!|>'\"%@`?\n\t ~0123456789.e+", NULL, 0, 3, &rng_state};
    return test_mutate(&mu, a, b, m, cap);
}

TEST(seeds_and_mutants_through_fuzz_body)
{
    seed seeds[MAX_SEEDS];
    int n = load_seeds(seeds, MAX_SEEDS);
    ASSERT(n >= 60);
    int acc[3] = {0}, rej[3] = {0}, good[MAX_SEEDS], n_good = 0;
    for (int i = 0; i < n; i++) {
        if (usher_fuzz_plan_one(seeds[i].p, seeds[i].n)) {
            acc[seeds[i].p[0] % 3]++;
            good[n_good++] = i;
        } else {
            rej[seeds[i].p[0] % 3]++;
        }
    }
    printf("  %d seeds: cluster %d accepted / %d rejected, workload %d / %d, running %d / %d\n", n,
           acc[0], rej[0], acc[1], rej[1], acc[2], rej[2]);
    for (int r = 0; r < 3; r++)
        ASSERT(acc[r] >= 3 && rej[r] >= 5);

    const int rounds = 5000;
    const size_t cap = 2 * SEED_MAX_BYTES;
    uint8_t *m = malloc(cap);
    ASSERT(m);
    int ok = 0, rejected = 0;
    memset(acc, 0, sizeof acc);
    for (int r = 0; r < rounds; r++) {
        /* mostly from accepted seeds: their mutants reach past the first check */
        int ai = rnd() % 3 ? good[rnd() % (uint64_t)n_good] : (int)(rnd() % (uint64_t)n);
        const seed *a = &seeds[ai], *b = &seeds[rnd() % (uint64_t)n];
        size_t len = mutate(a, b, m, cap);
        if (usher_fuzz_plan_one(m, len)) {
            ok++;
            acc[m[0] % 3]++;
        } else {
            rejected++;
        }
    }
    printf("  %d mutants: %d accepted (cluster %d, workload %d, running %d), %d rejected\n", rounds,
           ok, acc[0], acc[1], acc[2], rejected);
    free(m);
    for (int i = 0; i < n; i++)
        free(seeds[i].p);
    usher_fuzz_plan_done();
    ASSERT(ok > 200 && rejected > 1000);
    ASSERT(acc[0] > 0 && acc[1] > 0 && acc[2] > 0);
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

/* ---- messages ---------------------------------------------------------------- */

static int cluster(const char *text, plan_problem *p, usher_error *err)
{
    gpu_catalog *cat = NULL;
    int rc = gpu_catalog_default(&cat, err);
    if (rc == USHER_OK)
        rc = plan_parse_cluster(text, strlen(text), "c.yaml", cat, p, err);
    gpu_catalog_free(cat);
    return rc;
}

TEST(cluster_messages)
{
    usher_error err;
    plan_problem p;
    memset(&p, 0, sizeof p);
    ASSERT_OK(cluster("gpus:\n  - type: t4\n    count: 3\n  - type: a100-80gb\n    count: 1\n"
                      "    node: n-2\n",
                      &p, &err));
    ASSERT_EQ_INT(p.nt, 2);
    ASSERT(p.fixed);
    ASSERT_EQ_INT(p.t[0].count, 3);
    ASSERT_STR_EQ(p.t[1].node, "n-2");
    ASSERT_EQ_INT(p.t[1].line, 4);

    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: a100-90gb\n    count: 2\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:2:");
    ASSERT_CONTAINS(err.msg, "gpus[0].type");
    ASSERT_CONTAINS(err.msg, "a100-80gb"); /* the valid keys are listed */

    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: t4\n    count: 2\n    max: 4\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:4:");
    ASSERT_CONTAINS(err.msg, "exclusive");

    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: t4\n    max: 3\n    price_per_hour: -2\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:4:");
    ASSERT_CONTAINS(err.msg, "gpus[0].price_per_hour");

    /* no price in the catalog (a30) and none given: an error at the type's line */
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: t4\n    max: 3\n  - type: a30\n    max: 2\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:4:");
    ASSERT_CONTAINS(err.msg, "GPU type 'a30' has no price");
    ASSERT_CONTAINS(err.msg, "price_per_hour");
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: h200\n    max: 2\n    price_per_hour: null\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "'h200' has no price");
    /* given, 0 included, it is taken */
    memset(&p, 0, sizeof p);
    ASSERT_OK(cluster("gpus:\n  - type: a30\n    max: 2\n    price_per_hour: 0\n"
                      "  - type: h100-pcie\n    max: 2\n    price_per_hour: 2.5\n",
                      &p, &err));
    ASSERT(p.t[0].price == 0 && p.t[1].price == 2.5);

    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: t4\n    cont: 2\n", &p, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:3:");
    ASSERT_CONTAINS(err.msg, "did you mean 'count'");

    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - {type: t4, max: 2}\n  - {type: t4, max: 3}\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "already declared at line 2");
    plan_problem_free(&p);

    /* lost GPUs: by index on the entry, removed from what may be used */
    memset(&p, 0, sizeof p);
    ASSERT_OK(cluster("objective: max-min\ngpus:\n  - {type: t4, count: 8, node: a, lost: [2, 5]}\n"
                      "  - {type: v100-16gb, count: 10, lost: [9]}\n",
                      &p, &err));
    ASSERT_EQ_INT(p.objective, PLAN_MAX_MIN);
    ASSERT_EQ_INT(p.t[0].count, 6);
    ASSERT_EQ_INT(plan_type_slots(&p.t[0]), 8);
    ASSERT_EQ_INT(p.t[1].count, 9);
    ASSERT_EQ_INT(p.n_lost, 3);
    ASSERT(plan_gpu_lost(&p, 0, 5) && !plan_gpu_lost(&p, 0, 4) && plan_gpu_lost(&p, 1, 9));
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - type: t4\n    count: 4\n    lost: [1, 4]\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:4:");
    ASSERT_CONTAINS(err.msg, "gpus[0].lost[1]");
    ASSERT_CONTAINS(err.msg, "GPU 4 is not on this entry");
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - {type: t4, count: 4, lost: [1, 1]}\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "listed twice");
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - {type: t4, count: 4, lost: [x]}\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "gpus[0].lost[0]': an integer");
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("objective: fair\ngpus:\n  - {type: t4, count: 4}\n", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "'max-min'");

    /* one physical GPU whole and as MIG instances: refused, naming node and GPU */
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - {type: a100-80gb, count: 2, node: n1}\n"
                          "  - {type: a100-80gb:3g.40gb, count: 2, node: n1}\n",
                          &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:3:");
    ASSERT_CONTAINS(err.msg, "node 'n1': GPU type a100-80gb is declared whole");
    ASSERT_CONTAINS(err.msg, "devices");
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - {type: a100-80gb, count: 2, node: n1, devices: [0, 1]}\n"
                          "  - {type: a100-80gb:3g.40gb, count: 2, node: n1, devices: [1]}\n",
                          &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "c.yaml:3:");
    ASSERT_CONTAINS(err.msg, "node 'n1': GPU 1 is declared as a100-80gb (line 2) and as "
                             "a100-80gb:3g.40gb (line 3)");
    memset(&p, 0, sizeof p);
    ASSERT_OK(cluster("gpus:\n  - {type: a100-80gb, count: 2, node: n1, devices: [0, 1]}\n"
                      "  - {type: a100-80gb:3g.40gb, count: 2, node: n1, devices: [2]}\n"
                      "  - {type: a100-80gb:1g.10gb, count: 3, node: n1, devices: [2]}\n"
                      "  - {type: a100-80gb:3g.40gb, count: 2, node: n2}\n",
                      &p, &err));
    memset(&p, 0, sizeof p);
    ASSERT_EQ_INT(cluster("gpus:\n  - {type: a100-80gb, count: 3, node: n1, devices: [0, 1]}\n",
                          &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "2 GPUs listed, but count is 3");
    plan_problem_free(&p);
}

TEST(workload_messages)
{
    usher_error err;
    plan_problem p;
    memset(&p, 0, sizeof p);
    const char *ok = "models:\n  - {name: a, model: a.onnx, rate: 1, slo_ms: 5, group: g}\n"
                     "  - {name: b, model: /m/b.onnx, rate: 2, slo_ms: 5, precision: fp16}\n"
                     "  - {name: c, model: c.onnx, rate: 3, slo_ms: 5, group: g, priority: 7}\n";
    ASSERT_OK(plan_parse_workload(ok, strlen(ok), "w/wl.yaml", &p, &err));
    ASSERT_EQ_INT(p.n, 3);
    ASSERT_STR_EQ(p.m[0].path, "w/a.onnx"); /* relative to the workload's directory */
    ASSERT_STR_EQ(p.m[1].path, "/m/b.onnx");
    ASSERT_EQ_INT(p.m[1].precision, USHER_PRECISION_FP16);
    ASSERT_EQ_INT(p.m[2].merge_group, p.m[0].merge_group);
    ASSERT_EQ_INT(p.m[2].priority, 7);
    plan_problem_free(&p);

    const char *neg = "models:\n  - name: r\n    model: r.onnx\n    rate: -5\n    slo_ms: 50\n";
    ASSERT_EQ_INT(plan_parse_workload(neg, strlen(neg), "wl.yaml", &p, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "wl.yaml:4:");
    ASSERT_CONTAINS(err.msg, "models[0].rate");
    plan_problem_free(&p);

    const char *dup = "models:\n  - {name: r, model: r.onnx, rate: 1, slo_ms: 5}\n"
                      "  - {name: r, model: s.onnx, rate: 1, slo_ms: 5}\n";
    ASSERT_EQ_INT(plan_parse_workload(dup, strlen(dup), "wl.yaml", &p, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "wl.yaml:3:");
    ASSERT_CONTAINS(err.msg, "models[1].name");
    ASSERT_CONTAINS(err.msg, "already declared at line 2");
    plan_problem_free(&p);

    const char *miss = "models:\n  - {name: r, model: r.onnx, rate: 1}\n";
    ASSERT_EQ_INT(plan_parse_workload(miss, strlen(miss), "wl.yaml", &p, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "models[0].slo_ms");
    ASSERT_CONTAINS(err.msg, "missing");
    plan_problem_free(&p);

    const char *share = "models:\n  - {name: r, model: r.onnx, rate: 1, slo_ms: 5, "
                        "min_share: 0.25}\n  - {name: s, model: r.onnx, rate: 1, slo_ms: 5, "
                        "min_share: 1.5}\n";
    ASSERT_EQ_INT(plan_parse_workload(share, strlen(share), "wl.yaml", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "wl.yaml:3:");
    ASSERT_CONTAINS(err.msg, "models[1].min_share");
    plan_problem_free(&p);
    /* a workload refused leaves nothing behind; the field is read where it is valid */
    const char *share_ok = "models:\n  - {name: r, model: r.onnx, rate: 1, slo_ms: 5, "
                           "min_share: 0.25}\n";
    ASSERT_OK(plan_parse_workload(share_ok, strlen(share_ok), "wl.yaml", &p, &err));
    ASSERT_EQ_INT(p.n, 1);
    ASSERT(p.m[0].min_share == 0.25);
    plan_problem_free(&p);

    const char *prec = "models:\n  - {name: r, model: r.onnx, rate: 1, slo_ms: 5, "
                       "precision: bf16}\n";
    ASSERT_EQ_INT(plan_parse_workload(prec, strlen(prec), "wl.yaml", &p, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "models[0].precision");
    ASSERT_CONTAINS(err.msg, "bf16");
    plan_problem_free(&p);

    /* dims: names as given (input:1 of an unnamed dim), batch as 0, in file order */
    const char *dims = "models:\n  - name: r\n    model: r.onnx\n    rate: 1\n    slo_ms: 5\n"
                       "    dims:\n      seq: 384\n      input:1: batch\n";
    ASSERT_OK(plan_parse_workload(dims, strlen(dims), "wl.yaml", &p, &err));
    ASSERT_EQ_INT(p.m[0].n_dims, 2);
    ASSERT_STR_EQ(p.m[0].dims[0].name, "seq");
    ASSERT_EQ_INT(p.m[0].dims[0].value, 384);
    ASSERT_STR_EQ(p.m[0].dims[1].name, "input:1");
    ASSERT_EQ_INT(p.m[0].dims[1].value, 0);
    plan_problem_free(&p);
    const char *bad_dim = "models:\n  - {name: r, model: r.onnx, rate: 1, slo_ms: 5,\n"
                          "     dims: {seq: 384, past: -3}}\n";
    ASSERT_EQ_INT(plan_parse_workload(bad_dim, strlen(bad_dim), "wl.yaml", &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "wl.yaml:3: field 'models[0].dims.past': model 'r': an integer from 1 "
                           "to 16777216, or batch (the configuration's batch), not '-3'");
    plan_problem_free(&p);
}

static gpu_catalog *cat; /* the problem's types point into it */

/* plan_parse_running against the fuzz body's problem; *p and *s are left for the caller to free */
static int running(const char *text, plan_problem *p, plan_solution *s, uint32_t *dropped,
                   usher_error *err)
{
    usher_fuzz_plan_problem(p, cat);
    if (plan_solution_init(s, p, "running") < 0)
        return USHER_ERR_NOMEM;
    return plan_parse_running(text, strlen(text), "plan.json", p, s, dropped, err);
}

TEST(running_messages)
{
    usher_error err;
    plan_problem p;
    plan_solution s;
    uint32_t dropped = 99;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    ASSERT_OK(running("{\"schema_version\": 1, \"gpus\": [\n"
                      "  {\"type\": \"a100-80gb\", \"node\": null, \"replicas\": [\n"
                      "    {\"model\": \"resnet50\", \"batch\": 8, \"share\": 30},\n"
                      "    {\"model\": \"bert\", \"batch\": 4, \"share\": 40}]},\n"
                      "  {\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": [\n"
                      "    {\"model\": \"bert\", \"batch\": 2, \"share\": 100},\n"
                      "    {\"model\": \"vgg16\", \"batch\": 2, \"share\": 10},\n"
                      "    {\"model\": \"resnet50\", \"batch\": 9, \"share\": 60}]}]}\n",
                      &p, &s, &dropped, &err));
    ASSERT_EQ_INT(s.n, 2);
    ASSERT_EQ_INT(s.g[0].n, 2);
    ASSERT_EQ_INT(s.g[1].type, 1);
    ASSERT_EQ_INT(s.g[1].n, 1);
    ASSERT_EQ_INT(dropped, 2); /* a model gone, a batch no longer a candidate */
    ASSERT_OK(plan_check(&s, &p, &err));
    plan_solution_free(&s);
    plan_problem_free(&p);

    ASSERT_EQ_INT(running("{\"schema_version\": 2, \"gpus\": []}", &p, &s, &dropped, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "plan.json:1:");
    ASSERT_CONTAINS(err.msg, "schema_version");
    plan_solution_free(&s);
    plan_problem_free(&p);

    /* a GPU on an entry the cluster no longer has is lost: its replicas are
     * counted (and placed again by the re-plan), never an error */
    ASSERT_OK(running("{\"schema_version\": 1, \"gpus\": [\n"
                      "  {\"type\": \"h100-80gb\", \"replicas\": [\n"
                      "    {\"model\": \"resnet50\", \"batch\": 8, \"share\": 30}]},\n"
                      "  {\"type\": \"t4\", \"node\": \"node-9\", \"replicas\": []}]}",
                      &p, &s, &dropped, &err));
    ASSERT_EQ_INT(s.n, 0);
    ASSERT_EQ_INT(s.lost_gpus, 2);
    ASSERT_EQ_INT(s.lost_replicas, 1);
    plan_solution_free(&s);
    plan_problem_free(&p);

    /* identities: index kept; one past the entry's count, or listed lost, is gone;
     * two GPUs of one identity are an error naming both */
    ASSERT_OK(running("{\"schema_version\": 1, \"gpus\": [\n"
                      "  {\"type\": \"t4\", \"node\": \"node-2\", \"index\": 3, \"replicas\": []},\n"
                      "  {\"type\": \"t4\", \"node\": \"node-2\", \"index\": 4, \"replicas\": [\n"
                      "    {\"model\": \"bert\", \"batch\": 2, \"share\": 100}]},\n"
                      "  {\"type\": \"a100-80gb\", \"replicas\": []}]}",
                      &p, &s, &dropped, &err));
    ASSERT_EQ_INT(s.n, 2);
    ASSERT_EQ_INT(s.g[0].ident, 4);
    ASSERT_EQ_INT(s.g[1].ident, 1); /* no index: its place among its entry's GPUs */
    ASSERT_EQ_INT(s.lost_gpus, 1);
    ASSERT_EQ_INT(s.lost_replicas, 1);
    plan_solution_free(&s);
    plan_problem_free(&p);
    usher_fuzz_plan_problem(&p, cat);
    ASSERT_OK(plan_lose_gpu(&p, 1, 3));
    ASSERT_EQ_INT(p.t[1].count, 3);
    ASSERT_EQ_INT(plan_lose_gpu(&p, 1, 3), USHER_ERR_INVALID);
    ASSERT_EQ_INT(plan_lose_gpu(&p, 1, 4), USHER_ERR_INVALID);
    ASSERT_OK(plan_solution_init(&s, &p, "running"));
    const char *lost = "{\"schema_version\": 1, \"gpus\": [\n"
                       "  {\"type\": \"t4\", \"node\": \"node-2\", \"index\": 3, \"replicas\": []},\n"
                       "  {\"type\": \"t4\", \"node\": \"node-2\", \"index\": 0, \"replicas\": []}]}";
    ASSERT_OK(plan_parse_running(lost, strlen(lost), "plan.json", &p, &s, &dropped, &err));
    ASSERT_EQ_INT(s.n, 1);
    ASSERT_EQ_INT(s.g[0].ident, 1);
    ASSERT_EQ_INT(s.lost_gpus, 1);
    uint32_t idx[2] = {9, 9};
    ASSERT_EQ_INT(plan_open(&s, &p, 1, -1), 1);
    ASSERT_OK(plan_gpu_indices(&s, &p, idx));
    ASSERT_EQ_INT(idx[0], 0);
    ASSERT_EQ_INT(idx[1], 1); /* a new GPU: the smallest index neither held nor lost */
    plan_solution_free(&s);
    plan_problem_free(&p);
    ASSERT_EQ_INT(running("{\"schema_version\": 1, \"gpus\": [\n"
                          "  {\"type\": \"t4\", \"node\": \"node-2\", \"index\": 1, \"replicas\": []},\n"
                          "  {\"type\": \"t4\", \"node\": \"node-2\", \"index\": 1, \"replicas\": []}]}",
                          &p, &s, &dropped, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "plan.json:3:");
    ASSERT_CONTAINS(err.msg, "gpus[1]: GPU 1 of type 't4' on node 'node-2' is already gpus[0]");
    plan_solution_free(&s);
    plan_problem_free(&p);

    ASSERT_EQ_INT(running("{\"schema_version\": 1, \"gpus\": [{\"type\": \"a100-80gb\", "
                          "\"replicas\": [\n"
                          "  {\"model\": \"resnet50\", \"batch\": 32, \"share\": 50},\n"
                          "  {\"model\": \"bert\", \"batch\": 16, \"share\": 70}]}]}",
                          &p, &s, &dropped, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "plan.json:3:");
    ASSERT_CONTAINS(err.msg, "gpus[0].replicas[1]");
    ASSERT_CONTAINS(err.msg, "100%");
    plan_solution_free(&s);
    plan_problem_free(&p);

    /* more GPUs than the entry's count (lowered since): the third is gone */
    ASSERT_OK(running("{\"schema_version\": 1, \"gpus\": [{\"type\": \"a100-80gb\", "
                      "\"replicas\": []},\n{\"type\": \"a100-80gb\", \"replicas\": []},\n"
                      "{\"type\": \"a100-80gb\", \"replicas\": []}]}",
                      &p, &s, &dropped, &err));
    ASSERT_EQ_INT(s.n, 2);
    ASSERT_EQ_INT(s.lost_gpus, 1);
    plan_solution_free(&s);
    plan_problem_free(&p);
    gpu_catalog_free(cat);
    cat = NULL;
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

/* ---- out of memory ----------------------------------------------------------- */

/* Fail each allocation of a reader in turn: the failure must surface as an
 * error with a message, and freeing the problem and the solution must give
 * every byte back. The code and the message's wording are not checked here:
 * the readers say "out of memory" without the file name, and a GPU the
 * running plan cannot allocate reads as a limit. */
TEST(every_allocation_failure_is_clean)
{
    static const char *const texts[3] = {
        "gpus:\n  - {type: t4, count: 2, node: a}\n  - {type: a100-80gb:3g.40gb, count: 1}\n",
        "models:\n  - {name: a, model: a.onnx, rate: 1, slo_ms: 5, group: g,\n"
        "     dims: {seq: 64, input:1: batch}}\n"
        "  - {name: b, model: b.onnx, rate: 2, slo_ms: 5, group: h}\n"
        "  - {name: c, model: c.onnx, rate: 3, slo_ms: 5, group: g}\n",
        "{\"schema_version\": 1, \"gpus\": [{\"type\": \"a100-80gb\", \"replicas\": [\n"
        "  {\"model\": \"resnet50\", \"batch\": 8, \"share\": 30},\n"
        "  {\"model\": \"bert\", \"batch\": 4, \"share\": 40}]},\n"
        " {\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": [\n"
        "  {\"model\": \"bert\", \"batch\": 2, \"share\": 100}]}]}\n",
    };
    usher_error err;
    ASSERT_OK(gpu_catalog_default(&cat, &err));
    size_t live = us_alloc_live_bytes();
    int failed = 0;
    for (int r = 0; r < 3; r++) {
        for (uint64_t k = 1;; k++) {
            plan_problem p;
            plan_solution s;
            memset(&p, 0, sizeof p);
            memset(&s, 0, sizeof s);
            memset(&err, 0, sizeof err);
            uint32_t dropped = 0;
            if (r == 2) {
                usher_fuzz_plan_problem(&p, cat);
                ASSERT_OK(plan_solution_init(&s, &p, "running"));
            }
            uint64_t inj = us_alloc_injected_failures();
            us_alloc_fail_nth(k);
            const char *t = texts[r];
            int rc = r == 0   ? plan_parse_cluster(t, strlen(t), "c.yaml", cat, &p, &err)
                     : r == 1 ? plan_parse_workload(t, strlen(t), "w.yaml", &p, &err)
                              : plan_parse_running(t, strlen(t), "p.json", &p, &s, &dropped, &err);
            us_alloc_fail_nth(0);
            bool injected = us_alloc_injected_failures() != inj;
            plan_solution_free(&s);
            plan_problem_free(&p);
            ASSERT_EQ_U64(us_alloc_live_bytes(), live);
            if (!injected) {
                ASSERT_OK(rc);
                break;
            }
            ASSERT(rc < 0);             /* a failure is never swallowed */
            ASSERT(err.msg[0] != '\0'); /* and says something */
            failed++;
        }
    }
    printf("  %d allocations failed in turn\n", failed);
    ASSERT(failed >= 10);
    gpu_catalog_free(cat);
    cat = NULL;
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

TEST_MAIN(TEST_ENTRY(seeds_and_mutants_through_fuzz_body), TEST_ENTRY(cluster_messages),
          TEST_ENTRY(workload_messages), TEST_ENTRY(running_messages),
          TEST_ENTRY(every_allocation_failure_is_clean))
