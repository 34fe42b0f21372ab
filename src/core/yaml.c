/*
 * yaml.c - see yaml.h for the accepted subset and the contract.
 *
 * How a text becomes a tree. libyaml's parser hands out one event at a time
 * (stream, document, scalar, sequence/mapping start and end, alias); each is
 * checked and turned into at most one node, then deleted. Open collections
 * sit on a stack of frames (at most max_depth); a frame gathers its children
 * in a singly linked list (through node->next) and, when the collection
 * ends, copies them into an arena array, so a finished node is an array of
 * children and the tree never changes again. In a map, children alternate
 * key, value; duplicate keys are found by a linear scan while a map is
 * small and through a us_map (key -> key node) once it holds HASH_AT keys,
 * so a hostile map of 100,000 keys costs linear time, not quadratic.
 *
 * Invariants:
 *   1. Every node, string and the label live in the document's arena; the
 *      frame stack and the duplicate-key maps are the only other memory,
 *      and are freed before us_yaml_parse returns, on every path.
 *   2. A limit is checked before the memory it guards is requested: the
 *      input size before libyaml starts, the depth before a frame is
 *      pushed (and the stack never grows past max_depth frames), the node
 *      count before a node is allocated.
 *   3. The libyaml parser is deleted on every path once it was initialised,
 *      and every event it returned is deleted after its one use.
 *   4. A finished document is immutable: accessors take const pointers and
 *      nothing is computed lazily, so a document may be read from several
 *      threads.
 */
#include "yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "alloc.h"
#include "arena.h"
#include "err.h"
#include "file.h"
#include "hash.h"

#define DEFAULT_MAX_BYTES ((size_t)1 << 20)
#define DEFAULT_MAX_DEPTH 32
#define DEFAULT_MAX_NODES 100000
#define DEFAULT_MAX_SCALAR 4096
#define HASH_AT 16  /* keys in one map before duplicates are found by hashing */
#define SHOW_MAX 64 /* bytes of input text quoted in a message */

struct us_yaml_node {
    us_yaml_kind kind;
    bool plain;                /* scalar written without quotes */
    size_t line, col;          /* 1-based */
    size_t len;                /* scalar: bytes; map: entries; seq: items */
    const char *str;           /* scalar text, NUL-terminated */
    const us_yaml_node **kids; /* seq: items; map: key0, value0, key1, value1, ... */
    us_yaml_node *next;        /* sibling link while the parent is still open */
};

struct us_yaml_doc {
    us_arena arena;
    const char *label;
    const us_yaml_node *root;
};

typedef struct frame {
    us_yaml_node *node, *head, *tail;
    size_t n;    /* children so far; in a map keys and values both count */
    bool hashed; /* keys holds every key of the map */
    us_map keys;
} frame;

typedef struct pstate {
    us_yaml_doc *d;
    us_yaml_limits lim;
    const char *text;
    size_t len;
    frame *frames;
    size_t depth, cap;
    size_t n_nodes, n_docs;
    usher_error *err;
} pstate;

us_yaml_limits us_yaml_default_limits(void)
{
    us_yaml_limits l;
    l.max_bytes = DEFAULT_MAX_BYTES;
    l.max_depth = DEFAULT_MAX_DEPTH;
    l.max_nodes = DEFAULT_MAX_NODES;
    l.max_scalar = DEFAULT_MAX_SCALAR;
    return l;
}

static us_yaml_limits resolve_limits(const us_yaml_limits *lim)
{
    us_yaml_limits l = us_yaml_default_limits();
    if (lim) {
        if (lim->max_bytes)
            l.max_bytes = lim->max_bytes;
        if (lim->max_depth)
            l.max_depth = lim->max_depth;
        if (lim->max_nodes)
            l.max_nodes = lim->max_nodes;
        if (lim->max_scalar)
            l.max_scalar = lim->max_scalar;
    }
    return l;
}

/* Input text for a message: printable ASCII kept, other bytes as \xNN, cut at SHOW_MAX. */
static const char *show(const char *s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;
    if (!s)
        s = "";
    for (; s[i] && i < SHOW_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (o + 2 > cap)
                break;
            buf[o++] = (char)c;
        } else {
            if (o + 5 > cap)
                break;
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (s[i] && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- parsing ------------------------------------------------------------- */

static const char *label_of(const pstate *ps) { return ps->d->label; }

static int fail_at(pstate *ps, yaml_mark_t m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(pstate *ps, yaml_mark_t m, int code, const char *fmt, ...)
{
    char msg[USHER_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return us_err_set(ps->err, code, "%s:%zu: %s", label_of(ps), m.line + 1, msg);
}

static int nomem(pstate *ps)
{
    return us_err_set(ps->err, USHER_ERR_NOMEM, "%s: out of memory while reading YAML",
                      label_of(ps));
}

/* libyaml's own error, with its position and context. */
static int libyaml_fail(pstate *ps, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return us_err_set(ps->err, USHER_ERR_NOMEM, "%s: out of memory in libyaml", label_of(ps));
    case YAML_READER_ERROR: {
        /* the reader knows a byte offset only: count lines up to it */
        size_t off = p->problem_offset < ps->len ? p->problem_offset : ps->len, line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (ps->text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (p->problem_value < 0)
            return us_err_set(ps->err, USHER_ERR_PARSE, "%s:%zu:%zu: %s (at byte %zu)",
                              label_of(ps), line, col, problem, off);
        return us_err_set(ps->err, USHER_ERR_PARSE, "%s:%zu:%zu: %s (0x%X at byte %zu)",
                          label_of(ps), line, col, problem, (unsigned)p->problem_value, off);
    }
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        if (p->context)
            return us_err_set(ps->err, USHER_ERR_PARSE,
                              "%s:%zu:%zu: %s (%s at line %zu, column %zu)", label_of(ps),
                              p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                              p->context, p->context_mark.line + 1, p->context_mark.column + 1);
        return us_err_set(ps->err, USHER_ERR_PARSE, "%s:%zu:%zu: %s", label_of(ps),
                          p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
    default:
        return us_err_set(ps->err, USHER_ERR_PARSE, "%s: %s", label_of(ps), problem);
    }
}

static int refuse_anchor_tag(pstate *ps, yaml_mark_t m, const yaml_char_t *anchor,
                             const yaml_char_t *tag)
{
    char b[SHOW_MAX * 4 + 8];
    if (anchor)
        return fail_at(ps, m, USHER_ERR_UNSUPPORTED,
                       "anchor '&%s' is not supported (anchors and aliases are refused)",
                       show((const char *)anchor, b, sizeof b));
    if (tag)
        return fail_at(ps, m, USHER_ERR_UNSUPPORTED, "tag '%s' is not supported (tags are refused)",
                       show((const char *)tag, b, sizeof b));
    return USHER_OK;
}

static int new_node(pstate *ps, us_yaml_kind kind, yaml_mark_t m, us_yaml_node **out)
{
    if (ps->n_nodes >= ps->lim.max_nodes)
        return fail_at(ps, m, USHER_ERR_LIMIT, "more than %zu nodes", ps->lim.max_nodes);
    us_yaml_node *n = us_arena_alloc(&ps->d->arena, sizeof *n);
    if (!n)
        return nomem(ps);
    ps->n_nodes++;
    n->kind = kind;
    n->line = m.line + 1;
    n->col = m.column + 1;
    *out = n;
    return USHER_OK;
}

/* A new key of the map in f: refuse it if the map already has it. */
static int check_duplicate(pstate *ps, frame *f, us_yaml_node *key)
{
    char b[SHOW_MAX * 4 + 8];
    const us_yaml_node *first = NULL;
    if (!f->hashed && f->n / 2 < HASH_AT) {
        for (const us_yaml_node *k = f->head; k; k = k->next->next) {
            if (strcmp(k->str, key->str) == 0) {
                first = k;
                break;
            }
        }
    } else {
        if (!f->hashed) {
            for (us_yaml_node *k = f->head; k; k = k->next->next)
                if (us_map_put(&f->keys, k->str, k, NULL) < 0)
                    return nomem(ps);
            f->hashed = true;
        }
        void *ex = NULL;
        int r = us_map_put(&f->keys, key->str, key, &ex);
        if (r < 0)
            return nomem(ps);
        if (r == 0)
            first = ex;
    }
    if (first)
        return us_err_set(ps->err, USHER_ERR_PARSE,
                          "%s:%zu: duplicate key '%s' (first at line %zu)", label_of(ps), key->line,
                          show(key->str, b, sizeof b), first->line);
    return USHER_OK;
}

/* Hang a new node under the open collection (or make it the root). */
static int attach(pstate *ps, us_yaml_node *n)
{
    if (ps->depth == 0) {
        ps->d->root = n;
        return USHER_OK;
    }
    frame *f = &ps->frames[ps->depth - 1];
    if (f->node->kind == US_YAML_MAP && f->n % 2 == 0) {
        if (n->kind != US_YAML_SCALAR)
            return us_err_set(ps->err, USHER_ERR_PARSE,
                              "%s:%zu: a map key must be a scalar, not a %s", label_of(ps), n->line,
                              us_yaml_kind_name(n->kind));
        int rc = check_duplicate(ps, f, n);
        if (rc)
            return rc;
    }
    if (f->tail)
        f->tail->next = n;
    else
        f->head = n;
    f->tail = n;
    f->n++;
    return USHER_OK;
}

static int on_scalar(pstate *ps, const yaml_event_t *ev)
{
    yaml_mark_t m = ev->start_mark;
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    int rc = refuse_anchor_tag(ps, m, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (rc)
        return rc;
    if (ps->depth == 0 && plain && len == 0 && ev->start_mark.index == ev->end_mark.index)
        return USHER_OK; /* an empty document ("---" alone): libyaml's stand-in, no root */
    if (len > ps->lim.max_scalar)
        return fail_at(ps, m, USHER_ERR_LIMIT, "scalar of %zu bytes, over the limit of %zu bytes",
                       len, ps->lim.max_scalar);
    if (len && memchr(v, '\0', len))
        return fail_at(ps, m, USHER_ERR_PARSE, "NUL byte in a scalar");
    us_yaml_node *n;
    rc = new_node(ps, US_YAML_SCALAR, m, &n);
    if (rc)
        return rc;
    char *s = us_arena_strndup(&ps->d->arena, len ? v : "", len);
    if (!s)
        return nomem(ps);
    n->str = s;
    n->len = len;
    n->plain = plain;
    return attach(ps, n);
}

static int on_start(pstate *ps, const yaml_event_t *ev, us_yaml_kind kind)
{
    yaml_mark_t m = ev->start_mark;
    int rc =
        kind == US_YAML_MAP
            ? refuse_anchor_tag(ps, m, ev->data.mapping_start.anchor, ev->data.mapping_start.tag)
            : refuse_anchor_tag(ps, m, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
    if (rc)
        return rc;
    if (ps->depth >= ps->lim.max_depth)
        return fail_at(ps, m, USHER_ERR_LIMIT, "nesting deeper than %zu levels", ps->lim.max_depth);
    if (ps->depth == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        if (cap > ps->lim.max_depth)
            cap = ps->lim.max_depth;
        frame *nf = us_realloc(ps->frames, cap * sizeof *nf); /* cap <= max_depth, checked */
        if (!nf)
            return nomem(ps);
        ps->frames = nf;
        ps->cap = cap;
    }
    us_yaml_node *n;
    rc = new_node(ps, kind, m, &n);
    if (rc)
        return rc;
    rc = attach(ps, n);
    if (rc)
        return rc;
    frame *f = &ps->frames[ps->depth++];
    memset(f, 0, sizeof *f);
    f->node = n;
    us_map_init(&f->keys);
    return USHER_OK;
}

static int on_end(pstate *ps)
{
    frame *f = &ps->frames[ps->depth - 1];
    us_yaml_node *n = f->node;
    if (f->n) {
        const us_yaml_node **kids = us_arena_array(&ps->d->arena, f->n, sizeof *kids);
        if (!kids)
            return nomem(ps);
        size_t i = 0;
        for (us_yaml_node *k = f->head; k; k = k->next)
            kids[i++] = k;
        n->kids = kids;
    }
    n->len = n->kind == US_YAML_MAP ? f->n / 2 : f->n;
    us_map_free(&f->keys);
    ps->depth--;
    return USHER_OK;
}

static int on_event(pstate *ps, const yaml_event_t *ev)
{
    char b[SHOW_MAX * 4 + 8];
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return USHER_OK;
    case YAML_DOCUMENT_START_EVENT:
        if (ps->n_docs++)
            return fail_at(ps, ev->start_mark, USHER_ERR_PARSE,
                           "a second document: a file holds one YAML document");
        if (ev->data.document_start.tag_directives.start !=
            ev->data.document_start.tag_directives.end)
            return fail_at(ps, ev->start_mark, USHER_ERR_UNSUPPORTED,
                           "%%TAG directives are not supported (tags are refused)");
        return USHER_OK;
    case YAML_ALIAS_EVENT:
        return fail_at(ps, ev->start_mark, USHER_ERR_UNSUPPORTED,
                       "alias '*%s' is not supported (anchors and aliases are refused)",
                       show((const char *)ev->data.alias.anchor, b, sizeof b));
    case YAML_SCALAR_EVENT:
        return on_scalar(ps, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(ps, ev, US_YAML_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(ps, ev, US_YAML_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (ps->depth == 0) /* libyaml never does this; do not trust it blindly */
            return fail_at(ps, ev->start_mark, USHER_ERR_INTERNAL, "unbalanced collection end");
        return on_end(ps);
    default:
        return fail_at(ps, ev->start_mark, USHER_ERR_INTERNAL, "unexpected libyaml event %d",
                       (int)ev->type);
    }
}

static int run_parser(pstate *ps)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return us_err_set(ps->err, USHER_ERR_NOMEM, "%s: out of memory in libyaml", label_of(ps));
    yaml_parser_set_input_string(&p, (const unsigned char *)ps->text, ps->len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    int rc = USHER_OK;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = libyaml_fail(ps, &p);
            break;
        }
        bool done = ev.type == YAML_STREAM_END_EVENT;
        if (ev.type == YAML_NO_EVENT) /* only after an error or the end: never loop on it */
            rc = us_err_set(ps->err, USHER_ERR_INTERNAL, "%s: libyaml returned no event",
                            label_of(ps));
        else
            rc = on_event(ps, &ev);
        yaml_event_delete(&ev);
        if (rc || done)
            break;
    }
    yaml_parser_delete(&p);
    if (rc == USHER_OK && ps->depth != 0)
        rc = us_err_set(ps->err, USHER_ERR_INTERNAL, "%s: unbalanced collections", label_of(ps));
    return rc;
}

int us_yaml_parse(const char *text, size_t len, const char *label, const us_yaml_limits *lim,
                  us_yaml_doc **out, usher_error *err)
{
    *out = NULL;
    if (!label)
        label = "<yaml>";
    pstate ps;
    memset(&ps, 0, sizeof ps);
    ps.lim = resolve_limits(lim);
    ps.err = err;
    if (len > ps.lim.max_bytes)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: %zu bytes, over the limit of %zu bytes", label,
                          len, ps.lim.max_bytes);
    if (!text && len)
        return us_err_set(err, USHER_ERR_INVALID, "%s: no text", label);
    ps.text = text ? text : "";
    ps.len = len;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        /* a UTF-8 byte-order mark: libyaml, told the encoding, would take it for an indent */
        ps.text += 3;
        ps.len -= 3;
    }
    us_yaml_doc *d = us_malloc(sizeof *d);
    if (!d)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory while reading YAML", label);
    memset(d, 0, sizeof *d);
    /* a chunk about the size the tree of a small file needs, 4..64 KiB */
    size_t chunk = len < 512 ? 4096 : len > 8192 ? 65536 : len * 8;
    us_arena_init(&d->arena, chunk);
    d->label = us_arena_strdup(&d->arena, label);
    int rc;
    if (!d->label) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory while reading YAML", label);
        goto free_doc;
    }
    ps.d = d;
    rc = run_parser(&ps);
    for (size_t i = 0; i < ps.depth; i++)
        us_map_free(&ps.frames[i].keys);
    us_free(ps.frames);
    if (rc)
        goto free_doc;
    *out = d;
    if (err)
        us_err_clear(err);
    return USHER_OK;
free_doc:
    us_yaml_free(d);
    return rc;
}

int us_yaml_load(const char *path, const us_yaml_limits *lim, us_yaml_doc **out, usher_error *err)
{
    *out = NULL;
    us_yaml_limits l = resolve_limits(lim);
    us_mapped m;
    int rc = us_file_map(path, l.max_bytes, &m, err);
    if (rc)
        return rc;
    rc = us_yaml_parse((const char *)m.data, m.len, path, &l, out, err);
    us_file_unmap(&m);
    return rc;
}

void us_yaml_free(us_yaml_doc *d)
{
    if (!d)
        return;
    us_arena_free(&d->arena);
    us_free(d);
}

/* ---- reading the tree ---------------------------------------------------- */

const us_yaml_node *us_yaml_root(const us_yaml_doc *d) { return d ? d->root : NULL; }
const char *us_yaml_label(const us_yaml_doc *d) { return d ? d->label : "<yaml>"; }

us_yaml_kind us_yaml_node_kind(const us_yaml_node *n) { return n ? n->kind : US_YAML_SCALAR; }

const char *us_yaml_kind_name(us_yaml_kind k)
{
    switch (k) {
    case US_YAML_SCALAR:
        return "scalar";
    case US_YAML_MAP:
        return "map";
    case US_YAML_SEQ:
        return "sequence";
    }
    return "node";
}

size_t us_yaml_line(const us_yaml_node *n) { return n ? n->line : 0; }
size_t us_yaml_col(const us_yaml_node *n) { return n ? n->col : 0; }

const char *us_yaml_str(const us_yaml_node *n)
{
    return n && n->kind == US_YAML_SCALAR ? n->str : NULL;
}

size_t us_yaml_str_len(const us_yaml_node *n)
{
    return n && n->kind == US_YAML_SCALAR ? n->len : 0;
}

bool us_yaml_is_plain(const us_yaml_node *n) { return n && n->kind == US_YAML_SCALAR && n->plain; }

bool us_yaml_is_null(const us_yaml_node *n)
{
    if (!us_yaml_is_plain(n))
        return false;
    const char *s = n->str;
    return n->len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

size_t us_yaml_len(const us_yaml_node *n) { return n && n->kind != US_YAML_SCALAR ? n->len : 0; }

const us_yaml_node *us_yaml_key_node_at(const us_yaml_node *map, size_t i)
{
    if (!map || map->kind != US_YAML_MAP || i >= map->len)
        return NULL;
    return map->kids[2 * i];
}

const char *us_yaml_key_at(const us_yaml_node *map, size_t i)
{
    const us_yaml_node *k = us_yaml_key_node_at(map, i);
    return k ? k->str : NULL;
}

const us_yaml_node *us_yaml_value_at(const us_yaml_node *map, size_t i)
{
    if (!map || map->kind != US_YAML_MAP || i >= map->len)
        return NULL;
    return map->kids[2 * i + 1];
}

const us_yaml_node *us_yaml_get(const us_yaml_node *map, const char *key)
{
    if (!map || map->kind != US_YAML_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->kids[2 * i]->str, key) == 0)
            return map->kids[2 * i + 1];
    return NULL;
}

const us_yaml_node *us_yaml_item(const us_yaml_node *seq, size_t i)
{
    if (!seq || seq->kind != US_YAML_SEQ || i >= seq->len)
        return NULL;
    return seq->kids[i];
}

/* ---- errors and typed fields --------------------------------------------- */

static int verror(const us_yaml_doc *d, const us_yaml_node *n, usher_error *err, int code,
                  const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static int verror(const us_yaml_doc *d, const us_yaml_node *n, usher_error *err, int code,
                  const char *fmt, va_list ap)
{
    char msg[USHER_ERROR_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (n)
        return us_err_set(err, code, "%s:%zu: %s", us_yaml_label(d), n->line, msg);
    return us_err_set(err, code, "%s: %s", us_yaml_label(d), msg);
}

int us_yaml_error(const us_yaml_doc *d, const us_yaml_node *n, usher_error *err, int code,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(d, n, err, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int field_error(const us_yaml_doc *d, const us_yaml_node *n, usher_error *err,
                       const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int field_error(const us_yaml_doc *d, const us_yaml_node *n, usher_error *err,
                       const char *path, const char *fmt, ...)
{
    char msg[USHER_ERROR_MAX], pb[SHOW_MAX * 4 + 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return us_yaml_error(d, n, err, USHER_ERR_PARSE, "field '%s': %s", show(path, pb, sizeof pb),
                         msg);
}

/* The value of key in map, NULL when missing (absent or null). */
static int lookup(const us_yaml_doc *d, const us_yaml_node *map, const char *key, const char *path,
                  bool required, const us_yaml_node **val, usher_error *err)
{
    *val = NULL;
    if (map && map->kind != US_YAML_MAP)
        return field_error(d, map, err, path, "expected a map holding it, found a %s",
                           us_yaml_kind_name(map->kind));
    const us_yaml_node *v = us_yaml_get(map, key);
    if (v && us_yaml_is_null(v))
        v = NULL;
    if (!v && required)
        return field_error(d, map, err, path, "missing (required)");
    *val = v;
    return USHER_OK;
}

int us_yaml_get_str(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                    const char *path, const char **out, const char *def, usher_error *err)
{
    const us_yaml_node *v;
    path = path ? path : key;
    int rc = lookup(d, map, key, path, false, &v, err);
    if (rc)
        return rc;
    if (!v) {
        *out = def;
        return USHER_OK;
    }
    if (v->kind != US_YAML_SCALAR)
        return field_error(d, v, err, path, "expected a string, found a %s",
                           us_yaml_kind_name(v->kind));
    *out = v->str;
    return USHER_OK;
}

int us_yaml_get_node(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                     const char *path, us_yaml_kind kind, bool required, const us_yaml_node **out,
                     usher_error *err)
{
    const us_yaml_node *v;
    path = path ? path : key;
    int rc = lookup(d, map, key, path, required, &v, err);
    if (rc)
        return rc;
    if (v && v->kind != kind)
        return field_error(d, v, err, path, "expected a %s, found a %s", us_yaml_kind_name(kind),
                           us_yaml_kind_name(v->kind));
    *out = v;
    return USHER_OK;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A plain scalar holding a number, or an error naming what was found. */
static int number_text(const us_yaml_doc *d, const us_yaml_node *v, const char *path,
                       const char *what, usher_error *err)
{
    char b[SHOW_MAX * 4 + 8];
    if (v->kind != US_YAML_SCALAR)
        return field_error(d, v, err, path, "expected %s, found a %s", what,
                           us_yaml_kind_name(v->kind));
    if (!v->plain)
        return field_error(d, v, err, path, "expected %s, found the quoted string \"%s\"", what,
                           show(v->str, b, sizeof b));
    return USHER_OK;
}

int us_yaml_get_i64(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                    const char *path, int64_t lo, int64_t hi, int64_t *out, int64_t def,
                    bool required, usher_error *err)
{
    char b[SHOW_MAX * 4 + 8];
    const us_yaml_node *v;
    path = path ? path : key;
    int rc = lookup(d, map, key, path, required, &v, err);
    if (rc)
        return rc;
    if (!v) {
        *out = def;
        return USHER_OK;
    }
    rc = number_text(d, v, path, "an integer", err);
    if (rc)
        return rc;
    const char *s = v->str, *p = s + (s[0] == '-');
    size_t nd = 0;
    while (is_digit(p[nd]))
        nd++;
    if (nd == 0 || p[nd] != '\0')
        return field_error(d, v, err, path, "expected an integer, found '%s'",
                           show(s, b, sizeof b));
    if (p[0] == '0' && nd > 1)
        return field_error(d, v, err, path,
                           "'%s': leading zeros are not allowed (no octal numbers)",
                           show(s, b, sizeof b));
    /* accumulate on the negative side, where INT64_MIN fits */
    int64_t x = 0;
    for (size_t i = 0; i < nd; i++) {
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_sub_overflow(x, p[i] - '0', &x))
            return field_error(d, v, err, path, "'%s' does not fit in 64 bits",
                               show(s, b, sizeof b));
    }
    if (s[0] != '-') {
        if (x == INT64_MIN)
            return field_error(d, v, err, path, "'%s' does not fit in 64 bits",
                               show(s, b, sizeof b));
        x = -x;
    }
    if (x < lo || x > hi)
        return field_error(d, v, err, path, "%lld is out of range [%lld, %lld]", (long long)x,
                           (long long)lo, (long long)hi);
    *out = x;
    return USHER_OK;
}

/* [-+]? ( .digits | digits [. digits*] ) ([eE] [-+]? digits)? over the whole string */
static bool float_syntax(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t n_int = 0, n_frac = 0;
    while (is_digit(*p)) {
        p++;
        n_int++;
    }
    if (*p == '.') {
        p++;
        while (is_digit(*p)) {
            p++;
            n_frac++;
        }
    }
    if (n_int == 0 && n_frac == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    return *p == '\0';
}

int us_yaml_get_f64(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                    const char *path, double lo, double hi, double *out, double def, bool required,
                    usher_error *err)
{
    char b[SHOW_MAX * 4 + 8];
    const us_yaml_node *v;
    path = path ? path : key;
    int rc = lookup(d, map, key, path, required, &v, err);
    if (rc)
        return rc;
    if (!v) {
        *out = def;
        return USHER_OK;
    }
    rc = number_text(d, v, path, "a number", err);
    if (rc)
        return rc;
    if (!float_syntax(v->str))
        return field_error(d, v, err, path, "expected a number, found '%s'",
                           show(v->str, b, sizeof b));
    /* the syntax is checked; strtod must now consume it all (in the C locale it does) */
    char *end = NULL;
    errno = 0;
    double x = strtod(v->str, &end);
    if (end != v->str + v->len)
        return field_error(d, v, err, path, "'%s' cannot be read as a number here",
                           show(v->str, b, sizeof b));
    if (!isfinite(x))
        return field_error(d, v, err, path, "'%s' is not a finite number",
                           show(v->str, b, sizeof b));
    if (!(x >= lo && x <= hi))
        return field_error(d, v, err, path, "%s is out of range [%g, %g]",
                           show(v->str, b, sizeof b), lo, hi);
    *out = x;
    return USHER_OK;
}

/* Edit distance of two short strings (both at most SHOW_MAX bytes), capped at 3. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > SHOW_MAX || nb > SHOW_MAX)
        return 3;
    size_t row[SHOW_MAX + 1];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb] < 3 ? row[nb] : 3;
}

static const char *suggest(const char *key, const char *const *allowed)
{
    size_t klen = strlen(key), best_d = 3;
    const char *best = NULL;
    for (const char *const *a = allowed; *a; a++) {
        size_t alen = strlen(*a);
        size_t dist = edit_distance(key, *a);
        /* a prefix of at least 3 characters counts as close ("slo" for "slo_ms") */
        if (dist > 1 && klen >= 3 && klen < alen && strncmp(key, *a, klen) == 0)
            dist = 1;
        if (dist < best_d && dist < alen) {
            best_d = dist;
            best = *a;
        }
    }
    return best;
}

int us_yaml_check_keys(const us_yaml_doc *d, const us_yaml_node *map, const char *path,
                       const char *const *allowed, usher_error *err)
{
    char kb[SHOW_MAX * 4 + 8], pb[SHOW_MAX * 4 + 8];
    bool root = !path || !path[0];
    if (!map)
        return USHER_OK;
    if (map->kind != US_YAML_MAP)
        return us_yaml_error(d, map, err, USHER_ERR_PARSE, "%s%sexpected a map, found a %s",
                             root ? "" : show(path, pb, sizeof pb), root ? "" : ": ",
                             us_yaml_kind_name(map->kind));
    for (size_t i = 0; i < map->len; i++) {
        const us_yaml_node *k = map->kids[2 * i];
        const char *const *a = allowed;
        while (*a && strcmp(*a, k->str) != 0)
            a++;
        if (*a)
            continue;
        char list[USHER_ERROR_MAX / 2];
        size_t o = 0;
        list[0] = '\0';
        for (a = allowed; *a && o < sizeof list; a++) {
            int w = snprintf(list + o, sizeof list - o, "%s%s", a == allowed ? "" : ", ", *a);
            if (w < 0)
                break;
            o += (size_t)w;
        }
        const char *s = suggest(k->str, allowed);
        char hint[96] = "";
        if (s)
            snprintf(hint, sizeof hint, "did you mean '%s'? ", s);
        return us_yaml_error(d, k, err, USHER_ERR_PARSE,
                             "%s%sunknown field '%s' (%sexpected one of: %s)",
                             root ? "" : show(path, pb, sizeof pb), root ? "" : ": ",
                             show(k->str, kb, sizeof kb), hint, allowed[0] ? list : "nothing");
    }
    return USHER_OK;
}
