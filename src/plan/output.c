/*
 * output.c - a plan as plan.json (schema in docs/plan-json.md) and as a
 * table for people (layer 6).
 *
 * plan.json is written pretty-printed, one replica per line, so that a diff
 * of two plans reads as the moves between them; `usher plan --replan` reads
 * it back (input.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "plan.h"
#include "usher/model.h"

#define PLAN_JSON_MAX (512u << 20)

static const char *objective_name(plan_objective o)
{
    return o == PLAN_MAX_GOODPUT ? "max-goodput" : "min-cost";
}

/* numbers in plan.json keep 6 significant digits: readable, stable in diffs */
static void num(us_json *j, const char *key, double v)
{
    us_json_key(j, key);
    char b[32];
    snprintf(b, sizeof b, "%.6g", isfinite(v) ? v : 0);
    double r = strtod(b, NULL);
    us_json_double(j, r);
}

static void str_or_null(us_json *j, const char *key, const char *v)
{
    us_json_key(j, key);
    if (v && *v)
        us_json_str(j, v);
    else
        us_json_null(j);
}

int plan_write_json(const plan_solution *s, const plan_problem *p, const plan_run *run,
                    us_buf *out)
{
    plan_totals t;
    plan_totals_of(s, p, &t);
    us_json j;
    us_json_init(&j, out);
    j.pretty = 4; /* replicas on one line each */
    us_json_obj_begin(&j);
    us_json_key(&j, "schema_version");
    us_json_int(&j, PLAN_SCHEMA_VERSION);
    us_json_key(&j, "generator");
    char gen[64];
    snprintf(gen, sizeof gen, "usher %s", usher_version());
    us_json_str(&j, gen);
    us_json_key(&j, "policy");
    us_json_str(&j, s->policy);
    us_json_key(&j, "objective");
    us_json_str(&j, objective_name(p->objective));
    str_or_null(&j, "workload", p->workload);
    str_or_null(&j, "cluster", p->cluster);
    us_json_key(&j, "feasible");
    us_json_bool(&j, t.feasible);
    str_or_null(&j, "note", s->note);
    num(&j, "profile_seconds", run ? run->profile_seconds : 0);
    num(&j, "plan_seconds", s->seconds);
    if (run && run->replanned) {
        us_json_key(&j, "replan");
        us_json_obj_begin(&j);
        str_or_null(&j, "from", run->replan_from);
        us_json_key(&j, "started");
        us_json_uint(&j, s->moves);
        us_json_key(&j, "stopped");
        us_json_uint(&j, s->stopped + run->dropped);
        us_json_key(&j, "replicas_before");
        us_json_uint(&j, run->replicas_before);
        us_json_key(&j, "max_moves");
        us_json_uint(&j, run->max_moves);
        us_json_obj_end(&j);
    }
    us_json_key(&j, "totals");
    us_json_obj_begin(&j);
    us_json_key(&j, "gpus");
    us_json_uint(&j, t.gpus);
    us_json_key(&j, "replicas");
    us_json_uint(&j, t.replicas);
    num(&j, "cost_per_hour", t.cost);
    num(&j, "rate", t.rate);
    num(&j, "goodput", t.served);
    num(&j, "unserved", t.unserved);
    num(&j, "compute_utilisation_pct", t.util_c);
    num(&j, "memory_utilisation_pct", t.util_m);
    num(&j, "power_w", t.power_w);
    num(&j, "energy_kwh_per_hour", t.power_w / 1000);
    num(&j, "joules_per_request", t.served > 0 ? t.power_w / t.served : 0);
    us_json_obj_end(&j);
    us_json_key(&j, "models");
    us_json_arr_begin(&j);
    for (uint32_t m = 0; m < p->n; m++) {
        const plan_model *pm = &p->m[m];
        uint32_t reps = 0;
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t r = 0; r < s->g[i].n; r++)
                reps += s->g[i].r[r].model == m;
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, pm->name);
        num(&j, "rate", pm->rate);
        num(&j, "slo_ms", pm->slo_ms);
        num(&j, "goodput", s->served[m]);
        num(&j, "unserved", pm->rate - s->served[m] > 1e-9 ? pm->rate - s->served[m] : 0);
        us_json_key(&j, "replicas");
        us_json_uint(&j, reps);
        us_json_key(&j, "priority");
        us_json_int(&j, pm->priority);
        str_or_null(&j, "group", pm->group);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_key(&j, "gpus");
    us_json_arr_begin(&j);
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *g = &s->g[i];
        const plan_type *ty = &p->t[g->type];
        us_json_obj_begin(&j);
        us_json_key(&j, "id");
        us_json_uint(&j, i);
        us_json_key(&j, "type");
        us_json_str(&j, ty->key);
        str_or_null(&j, "node", ty->node);
        num(&j, "price_per_hour", ty->price);
        num(&j, "compute_pct", g->used_c);
        num(&j, "memory_pct", g->used_m);
        num(&j, "power_w", plan_gpu_power(s, p, i));
        us_json_key(&j, "replicas");
        us_json_arr_begin(&j);
        for (uint32_t r = 0; r < g->n; r++) {
            const plan_replica *rp = &g->r[r];
            const plan_cfg *c = &p->m[rp->model].cfg[rp->cfg];
            us_json_obj_begin(&j);
            us_json_key(&j, "model");
            us_json_str(&j, p->m[rp->model].name);
            us_json_key(&j, "batch");
            us_json_int(&j, c->batch);
            num(&j, "share", c->share);
            num(&j, "memory_mb", c->mreq_mb);
            num(&j, "latency_ms", c->lat_ms);
            num(&j, "throughput", c->thr);
            num(&j, "load", rp->load);
            str_or_null(&j, "group", p->m[rp->model].group);
            us_json_obj_end(&j);
        }
        us_json_arr_end(&j);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_obj_end(&j);
    us_buf_putc(out, '\n');
    if (j.bad || !us_buf_ok(out))
        return out->oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT;
    return USHER_OK;
}

void plan_write_table(const plan_solution *s, const plan_problem *p, const plan_run *run, FILE *f)
{
    plan_totals t;
    plan_totals_of(s, p, &t);
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
    if (s->note[0])
        fprintf(f, "note: %s\n", s->note);
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
            fprintf(f, "       %-24s batch %3d  share %3.0f%%  %7.0f MB  %7.2f ms  %8.1f of %8.1f "
                       "req/s\n",
                    p->m[rp->model].name, c->batch, c->share, c->mreq_mb, c->lat_ms, rp->load,
                    c->thr);
        }
    }
    fprintf(f, "\n%-24s %10s %8s %10s %10s\n", "model", "rate", "slo_ms", "goodput", "unserved");
    for (uint32_t m = 0; m < p->n; m++) {
        const plan_model *pm = &p->m[m];
        double un = pm->rate - s->served[m];
        fprintf(f, "%-24s %10.6g %8.6g %10.6g %10.6g\n", pm->name, pm->rate, pm->slo_ms,
                s->served[m], un > 1e-9 ? un : 0);
    }
}
