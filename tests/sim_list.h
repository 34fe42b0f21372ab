/*
 * sim_list.h - a simulator arrival source over an array (sim_source), for the
 * simulator's tests: the arrivals a test writes by hand, in order.
 */
#ifndef USHER_TESTS_SIM_LIST_H
#define USHER_TESTS_SIM_LIST_H

#include "core/alloc.h"
#include "sim/sim.h"

/* ---- arrivals given as a list ---- */
typedef struct list_source {
    sim_source base;
    const sim_arrival *a;
    size_t n, i;
} list_source;

static int list_next(sim_source *s, sim_arrival *out, usher_error *err)
{
    list_source *l = (list_source *)s;
    if (l->i == l->n)
        return 0;
    *out = l->a[l->i++];
    return 1;
}

static void list_free(sim_source *s) { us_free(s); }

static const sim_source_ops list_ops = {list_next, list_free};

static sim_source *list_source_new(const sim_arrival *a, size_t n)
{
    list_source *l = us_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base.ops = &list_ops;
    l->a = a;
    l->n = n;
    return &l->base;
}

#endif
