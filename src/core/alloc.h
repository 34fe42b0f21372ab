/*
 * alloc.h - the one allocation hook of usher (layer 1).
 *
 * Every heap allocation in the library goes through us_malloc and friends
 * (third-party allocations too, where the library lets us pass an
 * allocator: protobuf-c does). The hook
 *   - counts live bytes, peak bytes and the number of allocations, so tests
 *     can prove that a failed load leaves nothing behind;
 *   - can fail the N-th allocation on demand, so every out-of-memory path is
 *     reachable from a test (Lua's ltests.c, SQLite's test_malloc.c).
 * Invariant: us_alloc_live_bytes() == 0 after every object created through
 * the library has been freed.
 */
#ifndef US_ALLOC_H
#define US_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *us_malloc(size_t n);
void *us_calloc(size_t count, size_t size); /* overflow-checked, zeroed */
void *us_realloc(void *p, size_t n);        /* p may be NULL; on failure p stays valid */
void us_free(void *p);                      /* NULL allowed */
char *us_strdup(const char *s);
char *us_strndup(const char *s, size_t n);
/* n elements of `size` bytes: NULL on overflow or failure. */
void *us_mallocarray(size_t count, size_t size);

size_t us_alloc_live_bytes(void);
size_t us_alloc_peak_bytes(void);
void us_alloc_reset_peak(void);
/* Allocations attempted since start (failed ones included). */
uint64_t us_alloc_count(void);
/*
 * Make the allocation number `nth` counted from now fail (1 = the very next
 * one); 0 disables. Only that one fails: later calls succeed again, which is
 * the harsher test of cleanup paths.
 */
void us_alloc_fail_nth(uint64_t nth);
/* Number of allocations that were failed on purpose since start. */
uint64_t us_alloc_injected_failures(void);

/* Overflow-checked size arithmetic: return 0 on overflow, 1 on success. */
static inline int us_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline int us_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline int us_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline int us_add_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

#endif
