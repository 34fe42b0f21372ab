/*
 * verify.c - the merged model checked against the separate ones on ONNX
 * Runtime (layer 4, merge_; docs/merge.md "Verification").
 *
 * Each of verify_runs rounds draws one set of inputs per model (seeded:
 * floats uniform in [-1, 1), integers in [0, 4), booleans 0/1; dims the
 * model leaves dynamic get the `shapes` override for that input or
 * verify_dim; `values` fixes a scalar integer input such as a sample rate;
 * with `data`, one more round feeds those inputs real data read from files),
 * runs every source model in its own session and the merged model once with
 * all of them, and compares each output: same shape, and for floating-point
 * outputs max|merged - separate| <= verify_tol x scale, where scale is the
 * largest finite |separate| of that output (an all-zero output must match
 * exactly; a NaN or infinity must be the same in both);
 * integer and boolean outputs must be equal. The first failure stops it
 * with the model, output, error and bound. Sessions run the CPU provider.
 * After the last round the merged run is timed against the separate runs on
 * those inputs (21 interleaved rounds after 3 warm-up ones, median of the
 * per-round ratio): rep.measured_speedup, which usher_merge_write uses to
 * drop a stacked merge that is slower here than the separate models.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/be.h"
#include "core/alloc.h"
#include "core/err.h"
#include "merge_impl.h"

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* "NAME=2x512" for input name: the shape; false if no override names it */
static bool shape_override(const usher_merge *m, const char *name, us_shape *s, usher_error *err,
                           int *rc)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < m->p.n_shapes; i++) {
        const char *o = m->p.shapes[i];
        if (strncmp(o, name, nl) != 0 || o[nl] != '=')
            continue;
        const char *p = o + nl + 1;
        s->rank = 0;
        while (*p) {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 0 || v > (1 << 24) || s->rank >= US_TENSOR_MAX_RANK ||
                (*end && *end != 'x')) {
                *rc = us_err_set(err, USHER_ERR_INVALID,
                                 "shape override '%s': want NAME=D0xD1x... (each 0..16777216)", o);
                return true;
            }
            s->dim[s->rank++] = v;
            p = *end ? end + 1 : end;
        }
        return true;
    }
    return false;
}

static bool value_override(const usher_merge *m, const char *name, int64_t *v)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < m->p.n_values; i++) {
        const char *o = m->p.values[i];
        if (strncmp(o, name, nl) == 0 && o[nl] == '=') {
            char *end;
            long long x = strtoll(o + nl + 1, &end, 10);
            if (*end == 0 && end != o + nl + 1) {
                *v = x;
                return true;
            }
        }
    }
    return false;
}

/* "NAME=FILE" for input name: the file, or NULL */
static const char *data_file(const usher_merge *m, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < m->p.n_data; i++)
        if (strncmp(m->p.data[i], name, nl) == 0 && m->p.data[i][nl] == '=')
            return m->p.data[i] + nl + 1;
    return NULL;
}

/* the file's bytes into t (which has its shape and buffer): the size must match */
static int read_data(const char *path, us_tensor *t, usher_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return us_err_set(err, USHER_ERR_IO, "verify: input '%s': cannot open %s", t->name, path);
    size_t got = fread(t->data, 1, (size_t)t->bytes, f);
    int extra = fgetc(f);
    fclose(f);
    if (got != t->bytes || extra != EOF)
        return us_err_set(err, USHER_ERR_INVALID,
                          "verify: input '%s': %s must hold exactly %llu bytes (%s, shape from "
                          "--shape or the model)",
                          t->name, path, (unsigned long long)t->bytes, us_dtype_name(t->dtype));
    return USHER_OK;
}

static int make_input(const usher_merge *m, const be_io *io, uint64_t *seed, us_tensor *t,
                      bool real, usher_error *err)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", io->name);
    t->dtype = io->dtype;
    int rc = USHER_OK;
    if (!shape_override(m, io->name, &t->shape, err, &rc)) {
        t->shape = io->shape;
        for (int d = 0; d < t->shape.rank; d++)
            if (t->shape.dim[d] < 0)
                t->shape.dim[d] = m->p.verify_dim;
    }
    if (rc < 0)
        return rc;
    if (!us_shape_matches(&io->shape, &t->shape))
        return us_err_set(err, USHER_ERR_INVALID, "verify: shape override for '%s' does not "
                          "match its declared shape", io->name);
    uint64_t n, bytes;
    if ((rc = us_shape_elements(&t->shape, io->name, &n, err)) < 0 ||
        (rc = us_tensor_nbytes(t->dtype, &t->shape, io->name, &bytes, err)) < 0)
        return rc;
    if (bytes > ((uint64_t)1 << 30))
        return us_err_set(err, USHER_ERR_LIMIT, "verify: input '%s' over 1 GiB", io->name);
    t->data = us_malloc(bytes ? (size_t)bytes : 1);
    t->bytes = bytes;
    if (!t->data)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    const char *file = real ? data_file(m, io->name) : NULL;
    if (file)
        return read_data(file, t, err);
    int64_t fixed;
    bool has_fixed = value_override(m, io->name, &fixed);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = rnd(seed);
        double u = (double)(r >> 11) / 9007199254740992.0;
        int64_t iv = has_fixed ? fixed : (int64_t)(r % 4);
        switch (t->dtype) {
        case US_DT_FP32: ((float *)t->data)[i] = (float)(2 * u - 1); break;
        case US_DT_FP64: ((double *)t->data)[i] = 2 * u - 1; break;
        case US_DT_INT64: ((int64_t *)t->data)[i] = iv; break;
        case US_DT_INT32: ((int32_t *)t->data)[i] = (int32_t)iv; break;
        case US_DT_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)(r & 1); break;
        default:
            return us_err_set(err, USHER_ERR_UNSUPPORTED,
                              "verify: input '%s' of type %s is not generated", io->name,
                              us_dtype_name(t->dtype));
        }
    }
    return USHER_OK;
}

static double max_abs_f(const us_tensor *t)
{
    double s = 0;
    size_t n = (size_t)(t->bytes / us_dtype_size(t->dtype));
    for (size_t i = 0; i < n; i++) {
        double v = t->dtype == US_DT_FP32 ? ((const float *)t->data)[i]
                                          : ((const double *)t->data)[i];
        if (isfinite(v))
            s = fmax(s, fabs(v));
    }
    return s;
}

static int compare(usher_merge *m, uint32_t k, const us_tensor *ref, const us_tensor *got,
                   usher_error *err)
{
    const char *label = m->src[k].label;
    bool same_shape = ref->shape.rank == got->shape.rank && ref->bytes == got->bytes;
    for (int d = 0; same_shape && d < ref->shape.rank; d++)
        same_shape = ref->shape.dim[d] == got->shape.dim[d];
    if (!same_shape || ref->dtype != got->dtype) {
        char a[128], b[128];
        return us_err_set(err, USHER_ERR_INVALID,
                          "verification failed: %s output '%s': shape %s %s separately, %s %s "
                          "merged",
                          label, ref->name, us_dtype_name(ref->dtype),
                          us_shape_str(&ref->shape, a, sizeof a), us_dtype_name(got->dtype),
                          us_shape_str(&got->shape, b, sizeof b));
    }
    if (ref->dtype == US_DT_FP32 || ref->dtype == US_DT_FP64) {
        double scale = max_abs_f(ref), e = 0;
        size_t n = (size_t)(ref->bytes / us_dtype_size(ref->dtype));
        for (size_t i = 0; i < n; i++) {
            double x = ref->dtype == US_DT_FP32 ? ((const float *)ref->data)[i]
                                                : ((const double *)ref->data)[i];
            double y = got->dtype == US_DT_FP32 ? ((const float *)got->data)[i]
                                                : ((const double *)got->data)[i];
            if ((isnan(x) && isnan(y)) || (isinf(x) && x == y))
                continue; /* the same NaN or infinity in both: they agree */
            double d = fabs(x - y);
            if (!(d <= e)) /* NaN in one of them counts as the worst */
                e = isnan(d) ? INFINITY : d;
        }
        double rel = scale > 0 ? e / scale : (e > 0 ? INFINITY : 0);
        if (rel > m->rep.verify_max_rel_err)
            m->rep.verify_max_rel_err = rel;
        if (!(e <= m->p.verify_tol * scale))
            return us_err_set(err, USHER_ERR_INVALID,
                              "verification failed: %s output '%s': max abs error %.3g, allowed "
                              "%.3g (%g x scale %.3g)",
                              label, ref->name, e, m->p.verify_tol * scale, m->p.verify_tol,
                              scale);
        return USHER_OK;
    }
    if (ref->bytes && memcmp(ref->data, got->data, (size_t)ref->bytes) != 0)
        return us_err_set(err, USHER_ERR_INVALID,
                          "verification failed: %s output '%s' (%s) differs", label, ref->name,
                          us_dtype_name(ref->dtype));
    return USHER_OK;
}

static void free_tensors(us_tensor *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        us_free(t[i].data);
        t[i].data = NULL;
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the merged run against the separate runs on the same inputs, interleaved round by
 * round: the median ratio separate / merged goes to rep.measured_speedup */
static int time_runs(usher_merge *m, be_session *ms, us_tensor *min, size_t mn_in, us_tensor *mout,
                     size_t mn_out, be_session **ss, us_tensor **in, size_t *nin, us_tensor **out,
                     size_t *nout, usher_error *err)
{
    enum { WARM = 3, ROUNDS = 21 };
    double ratio[ROUNDS];
    struct timespec a, b, c;
    int rc = USHER_OK;
    for (int r = 0; r < WARM + ROUNDS && rc == USHER_OK; r++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (uint32_t k = 0; k < m->n_src && rc == USHER_OK; k++) {
            rc = be_run(ss[k], in[k], nin[k], out[k], err);
            be_outputs_free(out[k], nout[k]);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (rc == USHER_OK)
            rc = be_run(ms, min, mn_in, mout, err);
        be_outputs_free(mout, mn_out);
        clock_gettime(CLOCK_MONOTONIC, &c);
        double ts = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        double tm = (double)(c.tv_sec - b.tv_sec) + (double)(c.tv_nsec - b.tv_nsec) * 1e-9;
        if (r >= WARM)
            ratio[r - WARM] = tm > 0 ? ts / tm : 1;
    }
    if (rc < 0)
        return us_err_prefix(err, rc, "verify: timing run");
    qsort(ratio, ROUNDS, sizeof *ratio, cmp_d);
    m->rep.measured_speedup = ratio[ROUNDS / 2];
    return USHER_OK;
}

int merge_verify(usher_merge *m, const char *merged_path, usher_error *err)
{
    be_options o = be_default_options();
    o.ort_library = m->p.ort_library;
    o.intra_threads = 1;
    uint32_t K = m->n_src;
    be_session *ms = NULL, **ss = us_calloc(K, sizeof *ss);
    us_tensor **in = us_calloc(K, sizeof *in), **out = us_calloc(K, sizeof *out);
    us_tensor *min = NULL, *mout = NULL;
    size_t *nin = us_calloc(K, sizeof *nin), *nout = us_calloc(K, sizeof *nout);
    int rc = USHER_OK;
    if (!ss || !in || !out || !nin || !nout) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = be_open(merged_path, &o, &ms, err)) < 0) {
        rc = us_err_prefix(err, rc, "verify: the merged model does not load in ONNX Runtime");
        goto done;
    }
    size_t mn_in = be_n_inputs(ms), mn_out = be_n_outputs(ms);
    min = us_calloc(mn_in ? mn_in : 1, sizeof *min);
    mout = us_calloc(mn_out ? mn_out : 1, sizeof *mout);
    if (!min || !mout) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint32_t k = 0; k < K; k++) {
        if ((rc = be_open(m->src[k].path, &o, &ss[k], err)) < 0)
            goto done;
        nin[k] = be_n_inputs(ss[k]);
        nout[k] = be_n_outputs(ss[k]);
        in[k] = us_calloc(nin[k] ? nin[k] : 1, sizeof **in);
        out[k] = us_calloc(nout[k] ? nout[k] : 1, sizeof **out);
        if (!in[k] || !out[k]) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    int rounds = m->p.verify_runs + (m->p.n_data > 0); /* the last one with the real data */
    for (int r = 0; r < rounds; r++) {
        bool real = m->p.n_data > 0 && r == rounds - 1;
        uint64_t seed = m->p.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)r * 7919 + 1;
        /* the same input tensors (by value) for every model: the stacked kind needs the
         * models' batch sizes equal, and the shared kind is tested with equal ones too */
        for (uint32_t k = 0; k < K; k++) {
            uint64_t s = seed;
            for (size_t i = 0; i < nin[k]; i++)
                if ((rc = make_input(m, be_input(ss[k], i), &s, &in[k][i], real, err)) < 0)
                    goto done;
            for (size_t i = 0; i < nin[k]; i++) /* different values per model (random ones) */
                if (in[k][i].dtype == US_DT_FP32 && !(real && data_file(m, in[k][i].name)))
                    for (uint64_t e = 0; e < in[k][i].bytes / 4; e++)
                        ((float *)in[k][i].data)[e] *= (float)(1.0 - 0.1 * k / K);
            if ((rc = be_run(ss[k], in[k], nin[k], out[k], err)) < 0) {
                rc = us_err_prefix(err, rc, "verify: %s", m->src[k].path);
                goto done;
            }
        }
        for (size_t i = 0; i < mn_in; i++) {
            const be_io *io = be_input(ms, i);
            bool found = false;
            for (uint32_t k = 0; k < K && !found; k++)
                for (size_t j = 0; j < nin[k] && !found; j++) {
                    char want[2 * US_TENSOR_NAME_MAX];
                    snprintf(want, sizeof want, "%s/%s", m->src[k].label, in[k][j].name);
                    if (strcmp(want, io->name) == 0) {
                        min[i] = in[k][j];
                        snprintf(min[i].name, sizeof min[i].name, "%s", io->name);
                        found = true;
                    }
                }
            if (!found) {
                rc = us_err_set(err, USHER_ERR_INTERNAL,
                                "verify: merged input '%s' is no model's input", io->name);
                goto done;
            }
        }
        if ((rc = be_run(ms, min, mn_in, mout, err)) < 0) {
            rc = us_err_prefix(err, rc, "verify: the merged model failed to run");
            goto done;
        }
        for (uint32_t k = 0; k < K && rc == USHER_OK; k++)
            for (size_t j = 0; j < nout[k] && rc == USHER_OK; j++) {
                char want[2 * US_TENSOR_NAME_MAX];
                snprintf(want, sizeof want, "%s/%s", m->src[k].label, out[k][j].name);
                size_t i = 0;
                while (i < mn_out && strcmp(be_output(ms, i)->name, want) != 0)
                    i++;
                if (i == mn_out)
                    rc = us_err_set(err, USHER_ERR_INVALID,
                                    "verification failed: the merged model has no output '%s'",
                                    want);
                else
                    rc = compare(m, k, &out[k][j], &mout[i], err);
            }
        be_outputs_free(mout, mn_out);
        for (uint32_t k = 0; k < K; k++)
            be_outputs_free(out[k], nout[k]);
        if (rc == USHER_OK && r == rounds - 1)
            rc = time_runs(m, ms, min, mn_in, mout, mn_out, ss, in, nin, out, nout, err);
        for (uint32_t k = 0; k < K; k++)
            free_tensors(in[k], nin[k]);
        if (rc < 0)
            goto done;
    }
done:
    if (mout)
        be_outputs_free(mout, be_n_outputs(ms));
    for (uint32_t k = 0; in && k < K; k++) {
        if (out && out[k])
            be_outputs_free(out[k], nout[k]);
        free_tensors(in[k], nin ? nin[k] : 0);
        us_free(in[k]);
        us_free(out ? out[k] : NULL);
        be_close(ss ? ss[k] : NULL);
    }
    be_close(ms);
    us_free(min);
    us_free(mout);
    us_free(in);
    us_free(out);
    us_free(ss);
    us_free(nin);
    us_free(nout);
    return rc;
}
