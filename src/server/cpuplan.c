/*
 * cpuplan.c - planning the repository for this machine (layer 8).
 *
 * The kernel estimator (src/estimate) predicts GPU kernels; on a CPU-only
 * machine the profile comes from a short measurement instead. For each
 * model, in a worker process (a crash while loading or profiling costs the
 * model, not the server):
 *   - the input is the model's `sample` request (usher.yaml) for the inputs
 *     it names, its rows repeated (BYTES too); every other input is
 *     synthetic and plausible: floats (FP32, FP64, FP16, BF16) uniform in
 *     [-1, 1) from a fixed-seed splitmix64 (zeros are not plausible: a test
 *     MLP ran 2.1x faster on zeros than on real input, whose activations
 *     became subnormal), integers 0, BOOL false, strings "1" (a number, so a
 *     string-to-number Cast works; an empty string does not parse);
 *   - a dynamic dim other than the batch takes the size config.pbtxt fixes
 *     for it (inputs matched by name; Triton's dims, without the batch dim
 *     when the model batches); the others are tried at 1, then, when the
 *     worker refuses the input or the run fails, at 64, 512, 4096 and 16000
 *     (an audio front end needs its window of 400 samples), never above
 *     usher.yaml's max_dims bound; the first size that runs is kept;
 *   - at batch 1, 2, 4, ... (while the model has a dynamic leading dim, up to
 *     the config's max_batch_size, usher.yaml's max_batch and 64): one
 *     warm-up run, then the median of 3 timed runs, with one intra-op thread;
 *     the sweep stops at the first batch whose 2 x latency breaks the SLO
 *     (a request may wait for the batch before its own).
 * profile_note says which input was measured. A model no input runs is
 * still served, unprofiled: no latencies (the runtime learns them from its
 * first requests), its batch and replicas from usher.yaml or 1. Only a
 * model its worker cannot load at all is UNAVAILABLE.
 * The plan then gives each model the largest batch within its SLO, and
 * replicas = ceil(rate / (batch / latency)) with one thread each, at least
 * one; when the replicas need more cores than the machine has, they are
 * scaled down in proportion (each model keeps one) and the plan says which
 * rates it cannot carry. usher.yaml's replicas, threads and max_batch
 * override the plan; without usher.yaml's replicas, config.pbtxt's
 * instance_group fixes them (Triton's count: fixed_replicas), and neither
 * is scaled down. With a plan file (srv_plan_file) the file's replicas
 * win over both. Method and figures: docs/serve.md.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "core/log.h"
#include "planfile/planfile.h"
#include "server/oip.h"
#include "server/srv.h"

#define PROFILE_RUNS 3
#define PROFILE_MAX_INPUT_BYTES ((uint64_t)64 << 20) /* one run's inputs together (the
                                                        worker's region, 256 MiB, also
                                                        holds the outputs) */
#define N_TRIES 5
static const int64_t try_sizes[N_TRIES] = {1, 64, 512, 4096, 16000};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the profiled input ------------------------------------------------------------------ */

/* how each dim of a synthetic input is sized */
enum { DIM_FIXED, DIM_BATCH, DIM_CONFIG, DIM_OPEN };

typedef struct dims_plan {
    unsigned char kind[RT_MAX_IO][US_TENSOR_MAX_RANK];
    int64_t val[RT_MAX_IO][US_TENSOR_MAX_RANK]; /* FIXED, CONFIG: the size; OPEN: its bound
                                                   (0: none) */
    const us_tensor *sample[RT_MAX_IO];         /* the sample's tensor for input i, or NULL */
    int n_open;                                 /* OPEN dims of synthetic inputs */
    int64_t open;                               /* the size tried for them */
} dims_plan;

/* size v for an open dim with this bound (0: none): never above the bound */
static int64_t clamp_open(int64_t bound, int64_t v) { return bound > 0 && bound < v ? bound : v; }

static int64_t open_size(const dims_plan *dp, size_t i, int d)
{
    return clamp_open(dp->val[i][d], dp->open);
}

static uint64_t splitmix64(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* IEEE half bits of f, which is 0 or a normal number exact in half (m / 128, |m| <= 128) */
static uint16_t half_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    uint16_t sign = (uint16_t)(b >> 16 & 0x8000u);
    if ((b & 0x7fffffffu) == 0)
        return sign;
    uint32_t e = (b >> 23 & 0xffu) - 127u + 15u;
    return (uint16_t)(sign | e << 10 | (b >> 13 & 0x3ffu));
}

/* elements of input i's data: uniform [-1, 1) floats, zero integers, false, strings "1" */
static void fill_synthetic(us_tensor *t, uint64_t elements, size_t i)
{
    uint64_t st = 0x5eed0000u + i; /* fixed: every start-up profiles the same values */
    unsigned char *p = t->data;
    for (uint64_t e = 0; e < elements; e++) {
        uint64_t r = splitmix64(&st);
        switch (t->dtype) {
        case US_DT_FP32: {
            float f = (float)((int64_t)(r >> 40) - (1 << 23)) * 0x1p-23f;
            memcpy(p + 4 * e, &f, 4);
            break;
        }
        case US_DT_FP64: {
            double f = (double)((int64_t)(r >> 11) - ((int64_t)1 << 52)) * 0x1p-52;
            memcpy(p + 8 * e, &f, 8);
            break;
        }
        case US_DT_FP16:
        case US_DT_BF16: {
            float f = (float)((int)(r >> 56) - 128) / 128.0f; /* exact in both */
            uint32_t b;
            memcpy(&b, &f, sizeof b);
            uint16_t h = t->dtype == US_DT_FP16 ? half_bits(f) : (uint16_t)(b >> 16);
            memcpy(p + 2 * e, &h, 2);
            break;
        }
        case US_DT_BYTES:
            memcpy(p + 5 * e, "\x01\x00\x00\x00"
                              "1",
                   5);
            break;
        default:
            return; /* integers 0, BOOL false: the buffer is zeroed */
        }
    }
}

/* a synthetic input i at `rows` rows (the batch dim) and dp's sizes */
static int synthetic(const be_io *io, size_t i, const dims_plan *dp, int64_t rows, us_tensor *t,
                     uint64_t *all, usher_error *err)
{
    t->shape = io->shape;
    for (int d = 0; d < t->shape.rank; d++)
        switch (dp->kind[i][d]) {
        case DIM_BATCH: t->shape.dim[d] = rows; break;
        case DIM_OPEN: t->shape.dim[d] = open_size(dp, i, d); break;
        default: t->shape.dim[d] = dp->val[i][d]; break;
        }
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "input '%s'", io->name);
    uint64_t el, bytes;
    if (us_shape_elements(&t->shape, what, &el, err) < 0)
        return USHER_ERR_INVALID;
    if (io->dtype == US_DT_BYTES) {
        if (__builtin_mul_overflow(el, (uint64_t)5, &bytes))
            return us_err_set(err, USHER_ERR_LIMIT, "%s is larger than memory", what);
    } else if (us_tensor_nbytes(io->dtype, &t->shape, what, &bytes, err) < 0) {
        return USHER_ERR_INVALID;
    }
    if (__builtin_add_overflow(*all, bytes, all) || *all > PROFILE_MAX_INPUT_BYTES)
        return us_err_set(err, USHER_ERR_LIMIT, "profiling inputs over %llu MiB at %s",
                          (unsigned long long)(PROFILE_MAX_INPUT_BYTES >> 20), what);
    t->data = us_calloc(1, bytes ? bytes : 1);
    if (!t->data)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    t->bytes = bytes;
    fill_synthetic(t, el, i);
    return USHER_OK;
}

static uint32_t rd_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* the sample's tensor src at `rows` rows: row r is its row r % (its rows); BYTES rows are
 * found by walking their elements' 4-byte length prefixes. Not batchable: src as it is. */
static int from_sample(const us_tensor *src, bool batchable, int64_t rows, us_tensor *t,
                       uint64_t *all, usher_error *err)
{
    char what[US_TENSOR_NAME_MAX + 24];
    snprintf(what, sizeof what, "sample input '%s'", src->name);
    t->shape = src->shape;
    uint64_t off[SRV_MAX_PROFILE_BATCH + 1]; /* where each row used starts, and the end */
    int64_t used = 1;
    off[0] = 0;
    off[1] = src->bytes;
    if (batchable && src->shape.rank > 0) {
        int64_t srows = src->shape.dim[0];
        if (srows < 1)
            return us_err_set(err, USHER_ERR_INVALID, "%s has no rows to repeat", what);
        if (rows < 1 || rows > SRV_MAX_PROFILE_BATCH)
            return us_err_set(err, USHER_ERR_INTERNAL, "%s: %lld rows asked", what,
                              (long long)rows);
        uint64_t el;
        if (us_shape_elements(&src->shape, what, &el, err) < 0)
            return USHER_ERR_INVALID;
        uint64_t per = el / (uint64_t)srows; /* elements per row */
        used = rows < srows ? rows : srows;
        size_t es = us_dtype_size(src->dtype);
        if (src->dtype != US_DT_BYTES) {
            uint64_t nb;
            if (us_tensor_nbytes(src->dtype, &src->shape, what, &nb, err) < 0)
                return USHER_ERR_INVALID;
            if (nb != src->bytes)
                return us_err_set(err, USHER_ERR_INVALID, "%s: %llu bytes for its shape's %llu",
                                  what, (unsigned long long)src->bytes,
                                  (unsigned long long)nb);
            for (int64_t r = 0; r <= used; r++)
                off[r] = (uint64_t)r * per * es; /* <= nb: no overflow */
        } else {
            const unsigned char *p = src->data;
            uint64_t o = 0;
            for (int64_t r = 0; r < used; r++) {
                off[r] = o;
                for (uint64_t e = 0; e < per; e++) {
                    if (src->bytes - o < 4)
                        return us_err_set(err, USHER_ERR_INVALID,
                                          "%s: row %lld element %llu lacks its length", what,
                                          (long long)r, (unsigned long long)e);
                    uint32_t len = rd_u32le(p + o);
                    if (src->bytes - o - 4 < len)
                        return us_err_set(err, USHER_ERR_INVALID,
                                          "%s: row %lld element %llu runs past the data", what,
                                          (long long)r, (unsigned long long)e);
                    o += 4 + (uint64_t)len;
                }
            }
            off[used] = o;
        }
        t->shape.dim[0] = rows;
    } else {
        rows = 1;
    }
    uint64_t total = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = r % used;
        if (__builtin_add_overflow(total, off[k + 1] - off[k], &total))
            return us_err_set(err, USHER_ERR_LIMIT, "%s is larger than memory", what);
    }
    if (__builtin_add_overflow(*all, total, all) || *all > PROFILE_MAX_INPUT_BYTES)
        return us_err_set(err, USHER_ERR_LIMIT, "profiling inputs over %llu MiB at %s",
                          (unsigned long long)(PROFILE_MAX_INPUT_BYTES >> 20), what);
    t->data = us_malloc(total ? total : 1);
    if (!t->data)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    uint64_t o = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = r % used;
        if (off[k + 1] > off[k])
            memcpy((char *)t->data + o, (const char *)src->data + off[k], off[k + 1] - off[k]);
        o += off[k + 1] - off[k];
    }
    t->bytes = total;
    return USHER_OK;
}

/* every input at `rows` rows; on failure the caller still frees in[0..n) */
static int make_inputs(const be_io *io, size_t n, bool batchable, int64_t rows,
                       const dims_plan *dp, us_tensor *in, usher_error *err)
{
    memset(in, 0, n * sizeof *in);
    uint64_t all = 0;
    for (size_t i = 0; i < n; i++) {
        us_tensor *t = &in[i];
        snprintf(t->name, sizeof t->name, "%s", io[i].name);
        t->dtype = io[i].dtype;
        int rc = dp->sample[i] ? from_sample(dp->sample[i], batchable, rows, t, &all, err)
                               : synthetic(&io[i], i, dp, rows, t, &all, err);
        if (rc < 0)
            return rc;
    }
    return USHER_OK;
}

static void free_inputs(us_tensor *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        us_free(in[i].data);
        in[i].data = NULL;
    }
}

static void load_sample(const repo_model *rm, oip_request *out, bool *have)
{
    *have = false;
    if (!rm->sample[0])
        return;
    us_mapped f;
    usher_error err;
    if (us_file_map(rm->sample, 16u << 20, &f, &err) < 0) {
        us_log(US_LOG_WARN, "model '%s': sample unreadable; profiling with synthetic inputs",
               rm->name);
        return;
    }
    oip_limits lim = oip_default_limits();
    if (oip_parse_request(f.data, f.len, 0, &lim, out, &err) == USHER_OK)
        *have = true;
    else
        us_log(US_LOG_WARN, "model '%s': sample: %s; profiling with synthetic inputs", rm->name,
               err.msg);
    us_file_unmap(&f);
}

/*
 * How each dim of each input is sized: the model's own size, the batch,
 * config.pbtxt's size (Triton's dims: without the batch dim when the model
 * batches; matched by input name), or open (tried), with usher.yaml's
 * max_dims as its bound. Config dims whose rank does not fit the model's
 * input are ignored with a warning (requests are checked against them:
 * repo.c).
 */
static void plan_dims(const srv_model *m, const be_io *io, size_t n, const oip_request *sample,
                      dims_plan *dp)
{
    const repo_model *rm = m->rm;
    memset(dp, 0, sizeof *dp);
    int off = rm->max_batch_size > 0 || m->batchable ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; sample && k < sample->n_in; k++)
            if (strcmp(sample->in[k].name, io[i].name) == 0)
                dp->sample[i] = &sample->in[k];
        const repo_input *ri = NULL;
        for (size_t k = 0; k < rm->n_inputs && k < REPO_MAX_IO; k++)
            if (strcmp(rm->inputs[k].name, io[i].name) == 0)
                ri = &rm->inputs[k];
        int rank = io[i].shape.rank;
        bool cfg = ri && ri->rank >= 0 && ri->rank + off == rank;
        bool max = ri && ri->max_rank > 0;
        if (ri && ri->rank >= 0 && !cfg)
            us_log(US_LOG_WARN,
                   "model '%s': config.pbtxt gives input '%s' %d dims, the model has %d%s; "
                   "its dims are not used for profiling",
                   rm->name, io[i].name, ri->rank, rank, off ? " with the batch dim" : "");
        for (int d = 0; d < rank; d++) {
            if (io[i].shape.dim[d] >= 0) {
                dp->kind[i][d] = DIM_FIXED;
                dp->val[i][d] = io[i].shape.dim[d];
            } else if (d == 0 && m->batchable) {
                dp->kind[i][d] = DIM_BATCH;
            } else if (cfg && d >= off && ri->dim[d - off] >= 0) {
                dp->kind[i][d] = DIM_CONFIG;
                dp->val[i][d] = ri->dim[d - off];
            } else {
                dp->kind[i][d] = DIM_OPEN;
                dp->val[i][d] =
                    max && d >= off && d - off < ri->max_rank ? ri->max[d - off] : 0;
                dp->n_open += !dp->sample[i];
            }
        }
    }
}

/* would trying size v give every open dim of a synthetic input the size u gave (all
 * of them at their bounds already)? */
static bool same_sizes(const dims_plan *dp, const be_io *io, size_t n, int64_t u, int64_t v)
{
    for (size_t i = 0; i < n; i++)
        for (int d = 0; !dp->sample[i] && d < io[i].shape.rank; d++)
            if (dp->kind[i][d] == DIM_OPEN &&
                clamp_open(dp->val[i][d], u) != clamp_open(dp->val[i][d], v))
                return false;
    return true;
}

/* ---- measuring ----------------------------------------------------------------------------- */

/* append to a bounded note (cut when full) */
__attribute__((format(printf, 3, 4))) static void note_add(char *note, size_t cap,
                                                           const char *fmt, ...)
{
    size_t l = strnlen(note, cap);
    if (l + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + l, cap - l, fmt, ap);
    va_end(ap);
}

/* profile_note for a measured model: which input, which sizes (failed: the open sizes
 * tried before, n_failed of them) */
static void describe(srv_model *m, const be_io *io, size_t n, const dims_plan *dp,
                     const int64_t *failed, int n_failed)
{
    char *note = m->profile_note;
    size_t cap = sizeof m->profile_note;
    note[0] = 0;
    bool fl = false, in = false, bo = false, st = false, any_sample = false;
    for (size_t i = 0; i < n; i++) {
        if (dp->sample[i]) {
            any_sample = true;
            continue;
        }
        us_dtype t = io[i].dtype;
        fl |= t == US_DT_FP32 || t == US_DT_FP64 || t == US_DT_FP16 || t == US_DT_BF16;
        bo |= t == US_DT_BOOL;
        st |= t == US_DT_BYTES;
        in |= !(t == US_DT_FP32 || t == US_DT_FP64 || t == US_DT_FP16 || t == US_DT_BF16 ||
                t == US_DT_BOOL || t == US_DT_BYTES);
    }
    if (any_sample)
        note_add(note, cap, "the sample request");
    if (fl || in || bo || st) {
        if (!in && !bo && !st)
            note_add(note, cap, "%srandom inputs", any_sample ? ", " : "");
        else
            note_add(note, cap, "%ssynthetic inputs (%s%s%s%s%s%s%s)", any_sample ? ", " : "",
                     fl ? "random floats" : "", fl && (in || bo || st) ? ", " : "",
                     in ? "integers 0" : "", in && (bo || st) ? ", " : "",
                     bo ? "false" : "", bo && st ? ", " : "", st ? "strings \"1\"" : "");
        if (any_sample)
            note_add(note, cap, " for the rest");
    }
    for (int pass = 0; pass < 2; pass++) {
        bool first = true;
        for (size_t i = 0; i < n; i++)
            for (int d = 0; !dp->sample[i] && d < io[i].shape.rank; d++) {
                int k = dp->kind[i][d];
                if (k != (pass ? DIM_CONFIG : DIM_OPEN))
                    continue;
                note_add(note, cap, "%s%s[%d] = %lld%s",
                         first ? (pass ? "; from config.pbtxt: " : "; dynamic dims ") : ", ",
                         io[i].name, d,
                         (long long)(pass ? dp->val[i][d] : open_size(dp, i, d)),
                         !pass && dp->val[i][d] > 0 && dp->val[i][d] < dp->open
                             ? " (its max_dims)"
                             : "");
                first = false;
            }
        if (!pass && !first && n_failed > 0) {
            note_add(note, cap, " (");
            for (int k = 0; k < n_failed; k++)
                note_add(note, cap, "%s%lld", k ? ", " : "", (long long)failed[k]);
            note_add(note, cap, " failed)");
        }
    }
}

/* one input at one batch size: a warm-up run, then the median of PROFILE_RUNS runs */
static int measure(rt_worker *w, const us_tensor *in, size_t n_in, uint64_t *lat,
                   usher_error *err)
{
    us_tensor out[RT_MAX_IO];
    size_t nout = 0;
    uint64_t t[PROFILE_RUNS + 1];
    for (int r = 0; r <= PROFILE_RUNS; r++) {
        uint64_t t0 = rt_now_ns();
        int rc = rt_worker_run(w, in, n_in, out, &nout, 60ull * 1000000000ull, err);
        t[r] = rt_now_ns() - t0;
        if (rc < 0)
            return rc;
        be_outputs_free(out, nout);
    }
    qsort(t + 1, PROFILE_RUNS, sizeof t[0], cmp_u64);
    *lat = t[1 + PROFILE_RUNS / 2];
    return USHER_OK;
}

static int start_worker(const usher_server *s, const repo_model *rm, rt_worker **w,
                        usher_error *err)
{
    rt_worker_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.exe = s->exe;
    wo.model_path = rm->path;
    wo.be = be_default_options();
    wo.be.intra_threads = 1;
    wo.be.inter_threads = 1;
    wo.be.ort_library = s->ort_lib[0] ? s->ort_lib : NULL;
    return rt_worker_start(&wo, w, err);
}

/* elements per row of each input (the batch dim excluded when the model batches) */
static void ref_sizes(const us_tensor *in, size_t n, bool batchable, double *ref)
{
    for (size_t i = 0; i < n && i < RT_MAX_IO; i++) {
        uint64_t el;
        if (us_shape_elements(&in[i].shape, "input", &el, NULL) < 0) {
            ref[i] = 0;
            continue;
        }
        int64_t rows = batchable && in[i].shape.rank > 0 ? in[i].shape.dim[0] : 1;
        ref[i] = rows > 0 ? (double)el / (double)rows : 0;
    }
}

/*
 * Measure one model. A model its worker cannot load gets m->error; one no
 * input runs is left unprofiled (prof_max 0, lat_ns 0) with profile_note
 * saying why, and is served.
 */
static void profile(usher_server *s, srv_model *m)
{
    const repo_model *rm = m->rm;
    memset(m->lat_ns, 0, sizeof m->lat_ns);
    memset(m->ref_elems, 0, sizeof m->ref_elems);
    m->prof_max = 0;
    m->profile_note[0] = 0;
    rt_worker *w = NULL;
    usher_error err;
    if (start_worker(s, rm, &w, &err) < 0) {
        snprintf(m->error, sizeof m->error, "%s", err.msg);
        return;
    }
    const be_io *in_io, *out_io;
    size_t n_in;
    rt_worker_io(w, &in_io, &n_in, &out_io);
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
    dims_plan dp;
    plan_dims(m, in_io, n_in, have_sample ? &sample : NULL, &dp);
    bool used_sample = false;
    for (size_t i = 0; i < n_in; i++)
        used_sample |= dp.sample[i] != NULL;

    /* batch 1: the open dims at 1, then larger until the model takes the input */
    us_tensor in[RT_MAX_IO];
    char first[200] = "";
    int64_t failed[N_TRIES];
    int n_failed = 0;
    bool ok = false;
    for (int k = 0; k < (dp.n_open ? N_TRIES : 1) && !ok; k++) {
        if (k > 0 && same_sizes(&dp, in_io, n_in, dp.open, try_sizes[k]))
            continue; /* every open dim is at its bound already */
        dp.open = try_sizes[k];
        uint64_t lat = 0;
        int rc = make_inputs(in_io, n_in, m->batchable, 1, &dp, in, &err);
        if (rc == USHER_OK) {
            ref_sizes(in, n_in, m->batchable, m->ref_elems);
            rc = measure(w, in, n_in, &lat, &err);
        }
        free_inputs(in, n_in);
        if (rc == USHER_OK) {
            m->lat_ns[1] = lat;
            m->prof_max = 1;
            ok = true;
            break;
        }
        if (!first[0])
            snprintf(first, sizeof first, "%.180s", err.msg);
        failed[n_failed++] = dp.open;
        us_log(US_LOG_INFO, "model '%s': profiling input refused: %s", rm->name, err.msg);
        if (rc == USHER_ERR_IO) { /* the worker died or hung on it: a fresh one */
            rt_worker_stop(w, 0);
            w = NULL;
            if (start_worker(s, rm, &w, &err) < 0) {
                snprintf(m->error, sizeof m->error,
                         "profiling: the worker died on a profiling input and did not come "
                         "back: %.400s",
                         err.msg);
                goto out;
            }
            rt_worker_io(w, &in_io, &n_in, &out_io);
        }
    }
    if (!ok) {
        memset(m->ref_elems, 0, sizeof m->ref_elems);
        snprintf(m->profile_note, sizeof m->profile_note,
                 "not profiled: %s%.150s; latency learned from its first requests",
                 used_sample ? "the sample request failed: " : "", first);
        us_log(US_LOG_WARN, "model '%s': %s", rm->name, m->profile_note);
        goto out;
    }
    describe(m, in_io, n_in, &dp, failed, n_failed);
    us_log(US_LOG_INFO, "model '%s': profiled with %s", rm->name, m->profile_note);

    /* the larger batches, at the same sizes */
    for (int b = 2; b <= cap && 2 * (double)m->lat_ns[b / 2] * 1e-6 <= m->slo_ms; b *= 2) {
        uint64_t lat = 0;
        int rc = make_inputs(in_io, n_in, m->batchable, b, &dp, in, &err);
        if (rc == USHER_OK)
            rc = measure(w, in, n_in, &lat, &err);
        free_inputs(in, n_in);
        if (rc < 0)
            break; /* a larger batch the model refuses: keep what worked */
        m->lat_ns[b] = lat;
        m->prof_max = b; /* the plan picks the batch (srv_plan_cpu_models) */
    }
    /* batch sizes between the powers of two: interpolated (in doubles: a tiny model's
     * larger batch may measure faster than the smaller one) */
    for (int b = 2; b <= m->prof_max; b++)
        if (!m->lat_ns[b]) {
            int lo = 1;
            while (lo * 2 <= b)
                lo *= 2;
            int hi = lo * 2;
            double l = (double)m->lat_ns[lo],
                   v = hi <= SRV_MAX_PROFILE_BATCH && m->lat_ns[hi]
                           ? l + ((double)m->lat_ns[hi] - l) * (b - lo) / (hi - lo)
                           : l * b / lo;
            m->lat_ns[b] = v < 1 ? 1 : (uint64_t)v;
        }
out:
    if (have_sample)
        oip_request_free(&sample);
    if (w)
        rt_worker_stop(w, 2000000000ull);
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

void srv_plan_cpu_one(usher_server *s, srv_model *m)
{
    m->slo_ms = m->rm->slo_ms > 0 ? m->rm->slo_ms : s->p.default_slo_ms;
    if (!m->error[0])
        profile(s, m);
    srv_plan_cpu_models(s, m, 1);
}

/*
 * The replicas a model's files fix, before the rate's need: usher.yaml's `replicas`, else
 * config.pbtxt's instance_group with Triton's meaning (repo_instances: KIND_GPU counts per
 * GPU, one device's worth on a machine without GPUs, where they run on the CPU); 0: none,
 * the plan sizes them. *from_ig: the instance_group's.
 */
static int fixed_replicas(const usher_server *s, const repo_model *rm, bool *from_ig)
{
    _Static_assert(REPO_MAX_INSTANCES <= RT_MAX_REPLICAS, "instance_group must fit the runtime");
    *from_ig = false;
    if (rm->replicas > 0)
        return rm->replicas;
    int n = repo_instances(rm, s->gpus, NULL);
    *from_ig = n > 0;
    return n;
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
        m->capacity = 0;
        if (m->error[0])
            continue;
        m->threads = rm->threads > 0 ? rm->threads : 1;
        if (m->prof_max < 1) {
            /* not profiled (profile_note says why): usher.yaml's batch and replicas or 1;
             * the runtime learns the latencies from the first requests */
            m->max_batch = m->batchable && rm->max_batch > 0 ? rm->max_batch : 1;
            if (rm->max_batch_size > 0 && rm->max_batch_size < m->max_batch)
                m->max_batch = (int)rm->max_batch_size;
            bool ig;
            int fixed = fixed_replicas(s, rm, &ig);
            m->replicas = fixed > 0 ? fixed : 1;
            if (ig)
                m->plan_note = "replicas from config.pbtxt's instance_group";
            want += m->replicas * m->threads;
            continue;
        }
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
        double need = m->rate > 0 && thr > 0 ? ceil(m->rate / thr) : 1;
        bool ig;
        int fixed = fixed_replicas(s, rm, &ig);
        m->replicas = fixed > 0 ? fixed : need < RT_MAX_REPLICAS ? (int)need : RT_MAX_REPLICAS;
        if (m->replicas < 1)
            m->replicas = 1;
        if (ig && !m->plan_note)
            m->plan_note = need > m->replicas ? "fewer replicas than its rate needs: "
                                                "config.pbtxt's instance_group fixes them"
                                              : "replicas from config.pbtxt's instance_group";
        want += m->replicas * m->threads;
    }
    /* more threads than cores: scale the planned replicas down, each model keeps one */
    if (want > s->cpus) {
        double f = (double)s->cpus / want;
        for (size_t i = 0; i < n; i++) {
            srv_model *m = &ms[i];
            bool ig;
            if (m->error[0] || fixed_replicas(s, m->rm, &ig) > 0)
                continue; /* fixed by its files: kept */
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
        if (!m->error[0] && m->prof_max > 0 && m->lat_ns[m->max_batch])
            m->capacity = m->replicas * (double)m->max_batch /
                          ((double)m->lat_ns[m->max_batch] * 1e-9);
    }
}

int srv_plan_file(const usher_server *s, const char *path, srv_model *ms, size_t n,
                  usher_error *err)
{
    _Static_assert(PF_MAX_BATCH <= RT_MAX_BATCH, "a plan's batch must fit the runtime");
    _Static_assert(PF_MAX_BATCH <= 65535, "a plan's batch must fit srv_model.rbatch");
    for (size_t i = 0; i < n; i++) {
        ms[i].replicas = 0;
        ms[i].max_batch = 0;
        memset(ms[i].gpu, 0xff, sizeof ms[i].gpu); /* -1: none */
        memset(ms[i].share, 0, sizeof ms[i].share);
        memset(ms[i].rbatch, 0, sizeof ms[i].rbatch);
        memset(ms[i].plan_lat_ms, 0, sizeof ms[i].plan_lat_ms);
        memset(ms[i].plan_coloc_ms, 0, sizeof ms[i].plan_coloc_ms);
        ms[i].plan_group[0] = 0;
    }
    pf_plan f;
    int rc = pf_load(path, &f, err);
    if (rc < 0)
        return rc;
    /* a model is served one way: alone or in its merge group - pf_load refuses a plan that
     * places a group's member alone too, naming both (docs/serve.md, Merge groups) */
    for (uint32_t g = 0; g < f.n_gpus; g++)
        for (uint32_t r = 0; r < f.g[g].n; r++) {
            const pf_replica *rp = &f.g[g].r[r];
            /* a merge group's replica (merge_groups[]) is one of each member's: one run of
             * the merged graph carries `batch` rows of every member (docs/merge.md); the
             * members then form the group (group.c) and run as one worker */
            const pf_group *pg = NULL;
            for (uint32_t k = 0; k < f.n_groups && !pg; k++)
                if (strcmp(f.groups[k].name, rp->model) == 0)
                    pg = &f.groups[k];
            for (uint32_t k = 0; k < (pg ? pg->n_members : 1); k++) {
                const char *name = pg ? pg->members[k] : rp->model;
                srv_model *m = NULL;
                for (size_t i = 0; i < n && !m; i++)
                    if (strcmp(ms[i].rm->name, name) == 0)
                        m = &ms[i];
                if (!m)
                    continue; /* planned but not in this repository */
                if (m->replicas >= RT_MAX_REPLICAS) {
                    rc = us_err_set(err, USHER_ERR_LIMIT, "%s:%zu: model '%s' has more than %d "
                                    "replicas", f.label, rp->line, m->rm->name, RT_MAX_REPLICAS);
                    pf_free(&f);
                    return rc;
                }
                if (pg)
                    snprintf(m->plan_group, sizeof m->plan_group, "%s", pg->name);
                m->gpu[m->replicas] = (short)(g < 32767 ? g : 32767);
                m->share[m->replicas] = (unsigned char)ceil(rp->share);
                m->rbatch[m->replicas] = (unsigned short)rp->batch; /* 1..PF_MAX_BATCH */
                m->plan_lat_ms[m->replicas] = rp->latency_ms;
                m->plan_coloc_ms[m->replicas] = rp->latency_colocated_ms;
                m->replicas++;
                if (rp->batch > m->max_batch)
                    m->max_batch = rp->batch;
            }
        }
    pf_free(&f);
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
        /* a member of the plan's merge group: one run carries rows of every member, so
         * its batch dim is used whatever the plan's batch per member (group.c) */
        if (m->plan_group[0]) {
            m->batchable = m->rm->max_batch_size != 0;
            /* and usher.yaml's max_batch may raise the rows one request of it brings (the
             * plan's batch is rows per member and run: a request above it waits for a run
             * of its own) */
            if (m->batchable && m->rm->max_batch > m->max_batch)
                m->max_batch = m->rm->max_batch;
        }
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
        char ver[24], lat[24] = "-", cap[24] = "-", note[640];
        snprintf(ver, sizeof ver, "%lld", (long long)m->rm->version);
        if (m->max_batch >= 0 && m->max_batch <= SRV_MAX_PROFILE_BATCH && m->lat_ns[m->max_batch])
            snprintf(lat, sizeof lat, "%.3f", (double)m->lat_ns[m->max_batch] * 1e-6);
        if (m->capacity > 0)
            snprintf(cap, sizeof cap, "%.1f", m->capacity);
        /* the plan's note, then how the latencies were measured (or why not) */
        snprintf(note, sizeof note, "%s%s%s%s", m->plan_note ? m->plan_note : "",
                 m->plan_note && m->profile_note[0] ? "; " : "",
                 m->profile_note[0] && m->prof_max > 0 ? "profiled with " : "", m->profile_note);
        fprintf(f, "%-24s %-8s %8d %7d %6d %12s %12s %10.6g %10.6g %s\n", m->rm->name, ver,
                m->replicas, m->threads, m->max_batch, lat, cap, m->rate, m->slo_ms, note);
    }
    if (s->gpus > 0)
        fprintf(f, "(%d CPU cores, %d CUDA device%s; CPU latencies measured at load with one "
                   "thread per replica)\n", s->cpus, s->gpus, s->gpus == 1 ? "" : "s");
    else
        fprintf(f, "(%d CPU cores, no GPU: %s; latencies measured at load with one thread per "
                   "replica)\n", s->cpus, s->gpu_why);
    pthread_rwlock_unlock(&s->rt_lock);
}
