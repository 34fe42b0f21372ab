/*
 * trace_azure.c - the Azure Functions trace importer (layer 7, prefix sim_,
 * internal helpers tr_).
 *
 * Input format (AzurePublicDataset, AzureFunctionsDataset2019.md,
 * invocations_per_function_md.anon.dNN.csv), one file per day:
 *
 *   HashOwner,HashApp,HashFunction,Trigger,1,2,...,1440
 *   <hex>,<hex>,<hex>,http,0,3,0,...,1
 *
 * Accepted: LF or CRLF line ends, a UTF-8 byte order mark before the
 * header, empty lines (skipped), any number M >= 1 of minute columns as
 * long as the header names them 1..M in order. Rejected, each with
 * "FILE:LINE: field N (NAME): ...": a header that is not the above, a row
 * whose field count differs from its header's, an empty hash or trigger, a
 * quote (the dataset has none; quoted CSV is not read), a count that is not
 * a decimal integer in [0, 10^12], a NUL byte, a line over max_line bytes.
 *
 * Memory (the streaming design). Rows are functions and columns minutes,
 * so arrivals in time order need every row before the first minute can be
 * emitted. Models are few, so the importer keeps one count per model per
 * minute of the slice and forgets each row once added:
 *
 *   table   n_models x n_slice_minutes x 8 bytes   (20 models, a day: 230 KB)
 *   line    max_line + 1 bytes                     (default 64 KiB)
 *   chunk   64 KiB of file read at a time (read(2), not stdio, so every
 *           byte is counted by the allocation hook)
 *   row     M x 8 bytes for the counts of the row being read
 *   streams n_models x ~80 bytes, the merge heap n_models x 12 bytes
 *
 * none of which depends on the number of rows. BLOCK mapping needs the
 * number of used functions before it can map the first one: it reads the
 * files once more, counting only. After creation the files are closed and
 * next() works from the table alone.
 *
 * Mapping (AlpaServe, alpa_serve/trace/trace.py): rows with no invocation
 * in the slice are dropped; the rest are numbered in file order (file 1's
 * rows, then file 2's ...) and mapped by sim_map. AlpaServe keys functions
 * by HashFunction across days and numbers each function once; this
 * importer keeps no names, so with several files a function is numbered
 * once per file it appears in (SIM_MAP_HASH keeps it on one model).
 */
/* no fused multiply-add: the bits must not depend on the target's FMA (gcc in
 * ISO C mode, -std=c17 as CMake sets it, does not contract; clang's default
 * would, within expressions). -ffast-math is not supported. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "sim/workload_impl.h"

#define TR_CHUNK 65536
#define TR_MAX_LINE_CAP (16u << 20)
#define TR_MAX_COUNT 1000000000000ull /* per function per minute */
#define TR_MAX_CELLS (1ull << 26)    /* models x minutes in the table */
#define TR_MAX_MINUTES 10000000ull   /* minute columns in one file */

static const char *const HEADER[4] = {"HashOwner", "HashApp", "HashFunction", "Trigger"};

sim_azure_trace_params sim_azure_trace_default_params(void)
{
    sim_azure_trace_params p;
    memset(&p, 0, sizeof p);
    p.n_models = 1;
    p.map = SIM_MAP_STRIPE;
    p.arrivals = SIM_TRACE_UNIFORM;
    p.interval_s = 60;
    p.rate_scale = 1.0;
    p.cv = 1.0;
    p.max_line = 65536;
    p.seed = 1;
    return p;
}

/* ---------------------------------------------------------------------- */
/* a bounded line reader over a file descriptor or memory                  */

typedef struct tr_reader {
    const ws_trace_input *in;
    int fd;
    size_t mem_pos;
    uint8_t *chunk;
    size_t chunk_len, chunk_pos;
    int eof;
    char *line;
    size_t line_len, max_line;
    uint64_t lineno;
} tr_reader;

static int tr_open(tr_reader *r, const ws_trace_input *in, uint8_t *chunk, char *line,
                   size_t max_line, usher_error *err)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->fd = -1;
    r->chunk = chunk;
    r->line = line;
    r->max_line = max_line;
    if (in->path) {
        r->fd = open(in->path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0)
            return us_err_set(err, USHER_ERR_IO, "%s: cannot open: %s", in->label,
                              strerror(errno));
    }
    return USHER_OK;
}

static void tr_close(tr_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

static int tr_fill(tr_reader *r, usher_error *err)
{
    r->chunk_pos = 0;
    r->chunk_len = 0;
    if (!r->in->path) {
        size_t n = r->in->len - r->mem_pos;
        if (n > TR_CHUNK)
            n = TR_CHUNK;
        memcpy(r->chunk, r->in->mem + r->mem_pos, n);
        r->mem_pos += n;
        r->chunk_len = n;
    } else {
        ssize_t n;
        do
            n = read(r->fd, r->chunk, TR_CHUNK);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return us_err_set(err, USHER_ERR_IO, "%s:%llu: read failed: %s", r->in->label,
                              (unsigned long long)r->lineno + 1, strerror(errno));
        r->chunk_len = (size_t)n;
    }
    if (r->chunk_len == 0)
        r->eof = 1;
    return USHER_OK;
}

/* 1: r->line holds the next line (NUL-terminated, line end removed);
 * 0: end of input; < 0: error. */
static int tr_next_line(tr_reader *r, usher_error *err)
{
    r->line_len = 0;
    int any = 0;
    for (;;) {
        if (r->chunk_pos == r->chunk_len) {
            if (r->eof)
                break;
            int rc = tr_fill(r, err);
            if (rc < 0)
                return rc;
            if (r->eof)
                break;
        }
        any = 1;
        uint8_t *p = r->chunk + r->chunk_pos, *end = r->chunk + r->chunk_len;
        uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = (size_t)((nl ? nl : end) - p);
        if (r->line_len + take > r->max_line)
            return us_err_set(err, USHER_ERR_LIMIT, "%s:%llu: line longer than %zu bytes",
                              r->in->label, (unsigned long long)r->lineno + 1, r->max_line);
        memcpy(r->line + r->line_len, p, take);
        r->line_len += take;
        r->chunk_pos += take;
        if (nl) {
            r->chunk_pos++;
            break;
        }
    }
    if (!any)
        return 0;
    r->lineno++;
    if (r->line_len && r->line[r->line_len - 1] == '\r')
        r->line_len--;
    r->line[r->line_len] = '\0';
    if (memchr(r->line, '\0', r->line_len))
        return us_err_set(err, USHER_ERR_PARSE, "%s:%llu: NUL byte in the line", r->in->label,
                          (unsigned long long)r->lineno);
    /* a byte order mark before the header */
    if (r->lineno == 1 && r->line_len >= 3 && memcmp(r->line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(r->line, r->line + 3, r->line_len - 2);
        r->line_len -= 3;
    }
    return 1;
}

/* ---------------------------------------------------------------------- */
/* header and rows                                                          */

/* Next comma-separated field of *pos (advanced past the comma); NULL past
 * the last field. The field is NUL-terminated in place. */
static char *next_field(char **pos, int *done)
{
    if (*done)
        return NULL;
    char *f = *pos, *c = strchr(f, ',');
    if (c) {
        *c = '\0';
        *pos = c + 1;
    } else {
        *done = 1;
    }
    return f;
}

static void field_name(uint64_t j, char *buf, size_t cap)
{
    if (j >= 1 && j <= 4)
        snprintf(buf, cap, "%s", HEADER[j - 1]);
    else
        snprintf(buf, cap, "minute %llu", (unsigned long long)(j - 4));
}

/* Read and check the header of one input: *minutes = M. */
static int read_header(tr_reader *r, uint64_t *minutes, usher_error *err)
{
    int rc;
    do
        rc = tr_next_line(r, err);
    while (rc == 1 && r->line_len == 0);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s:1: empty file: expected the header "
                          "HashOwner,HashApp,HashFunction,Trigger,1,...,1440",
                          r->in->label);
    char *pos = r->line;
    int done = 0;
    uint64_t j = 0;
    char *f;
    while ((f = next_field(&pos, &done))) {
        j++;
        char want[32];
        if (j <= 4)
            snprintf(want, sizeof want, "%s", HEADER[j - 1]);
        else
            snprintf(want, sizeof want, "%llu", (unsigned long long)(j - 4));
        if (strcmp(f, want) != 0)
            return us_err_set(err, USHER_ERR_PARSE,
                              "%s:%llu: header field %llu is '%.40s', expected '%s'",
                              r->in->label, (unsigned long long)r->lineno,
                              (unsigned long long)j, f, want);
        if (j > 4 && j - 4 > TR_MAX_MINUTES)
            return us_err_set(err, USHER_ERR_LIMIT, "%s:%llu: more than %llu minute columns",
                              r->in->label, (unsigned long long)r->lineno,
                              (unsigned long long)TR_MAX_MINUTES);
    }
    if (j <= 4)
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s:%llu: header has %llu fields: expected "
                          "HashOwner,HashApp,HashFunction,Trigger and the minutes 1,2,...",
                          r->in->label, (unsigned long long)r->lineno, (unsigned long long)j);
    *minutes = j - 4;
    return USHER_OK;
}

/* Parse one data row (r->line) of an input with M minutes into counts[0..M).
 * *hash: FNV-1a of the three hashes (for SIM_MAP_HASH). */
static int parse_row(tr_reader *r, uint64_t M, uint64_t *counts, uint64_t *hash,
                     usher_error *err)
{
    char *pos = r->line;
    int done = 0;
    uint64_t j = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    char *f;
    char name[40];
    const char *q = memchr(r->line, '"', r->line_len);
    if (q) {
        /* which field holds the quote */
        uint64_t k = 1;
        for (const char *c = r->line; c < q; c++)
            k += *c == ',';
        field_name(k, name, sizeof name);
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s:%llu: field %llu (%s): quoted fields are not supported",
                          r->in->label, (unsigned long long)r->lineno, (unsigned long long)k,
                          name);
    }
    while ((f = next_field(&pos, &done))) {
        j++;
        if (j > M + 4)
            continue; /* counted, reported below */
        if (j <= 4) {
            if (!*f) {
                field_name(j, name, sizeof name);
                return us_err_set(err, USHER_ERR_PARSE, "%s:%llu: field %llu (%s) is empty",
                                  r->in->label, (unsigned long long)r->lineno,
                                  (unsigned long long)j, name);
            }
            if (j <= 3) {
                for (const char *c = f; *c; c++)
                    h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
                h = (h ^ 0xff) * 0x100000001b3ull; /* separator */
            }
            continue;
        }
        uint64_t v = 0;
        const char *c = f;
        if (!*c)
            goto bad_count;
        for (; *c; c++) {
            if (*c < '0' || *c > '9')
                goto bad_count;
            v = v * 10 + (uint64_t)(*c - '0');
            if (v > TR_MAX_COUNT) {
                field_name(j, name, sizeof name);
                return us_err_set(err, USHER_ERR_LIMIT,
                                  "%s:%llu: field %llu (%s): count '%.24s' is over %llu",
                                  r->in->label, (unsigned long long)r->lineno,
                                  (unsigned long long)j, name, f, TR_MAX_COUNT);
            }
        }
        counts[j - 5] = v;
        continue;
    bad_count:
        field_name(j, name, sizeof name);
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s:%llu: field %llu (%s): '%.24s' is not a count "
                          "(a non-negative decimal integer)",
                          r->in->label, (unsigned long long)r->lineno, (unsigned long long)j, name,
                          f);
    }
    if (j != M + 4)
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s:%llu: %llu fields, the header has %llu (4 + %llu minutes)",
                          r->in->label, (unsigned long long)r->lineno, (unsigned long long)j,
                          (unsigned long long)(M + 4), (unsigned long long)M);
    *hash = h;
    return USHER_OK;
}

/* ---------------------------------------------------------------------- */
/* the source                                                               */

typedef struct tr_stream {
    ws_rng rng;
    uint64_t iv;    /* current interval */
    uint64_t left;  /* UNIFORM: arrivals left in it */
    double u;       /* UNIFORM: fraction of the interval at the last arrival */
    double t;       /* next arrival, ns */
    double rate;    /* POISSON/GAMMA: per ns in the interval */
} tr_stream;

typedef struct trace_source {
    sim_source base;
    uint32_t n_models;
    sim_trace_arrivals arrivals;
    double shape; /* GAMMA: 1/cv^2, 0 = fixed intervals */
    double rate_scale;
    uint64_t n_min;   /* minutes in the slice */
    uint64_t iv_min;  /* minutes per interval */
    uint64_t n_iv;
    uint64_t *table;  /* [model][minute of the slice] */
    tr_stream *st;
    ws_heap heap;
} trace_source;

static void trace_free(sim_source *src)
{
    trace_source *s = (trace_source *)src;
    if (!s)
        return;
    ws_heap_free(&s->heap);
    us_free(s->table);
    us_free(s->st);
    us_free(s);
}

static uint64_t iv_count(const trace_source *s, uint32_t m, uint64_t iv)
{
    const uint64_t *row = s->table + (size_t)m * s->n_min;
    uint64_t a = iv * s->iv_min, b = a + s->iv_min, c = 0;
    if (b > s->n_min)
        b = s->n_min;
    for (uint64_t k = a; k < b; k++)
        c += row[k];
    return c;
}

static double iv_start_ns(const trace_source *s, uint64_t iv)
{
    return (double)(iv * s->iv_min) * 60e9;
}

static double iv_len_ns(const trace_source *s, uint64_t iv)
{
    uint64_t a = iv * s->iv_min, b = a + s->iv_min;
    if (b > s->n_min)
        b = s->n_min;
    return (double)(b - a) * 60e9;
}

/* The model's next arrival, or INFINITY when it has no more. */
static double stream_next(trace_source *s, uint32_t m)
{
    tr_stream *st = &s->st[m];
    if (s->arrivals == SIM_TRACE_UNIFORM) {
        while (st->left == 0) {
            if (++st->iv >= s->n_iv)
                return INFINITY;
            st->left = iv_count(s, m, st->iv);
            st->u = 0.0;
        }
        /* the smallest of `left` uniforms on [u, 1) */
        double v = ws_rng_open(&st->rng);
        double w = ws_exp(ws_log(v) / (double)st->left);
        st->u += (1.0 - st->u) * (1.0 - w);
        if (st->u > 0x1.fffffffffffffp-1)
            st->u = 0x1.fffffffffffffp-1;
        st->left--;
        return iv_start_ns(s, st->iv) + st->u * iv_len_ns(s, st->iv);
    }
    for (;;) {
        if (st->rate > 0.0) {
            double gap;
            if (s->arrivals == SIM_TRACE_POISSON)
                gap = ws_rng_exp(&st->rng) / st->rate;
            else if (s->shape == 0.0)
                gap = 1.0 / st->rate;
            else
                gap = ws_rng_gamma(&st->rng, s->shape) / (st->rate * s->shape);
            double t = st->t + gap;
            if (t < iv_start_ns(s, st->iv) + iv_len_ns(s, st->iv)) {
                st->t = t;
                return t;
            }
        }
        if (++st->iv >= s->n_iv)
            return INFINITY;
        st->t = iv_start_ns(s, st->iv);
        st->rate = (double)iv_count(s, m, st->iv) * s->rate_scale / iv_len_ns(s, st->iv);
    }
}

static int trace_next(sim_source *src, sim_arrival *out, usher_error *err)
{
    trace_source *s = (trace_source *)src;
    (void)err;
    if (s->heap.n == 0)
        return 0;
    uint32_t m = s->heap.model[0];
    out->t_ns = s->heap.t[0];
    out->model = m;
    double t = stream_next(s, m);
    if (isinf(t))
        ws_heap_pop(&s->heap);
    else
        ws_heap_replace_top(&s->heap, ws_ns(t));
    return 1;
}

static const sim_source_ops trace_ops = {trace_next, trace_free};

static int check_params(const sim_azure_trace_params *p, usher_error *err)
{
    const char *w = "azure trace";
    if (p->n_models == 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s: n_models is 0", w);
    if (p->map != SIM_MAP_STRIPE && p->map != SIM_MAP_BLOCK && p->map != SIM_MAP_HASH)
        return us_err_set(err, USHER_ERR_INVALID, "%s: map = %d is not a sim_map", w,
                          (int)p->map);
    if (p->arrivals != SIM_TRACE_UNIFORM && p->arrivals != SIM_TRACE_POISSON &&
        p->arrivals != SIM_TRACE_GAMMA)
        return us_err_set(err, USHER_ERR_INVALID, "%s: arrivals = %d is not a sim_trace_arrivals",
                          w, (int)p->arrivals);
    if (p->interval_s == 0 || p->interval_s % 60)
        return us_err_set(err, USHER_ERR_INVALID,
                          "%s: interval_s = %u is not a positive multiple of 60", w,
                          p->interval_s);
    if (!(p->rate_scale > 0.0 && p->rate_scale <= 1e9))
        return us_err_set(err, USHER_ERR_INVALID, "%s: rate_scale = %g is not in (0, 1e9]", w,
                          p->rate_scale);
    if (p->arrivals == SIM_TRACE_UNIFORM && p->rate_scale != 1.0)
        return us_err_set(err, USHER_ERR_INVALID,
                          "%s: rate_scale = %g needs POISSON or GAMMA arrivals (UNIFORM replays "
                          "the counts exactly)",
                          w, p->rate_scale);
    if (!(p->cv >= 0.0 && p->cv <= SIM_CV_MAX))
        return us_err_set(err, USHER_ERR_INVALID, "%s: cv = %g is not in [0, %g]", w, p->cv,
                          SIM_CV_MAX);
    if (p->max_line < 16 || p->max_line > TR_MAX_LINE_CAP)
        return us_err_set(err, USHER_ERR_INVALID, "%s: max_line = %zu is not in 16 .. %u", w,
                          p->max_line, TR_MAX_LINE_CAP);
    return USHER_OK;
}

/* The importer's working buffers, one set for every pass. */
typedef struct tr_bufs {
    uint8_t *chunk;
    char *line;
    uint64_t *row;
} tr_bufs;

/* One pass over every input. count_only: *n_used gets the used rows; else
 * each used row is added to s->table with the mapping (n_used_total known
 * for BLOCK). */
static int tr_pass(const ws_trace_input *in, uint32_t n_in, const uint64_t *minutes,
                   const sim_azure_trace_params *p, tr_bufs *b, trace_source *s, int count_only,
                   uint64_t n_used_total, uint64_t *n_used, sim_azure_trace_stats *st,
                   usher_error *err)
{
    uint64_t base = 0, used = 0, lo = p->start_minute, hi = p->start_minute + s->n_min;
    for (uint32_t fi = 0; fi < n_in; fi++) {
        tr_reader r;
        int rc = tr_open(&r, &in[fi], b->chunk, b->line, p->max_line, err);
        if (rc < 0)
            return rc;
        uint64_t M = 0;
        rc = read_header(&r, &M, err);
        if (rc == 0 && M != minutes[fi])
            rc = us_err_set(err, USHER_ERR_IO, "%s: changed while it was read", in[fi].label);
        /* the part of this file's minutes inside the slice */
        uint64_t a = lo > base ? lo - base : 0, e = hi > base ? hi - base : 0;
        if (e > M)
            e = M;
        while (rc == 0) {
            rc = tr_next_line(&r, err);
            if (rc <= 0)
                break;
            rc = 0;
            if (r.line_len == 0)
                continue;
            uint64_t hash = 0;
            rc = parse_row(&r, M, b->row, &hash, err);
            if (rc < 0)
                break;
            if (!count_only && st)
                st->rows++;
            uint64_t sum = 0;
            for (uint64_t k = a; k < e; k++)
                sum += b->row[k]; /* <= 10^12 x 10^7: no overflow */
            if (sum == 0)
                continue;
            if (!count_only) {
                if (p->map == SIM_MAP_BLOCK && used >= n_used_total) {
                    /* the first pass counted fewer: the file changed under us */
                    rc = us_err_set(err, USHER_ERR_IO, "%s:%llu: changed while it was read",
                                    in[fi].label, (unsigned long long)r.lineno);
                    break;
                }
                uint32_t m;
                if (p->map == SIM_MAP_STRIPE)
                    m = (uint32_t)(used % p->n_models);
                else if (p->map == SIM_MAP_BLOCK)
                    m = (uint32_t)((unsigned __int128)p->n_models * used / n_used_total);
                else {
                    uint64_t k = hash;
                    m = (uint32_t)(ws_splitmix64(&k) % p->n_models);
                }
                uint64_t *cell = s->table + (size_t)m * s->n_min + (base + a - lo);
                for (uint64_t k = a; k < e; k++, cell++) {
                    if (__builtin_add_overflow(*cell, b->row[k], cell)) {
                        rc = us_err_set(err, USHER_ERR_LIMIT,
                                        "%s:%llu: model %u's count in minute %llu overflows",
                                        in[fi].label, (unsigned long long)r.lineno, m,
                                        (unsigned long long)(k + 1));
                        break;
                    }
                }
                if (st)
                    st->invocations += sum;
            }
            used++;
        }
        tr_close(&r);
        if (rc < 0)
            return rc;
        base += M;
    }
    *n_used = used;
    return USHER_OK;
}

int ws_trace_azure_open(const ws_trace_input *in, uint32_t n_in, const sim_azure_trace_params *p,
                        sim_source **out, sim_azure_trace_stats *stats, usher_error *err)
{
    if (!p || !out || (!in && n_in))
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_azure_trace: NULL argument");
    *out = NULL;
    int rc = check_params(p, err);
    if (rc < 0)
        return rc;
    if (n_in == 0 || n_in > SIM_TRACE_MAX_FILES)
        return us_err_set(err, USHER_ERR_INVALID, "azure trace: %u files, expected 1 .. %d", n_in,
                          SIM_TRACE_MAX_FILES);
    sim_azure_trace_stats st;
    memset(&st, 0, sizeof st);
    uint64_t minutes[SIM_TRACE_MAX_FILES] = {0};
    tr_bufs b = {0};
    trace_source *s = us_calloc(1, sizeof *s);
    b.chunk = us_malloc(TR_CHUNK);
    b.line = us_malloc(p->max_line + 1);
    if (!s || !b.chunk || !b.line) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "azure trace: out of memory");
        goto fail;
    }
    s->base.ops = &trace_ops;
    s->n_models = p->n_models;
    s->arrivals = p->arrivals;
    s->rate_scale = p->rate_scale;
    s->shape = p->cv == 0.0 ? 0.0 : 1.0 / (p->cv * p->cv);
    s->iv_min = p->interval_s / 60;

    /* headers first: the minutes of every file, so the slice is known */
    uint64_t total = 0, max_m = 0;
    for (uint32_t fi = 0; fi < n_in; fi++) {
        tr_reader r;
        rc = tr_open(&r, &in[fi], b.chunk, b.line, p->max_line, err);
        if (rc == 0)
            rc = read_header(&r, &minutes[fi], err);
        tr_close(&r);
        if (rc < 0)
            goto fail;
        total += minutes[fi];
        if (minutes[fi] > max_m)
            max_m = minutes[fi];
    }
    st.minutes = total;
    if (p->start_minute >= total) {
        rc = us_err_set(err, USHER_ERR_INVALID,
                        "azure trace: start_minute %llu is past the trace's %llu minutes",
                        (unsigned long long)p->start_minute, (unsigned long long)total);
        goto fail;
    }
    s->n_min = total - p->start_minute;
    if (p->n_minutes && p->n_minutes < s->n_min)
        s->n_min = p->n_minutes;
    if ((uint64_t)p->n_models * s->n_min > TR_MAX_CELLS) {
        rc = us_err_set(err, USHER_ERR_LIMIT,
                        "azure trace: %u models x %llu minutes is over the %llu-cell table limit "
                        "(replay a shorter slice: n_minutes)",
                        p->n_models, (unsigned long long)s->n_min,
                        (unsigned long long)TR_MAX_CELLS);
        goto fail;
    }
    s->n_iv = (s->n_min + s->iv_min - 1) / s->iv_min;
    s->table = us_calloc((size_t)p->n_models * s->n_min, sizeof *s->table);
    b.row = us_mallocarray(max_m, sizeof *b.row);
    s->st = us_calloc(p->n_models, sizeof *s->st);
    if (!s->table || !b.row || !s->st) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "azure trace: out of memory for the %u x %llu table",
                        p->n_models, (unsigned long long)s->n_min);
        goto fail;
    }
    st.table_bytes = (size_t)p->n_models * s->n_min * sizeof *s->table;
    rc = ws_heap_init(&s->heap, p->n_models, err);
    if (rc < 0)
        goto fail;

    uint64_t n_used = 0;
    if (p->map == SIM_MAP_BLOCK) {
        rc = tr_pass(in, n_in, minutes, p, &b, s, 1, 0, &n_used, NULL, err);
        if (rc < 0)
            goto fail;
    }
    rc = tr_pass(in, n_in, minutes, p, &b, s, 0, n_used, &n_used, &st, err);
    if (rc < 0)
        goto fail;
    st.functions_used = n_used;
    if (p->map != SIM_MAP_HASH && n_used < p->n_models) {
        rc = us_err_set(err, USHER_ERR_INVALID,
                        "%s: %llu functions have invocations in the replayed minutes, fewer than "
                        "the %u models (each model needs one; SIM_MAP_HASH allows fewer)",
                        in[0].label, (unsigned long long)n_used, p->n_models);
        goto fail;
    }
    us_free(b.chunk);
    us_free(b.line);
    us_free(b.row);
    b.chunk = NULL, b.line = NULL, b.row = NULL;

    /* each model's first arrival */
    for (uint32_t m = 0; m < p->n_models; m++) {
        tr_stream *ts = &s->st[m];
        ws_rng_seed(&ts->rng, p->seed, m);
        ts->iv = 0;
        if (p->arrivals == SIM_TRACE_UNIFORM) {
            ts->left = iv_count(s, m, 0);
        } else {
            ts->t = 0.0;
            ts->rate = (double)iv_count(s, m, 0) * s->rate_scale / iv_len_ns(s, 0);
        }
        double t = stream_next(s, m);
        if (!isinf(t))
            ws_heap_push(&s->heap, ws_ns(t), m);
    }
    if (stats)
        *stats = st;
    *out = &s->base;
    return USHER_OK;

fail:
    us_free(b.chunk);
    us_free(b.line);
    us_free(b.row);
    trace_free(s ? &s->base : NULL);
    return rc;
}

int sim_source_azure_trace(const sim_azure_trace_params *p, sim_source **out,
                           sim_azure_trace_stats *stats, usher_error *err)
{
    if (!p || !out)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_azure_trace: NULL argument");
    *out = NULL;
    if (!p->paths || p->n_paths == 0 || p->n_paths > SIM_TRACE_MAX_FILES)
        return us_err_set(err, USHER_ERR_INVALID, "azure trace: n_paths = %u, expected 1 .. %d",
                          p->n_paths, SIM_TRACE_MAX_FILES);
    ws_trace_input in[SIM_TRACE_MAX_FILES];
    for (uint32_t i = 0; i < p->n_paths; i++) {
        if (!p->paths[i])
            return us_err_set(err, USHER_ERR_INVALID, "azure trace: paths[%u] is NULL", i);
        in[i] = (ws_trace_input){.label = p->paths[i], .path = p->paths[i]};
    }
    return ws_trace_azure_open(in, p->n_paths, p, out, stats, err);
}
