/* arena.c - see arena.h. */
#include "arena.h"

#include <string.h>

#include "alloc.h"

struct us_arena_chunk {
    us_arena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

void us_arena_init(us_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->used_total = 0;
}

void *us_arena_alloc(us_arena *a, size_t n)
{
    size_t need;
    if (!us_add_size(n, 15, &need))
        return NULL;
    need &= ~(size_t)15;
    if (need == 0)
        need = 16;
    us_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > a->chunk_size ? need : a->chunk_size, total;
        if (!us_add_size(cap, sizeof *c, &total))
            return NULL;
        us_arena_chunk *nc = us_malloc(total);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        if (c && need > a->chunk_size) {
            /* big one-off: keep the current chunk at the head for small ones */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used_total += need;
    memset(p, 0, need);
    return p;
}

void *us_arena_array(us_arena *a, size_t count, size_t size)
{
    size_t n;
    if (!us_mul_size(count, size, &n))
        return NULL;
    return us_arena_alloc(a, n);
}

char *us_arena_strndup(us_arena *a, const char *s, size_t n)
{
    char *d = us_arena_alloc(a, n + 1);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *us_arena_strdup(us_arena *a, const char *s)
{
    return us_arena_strndup(a, s, strlen(s));
}

void us_arena_free(us_arena *a)
{
    if (!a)
        return;
    us_arena_chunk *c = a->head;
    while (c) {
        us_arena_chunk *n = c->next;
        us_free(c);
        c = n;
    }
    a->head = NULL;
    a->used_total = 0;
}
