/*
 * metrics.c - Prometheus text exposition (GET /metrics) and per-model
 * statistics (GET /v2/models[/m]/stats), layer 8.
 *
 * The request ledger (RELIABILITY.md LEDGER-2) is readable from here:
 * usher_requests_received_total == sum over outcomes of usher_requests_total
 * + usher_requests_in_flight, per model, at every scrape; requests refused
 * before they reached a model's queue (malformed bodies) are counted apart
 * in usher_requests_invalid_total.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "server/grpc.h"
#include "server/http.h"
#include "server/srv.h"

static const double edges[SRV_LAT_BUCKETS] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                                              0.2,   0.5,   1,     2,    5,    10,  30};

static void head(us_buf *b, const char *name, const char *type, const char *help)
{
    us_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with one sample per model: the uint64_t field of rt_model_stats at offset off. */
static void per_model(us_buf *b, const usher_server *s, const rt_model_stats *st,
                      const char *name, const char *type, const char *help, size_t off)
{
    head(b, name, type, help);
    for (size_t i = 0; i < s->n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st[i] + off, sizeof v);
        us_buf_printf(b, "%s{model=\"%s\"} %llu\n", name, s->m[i].rm->name, (unsigned long long)v);
    }
}
#define STAT(field) offsetof(rt_model_stats, field)

/* A gauge with one sample per served model: the double field of rt_model_stats at offset
 * off, times mul, with that many decimals. */
static void per_model_gauge(us_buf *b, const usher_server *s, const rt_model_stats *st,
                            const char *name, const char *help, size_t off, double mul,
                            int decimals)
{
    head(b, name, "gauge", help);
    for (size_t i = 0; i < s->n; i++) {
        if (s->m[i].error[0])
            continue;
        double v;
        memcpy(&v, (const char *)&st[i] + off, sizeof v);
        us_buf_printf(b, "%s{model=\"%s\"} %.*f\n", name, s->m[i].rm->name, decimals, v * mul);
    }
}

/* The labels of one replica's samples: model; replica, its index among the model's (the
 * plan file's order); gpu, the plan file's GPU (its index in gpus[]; none without a plan
 * file); device, where its worker runs; batch, the size its predictions and its timed runs
 * are for. */
static void replica_labels(char *out, size_t n, const srv_model *m, const rt_model_cfg *cfg,
                           int i, int rows)
{
    char gpu[24] = "";
    if (m->gpu[i] >= 0)
        snprintf(gpu, sizeof gpu, ",gpu=\"%d\"", m->gpu[i]);
    snprintf(out, n, "model=\"%s\",replica=\"%d\"%s,device=\"%s\",batch=\"%d\"",
             m->rm->name, i, gpu, cfg->place[i].device[0] ? cfg->place[i].device : cfg->device,
             rows);
}

typedef enum {
    REP_PREDICTED,
    REP_COLOCATED,
    REP_OBSERVED,
    REP_DURATION,
    REP_BATCHES,
    REP_DEATHS
} rep_metric;

/* One per-replica family over every served model's current replicas (docs/serve.md,
 * Metrics); a gauge whose value is not known has no sample. */
static void per_replica(us_buf *b, const usher_server *s, rep_metric which)
{
    for (size_t k = 0; k < s->n; k++) {
        const srv_model *m = &s->m[k];
        if (m->error[0] || !m->rt)
            continue;
        const rt_model_cfg *cfg = rt_model_config(m->rt);
        for (int i = 0; i < cfg->replicas && i < m->replicas; i++) {
            rt_replica_stats rs;
            if (!rt_model_replica_stats(m->rt, i, &rs))
                continue;
            char l[512];
            replica_labels(l, sizeof l, m, cfg, i, rs.rows);
            if (which == REP_PREDICTED && m->plan_lat_ms[i] > 0)
                us_buf_printf(b, "usher_replica_batch_latency_predicted_seconds{%s} %.9g\n", l,
                              m->plan_lat_ms[i] * 1e-3);
            else if (which == REP_COLOCATED && m->plan_coloc_ms[i] > 0)
                us_buf_printf(b,
                              "usher_replica_batch_latency_predicted_colocated_seconds{%s} "
                              "%.9g\n",
                              l, m->plan_coloc_ms[i] * 1e-3);
            else if (which == REP_OBSERVED && rs.runs)
                us_buf_printf(b, "usher_replica_batch_latency_observed_seconds{%s} %.9f\n", l,
                              (double)rs.run_ns * 1e-9 / (double)rs.runs);
            else if (which == REP_DURATION)
                us_buf_printf(b,
                              "usher_replica_batch_duration_seconds_sum{%s} %.9f\n"
                              "usher_replica_batch_duration_seconds_count{%s} %llu\n",
                              l, (double)rs.run_ns * 1e-9, l, (unsigned long long)rs.runs);
            else if (which == REP_BATCHES)
                us_buf_printf(b, "usher_replica_batches_total{%s} %llu\n", l,
                              (unsigned long long)rs.batches);
            else if (which == REP_DEATHS)
                us_buf_printf(b, "usher_replica_worker_deaths_total{%s} %llu\n", l,
                              (unsigned long long)rs.worker_deaths);
        }
    }
}

void srv_metrics(usher_server *s, us_buf *b)
{
    rt_model_stats st[REPO_MAX_MODELS];
    pthread_rwlock_rdlock(&s->rt_lock); /* the plan fields and runtimes stay put */
    for (size_t i = 0; i < s->n; i++)
        srv_model_stats(&s->m[i], &st[i]);
    per_model(b, s, st, "usher_requests_received_total", "counter",
              "Inference requests received for a model: those its queue received, and those "
              "the front end answered itself (malformed, not ready, shutting down, refused by "
              "the HTTP layer). Equals the sum of usher_requests_total plus in flight.",
              STAT(received));
    head(b, "usher_requests_total", "counter", "Inference requests answered, by outcome.");
    for (size_t i = 0; i < s->n; i++)
        for (int o = 0; o < RT_OUTCOME_COUNT; o++)
            us_buf_printf(b, "usher_requests_total{model=\"%s\",outcome=\"%s\"} %llu\n",
                          s->m[i].rm->name, rt_outcome_name((rt_outcome)o),
                          (unsigned long long)st[i].outcome[o]);
    per_model(b, s, st, "usher_requests_in_flight", "gauge", "Requests queued or running.",
              STAT(in_flight));
    head(b, "usher_requests_invalid_total", "counter",
         "Requests refused before the model's queue: malformed or inconsistent bodies.");
    for (size_t i = 0; i < s->n; i++)
        us_buf_printf(b, "usher_requests_invalid_total{model=\"%s\"} %llu\n", s->m[i].rm->name,
                      (unsigned long long)atomic_load(&s->m[i].invalid));
    head(b, "usher_slo_met_total", "counter", "Successful requests answered within the SLO.");
    for (size_t i = 0; i < s->n; i++)
        us_buf_printf(b, "usher_slo_met_total{model=\"%s\"} %llu\n", s->m[i].rm->name,
                      (unsigned long long)atomic_load(&s->m[i].slo_met));
    head(b, "usher_queue_seconds_total", "counter", "Time successful requests waited in queue.");
    for (size_t i = 0; i < s->n; i++)
        us_buf_printf(b, "usher_queue_seconds_total{model=\"%s\"} %.6f\n", s->m[i].rm->name,
                      (double)st[i].queue_ns * 1e-9);
    head(b, "usher_compute_seconds_total", "counter",
         "Time successful requests spent in their batch's run (worker round trip).");
    for (size_t i = 0; i < s->n; i++)
        us_buf_printf(b, "usher_compute_seconds_total{model=\"%s\"} %.6f\n", s->m[i].rm->name,
                      (double)st[i].compute_ns * 1e-9);
    per_model(b, s, st, "usher_batches_total", "counter", "Batches run.", STAT(batches));
    per_model(b, s, st, "usher_batches_inline_total", "counter",
              "Batches run by the front-end thread that received their one request, which found "
              "the model idle (--inline-max-us).",
              STAT(inline_runs));
    per_model(b, s, st, "usher_batches_inline_handed_over_total", "counter",
              "Of those, the runs that outlasted the front-end thread's wait and were finished "
              "by the replica's thread.",
              STAT(inline_handoffs));
    per_model(b, s, st, "usher_batch_rows_total", "counter",
              "Rows over all batches (mean batch size = rows / batches).", STAT(batch_rows));
    per_model(b, s, st, "usher_started_late_total", "counter",
              "Inferences started after a member's deadline (the runtime expires them instead: "
              "0).",
              STAT(started_late));
    /* merge groups (group.c): the runs of each group's one worker, by what they held */
    for (int f = 0; f < 3; f++) {
        static const char *const names[] = {"batches", "mixed_batches", "filler_rows"};
        static const char *const helps[] = {
            "Runs of a merge group's merged graph (one worker serves all its members).",
            "Of those, the runs that served requests of two or more members.",
            "Filler rows given to members without a request in a run (their cost is in the "
            "members' compute time)."};
        us_buf_printf(b, "# HELP usher_merge_group_%s_total %s\n# TYPE usher_merge_group_%s_total "
                         "counter\n", names[f], helps[f], names[f]);
        for (size_t g = 0; g < s->n_groups; g++) {
            const srv_group *gr = &s->groups[g];
            if (!gr->rt)
                continue;
            /* its runtime's, the one draining after a plan change, and those retired */
            uint64_t v = f == 0   ? gr->retired_batches
                         : f == 1 ? gr->retired_mixed_batches
                                  : gr->retired_filler_rows;
            for (int k = 0; k < 2; k++) {
                rt_model_stats gs;
                rt_model *rt = k ? gr->old : gr->rt;
                if (!rt)
                    continue;
                rt_model_get_stats(rt, &gs);
                v += f == 0 ? gs.group_batches : f == 1 ? gs.group_mixed_batches
                                                        : gs.group_filler_rows;
            }
            us_buf_printf(b, "usher_merge_group_%s_total{group=\"%s\"} %llu\n", names[f],
                          s->groups[g].name, (unsigned long long)v);
        }
    }
    head(b, "usher_model_ready", "gauge", "1 when the model serves.");
    for (size_t i = 0; i < s->n; i++)
        us_buf_printf(b, "usher_model_ready{model=\"%s\"} %d\n", s->m[i].rm->name,
                      s->m[i].rt && rt_model_ready(s->m[i].rt) ? 1 : 0);
    head(b, "usher_model_replicas_ready", "gauge", "Replicas with a live, loaded worker.");
    for (size_t i = 0; i < s->n; i++)
        us_buf_printf(b, "usher_model_replicas_ready{model=\"%s\"} %d\n", s->m[i].rm->name,
                      st[i].replicas_ready);
    head(b, "usher_batch_latency_predicted_seconds", "gauge",
         "The latency of one batch at the planned batch size that batching and admission "
         "start from: measured at load (CPU plan); none with a plan file (its latencies are "
         "per replica).");
    for (size_t i = 0; i < s->n; i++)
        if (!s->m[i].error[0] && s->m[i].max_batch <= SRV_MAX_PROFILE_BATCH &&
            s->m[i].lat_ns[s->m[i].max_batch])
            us_buf_printf(b, "usher_batch_latency_predicted_seconds{model=\"%s\",batch=\"%d\"} "
                             "%.6f\n",
                          s->m[i].rm->name, s->m[i].max_batch,
                          (double)s->m[i].lat_ns[s->m[i].max_batch] * 1e-9);
    head(b, "usher_batch_latency_observed_seconds", "gauge",
         "Mean time of the batch runs of successful requests, weighted by request, every "
         "batch size mixed (usher_compute_seconds_total / successes).");
    for (size_t i = 0; i < s->n; i++)
        if (st[i].batches && st[i].outcome[RT_OK])
            us_buf_printf(b, "usher_batch_latency_observed_seconds{model=\"%s\"} %.6f\n",
                          s->m[i].rm->name,
                          (double)st[i].compute_ns * 1e-9 / (double)st[i].outcome[RT_OK]);
    head(b, "usher_replica_batch_latency_predicted_seconds", "gauge",
         "The plan file's latency of one batch of this replica's planned size at its share, "
         "alone on its GPU (replicas[].latency_ms).");
    per_replica(b, s, REP_PREDICTED);
    head(b, "usher_replica_batch_latency_predicted_colocated_seconds", "gauge",
         "The plan file's latency of one such batch beside its GPU's other replicas, all "
         "running back to back (replicas[].latency_colocated_ms).");
    per_replica(b, s, REP_COLOCATED);
    head(b, "usher_replica_batch_latency_observed_seconds", "gauge",
         "Mean time of this replica's successful runs of exactly the planned batch size "
         "(send to answer), since its workers started.");
    per_replica(b, s, REP_OBSERVED);
    head(b, "usher_replica_batch_duration_seconds", "summary",
         "The same runs: their count and summed time (for means over a window).");
    per_replica(b, s, REP_DURATION);
    head(b, "usher_replica_batches_total", "counter",
         "Successful runs of any size on this replica's workers (a merge group member: its "
         "group's replica, whose runs serve every member).");
    per_replica(b, s, REP_BATCHES);
    head(b, "usher_replica_worker_deaths_total", "counter",
         "This replica's workers lost (crashed, hung, or failed to load); each is replaced.");
    per_replica(b, s, REP_DEATHS);
    per_model_gauge(b, s, st, "usher_batch_latency_scale",
                    "Observed over predicted batch time, as batching and admission apply it (1: "
                    "as predicted): the second largest of the last 32 runs within 2 s, decaying "
                    "toward 1 when none ran.",
                    STAT(latency_scale), 1, 3);
    per_model(b, s, st, "usher_requests_shed_by_scale_total", "counter",
              "Requests refused for a deadline the profile alone would have met: runs have "
              "lately been slower than profiled (usher_batch_latency_scale > 1).",
              STAT(shed_by_scale));
    per_model(b, s, st, "usher_admission_probes_total", "counter",
              "Requests admitted while the observed scale refused everything, to test it (one "
              "at most every 250 ms, on an idle model).",
              STAT(probes));
    head(b, "usher_model_shedding", "gauge",
         "1 while the model refuses requests because of its observed slowdown (a refusal by "
         "scale within the last second).");
    for (size_t i = 0; i < s->n; i++)
        if (!s->m[i].error[0])
            us_buf_printf(b, "usher_model_shedding{model=\"%s\"} %d\n", s->m[i].rm->name,
                          st[i].shedding ? 1 : 0);
    per_model_gauge(b, s, st, "usher_batch_latency_profile_factor",
                    "What the start-up latency profile has been multiplied by since start: "
                    "runs showed it more than 4x too slow (a profile measured on a busy "
                    "machine), and it follows them (1: never).",
                    STAT(profile_factor), 1.0, 6);
    per_model_gauge(b, s, st, "usher_admission_margin_seconds",
                    "What admission keeps in hand beyond its prediction (at least 15% of it): "
                    "how late recent batches ended against the end predicted when they were "
                    "admitted.",
                    STAT(admission_margin_ns), 1e-9, 6);
    per_model_gauge(b, s, st, "usher_arrival_rate",
                    "Rows per second admitted lately (a counter decaying over 1 s): what "
                    "batching sizes its waits by.",
                    STAT(arrival_rate), 1, 3);
    head(b, "usher_request_duration_seconds", "histogram",
         "End-to-end latency of successful requests, parse to response.");
    for (size_t i = 0; i < s->n; i++) {
        srv_model *m = &s->m[i];
        uint64_t cum = 0;
        for (int k = 0; k <= SRV_LAT_BUCKETS; k++) {
            cum += atomic_load(&m->lat_bucket[k]);
            if (k < SRV_LAT_BUCKETS)
                us_buf_printf(b, "usher_request_duration_seconds_bucket{model=\"%s\",le=\"%g\"} "
                                 "%llu\n",
                              m->rm->name, edges[k], (unsigned long long)cum);
            else
                us_buf_printf(b, "usher_request_duration_seconds_bucket{model=\"%s\",le=\"+Inf\"} "
                                 "%llu\n",
                              m->rm->name, (unsigned long long)cum);
        }
        us_buf_printf(b, "usher_request_duration_seconds_sum{model=\"%s\"} %.6f\n", m->rm->name,
                      (double)atomic_load(&m->lat_sum_us) * 1e-6);
        us_buf_printf(b, "usher_request_duration_seconds_count{model=\"%s\"} %llu\n", m->rm->name,
                      (unsigned long long)atomic_load(&m->lat_count));
    }
    head(b, "usher_http_responses_total", "counter",
         "HTTP answers by status code (code \"other\": the rest), per model where the route "
         "names a served one (model \"\" otherwise); their sum is usher_http_requests_total.");
    for (size_t i = 0; i <= s->n; i++)
        for (int k = 0; k < SRV_CODES; k++) {
            const atomic_uint_fast64_t *a = i < s->n ? s->m[i].http_answers : s->http_answers;
            uint64_t v = atomic_load(&a[k]);
            if (!v)
                continue;
            char code[8] = "other";
            if (srv_code_of(k))
                snprintf(code, sizeof code, "%u", srv_code_of(k));
            us_buf_printf(b, "usher_http_responses_total{model=\"%s\",code=\"%s\"} %llu\n",
                          i < s->n ? s->m[i].rm->name : "", code, (unsigned long long)v);
        }
    if (s->grpc) {
        head(b, "usher_grpc_responses_total", "counter",
             "gRPC answers (--grpc-port) by status, per model where the call names a served one "
             "(model \"\" otherwise).");
        for (size_t i = 0; i <= s->n; i++)
            for (int k = 0; k < SRV_GRPC_CODES; k++) {
                const atomic_uint_fast64_t *a = i < s->n ? s->m[i].grpc_answers : s->grpc_answers;
                uint64_t v = atomic_load(&a[k]);
                if (v)
                    us_buf_printf(b, "usher_grpc_responses_total{model=\"%s\",code=\"%s\"} %llu\n",
                                  i < s->n ? s->m[i].rm->name : "", gs_code_name(k),
                                  (unsigned long long)v);
            }
    }
    hs_stats hst;
    hs_get_stats(s->http, &hst);
    head(b, "usher_http_connections", "gauge", "HTTP connections open.");
    us_buf_printf(b, "usher_http_connections %d\n", hst.open);
    head(b, "usher_http_connections_closed_total", "counter",
         "HTTP connections the server closed without a request to answer: evicted (the "
         "oldest idle one, for a new connection over a cap), refused (over a cap with none "
         "idle), idle (no request within the idle timeout).");
    us_buf_printf(b, "usher_http_connections_closed_total{reason=\"evicted\"} %llu\n"
                     "usher_http_connections_closed_total{reason=\"refused\"} %llu\n"
                     "usher_http_connections_closed_total{reason=\"idle\"} %llu\n",
                  (unsigned long long)hst.evicted, (unsigned long long)hst.refused,
                  (unsigned long long)hst.idle_closed);
    head(b, "usher_http_requests_total", "counter", "HTTP requests answered.");
    us_buf_printf(b, "usher_http_requests_total %llu\n",
                  (unsigned long long)atomic_load(&s->http_requests));
    head(b, "usher_http_errors_total", "counter", "HTTP requests answered with a non-2xx status.");
    us_buf_printf(b, "usher_http_errors_total %llu\n",
                  (unsigned long long)atomic_load(&s->http_errors));
    pthread_rwlock_unlock(&s->rt_lock);
}

/* "key": {"count": count, "ns": ns}, Triton's duration statistic */
static void count_ns(us_json *j, const char *key, uint64_t count, uint64_t ns)
{
    us_json_key(j, key);
    us_json_obj_begin(j);
    us_json_key(j, "count");
    us_json_uint(j, count);
    us_json_key(j, "ns");
    us_json_uint(j, ns);
    us_json_obj_end(j);
}

void srv_stats_json(usher_server *s, const srv_model *only, us_buf *b)
{
    us_json j;
    us_json_init(&j, b);
    us_json_obj_begin(&j);
    us_json_key(&j, "model_stats");
    us_json_arr_begin(&j);
    pthread_rwlock_rdlock(&s->rt_lock);
    for (size_t i = 0; i < s->n; i++) {
        srv_model *m = &s->m[i];
        if (only && m != only)
            continue;
        rt_model_stats st;
        srv_model_stats(m, &st);
        uint64_t fail = 0;
        for (int o = 1; o < RT_OUTCOME_COUNT; o++)
            fail += st.outcome[o];
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, m->rm->name);
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)m->rm->version);
        us_json_key(&j, "version");
        us_json_str(&j, v);
        us_json_key(&j, "inference_count");
        us_json_uint(&j, st.outcome[RT_OK]);
        us_json_key(&j, "execution_count");
        us_json_uint(&j, st.batches);
        us_json_key(&j, "inference_stats");
        us_json_obj_begin(&j);
        count_ns(&j, "success", st.outcome[RT_OK], st.queue_ns + st.compute_ns);
        us_json_key(&j, "fail");
        us_json_obj_begin(&j);
        us_json_key(&j, "count");
        us_json_uint(&j, fail);
        us_json_obj_end(&j);
        count_ns(&j, "queue", st.outcome[RT_OK], st.queue_ns);
        uint64_t io = atomic_load(&m->io_count);
        count_ns(&j, "compute_input", io, atomic_load(&m->input_ns));
        count_ns(&j, "compute_infer", st.outcome[RT_OK], st.compute_ns);
        count_ns(&j, "compute_output", io, atomic_load(&m->output_ns));
        count_ns(&j, "cache_hit", 0, 0);  /* usher has no response cache */
        count_ns(&j, "cache_miss", 0, 0);
        us_json_obj_end(&j);
        /* per batch size, as Triton: the runtime's successful runs of each size (its requests'
         * rows) and their time, since this runtime started */
        us_json_key(&j, "batch_stats");
        us_json_arr_begin(&j);
        rt_batch_stat *bs = m->rt && !m->error[0] ? us_malloc(RT_MAX_BATCH * sizeof *bs) : NULL;
        size_t nbs = bs ? rt_model_batch_stats(m->rt, bs, RT_MAX_BATCH) : 0;
        for (size_t k = 0; k < nbs && k < RT_MAX_BATCH; k++) {
            us_json_obj_begin(&j);
            us_json_key(&j, "batch_size");
            us_json_uint(&j, (uint64_t)bs[k].rows);
            count_ns(&j, "compute_infer", bs[k].runs, bs[k].run_ns);
            us_json_obj_end(&j);
        }
        us_free(bs);
        us_json_arr_end(&j);
        us_json_key(&j, "last_inference");
        us_json_uint(&j, atomic_load(&m->last_inference_ms));
        us_json_key(&j, "outcomes");
        us_json_obj_begin(&j);
        for (int o = 0; o < RT_OUTCOME_COUNT; o++) {
            us_json_key(&j, rt_outcome_name((rt_outcome)o));
            us_json_uint(&j, st.outcome[o]);
        }
        us_json_obj_end(&j);
        us_json_key(&j, "in_flight");
        us_json_uint(&j, st.in_flight);
        us_json_key(&j, "invalid");
        us_json_uint(&j, atomic_load(&m->invalid));
        us_json_key(&j, "slo_met");
        us_json_uint(&j, atomic_load(&m->slo_met));
        us_json_key(&j, "batches");
        us_json_uint(&j, st.batches);
        us_json_key(&j, "batch_rows");
        us_json_uint(&j, st.batch_rows);
        us_json_obj_end(&j);
    }
    pthread_rwlock_unlock(&s->rt_lock);
    us_json_arr_end(&j);
    us_json_obj_end(&j);
}
