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

int plan_exact(const plan_problem *p, plan_solution *s, usher_error *err)
{
    /* USHER's plan: an upper bound on the cost, hence on the GPUs of each type
     * an optimum can use, and GLPK's first incumbent */
    plan_solution ub;
    if (plan_solution_init(&ub, p, "usher") < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int urc = plan_usher(p, &ub, err);
    if (urc < 0) {
        plan_solution_free(&ub);
        return urc;
    }
    plan_totals ut;
    plan_totals_of(&ub, p, &ut);
    bool bounded = p->objective == PLAN_MIN_COST && ut.feasible;
    /* GPU slots */
    uint16_t slot_type[EXACT_MAX_GPUS];
    int ns = 0;
    for (uint16_t t = 0; t < p->nt; t++) {
        int64_t lim = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
        double price = p->t[t].price > 0 ? p->t[t].price : 1;
        if (bounded && floor(ut.cost / price + 1e-9) < (double)lim)
            lim = (int64_t)floor(ut.cost / price + 1e-9);
        for (int64_t k = 0; k < lim; k++) {
            if (ns == EXACT_MAX_GPUS) {
                plan_solution_free(&ub);
                return us_err_set(err, USHER_ERR_LIMIT,
                                  "the exact optimum is for small instances: more than %d GPUs "
                                  "could be used",
                                  EXACT_MAX_GPUS);
            }
            slot_type[ns++] = t;
        }
    }
    bool goodput = p->objective == PLAN_MAX_GOODPUT;
    /* columns: x_g (ns), y_gmc (ny), z_m when maximising goodput (n) */
    int ny = 0;
    for (int g = 0; g < ns; g++)
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++)
                ny += p->m[m].cfg[c].type == slot_type[g];
    int nz = goodput ? (int)p->n : 0;
    int nv = ns + ny + nz;
    if (nv > EXACT_MAX_VARS) {
        plan_solution_free(&ub);
        return us_err_set(err, USHER_ERR_LIMIT,
                          "the exact optimum is for small instances: %d variables, over %d", nv,
                          EXACT_MAX_VARS);
    }
    glp_term_hook(silent, NULL);
    exact_inc inc = {0};
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, goodput ? GLP_MAX : GLP_MIN);
    glp_add_cols(lp, nv);
    int *ym = us_calloc((size_t)nv + 1, sizeof *ym), *yc = us_calloc((size_t)nv + 1, sizeof *yc);
    int *yg = us_calloc((size_t)nv + 1, sizeof *yg);
    int nnz_cap = 4 * nv + 16;
    int *ia = us_calloc((size_t)nnz_cap + 1, sizeof *ia), *ja = us_calloc((size_t)nnz_cap + 1, sizeof *ja);
    double *ar = us_calloc((size_t)nnz_cap + 1, sizeof *ar);
    int rc = USHER_OK;
    if (!ym || !yc || !yg || !ia || !ja || !ar) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    int col = 1;
    for (int g = 0; g < ns; g++, col++) {
        glp_set_col_kind(lp, col, GLP_BV);
        double price = p->t[slot_type[g]].price > 0 ? p->t[slot_type[g]].price : 1;
        glp_set_obj_coef(lp, col, goodput ? -1e-4 * price : price);
    }
    for (int g = 0; g < ns; g++)
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++) {
                const plan_cfg *x = &p->m[m].cfg[c];
                if (x->type != slot_type[g])
                    continue;
                double cap = floor(100.0 / fmax(fmax(x->creq, x->mreq), 1e-6) + 1e-9);
                ym[col] = (int)m, yc[col] = (int)c, yg[col] = g;
                glp_set_col_kind(lp, col, GLP_IV);
                glp_set_col_bnds(lp, col, cap > 0 ? GLP_DB : GLP_FX, 0, cap);
                col++;
            }
    int z0 = col;
    for (int i = 0; i < nz; i++, col++) {
        glp_set_col_bnds(lp, col, GLP_DB, 0, p->m[i].rate);
        glp_set_obj_coef(lp, col, plan_weight(&p->m[i]));
    }
    /* rows: per GPU compute and memory; per model capacity; symmetry */
    int nnz = 0, row = 0;
    for (int g = 0; g < ns; g++) {
        int rcmp = ++row, rmem = ++row;
        glp_add_rows(lp, 2);
        glp_set_row_bnds(lp, rcmp, GLP_UP, 0, 0);
        glp_set_row_bnds(lp, rmem, GLP_UP, 0, 0);
        ia[++nnz] = rcmp, ja[nnz] = g + 1, ar[nnz] = -100;
        ia[++nnz] = rmem, ja[nnz] = g + 1, ar[nnz] = -100;
        for (int v = ns + 1; v < z0; v++) {
            if (yg[v] != g)
                continue;
            const plan_cfg *c = &p->m[ym[v]].cfg[yc[v]];
            ia[++nnz] = rcmp, ja[nnz] = v, ar[nnz] = c->creq;
            ia[++nnz] = rmem, ja[nnz] = v, ar[nnz] = c->mreq;
        }
    }
    for (uint32_t m = 0; m < p->n; m++) {
        /* min-cost: sum thr y >= rate; max-goodput: sum thr y - z_m >= 0 */
        int r = ++row;
        glp_add_rows(lp, 1);
        glp_set_row_bnds(lp, r, GLP_LO, goodput ? 0 : p->m[m].rate, 0);
        for (int v = ns + 1; v < z0; v++)
            if (ym[v] == (int)m)
                ia[++nnz] = r, ja[nnz] = v, ar[nnz] = p->m[m].cfg[yc[v]].thr;
        if (goodput)
            ia[++nnz] = r, ja[nnz] = z0 + (int)m, ar[nnz] = -1;
    }
    for (int g = 0; g + 1 < ns; g++) {
        if (slot_type[g] != slot_type[g + 1])
            continue;
        int r = ++row; /* x_g - x_{g+1} >= 0 */
        glp_add_rows(lp, 1);
        glp_set_row_bnds(lp, r, GLP_LO, 0, 0);
        ia[++nnz] = r, ja[nnz] = g + 1, ar[nnz] = 1;
        ia[++nnz] = r, ja[nnz] = g + 2, ar[nnz] = -1;
    }
    if (nnz > nnz_cap) {
        rc = us_err_set(err, USHER_ERR_INTERNAL, "exact: matrix larger than planned");
        goto out;
    }
    glp_load_matrix(lp, nnz, ia, ja, ar);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.gmi_cuts = GLP_ON;
    parm.mir_cuts = GLP_ON;
    parm.cov_cuts = GLP_ON;
    parm.tm_lim = plan_exact_time_limit_ms;
    /* USHER's plan as the first incumbent, when it maps onto the slots */
    inc.x = us_calloc((size_t)nv + 1, sizeof *inc.x);
    if (inc.x && incumbent(p, &ub, slot_type, ns, ym, yc, yg, z0, nv, inc.x)) {
        /* the callback sees the problem as built only without the presolver,
         * which needs the LP relaxation solved first */
        glp_smcp sm;
        glp_init_smcp(&sm);
        sm.msg_lev = GLP_MSG_OFF;
        if (glp_simplex(lp, &sm) == 0 && glp_get_status(lp) == GLP_OPT) {
            inc.ready = true;
            parm.presolve = GLP_OFF;
            parm.cb_func = give_incumbent;
            parm.cb_info = &inc;
        }
    }
    int ret = glp_intopt(lp, &parm);
    int st = glp_mip_status(lp);
    if ((ret != 0 && ret != GLP_ETMLIM) || st == GLP_NOFEAS || st == GLP_UNDEF) {
        if (ret == GLP_ENOPFS || ret == GLP_ENODFS || st == GLP_NOFEAS ||
            (ret == GLP_ETMLIM && st == GLP_UNDEF)) {
            snprintf(s->note, sizeof s->note, "%s",
                     ret == GLP_ETMLIM ? "no plan found within the time limit"
                                       : "infeasible: the cluster cannot serve every rate");
            s->exact_status = ret == GLP_ETMLIM ? PLAN_EXACT_TIMEOUT : PLAN_EXACT_INFEASIBLE;
            plan_account(s, p);
            goto out;
        }
        rc = us_err_set(err, USHER_ERR_INTERNAL, "GLPK failed (code %d)", ret);
        goto out;
    }
    s->exact_status = st == GLP_OPT ? PLAN_EXACT_OPTIMAL : PLAN_EXACT_TIMEOUT;
    snprintf(s->note, sizeof s->note, "%s (GLPK branch and cut)",
             st == GLP_OPT ? "optimal" : "best found within the time limit");
    int gmap[EXACT_MAX_GPUS];
    for (int g = 0; g < ns; g++) {
        gmap[g] = -1;
        if (glp_mip_col_val(lp, g + 1) > 0.5)
            gmap[g] = plan_open(s, p, slot_type[g], -1);
    }
    /* loads: each model's served rate (all of it, or z_m) spread over its replicas */
    double *left = us_calloc(p->n ? p->n : 1, sizeof *left);
    if (!left) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t m = 0; m < p->n; m++)
        left[m] = goodput ? glp_mip_col_val(lp, z0 + (int)m) : p->m[m].rate;
    for (int v = ns + 1; v < z0 && rc == USHER_OK; v++) {
        int reps = (int)lround(glp_mip_col_val(lp, v));
        int g = gmap[yg[v]];
        for (int k = 0; k < reps && g >= 0 && rc == USHER_OK; k++) {
            double thr = p->m[ym[v]].cfg[yc[v]].thr;
            double load = left[ym[v]] < thr ? left[ym[v]] : thr;
            if (load < 0)
                load = 0;
            left[ym[v]] -= load;
            if (plan_add(s, p, (uint32_t)g, (uint32_t)ym[v], (uint32_t)yc[v], load) < 0)
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        }
    }
    us_free(left);
    plan_compact(s);
    plan_account(s, p);
out:
    plan_solution_free(&ub);
    us_free(inc.x);
    glp_delete_prob(lp);
    glp_term_hook(NULL, NULL);
    us_free(ym);
    us_free(yc);
    us_free(yg);
    us_free(ia);
    us_free(ja);
    us_free(ar);
    return rc;
}
