/*
 * test_sim_report.c - the simulator's plots and HTML page (src/sim/report.h)
 * without a browser (tests/test_sim_html.sh opens them in chromium): XML
 * escaping of hostile names, the per-GPU utilisation series adding up to
 * the run's utilisation, the latency CDF from the report's histograms,
 * every plot's structure (ids, one path per series with points, the heat
 * map's cells and its averaging past 64 x 150), ticks on linear and log
 * axes, the page self-contained and byte-identical for a seed, bad plot
 * arguments, and every allocation failure of the page cleaned up.
 */
#include <math.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "planfile/planfile.h"
#include "sim/report.h"
#include "sim/sim.h"
#include "test.h"

#define SEC 1000000000ull
/* a call returning a status (its message, if any, is printed where it fails) */
#define CHECK_OK(call) ASSERT_EQ_INT((call), USHER_OK)

/* latency(b) = base + per_row x b ms, all of it on the GPU */
static int fixed_profile(void *ctx, uint32_t model, const char *gpu, int batch, double share_pct,
                         if_replica *out, usher_error *err)
{
    double lat = (model == 0 ? 4 : 9) + 1.5 * batch;
    *out = (if_replica){.latency_ms = lat, .gpu_ms = lat, .compute_ms = 0.7 * lat,
                        .mem_ms = 0.3 * lat, .dram_mb = 20.0 * batch, .l2_mb = 2};
    return USHER_OK;
}

static int fixed_device(void *ctx, const char *gpu, if_device *out, usher_error *err)
{
    *out = (if_device){.bw_gbs = 900, .l2_mb = 6};
    snprintf(out->key, sizeof out->key, "%s", gpu);
    return USHER_OK;
}

/* two models (the second with a name no markup may carry raw) on three GPUs, the third idle */
#define EVIL "<b>&\"x'</b>"
static const char PLAN[] =
    "{\"schema_version\": 1, \"gpus\": [\n"
    " {\"type\": \"t4\", \"price_per_hour\": 0.5, \"replicas\": [\n"
    "  {\"model\": \"alpha\", \"batch\": 4, \"share\": 50},\n"
    "  {\"model\": \"<b>&\\\"x'</b>\", \"batch\": 8, \"share\": 50}]},\n"
    " {\"type\": \"t4\", \"price_per_hour\": 0.5, \"replicas\": [\n"
    "  {\"model\": \"<b>&\\\"x'</b>\", \"batch\": 8, \"share\": 100}]},\n"
    " {\"type\": \"t4\", \"price_per_hour\": 0.5, \"replicas\": []}]}\n";

static int run(double rate_scale, uint64_t interval_ns, sim_report **out)
{
    static const sim_model_spec models[2] = {{.name = "alpha", .rate = 150, .slo_ms = 40},
                                             {.name = EVIL, .rate = 250, .slo_ms = 60}};
    usher_error err = {0};
    pf_plan pl;
    int rc = pf_parse(PLAN, strlen(PLAN), "plan.json", &pl, &err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return rc;
    }
    sim_params p = sim_default_params();
    p.plan = &pl;
    p.plan_label = "plan<&>.json";
    p.workload_label = "workload.yaml";
    p.models = models;
    p.n_models = 2;
    p.profile = fixed_profile;
    p.device = fixed_device;
    p.duration_ns = 10 * SEC;
    p.seed = 7;
    p.rate_scale = rate_scale;
    p.interval_ns = interval_ns;
    rc = sim_run(&p, out, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    pf_free(&pl);
    return rc;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

TEST(xml_escape_of_hostile_text)
{
    us_buf b;
    us_buf_init(&b, 1 << 16);
    sim_xml_escape(&b, "a<b>&\"c'", 0);
    ASSERT_STR_EQ(us_buf_str(&b), "a&lt;b&gt;&amp;&quot;c&#39;");
    us_buf_reset(&b);
    /* invalid UTF-8, a control character, U+FFFF: replaced; valid multibyte kept */
    sim_xml_escape(&b, "\xff|\x01|\xef\xbf\xbf|\xc3\xa9|\t", 0);
    ASSERT_STR_EQ(us_buf_str(&b), "\xEF\xBF\xBD|\xEF\xBF\xBD|\xEF\xBF\xBD|\xc3\xa9|\t");
    us_buf_reset(&b);
    /* cut to 4 characters, the last an ellipsis; multibyte characters count once */
    sim_xml_escape(&b, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4);
    ASSERT_STR_EQ(us_buf_str(&b), "\xc3\xa9\xc3\xa9\xc3\xa9\xE2\x80\xA6");
    us_buf_reset(&b);
    sim_xml_escape(&b, "abcd", 4); /* exactly the limit: not cut */
    ASSERT_STR_EQ(us_buf_str(&b), "abcd");
    us_buf_free(&b);
}

TEST(gpu_series_adds_up_to_the_run)
{
    sim_report *r = NULL;
    CHECK_OK(run(1, SEC, &r));
    ASSERT_EQ_INT(r->n_intervals, 10);
    ASSERT(r->series_gpu_pct != NULL);
    for (uint32_t g = 0; g < r->n_gpus; g++) {
        double busy = 0; /* share-weighted busy seconds within the arrivals */
        for (uint32_t i = 0; i < r->n_intervals; i++) {
            double v = r->series_gpu_pct[(size_t)i * r->n_gpus + g];
            ASSERT(v >= 0 && v <= 100 + 1e-9);
            busy += v / 100; /* intervals of 1 s */
        }
        /* the run's figure also holds the busy time after the arrivals ended */
        double all = r->g[g].compute_pct / 100 * r->end_s;
        ASSERT(busy <= all + 1e-6);
        ASSERT(busy >= all - (r->end_s - r->duration_s) - 1e-6);
        if (g < 2)
            ASSERT(busy > 1); /* loaded */
        else
            ASSERT(busy == 0); /* no replica */
    }
    /* in the JSON, per GPU */
    us_buf b;
    us_buf_init(&b, 1 << 22);
    CHECK_OK(sim_report_json(r, false, &b));
    ASSERT_CONTAINS(us_buf_str(&b), "\"gpus\": [{\"id\": 0, \"compute_utilisation_pct\": [");
    us_buf_free(&b);
    /* the histogram stays with the report: its CDF covers every served request */
    for (uint32_t k = 0; k < r->n_models; k++)
        ASSERT_EQ_U64(r->m[k].hist.n, r->m[k].served);
    sim_report_free(r);
}

/* every <path class="series"> of the document has at least two points */
static void paths_have_points(const char *doc, size_t want)
{
    size_t n = 0;
    for (const char *p = strstr(doc, "class=\"series\""); p;
         p = strstr(p + 1, "class=\"series\"")) {
        const char *d = strstr(p, " d=\"");
        ASSERT(d != NULL);
        const char *end = strchr(d + 4, '"');
        size_t points = 0;
        for (const char *q = d + 4; q < end; q++)
            points += *q == 'M' || *q == 'L';
        if (points < 2)
            FAIL_("a series path with %zu points", points);
        n++;
    }
    ASSERT_EQ_U64(n, want);
}

TEST(plots_of_a_run)
{
    sim_report *r = NULL;
    CHECK_OK(run(1, SEC / 2, &r));
    us_buf b;
    us_buf_init(&b, 1 << 24);
    CHECK_OK(sim_svg_latency_cdf(&b, r));
    const char *s = us_buf_str(&b);
    ASSERT_CONTAINS(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"latency-cdf\"");
    paths_have_points(s, 2);
    ASSERT_EQ_U64(count(s, "class=\"mark\""), 2); /* each model's SLO */
    ASSERT_CONTAINS(s, "&lt;b&gt;&amp;&quot;x&#39;&lt;/b&gt;");
    ASSERT(strstr(s, EVIL) == NULL);
    ASSERT_CONTAINS(s, ">% of served requests at or below</text>");
    ASSERT_CONTAINS(s, "</svg>\n");

    us_buf_reset(&b);
    CHECK_OK(sim_svg_gpu_heatmap(&b, r));
    s = us_buf_str(&b);
    ASSERT_CONTAINS(s, "id=\"gpu-utilisation\"");
    /* 3 GPUs x 20 intervals, each with its tooltip; the idle GPU at viridis' 0 */
    ASSERT_EQ_U64(count(s, "</title></rect>"), 60);
    ASSERT_EQ_U64(count(s, "fill=\"#440154\"><title>gpu 2 (t4)"), 20);
    ASSERT_CONTAINS(s, ">gpu 0 t4</text>");
    ASSERT_CONTAINS(s, ">100%</text>");

    us_buf_reset(&b);
    CHECK_OK(sim_svg_goodput_time(&b, r));
    s = us_buf_str(&b);
    ASSERT_CONTAINS(s, "id=\"goodput-time\"");
    paths_have_points(s, 3); /* all models and each */
    ASSERT_CONTAINS(s, ">all models</text>");
    us_buf_free(&b);
    sim_report_free(r);
}

TEST(heat_map_averages_past_its_cells)
{
    /* 200 GPUs x 400 intervals: rows of 4 GPUs (50), columns of 3 intervals (134) */
    sim_report r;
    memset(&r, 0, sizeof r);
    r.n_gpus = 200;
    r.n_intervals = 400;
    r.interval_ns = SEC;
    r.duration_s = 400;
    r.g = us_calloc(r.n_gpus, sizeof *r.g);
    r.series_gpu_pct = us_calloc((size_t)r.n_gpus * r.n_intervals, sizeof *r.series_gpu_pct);
    ASSERT(r.g && r.series_gpu_pct);
    for (uint32_t i = 0; i < r.n_intervals; i++)
        for (uint32_t g = 0; g < r.n_gpus; g++) /* 0 and 100 alternating: every mean 50 */
            r.series_gpu_pct[(size_t)i * r.n_gpus + g] = (g + i) % 2 ? 100 : 0;
    us_buf b;
    us_buf_init(&b, 1 << 24);
    CHECK_OK(sim_svg_gpu_heatmap(&b, &r));
    const char *s = us_buf_str(&b);
    size_t cells = count(s, "<rect x=") - 1; /* the background */
    ASSERT_EQ_U64(cells, 50 * 134);
    ASSERT_CONTAINS(s, "; a row: the mean of 4 GPUs; a column: 3 intervals");
    /* the last column holds one interval; the others 3 of alternating 0 and 100 over 4
     * GPUs: 50% in every cell (viridis at 50: #21918c) */
    ASSERT_EQ_U64(count(s, "fill=\"#21918c\""), 50 * 134);
    ASSERT_CONTAINS(s, ">gpus 0-3</text>");
    us_buf_free(&b);
    us_free(r.g);
    us_free(r.series_gpu_pct);
}

TEST(axes_ticks_and_bad_plots)
{
    double x[3] = {3, 12, 40}, y[3] = {10, 55, 100};
    sim_xy_series s = {.label = "one", .x = x, .y = y, .n = 3};
    sim_xy_plot p = {.id = "t1", .title = "T", .x_label = "x", .y_label = "y", .series = &s,
                     .n_series = 1, .x_min = NAN, .x_max = NAN, .y_min = NAN, .y_max = NAN,
                     .x_log = true};
    us_buf b;
    us_buf_init(&b, 1 << 20);
    CHECK_OK(sim_svg_xy(&b, &p));
    const char *t = us_buf_str(&b);
    /* log x: 3..40 widened to 2..50, ticks at 2, 5, 10, 20, 50; linear y 0..100 by 20 */
    ASSERT_CONTAINS(t, ">2</text>");
    ASSERT_CONTAINS(t, ">5</text>");
    ASSERT_CONTAINS(t, ">10</text>");
    ASSERT_CONTAINS(t, ">50</text>");
    ASSERT(strstr(t, ">100</text>") != NULL && strstr(t, ">80</text>") != NULL);
    /* thousands as k, steps of 2.5 with their decimal */
    double big[2] = {0, 12500};
    s = (sim_xy_series){.label = "k", .x = big, .y = big, .n = 2};
    p.x_log = false;
    us_buf_reset(&b);
    CHECK_OK(sim_svg_xy(&b, &p));
    ASSERT_CONTAINS(us_buf_str(&b), ">12.5k</text>");
    ASSERT_CONTAINS(us_buf_str(&b), ">2.5k</text>");
    /* no points: an empty plot that says so (and a path renderers accept) */
    s.n = 0;
    us_buf_reset(&b);
    CHECK_OK(sim_svg_xy(&b, &p));
    ASSERT_CONTAINS(us_buf_str(&b), ">no data</text>");
    /* bad arguments */
    p.id = "two words";
    ASSERT_EQ_INT(sim_svg_xy(&b, &p), USHER_ERR_INVALID);
    p.id = "ok";
    p.title = NULL;
    ASSERT_EQ_INT(sim_svg_xy(&b, &p), USHER_ERR_INVALID);
    sim_report r;
    memset(&r, 0, sizeof r);
    ASSERT_EQ_INT(sim_svg_gpu_heatmap(&b, &r), USHER_ERR_INVALID); /* no series */
    ASSERT_EQ_INT(sim_svg_goodput_time(&b, &r), USHER_ERR_INVALID);
    ASSERT_EQ_INT(sim_svg_sweep(&b, NULL, 0, false), USHER_ERR_INVALID);
    /* the cap: a buffer too small reports LIMIT */
    us_buf small;
    us_buf_init(&small, 100);
    p.title = "T";
    ASSERT_EQ_INT(sim_svg_xy(&small, &p), USHER_ERR_LIMIT);
    us_buf_free(&small);
    us_buf_free(&b);
}

static int page(const sim_report *r, const sim_report *const *sweep, size_t n, us_buf *b)
{
    us_buf_init(b, 1 << 26);
    return sim_report_html(b, r, sweep, n);
}

TEST(page_self_contained_and_deterministic)
{
    sim_report *r = NULL, *lo = NULL, *hi = NULL;
    CHECK_OK(run(1, SEC, &r));
    CHECK_OK(run(0.5, SEC, &lo));
    CHECK_OK(run(3, SEC, &hi));
    const sim_report *sweep[3] = {hi, r, lo}; /* any order: plotted by offered load */
    us_buf a, b;
    CHECK_OK(page(r, sweep, 3, &a));
    const char *s = us_buf_str(&a);
    static const char *const ids[] = {"latency-cdf", "gpu-utilisation", "goodput-time",
                                      "sweep-goodput", "sweep-attainment"};
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\"",
                 ids[i]);
        ASSERT_CONTAINS(s, want);
    }
    ASSERT_EQ_U64(count(s, "<svg "), 5);
    ASSERT_EQ_U64(count(s, "</svg>"), 5);
    /* no script, nothing fetched: the only URL is the SVG namespace */
    ASSERT(strstr(s, "<script") == NULL);
    ASSERT(strstr(s, "src=") == NULL);
    ASSERT(strstr(s, "@import") == NULL);
    ASSERT_EQ_U64(count(s, "http"), count(s, "xmlns=\"http://www.w3.org/2000/svg\""));
    ASSERT(strstr(s, EVIL) == NULL);
    ASSERT_CONTAINS(s, "<td>&lt;b&gt;&amp;&quot;x&#39;&lt;/b&gt;</td>");
    ASSERT_CONTAINS(s, "plan <code>plan&lt;&amp;&gt;.json</code>");
    ASSERT_CONTAINS(s, "<section id=\"sweep\">");
    ASSERT_CONTAINS(s, "<tr><td>0.5</td><td>200</td>"); /* offered 400 x 0.5 */
    /* the sweep's x axis is the offered load, from 0: 200, 400, 1200 req/s */
    CHECK_OK(page(r, sweep, 3, &b));
    ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    us_buf_free(&b);
    /* without a series or a sweep: the note instead of those plots */
    sim_report *plain = NULL;
    CHECK_OK(run(1, 0, &plain));
    CHECK_OK(page(plain, NULL, 0, &b));
    ASSERT_EQ_U64(count(us_buf_str(&b), "<svg "), 1);
    ASSERT_CONTAINS(us_buf_str(&b), "run with <code>--interval S</code>");
    ASSERT(strstr(us_buf_str(&b), "id=\"sweep\"") == NULL);
    us_buf_free(&b);
    /* sweeps of other workloads are refused */
    sim_report other = *plain;
    other.n_models = 1;
    const sim_report *mixed[2] = {plain, &other};
    us_buf_init(&b, 1 << 20);
    ASSERT_EQ_INT(sim_svg_sweep(&b, mixed, 2, false), USHER_ERR_INVALID);
    us_buf_free(&b);
    us_buf_free(&a);
    sim_report_free(plain);
    sim_report_free(r);
    sim_report_free(lo);
    sim_report_free(hi);
}

TEST(page_allocation_failures)
{
    sim_report *r = NULL;
    CHECK_OK(run(1, SEC, &r));
    const sim_report *sweep[1] = {r};
    size_t live = us_alloc_live_bytes();
    int rc = USHER_ERR_NOMEM;
    uint64_t nth = 1;
    for (; rc == USHER_ERR_NOMEM && nth < 10000; nth++) {
        us_buf b;
        us_buf_init(&b, 1 << 26);
        us_alloc_fail_nth(nth);
        rc = sim_report_html(&b, r, sweep, 1);
        us_alloc_fail_nth(0);
        us_buf_free(&b);
        ASSERT_EQ_U64(us_alloc_live_bytes(), live);
    }
    CHECK_OK(rc);
    ASSERT(nth > 2); /* some allocation did fail on the way */
    sim_report_free(r);
}

TEST_MAIN(TEST_ENTRY(xml_escape_of_hostile_text), TEST_ENTRY(gpu_series_adds_up_to_the_run),
          TEST_ENTRY(plots_of_a_run), TEST_ENTRY(heat_map_averages_past_its_cells),
          TEST_ENTRY(axes_ticks_and_bad_plots), TEST_ENTRY(page_self_contained_and_deterministic),
          TEST_ENTRY(page_allocation_failures))
