/*
 * test_yaml.c - layer 1: the bounded YAML reader (src/core/yaml.c).
 *
 * The realistic workload and cluster files with positions and typed fields,
 * every refusal of the accepted subset (duplicate keys, anchors, aliases,
 * tags, a second document, complex keys, NUL bytes), every limit at and one
 * past its edge, libyaml syntax errors with their line, the allow-list
 * message, failing each allocation of a medium parse in turn, and the fuzz
 * body over fuzz/corpus-yaml plus 1,000 deterministic mutants of it.
 */
#include <dirent.h>
#include <stdbool.h>

#include "core/err.h"
#include "core/yaml.h"
#include "fuzz_yaml.h"
#include "test.h"

/* parse text (length given) with lim; the status must be code and the message hold needle */
#define ASSERT_REJECTS_N(text, len, lim, code, needle)                                             \
    do {                                                                                           \
        us_yaml_doc *d_ = NULL;                                                                    \
        usher_error e_;                                                                            \
        memset(&e_, 0, sizeof e_);                                                                 \
        int rc_ = us_yaml_parse((text), (len), "t.yaml", (lim), &d_, &e_);                         \
        if (rc_ != (code)) {                                                                       \
            us_yaml_free(d_);                                                                      \
            FAIL_("status %d (%s), expected %d, for: %.60s", rc_, e_.msg, (int)(code), (text));    \
        }                                                                                          \
        ASSERT(d_ == NULL);                                                                        \
        ASSERT_CONTAINS(e_.msg, (needle));                                                         \
    } while (0)
#define ASSERT_REJECTS(text, lim, code, needle)                                                    \
    ASSERT_REJECTS_N(text, strlen(text), lim, code, needle)

/* parse text into d (which the test frees), asserting success */
#define PARSE_OK(text, lim, d)                                                                     \
    do {                                                                                           \
        usher_error e_;                                                                            \
        int rc_ = us_yaml_parse((text), strlen(text), "t.yaml", (lim), &(d), &e_);                 \
        if (rc_ != USHER_OK)                                                                       \
            FAIL_("parse failed (%d): %s", rc_, e_.msg);                                           \
    } while (0)

static const char workload[] = "# workload.yaml\n"
                               "models:\n"
                               "  - name: resnet50\n"
                               "    model: models/zoo/resnet50.onnx\n"
                               "    rate: 1200          # requests per second\n"
                               "    slo_ms: 50\n"
                               "    priority: 2\n"
                               "  - name: bert\n"
                               "    model: models/zoo/bert-base.onnx\n"
                               "    rate: 300.5\n"
                               "    slo_ms: 100\n";

static const char cluster[] = "# cluster.yaml\n"
                              "objective: min-cost\n"
                              "gpus:\n"
                              "  - type: a100-80gb\n"
                              "    count: 8\n"
                              "    price_per_hour: 3.4\n"
                              "    node: node-1\n"
                              "  - type: v100-16gb\n"
                              "    max: 64\n";

TEST(workload_tree_and_positions)
{
    usher_error err;
    us_yaml_doc *d = NULL;
    ASSERT_OK(us_yaml_parse(workload, strlen(workload), "workload.yaml", NULL, &d, &err));
    ASSERT_STR_EQ(us_yaml_label(d), "workload.yaml");
    const us_yaml_node *root = us_yaml_root(d);
    ASSERT_EQ_INT(us_yaml_node_kind(root), US_YAML_MAP);
    ASSERT_EQ_U64(us_yaml_len(root), 1);
    ASSERT_STR_EQ(us_yaml_key_at(root, 0), "models");
    ASSERT_EQ_U64(us_yaml_line(us_yaml_key_node_at(root, 0)), 2);
    ASSERT_EQ_U64(us_yaml_col(us_yaml_key_node_at(root, 0)), 1);
    const us_yaml_node *models = us_yaml_get(root, "models");
    ASSERT(models == us_yaml_value_at(root, 0));
    ASSERT_EQ_INT(us_yaml_node_kind(models), US_YAML_SEQ);
    ASSERT_EQ_U64(us_yaml_len(models), 2);
    ASSERT_EQ_U64(us_yaml_line(models), 3);
    ASSERT_EQ_U64(us_yaml_col(models), 3); /* the first '-' */
    const us_yaml_node *m0 = us_yaml_item(models, 0), *m1 = us_yaml_item(models, 1);
    ASSERT(us_yaml_item(models, 2) == NULL);
    ASSERT_EQ_INT(us_yaml_node_kind(m0), US_YAML_MAP);
    ASSERT_EQ_U64(us_yaml_len(m0), 5);
    ASSERT_EQ_U64(us_yaml_line(m0), 3);
    ASSERT_EQ_U64(us_yaml_col(m0), 5);
    ASSERT_STR_EQ(us_yaml_key_at(m0, 4), "priority");
    const us_yaml_node *rate = us_yaml_get(m0, "rate");
    ASSERT_STR_EQ(us_yaml_str(rate), "1200"); /* the comment is not part of it */
    ASSERT_EQ_U64(us_yaml_line(rate), 5);
    ASSERT_EQ_U64(us_yaml_col(rate), 11);
    ASSERT_EQ_U64(us_yaml_line(m1), 8);
    ASSERT_STR_EQ(us_yaml_str(us_yaml_get(m1, "model")), "models/zoo/bert-base.onnx");
    ASSERT(us_yaml_get(m1, "priority") == NULL);

    const char *name = NULL;
    int64_t slo = 0, prio = 0;
    double r = 0;
    ASSERT_OK(us_yaml_get_str(d, m0, "name", "models[0].name", &name, NULL, &err));
    ASSERT_STR_EQ(name, "resnet50");
    ASSERT_OK(us_yaml_get_f64(d, m0, "rate", "models[0].rate", 0, 1e6, &r, 0, true, &err));
    ASSERT(r == 1200.0);
    ASSERT_OK(us_yaml_get_f64(d, m1, "rate", "models[1].rate", 0, 1e6, &r, 0, true, &err));
    ASSERT(r == 300.5);
    ASSERT_OK(us_yaml_get_i64(d, m1, "slo_ms", "models[1].slo_ms", 1, 60000, &slo, 0, true, &err));
    ASSERT_EQ_INT(slo, 100);
    ASSERT_OK(
        us_yaml_get_i64(d, m1, "priority", "models[1].priority", 0, 9, &prio, 1, false, &err));
    ASSERT_EQ_INT(prio, 1); /* absent: the default */
    int64_t ir = 0;
    ASSERT_EQ_INT(us_yaml_get_i64(d, m1, "rate", "models[1].rate", 0, 100000, &ir, 0, true, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg,
                  "workload.yaml:10: field 'models[1].rate': expected an integer, found '300.5'");
    static const char *const model_keys[] = {"name", "model", "rate", "slo_ms", "priority", NULL};
    ASSERT_OK(us_yaml_check_keys(d, m0, "models[0]", model_keys, &err));
    ASSERT_OK(us_yaml_check_keys(d, m1, "models[1]", model_keys, &err));
    us_yaml_free(d);
}

TEST(cluster_fields_and_allow_list)
{
    usher_error err;
    us_yaml_doc *d = NULL;
    ASSERT_OK(us_yaml_parse(cluster, strlen(cluster), "cluster.yaml", NULL, &d, &err));
    const us_yaml_node *root = us_yaml_root(d), *gpus = NULL;
    static const char *const top[] = {"objective", "gpus", NULL};
    ASSERT_OK(us_yaml_check_keys(d, root, NULL, top, &err));
    const char *obj = NULL;
    ASSERT_OK(us_yaml_get_str(d, root, "objective", NULL, &obj, "min-cost", &err));
    ASSERT_STR_EQ(obj, "min-cost");
    ASSERT_OK(us_yaml_get_node(d, root, "gpus", NULL, US_YAML_SEQ, true, &gpus, &err));
    ASSERT_EQ_U64(us_yaml_len(gpus), 2);
    const us_yaml_node *g0 = us_yaml_item(gpus, 0), *g1 = us_yaml_item(gpus, 1);
    int64_t count = 0, max = 0;
    double price = 0;
    ASSERT_OK(us_yaml_get_i64(d, g0, "count", "gpus[0].count", 0, 4096, &count, 0, false, &err));
    ASSERT_EQ_INT(count, 8);
    ASSERT_OK(us_yaml_get_f64(d, g0, "price_per_hour", "gpus[0].price_per_hour", 0, 1000, &price, 0,
                              false, &err));
    ASSERT(price == 3.4);
    ASSERT_OK(us_yaml_get_i64(d, g1, "max", "gpus[1].max", 0, 4096, &max, 0, false, &err));
    ASSERT_EQ_INT(max, 64);
    ASSERT_OK(us_yaml_get_i64(d, g1, "count", "gpus[1].count", 0, 4096, &count, -1, false, &err));
    ASSERT_EQ_INT(count, -1);
    static const char *const gpu_keys[] = {"type", "count", "price_per_hour", "max", NULL};
    ASSERT_OK(us_yaml_check_keys(d, g1, "gpus[1]", gpu_keys, &err));
    ASSERT_EQ_INT(us_yaml_check_keys(d, g0, "gpus[0]", gpu_keys, &err), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "cluster.yaml:7: gpus[0]: unknown field 'node' (expected one of: type, "
                           "count, price_per_hour, max)");
    /* required map missing, wrong kind */
    const us_yaml_node *n = NULL;
    ASSERT_EQ_INT(us_yaml_get_node(d, root, "models", NULL, US_YAML_SEQ, true, &n, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "cluster.yaml:2: field 'models': missing (required)");
    ASSERT_EQ_INT(us_yaml_get_node(d, root, "objective", NULL, US_YAML_MAP, true, &n, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "cluster.yaml:2: field 'objective': expected a map, found a scalar");
    ASSERT_OK(us_yaml_get_node(d, root, "absent", NULL, US_YAML_MAP, false, &n, &err));
    ASSERT(n == NULL);
    us_yaml_free(d);
}

TEST(allow_list_messages)
{
    usher_error err;
    us_yaml_doc *d = NULL;
    const char *text = "name: x\nslo: 5\n";
    PARSE_OK(text, NULL, d);
    static const char *const keys[] = {"name", "model", "rate", "slo_ms", NULL};
    ASSERT_EQ_INT(us_yaml_check_keys(d, us_yaml_root(d), "models[3]", keys, &err), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:2: models[3]: unknown field 'slo' (did you mean 'slo_ms'? "
                           "expected one of: name, model, rate, slo_ms)");
    us_yaml_free(d);
    d = NULL;
    /* a typo by one letter; merge keys are plain keys, rejected like any other */
    PARSE_OK("nmae: x\n<<: {rate: 1}\n", NULL, d);
    ASSERT_EQ_INT(us_yaml_check_keys(d, us_yaml_root(d), "", keys, &err), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:1: unknown field 'nmae' (did you mean 'name'? expected one of: "
                           "name, model, rate, slo_ms)");
    static const char *const with_name[] = {"nmae", NULL};
    ASSERT_EQ_INT(us_yaml_check_keys(d, us_yaml_root(d), NULL, with_name, &err), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:2: unknown field '<<' (expected one of: nmae)");
    ASSERT_EQ_INT(us_yaml_check_keys(d, us_yaml_get(us_yaml_root(d), "nmae"), "nmae", keys, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:1: nmae: expected a map, found a scalar");
    ASSERT_OK(us_yaml_check_keys(d, NULL, "x", keys, &err));
    us_yaml_free(d);
    d = NULL;
    /* hostile key text is escaped in the message */
    PARSE_OK("\"\\e[31mred\\n\": 1\n", NULL, d);
    ASSERT_EQ_INT(us_yaml_check_keys(d, us_yaml_root(d), NULL, keys, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "unknown field '\\x1b[31mred\\x0a'");
    us_yaml_free(d);
}

TEST(typed_getters_are_strict)
{
    usher_error err;
    us_yaml_doc *d = NULL;
    const char *text = "i: 42\n"
                       "neg: -7\n"
                       "negzero: -0\n"
                       "lead: 010\n"
                       "hex: 0x10\n"
                       "plus: +5\n"
                       "max: 9223372036854775807\n"
                       "over: 9223372036854775808\n"
                       "min: -9223372036854775808\n"
                       "under: -9223372036854775809\n"
                       "huge: 123456789012345678901234567890\n"
                       "q: \"12\"\n"
                       "empty:\n"
                       "tilde: ~\n"
                       "nul: null\n"
                       "qnull: \"null\"\n"
                       "qempty: ''\n"
                       "map: {a: 1}\n"
                       "seq: [1]\n"
                       "f_exp: 2.5e-3\n"
                       "f_dot: .5\n"
                       "f_pt: 5.\n"
                       "f_plus: +1.5E+2\n"
                       "f_inf: .inf\n"
                       "f_nan: .nan\n"
                       "f_word: nan\n"
                       "f_huge: 1e999\n"
                       "f_tiny: 1e-400\n"
                       "f_trail: 1.5x\n"
                       "f_e: 1e\n"
                       "f_hex: 0x1p3\n"
                       "f_space: 1 5\n"
                       "s: hello world\n";
    PARSE_OK(text, NULL, d);
    const us_yaml_node *r = us_yaml_root(d);
    int64_t v = 0;
    ASSERT_OK(us_yaml_get_i64(d, r, "i", NULL, 0, 100, &v, 0, true, &err));
    ASSERT_EQ_INT(v, 42);
    ASSERT_OK(us_yaml_get_i64(d, r, "neg", NULL, -10, 0, &v, 0, true, &err));
    ASSERT_EQ_INT(v, -7);
    ASSERT_OK(us_yaml_get_i64(d, r, "negzero", NULL, 0, 0, &v, 1, true, &err));
    ASSERT_EQ_INT(v, 0);
    ASSERT_OK(us_yaml_get_i64(d, r, "max", NULL, INT64_MIN, INT64_MAX, &v, 0, true, &err));
    ASSERT(v == INT64_MAX);
    ASSERT_OK(us_yaml_get_i64(d, r, "min", NULL, INT64_MIN, INT64_MAX, &v, 0, true, &err));
    ASSERT(v == INT64_MIN);
    /* range edges: at lo and hi pass, one past fails with both bounds named */
    ASSERT_OK(us_yaml_get_i64(d, r, "i", NULL, 42, 42, &v, 0, true, &err));
    ASSERT_EQ_INT(us_yaml_get_i64(d, r, "i", "limits.i", 0, 41, &v, 0, true, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:1: field 'limits.i': 42 is out of range [0, 41]");
    ASSERT_EQ_INT(us_yaml_get_i64(d, r, "i", NULL, 43, 50, &v, 0, true, &err), USHER_ERR_PARSE);
    v = 99; /* errors leave *out alone */
    struct {
        const char *key, *needle;
    } bad_int[] = {
        {"lead", "t.yaml:4: field 'lead': '010': leading zeros are not allowed"},
        {"hex", "t.yaml:5: field 'hex': expected an integer, found '0x10'"},
        {"plus", "expected an integer, found '+5'"},
        {"over", "t.yaml:8: field 'over': '9223372036854775808' does not fit in 64 bits"},
        {"under", "'-9223372036854775809' does not fit in 64 bits"},
        {"huge", "does not fit in 64 bits"},
        {"q", "t.yaml:12: field 'q': expected an integer, found the quoted string \"12\""},
        {"map", "t.yaml:18: field 'map': expected an integer, found a map"},
        {"seq", "expected an integer, found a sequence"},
        {"f_exp", "expected an integer, found '2.5e-3'"},
        {"s", "expected an integer, found 'hello world'"},
        {"qempty", "found the quoted string \"\""},
    };
    for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++) {
        ASSERT_EQ_INT(
            us_yaml_get_i64(d, r, bad_int[i].key, NULL, INT64_MIN, INT64_MAX, &v, 0, false, &err),
            USHER_ERR_PARSE);
        ASSERT_CONTAINS(err.msg, bad_int[i].needle);
    }
    ASSERT_EQ_INT(v, 99);
    /* null values are missing: the default, or an error when required */
    const char *nulls[] = {"empty", "tilde", "nul", "absent"};
    for (size_t i = 0; i < 4; i++) {
        ASSERT_OK(us_yaml_get_i64(d, r, nulls[i], NULL, 0, 10, &v, 5, false, &err));
        ASSERT_EQ_INT(v, 5);
        ASSERT_EQ_INT(us_yaml_get_i64(d, r, nulls[i], NULL, 0, 10, &v, 5, true, &err),
                      USHER_ERR_PARSE);
        ASSERT_CONTAINS(err.msg, "t.yaml:1: field '");
        ASSERT_CONTAINS(err.msg, "': missing (required)");
    }
    ASSERT(us_yaml_is_null(us_yaml_get(r, "empty")) && us_yaml_is_null(us_yaml_get(r, "tilde")));
    ASSERT(!us_yaml_is_null(us_yaml_get(r, "qnull")) && !us_yaml_is_null(us_yaml_get(r, "qempty")));
    ASSERT(!us_yaml_is_plain(us_yaml_get(r, "q")) && us_yaml_is_plain(us_yaml_get(r, "i")));

    double f = 0;
    ASSERT_OK(us_yaml_get_f64(d, r, "f_exp", NULL, 0, 1, &f, 0, true, &err));
    ASSERT(f == 2.5e-3);
    ASSERT_OK(us_yaml_get_f64(d, r, "f_dot", NULL, 0, 1, &f, 0, true, &err));
    ASSERT(f == 0.5);
    ASSERT_OK(us_yaml_get_f64(d, r, "f_pt", NULL, 0, 10, &f, 0, true, &err));
    ASSERT(f == 5.0);
    ASSERT_OK(us_yaml_get_f64(d, r, "f_plus", NULL, 0, 1000, &f, 0, true, &err));
    ASSERT(f == 150.0);
    ASSERT_OK(us_yaml_get_f64(d, r, "i", NULL, 0, 100, &f, 0, true, &err));
    ASSERT(f == 42.0);
    ASSERT_OK(us_yaml_get_f64(d, r, "f_tiny", NULL, 0, 1, &f, 0, true, &err)); /* underflow: 0 */
    ASSERT(f >= 0 && f < 1e-300);
    ASSERT_OK(us_yaml_get_f64(d, r, "nul", NULL, 0, 1, &f, 0.25, false, &err));
    ASSERT(f == 0.25);
    f = 7;
    struct {
        const char *key, *needle;
    } bad_f[] = {
        {"f_inf", "t.yaml:24: field 'f_inf': expected a number, found '.inf'"},
        {"f_nan", "expected a number, found '.nan'"},
        {"f_word", "expected a number, found 'nan'"},
        {"f_huge", "t.yaml:27: field 'f_huge': '1e999' is not a finite number"},
        {"f_trail", "expected a number, found '1.5x'"},
        {"f_e", "expected a number, found '1e'"},
        {"f_hex", "expected a number, found '0x1p3'"},
        {"f_space", "expected a number, found '1 5'"},
        {"q", "expected a number, found the quoted string \"12\""},
        {"seq", "expected a number, found a sequence"},
        {"i", "t.yaml:1: field 'i': 42 is out of range [0, 1]"},
    };
    for (size_t i = 0; i < sizeof bad_f / sizeof bad_f[0]; i++) {
        ASSERT_EQ_INT(us_yaml_get_f64(d, r, bad_f[i].key, NULL, 0, 1, &f, 0, false, &err),
                      USHER_ERR_PARSE);
        ASSERT_CONTAINS(err.msg, bad_f[i].needle);
    }
    ASSERT(f == 7);

    const char *s = NULL;
    ASSERT_OK(us_yaml_get_str(d, r, "s", NULL, &s, NULL, &err));
    ASSERT_STR_EQ(s, "hello world");
    ASSERT_OK(us_yaml_get_str(d, r, "i", NULL, &s, NULL, &err)); /* numbers are text too */
    ASSERT_STR_EQ(s, "42");
    ASSERT_OK(us_yaml_get_str(d, r, "qempty", NULL, &s, "def", &err));
    ASSERT_STR_EQ(s, "");
    ASSERT_OK(us_yaml_get_str(d, r, "tilde", NULL, &s, "def", &err));
    ASSERT_STR_EQ(s, "def");
    ASSERT_OK(us_yaml_get_str(d, r, "qnull", NULL, &s, "def", &err));
    ASSERT_STR_EQ(s, "null");
    ASSERT_EQ_INT(us_yaml_get_str(d, r, "map", "x.map", &s, NULL, &err), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:18: field 'x.map': expected a string, found a map");
    /* a "map" that is not a map; a NULL map is an empty one */
    ASSERT_EQ_INT(us_yaml_get_str(d, us_yaml_get(r, "seq"), "k", "seq.k", &s, NULL, &err),
                  USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml:19: field 'seq.k': expected a map holding it, found a sequence");
    ASSERT_OK(us_yaml_get_str(d, NULL, "k", NULL, &s, "dflt", &err));
    ASSERT_STR_EQ(s, "dflt");
    ASSERT_EQ_INT(us_yaml_get_f64(d, NULL, "k", "top.k", 0, 1, &f, 0, true, &err), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml: field 'top.k': missing (required)");
    us_yaml_free(d);
}

TEST(error_helper_and_null_accessors)
{
    usher_error err;
    us_yaml_doc *d = NULL;
    PARSE_OK("a:\n  b: [x, y]\n", NULL, d);
    const us_yaml_node *b = us_yaml_get(us_yaml_get(us_yaml_root(d), "a"), "b");
    ASSERT_EQ_INT(us_yaml_error(d, b, &err, USHER_ERR_INVALID, "%s: %d items", "a.b", 2),
                  USHER_ERR_INVALID);
    ASSERT_STR_EQ(err.msg, "t.yaml:2: a.b: 2 items");
    ASSERT_EQ_INT(err.code, USHER_ERR_INVALID);
    ASSERT_EQ_INT(us_yaml_error(d, NULL, &err, USHER_ERR_PARSE, "whole file"), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "t.yaml: whole file");
    ASSERT_EQ_INT(us_yaml_error(d, b, NULL, USHER_ERR_PARSE, "dropped"), USHER_ERR_PARSE);
    ASSERT_EQ_U64(us_yaml_col(us_yaml_item(b, 1)), 10);
    /* absent nodes answer as absent, never as collections */
    ASSERT_EQ_INT(us_yaml_node_kind(NULL), US_YAML_SCALAR);
    ASSERT(us_yaml_str(NULL) == NULL && !us_yaml_is_null(NULL) && !us_yaml_is_plain(NULL));
    ASSERT(us_yaml_len(NULL) == 0 && us_yaml_line(NULL) == 0 && us_yaml_col(NULL) == 0);
    ASSERT(us_yaml_get(NULL, "a") == NULL && us_yaml_item(NULL, 0) == NULL);
    ASSERT(us_yaml_key_at(NULL, 0) == NULL && us_yaml_value_at(NULL, 0) == NULL);
    ASSERT(us_yaml_root(NULL) == NULL);
    ASSERT(us_yaml_str(b) == NULL && us_yaml_get(b, "x") == NULL && us_yaml_key_at(b, 0) == NULL);
    ASSERT_STR_EQ(us_yaml_kind_name(US_YAML_SEQ), "sequence");
    us_yaml_free(d);
    us_yaml_free(NULL);
}

TEST(duplicate_and_complex_keys_refused)
{
    ASSERT_REJECTS("name: a\nrate: 1\nname: b\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:3: duplicate key 'name' (first at line 1)");
    ASSERT_REJECTS("{a: 1, b: 2, a: 3}", NULL, USHER_ERR_PARSE, "t.yaml:1: duplicate key 'a'");
    ASSERT_REJECTS("x:\n  k: 1\n  'k': 2\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:3: duplicate key 'k' (first at line 2)");
    ASSERT_REJECTS("? [a, b]\n: c\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:1: a map key must be a scalar, not a sequence");
    ASSERT_REJECTS("{a: 1}: x\n", NULL, USHER_ERR_PARSE, "a map key must be a scalar, not a map");
    /* the same key in different maps is fine */
    us_yaml_doc *d = NULL;
    PARSE_OK("a: {k: 1}\nb: {k: 2}\nk: 3\n", NULL, d);
    us_yaml_free(d);
    /* a large map takes the hashed path: 200 keys, then one repeated */
    char big[8192];
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "key%d: %d\n", i, i);
    d = NULL;
    PARSE_OK(big, NULL, d);
    ASSERT_EQ_U64(us_yaml_len(us_yaml_root(d)), 200);
    ASSERT_STR_EQ(us_yaml_str(us_yaml_get(us_yaml_root(d), "key199")), "199");
    us_yaml_free(d);
    snprintf(big + o, sizeof big - o, "key150: again\n");
    ASSERT_REJECTS(big, NULL, USHER_ERR_PARSE,
                   "t.yaml:201: duplicate key 'key150' (first at line 151)");
    /* the 17th key duplicating the first: the switch from scan to hash keeps every key */
    o = 0;
    for (int i = 0; i < 16; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "k%d: 1\n", i);
    snprintf(big + o, sizeof big - o, "k0: 2\n");
    ASSERT_REJECTS(big, NULL, USHER_ERR_PARSE, "t.yaml:17: duplicate key 'k0' (first at line 1)");
}

TEST(anchors_aliases_and_tags_refused)
{
    ASSERT_REJECTS("a: &x 1\nb: 2\n", NULL, USHER_ERR_UNSUPPORTED,
                   "t.yaml:1: anchor '&x' is not supported (anchors and aliases are refused)");
    ASSERT_REJECTS("a: 1\nb: *x\n", NULL, USHER_ERR_UNSUPPORTED,
                   "t.yaml:2: alias '*x' is not supported");
    ASSERT_REJECTS("base: &b {rate: 1}\nm:\n  <<: *b\n", NULL, USHER_ERR_UNSUPPORTED,
                   "anchor '&b'");
    ASSERT_REJECTS("- &s [1, 2]\n", NULL, USHER_ERR_UNSUPPORTED, "t.yaml:1: anchor '&s'");
    /* billion laughs: refused at the first anchor, long before any expansion */
    ASSERT_REJECTS("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n",
                   NULL, USHER_ERR_UNSUPPORTED, "t.yaml:1: anchor '&a'");
    ASSERT_REJECTS("a: !!str 12\n", NULL, USHER_ERR_UNSUPPORTED,
                   "t.yaml:1: tag 'tag:yaml.org,2002:str' is not supported (tags are refused)");
    ASSERT_REJECTS("a: !local x\n", NULL, USHER_ERR_UNSUPPORTED, "tag '!local'");
    ASSERT_REJECTS("a: ! x\n", NULL, USHER_ERR_UNSUPPORTED, "tag '!'");
    ASSERT_REJECTS("a: !!map {b: 1}\n", NULL, USHER_ERR_UNSUPPORTED, "tag 'tag:yaml.org,2002:map'");
    ASSERT_REJECTS("--- !!seq\n- 1\n", NULL, USHER_ERR_UNSUPPORTED, "t.yaml:1: tag");
    ASSERT_REJECTS("%TAG !e! tag:example.com,2000:\n---\na: 1\n", NULL, USHER_ERR_UNSUPPORTED,
                   "%TAG directives are not supported");
    /* a %YAML directive is harmless */
    us_yaml_doc *d = NULL;
    PARSE_OK("%YAML 1.1\n---\na: 1\n", NULL, d);
    us_yaml_free(d);
}

TEST(one_document_per_file)
{
    ASSERT_REJECTS("a: 1\n---\nb: 2\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:2: a second document: a file holds one YAML document");
    ASSERT_REJECTS("---\na: 1\n...\n---\n", NULL, USHER_ERR_PARSE, "t.yaml:4: a second document");
    /* content after "..." without "---" is not even a document to libyaml */
    ASSERT_REJECTS("a: 1\n...\nb: 2\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:3:1: did not find expected <document start>");
    us_yaml_doc *d = NULL;
    PARSE_OK("---\na: 1\n...\n# trailing comment\n", NULL, d);
    ASSERT_STR_EQ(us_yaml_str(us_yaml_get(us_yaml_root(d), "a")), "1");
    us_yaml_free(d);
}

TEST(empty_documents_have_no_root)
{
    usher_error err;
    const char *empties[] = {"",      "# just a comment\n", "\n\n   \n",
                             "---\n", "--- # c\n...\n",     "\xef\xbb\xbf"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        us_yaml_doc *d = NULL;
        ASSERT_OK(us_yaml_parse(empties[i], strlen(empties[i]), "e.yaml", NULL, &d, &err));
        if (us_yaml_root(d) != NULL)
            FAIL_("'%s' has a root", empties[i]);
        us_yaml_free(d);
    }
    us_yaml_doc *d = NULL;
    ASSERT_OK(us_yaml_parse(NULL, 0, NULL, NULL, &d, &err));
    ASSERT(us_yaml_root(d) == NULL);
    ASSERT_STR_EQ(us_yaml_label(d), "<yaml>");
    us_yaml_free(d);
    /* an explicit null, an empty quoted string and a bare scalar are documents */
    d = NULL;
    PARSE_OK("--- ~\n", NULL, d);
    ASSERT(us_yaml_is_null(us_yaml_root(d)));
    us_yaml_free(d);
    d = NULL;
    PARSE_OK("''", NULL, d);
    ASSERT_STR_EQ(us_yaml_str(us_yaml_root(d)), "");
    us_yaml_free(d);
    d = NULL;
    PARSE_OK("just text\n", NULL, d);
    ASSERT_STR_EQ(us_yaml_str(us_yaml_root(d)), "just text");
    us_yaml_free(d);
}

TEST(malformed_yaml_names_line)
{
    ASSERT_REJECTS("name: \"unterminated\nrate: 1\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:3:1: found unexpected end of stream (while scanning a quoted scalar at "
                   "line 1, column 7)");
    ASSERT_REJECTS("a:\n  b: 1\n c: 2\n", NULL, USHER_ERR_PARSE, "t.yaml:3:2: ");
    ASSERT_REJECTS("models:\n\t- name: x\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:2:1: found character that cannot start any token");
    ASSERT_REJECTS("a: b: c\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:1:5: mapping values are not allowed in this context");
    ASSERT_REJECTS("a: [1, 2\nb: 3\n", NULL, USHER_ERR_PARSE, "t.yaml:2:");
    ASSERT_REJECTS("- a\nb: 1\n", NULL, USHER_ERR_PARSE, "t.yaml:2:1: ");
    ASSERT_REJECTS("a: 'x' y\n", NULL, USHER_ERR_PARSE, "t.yaml:1:8: ");
    ASSERT_REJECTS("a: \"\\q\"\n", NULL, USHER_ERR_PARSE, "found unknown escape character");
    /* reader errors: invalid UTF-8 and control characters, located by line */
    ASSERT_REJECTS("a: 1\nb: \xff\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:2:4: invalid leading UTF-8 octet");
    ASSERT_REJECTS("a: 1\n\nb: x\x01y\n", NULL, USHER_ERR_PARSE,
                   "t.yaml:3:5: control characters are not allowed");
    ASSERT_REJECTS("\xff\xfe"
                   "a\0:\0 \0"
                   "1\0",
                   NULL, USHER_ERR_PARSE, "t.yaml:1:1: "); /* UTF-16 */
    /* a NUL byte, raw or escaped, never reaches a C string */
    ASSERT_REJECTS_N("a: x\0y\n", 7, NULL, USHER_ERR_PARSE, "t.yaml:1:");
    ASSERT_REJECTS("k: \"a\\0b\"\n", NULL, USHER_ERR_PARSE, "t.yaml:1: NUL byte in a scalar");
    /* BOM and escapes are fine */
    us_yaml_doc *d = NULL;
    PARSE_OK("\xef\xbb\xbfname: bom\nesc: \"t\\there \\u00e9 \\x41\"\n", NULL, d);
    const us_yaml_node *r = us_yaml_root(d);
    ASSERT_STR_EQ(us_yaml_str(us_yaml_get(r, "name")), "bom");
    ASSERT_STR_EQ(us_yaml_str(us_yaml_get(r, "esc")), "t\there \xc3\xa9 A");
    ASSERT_EQ_U64(us_yaml_line(us_yaml_get(r, "esc")), 2);
    us_yaml_free(d);
}

/* "[[[...]]]" nested n deep, into buf */
static const char *nested_seq(char *buf, size_t cap, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++)
        buf[o++] = '[';
    for (size_t i = 0; i < n && o + 2 < cap; i++)
        buf[o++] = ']';
    buf[o] = '\0';
    return buf;
}

/* block maps nested n deep: "k0:\n k1:\n  k2: v" */
static const char *nested_map(char *buf, size_t cap, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t s = 0; s < i && o + 1 < cap; s++)
            buf[o++] = ' ';
        o += (size_t)snprintf(buf + o, cap - o, i + 1 < n ? "k%zu:\n" : "k%zu: v\n", i);
    }
    return buf;
}

TEST(limits_at_and_past_the_edge)
{
    us_yaml_limits lim = us_yaml_default_limits();
    ASSERT_EQ_U64(lim.max_bytes, 1u << 20);
    ASSERT_EQ_U64(lim.max_depth, 32);
    ASSERT_EQ_U64(lim.max_nodes, 100000);
    ASSERT_EQ_U64(lim.max_scalar, 4096);
    us_yaml_doc *d = NULL;
    char buf[8192];

    /* depth (defaults): 32 nested collections pass, 33 fail, flow and block alike */
    PARSE_OK(nested_seq(buf, sizeof buf, 32), NULL, d);
    us_yaml_free(d);
    d = NULL;
    ASSERT_REJECTS(nested_seq(buf, sizeof buf, 33), NULL, USHER_ERR_LIMIT,
                   "t.yaml:1: nesting deeper than 32 levels");
    PARSE_OK(nested_map(buf, sizeof buf, 32), NULL, d);
    us_yaml_free(d);
    d = NULL;
    ASSERT_REJECTS(nested_map(buf, sizeof buf, 33), NULL, USHER_ERR_LIMIT,
                   "t.yaml:33: nesting deeper than 32 levels");
    ASSERT_REJECTS(nested_seq(buf, sizeof buf, 4000), NULL, USHER_ERR_LIMIT, "nesting deeper");
    us_yaml_limits tight = us_yaml_default_limits();
    tight.max_depth = 1;
    PARSE_OK("[1, 2]", &tight, d);
    us_yaml_free(d);
    d = NULL;
    ASSERT_REJECTS("[1, [2]]", &tight, USHER_ERR_LIMIT, "nesting deeper than 1 levels");

    /* scalar length, measured after unescaping */
    char *big = malloc(lim.max_bytes + 16);
    ASSERT(big);
    memset(big, 'x', 4096);
    memcpy(big + 4096, "\n", 2);
    PARSE_OK(big, NULL, d);
    ASSERT_EQ_U64(us_yaml_str_len(us_yaml_root(d)), 4096);
    us_yaml_free(d);
    d = NULL;
    memset(big, 'x', 4097);
    memcpy(big + 4097, "\n", 2);
    ASSERT_REJECTS(big, NULL, USHER_ERR_LIMIT,
                   "t.yaml:1: scalar of 4097 bytes, over the limit of 4096 bytes");
    tight = us_yaml_default_limits();
    tight.max_scalar = 3;
    PARSE_OK("k: \"\\x41\\x42\\x43\"\n", &tight, d); /* 14 bytes of text, 3 of value */
    us_yaml_free(d);
    d = NULL;
    ASSERT_REJECTS("abc: ok\nk: abcd\n", &tight, USHER_ERR_LIMIT,
                   "t.yaml:2: scalar of 4 bytes, over the limit of 3 bytes");

    /* nodes: every scalar (keys too) and collection counts */
    tight = us_yaml_default_limits();
    tight.max_nodes = 5;
    PARSE_OK("a: 1\nb: 2\n", &tight, d); /* map + 4 scalars */
    us_yaml_free(d);
    d = NULL;
    ASSERT_REJECTS("a: 1\nb: 2\nc: 3\n", &tight, USHER_ERR_LIMIT, "t.yaml:3: more than 5 nodes");
    /* defaults: a sequence and 99,999 items pass, one more item fails */
    size_t o = 0;
    big[o++] = '[';
    for (int i = 0; i < 99999; i++) {
        big[o++] = '0';
        big[o++] = ',';
    }
    big[o - 1] = ']';
    big[o] = '\0';
    PARSE_OK(big, NULL, d);
    ASSERT_EQ_U64(us_yaml_len(us_yaml_root(d)), 99999);
    us_yaml_free(d);
    d = NULL;
    memcpy(big + o - 1, ",0]", 4);
    ASSERT_REJECTS(big, NULL, USHER_ERR_LIMIT, "t.yaml:1: more than 100000 nodes");

    /* bytes: exactly the limit passes, one more byte fails before parsing */
    memset(big, ' ', lim.max_bytes);
    memcpy(big, "a: 1", 4);
    big[lim.max_bytes - 1] = '\n';
    usher_error err;
    ASSERT_OK(us_yaml_parse(big, lim.max_bytes, "t.yaml", NULL, &d, &err));
    us_yaml_free(d);
    d = NULL;
    big[lim.max_bytes] = '\n';
    ASSERT_REJECTS_N(big, lim.max_bytes + 1, NULL, USHER_ERR_LIMIT,
                     "t.yaml: 1048577 bytes, over the limit of 1048576 bytes");
    tight = us_yaml_default_limits();
    tight.max_bytes = 5;
    PARSE_OK("a: 1\n", &tight, d);
    us_yaml_free(d);
    d = NULL;
    ASSERT_REJECTS("a: 12\n", &tight, USHER_ERR_LIMIT, "t.yaml: 6 bytes, over the limit of 5");
    free(big);
}

TEST(load_maps_the_file)
{
    usher_error err;
    const char *p = test_path(test_tmpdir(), "cluster.yaml");
    FILE *f = fopen(p, "wb");
    ASSERT(f);
    fputs(cluster, f);
    fclose(f);
    us_yaml_doc *d = NULL;
    ASSERT_OK(us_yaml_load(p, NULL, &d, &err));
    ASSERT_STR_EQ(us_yaml_label(d), p);
    ASSERT_EQ_U64(us_yaml_len(us_yaml_get(us_yaml_root(d), "gpus")), 2);
    int64_t c = 0;
    ASSERT_EQ_INT(us_yaml_get_i64(d, us_yaml_item(us_yaml_get(us_yaml_root(d), "gpus"), 0), "count",
                                  "gpus[0].count", 0, 4, &c, 0, true, &err),
                  USHER_ERR_PARSE);
    char want[1200];
    snprintf(want, sizeof want, "%s:5: field 'gpus[0].count': 8 is out of range [0, 4]", p);
    ASSERT_STR_EQ(err.msg, want);
    us_yaml_free(d);
    d = NULL;
    us_yaml_limits lim = us_yaml_default_limits();
    lim.max_bytes = 10;
    ASSERT_EQ_INT(us_yaml_load(p, &lim, &d, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, p);
    ASSERT(d == NULL);
    ASSERT_EQ_INT(us_yaml_load(test_path(test_tmpdir(), "missing.yaml"), NULL, &d, &err),
                  USHER_ERR_NOT_FOUND);
    ASSERT_EQ_INT(us_yaml_load(test_tmpdir(), NULL, &d, &err), USHER_ERR_INVALID);
    /* an empty file is an empty document */
    const char *e = test_path(test_tmpdir(), "empty.yaml");
    f = fopen(e, "wb");
    ASSERT(f);
    fclose(f);
    ASSERT_OK(us_yaml_load(e, NULL, &d, &err));
    ASSERT(us_yaml_root(d) == NULL);
    us_yaml_free(d);
}

TEST(every_allocation_failure_is_clean)
{
    /* a medium document: both realistic files, a 40-key map (hashed duplicate
       check), nesting past the first frame-stack size, ~2,000 nodes */
    static char text[65536];
    size_t o = (size_t)snprintf(text, sizeof text, "%s", cluster);
    o += (size_t)snprintf(text + o, sizeof text - o, "workload:\n  models:\n");
    for (int m = 0; m < 60; m++)
        o += (size_t)snprintf(text + o, sizeof text - o,
                              "    - {name: m%d, model: \"models/zoo/m%d.onnx\", rate: %d.5, "
                              "slo_ms: %d, batch: [1, 2, 4, 8]}\n",
                              m, m, m * 10, 50 + m);
    o += (size_t)snprintf(text + o, sizeof text - o, "wide:\n");
    for (int k = 0; k < 40; k++)
        o += (size_t)snprintf(text + o, sizeof text - o, "  key%d: 'v%d'\n", k, k);
    o += (size_t)snprintf(text + o, sizeof text - o, "deep: [[[[[[[[[[[[x]]]]]]]]]]]]\n");
    ASSERT(o < sizeof text - 1);
    size_t live = us_alloc_live_bytes();
    usher_error err;
    uint64_t before = us_alloc_count();
    us_yaml_doc *d = NULL;
    ASSERT_OK(us_yaml_parse(text, o, "medium.yaml", NULL, &d, &err));
    uint64_t n_allocs = us_alloc_count() - before;
    ASSERT(n_allocs >= 5);
    ASSERT_EQ_U64(us_yaml_len(us_yaml_get(us_yaml_get(us_yaml_root(d), "workload"), "models")), 60);
    us_yaml_free(d);
    int failed = 0;
    for (uint64_t k = 1; k <= n_allocs + 1; k++) {
        uint64_t inj = us_alloc_injected_failures();
        us_alloc_fail_nth(k);
        d = NULL;
        memset(&err, 0, sizeof err);
        int rc = us_yaml_parse(text, o, "medium.yaml", NULL, &d, &err);
        us_alloc_fail_nth(0);
        bool injected = us_alloc_injected_failures() != inj;
        if (rc == USHER_OK) {
            ASSERT(d != NULL);
            ASSERT(!injected); /* a failure must never be swallowed */
            us_yaml_free(d);
        } else {
            ASSERT(injected);
            ASSERT_EQ_INT(rc, USHER_ERR_NOMEM);
            ASSERT(d == NULL);
            ASSERT_CONTAINS(err.msg, "medium.yaml: out of memory");
            failed++;
        }
        ASSERT_EQ_U64(us_alloc_live_bytes(), live);
    }
    ASSERT_EQ_U64(failed, n_allocs);
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

/* ---- the fuzz body over the seed corpus and its mutants ------------------- */

typedef test_blob seed;

/* every file of fuzz/corpus-yaml, in name order */
static int load_seeds(seed *out, int max)
{
    return test_load_dir(test_path(test_source_dir(), "fuzz/corpus-yaml"), "", out, max);
}

static uint64_t rng_state = 0x9A3151EEDULL;
static uint64_t rnd(void) { return test_splitmix(&rng_state); }

TEST(seeds_and_mutants_through_fuzz_body)
{
    seed seeds[128];
    int n = load_seeds(seeds, 128);
    ASSERT(n >= 15);
    for (int i = 0; i < n; i++)
        usher_fuzz_yaml_one(seeds[i].p, seeds[i].n);
    /* YAML's structure characters, so flips make interesting damage */
    static const char punct[] = ":-[]{},#&*!|>'\"%@`?\n\t ~0";
    const int rounds = 1000;
    int ok = 0, rejected = 0;
    for (int r = 0; r < rounds; r++) {
        seed *s = &seeds[rnd() % (uint64_t)n];
        while (s->n == 0) /* the empty seed has nothing to mutate */
            s = &seeds[rnd() % (uint64_t)n];
        uint8_t *m = malloc(s->n);
        ASSERT(m);
        memcpy(m, s->p, s->n);
        size_t len = s->n;
        if (rnd() % 8 == 0) {
            len = (size_t)(rnd() % s->n);
        } else {
            int flips = 1 + (int)(rnd() % 3);
            for (int k = 0; k < flips; k++) {
                size_t at = (size_t)(rnd() % s->n);
                if (rnd() & 1)
                    m[at] = (uint8_t)punct[rnd() % (sizeof punct - 1)];
                else
                    m[at] ^= (uint8_t)(1 + rnd() % 255);
            }
        }
        usher_fuzz_yaml_one(m, len);
        us_yaml_doc *d = NULL;
        if (us_yaml_parse((const char *)m, len, "mutant.yaml", NULL, &d, NULL) == USHER_OK)
            ok++;
        else
            rejected++;
        us_yaml_free(d);
        free(m);
    }
    printf("  %d seeds, %d mutants: %d parsed, %d rejected\n", n, rounds, ok, rejected);
    ASSERT(ok > 100 && rejected > 100);
    for (int i = 0; i < n; i++)
        free(seeds[i].p);
}

TEST_MAIN(TEST_ENTRY(workload_tree_and_positions), TEST_ENTRY(cluster_fields_and_allow_list),
          TEST_ENTRY(allow_list_messages), TEST_ENTRY(typed_getters_are_strict),
          TEST_ENTRY(error_helper_and_null_accessors),
          TEST_ENTRY(duplicate_and_complex_keys_refused),
          TEST_ENTRY(anchors_aliases_and_tags_refused), TEST_ENTRY(one_document_per_file),
          TEST_ENTRY(empty_documents_have_no_root), TEST_ENTRY(malformed_yaml_names_line),
          TEST_ENTRY(limits_at_and_past_the_edge), TEST_ENTRY(load_maps_the_file),
          TEST_ENTRY(every_allocation_failure_is_clean),
          TEST_ENTRY(seeds_and_mutants_through_fuzz_body))
