/*
 * arena.h - bump allocator for objects that share one lifetime (layer 1).
 *
 * A graph, its nodes, names and attributes live and die together, so they
 * come from one arena and are released with one us_arena_free (nginx's
 * pool habit). Memory comes from the counting hook in chunks; a request
 * larger than a chunk gets a chunk of its own. Returned memory is 16-byte
 * aligned and zeroed.
 */
#ifndef US_ARENA_H
#define US_ARENA_H

#include <stddef.h>

typedef struct us_arena_chunk us_arena_chunk;

typedef struct us_arena {
    us_arena_chunk *head;
    size_t chunk_size; /* bytes per ordinary chunk */
    size_t used_total; /* bytes handed out */
} us_arena;

void us_arena_init(us_arena *a, size_t chunk_size);
/* NULL on allocation failure (or size overflow); the arena stays usable. */
void *us_arena_alloc(us_arena *a, size_t n);
void *us_arena_array(us_arena *a, size_t count, size_t size);
char *us_arena_strndup(us_arena *a, const char *s, size_t n);
char *us_arena_strdup(us_arena *a, const char *s);
/* Frees every chunk; the arena can be reused after another init. NULL ok. */
void us_arena_free(us_arena *a);

#endif
