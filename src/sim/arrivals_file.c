/*
 * arrivals_file.c - recorded arrivals as a source (layer 7, prefix sim_):
 * the trace format `usher load --arrivals trace:FILE` replays, so that the
 * simulator and the live server can be driven by the very same requests.
 *
 * Format (read by core/arrivals.c, the reader usher load's lg_trace_parse
 * uses too):
 *   - one arrival a line, "time_s model": a plain decimal time in seconds
 *     from the start, in [0, 10^6], then blanks, then a model name;
 *   - blank lines and lines whose first non-blank byte is '#' are skipped;
 *     CRLF ends are accepted; a line is at most 1024 bytes;
 *   - times need not be in order: the arrivals are sorted by (time, model
 *     index), as usher load sorts its schedule;
 *   - a time is rounded to the microsecond (llround(t x 10^6)), as usher
 *     load schedules it, so both replay the same instants.
 *
 * Invariants: every model name is one of the workload's (a name it lacks is
 * refused with the file's line); the whole file is read, checked and
 * sorted when the source is created, so next() never fails; memory is 16
 * bytes per arrival (this source holds the trace, unlike the generators:
 * it has to sort it), and the file is mapped, at most 1 GiB.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arrivals.h"
#include "core/err.h"
#include "core/file.h"
#include "core/hash.h"
#include "sim/workload_impl.h"

#define MAX_TIME_S 1e6              /* usher load's limit */
#define MAX_ARRIVALS ((size_t)1 << 26)
#define MAX_FILE_BYTES ((uint64_t)1 << 30)

typedef struct pair {
    uint64_t t; /* microseconds */
    uint32_t m;
} pair;

typedef struct lines_src {
    sim_source base;
    pair *a;
    size_t n, next;
} lines_src;

static int lines_next(sim_source *s, sim_arrival *out, usher_error *err)
{
    (void)err;
    lines_src *l = (lines_src *)s;
    if (l->next >= l->n)
        return 0;
    out->t_ns = l->a[l->next].t * 1000;
    out->model = l->a[l->next].m;
    l->next++;
    return 1;
}

static void lines_free(sim_source *s)
{
    lines_src *l = (lines_src *)s;
    us_free(l->a);
    us_free(l);
}

static const sim_source_ops lines_ops = {lines_next, lines_free};

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->m > y->m) - (x->m < y->m);
}

static int grow(pair **a, size_t *cap, size_t n)
{
    if (n < *cap)
        return USHER_OK;
    if (*cap >= MAX_ARRIVALS)
        return USHER_ERR_LIMIT;
    size_t nc = *cap ? *cap * 2 : 4096;
    if (nc > MAX_ARRIVALS)
        nc = MAX_ARRIVALS;
    pair *p = us_realloc(*a, nc * sizeof *p);
    if (!p)
        return USHER_ERR_NOMEM;
    *a = p;
    *cap = nc;
    return USHER_OK;
}

static int parse(const char *text, size_t len, const sim_lines_params *p, const us_map *names,
                 pair **out, size_t *n_out, usher_error *err)
{
    const char *label = p->path;
    size_t cap = 0, n = 0;
    pair *a = NULL;
    int rc;
    us_arrivals_reader r;
    us_arrival_line x;
    us_arrivals_init(&r, text, len, label, MAX_TIME_S);
    while ((rc = us_arrivals_next(&r, &x, err)) > 0) {
        void *v = us_map_get(names, x.name);
        if (!v) {
            rc = us_arrivals_refuse(&r, &x, p->names_label, err);
            goto fail;
        }
        if ((rc = grow(&a, &cap, n)) < 0) {
            rc = rc == USHER_ERR_NOMEM
                     ? us_err_set(err, rc, "%s:%zu: out of memory", label, r.lineno)
                     : us_err_set(err, rc, "%s:%zu: more than %zu arrivals", label, r.lineno,
                                  MAX_ARRIVALS);
            goto fail;
        }
        a[n++] = (pair){.t = x.t_us, .m = (uint32_t)((uintptr_t)v - 1)};
    }
    if (rc < 0)
        goto fail;
    if (n == 0) {
        rc = us_err_set(err, USHER_ERR_PARSE, "%s: no arrivals (lines are 'time_s model')",
                        label);
        goto fail;
    }
    if (n > 1)
        qsort(a, n, sizeof *a, cmp_pair);
    *out = a;
    *n_out = n;
    return USHER_OK;
fail:
    us_free(a);
    return rc;
}

int sim_source_lines(const sim_lines_params *p, sim_source **out, uint64_t *last_ns,
                     usher_error *err)
{
    *out = NULL;
    if (!p || !p->path || !p->names || p->n_models == 0)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_lines: a file and model names "
                          "are needed");
    us_map names;
    us_map_init(&names);
    us_mapped m = {0};
    pair *a = NULL;
    size_t n = 0;
    lines_src *l = NULL;
    int rc;
    for (uint32_t i = 0; i < p->n_models; i++)
        if (us_map_put(&names, p->names[i], (void *)(uintptr_t)(i + 1), NULL) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s", p->path);
            goto out;
        }
    if ((rc = us_file_map(p->path, MAX_FILE_BYTES, &m, err)) < 0)
        goto out;
    if ((rc = parse((const char *)m.data, m.len, p, &names, &a, &n, err)) < 0)
        goto out;
    l = us_calloc(1, sizeof *l);
    if (!l) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: %zu arrivals", p->path, n);
        goto out;
    }
    l->base.ops = &lines_ops;
    l->a = a; /* the source's now */
    l->n = n;
    if (last_ns)
        *last_ns = a[n - 1].t * 1000;
    a = NULL;
    *out = &l->base;
    rc = USHER_OK;
out:
    us_free(a);
    us_file_unmap(&m);
    us_map_free(&names);
    return rc;
}
