/*
 * hash.h - 64-bit hashing and a string-keyed hash map (layer 1).
 *
 * us_hash64 follows the published XXH64 algorithm (four 64-bit lanes of
 * multiply-rotate over 32-byte stripes, then an avalanche), which runs at
 * memory speed; it hashes weights for the merger, so its output is part of
 * on-disk golden files and must never change.
 *
 * us_map maps NUL-terminated keys to pointers by open addressing with
 * linear probing; it does not own keys (they must outlive the map, e.g.
 * arena strings). Deletion is not supported: maps live as long as the
 * graph they index.
 */
#ifndef US_HASH_H
#define US_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t us_hash64(const void *data, size_t n, uint64_t seed);

/* Incremental form of us_hash64: same result for the same bytes. */
typedef struct us_hash_state {
    uint64_t v[4];
    uint64_t total;
    uint64_t seed;
    unsigned char tail[32];
    size_t ntail;
} us_hash_state;
void us_hash_init(us_hash_state *s, uint64_t seed);
void us_hash_update(us_hash_state *s, const void *data, size_t n);
uint64_t us_hash_final(const us_hash_state *s);

typedef struct us_map_slot {
    const char *key;
    uint64_t h;
    void *val;
} us_map_slot;

typedef struct us_map {
    us_map_slot *slots;
    size_t cap, n; /* cap is a power of two, or 0 */
} us_map;

void us_map_init(us_map *m);
void us_map_free(us_map *m);
/* The value stored under key, or NULL. */
void *us_map_get(const us_map *m, const char *key);
/*
 * Store val under key. If the key exists, its value is left alone and
 * *existing receives it (when existing != NULL), and 0 is returned.
 * Returns 1 when inserted, -1 on allocation failure.
 */
int us_map_put(us_map *m, const char *key, void *val, void **existing);

#endif
