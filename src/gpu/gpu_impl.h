/*
 * gpu_impl.h - the layout behind gpu_catalog and the calls between
 * catalog.c and mig.c (layer 2, internal to src/gpu).
 *
 * Invariants of a built catalog:
 *   C1  types[0 .. n_gpus) are the rows of the CSV in file order, with
 *       distinct keys; types[n_gpus .. n_all) are MIG instances, grouped by
 *       parent in parent order and by profile in table order;
 *   C2  every string and gpu_type lives in the arena (profile names point
 *       into mig.c's static tables) and dies with gpu_catalog_free;
 *   C3  nothing changes after gpu_catalog_parse returns.
 */
#ifndef GPU_IMPL_H
#define GPU_IMPL_H

#include "core/arena.h"
#include "gpu.h"

struct gpu_catalog {
    us_arena arena;
    gpu_type **types;
    size_t n_gpus; /* whole GPUs */
    size_t n_all;  /* whole GPUs + MIG instances */
};

/*
 * Derive every MIG instance of every whole GPU that has mig_max_instances
 * > 0 and a profile table, append them to c->types and fill the parents'
 * profile name lists. USHER_ERR_NOMEM is the only failure.
 */
int gpu_mig_build(gpu_catalog *c, usher_error *err);
/* Whether usher has a MIG profile table for this catalog key. */
int gpu_mig_has_table(const char *key);
/* "a30, a100-40gb, ..." : keys with a profile table, for messages. */
const char *gpu_mig_table_keys(void);

#endif
