/*
 * alloc.c - counting, fault-injecting allocation hook (see alloc.h).
 *
 * Each block carries a 16-byte header holding its size, so frees can be
 * accounted without a side table and the payload keeps malloc's 16-byte
 * alignment. Counters are atomics: the hook is safe from any thread.
 */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16u

static _Atomic size_t g_live;
static _Atomic size_t g_peak;
static _Atomic uint64_t g_count;
static _Atomic uint64_t g_fail_at; /* absolute allocation number to fail */
static _Atomic uint64_t g_injected;

static int should_fail(void)
{
    uint64_t n = atomic_fetch_add(&g_count, 1) + 1;
    uint64_t at = atomic_load(&g_fail_at);
    if (at != 0 && n == at) {
        atomic_store(&g_fail_at, 0);
        atomic_fetch_add(&g_injected, 1);
        return 1;
    }
    return 0;
}

static void account_add(size_t n)
{
    size_t live = atomic_fetch_add(&g_live, n) + n;
    size_t peak = atomic_load(&g_peak);
    while (live > peak && !atomic_compare_exchange_weak(&g_peak, &peak, live))
        ;
}

void *us_malloc(size_t n)
{
    size_t total;
    if (!us_add_size(n, HDR, &total) || should_fail())
        return NULL;
    unsigned char *p = malloc(total);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    account_add(n);
    return p + HDR;
}

void *us_mallocarray(size_t count, size_t size)
{
    size_t n;
    if (!us_mul_size(count, size, &n))
        return NULL;
    return us_malloc(n);
}

void *us_calloc(size_t count, size_t size)
{
    size_t n;
    if (!us_mul_size(count, size, &n))
        return NULL;
    void *p = us_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *us_realloc(void *p, size_t n)
{
    if (!p)
        return us_malloc(n);
    unsigned char *base = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    size_t total;
    if (!us_add_size(n, HDR, &total) || should_fail())
        return NULL;
    unsigned char *q = realloc(base, total);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    atomic_fetch_sub(&g_live, old);
    account_add(n);
    return q + HDR;
}

void us_free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub(&g_live, n);
    free(base);
}

char *us_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = us_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *us_strdup(const char *s)
{
    return us_strndup(s, strlen(s));
}

size_t us_alloc_live_bytes(void) { return atomic_load(&g_live); }
size_t us_alloc_peak_bytes(void) { return atomic_load(&g_peak); }
void us_alloc_reset_peak(void) { atomic_store(&g_peak, atomic_load(&g_live)); }
uint64_t us_alloc_count(void) { return atomic_load(&g_count); }
uint64_t us_alloc_injected_failures(void) { return atomic_load(&g_injected); }

void us_alloc_fail_nth(uint64_t nth)
{
    atomic_store(&g_fail_at, nth ? atomic_load(&g_count) + nth : 0);
}
