/*
 * estimate.c - model timeline, Creq, Mreq, latency and energy (layer 4).
 *
 * For one (model, GPU type, batch, share, precision):
 *   1. the kernel plan: the model inferred at the batch and bindings, then
 *      mapped to kernel problems (gpu_kmap_model); plans are cached per
 *      (model structure, batch, precision, fusion, bindings);
 *   2. each kernel timed on the GPU with the share's SMs (gpu_ktime_eval);
 *   3. the timeline: the host issues launches one after another
 *      (launch_us each); with one stream (ONNX Runtime) a kernel starts when
 *      the previous one ends and its launch has been issued; with streams = 0
 *      (USHER's model) it starts when its producers end. Kernels whose start
 *      times differ by less than tau = 1 us form a concurrent set;
 *   4. Creq = the largest summed compute share of a concurrent set (capped at
 *      100%); Mreq = weights + peak live activations (the IR's liveness plan
 *      at this precision) + library workspace + runtime context; bandwidth =
 *      DRAM bytes / latency; L2 working set = the largest kernel's; energy =
 *      sum over kernels of time x (TDP - idle) x utilisation, plus idle power
 *      x the share x latency. Latency adds a fixed per-run overhead and the
 *      host<->device copy of inputs and outputs.
 * docs/internals/estimate.md explains every term and its reason.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/hash.h"
#include "est.h"
#include "estimate/kernels.h"
#include "onnx/model_impl.h"

#define TAU_S 1e-6
#define PLAN_SLOTS 32

extern const unsigned char usher_calibration_txt[];
extern const size_t usher_calibration_txt_len;

typedef struct plan_slot {
    uint64_t key;
    bool used;
    gpu_kplan plan;
} plan_slot;

typedef struct prof_slot {
    uint64_t key;
    bool used;
    usher_profile prof;
} prof_slot;

struct usher_estimator {
    gpu_catalog *cat;
    gpu_calib_table cal;
    char framework[32];
    int streams;
    plan_slot plans[PLAN_SLOTS];
    prof_slot *profs;
    uint32_t n_profs;
    /* scratch for the timeline */
    double *start, *end;
    uint32_t cap_scratch;
    uint64_t hits, misses;
};

usher_estimator_params usher_estimator_default_params(void)
{
    usher_estimator_params p;
    memset(&p, 0, sizeof p);
    p.streams = 1;
    return p;
}

usher_estimate_params usher_estimate_default_params(void)
{
    usher_estimate_params p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.share_pct = 100;
    p.precision = USHER_PRECISION_FP32;
    return p;
}

const char *usher_precision_name(usher_precision p) { return gpu_precision_name((gpu_precision)p); }
int usher_precision_parse(const char *s) { return gpu_precision_parse(s); }

int usher_estimator_new(const usher_estimator_params *p, usher_estimator **out, usher_error *err)
{
    usher_estimator_params d = usher_estimator_default_params();
    if (!p)
        p = &d;
    *out = NULL;
    if (p->streams != 0 && p->streams != 1)
        return us_err_set(err, USHER_ERR_INVALID, "streams must be 0 or 1, not %d", p->streams);
    usher_estimator *e = us_calloc(1, sizeof *e);
    if (!e)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int rc = p->gpu_catalog ? gpu_catalog_load(p->gpu_catalog, &e->cat, err)
                            : gpu_catalog_default(&e->cat, err);
    if (rc < 0)
        goto fail;
    rc = p->calibration ? gpu_calib_load(p->calibration, &e->cal, err)
                        : gpu_calib_parse((const char *)usher_calibration_txt,
                                          usher_calibration_txt_len, "data/calibration.txt",
                                          &e->cal, err);
    if (rc < 0)
        goto fail;
    snprintf(e->framework, sizeof e->framework, "%s",
             p->framework ? p->framework : "onnxruntime-cuda");
    e->streams = p->streams;
    e->n_profs = p->cache_entries ? p->cache_entries : 4096;
    if (e->n_profs > (1u << 20))
        e->n_profs = 1u << 20;
    e->profs = us_calloc(e->n_profs, sizeof *e->profs);
    if (!e->profs) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *out = e;
    return USHER_OK;
fail:
    usher_estimator_free(e);
    return rc;
}

void usher_estimator_free(usher_estimator *e)
{
    if (!e)
        return;
    gpu_catalog_free(e->cat);
    gpu_calib_table_free(&e->cal);
    for (int i = 0; i < PLAN_SLOTS; i++)
        gpu_kplan_free(&e->plans[i].plan);
    us_free(e->profs);
    us_free(e->start);
    us_free(e->end);
    us_free(e);
}

size_t usher_estimator_gpu_count(const usher_estimator *e) { return gpu_catalog_count_all(e->cat); }

const char *usher_estimator_gpu_key(const usher_estimator *e, size_t i)
{
    const gpu_type *g = gpu_catalog_at_all(e->cat, i);
    return g ? g->key : NULL;
}

/* the model-dependent part of a cache key */
static uint64_t model_key(const usher_model *m, const usher_estimate_params *p, const char *fusion)
{
    us_hash_state h;
    us_hash_init(&h, 0x65737469ULL);
    uint64_t fp = m->ir->fingerprint ? m->ir->fingerprint : (uint64_t)(uintptr_t)m->ir;
    us_hash_update(&h, &fp, sizeof fp);
    us_hash_update(&h, &p->batch, sizeof p->batch);
    int prec = (int)p->precision;
    us_hash_update(&h, &prec, sizeof prec);
    us_hash_update(&h, fusion, strlen(fusion) + 1);
    for (size_t i = 0; i < p->n_dims; i++) {
        us_hash_update(&h, p->dims[i].name, strlen(p->dims[i].name) + 1);
        us_hash_update(&h, &p->dims[i].value, sizeof p->dims[i].value);
    }
    return us_hash_final(&h);
}

static int get_plan(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                    const char *fusion, uint64_t mkey, const gpu_kplan **out, usher_error *err)
{
    plan_slot *s = &e->plans[mkey % PLAN_SLOTS];
    if (s->used && s->key == mkey) {
        *out = &s->plan;
        return USHER_OK;
    }
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = p->batch;
    sp.dims = p->dims;
    sp.n_dims = p->n_dims;
    int rc = usher_model_infer(m, &sp, err);
    if (rc == USHER_ERR_NOMEM || rc == USHER_ERR_NOT_FOUND || rc == USHER_ERR_INVALID)
        return rc;
    gpu_fusion fu = gpu_fusion_named(fusion, NULL);
    gpu_kplan plan;
    rc = gpu_kmap_model(m->ir, (gpu_precision)p->precision, &fu, &plan, err);
    if (rc < 0)
        return rc;
    gpu_kplan_free(&s->plan);
    s->plan = plan;
    s->key = mkey;
    s->used = true;
    *out = &s->plan;
    return USHER_OK;
}

static int scratch(usher_estimator *e, uint32_t n)
{
    if (n <= e->cap_scratch)
        return USHER_OK;
    double *a = us_realloc(e->start, (size_t)n * sizeof *a);
    if (!a)
        return USHER_ERR_NOMEM;
    e->start = a;
    double *b = us_realloc(e->end, (size_t)n * sizeof *b);
    if (!b)
        return USHER_ERR_NOMEM;
    e->end = b;
    e->cap_scratch = n;
    return USHER_OK;
}

static _Thread_local const double *g_sort_keys;

static int cmp_index(const void *a, const void *b)
{
    double x = g_sort_keys[*(const uint32_t *)a], y = g_sort_keys[*(const uint32_t *)b];
    if (x != y)
        return x < y ? -1 : 1;
    return (*(const uint32_t *)a > *(const uint32_t *)b) - (*(const uint32_t *)a < *(const uint32_t *)b);
}

int est_run(usher_estimator *e, const gpu_kplan *plan, const gpu_type *g, const gpu_calib *cal,
            const usher_estimate_params *p, usher_profile *out, usher_error *err)
{
    gpu_budget b;
    int rc = gpu_budget_init(&b, g, p->share_pct / 100.0, (gpu_precision)p->precision, cal, err);
    if (rc < 0)
        return rc;
    if ((rc = scratch(e, plan->n ? plan->n : 1)) < 0)
        return us_err_set(err, rc, "out of memory");
    double host = 0, gpu_free = 0, dram = 0, energy_dyn = 0, l2 = 0, gpu_busy = 0, mem_busy = 0, comp_busy = 0;
    double tdp = gpu_known(g, GPU_F_TDP_W) ? g->tdp_w : 0;
    uint32_t launches = 0;
    double launch_s = cal->launch_us * 1e-6;
    /* shares per kernel, kept for the concurrent sets */
    double *share = us_calloc(plan->n ? plan->n : 1, sizeof *share);
    if (!share) {
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < plan->n; i++) {
        const gpu_kprob *k = &plan->k[i];
        gpu_ktime t;
        gpu_ktime_eval(&b, k, &t);
        /* the host's cost is per operator call (framework dispatch); the extra
         * kernels a library launches inside one call (split-K, Winograd) are GPU time */
        double issue = (k->repeat ? k->repeat : 1) * launch_s;
        double ready = host + launch_s;
        if (e->streams == 1) {
            ready = fmax(ready, gpu_free);
        } else {
            for (int j = 0; j < 4; j++)
                if (k->dag_preds[j] != UINT32_MAX && k->dag_preds[j] < i)
                    ready = fmax(ready, e->end[k->dag_preds[j]]);
        }
        /* a kernel repeated many times cannot run faster than the host issues it */
        double dur = fmax(t.seconds, issue - launch_s);
        e->start[i] = ready;
        e->end[i] = ready + dur;
        gpu_free = fmax(gpu_free, e->end[i]);
        host += issue;
        gpu_busy += t.seconds;
        comp_busy += fmin(t.compute_s, t.seconds);
        if (t.memory_s > t.compute_s)
            mem_busy += t.seconds;
        dram += t.dram_bytes;
        l2 = fmax(l2, t.l2_bytes);
        launches += t.launches;
        share[i] = t.share;
        double u = fmax(t.sm_util, t.bw_share);
        energy_dyn += t.seconds * tdp * (1 - cal->idle_power_frac) * fmin(1.0, u);
    }
    /* concurrent sets: the kernels that start within tau of a kernel's start, plus
     * (several streams) those still running then; O(n log n) with two sweeps */
    double creq = 0, share_time = 0;
    uint32_t n = plan->n;
    if (n) {
        uint32_t *by_start = us_calloc(n, sizeof *by_start), *by_end = us_calloc(n, sizeof *by_end);
        if (!by_start || !by_end) {
            us_free(by_start);
            us_free(by_end);
            us_free(share);
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        }
        for (uint32_t i = 0; i < n; i++)
            by_start[i] = by_end[i] = i;
        g_sort_keys = e->start;
        qsort(by_start, n, sizeof *by_start, cmp_index);
        g_sort_keys = e->end;
        qsort(by_end, n, sizeof *by_end, cmp_index);
        double started = 0, ended = 0, window = 0;
        uint32_t js = 0, je = 0, jw = 0;
        for (uint32_t a = 0; a < n; a++) {
            uint32_t i = by_start[a];
            double t = e->start[i];
            /* shares of kernels started strictly before t and ended by t */
            while (js < n && e->start[by_start[js]] < t)
                started += share[by_start[js++]];
            while (je < n && e->end[by_end[je]] <= t)
                ended += share[by_end[je++]];
            /* kernels starting in [t, t + tau): window sums by_start[a .. jw) */
            if (jw <= a) {
                jw = a;
                window = 0;
            }
            while (jw < n && e->start[by_start[jw]] - t < TAU_S)
                window += share[by_start[jw++]];
            double running = e->streams == 0 ? started - ended : 0;
            if (running < 0)
                running = 0;
            creq = fmax(creq, fmin(1.0, window + running));
            window -= share[i];
            share_time += share[i] * (e->end[i] - e->start[i]);
        }
        us_free(by_start);
        us_free(by_end);
    }
    us_free(share);
    double copy_s = plan->io_bytes / 1e6 * cal->copy_us_per_mb * 1e-6;
    double latency = fmax(gpu_free, host) + cal->fixed_us * 1e-6 + copy_s;
    memset(out, 0, sizeof *out);
    snprintf(out->gpu, sizeof out->gpu, "%s", g->key);
    out->batch = p->batch;
    out->share_pct = p->share_pct;
    out->sms = b.sms;
    out->precision = p->precision;
    out->latency_ms = latency * 1e3;
    out->gpu_ms = gpu_busy * 1e3;
    out->throughput = latency > 0 ? (double)p->batch / latency : 0;
    out->creq_pct = creq * 100;
    out->creq_avg_pct = latency > 0 ? fmin(100.0, share_time / latency * 100) : 0;
    out->weights_mb = plan->weight_bytes / 1e6;
    out->activations_mb = plan->peak_activation_bytes / 1e6;
    out->workspace_mb = cal->workspace_mb;
    out->context_mb = cal->context_mb;
    out->mreq_mb = out->weights_mb + out->activations_mb + out->workspace_mb + out->context_mb;
    out->mreq_pct = gpu_known(g, GPU_F_MEM_GB) && g->mem_gb > 0
                        ? out->mreq_mb / (g->mem_gb * 1e3) * 100
                        : 0;
    out->bandwidth_gbs = latency > 0 ? dram / latency / 1e9 : 0;
    out->dram_mb = dram / 1e6;
    out->mem_bound_ms = mem_busy * 1e3;
    out->compute_ms = comp_busy * 1e3;
    out->l2_working_set_mb = l2 / 1e6;
    out->energy_j = energy_dyn + latency * tdp * cal->idle_power_frac * b.share;
    out->avg_power_w = latency > 0 ? out->energy_j / latency : 0;
    out->n_kernels = launches;
    out->gflops = plan->total_flops / 1e9;
    out->calibrated = cal->calibrated;
    out->exact = plan->exact && plan->n_unknown == 0;
    snprintf(out->framework, sizeof out->framework, "%s", cal->framework);
    if (plan->n_unknown)
        snprintf(out->warning, sizeof out->warning,
                 "%u operator(s) usher cannot map (first: %s) costed with a conservative "
                 "memory-bound default",
                 plan->n_unknown, plan->unknown_op);
    else if (!cal->calibrated)
        snprintf(out->warning, sizeof out->warning,
                 "no calibration for %s (%s): uncalibrated defaults", g->key, cal->framework);
    else if (!tdp)
        snprintf(out->warning, sizeof out->warning, "TDP unknown: energy not estimated");
    return USHER_OK;
}

/* the checks every public entry makes, then the GPU type and calibration row */
static int check_params(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                        const gpu_type **g, gpu_calib *cal, usher_error *err)
{
    if (!e || !m || !p)
        return us_err_set(err, USHER_ERR_INVALID, "estimator, model, params and out are required");
    if (!p->gpu)
        return us_err_set(err, USHER_ERR_INVALID, "no GPU type given");
    if (p->batch < 1 || p->batch > (1 << 20))
        return us_err_set(err, USHER_ERR_INVALID, "batch %lld is not in [1, 2^20]",
                          (long long)p->batch);
    if (!(p->share_pct > 0) || p->share_pct > 100)
        return us_err_set(err, USHER_ERR_INVALID, "share %g%% is not in (0, 100]", p->share_pct);
    if ((unsigned)p->precision >= GPU_PREC_COUNT)
        return us_err_set(err, USHER_ERR_INVALID, "unknown precision %d", (int)p->precision);
    if ((p->n_dims && !p->dims) || p->n_dims > 64)
        return us_err_set(err, USHER_ERR_INVALID, "bad dims array");
    int rc = gpu_catalog_find(e->cat, p->gpu, g, err);
    if (rc < 0)
        return rc;
    *cal = gpu_calib_lookup(&e->cal, *g, e->framework, NULL);
    return USHER_OK;
}

int usher_estimate(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                   usher_profile *out, usher_error *err)
{
    if (!out)
        return us_err_set(err, USHER_ERR_INVALID, "estimator, model, params and out are required");
    const gpu_type *g;
    gpu_calib cal;
    int rc = check_params(e, m, p, &g, &cal, err);
    if (rc < 0)
        return rc;
    uint64_t mkey = model_key(m, p, cal.fusion);
    us_hash_state h;
    us_hash_init(&h, mkey);
    us_hash_update(&h, g->key, strlen(g->key) + 1);
    us_hash_update(&h, &p->share_pct, sizeof p->share_pct);
    uint64_t key = us_hash_final(&h);
    prof_slot *ps = &e->profs[key % e->n_profs];
    if (ps->used && ps->key == key) {
        e->hits++;
        *out = ps->prof;
        return USHER_OK;
    }
    e->misses++;
    const gpu_kplan *plan;
    if ((rc = get_plan(e, m, p, cal.fusion, mkey, &plan, err)) < 0)
        return rc;
    if ((rc = est_run(e, plan, g, &cal, p, out, err)) < 0)
        return rc;
    ps->key = key;
    ps->used = true;
    ps->prof = *out;
    return USHER_OK;
}

int usher_estimate_kernels(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                           usher_kernel_info *out, size_t cap, size_t *n_total,
                           usher_error *err)
{
    if (!n_total || (cap && !out))
        return us_err_set(err, USHER_ERR_INVALID, "n_total is required, and out when cap > 0");
    *n_total = 0;
    const gpu_type *g;
    gpu_calib cal;
    int rc = check_params(e, m, p, &g, &cal, err);
    if (rc < 0)
        return rc;
    const gpu_kplan *plan;
    if ((rc = get_plan(e, m, p, cal.fusion, model_key(m, p, cal.fusion), &plan, err)) < 0)
        return rc;
    gpu_budget b;
    if ((rc = gpu_budget_init(&b, g, p->share_pct / 100.0, (gpu_precision)p->precision, &cal,
                              err)) < 0)
        return rc;
    for (uint32_t i = 0; i < plan->n && i < cap; i++) {
        const gpu_kprob *k = &plan->k[i];
        const ir_node *n = plan->nodes[k->node];
        gpu_ktime t;
        gpu_ktime_eval(&b, k, &t);
        usher_kernel_info *o = &out[i];
        memset(o, 0, sizeof *o);
        snprintf(o->node, sizeof o->node, "%s", n->name ? n->name : "");
        snprintf(o->op, sizeof o->op, "%s", n->op_type ? n->op_type : "");
        snprintf(o->kind, sizeof o->kind, "%s", gpu_kclass_name(k->cls));
        snprintf(o->algo, sizeof o->algo, "%s", t.algo ? t.algo : "");
        if (k->cls == GPU_K_GEMM) {
            o->m = k->m;
            o->n = k->n;
            o->k = k->k;
            o->batch = k->batch;
        }
        o->launches = t.launches;
        o->ms = t.seconds * 1e3;
        o->compute_ms = t.compute_s * 1e3;
        o->memory_ms = t.memory_s * 1e3;
        o->gflops = k->flops / 1e9;
        o->dram_mb = t.dram_bytes / 1e6;
        o->share_pct = t.share * 100;
    }
    *n_total = plan->n;
    return USHER_OK;
}

const gpu_catalog *est_catalog(const usher_estimator *e) { return e->cat; }
const gpu_calib_table *est_calibration(const usher_estimator *e) { return &e->cal; }
void est_set_calibration_row(usher_estimator *e, const gpu_calib *row)
{
    /* replace (or add) the row for its GPU and framework, and drop cached profiles */
    for (uint32_t i = 0; i < e->cal.n; i++)
        if (strcmp(e->cal.rows[i].gpu, row->gpu) == 0 &&
            strcmp(e->cal.rows[i].framework, row->framework) == 0) {
            e->cal.rows[i] = *row;
            memset(e->profs, 0, (size_t)e->n_profs * sizeof *e->profs);
            return;
        }
    gpu_calib *nr = us_realloc(e->cal.rows, ((size_t)e->cal.n + 1) * sizeof *nr);
    if (!nr)
        return;
    e->cal.rows = nr;
    e->cal.rows[e->cal.n++] = *row;
    memset(e->profs, 0, (size_t)e->n_profs * sizeof *e->profs);
}
