/*
 * group.c - merge groups: several models of the repository served as one
 * merged graph, each replica of the group one worker with its own ONNX
 * Runtime session of it (layer 8, prefix srv_; issue 15 item 4, docs/serve.md
 * "Merge groups").
 *
 * A model joins a group with `merge_group: NAME` in its usher.yaml (its
 * config.pbtxt stays Triton's, so Triton can still read the repository), or
 * when `usher serve --plan` reads a plan whose merge_groups name it
 * (srv_plan_file sets plan_group; the plan's group wins over usher.yaml's). At
 * start-up, after the plan, srv_groups_start merges each group's files with
 * the operator graph merger (include/usher/merge.h, the same code as `usher
 * merge --verify`) into a temporary file, verifies it on ONNX Runtime, and
 * starts ONE runtime model (rt_model_cfg.group) for it - merged and verified
 * once, whatever its replicas. Its replicas: the most any member was planned
 * (a member's plan is a plain model's: usher.yaml replicas or its rate's
 * need; a plan file credits each replica of the group to every member), each
 * a worker process of the one merged file, placed where the plan file puts
 * the group's replicas; the runtime dispatches batches to any idle one and
 * replaces a lost worker as for any model. Every member's srv_model then
 * points at that runtime (rt, member index) and counts the group's replicas:
 * requests to any member queue together and share runs; the runtime keeps
 * each member's counters and its inputs and outputs under its own names.
 *
 * A group that cannot be formed - one member, a member that failed to load,
 * a merge refused, a verification that failed, a runtime that does not
 * start - is not used: its members start as ordinary models (start_models),
 * with one warning line naming the group and the reason.
 *
 * Invariants: a member's rt is the group's and is never freed through the
 * member (retire skips members; srv_groups_stop frees the group's runtime
 * after folding each member's final counters into its `retired`). A plan
 * change (usher_server_reload -> srv_group_reload) resizes a group as a plain
 * model's plan change does: its replicas, threads, placement and deadline
 * recomputed from the members' new plans by group_form's rules (group_sizing),
 * a new runtime of the same merged file started beside the old one, every
 * member switched to it once it is ready, the old one drained (each member's
 * counters on it folded into its retired). Not done while serving, refused
 * with the reason and the group kept as it is: a change of members (a model
 * joining or leaving the group: re-merging, re-verifying), or of the rows per
 * run (a member's batch: re-profiling the merged graph).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "server/srv.h"
#include "usher/merge.h"

#define GROUP_MAX_OPTS 16 /* merge_shape / merge_value items of one group */

bool srv_model_io(const srv_model *m, const be_io **in, size_t *n_in, const be_io **out,
                  size_t *n_out)
{
    if (!m->rt)
        return false;
    if (m->group)
        return rt_model_member_io(m->rt, m->member, in, n_in, out, n_out);
    return rt_model_io(m->rt, in, n_in, out, n_out);
}

void srv_model_rt_stats(const srv_model *m, rt_model *rt, rt_model_stats *out)
{
    if (m->group && rt == m->group->rt)
        rt_model_member_stats(rt, m->member, out);
    else
        rt_model_get_stats(rt, out);
}

const char *srv_group_name(const srv_model *m)
{
    return m->plan_group[0] ? m->plan_group : m->rm->merge_group;
}

/* Split "a=1x2,b=3" into items (in buf, at most GROUP_MAX_OPTS). */
static size_t split_opts(char *buf, const char **items, size_t have)
{
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && have < GROUP_MAX_OPTS;
         t = strtok_r(NULL, ",", &save))
        if (*t)
            items[have++] = t;
    return have;
}

/* median of GROUP_PROFILE_RUNS runs (after one warm-up) of the merged graph on inputs of
 * `per` rows per member (dynamic dims past the batch: 1), zeros; 0 when it does not run */
#define GROUP_PROFILE_RUNS 5
static uint64_t profile_one(rt_worker *w, bool batch_dim, int64_t per)
{
    const be_io *io, *outs;
    size_t n_in, n_out = rt_worker_io(w, &io, &n_in, &outs);
    (void)n_out;
    us_tensor in[RT_MAX_IO], out[RT_MAX_IO];
    uint64_t t[GROUP_PROFILE_RUNS + 1], lat = 0;
    size_t made = 0, nout = 0;
    if (n_in > RT_MAX_IO)
        return 0;
    for (; made < n_in; made++) {
        us_tensor *x = &in[made];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", io[made].name);
        x->dtype = io[made].dtype;
        x->shape = io[made].shape;
        for (int d = 0; d < x->shape.rank; d++)
            if (x->shape.dim[d] < 0)
                x->shape.dim[d] = d == 0 && batch_dim ? per : 1;
        uint64_t bytes;
        if (x->dtype == US_DT_BYTES ||
            us_tensor_nbytes(x->dtype, &x->shape, "input", &bytes, NULL) < 0 ||
            bytes > (256u << 20) || !(x->data = us_calloc(1, bytes ? bytes : 1)))
            goto done;
        x->bytes = bytes;
    }
    for (int r = 0; r <= GROUP_PROFILE_RUNS; r++) {
        usher_error e = {0};
        uint64_t t0 = rt_now_ns();
        if (rt_worker_run(w, in, n_in, out, &nout, 60ull * 1000000000ull, &e) < 0)
            goto done;
        t[r] = rt_now_ns() - t0;
        be_outputs_free(out, nout);
    }
    for (int a = 1; a <= GROUP_PROFILE_RUNS; a++) /* insertion sort of the timed runs */
        for (int b = a; b > 1 && t[b] < t[b - 1]; b--) {
            uint64_t v = t[b];
            t[b] = t[b - 1];
            t[b - 1] = v;
        }
    lat = t[1 + GROUP_PROFILE_RUNS / 2];
done:
    for (size_t i = 0; i < made; i++)
        us_free(in[i].data);
    return lat;
}

/*
 * The merged graph's profile, for batching and admission: runs of 1, 2, 4, ... rows per
 * member (every member filled, as in a run where all have requests), in one worker like
 * the group's own. A run of r requests' rows costs what a run of ceil(r / members) rows per
 * member costs (the members without requests get filler rows): latency_ns[r] is the
 * measured size at or above that. Left at 0 (learned from the first runs, as for any model
 * that could not be profiled) when zeros do not run (an input whose value matters: Silero's
 * sample rate).
 */
static void group_profile(usher_server *s, const srv_group *g, rt_model_cfg *cfg)
{
    rt_worker_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.exe = s->exe;
    wo.model_path = g->path;
    wo.name = g->name;
    wo.be = cfg->be;
    rt_worker *w = NULL;
    usher_error e = {0};
    if (rt_worker_start(&wo, &w, &e) < 0)
        return;
    int per_max = cfg->has_batch_dim ? (cfg->max_batch + g->n - 1) / g->n : 1;
    uint64_t lat[RT_MAX_BATCH + 1] = {0};
    int sizes[16], n_sizes = 0;
    for (int per = 1; n_sizes < 16; per = per * 2 > per_max && per < per_max ? per_max : per * 2) {
        if ((lat[per] = profile_one(w, cfg->has_batch_dim, per)) == 0)
            break;
        sizes[n_sizes++] = per;
        if (per >= per_max)
            break;
    }
    /* the profiled inputs' elements per row, by member input position (the first member's
     * "<label>/" inputs in the graph's order, as the runtime maps them): what a request's
     * cost is relative to (dynamic dims past the batch were 1) */
    double ref[RT_MAX_IO] = {0};
    const be_io *io, *outs;
    size_t n_in, pos = 0;
    rt_worker_io(w, &io, &n_in, &outs);
    size_t ll = strlen(cfg->group.label[0]);
    for (size_t i = 0; i < n_in && pos < RT_MAX_IO; i++) {
        if (strncmp(io[i].name, cfg->group.label[0], ll) != 0 || io[i].name[ll] != '/')
            continue;
        double el = 1;
        for (int d = cfg->has_batch_dim ? 1 : 0; d < io[i].shape.rank; d++)
            el *= io[i].shape.dim[d] > 0 ? (double)io[i].shape.dim[d] : 1.0;
        ref[pos++] = el;
    }
    rt_worker_stop(w, 1000000000ull);
    if (!n_sizes || sizes[n_sizes - 1] < per_max)
        return; /* a profile that stops short is not used: learned instead */
    memcpy(cfg->ref_elems, ref, sizeof ref);
    for (int r = 1; r <= cfg->max_batch; r++) {
        int need = cfg->has_batch_dim ? (r + g->n - 1) / g->n : 1, k = 0;
        while (sizes[k] < need)
            k++;
        cfg->latency_ns[r] = lat[sizes[k]];
    }
}

/* group_form's sizing of a group's runtime from its members' plans: replicas (the most
 * replicated member's), each worker's threads (the members' threads x replicas shared out,
 * at most the cores / replicas), rows per run, the deadline; *most: the member whose places
 * are the group's */
typedef struct group_size {
    int replicas, threads, rows;
    bool batchable;
    double slo_ms;
    const srv_model *most;
} group_size;

static void group_sizing(const usher_server *s, const srv_model *const *mem, int n,
                         group_size *z)
{
    int threads_sum = 0, reps = 1, rows = 0;
    z->batchable = true;
    z->most = mem[0];
    z->slo_ms = 0;
    for (int k = 0; k < n; k++) {
        const srv_model *m = mem[k];
        z->batchable = z->batchable && m->batchable;
        rows += m->batchable ? m->max_batch : 1;
        threads_sum += m->threads > 0 ? m->threads * (m->replicas > 0 ? m->replicas : 1) : 1;
        if (m->replicas > reps) {
            reps = m->replicas;
            z->most = m;
        }
        z->slo_ms = m->slo_ms > z->slo_ms ? m->slo_ms : z->slo_ms;
    }
    z->rows = rows < 1 ? 1 : rows > RT_MAX_BATCH ? RT_MAX_BATCH : rows;
    z->replicas = reps > RT_MAX_REPLICAS ? RT_MAX_REPLICAS : reps;
    int cap = s->cpus / z->replicas > 1 ? s->cpus / z->replicas : 1,
        per = (threads_sum + z->replicas - 1) / z->replicas;
    z->threads = per < 1 ? 1 : per > cap ? cap : per;
}

/* Merge, verify and start one group (its members in g->mem). USHER_OK, or an error that
 * says why (the members are then served separately). */
static int group_form(usher_server *s, srv_group *g, usher_error *err)
{
    const char *paths[RT_MAX_MEMBERS];
    char shapes[sizeof g->mem[0]->rm->merge_shape], values[sizeof g->mem[0]->rm->merge_value];
    const char *shape_items[GROUP_MAX_OPTS], *value_items[GROUP_MAX_OPTS];
    shapes[0] = values[0] = 0;
    double tol = 0;
    int kind = -1;
    for (int k = 0; k < g->n; k++) {
        if (kind < 0 && g->mem[k]->rm->merge_kind >= 0)
            kind = g->mem[k]->rm->merge_kind;
        paths[k] = g->mem[k]->rm->path;
        if (!(tol > 0) && g->mem[k]->rm->merge_tolerance > 0)
            tol = g->mem[k]->rm->merge_tolerance;
        if (!shapes[0] && g->mem[k]->rm->merge_shape[0])
            snprintf(shapes, sizeof shapes, "%s", g->mem[k]->rm->merge_shape);
        if (!values[0] && g->mem[k]->rm->merge_value[0])
            snprintf(values, sizeof values, "%s", g->mem[k]->rm->merge_value);
    }
    usher_merge_params mp = usher_merge_default_params();
    mp.verify = true;
    if (tol > 0)
        mp.verify_tol = tol;
    mp.kind = kind;
    mp.ort_library = s->ort_lib[0] ? s->ort_lib : NULL;
    mp.shapes = shape_items;
    mp.n_shapes = split_opts(shapes, shape_items, 0);
    mp.values = value_items;
    mp.n_values = split_opts(values, value_items, 0);

    const char *tmp = getenv("TMPDIR");
    if (snprintf(g->path, sizeof g->path, "%s/usher-group-%s-%d.onnx", tmp && *tmp ? tmp : "/tmp",
                 g->name, (int)getpid()) >= (int)sizeof g->path)
        return us_err_set(err, USHER_ERR_LIMIT, "the merged file's path is too long");
    usher_merge *mg = NULL;
    int rc = usher_merge_models(paths, (size_t)g->n, &mp, &mg, err);
    if (rc < 0)
        return rc;
    if ((rc = usher_merge_write(mg, g->path, err)) < 0) {
        usher_merge_free(mg);
        g->path[0] = 0; /* nothing was written */
        return rc;
    }
    const usher_merge_report *rep = usher_merge_get_report(mg);
    snprintf(g->kind, sizeof g->kind, "%s", rep->kind_name);
    g->max_err = rep->verify_max_rel_err;

    rt_model_cfg *cfg = us_calloc(1, sizeof *cfg); /* large: not on the stack */
    if (!cfg) {
        usher_merge_free(mg);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    snprintf(cfg->name, sizeof cfg->name, "%s", g->name);
    snprintf(cfg->path, sizeof cfg->path, "%s", g->path);
    group_size z;
    group_sizing(s, (const srv_model *const *)g->mem, g->n, &z);
    for (int k = 0; k < g->n; k++)
        snprintf(cfg->group.label[k], sizeof cfg->group.label[k], "%s",
                 usher_merge_label(mg, (size_t)k));
    cfg->group.n_members = g->n;
    cfg->group.equal_rows = rep->kind == USHER_MERGE_STACKED;
    cfg->group.empty_rows = rep->kind == USHER_MERGE_SHARED;
    cfg->max_batch = z.rows;
    cfg->has_batch_dim = z.batchable;
    /* the longest member SLO: each request carries its own model's deadline */
    cfg->default_timeout_ns = (uint64_t)(z.slo_ms * 1e6);
    cfg->max_queue_delay_ns = 0; /* usher's work-conserving batching */
    /* as many replicas as its most replicated member was planned (each member's plan is a
     * model's: usher.yaml's replicas or its rate's need, or the plan file's replicas of the
     * group, credited to every member), each a worker with its own session of the one
     * merged file; the runtime dispatches the group's batches to any idle one */
    cfg->replicas = z.replicas;
    cfg->be = be_default_options();
    /* the workers share the cores the members' workers had between them (their threads x
     * replicas), at most the machine's */
    cfg->be.intra_threads = z.threads;
    cfg->be.inter_threads = 1;
    cfg->be.ort_library = s->ort_lib[0] ? s->ort_lib : NULL;
    snprintf(cfg->device, sizeof cfg->device, "cpu");
    cfg->be.device = cfg->device;
    /* a plan file's GPUs: the group's replicas are credited to every member in the plan's
     * order (srv_plan_file), so the most replicated member's places are the group's */
    bool on_gpu = srv_place_gpus(s, z.most, cfg);
    usher_merge_free(mg);
    /* profiled on the CPU, where it runs; on a GPU its latencies are learned from the first
     * runs, as for a plain model placed by a plan file */
    if (!on_gpu)
        group_profile(s, g, cfg);
    /* with a profile: a queue as deep as the profile allows (rt_admit_capacity), and each
     * request's cost relative to one row of the inputs profiled above; without one both
     * are learned from the first runs (model.c) */
    rc = rt_model_new(cfg, s->exe, &g->rt, err);
    if (rc < 0)
        us_free(cfg);
    else
        g->cfg = cfg; /* a plan change starts from it (srv_group_reload) */
    return rc;
}


int srv_group_reload(usher_server *s, srv_group *g, const srv_model *next, uint64_t drain_ns,
                     char *why, size_t cap)
{
    why[0] = 0;
    if (!g->rt || !g->cfg)
        return 0;
    /* the same members: groups are formed (merged, verified, profiled) at start only */
    for (size_t i = 0; i < s->n; i++) {
        const srv_model *m = &s->m[i], *nx = &next[i];
        bool was = m->group == g,
             now = !nx->error[0] && nx->replicas > 0 && strcmp(srv_group_name(nx), g->name) == 0;
        if (was != now) {
            snprintf(why, cap,
                     "its members would change (model '%s' %s it%s%.200s); a group is formed "
                     "at start only: restart usher serve to apply it",
                     m->rm->name, was ? "leaves" : "joins", nx->error[0] ? ": " : "",
                     nx->error);
            return -1;
        }
    }
    const srv_model *mem[RT_MAX_MEMBERS];
    for (int k = 0; k < g->n; k++)
        mem[k] = &next[g->mem[k] - s->m];
    group_size z;
    group_sizing(s, mem, g->n, &z);
    if (z.rows != g->cfg->max_batch || z.batchable != g->cfg->has_batch_dim) {
        snprintf(why, cap,
                 "its rows per run would change (%d, was %d: a member's batch changed); the "
                 "merged graph is profiled at start only: restart usher serve to apply it",
                 z.rows, g->cfg->max_batch);
        return -1;
    }
    rt_model_cfg *cfg = us_malloc(sizeof *cfg); /* large: not on the stack */
    if (!cfg) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    *cfg = *g->cfg;
    cfg->replicas = z.replicas;
    cfg->be.intra_threads = z.threads;
    cfg->be.device = cfg->device; /* its own copy's */
    cfg->default_timeout_ns = (uint64_t)(z.slo_ms * 1e6);
    memset(cfg->place, 0, sizeof cfg->place);
    if (srv_place_gpus(s, z.most, cfg)) /* on a GPU: learned from the first runs */
        memset(cfg->latency_ns, 0, sizeof cfg->latency_ns);
    bool same = cfg->replicas == g->cfg->replicas &&
                cfg->be.intra_threads == g->cfg->be.intra_threads &&
                cfg->default_timeout_ns == g->cfg->default_timeout_ns &&
                memcmp(cfg->place, g->cfg->place, sizeof cfg->place) == 0;
    if (same) { /* the runtime stays; the members' plan fields follow (rate, notes, ...) */
        us_free(cfg);
        pthread_rwlock_wrlock(&s->rt_lock);
        for (int k = 0; k < g->n; k++) {
            srv_plan_copy(g->mem[k], mem[k]);
            g->mem[k]->replicas = g->cfg->replicas; /* its replicas are the group's */
        }
        pthread_rwlock_unlock(&s->rt_lock);
        return 0;
    }
    rt_model *fresh = NULL;
    if (srv_rt_start(s, cfg, &fresh, why, cap) < 0) { /* as a plain model's plan change */
        us_free(cfg);
        return -1;
    }
    int was_reps = g->cfg->replicas, was_threads = g->cfg->be.intra_threads;
    /* switch: requests admitted from now on go to the new runtime (readers hold rt_lock from
     * their readiness check to their submission) */
    pthread_rwlock_wrlock(&s->rt_lock);
    rt_model *old = g->rt;
    for (int k = 0; k < g->n; k++) {
        srv_model *m = g->mem[k];
        m->old = old;
        m->rt = fresh;
        srv_plan_copy(m, mem[k]);
        m->replicas = cfg->replicas;
    }
    g->rt = fresh;
    g->old = old;
    us_free(g->cfg);
    g->cfg = cfg;
    pthread_rwlock_unlock(&s->rt_lock);
    US_LOGI("merge group '%s': switched to the new plan: %d worker%s of %d thread%s (was %d of "
            "%d)",
            g->name, cfg->replicas, cfg->replicas == 1 ? "" : "s", cfg->be.intra_threads,
            cfg->be.intra_threads == 1 ? "" : "s", was_reps, was_threads);
    /* the old runtime answers everything it has, then stops; each member's counters on it
     * go into its retired as it is cleared (srv_model_stats reads one or the other) */
    rt_model_stop(old, drain_ns);
    rt_model_stats gs;
    rt_model_get_stats(old, &gs);
    pthread_rwlock_wrlock(&s->rt_lock);
    for (int k = 0; k < g->n; k++) {
        rt_model_stats st;
        rt_model_member_stats(old, k, &st);
        srv_stats_add(&g->mem[k]->retired, &st);
        g->mem[k]->old = NULL;
    }
    g->retired_batches += gs.group_batches;
    g->retired_mixed_batches += gs.group_mixed_batches;
    g->retired_filler_rows += gs.group_filler_rows;
    g->old = NULL;
    pthread_rwlock_unlock(&s->rt_lock);
    rt_model_free(old, 0);
    return 1;
}

void srv_groups_start(usher_server *s)
{
    s->groups = us_calloc(s->n ? s->n : 1, sizeof *s->groups);
    if (!s->groups) {
        US_LOGW("merge groups: out of memory; every model is served alone");
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        srv_model *first = &s->m[i];
        const char *name = srv_group_name(first);
        if (!name[0] || first->group)
            continue;
        bool seen = false; /* a group named before whose forming failed */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(srv_group_name(&s->m[j]), name) == 0;
        if (seen)
            continue;
        srv_group *g = &s->groups[s->n_groups];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "%s", name);
        char why[USHER_ERROR_MAX + 64] = "";
        for (size_t j = i; j < s->n; j++) {
            srv_model *m = &s->m[j];
            if (strcmp(srv_group_name(m), name) != 0)
                continue;
            if (m->error[0] || m->replicas <= 0) {
                snprintf(why, sizeof why, "member '%s' cannot be served: %.300s", m->rm->name,
                         m->error[0] ? m->error : "no replicas planned");
                continue;
            }
            if (g->n == RT_MAX_MEMBERS) {
                snprintf(why, sizeof why, "more than %d members", RT_MAX_MEMBERS);
                break;
            }
            g->mem[g->n++] = m;
        }
        if (!why[0] && g->n < 2)
            snprintf(why, sizeof why, "only one model names it");
        usher_error e = {0};
        if (!why[0] && group_form(s, g, &e) < 0)
            snprintf(why, sizeof why, "%s", e.msg);
        if (why[0]) {
            US_LOGW("merge group '%s' not used: %s; its members are served separately", name,
                    why);
            if (g->path[0])
                unlink(g->path);
            continue;
        }
        for (int k = 0; k < g->n; k++) {
            g->mem[k]->rt = g->rt;
            g->mem[k]->group = g;
            g->mem[k]->member = k;
            g->mem[k]->replicas = g->cfg->replicas; /* its replicas are the group's */
        }
        char names[512];
        size_t at = 0;
        names[0] = 0;
        for (int k = 0; k < g->n && at < sizeof names; k++)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", k ? ", " : "",
                                   g->mem[k]->rm->name);
        US_LOGI("merge group '%s': %s merged (%s, verified: worst error %.3g x scale), served "
                "by %d worker%s of %d thread%s",
                name, names, g->kind, g->max_err, g->cfg->replicas,
                g->cfg->replicas == 1 ? "" : "s", g->cfg->be.intra_threads,
                g->cfg->be.intra_threads == 1 ? "" : "s");
        s->n_groups++;
    }
}

void srv_groups_stop(usher_server *s, uint64_t drain_ns)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        srv_group *g = &s->groups[i];
        rt_model *rt = g->rt;
        if (!rt)
            continue;
        rt_model_stop(rt, drain_ns);
        pthread_rwlock_wrlock(&s->rt_lock);
        for (int k = 0; k < g->n; k++) {
            rt_model_stats st;
            rt_model_member_stats(rt, k, &st);
            srv_stats_add(&g->mem[k]->retired, &st);
            g->mem[k]->rt = NULL;
        }
        g->rt = NULL;
        pthread_rwlock_unlock(&s->rt_lock);
        rt_model_free(rt, 0);
    }
}

void srv_groups_free(usher_server *s)
{
    if (!s->groups)
        return;
    for (size_t i = 0; i < s->n_groups; i++) {
        if (s->groups[i].path[0])
            unlink(s->groups[i].path);
        us_free(s->groups[i].cfg);
    }
    us_free(s->groups);
    s->groups = NULL;
    s->n_groups = 0;
}
