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
 *   z_m >= 0       (max-goodput, max-min) requests/s of model m served,
 *                  at least min_share x rate
 *   t in [0, 1]    (max-min) every model served at least t x w_m / w_max of
 *                  its rate: z_m - t rate_m w_m / w_max >= 0
 * Constraints: sum_c creq_c y_gc <= 100 x_g and sum_c mreq_c y_gc <= 100 x_g
 * per GPU; x_g >= x_{g+1} within a type (symmetry); per model
 * sum thr_c y_gc >= rate (min-cost) or >= z_m, z_m <= rate (max-goodput).
 * Load is divisible among a model's replicas, so per-replica loads need no
 * variables: they are dealt out after the solve. Objectives: min-cost
 * minimises sum price x; max-goodput maximises sum (1 + priority) z, then (tiny weight)
 * cost; max-min maximises t first (weight EXACT_T_WEIGHT x the whole weighted
 * rate), then as max-goodput. GLPK stops at plan_exact_time_limit_ms; the note says whether the
 * answer is proven optimal.
 *
 * With the interference model (plan_problem.interference) the program uses
 * the same rule in a linear, conservative form (docs/policies.md, "The exact
 * policy and the interference model"). Each used slot runs at one level l
 * (binary v_gl, sum_l v_gl = x_g):
 *   l = 0   alone: one replica, its latency and throughput alone (exact);
 *   l >= 1  co-located with sum_c u_c y_gc <= U_l (u: DRAM utilisation while
 *           running; U_L = 1 is the rule's own DRAM bound), every co-runner
 *           taken as always busy and the L2 as always full, so that by the
 *           contention model's form (docs/interference.md) a replica of c has
 *           F <= (1 + beta (U_l - u_c)) (1 + lambda), F its kernel-time factor:
 *           latency h + g F and throughput batch / (h + g F) at that bound.
 * y_gcl counts replicas of c on slot g at level l; a column exists only where
 * PLAN_SLO_FACTOR x that latency meets the SLO, and it counts that
 * throughput towards the rate. Every plan of the program is then accepted by
 * the model; the plan it returns is checked by the model again (plan_judge),
 * and were it refused (another model, other coefficients), USHER's plan is
 * returned instead, with status PLAN_EXACT_REFUSED. The optimum of this
 * program is an upper bound on the optimum under the model itself.
 */
#include <glpk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

#define EXACT_MAX_GPUS 48
#define EXACT_MAX_VARS 40000
#define FREE_GPU_COST 1e-6 /* $/h the program charges a GPU of price 0 (a tie-break) */
#define EXACT_T_WEIGHT 1000 /* max-min: t's weight, x sum (1 + priority) rate */
#define EXACT_LEVELS 3 /* alone, then DRAM bounds EXACT_DRAM[1..] */
/* the co-located levels' DRAM bounds, fractions of the device's bandwidth: more
 * levels fit the model closer and make the program slower to prove (with 5
 * levels, 0.2 to 1, 7 of the 60 test instances ran out of time against 5) */
static const double EXACT_DRAM[EXACT_LEVELS] = {0, 0.5, 1.0};
/* replicas one slot holds at most (shares of at least 10%) */
#define EXACT_PER_SLOT (100 / PLAN_SHARE_STEP)

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

/* one integer program: its slots, columns, matrix and GLPK problem (exact_free) */
typedef struct exact_ip {
    const plan_problem *p;
    plan_solution *s;
    plan_solution ub;       /* USHER's plan: the cost bound and first incumbent */
    bool ub_init;
    uint16_t slot_type[EXACT_MAX_GPUS];
    int ns;                 /* GPU slots: columns 1..ns */
    bool goodput;
    bool maxmin;            /* objective max-min: column t after the z */
    double wmax;            /* max-min: the largest weight */
    int nl;                 /* levels: 1 without the model (no v columns), EXACT_LEVELS with */
    double beta, lambda;    /* the contention model's coefficients */
    int v0;                 /* first v_gl column (slot g, level l: v0 + g nl + l) */
    int y0;                 /* first y column */
    int nv, z0;             /* columns; z_m from z0 (max-goodput) */
    int *ym, *yc, *yg, *yl; /* per y column: model, configuration, slot, level */
    double *ythr;           /* per y column: the throughput it counts */
    int *ia, *ja;           /* the matrix, 1-based triplets */
    double *ar;
    int nnz, nnz_cap, row;
    glp_prob *lp;
    exact_inc inc;
} exact_ip;

/* configuration c's throughput at level l (requests/s), or 0 where its
 * latency there misses the SLO (no column) */
static double level_thr(const exact_ip *e, uint32_t m, const plan_cfg *c, int l)
{
    const plan_problem *p = e->p;
    if (!p->interference)
        return c->thr;
    if (l == 0)
        return c->thr; /* alone: the model's latency is the latency alone */
    if (c->share >= 100)
        return 0; /* no room beside it */
    const if_replica *r = &c->ir;
    double u = if_dram_util(&p->t[c->type].dev, r);
    if (u > EXACT_DRAM[l] + 1e-12)
        return 0; /* the level's DRAM bound cannot hold it */
    double others = EXACT_DRAM[l] - u;
    double F = (1 + e->beta * others) * (1 + e->lambda);
    double lat = r->latency_ms - r->gpu_ms + r->gpu_ms * F;
    if (PLAN_SLO_FACTOR * lat > p->m[m].slo_ms)
        return 0;
    return plan_queue_thr(p, &p->m[m], c, lat); /* the queueing cap at that latency */
}

static void exact_free(exact_ip *e)
{
    if (e->ub_init)
        plan_solution_free(&e->ub);
    us_free(e->inc.x);
    if (e->lp) {
        glp_delete_prob(e->lp);
        glp_term_hook(NULL, NULL);
    }
    void *own[] = {e->ym, e->yc, e->yg, e->yl, e->ythr, e->ia, e->ja, e->ar};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        us_free(own[i]);
}

/* the GPU slots: each type up to its limit, and (min-cost, USHER feasible) up
 * to what USHER's cost buys - twice that with the interference model, whose
 * program is stricter than the rule and may need more than USHER's plan */
static int exact_slots(exact_ip *e, usher_error *err)
{
    const plan_problem *p = e->p;
    plan_totals ut;
    plan_totals_of(&e->ub, p, &ut);
    bool bounded = p->objective == PLAN_MIN_COST && ut.feasible;
    double budget = ut.cost * (p->interference ? 2 : 1);
    for (uint16_t t = 0; t < p->nt; t++) {
        int64_t lim = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
        /* a free type (price 0) is not bounded by the budget: its limit only */
        double price = p->t[t].price;
        if (bounded && price > 0 && floor(budget / price + 1e-9) < (double)lim)
            lim = (int64_t)floor(budget / price + 1e-9);
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

/* how many columns: x_g (ns), v_gl (with the model), y_gcl, z_m when
 * maximising goodput */
static int exact_count(exact_ip *e, usher_error *err)
{
    const plan_problem *p = e->p;
    e->nl = p->interference ? EXACT_LEVELS : 1;
    int ny = 0;
    for (int g = 0; g < e->ns; g++)
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++)
                for (int l = 0; l < e->nl; l++)
                    ny += p->m[m].cfg[c].type == e->slot_type[g] &&
                          level_thr(e, m, &p->m[m].cfg[c], l) > 0;
    e->goodput = p->objective == PLAN_MAX_GOODPUT || p->objective == PLAN_MAX_MIN;
    e->maxmin = p->objective == PLAN_MAX_MIN;
    e->wmax = 1;
    for (uint32_t m = 0; m < p->n; m++)
        e->wmax = fmax(e->wmax, plan_weight(&p->m[m]));
    e->v0 = e->ns + 1;
    e->y0 = e->v0 + (p->interference ? e->ns * e->nl : 0);
    e->nv = e->y0 - 1 + ny + (e->goodput ? (int)p->n : 0) + e->maxmin;
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
    e->yl = us_calloc(nv, sizeof *e->yl);
    e->ythr = us_calloc(nv, sizeof *e->ythr);
    e->nnz_cap = 6 * e->nv + 16;
    e->ia = us_calloc((size_t)e->nnz_cap + 1, sizeof *e->ia);
    e->ja = us_calloc((size_t)e->nnz_cap + 1, sizeof *e->ja);
    e->ar = us_calloc((size_t)e->nnz_cap + 1, sizeof *e->ar);
    if (!e->ym || !e->yc || !e->yg || !e->yl || !e->ythr || !e->ia || !e->ja || !e->ar)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int col = 1;
    for (int g = 0; g < e->ns; g++, col++) {
        glp_set_col_kind(e->lp, col, GLP_BV);
        /* a free GPU (price 0) costs a token FREE_GPU_COST, so that of plans
         * equal in $/h the program prefers the one with fewer GPUs */
        double price = p->t[e->slot_type[g]].price > 0 ? p->t[e->slot_type[g]].price
                                                        : FREE_GPU_COST;
        glp_set_obj_coef(e->lp, col, e->goodput ? -1e-4 * price : price);
    }
    for (; col < e->y0; col++)
        glp_set_col_kind(e->lp, col, GLP_BV); /* v_gl */
    for (int g = 0; g < e->ns; g++)
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++)
                for (int l = 0; l < e->nl; l++) {
                    const plan_cfg *x = &p->m[m].cfg[c];
                    double thr = x->type == e->slot_type[g] ? level_thr(e, m, x, l) : 0;
                    if (thr <= 0)
                        continue;
                    double cap = floor(100.0 / fmax(fmax(x->creq, x->mreq), 1e-6) + 1e-9);
                    if (p->interference && l == 0 && cap > 1)
                        cap = 1;
                    e->ym[col] = (int)m, e->yc[col] = (int)c, e->yg[col] = g, e->yl[col] = l;
                    e->ythr[col] = thr;
                    glp_set_col_kind(e->lp, col, GLP_IV);
                    glp_set_col_bnds(e->lp, col, cap > 0 ? GLP_DB : GLP_FX, 0, cap);
                    col++;
                }
    e->z0 = col;
    double whole = 0;
    for (int i = 0; e->goodput && i < (int)p->n; i++, col++) {
        /* GLPK refuses a double bound with lb = ub: a rate of 0 (or a
         * min_share of 1) is fixed */
        double lo = p->m[i].min_share * p->m[i].rate;
        glp_set_col_bnds(e->lp, col, p->m[i].rate > lo ? GLP_DB : GLP_FX, lo, p->m[i].rate);
        glp_set_obj_coef(e->lp, col, plan_weight(&p->m[i]));
        whole += plan_weight(&p->m[i]) * p->m[i].rate;
    }
    if (e->maxmin) {
        glp_set_col_bnds(e->lp, col, GLP_DB, 0, 1);
        glp_set_obj_coef(e->lp, col, EXACT_T_WEIGHT * (whole + 1));
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

/* the v column of slot g at level l (with the model) */
static int vcol(const exact_ip *e, int g, int l) { return e->v0 + g * e->nl + l; }

/* rows: per GPU compute and memory (and with the model: one level, replicas
 * at their level, DRAM within the level's bound); per model capacity;
 * symmetry */
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
        for (int v = e->y0; v < e->z0; v++) {
            if (e->yg[v] != g)
                continue;
            const plan_cfg *c = &p->m[e->ym[v]].cfg[e->yc[v]];
            put(e, rcmp, v, c->creq);
            put(e, rmem, v, c->mreq);
        }
        if (!p->interference)
            continue;
        /* sum_l v_gl = x_g: a used slot runs at one level */
        int r = add_row(e, GLP_FX, 0);
        put(e, r, g + 1, -1);
        for (int l = 0; l < e->nl; l++)
            put(e, r, vcol(e, g, l), 1);
        /* replicas at level l only where the slot runs at l: alone one, else
         * within the shares (sum Creq y_gcl <= 100 v_gl: tighter than a count) */
        for (int l = 0; l < e->nl; l++) {
            r = add_row(e, GLP_UP, 0);
            put(e, r, vcol(e, g, l), l == 0 ? -1 : -100);
            for (int v = e->y0; v < e->z0; v++)
                if (e->yg[v] == g && e->yl[v] == l)
                    put(e, r, v, l == 0 ? 1 : p->m[e->ym[v]].cfg[e->yc[v]].creq);
        }
        /* DRAM: sum u y <= the level's bound (alone: the device's) */
        r = add_row(e, GLP_UP, 0);
        for (int l = 0; l < e->nl; l++)
            put(e, r, vcol(e, g, l), l == 0 ? -1 : -EXACT_DRAM[l]);
        for (int v = e->y0; v < e->z0; v++) {
            if (e->yg[v] != g)
                continue;
            const plan_cfg *c = &p->m[e->ym[v]].cfg[e->yc[v]];
            put(e, r, v, if_dram_util(&p->t[c->type].dev, &c->ir));
        }
    }
    for (uint32_t m = 0; m < p->n; m++) {
        /* min-cost: sum thr y >= rate; max-goodput: sum thr y - z_m >= 0 */
        int r = add_row(e, GLP_LO, e->goodput ? 0 : p->m[m].rate);
        for (int v = e->y0; v < e->z0; v++)
            if (e->ym[v] == (int)m)
                put(e, r, v, e->ythr[v]);
        if (e->goodput)
            put(e, r, e->z0 + (int)m, -1);
        /* max-min: z_m - t rate w / w_max >= 0 */
        if (e->maxmin && p->m[m].rate > 0) {
            r = add_row(e, GLP_LO, 0);
            put(e, r, e->z0 + (int)m, 1);
            put(e, r, e->z0 + (int)p->n, -p->m[m].rate * plan_weight(&p->m[m]) / e->wmax);
        }
    }
    for (int g = 0; g + 1 < e->ns; g++) {
        if (e->slot_type[g] != e->slot_type[g + 1])
            continue;
        int r = add_row(e, GLP_LO, 0); /* x_g - x_{g+1} >= 0 */
        put(e, r, g + 1, 1);
        put(e, r, g + 2, -1);
    }
}

/* the y column of (slot g, model m, configuration c, level l); 0 if none */
static int ycol(const exact_ip *e, int g, uint32_t m, uint32_t c, int l)
{
    for (int v = e->y0; v < e->z0; v++)
        if (e->yg[v] == g && e->ym[v] == (int)m && e->yc[v] == (int)c && e->yl[v] == l)
            return v;
    return 0;
}

/* the level USHER's GPU i maps to: alone with one replica, else the lowest
 * whose DRAM bound holds it and where every replica has a column; -1 */
static int seed_level(const exact_ip *e, const plan_gpu *gi, int slot)
{
    const plan_problem *p = e->p;
    if (!p->interference)
        return 0;
    if (gi->n == 1)
        return 0;
    double dram = 0;
    for (uint32_t r = 0; r < gi->n; r++) {
        const plan_cfg *c = &p->m[gi->r[r].model].cfg[gi->r[r].cfg];
        dram += if_dram_util(&p->t[c->type].dev, &c->ir);
    }
    for (int l = 1; l < e->nl; l++) {
        bool ok = dram <= EXACT_DRAM[l] && gi->n <= EXACT_PER_SLOT;
        for (uint32_t r = 0; r < gi->n && ok; r++)
            ok = ycol(e, slot, gi->r[r].model, gi->r[r].cfg, l) > 0;
        if (ok)
            return l;
    }
    return -1;
}

/* the column values of USHER's plan on the slots, when it maps and meets
 * every row of the program (its throughputs at the levels cover the rates) */
static bool incumbent(const exact_ip *e, double *x)
{
    const plan_problem *p = e->p;
    const plan_solution *u = &e->ub;
    bool taken[EXACT_MAX_GPUS] = {0};
    if (u->n > (uint32_t)e->ns)
        return false;
    for (uint32_t i = 0; i < u->n; i++) {
        int slot = -1;
        for (int g = 0; g < e->ns && slot < 0; g++)
            if (!taken[g] && e->slot_type[g] == u->g[i].type)
                slot = g;
        int l = slot >= 0 ? seed_level(e, &u->g[i], slot) : -1;
        if (l < 0)
            return false;
        taken[slot] = true;
        x[slot + 1] = 1;
        if (p->interference)
            x[vcol(e, slot, l)] = 1;
        for (uint32_t r = 0; r < u->g[i].n; r++) {
            int v = ycol(e, slot, u->g[i].r[r].model, u->g[i].r[r].cfg, l);
            if (v == 0)
                return false;
            x[v] += 1;
        }
    }
    for (uint32_t m = 0; m < p->n; m++) {
        double cap = 0;
        for (int v = e->y0; v < e->z0; v++)
            if (e->ym[v] == (int)m)
                cap += e->ythr[v] * x[v];
        if (e->goodput) {
            double z = u->served[m] < cap ? u->served[m] : cap;
            if (z > p->m[m].rate)
                z = p->m[m].rate;
            if (z < p->m[m].min_share * p->m[m].rate * (1 - 1e-9))
                return false; /* its levels do not hold its minimum */
            x[e->z0 + (int)m] = z;
        } else if (cap < p->m[m].rate) {
            return false; /* its levels' throughputs do not cover the rate */
        }
    }
    if (e->maxmin) {
        double t = 1;
        for (uint32_t m = 0; m < p->n; m++)
            if (p->m[m].rate > 0)
                t = fmin(t, x[e->z0 + (int)m] * e->wmax / (p->m[m].rate * plan_weight(&p->m[m])));
        x[e->z0 + (int)p->n] = t > 0 ? t : 0;
    }
    /* symmetry rows want used slots first within a type: they are, by construction */
    return true;
}

/* USHER's plan as the first incumbent, when it maps onto the slots */
static void exact_seed(exact_ip *e, glp_iocp *parm)
{
    e->inc.x = us_calloc((size_t)e->nv + 1, sizeof *e->inc.x);
    if (!e->inc.x || !incumbent(e, e->inc.x))
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
    snprintf(s->note, sizeof s->note, "%s (GLPK branch and cut%s)",
             st == GLP_OPT ? "optimal" : "best found within the time limit",
             e->p->interference ? "; the interference rule in a conservative linear form" : "");
    if (e->maxmin) {
        size_t len = strlen(s->note);
        snprintf(s->note + len, sizeof s->note - len,
                 "; max-min: every model served at least %.4g x its weight / the largest "
                 "weight (%g) of its rate",
                 glp_mip_col_val(e->lp, e->z0 + (int)e->p->n), e->wmax);
    }
    *found = true;
    return USHER_OK;
}

/* the plan of the solution: the GPUs used, their replicas, and each model's
 * served rate (all of it, or z_m) dealt over its replicas in column order, up
 * to what each carries beside the others */
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
    uint32_t total = 0;
    for (int v = e->y0; v < e->z0; v++)
        total += (uint32_t)lround(glp_mip_col_val(e->lp, v));
    double *left = us_calloc(p->n ? p->n : 1, sizeof *left);
    uint32_t(*at)[2] = us_calloc(total ? total : 1, sizeof *at);
    if (!left || !at) {
        us_free(left);
        us_free(at);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    for (uint32_t m = 0; m < p->n; m++)
        left[m] = e->goodput ? glp_mip_col_val(e->lp, e->z0 + (int)m) : p->m[m].rate;
    int rc = USHER_OK;
    uint32_t na = 0;
    for (int v = e->y0; v < e->z0 && rc == USHER_OK; v++) {
        int reps = (int)lround(glp_mip_col_val(e->lp, v));
        int g = gmap[e->yg[v]], m = e->ym[v];
        for (int k = 0; k < reps && g >= 0 && rc == USHER_OK; k++) {
            if (plan_add(s, p, (uint32_t)g, (uint32_t)m, (uint32_t)e->yc[v], 0) < 0)
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            else if (na < total) {
                at[na][0] = (uint32_t)g;
                at[na++][1] = s->g[g].n - 1;
            }
        }
    }
    for (uint32_t k = 0; k < na && rc == USHER_OK; k++) {
        plan_replica *rp = &s->g[at[k][0]].r[at[k][1]];
        double cap = plan_cap(s, p, rp), load = left[rp->model] < cap ? left[rp->model] : cap;
        if (load < 0)
            load = 0;
        left[rp->model] -= load;
        rp->load = load;
    }
    us_free(left);
    us_free(at);
    plan_compact(s);
    plan_account(s, p);
    return rc;
}

/* the program's plan, judged by the interference model itself: every GPU
 * accepted (plan_judge) and every rate the program claims covered */
static bool exact_accepted(const exact_ip *e)
{
    const plan_problem *p = e->p;
    const plan_solution *s = e->s;
    for (uint32_t i = 0; i < s->n; i++)
        if (plan_judge(p, s->g[i].type, s->g[i].r, s->g[i].n, NULL, NULL) != PLAN_FITS)
            return false;
    for (uint32_t m = 0; m < p->n && !e->goodput; m++)
        if (s->served[m] < p->m[m].rate * (1 - 1e-9))
            return false;
    return true;
}

/* USHER's plan in place of the program's, with exact status `status` (why) */
static int exact_keep_ub(exact_ip *e, int status, const char *why, usher_error *err)
{
    plan_solution t;
    if (plan_solution_clone(&e->ub, &t) < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    char policy[sizeof t.policy];
    snprintf(policy, sizeof policy, "%s", e->s->policy);
    double seconds = e->s->seconds;
    plan_solution_free(e->s);
    *e->s = t;
    snprintf(e->s->policy, sizeof e->s->policy, "%s", policy);
    e->s->seconds = seconds;
    e->s->exact_status = status;
    snprintf(e->s->note, sizeof e->s->note, "%s", why);
    return USHER_OK;
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
    if (rc == USHER_OK && p->interference) {
        /* the linear form is the contention model's (exact.c's head) */
        const if_model *im = if_model_default();
        if (strcmp(im->name, "contention") != 0) {
            rc = exact_keep_ub(&e, PLAN_EXACT_REFUSED,
                               "no linear form of this interference model: USHER's plan instead",
                               err);
            exact_free(&e);
            return rc;
        }
        e.beta = im->coef.beta_bw;
        e.lambda = im->coef.lambda_l2;
    }
    if (rc == USHER_OK && p->objective == PLAN_MIN_COST) {
        /* USHER serves everything at $0/h (free GPU types): nothing is cheaper */
        plan_totals ut;
        plan_totals_of(&e.ub, p, &ut);
        if (ut.feasible && ut.cost <= 0) {
            rc = exact_keep_ub(&e, PLAN_EXACT_OPTIMAL,
                               "USHER's plan serves every model at $0/h: optimal", err);
            exact_free(&e);
            return rc;
        }
    }
    if (rc == USHER_OK)
        rc = exact_slots(&e, err);
    if (rc == USHER_OK)
        rc = exact_count(&e, err);
    /* nothing to choose (no GPU slot, or no configuration fits any: USHER's
     * plan cost nothing, or nothing can be opened): USHER's plan is optimal,
     * and GLPK is not asked a program without columns */
    if (rc == USHER_OK &&
        (e.ns == 0 || e.nv - (e.y0 - 1) - (e.goodput ? (int)p->n : 0) - e.maxmin <= 0)) {
        rc = exact_keep_ub(&e, PLAN_EXACT_OPTIMAL,
                           "no GPU slot or no configuration to choose: USHER's plan is optimal",
                           err);
        exact_free(&e);
        return rc;
    }
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
    if (rc == USHER_OK && found && p->interference && !exact_accepted(&e))
        rc = exact_keep_ub(&e, PLAN_EXACT_REFUSED,
                           "the interference model refused the program's plan: USHER's plan "
                           "instead",
                           err);
    exact_free(&e);
    return rc;
}
