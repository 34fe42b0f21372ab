/*
 * queue.c - how much load a replica may carry under random arrivals (layer
 * 6): the load cap behind every replica. Issue 13; docs/internals/plan.md,
 * "Queueing".
 *
 * Why. A replica running batches of up to B requests, each batch taking
 * D = L(B) ms, sustains B / D requests/s, and the old rule (2 x D <= SLO)
 * let a plan load it that far. Requests do not arrive evenly: near that
 * load the queue of a Poisson stream grows without bound and most requests
 * miss. The planner must leave headroom, and how much depends on B, D, L(1),
 * the SLO and how bursty the arrivals are.
 *
 * What is used. The cap (plan_queue_thr) comes from a table measured on the
 * runtime's own batcher and admission (rt_batch_decide, rt_admit_*; src/plan
 * may not call src/runtime, so bench/gen_queue_table.c drives them offline,
 * on a virtual clock as the simulator does, and writes queue_table.c). In
 * units of D a cell is (cv, B, r = L(1) / D, x = SLO / D) and holds the
 * share of full load up to which >= 99.25% of requests met the SLO on each
 * of two seeds (layers at D = 10 and 100 ms) - at every load below it too,
 * since a plan loads a replica anywhere up to its cap and the batcher is not
 * monotone in the load (where a batch of one cannot keep up it holds a batch
 * for more rows until its oldest request's last moment, which at low loads
 * misses more than at high ones). The lookup rounds to the safe side
 * (tab_rho below); it is asked with the intercept of the line above the
 * profiled latency curve as L(1) (solution.c affine_l1), and is never past
 * 88% of full load for Poisson, 85% for cv > 1 (QT_RHO_MAX, QT_RHO_BURSTY).
 * The analytic cap this file had before (below) counted the
 * batcher's hold as a worst case on top of the queue's wait and came to
 * about half of what the batcher holds (docs/internals/plan.md has the
 * costs of both).
 *
 * The analytic model (plan_queue_p99, plan_queue_rate) stays for two
 * things: the cap where the table does not reach (B not a power of two up to
 * 128, L(1) > D, cv > 4), and plan.json's latency_p99_ms, which reports the
 * lesser of the model's p99 and the SLO the table needs for the load (both
 * upper bounds). The model:
 *
 * The server (src/runtime/batch.c) is work-conserving: an idle replica
 * takes what is queued, up to B, oldest first; a lone request runs alone.
 * That is the bulk-service queue M/G^(1,B)/1 (Bailey 1954; Chaudhry and
 * Templeton, "A First Course in Bulk Queues", 1983, ch. 4). A request that
 * arrives finds the batch running (residual R <= D) and Q requests queued;
 * FIFO, its own batch starts after R and ceil((Q + 1) / B) - 1 full batches,
 * and takes at most D. So its latency is at most D plus its wait W until its
 * batch starts, and W's tail is governed by how fast the queue drains in
 * whole batches.
 *
 * The tail. With full batches the queue at batch starts is a random walk
 * that loses B per batch and gains A(D), the arrivals in D. Its stationary
 * tail is geometric: P(Q >= n) ~ e^(-eta n), eta > 0 the root of
 * log E[exp(eta A(D))] = eta B (the Cramer-Lundberg root; for Poisson it is
 * the classic M/D^B/1 root z0 = e^eta of z^B = exp(lambda D (z - 1)), Bailey
 * 1954). Each batch drains B requests in D, so the wait's tail decays as
 * exp(-theta t) with theta = eta B / D.
 *
 * Arrivals with a coefficient of variation cv (workload.yaml arrival_cv;
 * 1 is Poisson): a renewal process with Gamma gaps of shape k = 1 / cv^2
 * and mean 1 / lambda (the simulator's Gamma arrivals) has the asymptotic
 * cumulant log E[exp(eta N(t))] / t -> k lambda (exp(eta / k) - 1) (Glynn
 * and Whitt 1994, large deviations of renewal counts). With y = eta / k the
 * root equation becomes expm1(y) / y = B / (lambda D) = 1 / rho, whatever
 * k: so y depends on the load rho alone and eta = y / cv^2. Exact for
 * Poisson; for other renewal processes the asymptotic rate is used over a
 * window of one batch (an approximation).
 *
 * The constant. P(W > t) = C P(R + N D > t | busy), C the probability that a
 * request waits at all, the server's busy fraction, at most lambda x L(1)
 * (batching only makes a row cheaper than L(1)): C = min(1, lambda L(1)).
 * R is uniform on [0, D], N geometric, P(N >= j) = r^j, r = exp(-eta B): on
 * [k D, (k + 1) D), P(R + N D > t) = r^(k+1) + (r^k - r^(k+1)) (1 - t / D + k).
 * For B = 1 this is M/D/1 with P(W > 0) = rho; against Erlang's exact
 * waiting time it is within 0.22 D at rho 0.05-0.8, its constant up to 1.6x
 * light at low loads (hence the cap's 0.5% below).
 *
 * What the runtime adds, as upper bounds:
 *   - the batcher's own wait (keepup_ms below): at loads where a batch of one
 *     cannot keep up it holds a batch for more rows, up to 2 L(want);
 *   - admission (admit.c) refuses a request whose predicted end plus 15% of
 *     its work (or the recent lateness, which that wait and a batch larger
 *     than one make) passes its deadline: the cap holds the p99 within
 *     SLO / 1.15 (PLAN_QUEUE_KEEP) with the wait counted;
 *   - past about 95% of full load one burst can start a spell of small
 *     batches (the batcher cuts a batch to its oldest request's deadline):
 *     the cap is at most 90% (PLAN_QUEUE_RHO_MAX).
 *
 *   p99 = D + hold + w,  C P(R + N D > w | busy) = 1%
 *
 * It reaches D (a single batch) as the load falls and grows without bound as
 * rho -> 1. It over-estimates: the residual and the own batch are taken at
 * the full batch's D while lighter loads run smaller batches, and the
 * batcher's wait is added to the queue's. tests/test_plan.c checks it
 * against M/D/1's exact waiting time (B = 1, Erlang's formula); the cap
 * that plans use (the table) against the runtime's own batcher and
 * admission (queue_model_against_the_batcher, queue_table_regenerates,
 * every_policy_meets_the_slo_under_poisson).
 *
 * The analytic cap: the highest lambda at which C P(R + N D > SLO / 1.15 - D
 * - hold) <= 0.5%, by bisection on y (every term falls as y grows, the load
 * with it), times 0.9 at most of full load.
 */
#include <math.h>

#include "plan.h"
#include "queue_table.h"


/* the arrivals' cv (0 in plan_model: Poisson) */
static double cv_of(const plan_model *m) { return m->arrival_cv > 0 ? m->arrival_cv : 1; }

/* L(1) where a full batch takes lat_ms: the batch of one slowed as the whole batch is */
static double l1_of(const plan_cfg *c, double lat_ms)
{
    return c->lat1_ms > 0 && c->lat_ms > 0 ? c->lat1_ms * lat_ms / c->lat_ms : lat_ms;
}

/* the root y > 0 of expm1(y) / y = 1 / rho, 0 < rho < 1 */
static double root_y(double rho)
{
    double hi = 1;
    while (expm1(hi) / hi < 1 / rho && hi < 1e3)
        hi *= 2;
    double lo = 0;
    for (int i = 0; i < 100; i++) {
        double mid = 0.5 * (lo + hi);
        if (expm1(mid) / mid < 1 / rho)
            lo = mid;
        else
            hi = mid;
        if (hi - lo <= 1e-12 * hi)
            break;
    }
    return 0.5 * (lo + hi);
}

/*
 * The wait w with c P(W > w | busy) = q (0 when c <= q), for W = R + N D: R
 * uniform on [0, d] (the running batch's residual), N the full batches queued
 * ahead, P(N >= j) = r^j, beta_y = -ln r. On [k d, (k + 1) d):
 * P(W > t | busy) = r^(k+1) + (r^k - r^(k+1)) (1 - (t - k d) / d).
 */
static double wait_q(double c, double d, double beta_y, double q)
{
    if (c <= q)
        return 0;
    /* whole batches k: c r^k > q >= c r^(k+1) */
    double k = beta_y > 0 ? floor(log(c / q) / beta_y) : INFINITY;
    if (!isfinite(k))
        return INFINITY;
    double rk = exp(-k * beta_y), rk1 = rk * exp(-beta_y);
    double keep = rk > rk1 ? (q / c - rk1) / (rk - rk1) : 0; /* 1 - f */
    return d * (k + 1 - keep);
}

/*
 * The batcher's own wait (batch.c keep_up_wait): when r L(rows) > rows, r the
 * arrival rate it observes, it holds the batch for more rows, at most
 * 2 (want - rows) / r, want the smallest size with want >= r L(want) <= B.
 * Since want - 1 < r L(want), that is below 2 L(want) <= 2 D. r is a counter
 * with a 1 s decay (admit.c): it strays from lambda by tens of % at tens of
 * requests/s, so the wait is counted from lambda L(1) > 1/2 on, and want is
 * bounded at 2 lambda: with L affine from L(1) to D over 1..B (a convex L lies
 * below the chord), slope s, want - 1 < 2 lambda (L(1) - s) / (1 - 2 lambda s).
 * The bound 2 L(want), at most 2 D, is non-decreasing in lambda. rate per ms.
 */
static double keepup_ms(int batch, double d, double l1, double rate)
{
    if (batch < 2 || rate * l1 <= 0.5)
        return 0;
    double s = (d - l1) / (batch - 1), den = 1 - 2 * rate * s;
    double w = den > 0 ? 2 * rate * fmax(0, l1 - s) / den : INFINITY;
    return 2 * fmin(d, l1 + s * w);
}

double plan_queue_p99(int batch, double d_ms, double l1_ms, double rate, double cv)
{
    if (!(d_ms > 0) || batch < 1)
        return INFINITY;
    if (!(rate > 0))
        return d_ms;
    double rho = rate * d_ms / 1e3 / batch;
    if (rho >= 1)
        return INFINITY;
    double l1 = l1_ms > 0 ? l1_ms : d_ms, c = fmin(1, rate * l1 / 1e3);
    double hold = keepup_ms(batch, d_ms, l1, rate / 1e3);
    if (!(cv > 0)) /* evenly spaced arrivals below full load: no queue */
        return d_ms + hold;
    double beta_y = root_y(rho) * batch / (cv * cv);
    return d_ms + hold + wait_q(c, d_ms, beta_y, (100 - PLAN_QUEUE_PCT) / 100.0);
}

/* does the load rho(y) = y / expm1(y) keep C P(latency > slo) <= q? (monotone in y) */
static bool holds(double y, int batch, double d, double l1, double slo, double cv, double q)
{
    double rate = y / expm1(y) * batch / d; /* per ms */
    double m = slo - d - keepup_ms(batch, d, l1, rate);
    if (!(m >= 0))
        return false;
    double c = fmin(1, rate * l1);
    if (c <= q)
        return true;
    double by = y * batch / (cv * cv), k = floor(m / d), f = m / d - k;
    return c * exp(-k * by) * (1 - f + f * exp(-by)) <= q;
}

double plan_queue_rate(int batch, double d_ms, double l1_ms, double slo_ms, double cv)
{
    if (!(d_ms > 0) || batch < 1 || !(slo_ms >= d_ms))
        return 0;
    double full = batch / d_ms * 1e3, l1 = l1_ms > 0 ? l1_ms : d_ms;
    if (!(cv > 0))
        cv = 1e-3; /* evenly spaced: the queue's tail vanishes, the batcher's wait stays */
    /* the smallest y (the highest load) that holds, by bisection on log y */
    double lo = log(1e-9), hi = log(60);
    if (!holds(exp(hi), batch, d_ms, l1, slo_ms, cv, PLAN_QUEUE_TAIL))
        return 0;
    if (holds(exp(lo), batch, d_ms, l1, slo_ms, cv, PLAN_QUEUE_TAIL))
        return full * (1 - 1e-9);
    for (int i = 0; i < 26; i++) {
        double mid = 0.5 * (lo + hi);
        if (holds(exp(mid), batch, d_ms, l1, slo_ms, cv, PLAN_QUEUE_TAIL))
            hi = mid;
        else
            lo = mid;
    }
    double y = exp(hi);
    return y / expm1(y) * full;
}

/*
 * The measured caps (queue_table.c, written by bench/gen_queue_table.c from
 * the runtime's batcher and admission; queue_table.h has the grid). A cell
 * (cv, D, B, r = L(1) / D, x = SLO / D) holds rho*, the share of full load
 * B / D up to which >= 99.25% of requests met the SLO. The generator made the
 * table monotone on the safe side (each cell the least of the cells of
 * larger x and smaller r), so a lookup that rounds r up to its quarter-octave
 * row and x down to its 1/16-octave column never promises more than a
 * measured cell whose SLO is no longer and whose L(1) is no smaller: B exact
 * (a power of two up to 128), r below 1 / B read as 1 / B, x past 32 as 32,
 * cv rounded up to 1, 1.5, 2, 3 or 4, and cv < 1 (less bursty than Poisson)
 * read as Poisson. D: the 10 ms layer up to 10 ms, the 100 ms one from
 * 100 ms, the lesser of the two between (a longer batch at the same share is
 * a lower rate, which the batcher's rate counter follows less well). Off the
 * grid the cap is not measured: test_plan checks random points (other D,
 * L(1), SLO, cv, convex latencies). < 0: not tabulated.
 */
/* bursty arrivals (cv > 1) never past 85% of full load: two runs of 20,000
 * requests see few of the bursts that decide the tail near full load (cv 3,
 * B 64, 94% of full load: 100% within the SLO on two seeds, 98.9% on a third;
 * 99.6% at 88%) */
#define QT_RHO_BURSTY 0.85
/* nor Poisson past 88%: the table's cells reach 95%, but with the estimator's
 * latency curves and co-located slowdowns test_plan's plans met the SLO for
 * 98.9% at 90% of full load (bert-base on an A100, batch 16, SLO 2.6 D) */
#define QT_RHO_MAX 0.88

static const double qt_cvs[QT_CV] = {1, 1.5, 2, 3, 4}, qt_ds[QT_D] = QT_D_MS;

/* the cell of layer di, in shares of full load */
static double cell(int ci, int di, int bi, int j, int i)
{
    return plan_queue_table[ci][di][bi][j][i] / 1e4;
}

static double tab_rho(int batch, double r, double x, double cv, double d_ms)
{
    int bi = 0;
    while (bi < QT_B && (1 << bi) != batch)
        bi++;
    if (bi == QT_B || !(r > 0) || r > 1 + 1e-9 || !(cv <= 4 + 1e-9) || !(d_ms > 0))
        return -1;
    if (!(x >= 2 - 1e-9))
        return 0; /* the rule's own: 2 x D within the SLO */
    int ci = 0;
    while (qt_cvs[ci] < cv - 1e-9)
        ci++;
    /* r rounded up: j = floor(-QT_R_STEP log2 r); below 1 / B, the row of 1 / B */
    int j = (int)floor(-QT_R_STEP * log2(r) + 1e-9), jmax = QT_R_STEP * bi;
    j = j < 0 ? 0 : j > jmax ? jmax : j;
    int i = (int)floor((log2(x) - 1) * QT_X_STEP + 1e-9);
    i = i < 0 ? 0 : i >= QT_X ? QT_X - 1 : i;
    /* D: up to 10 ms the 10 ms layer, from 100 ms the 100 ms one, between the lesser */
    if (d_ms <= qt_ds[0])
        return cell(ci, 0, bi, j, i);
    if (d_ms >= qt_ds[1])
        return cell(ci, 1, bi, j, i);
    return fmin(cell(ci, 0, bi, j, i), cell(ci, 1, bi, j, i));
}

/* the SLO / D a load rho needs by the table: the smallest x whose cell holds
 * rho (INFINITY: none); < 0: not tabulated */
static double tab_x(int batch, double r, double rho, double cv, double d_ms)
{
    if (tab_rho(batch, r, 2, cv, d_ms) < 0)
        return -1;
    for (int i = 0; i < QT_X; i++) {
        double x = exp2(1 + (double)i / QT_X_STEP);
        if (tab_rho(batch, r, x, cv, d_ms) >= rho)
            return x;
    }
    return INFINITY;
}

/* the analytic cap (the fallback off the table): as plan_queue_thr did before */
static double analytic_thr(const plan_cfg *c, double slo, double lat_ms, double l1, double cv)
{
    double full = c->batch / lat_ms * 1e3;
    double r = plan_queue_rate(c->batch, lat_ms, l1, slo / PLAN_QUEUE_KEEP, cv);
    return r < PLAN_QUEUE_RHO_MAX * full ? r : PLAN_QUEUE_RHO_MAX * full;
}

double plan_queue_thr(const plan_problem *p, const plan_model *m, const plan_cfg *c,
                      double lat_ms)
{
    double full = lat_ms > 0 ? c->batch / lat_ms * 1e3 : 0;
    if (p->queue_off || !(full > 0))
        return full;
    double l1 = l1_of(c, lat_ms), cv = cv_of(m);
    double rho = tab_rho(c->batch, l1 / lat_ms, m->slo_ms / lat_ms, cv, lat_ms);
    if (rho >= 0)
        return fmin(rho, cv > 1 ? QT_RHO_BURSTY : QT_RHO_MAX) * full;
    return analytic_thr(c, m->slo_ms, lat_ms, l1, cv);
}

/* the p99 the report gives: the analytic model's (an upper bound) or, where
 * the table covers the replica and says less, the SLO the table needs for
 * the load (also an upper bound: the batcher meets it for >= 99.25%) */
static double report_p99(int batch, double d, double l1, double rate, double cv)
{
    double p99 = plan_queue_p99(batch, d, l1, rate, cv);
    double full = batch / d * 1e3, x = tab_x(batch, l1 / d, rate / full, cv, d);
    return x >= 0 && x * d < p99 ? x * d : p99;
}

double plan_queue_replica_p99(const plan_solution *s, const plan_problem *p,
                              const plan_replica *r)
{
    const plan_model *m = &p->m[r->model];
    const plan_cfg *c = &m->cfg[r->cfg];
    double d = s->sharing != PLAN_SHARE_TIME && p->interference && isfinite(r->lat_co) &&
                       r->lat_co > 0
                   ? r->lat_co
                   : c->lat_ms;
    return report_p99(c->batch, d, l1_of(c, d), r->load, cv_of(m));
}
