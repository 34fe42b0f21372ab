/* hash.c - see hash.h. */
#include "hash.h"

#include <string.h>

#include "alloc.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only; see CMakeLists.txt */
}

static inline uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t round_(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}

static inline uint64_t merge_(uint64_t acc, uint64_t v)
{
    acc ^= round_(0, v);
    return acc * P1 + P4;
}

void us_hash_init(us_hash_state *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->v[0] = seed + P1 + P2;
    s->v[1] = seed + P2;
    s->v[2] = seed;
    s->v[3] = seed - P1;
}

static void stripes(uint64_t v[4], const unsigned char *p, size_t nstripes)
{
    uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
    for (size_t i = 0; i < nstripes; i++, p += 32) {
        a = round_(a, rd64(p));
        b = round_(b, rd64(p + 8));
        c = round_(c, rd64(p + 16));
        d = round_(d, rd64(p + 24));
    }
    v[0] = a;
    v[1] = b;
    v[2] = c;
    v[3] = d;
}

void us_hash_update(us_hash_state *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->total += n;
    if (s->ntail) {
        size_t take = 32 - s->ntail;
        if (take > n)
            take = n;
        memcpy(s->tail + s->ntail, p, take);
        s->ntail += take;
        p += take;
        n -= take;
        if (s->ntail < 32)
            return;
        stripes(s->v, s->tail, 1);
        s->ntail = 0;
    }
    stripes(s->v, p, n / 32);
    p += n / 32 * 32;
    n %= 32;
    memcpy(s->tail, p, n);
    s->ntail = n;
}

uint64_t us_hash_final(const us_hash_state *s)
{
    uint64_t h;
    if (s->total >= 32) {
        h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) + rotl(s->v[3], 18);
        for (int i = 0; i < 4; i++)
            h = merge_(h, s->v[i]);
    } else {
        h = s->seed + P5;
    }
    h += s->total;
    const unsigned char *p = s->tail;
    size_t n = s->ntail;
    while (n >= 8) {
        h ^= round_(0, rd64(p));
        h = rotl(h, 27) * P1 + P4;
        p += 8;
        n -= 8;
    }
    if (n >= 4) {
        h ^= (uint64_t)rd32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
        n -= 4;
    }
    while (n) {
        h ^= (*p) * P5;
        h = rotl(h, 11) * P1;
        p++;
        n--;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t us_hash64(const void *data, size_t n, uint64_t seed)
{
    us_hash_state s;
    us_hash_init(&s, seed);
    us_hash_update(&s, data, n);
    return us_hash_final(&s);
}

/* ---- map ----------------------------------------------------------------- */

void us_map_init(us_map *m) { memset(m, 0, sizeof *m); }

void us_map_free(us_map *m)
{
    if (!m)
        return;
    us_free(m->slots);
    memset(m, 0, sizeof *m);
}

static uint64_t key_hash(const char *k) { return us_hash64(k, strlen(k), 0x75736865); }

void *us_map_get(const us_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    uint64_t h = key_hash(key);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const us_map_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->h == h && strcmp(s->key, key) == 0)
            return s->val;
    }
}

static int grow(us_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    us_map_slot *ns = us_calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        us_map_slot *s = &m->slots[i];
        if (!s->key)
            continue;
        size_t j = s->h & (cap - 1);
        while (ns[j].key)
            j = (j + 1) & (cap - 1);
        ns[j] = *s;
    }
    us_free(m->slots);
    m->slots = ns;
    m->cap = cap;
    return 0;
}

int us_map_put(us_map *m, const char *key, void *val, void **existing)
{
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    uint64_t h = key_hash(key);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        us_map_slot *s = &m->slots[i];
        if (!s->key) {
            s->key = key;
            s->h = h;
            s->val = val;
            m->n++;
            return 1;
        }
        if (s->h == h && strcmp(s->key, key) == 0) {
            if (existing)
                *existing = s->val;
            return 0;
        }
    }
}
