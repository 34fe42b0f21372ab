/*
 * exact.c - the optimum over the same candidate configurations, by integer
 * programming with GLPK (layer 6). For measuring every policy's gap on small
 * instances (tests/test_plan.c, docs/policies.md), not for production sizes.
 *
 * Variables, for each GPU slot g (every GPU the cluster could have, up to
 * its limit per type, capped at EXACT_MAX_GPUS) and each configuration c of
 * each model on g's type:
 *   x_g in {0,1}   GPU g is used
 *   y_gc in N      replicas of configuration c on GPU g
 *   z_m >= 0       (max-goodput only) requests/s of model m served
 * Constraints: sum_c creq_c y_gc <= 100 x_g and sum_c mreq_c y_gc <= 100 x_g
 * per GPU; x_g >= x_{g+1} within a type (symmetry); per model
 * sum thr_c y_gc >= rate (min-cost) or >= z_m, z_m <= rate (max-goodput).
 * Load is divisible among a model's replicas, so per-replica loads need no
 * variables: they are dealt out after the solve. Objectives: min-cost
 * minimises sum price x; max-goodput maximises sum (1 + priority) z, then (tiny weight)
 * cost. GLPK stops at plan_exact_time_limit_ms; the note says whether the
 * answer is proven optimal.
 */
#include <glpk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

#define EXACT_MAX_GPUS 48
#define EXACT_MAX_VARS 20000

int plan_exact_time_limit_ms = 20000;

static int silent(void *info, const char *s)
{
    (void)info;
    (void)s;
    return 1; /* keep GLPK quiet */
}

typedef struct exact_inc {
    double *x; /* 1-based column values */
    bool ready;
} exact_inc;

static void give_incumbent(glp_tree *T, void *info)
{
    exact_inc *inc = info;
    if (glp_ios_reason(T) == GLP_IHEUR && inc->ready) {
        inc->ready = false; /* once: GLPK keeps the better of it and its own */
        glp_ios_heur_sol(T, inc->x);
    }
}

/* the column values of solution u on the slots; false if it does not map */
static bool incumbent(const plan_problem *p, const plan_solution *u, const uint16_t *slot_type,
                      int ns, const int *ym, const int *yc, const int *yg, int z0, int nv,
                      double *x)
{
    int slot_of[EXACT_MAX_GPUS];
    bool taken[EXACT_MAX_GPUS] = {0};
    if (u->n > (uint32_t)ns)
        return false;
    for (uint32_t i = 0; i < u->n; i++) {
        slot_of[i] = -1;
        for (int g = 0; g < ns && slot_of[i] < 0; g++)
            if (!taken[g] && slot_type[g] == u->g[i].type) {
                taken[g] = true;
                slot_of[i] = g;
                x[g + 1] = 1;
            }
        if (slot_of[i] < 0)
            return false;
    }
    for (uint32_t i = 0; i < u->n; i++)
        for (uint32_t r = 0; r < u->g[i].n; r++) {
            const plan_replica *rp = &u->g[i].r[r];
            int v = ns + 1;
            while (v < z0 && !(yg[v] == slot_of[i] && ym[v] == (int)rp->model &&
                               yc[v] == (int)rp->cfg))
                v++;
            if (v == z0)
                return false;
            x[v] += 1;
        }
    for (int v = z0; v <= nv; v++)
        x[v] = u->served[v - z0];
    /* symmetry rows want used slots first within a type: they are, by construction */
    (void)p;
    return true;
}

/* one integer program: its slots, columns, matrix and GLPK problem (exact_free) */
typedef struct exact_ip {
    const plan_problem *p;
    plan_solution *s;
    plan_solution ub;       /* USHER's plan: the cost bound and first incumbent */
    bool ub_init;
    uint16_t slot_type[EXACT_MAX_GPUS];
    int ns;                 /* GPU slots: columns 1..ns */
    bool goodput;
    int nv, z0;             /* columns; z_m from z0 (max-goodput) */
    int *ym, *yc, *yg;      /* per y column: model, configuration, slot */
    int *ia, *ja;           /* the matrix, 1-based triplets */
    double *ar;
    int nnz, nnz_cap, row;
    glp_prob *lp;
    exact_inc inc;
} exact_ip;

static void exact_free(exact_ip *e)
{
    if (e->ub_init)
        plan_solution_free(&e->ub);
    us_free(e->inc.x);
    if (e->lp) {
        glp_delete_prob(e->lp);
        glp_term_hook(NULL, NULL);
    }
    void *own[] = {e->ym, e->yc, e->yg, e->ia, e->ja, e->ar};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        us_free(own[i]);
}

/* the GPU slots: each type up to its limit, and (min-cost, USHER feasible) up
 * to what USHER's cost buys */
static int exact_slots(exact_ip *e, usher_error *err)
{
    const plan_problem *p = e->p;
    plan_totals ut;
    plan_totals_of(&e->ub, p, &ut);
    bool bounded = p->objective == PLAN_MIN_COST && ut.feasible;
    for (uint16_t t = 0; t < p->nt; t++) {
        int64_t lim = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
        double price = p->t[t].price > 0 ? p->t[t].price : 1;
        if (bounded && floor(ut.cost / price + 1e-9) < (double)lim)
            lim = (int64_t)floor(ut.cost / price + 1e-9);
        for (int64_t k = 0; k < lim; k++) {
            if (e->ns == EXACT_MAX_GPUS)
                return us_err_set(err, USHER_ERR_LIMIT,
                                  "the exact optimum is for small instances: more than %d GPUs "
                                  "could be used",
                                  EXACT_MAX_GPUS);
            e->slot_type[e->ns++] = t;
        }
    }
    return USHER_OK;
}

/* how many columns: x_g (ns), y_gmc, z_m when maximising goodput */
static int exact_count(exact_ip *e, usher_error *err)
{
    const plan_problem *p = e->p;
    int ny = 0;
    for (int g = 0; g < e->ns; g++)
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++)
                ny += p->m[m].cfg[c].type == e->slot_type[g];
    e->goodput = p->objective == PLAN_MAX_GOODPUT;
    e->nv = e->ns + ny + (e->goodput ? (int)p->n : 0);
    if (e->nv > EXACT_MAX_VARS)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "the exact optimum is for small instances: %d variables, over %d", e->nv,
                          EXACT_MAX_VARS);
    return USHER_OK;
}

/* the GLPK problem with its columns, and the arrays of the matrix */
static int exact_columns(exact_ip *e, usher_error *err)
{
    const plan_problem *p = e->p;
    glp_term_hook(silent, NULL);
    e->lp = glp_create_prob();
    glp_set_obj_dir(e->lp, e->goodput ? GLP_MAX : GLP_MIN);
    glp_add_cols(e->lp, e->nv);
    size_t nv = (size_t)e->nv + 1;
    e->ym = us_calloc(nv, sizeof *e->ym);
    e->yc = us_calloc(nv, sizeof *e->yc);
    e->yg = us_calloc(nv, sizeof *e->yg);
    e->nnz_cap = 4 * e->nv + 16;
    e->ia = us_calloc((size_t)e->nnz_cap + 1, sizeof *e->ia);
    e->ja = us_calloc((size_t)e->nnz_cap + 1, sizeof *e->ja);
    e->ar = us_calloc((size_t)e->nnz_cap + 1, sizeof *e->ar);
    if (!e->ym || !e->yc || !e->yg || !e->ia || !e->ja || !e->ar)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int col = 1;
    for (int g = 0; g < e->ns; g++, col++) {
        glp_set_col_kind(e->lp, col, GLP_BV);
        double price = p->t[e->slot_type[g]].price > 0 ? p->t[e->slot_type[g]].price : 1;
        glp_set_obj_coef(e->lp, col, e->goodput ? -1e-4 * price : price);
    }
    for (int g = 0; g < e->ns; g++)
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++) {
                const plan_cfg *x = &p->m[m].cfg[c];
                if (x->type != e->slot_type[g])
                    continue;
                double cap = floor(100.0 / fmax(fmax(x->creq, x->mreq), 1e-6) + 1e-9);
                e->ym[col] = (int)m, e->yc[col] = (int)c, e->yg[col] = g;
                glp_set_col_kind(e->lp, col, GLP_IV);
                glp_set_col_bnds(e->lp, col, cap > 0 ? GLP_DB : GLP_FX, 0, cap);
                col++;
            }
    e->z0 = col;
    for (int i = 0; e->goodput && i < (int)p->n; i++, col++) {
        glp_set_col_bnds(e->lp, col, GLP_DB, 0, p->m[i].rate);
        glp_set_obj_coef(e->lp, col, plan_weight(&p->m[i]));
    }
    return USHER_OK;
}

/* one entry of the matrix */
static void put(exact_ip *e, int row, int col, double v)
{
    e->ia[++e->nnz] = row, e->ja[e->nnz] = col, e->ar[e->nnz] = v;
}

/* a new row of bounds kind `kind` at lb; its number */
static int add_row(exact_ip *e, int kind, double lb)
{
    int r = ++e->row;
    glp_add_rows(e->lp, 1);
    glp_set_row_bnds(e->lp, r, kind, lb, 0);
    return r;
}

/* rows: per GPU compute and memory; per model capacity; symmetry */
static void exact_rows(exact_ip *e)
{
    const plan_problem *p = e->p;
    for (int g = 0; g < e->ns; g++) {
        int rcmp = ++e->row, rmem = ++e->row;
        glp_add_rows(e->lp, 2);
        glp_set_row_bnds(e->lp, rcmp, GLP_UP, 0, 0);
        glp_set_row_bnds(e->lp, rmem, GLP_UP, 0, 0);
        put(e, rcmp, g + 1, -100);
        put(e, rmem, g + 1, -100);
        for (int v = e->ns + 1; v < e->z0; v++) {
            if (e->yg[v] != g)
                continue;
            const plan_cfg *c = &p->m[e->ym[v]].cfg[e->yc[v]];
            put(e, rcmp, v, c->creq);
            put(e, rmem, v, c->mreq);
        }
    }
    for (uint32_t m = 0; m < p->n; m++) {
        /* min-cost: sum thr y >= rate; max-goodput: sum thr y - z_m >= 0 */
        int r = add_row(e, GLP_LO, e->goodput ? 0 : p->m[m].rate);
        for (int v = e->ns + 1; v < e->z0; v++)
            if (e->ym[v] == (int)m)
                put(e, r, v, p->m[m].cfg[e->yc[v]].thr);
        if (e->goodput)
            put(e, r, e->z0 + (int)m, -1);
    }
    for (int g = 0; g + 1 < e->ns; g++) {
        if (e->slot_type[g] != e->slot_type[g + 1])
            continue;
        int r = add_row(e, GLP_LO, 0); /* x_g - x_{g+1} >= 0 */
        put(e, r, g + 1, 1);
        put(e, r, g + 2, -1);
    }
}

/* USHER's plan as the first incumbent, when it maps onto the slots */
static void exact_seed(exact_ip *e, glp_iocp *parm)
{
    e->inc.x = us_calloc((size_t)e->nv + 1, sizeof *e->inc.x);
    if (!e->inc.x ||
        !incumbent(e->p, &e->ub, e->slot_type, e->ns, e->ym, e->yc, e->yg, e->z0, e->nv, e->inc.x))
        return;
    /* the callback sees the problem as built only without the presolver,
     * which needs the LP relaxation solved first */
    glp_smcp sm;
    glp_init_smcp(&sm);
    sm.msg_lev = GLP_MSG_OFF;
    if (glp_simplex(e->lp, &sm) == 0 && glp_get_status(e->lp) == GLP_OPT) {
        e->inc.ready = true;
        parm->presolve = GLP_OFF;
        parm->cb_func = give_incumbent;
        parm->cb_info = &e->inc;
    }
}

/* branch and cut; *found says whether there is a plan to read */
static int exact_solve(exact_ip *e, bool *found, usher_error *err)
{
    plan_solution *s = e->s;
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.gmi_cuts = GLP_ON;
    parm.mir_cuts = GLP_ON;
    parm.cov_cuts = GLP_ON;
    parm.tm_lim = plan_exact_time_limit_ms;
    exact_seed(e, &parm);
    int ret = glp_intopt(e->lp, &parm);
    int st = glp_mip_status(e->lp);
    *found = false;
    if ((ret != 0 && ret != GLP_ETMLIM) || st == GLP_NOFEAS || st == GLP_UNDEF) {
        bool timeout = ret == GLP_ETMLIM && st == GLP_UNDEF;
        if (!(ret == GLP_ENOPFS || ret == GLP_ENODFS || st == GLP_NOFEAS || timeout))
            return us_err_set(err, USHER_ERR_INTERNAL, "GLPK failed (code %d)", ret);
        snprintf(s->note, sizeof s->note, "%s",
                 ret == GLP_ETMLIM ? "no plan found within the time limit"
                                   : "infeasible: the cluster cannot serve every rate");
        s->exact_status = ret == GLP_ETMLIM ? PLAN_EXACT_TIMEOUT : PLAN_EXACT_INFEASIBLE;
        plan_account(s, e->p);
        return USHER_OK;
    }
    s->exact_status = st == GLP_OPT ? PLAN_EXACT_OPTIMAL : PLAN_EXACT_TIMEOUT;
    snprintf(s->note, sizeof s->note, "%s (GLPK branch and cut)",
             st == GLP_OPT ? "optimal" : "best found within the time limit");
    *found = true;
    return USHER_OK;
}

/* the plan of the solution: the GPUs used, and each model's served rate (all
 * of it, or z_m) spread over its replicas */
static int exact_read(exact_ip *e, usher_error *err)
{
    const plan_problem *p = e->p;
    plan_solution *s = e->s;
    int gmap[EXACT_MAX_GPUS];
    for (int g = 0; g < e->ns; g++) {
        gmap[g] = -1;
        if (glp_mip_col_val(e->lp, g + 1) > 0.5)
            gmap[g] = plan_open(s, p, e->slot_type[g], -1);
    }
    double *left = us_calloc(p->n ? p->n : 1, sizeof *left);
    if (!left)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    for (uint32_t m = 0; m < p->n; m++)
        left[m] = e->goodput ? glp_mip_col_val(e->lp, e->z0 + (int)m) : p->m[m].rate;
    int rc = USHER_OK;
    for (int v = e->ns + 1; v < e->z0 && rc == USHER_OK; v++) {
        int reps = (int)lround(glp_mip_col_val(e->lp, v));
        int g = gmap[e->yg[v]], m = e->ym[v];
        double thr = p->m[m].cfg[e->yc[v]].thr;
        for (int k = 0; k < reps && g >= 0 && rc == USHER_OK; k++) {
            double load = left[m] < thr ? left[m] : thr;
            if (load < 0)
                load = 0;
            left[m] -= load;
            if (plan_add(s, p, (uint32_t)g, (uint32_t)m, (uint32_t)e->yc[v], load) < 0)
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        }
    }
    us_free(left);
    plan_compact(s);
    plan_account(s, p);
    return rc;
}

int plan_exact(const plan_problem *p, plan_solution *s, usher_error *err)
{
    exact_ip e = {.p = p, .s = s};
    /* USHER's plan: an upper bound on the cost, hence on the GPUs of each type
     * an optimum can use, and GLPK's first incumbent */
    if (plan_solution_init(&e.ub, p, "usher") < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    e.ub_init = true;
    int rc = plan_usher(p, &e.ub, err);
    if (rc == USHER_OK)
        rc = exact_slots(&e, err);
    if (rc == USHER_OK)
        rc = exact_count(&e, err);
    if (rc == USHER_OK)
        rc = exact_columns(&e, err);
    if (rc == USHER_OK) {
        exact_rows(&e);
        if (e.nnz > e.nnz_cap)
            rc = us_err_set(err, USHER_ERR_INTERNAL, "exact: matrix larger than planned");
    }
    bool found = false;
    if (rc == USHER_OK) {
        glp_load_matrix(e.lp, e.nnz, e.ia, e.ja, e.ar);
        rc = exact_solve(&e, &found, err);
    }
    if (rc == USHER_OK && found)
        rc = exact_read(&e, err);
    exact_free(&e);
    return rc;
}
