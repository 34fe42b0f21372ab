/*
 * admit.c - admission's decisions and the observed scale and margin behind
 * them (layer 7, see rt.h). No threads, no clock reads: the served model
 * (model.c) calls these under its lock with rt_now_ns(), the simulator
 * (src/sim) with its virtual time, so a simulated plan is admitted by the
 * same rules as a served one.
 *
 * A request is admitted when the predicted work ahead of it (the queue's
 * rows x cost at the predicted rate, plus what the busy replicas still have
 * running, shared among the ready replicas), plus its own run, plus a margin
 * (15% of that work, or how late recent batches ended against the end
 * predicted at their admission, whichever is more) and, when work is ahead,
 * the dispatch slack, ends by its deadline (rt_admit_fits).
 *
 * Predictions are the profile's latencies times an observed scale
 * (rt_admit_refresh): the second largest of observed / predicted over the last
 * RT_ADMIT_SAMPLES runs within SCALE_WINDOW_NS, bounded to [1/4, 16], kept
 * for two classes of runs: those that had the model's cores alone and those
 * that overlapped another run of the model. The classes differ where the
 * machine has fewer free cores than the model has replicas (pinned to one
 * core, beside a CPU hog): two runs at once each take longer than one alone.
 * One scale for both made that a cliff: once overlapping runs taught it a
 * scale that put a lone run past the SLO, every request was shed, even those
 * that found the model idle and would have run alone in time, and goodput
 * fell to the probes' (0.58x of its level at capacity at 3x capacity beside
 * one hog). A request that finds the model idle is predicted with the alone
 * class (scale_alone); work queued, and a request that would start beside a
 * running batch, with the larger of the two (scale). A class with no recent
 * run is the other one (a slowdown that ended shows in the runs that happen,
 * and is not kept by a class that has had none since); with none in either,
 * both decay from the last. With no overlapping run ever there is one class,
 * as before (the simulator's case). Each class's high value:
 *   - it sits in the upper part of the observed spread, as admission needs (a
 *     request is late when its run is slow, not when the mean run is);
 *   - it follows a slowdown once two recent runs show it;
 *   - one outlier run (a request far larger than its predicted cost says, a
 *     page fault storm) never moves it, being the largest of two or more;
 *   - it forgets a slowdown that ended within the window, since old samples
 *     leave it; with none left it decays toward 1 (the profile) with a
 *     half-life of SCALE_HALF_LIFE_NS.
 * The margin is the same high value of how late recent batches were answered
 * against the end predicted when their members were admitted (0 when on
 * time); with none recent it decays with the same half-life (a quiet spell
 * must not reset a contended machine's margin for the first requests after
 * it). A batch that waited for its replica to be freed, and found it freed
 * late, is late against that free time plus its own predicted run where that
 * is later (rt_admit_lateness): one stall is one late sample, not one per
 * batch queued behind it. Counted per batch, the batches queued behind one
 * 40 ms stall of the worker (SIGSTOP) at 0.6 of capacity were all late by
 * nearly the stall, their second largest held the margin there for the
 * window's 2 s, and 463 of 8,184 requests were shed (none now). The scale
 * corrects the runs; the margin what the scale does not see: runs that vary
 * more than their recent high, wake-ups of replica threads.
 *
 * Admission cannot get stuck refusing (rt_admit_decide): a refusal that the
 * profile alone would have admitted is shedding by scale, and while that
 * happens an idle model lets one request through every PROBE_GAP_NS as a
 * probe, which runs at once and so tests the scale. A profile that refuses
 * requests made to the model's own SLO is probed the same way where SCALE_MIN
 * of it would fit: a profile measured while the machine was busy could
 * otherwise keep a model refusing everything from its start.
 *
 * A profile more than 1/SCALE_MIN too slow is corrected, not only probed
 * (rt_admit_profile_factor): when PROFILE_RUNS or more recent runs all took
 * SCALE_MIN or less of its time, the caller multiplies its profile by their
 * high value and the scale starts again from 1. Only down: a profile too fast
 * is what the scale and shedding are for, and a slowdown that ends must not
 * stay in the profile. The simulator does not call it: its profile is what
 * its runs take.
 */
#include <math.h>
#include <string.h>

#include "runtime/rt.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define SCALE_WINDOW_NS (2 * SEC)    /* the scale's and the margin's samples count this long */
#define SCALE_HALF_LIFE_NS (5 * SEC) /* with none in the window they decay with this half-life */
#define SCALE_MIN 0.25
#define SCALE_MAX 16.0
#define PROFILE_RUNS 4               /* recent runs that must all show a profile too slow */
#define RECHECK_NS (5 * MS)          /* while decaying, recompute at most this often */
#define PROBE_GAP_NS (250 * MS)      /* one probe at most this often while shedding */
#define RATE_TAU_NS SEC              /* the arrival rate: a counter decaying with this constant */
#define KEEP_PCT 15                  /* admission keeps at least this share of the work in hand */
#define QUEUE_MIN_DEFAULT 64         /* default bound when no latency is predicted */
#define QUEUE_MAX_DEFAULT 65536      /* the default bound never exceeds this */

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

void rt_admit_init(rt_admit *a)
{
    memset(a, 0, sizeof *a);
    a->scale = a->scale_alone = a->scale_last = 1.0;
}

static void recent_add(rt_recent *w, double v, uint64_t t)
{
    w->v[w->next] = v;
    w->t[w->next] = t;
    w->next = (w->next + 1) % RT_ADMIT_SAMPLES;
    if (w->n < RT_ADMIT_SAMPLES)
        w->n++;
    w->last_t = t;
}

/*
 * The high value of w's samples within SCALE_WINDOW_NS of now: the second
 * largest (the largest when there is one). False when none is that recent;
 * *oldest: the time of the oldest that is (when the answer may change as it
 * leaves). One pass without branches (it runs after every batch): the two
 * largest, duplicates counted (as the element before the last of the sorted
 * values); samples outside the window count as -infinity.
 */
static bool recent_high(const rt_recent *w, uint64_t now, double *high, uint64_t *oldest)
{
    /* two running top-twos (even and odd slots: half the dependency chain), merged */
    double a1 = -INFINITY, a2 = -INFINITY, b1 = -INFINITY, b2 = -INFINITY;
    unsigned n = 0;
    uint64_t old = UINT64_MAX;
    /* all RT_ADMIT_SAMPLES slots, the unused ones masked: a fixed count */
    for (unsigned i = 0; i < RT_ADMIT_SAMPLES; i += 2) {
        uint64_t t = w->t[i], u = w->t[i + 1];
        bool in = i < w->n && (t > now || now - t < SCALE_WINDOW_NS);
        bool jn = i + 1 < w->n && (u > now || now - u < SCALE_WINDOW_NS);
        double v = in ? w->v[i] : -INFINITY, x = jn ? w->v[i + 1] : -INFINITY;
        double lo = v < a1 ? v : a1, lx = x < b1 ? x : b1;
        a2 = lo > a2 ? lo : a2;
        a1 = v > a1 ? v : a1;
        b2 = lx > b2 ? lx : b2;
        b1 = x > b1 ? x : b1;
        n += in + jn;
        old = in && t < old ? t : old;
        old = jn && u < old ? u : old;
    }
    *oldest = old;
    if (n == 0)
        return false;
    double hi1 = a1 > b1 ? a1 : b1, lo1 = a1 > b1 ? b1 : a1, hi2 = a2 > b2 ? a2 : b2;
    hi2 = lo1 > hi2 ? lo1 : hi2;
    *high = n >= 2 ? hi2 : hi1;
    return true;
}

static double clamp_scale(double s)
{
    return s < SCALE_MIN ? SCALE_MIN : s > SCALE_MAX ? SCALE_MAX : s;
}

/* what is left at now of a value whose last sample, at t, left the window: halved every
 * SCALE_HALF_LIFE_NS after that */
static double decay(uint64_t t, uint64_t now)
{
    uint64_t end = t + SCALE_WINDOW_NS, since = now > end ? now - end : 0;
    return exp2(-(double)since / (double)SCALE_HALF_LIFE_NS);
}

void rt_admit_refresh(rt_admit *a, uint64_t now)
{
    if (now < a->recheck)
        return;
    uint64_t o1, o2, o3 = UINT64_MAX;
    double hi, ah = 0, sh = 0;
    bool af = recent_high(&a->ratios, now, &ah, &o1);
    bool sf = a->ratios_shared.n && recent_high(&a->ratios_shared, now, &sh, &o3);
    /* a class with no recent run is the other one: a slowdown that ended shows in the runs
     * that happen and is not kept by a class that has had none since (SIGSTOPped workers
     * taught the overlapping runs a 2-3x that outlived the pause when the classes kept
     * apart: the recovery test served 53-75% within the SLO after it, against 99% before) */
    uint64_t last_run = a->ratios.last_t > a->ratios_shared.last_t ? a->ratios.last_t
                                                                     : a->ratios_shared.last_t;
    double alone = af ? ah : sf ? sh : 1.0 + (a->scale_last - 1.0) * decay(last_run, now);
    double shared = sf ? sh : alone;
    a->scale_alone = clamp_scale(alone);
    a->scale = clamp_scale(shared > alone ? shared : alone);
    bool fresh = af || sf; /* else decaying */
    if (o3 < o1)
        o1 = o3;
    if (recent_high(&a->late, now, &hi, &o2)) {
        a->margin = a->margin_last = hi > 0 ? hi : 0;
    } else { /* none recent: forget the last margin as slowly as the scale */
        a->margin = a->margin_last * decay(a->late.last_t, now);
        fresh = false; /* decaying: recheck every RECHECK_NS */
    }
    if (o2 < o1)
        o1 = o2;
    /* again when the oldest sample leaves the window; while decaying, every RECHECK_NS */
    a->recheck = o1 == UINT64_MAX ? now + RECHECK_NS : o1 + SCALE_WINDOW_NS;
    if (!fresh && a->recheck > now + RECHECK_NS)
        a->recheck = now + RECHECK_NS;
}

void rt_admit_note_run(rt_admit *a, double ratio, bool shared, uint64_t now)
{
    recent_add(shared ? &a->ratios_shared : &a->ratios, ratio, now);
    a->recheck = 0;
    rt_admit_refresh(a, now);
    a->scale_last = a->scale_alone; /* the alone class decays from here */
}

double rt_admit_lateness(uint64_t t1, uint64_t pred_end, uint64_t freed, uint64_t run_pred)
{
    uint64_t rebase = freed ? sat_add(freed, run_pred) : 0;
    return (double)t1 - (double)(rebase > pred_end ? rebase : pred_end);
}

void rt_admit_note_late(rt_admit *a, double late, uint64_t t1)
{
    recent_add(&a->late, late, t1);
    a->recheck = 0;
}

double rt_admit_profile_factor(rt_admit *a, uint64_t now)
{
    if (a->scale > SCALE_MIN) /* the common case, after every run: the scale covers it */
        return 1.0;
    double hi = 0, sh = 0;
    uint64_t o;
    if (!recent_high(&a->ratios, now, &hi, &o))
        return 1.0;
    unsigned n = 0;
    for (unsigned i = 0; i < a->ratios.n; i++)
        n += a->ratios.t[i] > now || now - a->ratios.t[i] < SCALE_WINDOW_NS;
    if (a->ratios_shared.n && recent_high(&a->ratios_shared, now, &sh, &o) && sh > hi)
        hi = sh;
    if (n < PROFILE_RUNS || !(hi > 1e-9) || !(hi < SCALE_MIN))
        return 1.0;
    for (unsigned i = 0; i < a->ratios.n; i++)
        a->ratios.v[i] /= hi;
    for (unsigned i = 0; i < a->ratios_shared.n; i++)
        a->ratios_shared.v[i] /= hi;
    a->recheck = 0;
    rt_admit_refresh(a, now);
    a->scale_last = a->scale_alone;
    return hi;
}

double rt_admit_rate(const rt_admit *a, uint64_t now)
{
    return now > a->rate_t ? a->rate * exp(-(double)(now - a->rate_t) / (double)RATE_TAU_NS)
                           : a->rate;
}

void rt_admit_note_arrival(rt_admit *a, uint64_t now, int64_t rows)
{
    a->rate = rt_admit_rate(a, now) + (double)(rows < 1 ? 1 : rows) / ((double)RATE_TAU_NS * 1e-9);
    if (now > a->rate_t)
        a->rate_t = now;
}

uint64_t rt_admit_work_ahead(double queued_work, double row_ns, double busy_ns, int ready)
{
    if (!(row_ns > 0) || ready < 1)
        return 0;
    double work = (queued_work * row_ns + busy_ns) / ready;
    return work >= 1.8e19 ? UINT64_MAX : (uint64_t)work;
}

bool rt_admit_fits(uint64_t now, uint64_t dl, uint64_t ahead, uint64_t own, double margin,
                   uint64_t slack_ns)
{
    /* the predicted end, with 15% kept in hand, and the dispatch slack when work is
     * ahead (the request waits for a replica to wake and take it): the queue ahead is
     * an estimate, and answering late is worse than a 503. A request that finds the
     * model idle leaves at once: its own run is all it waits for, so a 1 ms timeout on
     * a 100 us model is met. */
    uint64_t work = sat_add(ahead, own), keep = work / 100 * KEEP_PCT;
    if (margin > (double)keep)
        keep = margin >= 1.8e19 ? UINT64_MAX : (uint64_t)margin;
    uint64_t end = sat_add(sat_add(now, work), keep);
    if (ahead)
        end = sat_add(end, slack_ns);
    return dl == UINT64_MAX || (dl > now && end <= dl);
}

rt_admit_verdict rt_admit_decide(rt_admit *a, const rt_admit_query *q)
{
    if (rt_admit_fits(q->now, q->deadline_ns, q->ahead, q->own, a->margin, q->slack_ns))
        return RT_ADMIT_YES;
    /* Refused for its predicted end. When the profile alone would have admitted it, the
     * observed scale is what sheds it; when the model is idle one such request now and
     * then runs as a probe, so that a slowdown that ended cannot keep the model refusing
     * (nothing would run to show it ended). */
    double sc = q->scale > 0 ? q->scale : a->scale > 0 ? a->scale : 1.0;
    bool by_scale = sc > 1.0 && rt_admit_fits(q->now, q->deadline_ns,
                                              (uint64_t)((double)q->ahead / sc),
                                              (uint64_t)((double)q->own / sc), 0, q->slack_ns);
    /* The profile itself may be what refuses: measured at start-up while the machine was
     * busy, it can put every request past the model's own SLO, and then nothing runs to
     * correct it (the scale learns only from runs, down to SCALE_MIN). A request that asks
     * for no less than the model's SLO and would fit were the profile SCALE_MIN of what it
     * says may probe it too (a shorter timeout of the request's own is refused as before). */
    double lo = SCALE_MIN / sc;
    bool by_profile = !by_scale && q->model_slo &&
                      rt_admit_fits(q->now, q->deadline_ns, (uint64_t)((double)q->ahead * lo),
                                    (uint64_t)((double)q->own * lo), 0, q->slack_ns);
    if (!by_scale && !by_profile)
        return RT_ADMIT_NO;
    if (by_scale)
        a->last_shed = q->now;
    if (q->idle && (a->last_probe == 0 || q->now - a->last_probe >= PROBE_GAP_NS)) {
        a->last_probe = q->now;
        a->probe_by_profile = !by_scale;
        return RT_ADMIT_PROBE;
    }
    return by_scale ? RT_ADMIT_SHED : RT_ADMIT_NO;
}

size_t rt_admit_capacity(int max_batch, uint64_t lat_full_ns, uint64_t default_timeout_ns,
                         int replicas)
{
    uint64_t b = max_batch > 0 ? (uint64_t)max_batch : 1;
    uint64_t cap = 2 * b;
    if (lat_full_ns && default_timeout_ns) {
        /* requests the replicas can serve within the default timeout at the predicted rate */
        uint64_t rounds = default_timeout_ns / lat_full_ns;
        uint64_t fit = rounds > QUEUE_MAX_DEFAULT
                           ? QUEUE_MAX_DEFAULT
                           : rounds * b * (uint64_t)(replicas > 0 ? replicas : 1);
        if (fit > cap)
            cap = fit;
    } else if (cap < QUEUE_MIN_DEFAULT) {
        cap = QUEUE_MIN_DEFAULT; /* nothing predicted: a modest bound */
    }
    return cap > QUEUE_MAX_DEFAULT ? QUEUE_MAX_DEFAULT : (size_t)cap;
}
