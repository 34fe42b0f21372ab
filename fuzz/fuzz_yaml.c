/*
 * fuzz_yaml.c - libFuzzer target for the YAML reader (src/core/yaml.c).
 *
 * The bytes are parsed twice: with the default limits, and with tight ones
 * (depth 3, 40 nodes, 12-byte scalars) so the limit paths are reached by
 * ordinary inputs. The contract checked on every input, beyond "no crash,
 * no sanitizer report":
 *   - a rejection has a negative code and a message that names the label,
 *     and no message is ever missing (us_err_missing_detail_count);
 *   - nothing leaks through the allocation hook;
 *   - a parsed tree is consistent through every accessor: positions are
 *     1-based, limits hold, keys are unique and us_yaml_get finds each one,
 *     out-of-range indexes give NULL, typed getters fail only with a message;
 *   - tight limits only ever reject more: an input the tight parse accepts
 *     gives the same tree with the defaults, and an input the defaults
 *     reject for a reason other than a limit is rejected by the tight parse.
 * Violations abort, so libFuzzer records them as crashes. tests/test_yaml.c
 * replays fuzz/corpus-yaml and mutants of it through the same function.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/yaml.h"
#include "fuzz_yaml.h"

#define LABEL "fuzz.yaml"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? (int)err->code : 0, err ? err->msg : "");
        abort();
    }
}

static void check_rejection(int rc, const usher_error *err, const char *what)
{
    check(rc < 0 && err->code == rc && err->msg[0] && strncmp(err->msg, LABEL, strlen(LABEL)) == 0,
          what, err);
    check(us_err_missing_detail_count() == 0, "an error reached a caller without a message", err);
}

static void walk(const us_yaml_doc *d, const us_yaml_node *n, size_t depth,
                 const us_yaml_limits *lim, size_t *count)
{
    usher_error err;
    memset(&err, 0, sizeof err);
    check(n != NULL, "NULL node in a tree", NULL);
    check(++*count <= lim->max_nodes, "more nodes than max_nodes", NULL);
    check(us_yaml_line(n) >= 1 && us_yaml_col(n) >= 1, "position not 1-based", NULL);
    us_yaml_kind k = us_yaml_node_kind(n);
    check(us_yaml_kind_name(k) != NULL, "kind without a name", NULL);
    check(us_yaml_error(d, n, &err, USHER_ERR_PARSE, "walk") == USHER_ERR_PARSE &&
              strstr(err.msg, LABEL ":") && strstr(err.msg, "walk"),
          "us_yaml_error lost the label or the message", &err);
    if (k == US_YAML_SCALAR) {
        const char *s = us_yaml_str(n);
        check(s && strlen(s) == us_yaml_str_len(n) && us_yaml_str_len(n) <= lim->max_scalar,
              "scalar text inconsistent", NULL);
        check(!us_yaml_is_null(n) || us_yaml_is_plain(n), "a quoted null", NULL);
        check(us_yaml_len(n) == 0 && !us_yaml_item(n, 0) && !us_yaml_get(n, s) &&
                  !us_yaml_key_at(n, 0) && !us_yaml_value_at(n, 0),
              "a scalar answers like a collection", NULL);
        return;
    }
    check(depth < lim->max_depth, "deeper than max_depth", NULL);
    check(us_yaml_str(n) == NULL && !us_yaml_is_null(n) && us_yaml_str_len(n) == 0,
          "a collection answers like a scalar", NULL);
    size_t len = us_yaml_len(n);
    if (k == US_YAML_SEQ) {
        for (size_t i = 0; i < len; i++)
            walk(d, us_yaml_item(n, i), depth + 1, lim, count);
        check(!us_yaml_item(n, len) && !us_yaml_key_at(n, 0) && !us_yaml_get(n, ""),
              "sequence accessors out of bounds", NULL);
        return;
    }
    static const char *const allowed[] = {"name", "model", "rate", "slo_ms", "gpus", NULL};
    int rc = us_yaml_check_keys(d, n, (len & 1) ? "fuzz" : NULL, allowed, &err);
    if (rc)
        check_rejection(rc, &err, "check_keys failed without a message");
    for (size_t i = 0; i < len; i++) {
        const char *key = us_yaml_key_at(n, i);
        const us_yaml_node *kn = us_yaml_key_node_at(n, i), *v = us_yaml_value_at(n, i);
        check(key && kn && v && us_yaml_str(kn) == key, "map entry incomplete", NULL);
        check(us_yaml_get(n, key) == v, "duplicate or unfindable key", NULL);
        walk(d, kn, depth + 1, lim, count);
        walk(d, v, depth + 1, lim, count);
        /* every typed getter on every field: success, or an error with a message */
        const char *s = NULL;
        int64_t iv = 0;
        double dv = 0;
        const us_yaml_node *got = NULL;
        rc = us_yaml_get_str(d, n, key, NULL, &s, "def", &err);
        if (rc)
            check_rejection(rc, &err, "get_str failed without a message");
        else
            check(s != NULL, "get_str gave NULL", NULL);
        rc = us_yaml_get_i64(d, n, key, "fuzz.field", -1000, 1000000, &iv, 7, i & 1, &err);
        if (rc)
            check_rejection(rc, &err, "get_i64 failed without a message");
        else
            check(iv == 7 || (iv >= -1000 && iv <= 1000000), "get_i64 out of range", NULL);
        rc = us_yaml_get_f64(d, n, key, NULL, 0.0, 1e9, &dv, 0.5, !(i & 1), &err);
        if (rc)
            check_rejection(rc, &err, "get_f64 failed without a message");
        else
            check(dv >= 0.0 && dv <= 1e9, "get_f64 out of range", NULL);
        rc = us_yaml_get_node(d, n, key, NULL, us_yaml_node_kind(v), true, &got, &err);
        if (rc)
            check_rejection(rc, &err, "get_node failed without a message");
        else
            check(got == v, "get_node found another node", NULL);
    }
    check(!us_yaml_key_at(n, len) && !us_yaml_value_at(n, len) && !us_yaml_item(n, 0),
          "map accessors out of bounds", NULL);
    const char *s = NULL;
    check(us_yaml_get_str(d, n, "\x01 absent", NULL, &s, "def", &err) == USHER_OK &&
              strcmp(s, "def") == 0,
          "an absent field did not give the default", &err);
    int64_t iv = 0;
    rc = us_yaml_get_i64(d, n, "\x01 absent", NULL, 0, 1, &iv, 0, true, &err);
    check(rc == USHER_ERR_PARSE && strstr(err.msg, "missing"), "a required field was not required",
          &err);
}

static void same_tree(const us_yaml_node *a, const us_yaml_node *b)
{
    check(us_yaml_node_kind(a) == us_yaml_node_kind(b) && us_yaml_line(a) == us_yaml_line(b) &&
              us_yaml_col(a) == us_yaml_col(b) && us_yaml_len(a) == us_yaml_len(b),
          "tight and default limits gave different trees", NULL);
    if (us_yaml_node_kind(a) == US_YAML_SCALAR) {
        check((!a && !b) || strcmp(us_yaml_str(a), us_yaml_str(b)) == 0,
              "tight and default limits gave different text", NULL);
        return;
    }
    for (size_t i = 0; i < us_yaml_len(a); i++) {
        if (us_yaml_node_kind(a) == US_YAML_MAP) {
            same_tree(us_yaml_key_node_at(a, i), us_yaml_key_node_at(b, i));
            same_tree(us_yaml_value_at(a, i), us_yaml_value_at(b, i));
        } else {
            same_tree(us_yaml_item(a, i), us_yaml_item(b, i));
        }
    }
}

/* Parse with lim; walk it when it parses. Returns the status; *out keeps the doc. */
static int parse_and_walk(const uint8_t *data, size_t size, const us_yaml_limits *lim,
                          us_yaml_doc **out)
{
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = us_yaml_parse((const char *)data, size, LABEL, lim, out, &err);
    if (rc) {
        check(*out == NULL, "a rejection returned a document", &err);
        check_rejection(rc, &err, "rejection without a message naming the label");
        check(rc == USHER_ERR_PARSE || rc == USHER_ERR_LIMIT || rc == USHER_ERR_UNSUPPORTED ||
                  rc == USHER_ERR_NOMEM,
              "unexpected status", &err);
        return rc;
    }
    check(*out && err.code == USHER_OK, "success without a document", &err);
    check(strcmp(us_yaml_label(*out), LABEL) == 0, "label lost", NULL);
    const us_yaml_node *root = us_yaml_root(*out);
    size_t count = 0;
    if (root)
        walk(*out, root, 0, lim, &count);
    return rc;
}

int usher_fuzz_yaml_one(const uint8_t *data, size_t size)
{
    size_t live = us_alloc_live_bytes();
    us_yaml_limits def = us_yaml_default_limits(), tight = def;
    tight.max_depth = 3;
    tight.max_nodes = 40;
    tight.max_scalar = 12;
    us_yaml_doc *a = NULL, *b = NULL;
    int ra = parse_and_walk(data, size, &def, &a);
    int rb = parse_and_walk(data, size, &tight, &b);
    if (rb == USHER_OK) {
        check(ra == USHER_OK, "tight limits accepted what the defaults refuse", NULL);
        check((us_yaml_root(a) == NULL) == (us_yaml_root(b) == NULL), "roots differ", NULL);
        if (us_yaml_root(a))
            same_tree(us_yaml_root(a), us_yaml_root(b));
    }
    if (ra != USHER_OK && ra != USHER_ERR_LIMIT)
        check(rb != USHER_OK, "tight limits accepted a malformed input", NULL);
    us_yaml_free(a);
    us_yaml_free(b);
    check(us_alloc_live_bytes() == live, "the YAML reader leaked", NULL);
    return 0;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return usher_fuzz_yaml_one(data, size);
}
#endif
