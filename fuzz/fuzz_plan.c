/*
 * fuzz_plan.c - libFuzzer target for the planner's three input readers
 * (src/plan/input.c): cluster.yaml, workload.yaml (fields only, no model is
 * opened) and the plan.json of a running plan. The first byte picks the
 * reader (byte % 3), the rest is the text.
 *
 * A running plan only means something against a problem, so one is built
 * here: the GPU types a100-80gb (2, no node) and t4 (4, on node-2) from the
 * default catalog, and the models resnet50 and bert with hand-made candidate
 * configurations (SYNTH below), which valid plans in fuzz/corpus-plan match.
 *
 * The contract checked on every input, beyond "no crash, no sanitizer report":
 *   - a rejection returns a negative code equal to err.code, with a message
 *     that starts with "<label>:"; no error ever lacks a message
 *     (us_err_missing_detail_count stays 0);
 *   - nothing leaks through the allocation hook once the problem and the
 *     solution are freed, whether the reader accepted or rejected;
 *   - an accepted cluster has 1..PLAN_MAX_TYPES types, each with a catalog
 *     GPU, count >= 0 (all fixed) or -1 (all elastic, 0 <= max), a price >= 0
 *     and no (type, node) pair twice;
 *   - an accepted workload has 1..PLAN_MAX_MODELS models with unique names,
 *     a path, rate >= 0, slo_ms > 0, priority in 0..1000, a known precision,
 *     merge groups that agree with the group names, and at most PF_DIMS_MAX
 *     dims, each named, valued 0 (batch) .. PF_DIM_VALUE_MAX;
 *   - an accepted running plan passes plan_check against the problem.
 * Violations abort, so libFuzzer records them as crashes.
 * tests/test_plan_inputs.c replays fuzz/corpus-plan and mutants of it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_plan.h"
#include "plan/plan.h"
#include "planfile/workload.h"

#define LABEL_CLUSTER "fuzz-cluster.yaml"
#define LABEL_WORKLOAD "fuzz-workload.yaml"
#define LABEL_RUNNING "fuzz-plan.json"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? (int)err->code : 0, err ? err->msg : "");
        abort();
    }
}

static void check_rejection(int rc, const usher_error *err, const char *label)
{
    size_t n = strlen(label);
    check(rc < 0 && (int)err->code == rc, "a rejection's code differs from err.code", err);
    check(strncmp(err->msg, label, n) == 0 && err->msg[n] == ':',
          "a rejection's message does not start with '<label>:'", err);
    check(us_err_missing_detail_count() == 0, "an error reached a caller without a message", err);
}

/* ---- the synthetic problem of the running-plan reader -------------------------- */
typedef struct synth_cfg {
    uint32_t model;
    uint16_t type;
    int batch;
    double share, mreq, thr, lat_ms;
} synth_cfg;

static const char *const SYNTH_MODELS[] = {"resnet50", "bert"};
/* type 0: a100-80gb, type 1: t4; creq = share */
static const synth_cfg SYNTH[] = {
    {0, 0, 8, 30, 20, 900, 8},  {0, 0, 32, 50, 25, 2000, 15}, {0, 1, 8, 60, 40, 300, 25},
    {1, 0, 4, 40, 30, 400, 10}, {1, 0, 16, 70, 45, 900, 18},  {1, 1, 2, 100, 70, 60, 30},
};
#define N_SYNTH (sizeof SYNTH / sizeof SYNTH[0])

static void synth_type(plan_problem *p, const gpu_catalog *cat, const char *key, const char *node,
                       int64_t count)
{
    usher_error err;
    plan_type *t = &p->t[p->nt++];
    check(gpu_catalog_find(cat, key, &t->g, &err) == USHER_OK, "catalog lacks a GPU", &err);
    snprintf(t->key, sizeof t->key, "%s", key);
    snprintf(t->node, sizeof t->node, "%s", node);
    t->count = count;
    t->max = count;
    t->price = t->g->price_per_hour;
    t->tdp_w = t->g->tdp_w;
    t->idle_frac = 0.25;
    t->line = p->nt;
}

void usher_fuzz_plan_problem(plan_problem *p, const gpu_catalog *cat)
{
    memset(p, 0, sizeof *p);
    snprintf(p->cluster, sizeof p->cluster, "cluster.yaml");
    snprintf(p->workload, sizeof p->workload, "workload.yaml");
    p->fixed = true;
    synth_type(p, cat, "a100-80gb", "", 2);
    synth_type(p, cat, "t4", "node-2", 4);
    const uint32_t n = sizeof SYNTH_MODELS / sizeof SYNTH_MODELS[0];
    p->m = us_calloc(n, sizeof *p->m);
    check(p->m != NULL, "out of memory building the problem", NULL);
    p->n = n;
    for (uint32_t i = 0; i < n; i++) {
        plan_model *m = &p->m[i];
        m->name = us_strdup(SYNTH_MODELS[i]);
        m->path = us_strdup(SYNTH_MODELS[i]);
        m->cfg = us_calloc(N_SYNTH, sizeof *m->cfg);
        check(m->name && m->path && m->cfg, "out of memory building the problem", NULL);
        m->rate = 100;
        m->slo_ms = 100;
        m->line = i + 1;
        for (size_t k = 0; k < N_SYNTH; k++) {
            const synth_cfg *s = &SYNTH[k];
            if (s->model != i)
                continue;
            m->cfg[m->n_cfg++] = (plan_cfg){.type = s->type,
                                            .batch = s->batch,
                                            .share = s->share,
                                            .creq = s->share,
                                            .mreq = s->mreq,
                                            .mreq_mb = s->mreq * 100,
                                            .thr = s->thr,
                                            .lat_ms = s->lat_ms,
                                            .power_w = 100};
        }
    }
}

/* ---- the three readers --------------------------------------------------------- */
static int fuzz_cluster(const char *text, size_t len, const gpu_catalog *cat)
{
    plan_problem p;
    memset(&p, 0, sizeof p);
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = plan_parse_cluster(text, len, LABEL_CLUSTER, cat, &p, &err);
    if (rc < 0) {
        check_rejection(rc, &err, LABEL_CLUSTER);
    } else {
        check(rc == USHER_OK, "a positive status", &err);
        check(p.nt >= 1 && p.nt <= PLAN_MAX_TYPES, "cluster type count out of range", NULL);
        check(p.m == NULL && p.n == 0, "a cluster declared models", NULL);
        for (uint32_t i = 0; i < p.nt; i++) {
            const plan_type *t = &p.t[i];
            check(t->g != NULL && t->key[0], "a type without a catalog GPU", NULL);
            check(p.fixed ? t->count >= 0 : t->count == -1,
                  "count neither fixed (>= 0) nor elastic (-1), or clusters mixed", NULL);
            check(t->max >= 0 && t->price >= 0 && t->idle_frac >= 0 && t->idle_frac <= 1,
                  "max, price or idle fraction out of range", NULL);
            check(t->line >= 1, "a type without a line", NULL);
            for (uint32_t k = 0; k < i; k++)
                check(strcmp(p.t[k].key, t->key) != 0 || strcmp(p.t[k].node, t->node) != 0,
                      "a (type, node) pair declared twice", NULL);
        }
    }
    plan_problem_free(&p);
    return rc == USHER_OK;
}

static int fuzz_workload(const char *text, size_t len)
{
    plan_problem p;
    memset(&p, 0, sizeof p);
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = plan_parse_workload(text, len, LABEL_WORKLOAD, &p, &err);
    if (rc < 0) {
        check_rejection(rc, &err, LABEL_WORKLOAD);
    } else {
        check(rc == USHER_OK, "a positive status", &err);
        check(p.n >= 1 && p.n <= PLAN_MAX_MODELS && p.m, "model count out of range", NULL);
        for (uint32_t i = 0; i < p.n; i++) {
            const plan_model *m = &p.m[i];
            check(m->name && m->name[0] && m->path && m->path[0], "a model without name or path",
                  NULL);
            check(m->rate >= 0 && m->slo_ms > 0 && m->priority >= 0 && m->priority <= 1000,
                  "rate, slo_ms or priority out of range", NULL);
            check(m->precision >= USHER_PRECISION_FP32 && m->precision <= USHER_PRECISION_INT8,
                  "unknown precision", NULL);
            check(m->n_cfg == 0 && m->cfg == NULL, "fields-only read profiled a model", NULL);
            check((m->group != NULL) == (m->merge_group > 0), "group without merge group", NULL);
            check(m->n_dims <= PF_DIMS_MAX && (m->dims != NULL) == (m->n_dims > 0),
                  "dims count out of range", NULL);
            for (uint32_t k = 0; k < m->n_dims; k++)
                check(m->dims[k].name && m->dims[k].name[0] && m->dims[k].value >= 0 &&
                          m->dims[k].value <= PF_DIM_VALUE_MAX,
                      "a dim without a name or out of range", NULL);
            /* quadratic, but 8 KiB of fuzz input holds a few hundred models at most */
            for (uint32_t k = 0; k < i; k++) {
                const plan_model *o = &p.m[k];
                check(strcmp(o->name, m->name) != 0, "two models with one name", NULL);
                if (m->group && o->group)
                    check((strcmp(m->group, o->group) == 0) == (m->merge_group == o->merge_group),
                          "merge groups disagree with group names", NULL);
            }
        }
    }
    plan_problem_free(&p);
    return rc == USHER_OK;
}

static int fuzz_running(const char *text, size_t len, const gpu_catalog *cat)
{
    plan_problem p;
    usher_fuzz_plan_problem(&p, cat);
    plan_solution s;
    check(plan_solution_init(&s, &p, "running") == USHER_OK, "out of memory", NULL);
    usher_error err;
    memset(&err, 0, sizeof err);
    uint32_t dropped = 0;
    int rc = plan_parse_running(text, len, LABEL_RUNNING, &p, &s, &dropped, &err);
    if (rc < 0) {
        check_rejection(rc, &err, LABEL_RUNNING);
    } else {
        check(rc == USHER_OK, "a positive status", &err);
        usher_error ce;
        memset(&ce, 0, sizeof ce);
        check(plan_check(&s, &p, &ce) == USHER_OK, "an accepted plan fails plan_check", &ce);
        check(s.n_models == p.n, "the solution lost its models", NULL);
    }
    plan_solution_free(&s);
    plan_problem_free(&p);
    return rc == USHER_OK;
}

/* Parsing the catalog under ASan costs about 3/4 of an input's time, so it
 * is read once and kept until usher_fuzz_plan_done. */
static gpu_catalog *kept;

void usher_fuzz_plan_done(void)
{
    gpu_catalog_free(kept);
    kept = NULL;
}

int usher_fuzz_plan_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    usher_error err;
    if (!kept)
        check(gpu_catalog_default(&kept, &err) == USHER_OK, "no default catalog", &err);
    size_t live = us_alloc_live_bytes();
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int accepted;
    switch (data[0] % 3) {
    case 0:
        accepted = fuzz_cluster(text, len, kept);
        break;
    case 1:
        accepted = fuzz_workload(text, len);
        break;
    default:
        accepted = fuzz_running(text, len, kept);
        break;
    }
    check(us_alloc_live_bytes() == live, "a planner input reader leaked", NULL);
    return accepted;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usher_fuzz_plan_one(data, size);
    return 0;
}
#endif
