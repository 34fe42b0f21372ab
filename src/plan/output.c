/*
 * output.c - a plan as plan.json and as a table for people (layer 6).
 *
 * plan.json is the contract with the server (src/planfile: its schema, its
 * one writer and its one reader): the solution is converted into a pf_plan
 * here and written by pf_write; `usher plan --replan` reads it back
 * (input.c).
 */
#include <math.h>
#include <stdio.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "plan.h"
#include "planfile/planfile.h"
#include "planfile/workload.h"
#include "usher/model.h"

static const char *objective_name(plan_objective o)
{
    return o == PLAN_MAX_GOODPUT ? "max-goodput" : o == PLAN_MAX_MIN ? "max-min" : "min-cost";
}

/* the model's figures are reported for the replicas of spatial policies of a
 * problem planned with it (time-sliced GPUs run one batch at a time: their
 * latency is the latency alone) */
static bool colocated(const plan_solution *s, const plan_problem *p)
{
    return p->interference && s->sharing != PLAN_SHARE_TIME;
}

/* the solution's GPUs and their replicas as plan.json's, idx[i] GPU i's index
 * on its type and node (plan_gpu_indices) */
static void file_gpus(const plan_solution *s, const plan_problem *p, const uint32_t *idx,
                      pf_gpu *g, pf_replica *r)
{
    bool co = colocated(s, p);
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *sg = &s->g[i];
        const plan_type *ty = &p->t[sg->type];
        g[i] = (pf_gpu){.type = ty->key,
                        .node = ty->node,
                        .has_index = true,
                        .index = idx[i],
                        .price_per_hour = ty->price,
                        .compute_pct = sg->used_c,
                        .memory_pct = sg->used_m,
                        .power_w = plan_gpu_power(s, p, i),
                        .r = r,
                        .n = sg->n};
        for (uint32_t k = 0; k < sg->n; k++) {
            const plan_replica *rp = &sg->r[k];
            const plan_model *pm = &p->m[rp->model];
            const plan_cfg *c = &pm->cfg[rp->cfg];
            *r++ = (pf_replica){.model = pm->name,
                                .batch = c->batch,
                                .share = c->share,
                                .memory_mb = c->mreq_mb,
                                .latency_ms = c->lat_ms,
                                .latency_colocated_ms = co && isfinite(rp->lat_co) ? rp->lat_co : 0,
                                .throughput_colocated =
                                    co && isfinite(rp->lat_co) && rp->lat_co > 0
                                        ? c->batch / rp->lat_co * 1e3
                                        : 0,
                                .throughput = c->thr_nom,
                                .latency_p99_ms = plan_queue_replica_p99(s, p, rp),
                                .load = rp->load,
                                .group = pm->group};
        }
    }
}

int plan_write_json(const plan_solution *s, const plan_problem *p, const plan_run *run,
                    us_buf *out)
{
    plan_totals t;
    plan_totals_of(s, p, &t);
    plan_merges_totals(p, s, &t);
    char gen[64];
    snprintf(gen, sizeof gen, "usher %s", usher_version());
    pf_plan f = {.generator = gen,
                 .policy = s->policy,
                 .objective = objective_name(p->objective),
                 .workload = p->workload,
                 .cluster = p->cluster,
                 .feasible = t.feasible,
                 .note = s->note,
                 .profile_seconds = run ? run->profile_seconds : 0,
                 .plan_seconds = s->seconds,
                 .has_replan = run && run->replanned,
                 .totals = {.gpus = t.gpus,
                            .replicas = t.replicas,
                            .cost_per_hour = t.cost,
                            .rate = t.rate,
                            .goodput = t.served,
                            .unserved = t.unserved,
                            .compute_utilisation_pct = t.util_c,
                            .memory_utilisation_pct = t.util_m,
                            .power_w = t.power_w,
                            .energy_kwh_per_hour = t.power_w / 1000,
                            .joules_per_request = t.served > 0 ? t.power_w / t.served : 0},
                 .n_models = p->n,
                 .n_gpus = s->n};
    if (f.has_replan)
        f.replan = (pf_replan){.from = run->replan_from,
                               .started = s->moves,
                               .stopped = s->stopped + run->dropped,
                               .replicas_before = run->replicas_before,
                               .max_moves = run->max_moves,
                               .lost_gpus = s->lost_gpus,
                               .lost_replicas = s->lost_replicas};
    uint32_t reps = 0;
    for (uint32_t i = 0; i < s->n; i++)
        reps += s->g[i].n;
    f.m = us_calloc(p->n ? p->n : 1, sizeof *f.m);
    /* the dims each model was planned at (workload.yaml dims) */
    uint32_t n_dims = 0;
    for (uint32_t m = 0; m < p->n; m++)
        n_dims += p->m[m].n_dims;
    pf_model_dim *dims = us_calloc(n_dims ? n_dims : 1, sizeof *dims);
    /* cluster.yaml's nodes, as declared (labels sorted by key) */
    pf_node *nodes = p->n_nodes ? us_calloc(p->n_nodes, sizeof *nodes) : NULL;
    size_t n_lab = 0;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        n_lab += 2 * p->nodes[i].n_labels;
    const char **lab = us_calloc(n_lab ? n_lab : 1, sizeof *lab);
    for (uint32_t i = 0, k = 0; nodes && lab && i < p->n_nodes; i++) {
        nodes[i] = (pf_node){.name = p->nodes[i].name,
                             .rack = p->nodes[i].rack,
                             .zone = p->nodes[i].zone,
                             .labels = lab + k,
                             .n_labels = p->nodes[i].n_labels};
        for (uint32_t l = 0; l < 2 * p->nodes[i].n_labels; l++)
            lab[k++] = p->nodes[i].labels[l];
    }
    f.nodes = nodes;
    f.n_nodes = nodes ? p->n_nodes : 0;
    f.g = us_calloc(s->n ? s->n : 1, sizeof *f.g);
    pf_replica *r = us_calloc(reps ? reps : 1, sizeof *r);
    uint32_t *idx = us_calloc(s->n ? s->n : 1, sizeof *idx);
    int rc = USHER_ERR_NOMEM;
    if (f.m && f.g && r && idx && lab && dims && (nodes || !p->n_nodes) &&
        plan_gpu_indices(s, p, idx) == USHER_OK) {
        for (uint32_t m = 0; m < p->n; m++) {
            const plan_model *pm = &p->m[m];
            double un = pm->rate - s->served[m];
            f.m[m] = (pf_model){.name = pm->name,
                                .rate = pm->rate,
                                .slo_ms = pm->slo_ms,
                                .goodput = s->served[m],
                                .unserved = un > 1e-9 ? un : 0,
                                .priority = pm->priority,
                                .group = pm->group,
                                .spread = pm->spread ? pf_spread_name((pf_spread)pm->spread)
                                                     : NULL};
        }
        for (uint32_t m = 0, k = 0; m < p->n; m++) {
            f.m[m].dims = p->m[m].n_dims ? dims + k : NULL;
            f.m[m].n_dims = p->m[m].n_dims;
            for (uint32_t d = 0; d < p->m[m].n_dims; d++, k++)
                dims[k] = (pf_model_dim){.name = p->m[m].dims[d].name,
                                         .value = p->m[m].dims[d].value};
        }
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t k = 0; k < s->g[i].n; k++)
                f.m[s->g[i].r[k].model].replicas++;
        file_gpus(s, p, idx, f.g, r);
        pf_model *alone = f.m; /* with merge groups: the workload's models instead */
        rc = p->merges ? plan_merges_file(p, s, &f) : USHER_OK;
        if (rc == USHER_OK)
            rc = pf_write(&f, out);
        if (p->merges) {
            us_free(f.m);
            plan_merges_file_free(&f);
            f.m = alone;
        }
    }
    us_free(lab);
    us_free(dims);
    us_free(nodes);
    us_free(idx);
    us_free(r);
    us_free(f.g);
    us_free(f.m);
    return rc;
}

/* the failure domains the workload asks for: "node", "node or zone", ... */
static const char *spread_levels(const plan_problem *p)
{
    bool lv[4] = {0};
    for (uint32_t m = 0; m < p->n; m++)
        lv[p->m[m].spread & 3] = true;
    return lv[1] && lv[2] && lv[3] ? "node, rack or zone"
           : lv[1] && lv[2]        ? "node or rack"
           : lv[1] && lv[3]        ? "node or zone"
           : lv[2] && lv[3]        ? "rack or zone"
           : lv[1]                 ? "node"
           : lv[2]                 ? "rack"
                                   : "zone";
}

void plan_write_table(const plan_solution *s, const plan_problem *p, const plan_run *run, FILE *f)
{
    plan_totals t;
    plan_totals_of(s, p, &t);
    plan_merges_totals(p, s, &t);
    fprintf(f, "policy %s, objective %s: %u GPU%s, %u replicas, $%.2f/h, %.6g of %.6g req/s "
               "served%s\n",
            s->policy, objective_name(p->objective), t.gpus, t.gpus == 1 ? "" : "s", t.replicas,
            t.cost, t.served, t.rate, t.feasible ? " (every SLO met)" : "");
    fprintf(f, "utilisation: compute %.0f%%, memory %.0f%%; power %.0f W (%.3g J/request); "
               "planning %.3g s (profiles %.3g s)\n",
            t.util_c, t.util_m, t.power_w, t.served > 0 ? t.power_w / t.served : 0, s->seconds,
            run ? run->profile_seconds : 0);
    if (run && run->replanned)
        fprintf(f, "re-plan from %s: %u replicas started (new, moved or restarted), %u of %u "
                   "stopped\n",
                run->replan_from, s->moves, s->stopped + run->dropped, run->replicas_before);
    if (run && run->replanned && s->lost_gpus)
        fprintf(f, "lost: %u GPU%s of the running plan (lost, drained or gone from the "
                   "cluster) held %u replicas; their load is placed again where there is room\n",
                s->lost_gpus, s->lost_gpus == 1 ? "" : "s", s->lost_replicas);
    if (s->note[0])
        fprintf(f, "note: %s\n", s->note);
    if (s->spread_added)
        fprintf(f, "spread: %u replica%s added so that no %s holds every replica of a model "
                   "asking for spread (anti-affinity)\n",
                s->spread_added, s->spread_added == 1 ? "" : "s", spread_levels(p));
    plan_merges_print(p, f);
    bool co = colocated(s, p);
    if (!p->interference)
        fprintf(f, "interference: off (latencies alone, as before the model)\n");
    else if (s->sharing == PLAN_SHARE_TIME)
        fprintf(f, "interference: time-sliced, one batch at a time (latencies alone)\n");
    else
        fprintf(f, "interference: latency alone and beside the GPU's other replicas (model "
                   "'%s'); load of its cap beside them\n",
                if_model_default()->name);
    fprintf(f, "queueing: %s\n",
            p->queue_off ? "off (loads up to the throughput back to back)"
                         : "each load within the rate up to which the runtime's batcher meets "
                           "the SLO for 99% of requests (measured: queueing, batching, compute)");
    fprintf(f, "\n%-4s %-16s %-12s %8s %7s %8s\n", "GPU", "type", "node", "compute", "memory",
            "$/h");
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *g = &s->g[i];
        const plan_type *ty = &p->t[g->type];
        fprintf(f, "%-4u %-16s %-12s %7.0f%% %6.0f%% %8.2f\n", i, ty->key,
                ty->node[0] ? ty->node : "-", g->used_c, g->used_m, ty->price);
        for (uint32_t r = 0; r < g->n; r++) {
            const plan_replica *rp = &g->r[r];
            const plan_cfg *c = &p->m[rp->model].cfg[rp->cfg];
            char beside[32] = "";
            if (co)
                snprintf(beside, sizeof beside, " %8.2f", rp->lat_co);
            fprintf(f, "       %-24s batch %3d  share %3.0f%%  %7.0f MB  %7.2f%s ms  %8.1f of %8.1f "
                       "req/s  p99 %.4g ms\n",
                    p->m[rp->model].name, c->batch, c->share, c->mreq_mb, c->lat_ms, beside,
                    rp->load, co ? rp->thr_co : c->thr, plan_queue_replica_p99(s, p, rp));
        }
    }
    fprintf(f, "\n%-24s %10s %8s %10s %10s\n", "model", "rate", "slo_ms", "goodput", "unserved");
    for (uint32_t i = 0; p->merges && i < plan_merges_n_orig(p); i++) {
        const char *name;
        double rate, slo, sv;
        uint32_t reps;
        plan_merges_orig(p, s, i, &name, &rate, &slo, &sv, &reps);
        fprintf(f, "%-24s %10.6g %8.6g %10.6g %10.6g\n", name, rate, slo, sv,
                rate - sv > 1e-9 ? rate - sv : 0);
    }
    for (uint32_t m = 0; !p->merges && m < p->n; m++) {
        const plan_model *pm = &p->m[m];
        double un = pm->rate - s->served[m];
        fprintf(f, "%-24s %10.6g %8.6g %10.6g %10.6g\n", pm->name, pm->rate, pm->slo_ms,
                s->served[m], un > 1e-9 ? un : 0);
    }
}
