/*
 * hungarian.c - minimum-cost one-to-one assignment (layer 4, merge_).
 *
 * The O(n^3) shortest-augmenting-path form of the Hungarian algorithm
 * (Kuhn-Munkres with potentials, as in Jonker-Volgenant): rows are added one
 * at a time and each is given a column by a Dijkstra-like search over
 * reduced costs. Used by merge.c to match the operators of one type across
 * two models; the matrix is padded square by the caller.
 */
#include <float.h>

#include "core/alloc.h"
#include "merge_impl.h"

int merge_hungarian(const double *cost, uint32_t n, uint32_t *assign)
{
    if (n == 0)
        return USHER_OK;
    size_t n1 = (size_t)n + 1;
    double *u = us_calloc(n1, sizeof *u), *v = us_calloc(n1, sizeof *v);
    double *minv = us_mallocarray(n1, sizeof *minv);
    uint32_t *p = us_calloc(n1, sizeof *p), *way = us_calloc(n1, sizeof *way);
    bool *used = us_mallocarray(n1, sizeof *used);
    int rc = USHER_ERR_NOMEM;
    if (!u || !v || !minv || !p || !way || !used)
        goto out;
    /* 1-based: p[j] = row assigned to column j, column 0 is the virtual start */
    for (uint32_t i = 1; i <= n; i++) {
        p[0] = i;
        uint32_t j0 = 0;
        for (size_t j = 0; j < n1; j++) {
            minv[j] = DBL_MAX;
            used[j] = false;
        }
        do {
            used[j0] = true;
            uint32_t i0 = p[j0], j1 = 0;
            double delta = DBL_MAX;
            for (uint32_t j = 1; j <= n; j++) {
                if (used[j])
                    continue;
                double cur = cost[(size_t)(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (uint32_t j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            uint32_t j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (uint32_t j = 1; j <= n; j++)
        assign[p[j] - 1] = j - 1;
    rc = USHER_OK;
out:
    us_free(u);
    us_free(v);
    us_free(minv);
    us_free(p);
    us_free(way);
    us_free(used);
    return rc;
}
