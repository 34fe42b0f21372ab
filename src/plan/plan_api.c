/*
 * plan_api.c - the public planner API (include/usher/plan.h) over the
 * layer-6 pieces: inputs, profiles, a policy or re-planning, output.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "estimate/est.h"
#include "plan.h"
#include "usher/plan.h"

struct usher_plan {
    plan_problem p;
    plan_solution s;
    plan_run run;
};

usher_plan_params usher_plan_default_params(void)
{
    usher_plan_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void usher_plan_free(usher_plan *pl)
{
    if (!pl)
        return;
    plan_solution_free(&pl->s);
    plan_problem_free(&pl->p);
    us_free(pl);
}

int usher_plan_make(usher_estimator *e, const usher_plan_params *pp, usher_plan **out,
                    usher_error *err)
{
    *out = NULL;
    if (!e || !pp || !pp->workload || !pp->cluster)
        return us_err_set(err, USHER_ERR_INVALID,
                          "usher_plan_make: an estimator, a workload and a cluster are required");
    const plan_policy *pol = plan_policy_find(pp->policy ? pp->policy : "usher");
    if (!pol)
        return us_err_set(err, USHER_ERR_INVALID, "unknown policy '%.64s' (usher plan "
                          "--list-policies shows them)", pp->policy);
    usher_plan *pl = us_calloc(1, sizeof *pl);
    if (!pl)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int rc;
    double t0 = now_s();
    pl->p.interference = !pp->interference_off;
    if ((rc = plan_read_cluster(pp->cluster, est_catalog(e), &pl->p, err)) < 0 ||
        (rc = plan_read_workload(pp->workload, e, &pl->p, err)) < 0)
        goto fail;
    pl->run.profile_seconds = now_s() - t0;
    if (pp->exact_time_limit_ms)
        plan_exact_time_limit_ms = (int)(pp->exact_time_limit_ms > 3600000 ? 3600000
                                                                           : pp->exact_time_limit_ms);
    if (pp->running) {
        uint32_t kept = 0; /* the running plan's merge groups stay groups (--merge off: not) */
        double tm = now_s();
        if (pp->merge >= 0 &&
            (rc = plan_merge_running(e, pp->cluster, pp->running, &pl->p, &kept, err)) < 0)
            goto fail;
        pl->run.profile_seconds += now_s() - tm;
        plan_solution old;
        if (plan_solution_init(&old, &pl->p, "running") < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((rc = plan_read_running(pp->running, &pl->p, &old, &pl->run.dropped, err)) < 0) {
            plan_solution_free(&old);
            goto fail;
        }
        pl->run.replanned = true;
        snprintf(pl->run.replan_from, sizeof pl->run.replan_from, "%s", pp->running);
        pl->run.max_moves = pp->max_moves;
        pl->run.replicas_before = pl->run.dropped;
        for (uint32_t i = 0; i < old.n; i++)
            pl->run.replicas_before += old.g[i].n;
        if (plan_solution_init(&pl->s, &pl->p, "replan") < 0) {
            plan_solution_free(&old);
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto fail;
        }
        double t1 = now_s();
        rc = plan_replan(&pl->p, &old, pp->max_moves, &pl->s, err);
        pl->s.seconds = now_s() - t1;
        plan_solution_free(&old);
        if (rc < 0 || (rc = plan_check(&pl->s, &pl->p, err)) < 0)
            goto fail;
    } else if ((rc = plan_solve(&pl->p, pol, &pl->s, err)) < 0) {
        goto fail;
    } else if (pp->merge > 0 || (pp->merge == 0 && pol->solve == plan_usher)) {
        double t1 = now_s(); /* the search counts as profiling (docs/plan-json.md) */
        if ((rc = plan_merge_groups(e, pp->cluster, pol, &pl->p, &pl->s, err)) < 0)
            goto fail;
        pl->run.profile_seconds += now_s() - t1;
    }
    *out = pl;
    return USHER_OK;
fail:
    usher_plan_free(pl);
    return rc;
}

int usher_plan_get_summary(const usher_plan *pl, usher_plan_summary *out)
{
    if (!pl || !out)
        return USHER_ERR_INVALID;
    plan_totals t;
    plan_totals_of(&pl->s, &pl->p, &t);
    plan_merges_totals(&pl->p, &pl->s, &t);
    memset(out, 0, sizeof *out);
    out->policy = pl->s.policy;
    out->gpus = t.gpus;
    out->replicas = t.replicas;
    out->models = plan_merges_n_orig(&pl->p);
    out->cost_per_hour = t.cost;
    out->rate = t.rate;
    out->goodput = t.served;
    out->unserved = t.unserved;
    out->power_w = t.power_w;
    out->profile_seconds = pl->run.profile_seconds;
    out->plan_seconds = pl->s.seconds;
    out->moves = pl->s.moves;
    out->stopped = pl->s.stopped + pl->run.dropped;
    out->feasible = t.feasible;
    return USHER_OK;
}

int usher_plan_model_at(const usher_plan *pl, uint32_t i, usher_plan_model *out)
{
    if (!pl || !out || i >= plan_merges_n_orig(&pl->p))
        return USHER_ERR_INVALID;
    if (pl->p.merges) { /* the workload's models; a group's members at its served share */
        memset(out, 0, sizeof *out);
        int rc = plan_merges_orig(&pl->p, &pl->s, i, &out->name, &out->rate, &out->slo_ms,
                                  &out->goodput, &out->replicas);
        out->unserved = out->rate - out->goodput > 1e-9 ? out->rate - out->goodput : 0;
        return rc;
    }
    const plan_model *m = &pl->p.m[i];
    out->name = m->name;
    out->rate = m->rate;
    out->slo_ms = m->slo_ms;
    out->goodput = pl->s.served[i];
    out->unserved = m->rate - pl->s.served[i] > 1e-9 ? m->rate - pl->s.served[i] : 0;
    out->replicas = 0;
    for (uint32_t g = 0; g < pl->s.n; g++)
        for (uint32_t r = 0; r < pl->s.g[g].n; r++)
            out->replicas += pl->s.g[g].r[r].model == i;
    return USHER_OK;
}

int usher_plan_write_json(const usher_plan *pl, const char *path, usher_error *err)
{
    us_buf b;
    us_buf_init(&b, 512u << 20);
    int rc = plan_write_json(&pl->s, &pl->p, &pl->run, &b);
    if (rc < 0) {
        us_buf_free(&b);
        return us_err_set(err, rc, "plan.json: %s", rc == USHER_ERR_NOMEM ? "out of memory"
                                                                          : "larger than 512 MiB");
    }
    if (strcmp(path, "-") == 0) {
        size_t w = fwrite(b.data, 1, b.len, stdout);
        rc = w == b.len && fflush(stdout) == 0
                 ? USHER_OK
                 : us_err_set(err, USHER_ERR_IO, "standard output: write failed");
    } else {
        rc = us_file_write_atomic(path, b.data, b.len, err);
    }
    us_buf_free(&b);
    return rc;
}

void usher_plan_print(const usher_plan *pl, FILE *f) { plan_write_table(&pl->s, &pl->p, &pl->run, f); }

const char *usher_plan_policy(size_t i, const char **summary)
{
    const plan_policy *p = plan_policy_at(i);
    if (summary)
        *summary = p ? p->summary : NULL;
    return p ? p->name : NULL;
}
