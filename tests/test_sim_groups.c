/*
 * test_sim_groups.c - the simulator running a plan's merge groups (src/sim/engine.c,
 * docs/simulator.md "Merge groups"): a group's members' requests in one queue, batched
 * together into runs of the merged graph costed by the runtime's own rows (rt_group_rows) -
 * a case computed by hand for each merge kind; metrics per member; the plan and the
 * workload checked (a member missing from the workload, a member with replicas of its own,
 * no group profile, a re-plan with other groups); byte-identical JSON for a seed, and no
 * group field in the JSON of a plan without groups. Fixed profiles: no estimator here
 * (tests/test_sim_groups.sh runs the real grouped plan of the fine-tuned variants).
 */
#include <math.h>

#include "core/buf.h"
#include "core/err.h"
#include "runtime/rt.h"
#include "sim/sim.h"
#include "sim/workload_impl.h"
#include "sim_list.h"
#include "test.h"

#define SEC 1000000000ull
#define MS 1000000ull

/* a model alone: 1 + 1 ms a row; a group's merged graph at b rows of each member:
 * 10 + 2 b ms (interference off unless said: no GPU figures needed) */
static int fixed_profile(void *ctx, uint32_t model, const char *gpu, int batch, double share_pct,
                         if_replica *out, usher_error *err)
{
    double lat = 1 + 1.0 * batch;
    *out = (if_replica){.latency_ms = lat, .gpu_ms = lat, .compute_ms = lat / 2,
                        .mem_ms = lat / 2, .dram_mb = 10.0 * batch, .l2_mb = 1};
    return USHER_OK;
}

static int group_calls;

static int fixed_group(void *ctx, const pf_group *g, uint32_t group, const uint32_t *members,
                       const char *gpu, int batch, double share_pct, if_replica *out,
                       usher_error *err)
{
    double lat = 10 + 2.0 * batch;
    *out = (if_replica){.latency_ms = lat, .gpu_ms = lat, .compute_ms = lat / 2,
                        .mem_ms = lat / 2, .dram_mb = 10.0 * batch * g->n_members, .l2_mb = 2};
    group_calls++;
    return USHER_OK;
}

static int fixed_device(void *ctx, const char *gpu, if_device *out, usher_error *err)
{
    *out = (if_device){.bw_gbs = 900, .l2_mb = 6};
    snprintf(out->key, sizeof out->key, "%s", gpu);
    return USHER_OK;
}

static int run_plan(const char *plan_json, const sim_model_spec *models, uint32_t n_models,
                    sim_params *p, sim_report **out, usher_error *err)
{
    pf_plan pl;
    int rc = pf_parse(plan_json, strlen(plan_json), "plan.json", &pl, err);
    if (rc < 0) {
        sim_source_free(p->source);
        return rc;
    }
    p->plan = &pl;
    p->plan_label = "plan.json";
    p->workload_label = "workload.yaml";
    p->models = models;
    p->n_models = n_models;
    p->profile = fixed_profile;
    if (!p->group_profile)
        p->group_profile = fixed_group;
    p->device = fixed_device;
    rc = sim_run(p, out, err);
    pf_free(&pl);
    return rc;
}

/* members a and b in group g (kind KIND), one replica of batch 2 (rows of each member), and
 * c alone */
static const char *group_plan(const char *kind)
{
    static char s[1024];
    snprintf(s, sizeof s,
             "{\"schema_version\": 1,\n"
             " \"models\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"c\"}],\n"
             " \"merge_groups\": [{\"name\": \"g\", \"kind\": \"%s\", \"members\": [\"a\", "
             "\"b\"], \"weight_bytes_before\": 2000, \"weight_bytes_after\": 1200}],\n"
             " \"gpus\": [{\"type\": \"t4\", \"price_per_hour\": 0.5, \"power_w\": 70, "
             "\"memory_pct\": 20, \"replicas\": [\n"
             "   {\"model\": \"g\", \"batch\": 2, \"share\": 50},\n"
             "   {\"model\": \"c\", \"batch\": 1, \"share\": 50}]}]}\n",
             kind);
    return s;
}

static const sim_model_spec abc[3] = {{.name = "a", .rate = 10, .slo_ms = 100, .line = 2},
                                      {.name = "b", .rate = 10, .slo_ms = 100, .line = 3},
                                      {.name = "c", .rate = 10, .slo_ms = 100, .line = 4}};

/*
 * By hand, interference off. a@0 finds the replica idle: a run of 1 request (the merged
 * graph at 1 row each: 12 ms). b@1, a@2, a@3, b@4 queue; at 12 ms the four (the group's
 * cap: 2 rows x 2 members) run together: 2 rows each, 14 ms, ending at 26 ms. Latencies: a
 * 12, 24, 23 ms; b 25, 22 ms. The first run's absent member b gets a filler row in a
 * side-by-side or stacked merge, none in a shared one.
 */
TEST(mixed_members_by_hand)
{
    static const sim_arrival arr[] = {{0, 0}, {1 * MS, 1}, {2 * MS, 0}, {3 * MS, 0}, {4 * MS, 1}};
    static const char *kinds[] = {"shared", "side-by-side", "stacked"};
    for (int k = 0; k < 3; k++) {
        sim_params p = sim_default_params();
        p.interference = false;
        p.source = list_source_new(arr, 5);
        ASSERT(p.source);
        sim_report *r = NULL;
        usher_error err = {0};
        group_calls = 0;
        ASSERT_OK(run_plan(group_plan(kinds[k]), abc, 3, &p, &r, &err));
        const sim_model_report *a = &r->m[0], *b = &r->m[1];
        const sim_group_report *g = &r->groups[0];
        printf("  %s: a served %llu mean %.4f ms in %llu runs; b served %llu mean %.4f ms; "
               "group %llu runs, %llu mixed, %llu filler rows; end %.4f s; %d profiles\n",
               kinds[k], (unsigned long long)a->served, a->mean_ms,
               (unsigned long long)a->batches, (unsigned long long)b->served, b->mean_ms,
               (unsigned long long)g->batches, (unsigned long long)g->mixed_batches,
               (unsigned long long)g->filler_rows, r->end_s, group_calls);
        bool ok = r->n_groups == 1 && strcmp(g->name, "g") == 0 && g->n_members == 2 &&
                  g->replicas == 1 && g->batches == 2 && g->mixed_batches == 1 &&
                  g->rows == 5 && g->filler_rows == (k == 0 ? 0u : 1u) &&
                  strcmp(a->group, "g") == 0 && strcmp(b->group, "g") == 0 &&
                  r->m[2].group[0] == 0 && a->requests == 3 && a->served == 3 &&
                  a->good == 3 && b->requests == 2 && b->served == 2 &&
                  fabs(a->mean_ms - 59.0 / 3) < 1e-9 && fabs(b->mean_ms - 23.5) < 1e-9 &&
                  fabs(a->max_ms - 24) < 1e-9 && fabs(b->max_ms - 25) < 1e-9 &&
                  a->batches == 2 && a->batch_rows == 3 && b->batches == 1 &&
                  b->batch_rows == 2 && a->replicas == 1 && r->m[2].requests == 0 &&
                  fabs(r->end_s - 0.026) < 1e-12 && r->requests == 5 && r->good == 5 &&
                  group_calls == (k == 0 ? 2 : k == 1 ? 3 : 4);
        sim_report_free(r);
        ASSERT(ok);
    }
}

/*
 * One member only: a@0 runs alone (12 ms); a@1..a@4 run together at 12 ms, 4 rows of a.
 * Shared: its rows through the common operators are the profile's at ceil(4 / 2) = 2 rows
 * each (14 ms, ends at 26 ms); stacked: every member padded to 4 rows, the profile at 4
 * (18 ms, ends at 30 ms, 4 + 1 filler rows); side-by-side: b gets a filler row, ceil(5 / 2)
 * = 3 rows each (16 ms, ends at 28 ms).
 */
TEST(one_member_costed_by_the_runtime_rows)
{
    static const sim_arrival arr[] = {{0, 0}, {1 * MS, 0}, {2 * MS, 0}, {3 * MS, 0}, {4 * MS, 0}};
    static const char *kinds[] = {"shared", "side-by-side", "stacked"};
    static const double end_ms[] = {26, 28, 30};
    static const uint64_t fillers[] = {0, 2, 5};
    for (int k = 0; k < 3; k++) {
        sim_params p = sim_default_params();
        p.interference = false;
        p.source = list_source_new(arr, 5);
        ASSERT(p.source);
        sim_report *r = NULL;
        usher_error err = {0};
        ASSERT_OK(run_plan(group_plan(kinds[k]), abc, 3, &p, &r, &err));
        printf("  %s: end %.4f s, %llu runs, %llu mixed, %llu filler rows, latency scale %.4g\n",
               kinds[k], r->end_s, (unsigned long long)r->groups[0].batches,
               (unsigned long long)r->groups[0].mixed_batches,
               (unsigned long long)r->groups[0].filler_rows, r->m[0].latency_scale);
        bool ok = fabs(r->end_s - end_ms[k] / 1e3) < 1e-12 && r->groups[0].batches == 2 &&
                  r->groups[0].mixed_batches == 0 && r->groups[0].filler_rows == fillers[k] &&
                  r->m[0].served == 5 && r->m[1].requests == 0;
        sim_report_free(r);
        ASSERT(ok);
    }
}

TEST(plan_and_workload_checked)
{
    usher_error err = {0};
    sim_report *r = NULL;
    /* a member the workload lacks: the group and the member named */
    sim_model_spec ac[2] = {abc[0], abc[2]};
    sim_params p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(group_plan("shared"), ac, 2, &p, &r, &err) < 0);
    ASSERT_CONTAINS(err.msg, "plan.json: field 'merge_groups[0].members[1]': merge group 'g' "
                             "names model 'b', which is not in workload.yaml");
    /* a member with a replica of its own */
    static const char *own =
        "{\"schema_version\": 1, \"models\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": "
        "\"c\"}], \"merge_groups\": [{\"name\": \"g\", \"kind\": \"shared\", \"members\": "
        "[\"a\", \"b\"]}], \"gpus\": [{\"type\": \"t4\", \"replicas\": [{\"model\": \"g\", "
        "\"batch\": 2, \"share\": 50}, {\"model\": \"c\", \"batch\": 1, \"share\": 25}, "
        "{\"model\": \"a\", \"batch\": 1, \"share\": 25}]}]}";
    p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(own, abc, 3, &p, &r, &err) < 0);
    /* refused by the plan file's reader, as usher serve refuses it */
    ASSERT_CONTAINS(err.msg, "field 'gpus[0].replicas[2].model': 'a' is a member of merge "
                             "group 'g' (merge_groups[0]) and is placed alone too");
    /* no profile of merged graphs (a measured table has none) */
    p = sim_default_params();
    p.duration_ns = SEC;
    p.group_profile = NULL;
    pf_plan pl;
    ASSERT_OK(pf_parse(group_plan("shared"), strlen(group_plan("shared")), "plan.json", &pl,
                       &err));
    p.plan = &pl;
    p.plan_label = "plan.json";
    p.models = abc;
    p.n_models = 3;
    p.profile = fixed_profile;
    p.device = fixed_device;
    int rc = sim_run(&p, &r, &err);
    pf_free(&pl);
    ASSERT(rc < 0);
    ASSERT_CONTAINS(err.msg, "field 'merge_groups': merge group 'g': no profile of merged "
                             "graphs was given");
    /* a group's replica serves no workload model alone: its members are planned */
    static const char *no_list =
        "{\"schema_version\": 1, \"merge_groups\": [{\"name\": \"g\", \"kind\": \"shared\", "
        "\"members\": [\"a\", \"b\"]}], \"gpus\": [{\"type\": \"t4\", \"replicas\": "
        "[{\"model\": \"g\", \"batch\": 2, \"share\": 50}]}]}";
    p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(no_list, abc, 3, &p, &r, &err) < 0);
    ASSERT_CONTAINS(err.msg, "field 'models[2].name': model 'c' is not in plan.json");
}

/* re-planning: a plan with other groups than the running one's is refused, naming it */
static const pf_plan *other;

static int replan_other(void *ctx, uint64_t now_ns, const double *rates, uint32_t n,
                        const pf_plan **out, usher_error *err)
{
    *out = other;
    return USHER_OK;
}

TEST(replan_keeps_the_groups)
{
    usher_error err = {0};
    pf_plan alone;
    static const char *alone_json =
        "{\"schema_version\": 1, \"models\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": "
        "\"c\"}], \"gpus\": [{\"type\": \"t4\", \"replicas\": [{\"model\": \"a\", \"batch\": 2, "
        "\"share\": 30}, {\"model\": \"b\", \"batch\": 2, \"share\": 30}, {\"model\": \"c\", "
        "\"batch\": 1, \"share\": 40}]}]}";
    ASSERT_OK(pf_parse(alone_json, strlen(alone_json), "replan.json", &alone, &err));
    pf_plan same;
    ASSERT_OK(pf_parse(group_plan("shared"), strlen(group_plan("shared")), "same.json", &same,
                       &err));
    for (int pass = 0; pass < 2; pass++) {
        other = pass ? &same : &alone;
        sim_params p = sim_default_params();
        p.duration_ns = 3 * SEC;
        p.replan_every_ns = SEC;
        p.replan = replan_other;
        sim_report *r = NULL;
        int rc = run_plan(group_plan("shared"), abc, 3, &p, &r, &err);
        if (pass == 0) {
            ASSERT(rc < 0);
            ASSERT_CONTAINS(err.msg, "re-plan at 1.000 s: replan.json: field 'merge_groups': the "
                                     "plan's merge groups (0) are not the running plan's (1)");
        } else {
            ASSERT_OK(rc);
            printf("  the same groups again: %u re-plans, %llu requests, %.2f%% within the SLO, "
                   "kept %u\n", r->n_replans, (unsigned long long)r->requests,
                   r->attainment_pct, r->replans[0].kept);
            bool ok = r->n_replans == 2 && r->replans[0].kept == 2 &&
                      r->replans[0].started == 0 && r->m[0].served > 0 &&
                      strcmp(r->m[1].group, "g") == 0;
            sim_report_free(r);
            ASSERT(ok);
        }
    }
    pf_free(&alone);
    pf_free(&same);
}

static int grouped_json(const char *plan, uint64_t seed, bool interference, us_buf *out,
                        usher_error *err)
{
    sim_params p = sim_default_params();
    p.duration_ns = 5 * SEC;
    p.seed = seed;
    p.interference = interference;
    p.interval_ns = SEC;
    sim_model_spec m[3] = {abc[0], abc[1], abc[2]};
    m[0].rate = m[1].rate = 120;
    m[2].rate = 200;
    sim_report *r = NULL;
    int rc = run_plan(plan, m, 3, &p, &r, err);
    if (rc < 0)
        return rc;
    rc = sim_report_json(r, false, out);
    sim_report_free(r);
    return rc;
}

TEST(same_seed_same_bytes_and_no_group_fields_without_groups)
{
    usher_error err = {0};
    us_buf a, b, c;
    us_buf_init(&a, 1 << 22);
    us_buf_init(&b, 1 << 22);
    us_buf_init(&c, 1 << 22);
    int rc = grouped_json(group_plan("shared"), 3, true, &a, &err);
    if (rc >= 0)
        rc = grouped_json(group_plan("shared"), 3, true, &b, &err);
    static const char *alone =
        "{\"schema_version\": 1, \"models\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": "
        "\"c\"}], \"gpus\": [{\"type\": \"t4\", \"replicas\": [{\"model\": \"a\", \"batch\": 2, "
        "\"share\": 30}, {\"model\": \"b\", \"batch\": 2, \"share\": 30}, {\"model\": \"c\", "
        "\"batch\": 1, \"share\": 40}]}]}";
    if (rc >= 0)
        rc = grouped_json(alone, 3, true, &c, &err);
    if (rc < 0)
        printf("  %s\n", err.msg);
    bool same = rc >= 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    bool fields = rc >= 0 && strstr(us_buf_str(&a), "\"merge_groups\"") &&
                  strstr(us_buf_str(&a), "\"group\": \"g\"") &&
                  strstr(us_buf_str(&a), "\"mixed_batches\"");
    bool none = rc >= 0 && !strstr(us_buf_str(&c), "group");
    printf("  grouped: %zu bytes, twice the same: %s; alone: %zu bytes, no group field: %s\n",
           a.len, same ? "yes" : "no", c.len, none ? "yes" : "no");
    us_buf_free(&a);
    us_buf_free(&b);
    us_buf_free(&c);
    ASSERT_OK(rc);
    ASSERT(same);
    ASSERT(fields);
    ASSERT(none);
}

TEST(group_rows_as_the_runtime_joins_them)
{
    int64_t own[3] = {2, 0, 1}, want[3];
    ASSERT_EQ_INT(rt_group_rows(own, 3, true, false, true, want), 0); /* shared */
    ASSERT(want[0] == 2 && want[1] == 0 && want[2] == 1);
    ASSERT_EQ_INT(rt_group_rows(own, 3, true, false, false, want), 1); /* side by side */
    ASSERT(want[0] == 2 && want[1] == 1 && want[2] == 1);
    ASSERT_EQ_INT(rt_group_rows(own, 3, true, true, false, want), 3); /* stacked */
    ASSERT(want[0] == 2 && want[1] == 2 && want[2] == 2);
    ASSERT_EQ_INT(rt_group_rows(own, 3, false, false, false, want), 1); /* no batch dim */
    ASSERT(want[0] == 1 && want[1] == 1 && want[2] == 1);
}

TEST_MAIN(TEST_ENTRY(mixed_members_by_hand), TEST_ENTRY(one_member_costed_by_the_runtime_rows),
          TEST_ENTRY(plan_and_workload_checked), TEST_ENTRY(replan_keeps_the_groups),
          TEST_ENTRY(same_seed_same_bytes_and_no_group_fields_without_groups),
          TEST_ENTRY(group_rows_as_the_runtime_joins_them))
