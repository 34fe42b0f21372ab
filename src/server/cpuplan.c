/*
 * cpuplan.c - planning the repository for this machine (layer 8).
 *
 * The kernel estimator (src/estimate) predicts GPU kernels; on a CPU-only
 * machine the profile comes from a short measurement instead. For each
 * model, in a worker process (a crash while loading or profiling costs the
 * model, not the server):
 *   - the input is the model's `sample` request (usher.yaml) when it has
 *     one, else zeros of the declared shape, dynamic dims other than the
 *     batch set to 1;
 *   - at batch 1, 2, 4, ... (while the model has a dynamic leading dim, up to
 *     the config's max_batch_size, usher.yaml's max_batch and 64): one
 *     warm-up run, then the median of 3 timed runs, with one intra-op thread;
 *     the sweep stops at the first batch whose 2 x latency breaks the SLO
 *     (a request may wait for the batch before its own).
 * The plan then gives each model the largest batch within its SLO, and
 * replicas = ceil(rate / (batch / latency)) with one thread each, at least
 * one; when the replicas need more cores than the machine has, they are
 * scaled down in proportion (each model keeps one) and the plan says which
 * rates it cannot carry. usher.yaml's replicas, threads and max_batch
 * override the plan. Method and figures: docs/serve.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "core/log.h"
#include "core/yaml.h"
#include "server/oip.h"
#include "server/srv.h"

#define PROFILE_RUNS 3

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* zeros for every input at `rows` (the sample, when given, is replicated) */
static int make_inputs(const be_io *io, size_t n, bool batchable, int64_t rows,
                       const oip_request *sample, us_tensor *in, usher_error *err)
{
    memset(in, 0, n * sizeof *in);
    for (size_t i = 0; i < n; i++) {
        us_tensor *t = &in[i];
        snprintf(t->name, sizeof t->name, "%s", io[i].name);
        t->dtype = io[i].dtype;
        const us_tensor *src = NULL;
        for (size_t k = 0; sample && k < sample->n_in; k++)
            if (strcmp(sample->in[k].name, io[i].name) == 0)
                src = &sample->in[k];
        if (src) {
            /* the sample's rows, repeated to `rows` */
            t->shape = src->shape;
            int64_t srows = batchable && src->shape.rank ? src->shape.dim[0] : 1;
            if (batchable && t->shape.rank)
                t->shape.dim[0] = rows;
            uint64_t per = srows > 0 ? src->bytes / (uint64_t)srows : src->bytes;
            uint64_t total;
            if (io[i].dtype == US_DT_BYTES || __builtin_mul_overflow(per, (uint64_t)rows, &total))
                return us_err_set(err, USHER_ERR_UNSUPPORTED, "input '%s': cannot replicate",
                                  io[i].name);
            if (!batchable)
                total = src->bytes;
            t->data = us_malloc(total ? total : 1);
            if (!t->data)
                return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            for (uint64_t o = 0; o < total; o += per ? per : total)
                memcpy((char *)t->data + o, src->data, per && batchable ? per : src->bytes);
            t->bytes = total;
            continue;
        }
        t->shape = io[i].shape;
        for (int d = 0; d < t->shape.rank; d++)
            if (t->shape.dim[d] < 0)
                t->shape.dim[d] = d == 0 && batchable ? rows : 1;
        if (io[i].dtype == US_DT_BYTES) {
            uint64_t el;
            if (us_shape_elements(&t->shape, io[i].name, &el, err) < 0)
                return USHER_ERR_INVALID;
            t->bytes = el * 4; /* empty strings */
        } else if (us_tensor_nbytes(io[i].dtype, &t->shape, io[i].name, &t->bytes, err) < 0) {
            return USHER_ERR_INVALID;
        }
        t->data = us_calloc(1, t->bytes ? t->bytes : 1);
        if (!t->data)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    return USHER_OK;
}

static void free_inputs(us_tensor *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        us_free(in[i].data);
}

static void load_sample(const repo_model *rm, oip_request *out, bool *have)
{
    *have = false;
    if (!rm->sample[0])
        return;
    us_mapped f;
    usher_error err;
    if (us_file_map(rm->sample, 16u << 20, &f, &err) < 0) {
        us_log(US_LOG_WARN, "model '%s': sample unreadable; profiling with zeros", rm->name);
        return;
    }
    oip_limits lim = oip_default_limits();
    if (oip_parse_request(f.data, f.len, 0, &lim, out, &err) == USHER_OK)
        *have = true;
    else
        us_log(US_LOG_WARN, "model '%s': sample: %s; profiling with zeros", rm->name, err.msg);
    us_file_unmap(&f);
}

/* measure one model; on failure m->error says why */
static void profile(usher_server *s, srv_model *m)
{
    const repo_model *rm = m->rm;
    rt_worker_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.exe = s->exe;
    wo.model_path = rm->path;
    wo.be = be_default_options();
    wo.be.intra_threads = 1;
    wo.be.inter_threads = 1;
    wo.be.ort_library = s->ort_lib[0] ? s->ort_lib : NULL;
    rt_worker *w = NULL;
    usher_error err;
    if (rt_worker_start(&wo, &w, &err) < 0) {
        snprintf(m->error, sizeof m->error, "%s", err.msg);
        return;
    }
    const be_io *in_io, *out_io;
    size_t n_in;
    size_t n_out = rt_worker_io(w, &in_io, &n_in, &out_io);
    (void)n_out;
    m->batchable = n_in > 0 && rm->max_batch_size != 0;
    for (size_t i = 0; i < n_in; i++)
        if (in_io[i].shape.rank == 0 || in_io[i].shape.dim[0] >= 0)
            m->batchable = false;
    int cap = m->batchable ? SRV_MAX_PROFILE_BATCH : 1;
    if (rm->max_batch_size > 0 && rm->max_batch_size < cap)
        cap = (int)rm->max_batch_size;
    if (rm->max_batch > 0 && rm->max_batch < cap)
        cap = rm->max_batch;
    oip_request sample;
    bool have_sample;
    load_sample(rm, &sample, &have_sample);
    for (int b = 1; b <= cap; b *= 2) {
        us_tensor in[RT_MAX_IO], out[RT_MAX_IO];
        size_t nout = 0;
        if (make_inputs(in_io, n_in, m->batchable, b, have_sample ? &sample : NULL, in, &err) <
            0) {
            free_inputs(in, n_in);
            snprintf(m->error, sizeof m->error, "profiling: %.480s", err.msg);
            break;
        }
        uint64_t t[PROFILE_RUNS + 1];
        int rc = USHER_OK;
        for (int r = 0; r <= PROFILE_RUNS && rc == USHER_OK; r++) {
            uint64_t t0 = rt_now_ns();
            rc = rt_worker_run(w, in, n_in, out, &nout, 60ull * 1000000000ull, &err);
            t[r] = rt_now_ns() - t0;
            if (rc == USHER_OK)
                be_outputs_free(out, nout);
        }
        free_inputs(in, n_in);
        if (rc < 0) {
            if (b == 1)
                snprintf(m->error, sizeof m->error, "profiling at batch 1: %.480s", err.msg);
            break; /* a larger batch the model refuses: keep what worked */
        }
        qsort(t + 1, PROFILE_RUNS, sizeof t[0], cmp_u64);
        m->lat_ns[b] = t[1 + PROFILE_RUNS / 2];
        m->prof_max = b; /* the plan picks the batch (srv_plan_cpu_models) */
        if (2 * (double)m->lat_ns[b] * 1e-6 > m->slo_ms)
            break;
    }
    if (have_sample)
        oip_request_free(&sample);
    rt_worker_stop(w, 2000000000ull);
    /* batch sizes between the powers of two: interpolated */
    for (int b = 2; b <= m->prof_max; b++)
        if (!m->lat_ns[b]) {
            int lo = 1;
            while (lo * 2 <= b)
                lo *= 2;
            int hi = lo * 2;
            m->lat_ns[b] = hi <= SRV_MAX_PROFILE_BATCH && m->lat_ns[hi]
                               ? m->lat_ns[lo] + (m->lat_ns[hi] - m->lat_ns[lo]) * (uint64_t)(b - lo) /
                                                     (uint64_t)(hi - lo)
                               : m->lat_ns[lo] * (uint64_t)b / (uint64_t)lo;
        }
}

void srv_plan_cpu(usher_server *s)
{
    for (size_t i = 0; i < s->n; i++) {
        srv_model *m = &s->m[i];
        m->slo_ms = m->rm->slo_ms > 0 ? m->rm->slo_ms : s->p.default_slo_ms;
        if (!m->error[0])
            profile(s, m);
    }
    srv_plan_cpu_models(s, s->m, s->n);
}

void srv_plan_cpu_models(const usher_server *s, srv_model *ms, size_t n)
{
    int want = 0;
    for (size_t i = 0; i < n; i++) {
        srv_model *m = &ms[i];
        const repo_model *rm = m->rm;
        m->slo_ms = rm->slo_ms > 0 ? rm->slo_ms : s->p.default_slo_ms;
        m->rate = rm->rate;
        m->plan_note = NULL;
        if (m->error[0] || m->prof_max < 1)
            continue;
        /* the largest batch whose doubled latency keeps the SLO (at least 1) */
        int cap = m->batchable ? m->prof_max : 1;
        if (rm->max_batch > 0 && rm->max_batch < cap)
            cap = rm->max_batch;
        m->max_batch = 1;
        for (int b = 2; b <= cap; b++)
            if (m->lat_ns[b] && 2 * (double)m->lat_ns[b] * 1e-6 <= m->slo_ms)
                m->max_batch = b;
        if (2 * (double)m->lat_ns[1] * 1e-6 > m->slo_ms)
            m->plan_note = "SLO below twice the measured batch-1 latency: requests will miss it";
        double thr = (double)m->max_batch / ((double)m->lat_ns[m->max_batch] * 1e-9);
        m->threads = rm->threads > 0 ? rm->threads : 1;
        m->replicas = rm->replicas > 0          ? rm->replicas
                      : m->rate > 0 && thr > 0 ? (int)ceil(m->rate / thr)
                                               : 1;
        if (m->replicas < 1)
            m->replicas = 1;
        want += m->replicas * m->threads;
    }
    /* more threads than cores: scale the planned replicas down, each model keeps one */
    if (want > s->cpus) {
        double f = (double)s->cpus / want;
        for (size_t i = 0; i < n; i++) {
            srv_model *m = &ms[i];
            if (m->error[0] || m->rm->replicas > 0)
                continue;
            int r = (int)floor(m->replicas * f);
            if (r < 1)
                r = 1;
            if (r < m->replicas) {
                m->replicas = r;
                m->plan_note = "fewer replicas than its rate needs: this machine's cores are "
                               "short";
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        srv_model *m = &ms[i];
        if (!m->error[0] && m->lat_ns[m->max_batch])
            m->capacity = m->replicas * (double)m->max_batch /
                          ((double)m->lat_ns[m->max_batch] * 1e-9);
    }
}

int srv_plan_file(const usher_server *s, const char *path, srv_model *ms, size_t n,
                  usher_error *err)
{
    for (size_t i = 0; i < n; i++) {
        ms[i].replicas = 0;
        ms[i].max_batch = 0;
        memset(ms[i].gpu, 0xff, sizeof ms[i].gpu); /* -1: none */
        memset(ms[i].share, 0, sizeof ms[i].share);
    }
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = us_yaml_default_limits();
    lim.max_bytes = 256u << 20;
    lim.max_nodes = 20000000;
    int rc = us_yaml_load(path, &lim, &d, err);
    if (rc < 0)
        return rc;
    const us_yaml_node *root = us_yaml_root(d), *gpus = NULL;
    int64_t version = 0;
    if ((rc = us_yaml_get_i64(d, root, "schema_version", NULL, 1, 1, &version, 0, true, err)) < 0 ||
        (rc = us_yaml_get_node(d, root, "gpus", NULL, US_YAML_SEQ, true, &gpus, err)) < 0) {
        us_yaml_free(d);
        return rc;
    }
    for (size_t g = 0; g < us_yaml_len(gpus); g++) {
        const us_yaml_node *reps = us_yaml_get(us_yaml_item(gpus, g), "replicas");
        for (size_t r = 0; r < us_yaml_len(reps); r++) {
            const us_yaml_node *rp = us_yaml_item(reps, r);
            const char *name = NULL;
            int64_t batch = 1;
            double share = 100;
            char f[96], fs[96];
            snprintf(f, sizeof f, "gpus[%zu].replicas[%zu].batch", g, r);
            snprintf(fs, sizeof fs, "gpus[%zu].replicas[%zu].share", g, r);
            if ((rc = us_yaml_get_str(d, rp, "model", NULL, &name, NULL, err)) < 0 ||
                (rc = us_yaml_get_i64(d, rp, "batch", f, 1, RT_MAX_BATCH, &batch, 1, true, err)) < 0 ||
                (rc = us_yaml_get_f64(d, rp, "share", fs, 1, 100, &share, 100, false, err)) < 0) {
                us_yaml_free(d);
                return rc;
            }
            srv_model *m = NULL;
            for (size_t i = 0; name && i < n && !m; i++)
                if (strcmp(ms[i].rm->name, name) == 0)
                    m = &ms[i];
            if (!m)
                continue; /* planned but not in this repository */
            if (m->replicas >= RT_MAX_REPLICAS) {
                us_yaml_free(d);
                return us_err_set(err, USHER_ERR_LIMIT, "%s: model '%s' has more than %d replicas",
                                  path, name, RT_MAX_REPLICAS);
            }
            m->gpu[m->replicas] = (short)(g < 32767 ? g : 32767);
            m->share[m->replicas] = (unsigned char)ceil(share);
            m->replicas++;
            if (batch > m->max_batch)
                m->max_batch = (int)batch;
        }
    }
    us_yaml_free(d);
    for (size_t i = 0; i < n; i++) {
        srv_model *m = &ms[i];
        if (m->max_batch < 1)
            m->max_batch = 1;
        m->slo_ms = m->rm->slo_ms > 0 ? m->rm->slo_ms : s->p.default_slo_ms;
        m->rate = m->rm->rate;
        m->threads = m->rm->threads > 0 ? m->rm->threads : 1;
        if (!m->error[0] && m->replicas == 0)
            snprintf(m->error, sizeof m->error, "the plan gives it no replica");
        m->batchable = m->max_batch > 1 && m->rm->max_batch_size != 0;
        m->plan_note = s->gpus > 0 ? "placed by the plan file: its GPUs in order are this "
                                     "machine's cuda:0, cuda:1, ...; replicas on GPUs past them "
                                     "run on the CPU"
                                   : "placed by the plan file; no GPU here: its replicas run on "
                                     "this machine's CPU";
    }
    return USHER_OK;
}

void usher_server_print_plan(usher_server *s, FILE *f)
{
    pthread_rwlock_rdlock(&s->rt_lock);
    fprintf(f, "%-24s %-8s %8s %7s %6s %12s %12s %10s %10s %s\n", "model", "version", "replicas",
            "threads", "batch", "latency_ms", "capacity/s", "rate/s", "slo_ms", "note");
    for (size_t i = 0; i < s->n; i++) {
        const srv_model *m = &s->m[i];
        if (m->error[0]) {
            fprintf(f, "%-24s %-8s %8s %7s %6s %12s %12s %10.6g %10.6g UNAVAILABLE: %s\n",
                    m->rm->name, "-", "-", "-", "-", "-", "-", m->rate, m->slo_ms, m->error);
            continue;
        }
        char ver[24];
        snprintf(ver, sizeof ver, "%lld", (long long)m->rm->version);
        fprintf(f, "%-24s %-8s %8d %7d %6d %12.3f %12.1f %10.6g %10.6g %s\n", m->rm->name, ver,
                m->replicas, m->threads, m->max_batch, (double)m->lat_ns[m->max_batch] * 1e-6,
                m->capacity, m->rate, m->slo_ms, m->plan_note ? m->plan_note : "");
    }
    if (s->gpus > 0)
        fprintf(f, "(%d CPU cores, %d CUDA device%s; CPU latencies measured at load with one "
                   "thread per replica)\n", s->cpus, s->gpus, s->gpus == 1 ? "" : "s");
    else
        fprintf(f, "(%d CPU cores, no GPU: %s; latencies measured at load with one thread per "
                   "replica)\n", s->cpus, s->gpu_why);
    pthread_rwlock_unlock(&s->rt_lock);
}
