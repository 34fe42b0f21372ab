/*
 * test_planfile.c - plan.json schema v1 (src/planfile): the writer and the
 * reader round trip, every limit and error with its exact message, and the
 * planner (`usher plan --replan`, src/plan/input.c) and the server
 * (`usher serve --plan`, src/server/cpuplan.c) reading the same file the
 * same way: one accepts what the other accepts, and both refuse with the
 * same message.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "fuzz_plan.h"
#include "plan/plan.h"
#include "planfile/planfile.h"
#include "server/srv.h"
#include "test.h"

#define LABEL "plan.json"

static int parse(const char *text, pf_plan *p, usher_error *err)
{
    return pf_parse(text, strlen(text), LABEL, p, err);
}

/* ---- round trip ------------------------------------------------------------------ */

static pf_replica reps0[] = {
    {.model = "resnet50", .batch = 8, .share = 30, .memory_mb = 605.5, .latency_ms = 16.07,
     .throughput = 497.8, .load = 248.9},
    {.model = "bert", .batch = 4, .share = 40, .memory_mb = 1200, .latency_ms = 10,
     .throughput = 400, .load = 400, .group = "g1"},
};
static pf_replica reps1[] = {
    {.model = "bert", .batch = 2, .share = 100, .memory_mb = 900, .latency_ms = 30,
     .throughput = 66.6667, .load = 60, .group = "g1"},
};

static pf_model_dim dims1[] = {{.name = "seq", .value = 384}, {.name = "state:1", .value = 0}};

static pf_plan sample(pf_gpu *g, pf_model *m)
{
    g[0] = (pf_gpu){.type = "a100-80gb", .price_per_hour = 4.1, .compute_pct = 70,
                    .memory_pct = 13.25, .power_w = 250.5, .r = reps0, .n = 2};
    g[1] = (pf_gpu){.type = "t4", .node = "node-2", .has_index = true, .index = 3,
                    .price_per_hour = 0.526, .compute_pct = 100,
                    .memory_pct = 5.5, .power_w = 61.3, .r = reps1, .n = 1};
    m[0] = (pf_model){.name = "resnet50", .rate = 248.9, .slo_ms = 50, .goodput = 248.9,
                      .replicas = 1};
    m[1] = (pf_model){.name = "bert", .rate = 500, .slo_ms = 100, .goodput = 460,
                      .unserved = 40, .replicas = 2, .priority = 2, .group = "g1",
                      .dims = dims1, .n_dims = 2};
    return (pf_plan){.generator = "usher 0.1.0",
                     .policy = "replan",
                     .objective = "min-cost",
                     .workload = "w.yaml",
                     .cluster = "c.yaml",
                     .note = "a note",
                     .profile_seconds = 0.125,
                     .plan_seconds = 1.5e-05,
                     .has_replan = true,
                     .replan = {.from = "old.json", .started = 2, .stopped = 1,
                                .replicas_before = 3, .max_moves = 4,
                                .lost_gpus = 1, .lost_replicas = 2},
                     .totals = {.gpus = 2, .replicas = 3, .cost_per_hour = 4.626, .rate = 748.9,
                                .goodput = 708.9, .unserved = 40, .compute_utilisation_pct = 85,
                                .memory_utilisation_pct = 9.375, .power_w = 311.8,
                                .energy_kwh_per_hour = 0.3118, .joules_per_request = 0.439836},
                     .m = m,
                     .n_models = 2,
                     .g = g,
                     .n_gpus = 2};
}

static void same_str(const char *a, const char *b)
{
    ASSERT((a == NULL) == (b == NULL));
    if (a)
        ASSERT_STR_EQ(a, b);
}

static void same_plan(const pf_plan *a, const pf_plan *b)
{
    same_str(a->generator, b->generator);
    same_str(a->policy, b->policy);
    same_str(a->objective, b->objective);
    same_str(a->workload, b->workload);
    same_str(a->cluster, b->cluster);
    same_str(a->note, b->note);
    ASSERT(a->feasible == b->feasible);
    ASSERT(a->profile_seconds == b->profile_seconds && a->plan_seconds == b->plan_seconds);
    ASSERT(a->has_replan == b->has_replan);
    same_str(a->replan.from, b->replan.from);
    ASSERT(a->replan.started == b->replan.started && a->replan.stopped == b->replan.stopped &&
           a->replan.replicas_before == b->replan.replicas_before &&
           a->replan.max_moves == b->replan.max_moves &&
           a->replan.lost_gpus == b->replan.lost_gpus &&
           a->replan.lost_replicas == b->replan.lost_replicas);
    ASSERT(memcmp(&a->totals, &b->totals, sizeof a->totals) == 0);
    ASSERT_EQ_INT(a->n_models, b->n_models);
    for (uint32_t i = 0; i < a->n_models; i++) {
        const pf_model *x = &a->m[i], *y = &b->m[i];
        same_str(x->name, y->name);
        same_str(x->group, y->group);
        ASSERT(x->rate == y->rate && x->slo_ms == y->slo_ms && x->goodput == y->goodput &&
               x->unserved == y->unserved && x->replicas == y->replicas &&
               x->priority == y->priority);
        ASSERT_EQ_INT(x->n_dims, y->n_dims);
        for (uint32_t k = 0; k < x->n_dims; k++) {
            same_str(x->dims[k].name, y->dims[k].name);
            ASSERT(x->dims[k].value == y->dims[k].value);
        }
    }
    ASSERT_EQ_INT(a->n_gpus, b->n_gpus);
    for (uint32_t i = 0; i < a->n_gpus; i++) {
        const pf_gpu *x = &a->g[i], *y = &b->g[i];
        same_str(x->type, y->type);
        same_str(x->node, y->node);
        ASSERT(x->has_index == y->has_index && x->index == y->index);
        ASSERT(x->price_per_hour == y->price_per_hour && x->compute_pct == y->compute_pct &&
               x->memory_pct == y->memory_pct && x->power_w == y->power_w);
        ASSERT_EQ_INT(x->n, y->n);
        for (uint32_t r = 0; r < x->n; r++) {
            const pf_replica *u = &x->r[r], *v = &y->r[r];
            same_str(u->model, v->model);
            same_str(u->group, v->group);
            ASSERT(u->batch == v->batch && u->share == v->share &&
                   u->memory_mb == v->memory_mb && u->latency_ms == v->latency_ms &&
                   u->throughput == v->throughput && u->load == v->load);
        }
    }
}

TEST(write_then_read_equals)
{
    pf_gpu g[2];
    pf_model m[2];
    pf_plan a = sample(g, m);
    us_buf b1, b2;
    usher_error err;
    us_buf_init(&b1, 0);
    us_buf_init(&b2, 0);
    ASSERT_OK(pf_write(&a, &b1));
    pf_plan r;
    ASSERT_OK(parse((const char *)b1.data, &r, &err));
    same_plan(&a, &r);
    ASSERT_EQ_INT(r.g[0].line, 61); /* its "{" (after models[1].dims: 4 lines) */
    ASSERT_EQ_INT(r.g[0].r[1].line, 71);
    ASSERT(!r.g[0].has_index && r.g[1].has_index && r.g[1].index == 3);
    ASSERT_STR_EQ(r.label, LABEL);
    /* and writing what was read gives the same bytes */
    ASSERT_OK(pf_write(&r, &b2));
    ASSERT_STR_EQ((const char *)b2.data, (const char *)b1.data);
    pf_free(&r);
    pf_free(&r); /* twice is fine */
    /* the layout: one replica a line, null for NULL and empty strings, no replan without it */
    ASSERT_CONTAINS((const char *)b1.data,
                    "        {\"model\": \"resnet50\", \"batch\": 8, \"share\": 30, \"memory_mb\": "
                    "605.5, \"latency_ms\": 16.07, \"throughput\": 497.8, \"load\": 248.9, "
                    "\"group\": null},\n");
    ASSERT_CONTAINS((const char *)b1.data, "\"node\": null,");
    a.has_replan = false;
    a.note = "";
    us_buf_reset(&b2);
    ASSERT_OK(pf_write(&a, &b2));
    ASSERT(strstr((const char *)b2.data, "\"replan\": {") == NULL);
    ASSERT_CONTAINS((const char *)b2.data, "\"note\": null,");
    /* 6 significant digits */
    a.totals.cost_per_hour = 1.23456789;
    us_buf_reset(&b2);
    ASSERT_OK(pf_write(&a, &b2));
    ASSERT_CONTAINS((const char *)b2.data, "\"cost_per_hour\": 1.23457,");
    us_buf_free(&b1);
    us_buf_free(&b2);
}

TEST(minimal_file_and_defaults)
{
    pf_plan p;
    usher_error err;
    ASSERT_OK(parse("{\"schema_version\": 1, \"future_field\": {\"x\": [1]}, \"gpus\": [\n"
                    "  {\"type\": \"t4\", \"replicas\": [{\"model\": \"m\", \"batch\": 2, "
                    "\"share\": 50, \"extra\": 1}]}]}",
                    &p, &err));
    ASSERT_EQ_INT(p.n_gpus, 1);
    ASSERT_EQ_INT(p.n_models, 0);
    ASSERT(p.g[0].node == NULL && p.g[0].price_per_hour == 0 && !p.has_replan && !p.feasible);
    ASSERT(p.policy == NULL && p.totals.gpus == 0);
    ASSERT_EQ_INT(p.g[0].r[0].batch, 2);
    ASSERT(p.g[0].r[0].share == 50 && p.g[0].r[0].group == NULL);
    ASSERT_EQ_INT(p.g[0].line, 2);
    pf_free(&p);
    /* YAML with the same structure reads the same */
    ASSERT_OK(parse("schema_version: 1\nfeasible: true\ngpus:\n  - type: t4\n    id: 0\n"
                    "    replicas: []\n",
                    &p, &err));
    ASSERT(p.feasible && p.n_gpus == 1 && p.g[0].n == 0);
    pf_free(&p);
}

/* ---- every error, with its message ---------------------------------------------- */

#define HEAD "{\"schema_version\": 1, "
#define GPU(reps) "\"gpus\": [{\"type\": \"t4\", \"replicas\": [" reps "]}]}"
#define REP(rest) "{\"model\": \"m\", " rest "}"

static const struct bad {
    const char *text;
    int code;
    const char *msg;
} bad[] = {
    {"", USHER_ERR_PARSE, "plan.json: expected a plan (a JSON object)"},
    {"[1]", USHER_ERR_PARSE, "plan.json:1: expected a plan (a JSON object)"},
    {"{\"gpus\": []}", USHER_ERR_PARSE, "plan.json:1: field 'schema_version': missing (required)"},
    {"{\"schema_version\": 2, \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'schema_version': 2, but this usher reads version 1"},
    {"{\"schema_version\": \"1\", \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'schema_version': expected an integer, found the quoted string \"1\""},
    {HEAD "\"x\": 1}", USHER_ERR_PARSE, "plan.json:1: field 'gpus': missing (required)"},
    {HEAD "\"gpus\": {}}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus': expected a sequence, found a map"},
    {HEAD "\"gpus\": [1]}", USHER_ERR_PARSE, "plan.json:1: gpus[0]: expected an object"},
    {HEAD "\"gpus\": [{\"type\": \"t4\", \"index\": -1, \"replicas\": []}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].index': -1 is out of range [0, 1000000]"},
    {HEAD "\"gpus\": [{\"type\": \"t4\", \"index\": 1.5, \"replicas\": []}]}", USHER_ERR_PARSE,
     NULL},
    {HEAD "\"gpus\": [{\"replicas\": []}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].type': missing (required)"},
    {HEAD "\"gpus\": [{\"type\": \"\", \"replicas\": []}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].type': empty"},
    {HEAD "\"gpus\": [{\"type\": [], \"replicas\": []}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].type': expected a string, found a sequence"},
    {HEAD "\"gpus\": [{\"type\": \"t4\"}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas': missing (required)"},
    {HEAD "\"gpus\": [{\"type\": \"t4\", \"replicas\": 3}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas': expected a sequence, found a scalar"},
    {HEAD "\"gpus\": [{\"type\": \"t4\", \"id\": 1, \"replicas\": []}]}", USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].id': 0 (the GPU's place in the list), not 1"},
    {HEAD "\"gpus\": [{\"type\": \"t4\", \"price_per_hour\": -1, \"replicas\": []}]}",
     USHER_ERR_PARSE, "plan.json:1: field 'gpus[0].price_per_hour': -1 is out of range [0, 1e+15]"},
    {HEAD GPU("1"), USHER_ERR_PARSE, "plan.json:1: gpus[0].replicas[0]: expected an object"},
    {HEAD GPU("{\"batch\": 1, \"share\": 10}"), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].model': missing (required)"},
    {HEAD GPU(REP("\"share\": 10")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].batch': missing (required)"},
    {HEAD GPU(REP("\"batch\": 0, \"share\": 10")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].batch': 0 is out of range [1, 4096]"},
    {HEAD GPU(REP("\"batch\": 4097, \"share\": 10")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].batch': 4097 is out of range [1, 4096]"},
    {HEAD GPU(REP("\"batch\": 1.5, \"share\": 10")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].batch': expected an integer, found '1.5'"},
    {HEAD GPU(REP("\"batch\": 1")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].share': missing (required)"},
    {HEAD GPU(REP("\"batch\": 1, \"share\": 0.5")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].share': 0.5 is out of range [1, 100]"},
    {HEAD GPU(REP("\"batch\": 1, \"share\": 101")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].share': 101 is out of range [1, 100]"},
    {HEAD GPU(REP("\"batch\": 1, \"share\": 10, \"load\": -2")), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].load': -2 is out of range [0, 1e+15]"},
    {HEAD GPU("{\"model\": \"\", \"batch\": 1, \"share\": 10}"), USHER_ERR_PARSE,
     "plan.json:1: field 'gpus[0].replicas[0].model': empty"},
    {HEAD "\"feasible\": \"yes\", \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'feasible': true or false"},
    {HEAD "\"note\": {}, \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'note': expected a string, found a map"},
    {HEAD "\"plan_seconds\": 1e16, \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'plan_seconds': 1e16 is out of range [0, 1e+15]"},
    {HEAD "\"totals\": [], \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'totals': expected a map, found a sequence"},
    {HEAD "\"totals\": {\"gpus\": -1}, \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'totals.gpus': -1 is out of range [0, 4294967295]"},
    {HEAD "\"replan\": {\"max_moves\": 1.5}, \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'replan.max_moves': expected an integer, found '1.5'"},
    {HEAD "\"models\": {}, \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'models': expected a sequence, found a map"},
    {HEAD "\"models\": [[]], \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: models[0]: expected an object"},
    {HEAD "\"models\": [{\"rate\": 1}], \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'models[0].name': missing (required)"},
    {HEAD "\"models\": [{\"name\": \"a\", \"priority\": 1001}], \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'models[0].priority': 1001 is out of range [0, 1000]"},
    {HEAD "\"models\": [{\"name\": \"a\", \"dims\": [1]}], \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'models[0].dims': expected a map, found a sequence"},
    {HEAD "\"models\": [{\"name\": \"a\", \"dims\": {\"seq\": 0}}], \"gpus\": []}", USHER_ERR_PARSE,
     "plan.json:1: field 'models[0].dims.seq': 0 is out of range [1, 16777216]"},
    {HEAD "\"models\": [{\"name\": \"a\", \"dims\": {\"seq\": \"many\"}}], \"gpus\": []}",
     USHER_ERR_PARSE,
     "plan.json:1: field 'models[0].dims.seq': expected an integer, found the quoted string "
     "\"many\""},
    {HEAD "\"gpus\": [], \"gpus\": []}", USHER_ERR_PARSE, NULL}, /* duplicate key (core) */
};

TEST(every_error_names_the_field)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pf_plan p;
        usher_error err;
        memset(&err, 0, sizeof err);
        int rc = parse(bad[i].text, &p, &err);
        if (rc != bad[i].code || (bad[i].msg && strcmp(err.msg, bad[i].msg) != 0))
            printf("  case %zu: %d '%s'\n", i, rc, err.msg);
        ASSERT_EQ_INT(rc, bad[i].code);
        if (bad[i].msg)
            ASSERT_STR_EQ(err.msg, bad[i].msg);
        ASSERT(p.g == NULL && p.m == NULL && p.doc == NULL); /* nothing held on an error */
        pf_free(&p);
    }
    /* the line is the offending node's */
    pf_plan p;
    usher_error err;
    ASSERT_EQ_INT(parse(HEAD "\"gpus\": [\n{\"type\": \"t4\", \"replicas\": [\n"
                        "{\"model\": \"m\", \"batch\": 1, \"share\": 10},\n"
                        "{\"model\": \"m\", \"batch\": 9999, \"share\": 10}]}]}",
                        &p, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "plan.json:4: field 'gpus[0].replicas[1].batch': 9999 is out of "
                           "range [1, 4096]");
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

TEST(limits)
{
    usher_error err;
    pf_plan p;
    /* size: checked before a byte is read (a sparse file) */
    const char *big = test_path(test_tmpdir(), "big-plan.json");
    int fd = open(big, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ASSERT(fd >= 0);
    ASSERT(ftruncate(fd, (off_t)PF_MAX_BYTES + 1) == 0);
    close(fd);
    ASSERT_EQ_INT(pf_load(big, &p, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, big);
    ASSERT_CONTAINS(err.msg, "268435456");
    unlink(big);
    /* depth: 32 */
    char deep[512];
    snprintf(deep, sizeof deep, HEAD "\"gpus\": [], \"x\": %s1%s}",
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", /* 40 */
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    ASSERT_EQ_INT(parse(deep, &p, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "plan.json:1:");
    ASSERT_CONTAINS(err.msg, "32");
    /* a missing file */
    ASSERT_EQ_INT(pf_load(test_path(test_tmpdir(), "none.json"), &p, &err), USHER_ERR_NOT_FOUND);
}

/* every allocation failing in turn: an error with a message, nothing left allocated */
TEST(allocation_failures)
{
    pf_gpu g[2];
    pf_model m[2];
    pf_plan a = sample(g, m);
    us_buf b;
    usher_error err;
    us_buf_init(&b, 0);
    ASSERT_OK(pf_write(&a, &b));
    size_t live = us_alloc_live_bytes();
    int failed = 0;
    for (uint64_t k = 1;; k++) {
        pf_plan r;
        memset(&err, 0, sizeof err);
        uint64_t inj = us_alloc_injected_failures();
        us_alloc_fail_nth(k);
        int rc = pf_parse((const char *)b.data, b.len, LABEL, &r, &err);
        us_alloc_fail_nth(0);
        pf_free(&r);
        ASSERT_EQ_U64(us_alloc_live_bytes(), live);
        if (us_alloc_injected_failures() == inj) {
            ASSERT_OK(rc);
            break;
        }
        ASSERT_EQ_INT(rc, USHER_ERR_NOMEM);
        ASSERT_CONTAINS(err.msg, LABEL);
        failed++;
    }
    ASSERT(failed >= 3);
    us_buf_free(&b);
}

/* ---- the planner and the server read the same file the same way ------------------ */

/* the planner's synthetic problem (fuzz_plan.c: a100-80gb x2, t4 on node-2 x4; resnet50,
 * bert); the server with the same two models */
static int planner_reads(const char *path, uint32_t *replicas, usher_error *err)
{
    gpu_catalog *cat = NULL;
    usher_error e;
    plan_problem p;
    plan_solution s;
    if (gpu_catalog_default(&cat, &e) < 0)
        return us_err_set(err, USHER_ERR_INTERNAL, "catalog: %s", e.msg);
    usher_fuzz_plan_problem(&p, cat);
    uint32_t dropped = 0;
    int rc = plan_solution_init(&s, &p, "running");
    if (rc == USHER_OK)
        rc = plan_read_running(path, &p, &s, &dropped, err);
    *replicas = 0;
    for (uint32_t i = 0; rc == USHER_OK && i < s.n; i++)
        *replicas += s.g[i].n;
    *replicas += dropped;
    plan_solution_free(&s);
    plan_problem_free(&p);
    gpu_catalog_free(cat);
    return rc;
}

static int server_reads(const char *path, uint32_t *replicas, usher_error *err)
{
    static usher_server srv;
    static repo_model rm[2];
    static srv_model ms[2];
    memset(&srv, 0, sizeof srv);
    memset(rm, 0, sizeof rm);
    memset(ms, 0, sizeof ms);
    srv.p.default_slo_ms = 100;
    snprintf(rm[0].name, sizeof rm[0].name, "resnet50");
    snprintf(rm[1].name, sizeof rm[1].name, "bert");
    ms[0].rm = &rm[0];
    ms[1].rm = &rm[1];
    int rc = srv_plan_file(&srv, path, ms, 2, err);
    *replicas = rc == USHER_OK ? (uint32_t)(ms[0].replicas + ms[1].replicas) : 0;
    return rc;
}

TEST(planner_and_server_agree)
{
    /* the checks that differed before src/planfile: each file was read by one and refused
     * (or read otherwise) by the other */
    static const char *const files[] = {
        /* valid: both read 3 replicas (the planner keeps 2, drops 1 that is no candidate) */
        HEAD "\"gpus\": [{\"type\": \"a100-80gb\", \"node\": null, \"replicas\": [\n"
             "{\"model\": \"resnet50\", \"batch\": 8, \"share\": 30},\n"
             "{\"model\": \"bert\", \"batch\": 4, \"share\": 40},\n"
             "{\"model\": \"bert\", \"batch\": 2, \"share\": 20}]}]}",
        /* the server skipped a GPU that is not an object; the planner refused it */
        HEAD "\"gpus\": [1]}",
        /* the server read a GPU without a type or without replicas */
        HEAD "\"gpus\": [{\"replicas\": []}]}",
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\"}]}",
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": 1}]}",
        /* the server skipped a replica that is not an object */
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": [[]]}]}",
        /* both skipped a replica without a model */
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": "
             "[{\"batch\": 2, \"share\": 100}]}]}",
        /* the planner read batches up to 2^20, the server up to 4096 */
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": "
             "[{\"model\": \"bert\", \"batch\": 5000, \"share\": 100}]}]}",
        /* the server took a missing share as 100; the planner required one */
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": "
             "[{\"model\": \"bert\", \"batch\": 2}]}]}",
        /* the planner read shares from 0, the server from 1 */
        HEAD "\"gpus\": [{\"type\": \"t4\", \"node\": \"node-2\", \"replicas\": "
             "[{\"model\": \"bert\", \"batch\": 2, \"share\": 0}]}]}",
        /* the server did not check that the root is an object */
        "[]",
    };
    const char *path = test_path(test_tmpdir(), "agree.json");
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(path, "w");
        ASSERT(f != NULL);
        fputs(files[i], f);
        fclose(f);
        usher_error pe, se;
        memset(&pe, 0, sizeof pe);
        memset(&se, 0, sizeof se);
        uint32_t pn = 0, sn = 0;
        int prc = planner_reads(path, &pn, &pe), src = server_reads(path, &sn, &se);
        if (prc != src || (prc < 0 && strcmp(pe.msg, se.msg) != 0))
            printf("  file %zu: planner %d '%s', server %d '%s'\n", i, prc, pe.msg, src, se.msg);
        ASSERT_EQ_INT(prc, src);
        if (i == 0) {
            ASSERT_EQ_INT(prc, USHER_OK);
            ASSERT_EQ_INT(pn, 3);
            ASSERT_EQ_INT(sn, 3);
        } else {
            ASSERT(prc < 0);
            ASSERT_STR_EQ(pe.msg, se.msg);
            ASSERT_CONTAINS(pe.msg, path);
        }
    }
    unlink(path);
}

TEST_MAIN(TEST_ENTRY(write_then_read_equals), TEST_ENTRY(minimal_file_and_defaults),
          TEST_ENTRY(every_error_names_the_field), TEST_ENTRY(limits),
          TEST_ENTRY(allocation_failures), TEST_ENTRY(planner_and_server_agree))
