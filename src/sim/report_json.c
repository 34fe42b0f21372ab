/*
 * report_json.c - the simulator's report as JSON and as a table (layer 7,
 * see sim.h; the fields are documented in docs/simulator.md).
 *
 * The JSON is a pure function of the report: numbers with 6 significant
 * digits, models and GPUs in plan/workload order, no wall-clock figure
 * unless asked for, so the same plan, workload and seed give the same
 * bytes (tests/test_sim.c checks it).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "sim/sim.h"

/* 6 significant digits: what the figures are worth, and short lines */
static void num(us_json *j, const char *key, double v)
{
    us_json_key(j, key);
    if (!isfinite(v)) {
        us_json_null(j);
        return;
    }
    char s[32];
    snprintf(s, sizeof s, "%.6g", v);
    us_json_double(j, strtod(s, NULL));
}

static void count(us_json *j, const char *key, uint64_t v)
{
    us_json_key(j, key);
    us_json_uint(j, v);
}

static void model_json(us_json *j, const sim_model_report *m)
{
    us_json_obj_begin(j);
    us_json_key(j, "name");
    us_json_str(j, m->name);
    if (m->group[0]) { /* absent without merge groups: the bytes of such runs are as before */
        us_json_key(j, "group");
        us_json_str(j, m->group);
    }
    num(j, "rate", m->rate);
    num(j, "slo_ms", m->slo_ms);
    count(j, "replicas", m->replicas);
    count(j, "requests", m->requests);
    count(j, "served", m->served);
    num(j, "goodput", m->goodput);
    num(j, "slo_attainment_pct", m->attainment_pct);
    num(j, "mean_ms", m->mean_ms);
    num(j, "p50_ms", m->p50_ms);
    num(j, "p99_ms", m->p99_ms);
    num(j, "p999_ms", m->p999_ms);
    num(j, "max_ms", m->max_ms);
    num(j, "mean_queue_ms", m->mean_queue_ms);
    count(j, "late", m->late);
    count(j, "rejected", m->rejected);
    count(j, "shed_by_scale", m->shed);
    count(j, "probes", m->probes);
    count(j, "expired", m->expired);
    count(j, "batches", m->batches);
    num(j, "mean_batch", m->batches ? (double)m->batch_rows / (double)m->batches : 0);
    num(j, "latency_scale", m->latency_scale);
    us_json_obj_end(j);
}

/* re-planning in the loop: the costs charged, the totals, every re-plan */
static void replans_json(us_json *j, const sim_report *r)
{
    us_json_key(j, "replanning");
    us_json_obj_begin(j);
    num(j, "every_s", r->replan_every_s);
    num(j, "worker_start_s", r->start_s);
    num(j, "model_load_s", r->load_s);
    num(j, "share_change_s", r->share_s);
    count(j, "replans", r->n_replans);
    count(j, "requests_during_changes", r->replan_requests);
    count(j, "lost_during_changes", r->replan_lost);
    count(j, "late_during_changes", r->replan_late);
    us_json_key(j, "changes");
    us_json_arr_begin(j);
    for (uint32_t i = 0; i < r->n_replans; i++) {
        const sim_replan_report *x = &r->replans[i];
        us_json_obj_begin(j);
        num(j, "t_s", x->t_s);
        us_json_key(j, "changed");
        us_json_bool(j, x->changed);
        num(j, "ready_s", x->ready_s);
        count(j, "kept", x->kept);
        count(j, "started", x->started);
        count(j, "moved", x->moved);
        count(j, "reshared", x->reshared);
        count(j, "stopped", x->stopped);
        count(j, "gpus", x->gpus);
        num(j, "cost_per_hour", x->cost_per_hour);
        count(j, "requests", x->requests);
        count(j, "lost", x->lost);
        count(j, "late", x->late);
        us_json_obj_end(j);
    }
    us_json_arr_end(j);
    us_json_obj_end(j);
}

static void series_json(us_json *j, const sim_report *r)
{
    us_json_key(j, "series");
    us_json_obj_begin(j);
    num(j, "interval_s", (double)r->interval_ns / 1e9);
    us_json_key(j, "models");
    us_json_arr_begin(j);
    for (uint32_t k = 0; k < r->n_models; k++) {
        us_json_obj_begin(j);
        us_json_key(j, "name");
        us_json_str(j, r->m[k].name);
        us_json_key(j, "goodput");
        us_json_arr_begin(j);
        /* the last interval may be shorter than the others */
        for (uint32_t i = 0; i < r->n_intervals; i++) {
            double t0 = (double)i * (double)r->interval_ns / 1e9;
            double len = r->duration_s - t0 < (double)r->interval_ns / 1e9
                             ? r->duration_s - t0
                             : (double)r->interval_ns / 1e9;
            char s[32];
            snprintf(s, sizeof s, "%.6g",
                     len > 0 ? r->series_good[(size_t)i * r->n_models + k] / len : 0.0);
            us_json_double(j, strtod(s, NULL));
        }
        us_json_arr_end(j);
        us_json_key(j, "slo_attainment_pct");
        us_json_arr_begin(j);
        for (uint32_t i = 0; i < r->n_intervals; i++) {
            uint32_t n = r->series_requests[(size_t)i * r->n_models + k];
            if (!n) {
                us_json_null(j);
                continue;
            }
            char s[32];
            snprintf(s, sizeof s, "%.6g",
                     100.0 * r->series_good[(size_t)i * r->n_models + k] / n);
            us_json_double(j, strtod(s, NULL));
        }
        us_json_arr_end(j);
        us_json_obj_end(j);
    }
    us_json_arr_end(j);
    if (r->series_gpu_pct) {
        us_json_key(j, "gpus");
        us_json_arr_begin(j);
        for (uint32_t g = 0; g < r->n_gpus; g++) {
            us_json_obj_begin(j);
            count(j, "id", g);
            us_json_key(j, "compute_utilisation_pct");
            us_json_arr_begin(j);
            for (uint32_t i = 0; i < r->n_intervals; i++) {
                char s[32];
                snprintf(s, sizeof s, "%.6g", r->series_gpu_pct[(size_t)i * r->n_gpus + g]);
                us_json_double(j, strtod(s, NULL));
            }
            us_json_arr_end(j);
            us_json_obj_end(j);
        }
        us_json_arr_end(j);
    }
    us_json_obj_end(j);
}

int sim_report_json(const sim_report *r, bool wall, us_buf *out)
{
    us_json j;
    us_json_init(&j, out);
    j.pretty = 2;
    us_json_obj_begin(&j);
    count(&j, "report_version", 1);
    us_json_key(&j, "plan");
    us_json_str(&j, r->plan);
    us_json_key(&j, "workload");
    us_json_str(&j, r->workload);
    if (r->arrivals[0]) {
        us_json_key(&j, "arrivals");
        us_json_str(&j, r->arrivals);
    }
    count(&j, "seed", r->seed);
    num(&j, "rate_scale", r->rate_scale);
    if (r->service_cv > 0) /* absent at 0: the bytes of runs without variance are as before */
        num(&j, "service_cv", r->service_cv);
    us_json_key(&j, "interference");
    us_json_bool(&j, r->interference);
    num(&j, "duration_s", r->duration_s);
    num(&j, "end_s", r->end_s);
    count(&j, "requests", r->requests);
    count(&j, "served", r->served);
    num(&j, "goodput", r->goodput);
    num(&j, "slo_attainment_pct", r->attainment_pct);
    count(&j, "late", r->late);
    count(&j, "rejected", r->rejected);
    count(&j, "expired", r->expired);
    count(&j, "gpus_used", r->gpus_used);
    num(&j, "cost_per_hour", r->cost_per_hour);
    num(&j, "compute_utilisation_pct", r->compute_pct);
    num(&j, "memory_utilisation_pct", r->memory_pct);
    num(&j, "power_w", r->power_w);
    num(&j, "energy_j_per_request", r->energy_j_per_request);
    num(&j, "latency_percentile_rel_error", SIM_HIST_REL_ERROR);
    count(&j, "events", r->events);
    count(&j, "interference_predictions", r->coloc_predictions);
    count(&j, "interference_cache_hits", r->coloc_cache_hits);
    us_json_key(&j, "models");
    us_json_arr_begin(&j);
    for (uint32_t i = 0; i < r->n_models; i++)
        model_json(&j, &r->m[i]);
    us_json_arr_end(&j);
    us_json_key(&j, "gpus");
    us_json_arr_begin(&j);
    for (uint32_t i = 0; i < r->n_gpus; i++) {
        const sim_gpu_report *g = &r->g[i];
        us_json_obj_begin(&j);
        count(&j, "id", i);
        us_json_key(&j, "type");
        us_json_str(&j, g->type);
        count(&j, "replicas", g->replicas);
        num(&j, "compute_utilisation_pct", g->compute_pct);
        num(&j, "memory_utilisation_pct", g->memory_pct);
        num(&j, "price_per_hour", g->price_per_hour);
        num(&j, "power_w", g->power_w);
        count(&j, "batches", g->batches);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    if (r->n_groups) { /* the merge groups' runs (absent without groups) */
        us_json_key(&j, "merge_groups");
        us_json_arr_begin(&j);
        for (uint32_t i = 0; i < r->n_groups; i++) {
            const sim_group_report *g = &r->groups[i];
            us_json_obj_begin(&j);
            us_json_key(&j, "name");
            us_json_str(&j, g->name);
            us_json_key(&j, "kind");
            us_json_str(&j, g->kind);
            us_json_key(&j, "members");
            us_json_arr_begin(&j);
            for (uint32_t k = 0; k < r->n_models; k++)
                if (strcmp(r->m[k].group, g->name) == 0)
                    us_json_str(&j, r->m[k].name);
            us_json_arr_end(&j);
            count(&j, "replicas", g->replicas);
            count(&j, "batches", g->batches);
            count(&j, "mixed_batches", g->mixed_batches);
            num(&j, "mean_batch", g->batches ? (double)g->rows / (double)g->batches : 0);
            count(&j, "filler_rows", g->filler_rows);
            us_json_obj_end(&j);
        }
        us_json_arr_end(&j);
    }
    if (r->n_intervals)
        series_json(&j, r);
    if (r->replan_every_s > 0)
        replans_json(&j, r);
    if (wall) {
        us_json_key(&j, "wall");
        us_json_obj_begin(&j);
        num(&j, "seconds", r->wall_s);
        num(&j, "requests_per_second", r->wall_s > 0 ? (double)r->requests / r->wall_s : 0);
        us_json_obj_end(&j);
    }
    us_json_obj_end(&j);
    us_buf_putc(out, '\n');
    if (j.bad)
        return USHER_ERR_INTERNAL;
    if (out->oom)
        return USHER_ERR_NOMEM;
    if (out->overflow)
        return USHER_ERR_LIMIT;
    return USHER_OK;
}

void sim_report_print(const sim_report *r, FILE *f)
{
    fprintf(f, "plan %s, workload %s, %.6g s of arrivals (%s%sseed %llu, rates x %g, "
               "interference %s); the last request ended at %.6g s\n",
            r->plan, r->workload, r->duration_s, r->arrivals, r->arrivals[0] ? ", " : "",
            (unsigned long long)r->seed, r->rate_scale,
            r->interference ? "on" : "off", r->end_s);
    if (r->service_cv > 0)
        fprintf(f, "batch service times lognormal around the profiled ones, CV %g\n",
                r->service_cv);
    fprintf(f, "%-24s %5s %10s %10s %9s %7s %9s %9s %9s %9s %9s %8s %8s\n", "model", "repl",
            "requests", "goodput/s", "in SLO", "SLO ms", "mean ms", "p50 ms", "p99 ms",
            "p99.9 ms", "queue ms", "rejected", "late");
    for (uint32_t i = 0; i < r->n_models; i++) {
        const sim_model_report *m = &r->m[i];
        fprintf(f, "%-24.24s %5u %10llu %10.4g %8.2f%% %7.4g %9.4g %9.4g %9.4g %9.4g %9.4g "
                   "%8llu %8llu\n",
                m->name, m->replicas, (unsigned long long)m->requests, m->goodput,
                m->attainment_pct, m->slo_ms, m->mean_ms, m->p50_ms, m->p99_ms, m->p999_ms,
                m->mean_queue_ms, (unsigned long long)m->rejected, (unsigned long long)m->late);
    }
    fprintf(f, "%-24s %5s %10llu %10.4g %8.2f%%\n", "total", "",
            (unsigned long long)r->requests, r->goodput, r->attainment_pct);
    for (uint32_t i = 0; i < r->n_groups; i++) {
        const sim_group_report *g = &r->groups[i];
        fprintf(f, "merge group %s (%s, %u replicas) serves", g->name, g->kind, g->replicas);
        for (uint32_t k = 0, n = 0; k < r->n_models; k++)
            if (strcmp(r->m[k].group, g->name) == 0)
                fprintf(f, "%s %s", n++ ? "," : "", r->m[k].name);
        fprintf(f, ": %llu merged runs, %llu of them for two members or more, %.3g rows a run, "
                   "%llu filler rows\n", (unsigned long long)g->batches,
                (unsigned long long)g->mixed_batches,
                g->batches ? (double)g->rows / (double)g->batches : 0,
                (unsigned long long)g->filler_rows);
    }
    fprintf(f, "served %llu, late %llu, rejected at admission %llu, expired in the queue %llu\n",
            (unsigned long long)r->served, (unsigned long long)r->late,
            (unsigned long long)r->rejected, (unsigned long long)r->expired);
    fprintf(f, "GPUs used %u, $%.4g/h, compute utilisation %.1f%% and memory %.1f%% (means), "
               "%.4g J per request (the plan's %.4g W)\n",
            r->gpus_used, r->cost_per_hour, r->compute_pct, r->memory_pct,
            r->energy_j_per_request, r->power_w);
    if (r->n_gpus <= 32)
        for (uint32_t i = 0; i < r->n_gpus; i++)
            fprintf(f, "  gpu %-3u %-20.20s %3u replicas  compute %5.1f%%  memory %5.1f%%\n", i,
                    r->g[i].type, r->g[i].replicas, r->g[i].compute_pct, r->g[i].memory_pct);
    if (r->replan_every_s > 0) {
        fprintf(f, "re-planned every %.6g s (worker start %.3g s, model load %.3g s, share "
                   "change %.3g s): %u re-plans; during the changes %llu requests arrived, "
                   "%llu lost, %llu late\n",
                r->replan_every_s, r->start_s, r->load_s, r->share_s, r->n_replans,
                (unsigned long long)r->replan_requests, (unsigned long long)r->replan_lost,
                (unsigned long long)r->replan_late);
        if (r->n_replans <= 64) {
            fprintf(f, "  %10s %10s %5s %7s %5s %8s %7s %5s %9s %9s %8s %8s\n", "at s",
                    "ready s", "kept", "started", "moved", "reshared", "stopped", "GPUs",
                    "$/h", "requests", "lost", "late");
            for (uint32_t i = 0; i < r->n_replans; i++) {
                const sim_replan_report *x = &r->replans[i];
                fprintf(f, "  %10.6g %10.6g %5u %7u %5u %8u %7u %5u %9.4g %9llu %8llu %8llu%s\n",
                        x->t_s, x->ready_s, x->kept, x->started, x->moved, x->reshared,
                        x->stopped, x->gpus, x->cost_per_hour, (unsigned long long)x->requests,
                        (unsigned long long)x->lost, (unsigned long long)x->late,
                        x->changed ? "" : "  (kept the plan)");
            }
        }
    }
    if (r->wall_s > 0)
        fprintf(f, "simulated %llu requests (%llu events) in %.3g s: %.3g requests per second\n",
                (unsigned long long)r->requests, (unsigned long long)r->events, r->wall_s,
                (double)r->requests / r->wall_s);
}
