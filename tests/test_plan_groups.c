/*
 * test_plan_groups.c - merge groups in the plan (issue 15 item 5; src/plan/groups.c,
 * docs/merge.md "Merge groups in the plan"):
 *   - the estimator's profile of a merged graph counts a weight common to the members
 *     once: its weight bytes equal the union of the members' distinct constants (by the
 *     IR's weight hashes), a few bytes of the merger's row offsets aside;
 *   - a shared-backbone group at b rows per member runs faster than the members one
 *     after another at b rows each;
 *   - the usher policy plans the 4 fine-tuned variants as one group beside unrelated
 *     models, for less than with merging off, every rate served; plan.json names the
 *     group, and the group's replicas are single replicas to the interference model;
 *   - the baselines stay unmerged unless asked (params.merge 1);
 *   - plan.json's merge_groups round-trip through src/planfile, and a malformed group is
 *     refused naming the field.
 * The variants come from scripts/make_finetuned.py (python3-torch, real SGD steps; the
 * directory of USHER_TEST_FT when set, to reuse them), the unrelated models from
 * tests/make_merge_models.py and the zoo (graph-only: never a merge candidate).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "ir/ir.h"
#include "onnx/model_impl.h"
#include "planfile/planfile.h"
#include "test.h"
#include "usher/estimate.h"
#include "usher/merge.h"
#include "usher/model.h"
#include "usher/plan.h"

#define N_VAR 4

static const char *ft_dir(void)
{
    static char dir[512];
    if (dir[0])
        return dir;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/make_merge_models.py %s/mm >/dev/null",
             test_source_dir(), test_tmpdir());
    if (system(cmd) != 0) {
        fprintf(stderr, "make_merge_models.py failed\n");
        exit(1);
    }
    const char *env = getenv("USHER_TEST_FT");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
        return dir;
    }
    snprintf(dir, sizeof dir, "%s/ft", test_tmpdir());
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/make_finetuned.py %s %d >%s/ft.log 2>&1",
             test_source_dir(), dir, N_VAR, test_tmpdir());
    if (system(cmd) != 0) {
        fprintf(stderr, "make_finetuned.py failed\n");
        exit(1);
    }
    return dir;
}

static const char *variant(int i)
{
    static char p[N_VAR][600];
    snprintf(p[i], sizeof p[i], "%s/variant%d.onnx", ft_dir(), i);
    return p[i];
}

/* the merged graph of the 4 variants, written once (not verified: the plan does not
 * verify either; test_merge.sh and serving do) */
static const char *merged(void)
{
    static char path[600];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s/merged.onnx", test_tmpdir());
    const char *paths[N_VAR];
    for (int i = 0; i < N_VAR; i++)
        paths[i] = variant(i);
    usher_merge_params mp = usher_merge_default_params();
    usher_merge *m = NULL;
    usher_error err;
    if (usher_merge_models(paths, N_VAR, &mp, &m, &err) < 0 ||
        usher_merge_write(m, path, &err) < 0) {
        fprintf(stderr, "merge: %s\n", err.msg);
        exit(1);
    }
    usher_merge_free(m);
    return path;
}

/* bytes of model m's constants (main graph), appended to the distinct set (hash, size)
 * unless one of the same hash and size is there */
static void add_distinct(usher_model *m, uint64_t *hash, uint64_t *size, size_t *n, size_t cap)
{
    const ir_graph *g = m->ir->main;
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        ir_tensor *t = g->tensors[i];
        if (!(t->flags & IR_TF_CONST) || !t->data)
            continue;
        uint64_t h = ir_tensor_hash(t);
        bool seen = false;
        for (size_t k = 0; k < *n && !seen; k++)
            seen = hash[k] == h && size[k] == t->nbytes;
        if (!seen && *n < cap) {
            hash[*n] = h;
            size[(*n)++] = t->nbytes;
        }
    }
}

static int profile(usher_estimator *e, const char *path, const char *gpu, int64_t batch,
                   usher_profile *out)
{
    usher_model *m = NULL;
    usher_error err;
    if (usher_model_load(path, NULL, &m, &err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return -1;
    }
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    int rc = usher_estimate(e, m, &ep, out, &err);
    if (rc < 0)
        fprintf(stderr, "estimate %s: %s\n", path, err.msg);
    usher_model_free(m);
    return rc;
}

TEST(merged_profile_counts_shared_weights_once)
{
    enum { CAP = 4096 };
    uint64_t *hash = malloc(CAP * sizeof *hash), *size = malloc(CAP * sizeof *size);
    ASSERT(hash && size);
    size_t n = 0;
    uint64_t sum = 0;
    usher_error err;
    for (int i = 0; i < N_VAR; i++) {
        usher_model *m = NULL;
        ASSERT_OK(usher_model_load(variant(i), NULL, &m, &err));
        usher_model_summary s;
        ASSERT_OK(usher_model_get_summary(m, &s));
        sum += s.weight_bytes;
        add_distinct(m, hash, size, &n, CAP);
        usher_model_free(m);
    }
    uint64_t uni = 0;
    for (size_t k = 0; k < n; k++)
        uni += size[k];
    free(hash);
    free(size);
    usher_estimator *e = NULL;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    usher_profile pm, p0;
    int rc = profile(e, merged(), "t4", 8, &pm);
    if (rc == 0)
        rc = profile(e, variant(0), "t4", 8, &p0);
    usher_estimator_free(e);
    ASSERT_EQ_INT(rc, 0);
    double wb = pm.weights_mb * 1e6;
    fprintf(stderr, "    members %llu weight bytes, %zu distinct constants %llu bytes, merged "
            "profile %.0f bytes\n", (unsigned long long)sum, n, (unsigned long long)uni, wb);
    /* the backbone is most of each variant: the union is far below the sum */
    ASSERT(uni < sum / 2);
    /* the merged graph's weights are the union; the merger adds row offsets (int64
     * scalars) and nothing else of size */
    ASSERT(wb >= (double)uni - 0.5);
    ASSERT(wb <= (double)uni + 1024);
    /* memory: one copy of the backbone, not four; and its weights read once per run: the
     * DRAM traffic and the L2 working set of a run of 8 rows per member below four runs
     * of the members' */
    fprintf(stderr, "    t4, 8 rows per member: merged Mreq %.1f MB, DRAM %.2f MB, L2 working set "
            "%.2f MB; one member %.1f MB, %.2f MB, %.2f MB\n", pm.mreq_mb, pm.dram_mb,
            pm.l2_working_set_mb, p0.mreq_mb, p0.dram_mb, p0.l2_working_set_mb);
    ASSERT(pm.mreq_mb < 4 * p0.mreq_mb);
    ASSERT(pm.dram_mb < 4 * p0.dram_mb);
    ASSERT(pm.l2_working_set_mb <= 4 * p0.l2_working_set_mb);
}

TEST(merged_latency_below_members_in_turn)
{
    usher_estimator *e = NULL;
    usher_error err;
    ASSERT_OK(usher_estimator_new(NULL, &e, &err));
    const char *gpus[] = {"t4", "a100-80gb"};
    const int64_t batches[] = {1, 8, 32};
    int bad = 0;
    for (size_t g = 0; g < 2; g++)
        for (size_t b = 0; b < 3; b++) {
            usher_profile pm, pv;
            double sum = 0;
            if (profile(e, merged(), gpus[g], batches[b], &pm) < 0) {
                bad++;
                continue;
            }
            for (int i = 0; i < N_VAR; i++) {
                if (profile(e, variant(i), gpus[g], batches[b], &pv) < 0) {
                    bad++;
                    break;
                }
                sum += pv.latency_ms;
            }
            fprintf(stderr, "    %s, %lld rows per member: merged %.4g ms, members in turn "
                    "%.4g ms (%u kernels against %u each)\n", gpus[g], (long long)batches[b],
                    pm.latency_ms, sum, pm.n_kernels, pv.n_kernels);
            if (!(pm.latency_ms < sum))
                bad++;
        }
    usher_estimator_free(e);
    ASSERT_EQ_INT(bad, 0);
}

/* workload: the 4 variants, an unrelated MLP with weights, and resnet18 (graph-only) */
static void write_inputs(const char *tag, const char *cluster)
{
    char w[4096], name[64];
    int at = snprintf(w, sizeof w, "models:\n");
    for (int i = 0; i < N_VAR; i++)
        at += snprintf(w + at, sizeof w - (size_t)at,
                       "  - {name: variant%d, model: %s, rate: 2000, slo_ms: 20}\n", i, variant(i));
    at += snprintf(w + at, sizeof w - (size_t)at,
                   "  - {name: resnet18, model: %s/models/zoo/resnet18.onnx, rate: 1300, "
                   "slo_ms: 50}\n", test_source_dir());
    at += snprintf(w + at, sizeof w - (size_t)at,
                   "  - {name: mlp_c, model: %s/mm/mlp_c.onnx, rate: 100, slo_ms: 20}\n",
                   test_tmpdir());
    snprintf(name, sizeof name, "w-%s.yaml", tag);
    test_write_file(name, w);
    snprintf(name, sizeof name, "c-%s.yaml", tag);
    test_write_file(name, cluster);
}

static int plan(const char *tag, const char *policy, int merge, pf_plan *f, usher_plan_summary *s)
{
    char wp[600], cp[600], out[600], name[64];
    snprintf(name, sizeof name, "w-%s.yaml", tag);
    snprintf(wp, sizeof wp, "%s", test_path(test_tmpdir(), name));
    snprintf(name, sizeof name, "c-%s.yaml", tag);
    snprintf(cp, sizeof cp, "%s", test_path(test_tmpdir(), name));
    snprintf(out, sizeof out, "%s/plan-%s-%s-%d.json", test_tmpdir(), tag, policy, merge);
    usher_estimator *e = NULL;
    usher_error err;
    if (usher_estimator_new(NULL, &e, &err) < 0)
        return -1;
    usher_plan_params pp = usher_plan_default_params();
    pp.workload = wp;
    pp.cluster = cp;
    pp.policy = policy;
    pp.merge = merge;
    usher_plan *pl = NULL;
    int rc = usher_plan_make(e, &pp, &pl, &err);
    if (rc == 0)
        rc = usher_plan_get_summary(pl, s);
    if (rc == 0)
        rc = usher_plan_write_json(pl, out, &err);
    if (rc == 0 && s->models != N_VAR + 2)
        rc = -1;
    for (uint32_t i = 0; rc == 0 && i < s->models; i++) { /* the workload's models */
        usher_plan_model m;
        rc = usher_plan_model_at(pl, i, &m);
        bool is_variant = rc == 0 && strncmp(m.name, "variant", 7) == 0;
        if (rc == 0 && is_variant != (i < N_VAR))
            rc = -1;
    }
    if (rc < 0)
        fprintf(stderr, "plan %s %s: %s\n", tag, policy, err.msg);
    usher_plan_free(pl);
    usher_estimator_free(e);
    return rc < 0 ? rc : pf_load(out, f, &err);
}

static bool all_served(const pf_plan *f)
{
    for (uint32_t i = 0; i < f->n_models; i++)
        if (f->m[i].goodput < f->m[i].rate * (1 - 1e-6))
            return false;
    return f->feasible;
}

TEST(usher_plans_the_variants_as_one_group)
{
    write_inputs("t4", "gpus:\n  - {type: t4, max: 64}\n");
    pf_plan on, off;
    usher_plan_summary son, soff;
    memset(&on, 0, sizeof on);
    memset(&off, 0, sizeof off);
    int rc = plan("t4", "usher", 0, &on, &son);
    if (rc == 0)
        rc = plan("t4", "usher", -1, &off, &soff);
    if (rc < 0) {
        pf_free(&on);
        pf_free(&off);
        FAIL_("planning failed");
    }
    fprintf(stderr, "    merging on: %u GPUs, $%.3f/h, %u replicas; off: %u GPUs, $%.3f/h, %u "
            "replicas; note: %s\n", son.gpus, son.cost_per_hour, son.replicas, soff.gpus,
            soff.cost_per_hour, soff.replicas, on.note ? on.note : "-");
    bool ok = on.n_groups == 1 && off.n_groups == 0 && on.groups[0].n_members == N_VAR &&
              on.groups[0].kind && strcmp(on.groups[0].kind, "shared") == 0 &&
              on.groups[0].weight_bytes_after < on.groups[0].weight_bytes_before / 2;
    for (uint32_t k = 0; ok && k < N_VAR; k++) {
        char want[32];
        snprintf(want, sizeof want, "variant%u", k);
        ok = strcmp(on.groups[0].members[k], want) == 0;
    }
    /* the group costs less, and every rate is served in both plans */
    bool cheaper = son.cost_per_hour < soff.cost_per_hour - 1e-9;
    bool served = all_served(&on) && all_served(&off) && on.n_models == N_VAR + 2 &&
                  fabs(on.totals.rate - off.totals.rate) < 1e-6;
    /* the group's replicas: one replica each for the interference model (one entry,
     * one co-located latency, no per-member entries), and every member counts them */
    uint32_t group_reps = 0, member_entries = 0;
    bool colocated = true;
    for (uint32_t g = 0; ok && g < on.n_gpus; g++)
        for (uint32_t r = 0; r < on.g[g].n; r++) {
            const pf_replica *x = &on.g[g].r[r];
            if (strcmp(x->model, on.groups[0].name) == 0) {
                group_reps++;
                colocated = colocated && x->latency_colocated_ms > 0;
            }
            member_entries += strncmp(x->model, "variant", 7) == 0;
        }
    bool reps_ok = ok && group_reps > 0 && member_entries == 0 && colocated &&
                   on.m[0].replicas == group_reps;
    pf_free(&on);
    pf_free(&off);
    ASSERT(ok);
    ASSERT(cheaper);
    ASSERT(served);
    ASSERT(reps_ok);
}

/* a fixed cluster too small for the models alone: the group serves more (max-goodput) */
TEST(fixed_cluster_serves_more_with_the_group)
{
    write_inputs("fx", "objective: max-goodput\ngpus:\n  - {type: t4, count: 1}\n");
    pf_plan on, off;
    usher_plan_summary son, soff;
    memset(&on, 0, sizeof on);
    memset(&off, 0, sizeof off);
    int rc = plan("fx", "usher", 0, &on, &son);
    if (rc == 0)
        rc = plan("fx", "usher", -1, &off, &soff);
    uint32_t ng = on.n_groups;
    bool all = rc == 0 && all_served(&on);
    pf_free(&on);
    pf_free(&off);
    ASSERT_EQ_INT(rc, 0);
    fprintf(stderr, "    one T4: %.6g of %.6g req/s served with the group, %.6g alone\n",
            son.goodput, son.rate, soff.goodput);
    ASSERT_EQ_INT(ng, 1);
    ASSERT(all);
    ASSERT(son.goodput > soff.goodput + 1);
}

TEST(baselines_merge_only_when_asked)
{
    write_inputs("t4b", "gpus:\n  - {type: t4, max: 64}\n");
    pf_plan a, b;
    usher_plan_summary sa, sb;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    int rc = plan("t4b", "gpulet", 0, &a, &sa);
    if (rc == 0)
        rc = plan("t4b", "gpulet", 1, &b, &sb);
    uint32_t na = a.n_groups, nb = b.n_groups;
    bool served = rc == 0 && all_served(&a) && all_served(&b);
    pf_free(&a);
    pf_free(&b);
    ASSERT_EQ_INT(rc, 0);
    fprintf(stderr, "    gpulet: $%.3f/h alone, $%.3f/h with merging asked\n", sa.cost_per_hour,
            sb.cost_per_hour);
    ASSERT_EQ_INT(na, 0);
    ASSERT_EQ_INT(nb, 1);
    ASSERT(sb.cost_per_hour <= sa.cost_per_hour + 1e-9);
    ASSERT(served);
}

static const char plan_text[] =
    "{\"schema_version\": 1, \"models\": [{\"name\": \"a\", \"rate\": 10}, {\"name\": \"b\"},"
    " {\"name\": \"c\"}],\n"
    " \"merge_groups\": [{\"name\": \"merge-1\", \"kind\": \"shared\", \"members\": [\"a\", \"b\"],"
    " \"weight_bytes_before\": 2000, \"weight_bytes_after\": 1000}],\n"
    " \"gpus\": [{\"type\": \"t4\", \"replicas\": [{\"model\": \"merge-1\", \"batch\": 4, "
    "\"share\": 30}, {\"model\": \"c\", \"batch\": 1, \"share\": 10}]}]}\n";

TEST(plan_json_groups_round_trip)
{
    pf_plan a, b;
    usher_error err;
    us_buf out;
    us_buf_init(&out, 1 << 20);
    ASSERT_OK(pf_parse(plan_text, strlen(plan_text), "t.json", &a, &err));
    int rc = pf_write(&a, &out);
    if (rc == 0)
        rc = pf_parse(out.data, out.len, "t2.json", &b, &err);
    bool same = rc == 0 && b.n_groups == 1 && strcmp(b.groups[0].name, "merge-1") == 0 &&
                strcmp(b.groups[0].kind, "shared") == 0 && b.groups[0].n_members == 2 &&
                strcmp(b.groups[0].members[0], "a") == 0 &&
                strcmp(b.groups[0].members[1], "b") == 0 &&
                b.groups[0].weight_bytes_before == 2000 && b.groups[0].weight_bytes_after == 1000 &&
                strcmp(b.g[0].r[0].model, "merge-1") == 0;
    bool present = rc == 0 && strstr(out.data, "merge_groups") != NULL;
    if (rc == 0)
        pf_free(&b);
    pf_free(&a);
    us_buf_free(&out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(same);
    ASSERT(present);
    /* a plan without groups writes none: byte-identical to one written before them */
    const char *old = "{\"schema_version\": 1, \"gpus\": [{\"type\": \"t4\", \"replicas\": "
                      "[{\"model\": \"x\", \"batch\": 1, \"share\": 10}]}]}";
    ASSERT_OK(pf_parse(old, strlen(old), "old.json", &a, &err));
    uint32_t ng = a.n_groups;
    us_buf_init(&out, 1 << 20);
    rc = pf_write(&a, &out);
    bool none = rc == 0 && out.data && !strstr(out.data, "merge_groups");
    pf_free(&a);
    us_buf_free(&out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(ng, 0);
    ASSERT(none);
}

/* plan_text with `from` replaced by `to`: refused, err naming `field` */
static bool refused(const char *from, const char *to, const char *field)
{
    char text[2048];
    const char *at = strstr(plan_text, from);
    if (!at)
        return false;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - plan_text), plan_text, to,
             at + strlen(from));
    pf_plan p;
    usher_error err;
    int rc = pf_parse(text, strlen(text), "bad.json", &p, &err);
    pf_free(&p);
    bool ok = rc == USHER_ERR_PARSE && strstr(err.msg, field) != NULL;
    if (!ok)
        fprintf(stderr, "    %s -> %s: rc %d, '%s' (wanted the field '%s')\n", from, to, rc,
                rc < 0 ? err.msg : "", field);
    return ok;
}

TEST(malformed_groups_are_refused_naming_the_field)
{
    int bad = 0;
    bad += !refused("[\"a\", \"b\"]", "[\"a\"]", "'merge_groups[0].members': 2 to 16");
    bad += !refused("[\"a\", \"b\"]", "[\"a\", \"zz\"]", "'merge_groups[0].members[1]'");
    bad += !refused("[\"a\", \"b\"]", "[\"a\", \"a\"]", "'merge_groups[0].members[1]'");
    bad += !refused("[\"a\", \"b\"]", "[\"a\", 7]", "'merge_groups[0].members[1]'");
    bad += !refused("[\"a\", \"b\"]", "[\"a\", [1]]", "'merge_groups[0].members[1]'");
    bad += !refused("[\"a\", \"b\"]", "\"a\"", "'merge_groups[0].members'");
    bad += !refused("\"kind\": \"shared\"", "\"kind\": \"glued\"", "'merge_groups[0].kind'");
    bad += !refused("\"name\": \"merge-1\"", "\"name\": \"a b\"", "'merge_groups[0].name'");
    bad += !refused("\"name\": \"merge-1\"", "\"name\": \"c\"", "'merge_groups[0].name'");
    bad += !refused("\"name\": \"merge-1\", \"kind\"", "\"kind\"", "'merge_groups[0].name'");
    bad += !refused("\"weight_bytes_after\": 1000", "\"weight_bytes_after\": -1",
                    "'merge_groups[0].weight_bytes_after'");
    bad += !refused("{\"model\": \"merge-1\"", "{\"model\": \"merge-2\"",
                    "'gpus[0].replicas[0].model'");
    bad += !refused("\"merge_groups\": [", "\"merge_groups\": [7, ", "merge_groups[0]");
    /* a member placed alone as well as in its group: every reader (serve, simulate) refuses */
    bad += !refused("{\"model\": \"c\"", "{\"model\": \"b\"",
                    "field 'gpus[0].replicas[1].model': 'b' is a member of merge group "
                    "'merge-1' (merge_groups[0]) and is placed alone too");
    ASSERT_EQ_INT(bad, 0);
}

TEST(groups_allocation_failures)
{
    usher_error err;
    /* plan.json with a group: every allocation of the reader failed in turn */
    size_t live = us_alloc_live_bytes();
    int failed = 0;
    for (uint64_t k = 1;; k++) {
        pf_plan r;
        uint64_t inj = us_alloc_injected_failures();
        us_alloc_fail_nth(k);
        int rc = pf_parse(plan_text, strlen(plan_text), "t.json", &r, &err);
        us_alloc_fail_nth(0);
        pf_free(&r);
        ASSERT_EQ_U64(us_alloc_live_bytes(), live);
        if (us_alloc_injected_failures() == inj) {
            ASSERT_OK(rc);
            break;
        }
        ASSERT_EQ_INT(rc, USHER_ERR_NOMEM);
        failed++;
    }
    ASSERT(failed >= 3);
    /* the planner with its merge-group search: 48 allocations spread over a whole run
     * fail in turn; each run ends in a plan or an out-of-memory error, nothing left behind
     * (a failure inside the search may also just drop a candidate: a plan, unmerged) */
    write_inputs("oom", "gpus:\n  - {type: t4, max: 64}\n");
    pf_plan f;
    usher_plan_summary sm;
    uint64_t a0 = us_alloc_count();
    ASSERT_OK(plan("oom", "usher", 0, &f, &sm));
    pf_free(&f);
    uint64_t total = us_alloc_count() - a0;
    int nomem = 0, bad = 0;
    for (uint64_t i = 1; i < 48; i++) {
        usher_estimator *e = NULL;
        ASSERT_OK(usher_estimator_new(NULL, &e, &err));
        usher_plan_params pp = usher_plan_default_params();
        char wp[600], cp[600];
        snprintf(wp, sizeof wp, "%s", test_path(test_tmpdir(), "w-oom.yaml"));
        snprintf(cp, sizeof cp, "%s", test_path(test_tmpdir(), "c-oom.yaml"));
        pp.workload = wp;
        pp.cluster = cp;
        usher_plan *pl = NULL;
        size_t before = us_alloc_live_bytes();
        us_alloc_fail_nth(total * i / 48);
        int rc = usher_plan_make(e, &pp, &pl, &err);
        us_alloc_fail_nth(0);
        usher_plan_free(pl);
        usher_estimator_free(e);
        /* the ONNX reader reports an allocation failed inside protobuf-c as a decoding
         * failure "(or out of memory)" */
        bool oom = rc == USHER_ERR_NOMEM || (rc < 0 && strstr(err.msg, "out of memory"));
        nomem += oom;
        if (rc != USHER_OK && !oom) {
            fprintf(stderr, "    failure %llu of %llu: rc %d: %s\n", (unsigned long long)(total * i / 48),
                    (unsigned long long)total, rc, err.msg);
            bad++;
        }
        if (us_alloc_live_bytes() > before) {
            fprintf(stderr, "    failure %llu: %zu bytes left\n",
                    (unsigned long long)(total * i / 48), us_alloc_live_bytes() - before);
            bad++;
        }
    }
    fprintf(stderr, "    %llu allocations a plan; %d of 47 failures refused the plan\n",
            (unsigned long long)total, nomem);
    ASSERT_EQ_INT(bad, 0);
}

TEST_MAIN(TEST_ENTRY(merged_profile_counts_shared_weights_once),
          TEST_ENTRY(merged_latency_below_members_in_turn),
          TEST_ENTRY(usher_plans_the_variants_as_one_group),
          TEST_ENTRY(fixed_cluster_serves_more_with_the_group),
          TEST_ENTRY(baselines_merge_only_when_asked), TEST_ENTRY(plan_json_groups_round_trip),
          TEST_ENTRY(malformed_groups_are_refused_naming_the_field),
          TEST_ENTRY(groups_allocation_failures))
