/*
 * yaml.h - a bounded YAML reader for untrusted configuration files (layer 1).
 *
 * usher reads workload.yaml and cluster.yaml, files written by users and so
 * untrusted. This module turns such a text into an immutable tree of
 * scalars, maps and sequences, each node carrying its line and column, so
 * that higher layers read typed fields and report errors as
 * "<file>:<line>: field 'models[1].rate': ...".
 *
 * The syntax is libyaml's (YAML 1.1, driven through its event API, never its
 * document loader); the subset accepted on top of it is deliberately small:
 *   - one document per file: a second document ("---" after content) is an
 *     error; an input with no document (empty, or only comments) or an empty
 *     document ("---" alone) gives a NULL root;
 *   - anchors (&a) and aliases (*a) are refused: no node is ever shared, so
 *     the "billion laughs" expansion cannot happen;
 *   - tags (!!str, !foo, %TAG directives) are refused; a "%YAML" directive is
 *     accepted and ignored;
 *   - map keys are scalars (no complex "? [a, b]" keys); duplicate keys in one
 *     map are an error; "<<" (merge key) is an ordinary key;
 *   - scalars are text: no booleans, no implicit typing; numbers are parsed
 *     strictly only when a typed getter asks for one (see below); a scalar
 *     holding a NUL byte (a "\0" escape) is refused, so every scalar is a
 *     C string;
 *   - the input must be UTF-8 (a UTF-8 byte-order mark is allowed).
 *
 * Limits (us_yaml_limits) are checked before anything grows: the input size
 * before libyaml sees a byte, the nesting depth at each collection start,
 * the node count at each node, the scalar length at each scalar.
 * libyaml allocates through its own malloc (it has no allocator hook); its
 * memory is bounded by the input size, and its parser is deleted on every
 * path. Everything usher keeps comes from one us_arena per document.
 *
 * Every error message names the label (the file) and, where the input has
 * a place for it, the line: "<label>:<line>: ..." (libyaml's syntax errors
 * add the column: "<label>:<line>:<col>: <problem> (<context>)"). Text taken
 * from the input (keys, values) is shown with bytes outside printable ASCII
 * escaped as \xNN and cut at 64 bytes, so a hostile file cannot put terminal
 * escapes into a message.
 */
#ifndef US_YAML_H
#define US_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/status.h"

typedef enum us_yaml_kind { US_YAML_SCALAR, US_YAML_MAP, US_YAML_SEQ } us_yaml_kind;

/* A node of the tree; owned by its document, valid until us_yaml_free. */
typedef struct us_yaml_node us_yaml_node;
/* A parsed document: the arena that holds every node, and the label. */
typedef struct us_yaml_doc us_yaml_doc;

typedef struct us_yaml_limits {
    size_t max_bytes; /* input size in bytes; default 1 MiB; 0 = default */
    size_t max_depth; /* nested maps/sequences, the root one is 1; default 32; 0 = default */
    size_t max_nodes; /* scalars (keys included) + collections; default 100000; 0 = default */
    size_t max_scalar; /* bytes of one scalar after unescaping; default 4096; 0 = default */
} us_yaml_limits;

us_yaml_limits us_yaml_default_limits(void);

/*
 * Parse text[0..len) (need not be NUL-terminated; NULL allowed when len is 0).
 * label names the input in messages ("cluster.yaml"; NULL gives "<yaml>"),
 * and is copied. lim NULL means the defaults.
 * Returns USHER_OK and *out, or a negative status with *out = NULL and err
 * filled, nothing left allocated:
 *   USHER_ERR_PARSE   syntax error, duplicate key, non-scalar key, second
 *                     document, NUL byte in a scalar;
 *   USHER_ERR_UNSUPPORTED  anchor, alias or tag;
 *   USHER_ERR_LIMIT   a limit of *lim;
 *   USHER_ERR_NOMEM   allocation failure (ours or libyaml's);
 *   USHER_ERR_INVALID text NULL with len > 0;
 *   USHER_ERR_INTERNAL libyaml broke its own event grammar (never seen).
 */
int us_yaml_parse(const char *text, size_t len, const char *label, const us_yaml_limits *lim,
                  us_yaml_doc **out, usher_error *err);
/*
 * Map the file at path (core/file.h: regular files only, size limit
 * lim->max_bytes checked before mapping) and parse it with path as the label.
 * Errors as us_yaml_parse, plus those of us_file_map (USHER_ERR_NOT_FOUND,
 * USHER_ERR_IO, USHER_ERR_INVALID, USHER_ERR_LIMIT).
 */
int us_yaml_load(const char *path, const us_yaml_limits *lim, us_yaml_doc **out, usher_error *err);
void us_yaml_free(us_yaml_doc *d); /* NULL allowed */

const us_yaml_node *us_yaml_root(const us_yaml_doc *d); /* NULL for an empty document */
const char *us_yaml_label(const us_yaml_doc *d);

/*
 * Node accessors. All accept NULL and answer as for an absent node:
 * kind US_YAML_SCALAR (with us_yaml_str NULL, so an absent node never looks
 * like a collection), line and column 0, length 0, lookups NULL.
 */
us_yaml_kind us_yaml_node_kind(const us_yaml_node *n);
const char *us_yaml_kind_name(us_yaml_kind k); /* "scalar", "map", "sequence" */
size_t us_yaml_line(const us_yaml_node *n);    /* 1-based */
size_t us_yaml_col(const us_yaml_node *n);     /* 1-based, in characters */

/* scalars */
const char *us_yaml_str(const us_yaml_node *n); /* NUL-terminated; NULL if not a scalar */
size_t us_yaml_str_len(const us_yaml_node *n);  /* strlen(us_yaml_str(n)); 0 if not a scalar */
/* A plain (unquoted) "~", "null", "Null", "NULL" or empty scalar; "" quoted is not null. */
bool us_yaml_is_null(const us_yaml_node *n);
/* Written without quotes (numbers must be: "12" quoted is a string). */
bool us_yaml_is_plain(const us_yaml_node *n);

/* maps and sequences */
size_t us_yaml_len(const us_yaml_node *n); /* entries of a map, items of a seq, else 0 */
/* Value under key (linear search: maps in configuration files are small); NULL if absent. */
const us_yaml_node *us_yaml_get(const us_yaml_node *map, const char *key);
const char *us_yaml_key_at(const us_yaml_node *map, size_t i);              /* NULL past the end */
const us_yaml_node *us_yaml_key_node_at(const us_yaml_node *map, size_t i); /* for positions */
const us_yaml_node *us_yaml_value_at(const us_yaml_node *map, size_t i);
const us_yaml_node *us_yaml_item(const us_yaml_node *seq, size_t i);

/*
 * Typed getters for the field `key` of `map`. `path` is the field's full
 * name for messages ("models[1].rate"; NULL uses key). A field that is
 * absent, or whose value is null (`rate:` or `rate: ~`), is "missing": it
 * gives def and USHER_OK, or, where `required` is true, USHER_ERR_PARSE
 * "<label>:<line of the map>: field '<path>': missing (required)". A NULL
 * map counts as a map without the field. Strings and nodes returned point
 * into the document (valid until us_yaml_free). Otherwise a wrong type or a value
 * out of range is USHER_ERR_PARSE "<label>:<line>: field '<path>': <what>",
 * and *out is left unchanged on every error.
 *
 * get_str: any scalar (a quoted "" is an empty string, not missing).
 * get_i64: a plain scalar of an optional '-' and decimal digits, no leading
 *   zeros ("010" is refused rather than read as 8 or 10), within 64 bits,
 *   then within [lo, hi].
 * get_f64: a plain scalar in the YAML 1.2 core float form without the
 *   special values: [-+]? ( .digits | digits [. digits*] ) ([eE] [-+]? digits)?
 *   ("inf", "nan", ".inf", hex forms are refused); the value must be finite
 *   (1e999 is refused; underflow to 0 or a subnormal is accepted), then
 *   within [lo, hi].
 * get_node: a node of the given kind (for "models" that must be a sequence);
 *   *out is NULL when the field is missing and not required.
 */
int us_yaml_get_str(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                    const char *path, const char **out, const char *def, usher_error *err);
int us_yaml_get_i64(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                    const char *path, int64_t lo, int64_t hi, int64_t *out, int64_t def,
                    bool required, usher_error *err);
int us_yaml_get_f64(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                    const char *path, double lo, double hi, double *out, double def, bool required,
                    usher_error *err);
int us_yaml_get_node(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                     const char *path, us_yaml_kind kind, bool required, const us_yaml_node **out,
                     usher_error *err);

/*
 * Fill err with "<label>:<line of n>: " followed by the formatted message
 * (which names the field path itself: "models[0]: 'model' and 'path' are
 * exclusive") and return code. n NULL gives "<label>: ...".
 */
int us_yaml_error(const us_yaml_doc *d, const us_yaml_node *n, usher_error *err, int code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Reject any key of map not in the NULL-terminated list `allowed` (typos):
 * USHER_ERR_PARSE "<label>:<line of the key>: <path>: unknown field 'slo'
 * (did you mean 'slo_ms'? expected one of: name, model, rate, slo_ms)". The
 * "did you mean" part appears when one allowed key is close (edit distance
 * <= 2, or it starts with the 3 or more characters given). path NULL or "" (the root) drops the "<path>: " part. A NULL map
 * passes; a map that is not a map is USHER_ERR_PARSE "expected a map".
 */
int us_yaml_check_keys(const us_yaml_doc *d, const us_yaml_node *map, const char *path,
                       const char *const *allowed, usher_error *err);

#endif
