/*
 * bench_sim_bound.c - an upper bound on the goodput any plan of a fixed
 * cluster can promise (experiment (c) of docs/simulator.md).
 *
 *   bench_sim_bound WORKLOAD.yaml CLUSTER.yaml
 *
 * Why: the paper's large-scale figure is USHER's goodput against an exact
 * optimiser (within ~1.6% at 1,000-6,000 GPUs). Our exact policy stops at 48
 * GPUs (GLPK), so at scale the comparison is with a bound instead, the
 * max-goodput counterpart of plan_cost_lower_bound (src/plan/solution.c).
 *
 * The bound: every replica holds its configuration's share of its GPU's
 * compute (creq = the MPS share; a GPU's replicas hold at most 100%) and
 * carries at most the configuration's thr (its rate alone under the queueing
 * cap). So a model served at x req/s by its best configuration per % of
 * share (e = max thr / creq) takes at least x / e % of the cluster's
 * 100 x GPUs %. Dropping memory, interference and whole GPUs leaves a
 * fractional knapsack: models by e, best first, each up to its rate, until
 * the cluster's % run out. Over several GPU types each model takes its best
 * e over all of them and the %s are pooled (looser, still a bound). It uses
 * the planner's own configurations (plan_read_workload: the same estimator
 * profiles and queueing caps every policy plans from), nothing else; a
 * time-sliced policy's GPU running share-100 configurations one batch at a
 * time is the same constraint (duty = sum of load / thr <= 1). It bounds
 * what a plan promises, not what the simulator then serves: under overload
 * admission keeps batches full and a replica can serve more than its
 * 99%-within-SLO cap (docs/simulator.md, experiment (a)).
 *
 * Prints one JSON line: gpus, rate, goodput_upper_bound, models_in_bound
 * (models the knapsack serves at all), seconds (reading and profiling).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/alloc.h"
#include "estimate/est.h"
#include "plan/plan.h"
#include "usher/estimate.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_sim_bound WORKLOAD.yaml CLUSTER.yaml\n");
        return 2;
    }
    usher_estimator_params ep = usher_estimator_default_params();
    ep.cache_entries = 65536;
    usher_estimator *e = NULL;
    usher_error err;
    plan_problem p = {0};
    double *eff = NULL;
    uint32_t *order = NULL;
    int rc = 1;
    double t0 = now_s();
    p.interference = true;
    if (usher_estimator_new(&ep, &e, &err) < 0 ||
        plan_read_cluster(argv[2], est_catalog(e), &p, &err) < 0 ||
        plan_read_workload(argv[1], e, &p, &err) < 0) {
        fprintf(stderr, "bench_sim_bound: %s\n", err.msg);
        goto out;
    }
    double secs = now_s() - t0, cap = 0;
    int64_t gpus = 0;
    for (uint16_t t = 0; t < p.nt; t++) {
        if (p.t[t].count < 0) {
            fprintf(stderr, "bench_sim_bound: %s: the cluster must be fixed (count, not max)\n",
                    argv[2]);
            goto out;
        }
        gpus += p.t[t].count;
    }
    cap = 100.0 * (double)gpus;
    eff = us_calloc(p.n ? p.n : 1, sizeof *eff);
    order = us_calloc(p.n ? p.n : 1, sizeof *order);
    if (!eff || !order) {
        fprintf(stderr, "bench_sim_bound: out of memory\n");
        goto out;
    }
    double rate = 0;
    for (uint32_t m = 0; m < p.n; m++) {
        order[m] = m;
        rate += p.m[m].rate;
        for (uint32_t c = 0; c < p.m[m].n_cfg; c++) {
            const plan_cfg *x = &p.m[m].cfg[c];
            if (x->thr > 0 && x->creq > 0 && p.t[x->type].count > 0 && x->thr / x->creq > eff[m])
                eff[m] = x->thr / x->creq;
        }
    }
    if (plan_sort_desc(order, p.n, eff) < 0) {
        fprintf(stderr, "bench_sim_bound: out of memory\n");
        goto out;
    }
    double bound = 0, left = cap;
    uint32_t in = 0;
    for (uint32_t i = 0; i < p.n && left > 0; i++) {
        uint32_t m = order[i];
        if (!(eff[m] > 0))
            break;
        double x = fmin(p.m[m].rate, left * eff[m]);
        bound += x;
        left -= x / eff[m];
        in += x > 0;
    }
    printf("{\"gpus\": %lld, \"rate\": %.9g, \"goodput_upper_bound\": %.9g, "
           "\"models_in_bound\": %u, \"models\": %u, \"seconds\": %.3f}\n",
           (long long)gpus, rate, bound, in, p.n, secs);
    rc = 0;
out:
    us_free(eff);
    us_free(order);
    plan_problem_free(&p);
    usher_estimator_free(e);
    return rc;
}
