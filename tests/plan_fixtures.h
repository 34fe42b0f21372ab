/*
 * plan_fixtures.h - what the planner's tests share (test_plan.c,
 * test_plan_ops.c, test_plan_baselines.c): the estimator and the zoo models,
 * alive for one test (the harness counts what a test leaves allocated:
 * fixtures_free() at the end of each), a small deterministic generator (tests
 * must not depend on libc's rand), and profiling that widens an SLO no GPU
 * type meets. Included once per test program; everything is static.
 */
#ifndef USHER_TESTS_PLAN_FIXTURES_H
#define USHER_TESTS_PLAN_FIXTURES_H

#include <stdio.h>

#include "core/alloc.h"
#include "plan/plan.h"
#include "test.h"
#include "usher/estimate.h"
#include "usher/model.h"

static usher_estimator *e;
static inline usher_estimator *est(void)
{
    if (!e) {
        usher_estimator_params ep = usher_estimator_default_params();
        ep.cache_entries = 65536;
        usher_error err;
        if (usher_estimator_new(&ep, &e, &err) < 0)
            fprintf(stderr, "  %s\n", err.msg);
    }
    return e;
}

static const char *const zoo[] = {"resnet18",  "resnet50",     "mobilenet-v2", "efficientnet-b0",
                                  "squeezenet", "shufflenet-v2", "densenet121",  "vgg16",
                                  "bert-base",  "distilbert",    "inception-v3", "alexnet"};
#define N_ZOO (sizeof zoo / sizeof zoo[0])

static usher_model *cache[N_ZOO];
static inline usher_model *zoo_model(size_t i)
{
    if (!cache[i]) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/zoo/%s.onnx", zoo[i]);
        usher_error err;
        if (usher_model_load(test_path(test_source_dir(), rel), NULL, &cache[i], &err) < 0)
            fprintf(stderr, "  %s\n", err.msg);
    }
    return cache[i];
}

static inline void fixtures_free(void)
{
    for (size_t i = 0; i < N_ZOO; i++) {
        usher_model_free(cache[i]);
        cache[i] = NULL;
    }
    usher_estimator_free(e);
    e = NULL;
}

static uint64_t rng_state;
static inline double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static inline int irand(int lo, int hi) { return lo + (int)(urand() * (hi - lo + 1)); }

/* profile p's models (ms[i] for model i); a model no GPU type can serve within
 * its SLO gets 3 x PLAN_SLO_FACTOR x its fastest latency and all are profiled
 * again (at most 4 rounds); 0 or -1 with the error printed */
static inline int profile(plan_problem *p, usher_model **ms)
{
    usher_error err;
    for (int round = 0; round < 4; round++) {
        if (plan_problem_profile(p, est(), ms, &err) < 0) {
            fprintf(stderr, "  %s\n", err.msg);
            return -1;
        }
        bool again = false;
        for (uint32_t i = 0; i < p->n; i++)
            if (p->m[i].n_cfg == 0) {
                p->m[i].slo_ms = 3 * PLAN_SLO_FACTOR * p->m[i].fastest_ms;
                again = true;
            }
        if (!again)
            return 0;
        for (uint32_t i = 0; i < p->n; i++) {
            us_free(p->m[i].cfg);
            p->m[i].cfg = NULL;
            p->m[i].n_cfg = 0;
        }
    }
    return -1;
}

#endif
