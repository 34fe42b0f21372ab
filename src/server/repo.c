/*
 * repo.c - the model repository: Triton's layout, config.pbtxt, usher.yaml
 * (layer 8). See repo.h.
 */
#include "server/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/json.h"
#include "core/yaml.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define PB_MAX_DEPTH 16
#define DIM_MAX (INT64_C(1) << 40) /* the largest dim config.pbtxt or max_dims may give */

bool repo_name_ok(const char *name, size_t len)
{
    if (len == 0 || len >= REPO_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* ---- config.pbtxt: protobuf text format, bounded ------------------------------------ */
typedef enum { T_END, T_IDENT, T_NUM, T_STR, T_PUNCT } tok_kind;

typedef struct pb {
    const char *s, *end;
    const char *label;
    size_t line;
    tok_kind kind;
    const char *tok;
    size_t len;
    char str[256]; /* a string token, unescaped (longer strings are refused) */
    repo_model *m;
    usher_error *err;
    /* the input message being read (input [ {...}, ... ] or input {...}): NULL outside one;
     * m->inputs[m->n_inputs], counted when its message closes */
    repo_input *in;
    bool in_named, in_typed;     /* its name, its data_type given */
    size_t in_line[REPO_MAX_IO]; /* where each input's message starts */
    size_t pref_line;            /* where the largest preferred_batch_size is */
    /* the instance_group entry being read (its message open): its line, count (-1: not
     * given, Triton's default 1), kind (IG_*), GPUs listed */
    bool in_ig;
    size_t ig_line;
    int64_t ig_count;
    int ig_kind, ig_n_gpus;
} pb;

enum { IG_AUTO, IG_GPU, IG_CPU, IG_MODEL, IG_UNSET }; /* instance_group.kind */

__attribute__((format(printf, 2, 3))) static int pb_error(pb *p, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return us_err_set(p->err, USHER_ERR_PARSE, "%s:%zu: %s", p->label, p->line, what);
}

static int pb_next(pb *p)
{
    for (;;) {
        while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\r' || *p->s == '\n')) {
            p->line += *p->s == '\n';
            p->s++;
        }
        if (p->s < p->end && *p->s == '#') {
            while (p->s < p->end && *p->s != '\n')
                p->s++;
            continue;
        }
        break;
    }
    p->tok = p->s;
    if (p->s >= p->end) {
        p->kind = T_END;
        p->len = 0;
        return USHER_OK;
    }
    char c = *p->s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        while (p->s < p->end && ((*p->s >= 'a' && *p->s <= 'z') || (*p->s >= 'A' && *p->s <= 'Z') ||
                                 (*p->s >= '0' && *p->s <= '9') || *p->s == '_' || *p->s == '.'))
            p->s++;
        p->kind = T_IDENT;
    } else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
        p->s++;
        while (p->s < p->end && ((*p->s >= '0' && *p->s <= '9') || *p->s == '.' || *p->s == 'e' ||
                                 *p->s == 'E' || *p->s == '-' || *p->s == '+' || *p->s == 'x' ||
                                 (*p->s >= 'a' && *p->s <= 'f') || (*p->s >= 'A' && *p->s <= 'F')))
            p->s++;
        p->kind = T_NUM;
    } else if (c == '"' || c == '\'') {
        size_t o = 0;
        p->s++;
        while (p->s < p->end && *p->s != c) {
            char ch = *p->s++;
            if (ch == '\n')
                return pb_error(p, "%s", "a string runs past the end of its line");
            if (ch == '\\') {
                if (p->s >= p->end)
                    break;
                char e = *p->s++;
                ch = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            }
            if (o + 1 >= sizeof p->str)
                return pb_error(p, "%s", "a string longer than 255 bytes");
            p->str[o++] = ch;
        }
        if (p->s >= p->end)
            return pb_error(p, "%s", "an unterminated string");
        p->s++;
        p->str[o] = 0;
        p->kind = T_STR;
    } else if (strchr("{}[]:,;<>", c)) {
        p->s++;
        p->kind = T_PUNCT;
    } else {
        char b[8];
        snprintf(b, sizeof b, "%s", (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f ? (char[]){c, 0} : "?");
        return pb_error(p, "unexpected character '%s'", b);
    }
    p->len = (size_t)(p->s - p->tok);
    return USHER_OK;
}

static bool is_punct(const pb *p, char c) { return p->kind == T_PUNCT && *p->tok == c; }

/* an integer scalar value, strictly */
static int pb_int(pb *p, const char *field, int64_t lo, int64_t hi, int64_t *out)
{
    if (p->kind != T_NUM)
        return pb_error(p, "field '%s': expected an integer", field);
    char b[32];
    if (p->len >= sizeof b)
        return pb_error(p, "field '%s': number too long", field);
    memcpy(b, p->tok, p->len);
    b[p->len] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return pb_error(p, "field '%s': an integer in range", field);
    *out = v;
    return USHER_OK;
}

/* an error at an earlier line (a message's start) */
__attribute__((format(printf, 3, 4))) static int pb_error_at(pb *p, size_t line, const char *fmt,
                                                             ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return us_err_set(p->err, USHER_ERR_PARSE, "%s:%zu: %s", p->label, line, what);
}

/* an input name as usher shows it in messages: 1 to 127 bytes of printable ASCII */
static bool input_name_ok(const char *s, size_t len)
{
    if (len == 0 || len >= US_TENSOR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Triton's DataType names to the protocol's types: TYPE_FP32 is FP32, TYPE_STRING BYTES */
static us_dtype triton_dtype(const char *s, size_t len)
{
    if (len < 6 || memcmp(s, "TYPE_", 5) != 0)
        return US_DT_INVALID;
    s += 5, len -= 5;
    if (len == 6 && memcmp(s, "STRING", 6) == 0)
        return US_DT_BYTES;
    if (len == 5 && memcmp(s, "BYTES", 5) == 0)
        return US_DT_INVALID; /* not a Triton name */
    return us_dtype_parse(s, len);
}

/* the input whose message is open, for a field under "input." */
static int pb_input(pb *p, const char *path, repo_input **out)
{
    if (!p->in)
        return pb_error(p, "field '%s' outside an input message", path);
    *out = p->in;
    return USHER_OK;
}

/* a message opens at path */
static int pb_open(pb *p, const char *path)
{
    if (strcmp(path, "instance_group") == 0) {
        p->in_ig = true;
        p->ig_line = p->line;
        p->ig_count = -1;
        p->ig_kind = IG_UNSET;
        p->ig_n_gpus = 0;
        return USHER_OK;
    }
    if (strcmp(path, "input") != 0)
        return USHER_OK;
    repo_model *m = p->m;
    if (m->n_inputs >= REPO_MAX_IO)
        return pb_error(p, "more than %d inputs", REPO_MAX_IO);
    repo_input *in = &m->inputs[m->n_inputs];
    memset(in, 0, sizeof *in);
    in->dtype = US_DT_INVALID;
    in->rank = -1;
    p->in = in;
    p->in_named = p->in_typed = false;
    p->in_line[m->n_inputs] = p->line;
    return USHER_OK;
}

/* an instance_group entry closed: its instances added (Triton's meaning, repo.h) */
static int pb_close_ig(pb *p)
{
    repo_model *m = p->m;
    p->in_ig = false;
    int kind = p->ig_kind == IG_UNSET ? IG_AUTO : p->ig_kind;
    int64_t count = p->ig_count < 0 ? 1 : p->ig_count;
    if (p->ig_n_gpus > 0 && (kind == IG_CPU || kind == IG_MODEL))
        return pb_error_at(p, p->ig_line, "instance_group %d: field 'gpus' is for KIND_GPU (or "
                                          "KIND_AUTO), not %s",
                           m->instance_groups, kind == IG_CPU ? "KIND_CPU" : "KIND_MODEL");
    if (p->ig_n_gpus > 0 || kind == IG_CPU || kind == IG_MODEL)
        m->instances += (int)(count * (p->ig_n_gpus > 0 ? p->ig_n_gpus : 1)); /* <= 256 x 64 */
    else
        m->instances_per_gpu += (int)count;
    m->kind_gpu |= kind == IG_GPU;
    if ((int64_t)m->instances + m->instances_per_gpu > REPO_MAX_INSTANCES)
        return pb_error_at(p, p->ig_line,
                           "instance_group %d: field 'count': %d instances in all (a KIND_GPU "
                           "count x its gpus), at most %d",
                           m->instance_groups, m->instances + m->instances_per_gpu,
                           REPO_MAX_INSTANCES);
    m->instance_groups++;
    return USHER_OK;
}

/* a field of an instance_group entry: count, kind, gpus (the others are skipped) */
static int pb_ig_field(pb *p, const char *path)
{
    int64_t v;
    int rc;
    if (!p->in_ig)
        return pb_error(p, "field '%s' outside an instance_group message", path);
    if (strcmp(path, "instance_group.count") == 0) {
        if (p->ig_count >= 0)
            return pb_error(p, "field '%s' given twice in one instance_group", path);
        if ((rc = pb_int(p, path, INT64_MIN, INT64_MAX, &v)) < 0)
            return rc;
        if (v < 1 || v > REPO_MAX_INSTANCES)
            return pb_error(p, "field '%s': %lld: a count is 1 to %d", path, (long long)v,
                            REPO_MAX_INSTANCES);
        p->ig_count = v;
    } else if (strcmp(path, "instance_group.kind") == 0) {
        static const char *const kinds[] = {"KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"};
        int k = IG_UNSET;
        for (int i = 0; i < 4 && p->kind == T_IDENT; i++)
            if (p->len == strlen(kinds[i]) && memcmp(p->tok, kinds[i], p->len) == 0)
                k = i;
        if (k == IG_UNSET)
            return pb_error(p, "field '%s': '%.*s': expected KIND_AUTO, KIND_GPU, KIND_CPU or "
                               "KIND_MODEL",
                            path, (int)(p->len < 32 ? p->len : 32), p->tok);
        if (p->ig_kind != IG_UNSET)
            return pb_error(p, "field '%s' given twice in one instance_group", path);
        p->ig_kind = k;
    } else if (strcmp(path, "instance_group.gpus") == 0) {
        if ((rc = pb_int(p, path, INT64_MIN, INT64_MAX, &v)) < 0)
            return rc;
        if (v < 0 || v > 1023)
            return pb_error(p, "field '%s': %lld: a GPU is 0 to 1023", path, (long long)v);
        if (p->ig_n_gpus >= REPO_MAX_GROUP_GPUS)
            return pb_error(p, "field '%s': more than %d GPUs", path, REPO_MAX_GROUP_GPUS);
        p->ig_n_gpus++;
    }
    return USHER_OK;
}

/* the message at path closed: an input is complete */
static int pb_close(pb *p, const char *path)
{
    if (strcmp(path, "instance_group") == 0)
        return pb_close_ig(p);
    if (strcmp(path, "input") != 0)
        return USHER_OK;
    repo_model *m = p->m;
    size_t line = p->in_line[m->n_inputs];
    if (!p->in_named)
        return pb_error_at(p, line, "input %zu: field 'name' missing (required)", m->n_inputs);
    for (size_t i = 0; i < m->n_inputs; i++)
        if (strcmp(m->inputs[i].name, p->in->name) == 0)
            return pb_error_at(p, line, "input '%s' is described twice (line %zu first)",
                               p->in->name, p->in_line[i]);
    m->n_inputs++;
    p->in = NULL;
    return USHER_OK;
}

/* a list opens at path: "dims: []" gives a rank of 0 */
static int pb_list(pb *p, const char *path)
{
    repo_input *in = NULL;
    int rc;
    if (strcmp(path, "input.dims") == 0) {
        if ((rc = pb_input(p, path, &in)) < 0)
            return rc;
        if (in->rank < 0)
            in->rank = 0;
    }
    return USHER_OK;
}

/* a field of an input message */
static int pb_input_field(pb *p, const char *path)
{
    repo_input *in = NULL;
    int rc = pb_input(p, path, &in);
    if (rc < 0)
        return rc;
    if (strcmp(path, "input.name") == 0) {
        if (p->kind != T_STR)
            return pb_error(p, "field '%s': expected a string", path);
        if (p->in_named)
            return pb_error(p, "input '%s': field 'name' given twice", in->name);
        if (!input_name_ok(p->str, strlen(p->str)))
            return pb_error(p, "field '%s': 1 to %d bytes of printable ASCII", path,
                            US_TENSOR_NAME_MAX - 1);
        memcpy(in->name, p->str, strlen(p->str) + 1); /* under US_TENSOR_NAME_MAX: checked */
        p->in_named = true;
    } else if (strcmp(path, "input.data_type") == 0) {
        if (p->kind != T_IDENT)
            return pb_error(p, "field '%s': expected a type name such as TYPE_FP32", path);
        if (p->in_typed)
            return pb_error(p, "field '%s' given twice", path);
        in->dtype = triton_dtype(p->tok, p->len);
        if (in->dtype == US_DT_INVALID)
            return pb_error(p, "field '%s': unknown type '%.*s' (TYPE_BOOL, TYPE_UINT8, "
                               "TYPE_UINT16, TYPE_UINT32, TYPE_UINT64, TYPE_INT8, TYPE_INT16, "
                               "TYPE_INT32, TYPE_INT64, TYPE_FP16, TYPE_FP32, TYPE_FP64, "
                               "TYPE_BF16, TYPE_STRING)",
                            path, (int)(p->len < 64 ? p->len : 64), p->tok);
        p->in_typed = true;
    } else if (strcmp(path, "input.dims") == 0) {
        int64_t v;
        if ((rc = pb_int(p, path, INT64_MIN, INT64_MAX, &v)) < 0)
            return rc;
        if (v < -1 || v > DIM_MAX)
            return pb_error(p, "field '%s': %lld: a dim is -1 (dynamic) or 0 to 2^40", path,
                            (long long)v);
        if (in->rank < 0)
            in->rank = 0;
        if (in->rank >= US_TENSOR_MAX_RANK)
            return pb_error(p, "field '%s': more than %d dims", path, US_TENSOR_MAX_RANK);
        in->dim[in->rank++] = v;
    }
    return USHER_OK;
}

/* dynamic_batching.preferred_batch_size: kept distinct (Triton keeps a set), sorted at the end */
static int pb_preferred(pb *p, const char *path)
{
    repo_model *m = p->m;
    int64_t v;
    int rc = pb_int(p, path, INT64_MIN, INT64_MAX, &v);
    if (rc < 0)
        return rc;
    if (v < 1 || v > INT32_MAX)
        return pb_error(p, "field '%s': %lld: a batch size is 1 to %d", path, (long long)v,
                        INT32_MAX);
    bool largest = true;
    for (int i = 0; i < m->n_preferred; i++) {
        if (m->preferred_batch[i] == v)
            return USHER_OK;
        largest &= m->preferred_batch[i] < v;
    }
    if (m->n_preferred >= REPO_MAX_PREFERRED)
        return pb_error(p, "field '%s': more than %d sizes", path, REPO_MAX_PREFERRED);
    m->preferred_batch[m->n_preferred++] = (int)v;
    if (largest)
        p->pref_line = p->line;
    return USHER_OK;
}

/* what usher reads, by the field's dotted path */
static int pb_scalar(pb *p, const char *path)
{
    repo_model *m = p->m;
    int64_t v;
    int rc = USHER_OK;
    if (strncmp(path, "input.", 6) == 0) {
        rc = pb_input_field(p, path);
    } else if (strcmp(path, "input") == 0) {
        return pb_error(p, "field 'input': expected a message: input [ { name: ... } ]");
    } else if (strcmp(path, "dynamic_batching.preferred_batch_size") == 0) {
        rc = pb_preferred(p, path);
    } else if (strcmp(path, "name") == 0) {
        if (p->kind != T_STR)
            return pb_error(p, "field '%s': expected a string", path);
        if (strcmp(p->str, m->name) != 0 && m->name[0])
            return pb_error(p, "name '%s' differs from the model's directory name", p->str);
    } else if (strcmp(path, "platform") == 0 || strcmp(path, "backend") == 0) {
        if (p->kind != T_STR)
            return pb_error(p, "field '%s': expected a string", path);
        if (strcmp(p->str, "onnxruntime_onnx") != 0 && strcmp(p->str, "onnxruntime") != 0)
            return us_err_set(p->err, USHER_ERR_UNSUPPORTED,
                              "%s:%zu: %s '%s': usher serves ONNX models with ONNX Runtime only",
                              p->label, p->line, path, p->str);
    } else if (strcmp(path, "max_batch_size") == 0) {
        rc = pb_int(p, path, 0, INT32_MAX, &m->max_batch_size);
    } else if (strcmp(path, "instance_group.count") == 0 ||
               strcmp(path, "instance_group.kind") == 0 ||
               strcmp(path, "instance_group.gpus") == 0) {
        rc = pb_ig_field(p, path);
    } else if (strcmp(path, "instance_group") == 0) {
        return pb_error(p, "field 'instance_group': expected a message: instance_group [ { "
                           "count: 1, kind: KIND_CPU } ]");
    } else if (strcmp(path, "dynamic_batching.max_queue_delay_microseconds") == 0) {
        rc = pb_int(p, path, 0, INT64_MAX / 1000, &m->max_queue_delay_us);
    } else if (strcmp(path, "version_policy.latest.num_versions") == 0) {
        if ((rc = pb_int(p, path, 1, 1, &v)) < 0)
            return us_err_set(p->err, USHER_ERR_UNSUPPORTED,
                              "%s:%zu: version_policy: usher serves the latest version only",
                              p->label, p->line);
    } else if (strcmp(path, "default_model_filename") == 0) {
        if (p->kind != T_STR)
            return pb_error(p, "field '%s': expected a string", path);
        if (!repo_name_ok(p->str, strlen(p->str)))
            return pb_error(p, "default_model_filename '%s' is not a plain file name", p->str);
        snprintf(m->file, sizeof m->file, "%s", p->str);
    }
    return rc;
}

static int pb_message(pb *p, const char *path, int depth, char close);

/* after a field name: ':' value, ':' '[' ... ']', or [':'] '{' message '}' */
static int pb_field(pb *p, const char *path, int depth)
{
    int rc;
    bool colon = is_punct(p, ':');
    if (colon && (rc = pb_next(p)) < 0)
        return rc;
    if (is_punct(p, '{') || is_punct(p, '<')) {
        char close = *p->tok == '{' ? '}' : '>';
        if (strcmp(path, "version_policy.all") == 0 || strcmp(path, "version_policy.specific") == 0)
            return us_err_set(p->err, USHER_ERR_UNSUPPORTED,
                              "%s:%zu: version_policy: usher serves the latest version only",
                              p->label, p->line);
        if ((rc = pb_next(p)) < 0)
            return rc;
        return pb_message(p, path, depth + 1, close);
    }
    if (!colon && !is_punct(p, '['))
        return pb_error(p, "field '%s': expected ':' or '{'", path);
    if (is_punct(p, '[')) { /* a list; "name [ {...} ]" may omit the ':' */
        if ((rc = pb_list(p, path)) < 0 || (rc = pb_next(p)) < 0)
            return rc;
        while (!is_punct(p, ']')) {
            if (is_punct(p, '{')) {
                if ((rc = pb_next(p)) < 0 || (rc = pb_message(p, path, depth + 1, '}')) < 0)
                    return rc;
            } else if (p->kind == T_NUM || p->kind == T_STR || p->kind == T_IDENT) {
                if ((rc = pb_scalar(p, path)) < 0 || (rc = pb_next(p)) < 0)
                    return rc;
            } else {
                return pb_error(p, "field '%s': a list of values expected", path);
            }
            if (is_punct(p, ',') && (rc = pb_next(p)) < 0)
                return rc;
            else if (!is_punct(p, ']') && !is_punct(p, '{') && p->kind == T_PUNCT)
                return pb_error(p, "field '%s': ',' or ']' expected", path);
            if (p->kind == T_END)
                return pb_error(p, "field '%s': unterminated list", path);
        }
        return pb_next(p);
    }
    if (p->kind != T_NUM && p->kind != T_STR && p->kind != T_IDENT)
        return pb_error(p, "field '%s': a value expected", path);
    if ((rc = pb_scalar(p, path)) < 0)
        return rc;
    return pb_next(p);
}

static int pb_message(pb *p, const char *path, int depth, char close)
{
    if (depth > PB_MAX_DEPTH)
        return pb_error(p, "messages nested more than %d deep", PB_MAX_DEPTH);
    int rc = pb_open(p, path);
    if (rc < 0)
        return rc;
    for (;;) {
        if (p->kind == T_END) {
            if (close)
                return pb_error(p, "%s", "a message is not closed");
            return USHER_OK;
        }
        if (close && is_punct(p, close)) {
            if ((rc = pb_close(p, path)) < 0)
                return rc;
            return pb_next(p);
        }
        if (p->kind != T_IDENT)
            return pb_error(p, "%s", "a field name expected");
        char sub[256];
        int n = snprintf(sub, sizeof sub, "%s%s%.*s", path[0] ? path : "", path[0] ? "." : "",
                         (int)p->len, p->tok);
        if (n < 0 || (size_t)n >= sizeof sub)
            return pb_error(p, "%s", "field path too long");
        if ((rc = pb_next(p)) < 0 || (rc = pb_field(p, sub, depth)) < 0)
            return rc;
        if ((is_punct(p, ',') || is_punct(p, ';')) && (rc = pb_next(p)) < 0)
            return rc;
    }
}

int repo_parse_config(const char *text, size_t len, const char *label, repo_model *m,
                      usher_error *err)
{
    pb p = {.s = text, .end = text + len, .label = label, .line = 1, .m = m, .err = err};
    int rc = pb_next(&p);
    if (rc < 0 || (rc = pb_message(&p, "", 0, 0)) < 0)
        return rc;
    /* what depends on fields in any order */
    for (int i = 1; i < m->n_preferred; i++) /* insertion sort: at most 8 */
        for (int j = i; j > 0 && m->preferred_batch[j - 1] > m->preferred_batch[j]; j--) {
            int t = m->preferred_batch[j];
            m->preferred_batch[j] = m->preferred_batch[j - 1];
            m->preferred_batch[j - 1] = t;
        }
    if (m->max_batch_size > 0) {
        if (m->n_preferred > 0 && m->preferred_batch[m->n_preferred - 1] > m->max_batch_size)
            return pb_error_at(&p, p.pref_line,
                               "dynamic_batching.preferred_batch_size %d is over max_batch_size "
                               "%lld",
                               m->preferred_batch[m->n_preferred - 1],
                               (long long)m->max_batch_size);
        for (size_t i = 0; i < m->n_inputs; i++)
            if (m->inputs[i].rank >= US_TENSOR_MAX_RANK)
                return pb_error_at(&p, p.in_line[i],
                                   "input '%s': %d dims and the batch dim are more than %d",
                                   m->inputs[i].name, m->inputs[i].rank, US_TENSOR_MAX_RANK);
    }
    return USHER_OK;
}

/* ---- a load's "config" parameter: Triton's JSON model configuration ----------------- */
/*
 * Triton's repository extension lets a load carry the model's configuration as JSON
 * (protobuf's JSON mapping of ModelConfig) instead of the directory's config.pbtxt. It is
 * rewritten here as config.pbtxt text, field by field, and read by repo_parse_config, so
 * that both forms get the same checks and meaning. Only the fields usher reads (repo.h) are
 * rewritten; the others are skipped, as config.pbtxt's are. JSON types are checked here:
 * integers as numbers or decimal strings (the mapping writes int64 and uint64 as strings),
 * enums (data_type, kind) as strings of capitals, digits and '_', strings as strings of
 * printable text. Every error names the field by its path ("input[1].dims[0]").
 */
#define CONFIG_PARAM_LABEL "parameters.config"

typedef struct jcfg {
    const us_jsonr_doc *d;
    us_buf *out;
    usher_error *err;
} jcfg;

__attribute__((format(printf, 2, 3))) static int jcfg_error(jcfg *c, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return us_err_set(c->err, USHER_ERR_PARSE, CONFIG_PARAM_LABEL ": %s", what);
}

/* key = an integer value (a JSON integer or a decimal string) */
static int jcfg_int(jcfg *c, const char *key, const char *path, us_jsonr_val v)
{
    us_jsonr_num n;
    long long x;
    if (us_jsonr_number(c->d, v, &n)) {
        if (!n.integer || !n.fits_i64)
            return jcfg_error(c, "field '%s': expected an integer", path);
        x = n.i;
    } else if (us_jsonr_type_of(c->d, v) == US_JSONR_STRING) {
        char b[24], *end;
        size_t l = us_jsonr_str_copy(c->d, v, b, sizeof b);
        errno = 0;
        x = l && l < sizeof b ? strtoll(b, &end, 10) : 0;
        if (!l || l >= sizeof b || *end || errno || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')))
            return jcfg_error(c, "field '%s': expected an integer (a number or a decimal "
                                 "string)", path);
    } else {
        return jcfg_error(c, "field '%s': expected an integer, not %s", path,
                          us_jsonr_type_name(us_jsonr_type_of(c->d, v)));
    }
    us_buf_printf(c->out, "%s: %lld\n", key, x);
    return USHER_OK;
}

/* key = a string value (quoted) or, enum, an enum name (bare) */
static int jcfg_str(jcfg *c, const char *key, const char *path, us_jsonr_val v, bool enumv)
{
    char b[256];
    if (us_jsonr_type_of(c->d, v) != US_JSONR_STRING)
        return jcfg_error(c, "field '%s': expected a string, not %s", path,
                          us_jsonr_type_name(us_jsonr_type_of(c->d, v)));
    size_t l = us_jsonr_str_copy(c->d, v, b, sizeof b);
    if (l == 0 || l >= sizeof b)
        return jcfg_error(c, "field '%s': 1 to %zu bytes", path, sizeof b - 1);
    for (size_t i = 0; i < l; i++) {
        unsigned char ch = (unsigned char)b[i];
        bool ok = enumv ? (ch >= 'A' && ch <= 'Z') || ch == '_' || (i && ch >= '0' && ch <= '9')
                        : ch >= 0x20 && ch != 0x7f;
        if (!ok)
            return jcfg_error(c, "field '%s': %s", path,
                              enumv ? "expected a name such as TYPE_FP32 or KIND_CPU"
                                    : "control characters are not allowed");
    }
    if (enumv) {
        us_buf_printf(c->out, "%s: %s\n", key, b);
        return USHER_OK;
    }
    us_buf_printf(c->out, "%s: \"", key);
    for (size_t i = 0; i < l; i++) {
        if (b[i] == '"' || b[i] == '\\')
            us_buf_putc(c->out, '\\');
        us_buf_putc(c->out, b[i]);
    }
    us_buf_puts(c->out, "\"\n");
    return USHER_OK;
}

static int jcfg_type(jcfg *c, const char *path, us_jsonr_val v, us_jsonr_type want)
{
    us_jsonr_type t = us_jsonr_type_of(c->d, v);
    if (t == want)
        return USHER_OK;
    return jcfg_error(c, "field '%s': expected %s, not %s", path, us_jsonr_type_name(want),
                      us_jsonr_type_name(t));
}

/* key: [ integers ] */
static int jcfg_int_list(jcfg *c, const char *key, const char *path, us_jsonr_val v)
{
    int rc = jcfg_type(c, path, v, US_JSONR_ARRAY);
    if (rc < 0)
        return rc;
    size_t k = 0;
    for (us_jsonr_val e = us_jsonr_first(c->d, v); e != US_JSONR_NONE;
         e = us_jsonr_next(c->d, e), k++) {
        char p[160];
        snprintf(p, sizeof p, "%.100s[%zu]", path, k);
        if ((rc = jcfg_int(c, key, p, e)) < 0)
            return rc;
    }
    if (k == 0) /* "dims: []": rank 0, as config.pbtxt writes it */
        us_buf_printf(c->out, "%s: []\n", key);
    return USHER_OK;
}

/* each member of object v named in keys[] (kinds: 'i' integer, 's' string, 'e' enum, 'l'
 * list of integers) rewritten; the others skipped */
static int jcfg_fields(jcfg *c, const char *path, us_jsonr_val v, const char *const *keys,
                       const char *kinds)
{
    int rc = jcfg_type(c, path, v, US_JSONR_OBJECT);
    if (rc < 0)
        return rc;
    for (size_t i = 0; keys[i]; i++) {
        us_jsonr_val x = us_jsonr_get(c->d, v, keys[i]);
        if (x == US_JSONR_NONE)
            continue;
        char p[160];
        snprintf(p, sizeof p, "%.100s%s%.40s", path, path[0] ? "." : "", keys[i]);
        switch (kinds[i]) {
        case 'i': rc = jcfg_int(c, keys[i], p, x); break;
        case 's': rc = jcfg_str(c, keys[i], p, x, false); break;
        case 'e': rc = jcfg_str(c, keys[i], p, x, true); break;
        default: rc = jcfg_int_list(c, keys[i], p, x); break;
        }
        if (rc < 0)
            return rc;
    }
    return USHER_OK;
}

/* key [ {...}, ... ]: each element an object whose fields keys[] are rewritten */
static int jcfg_msgs(jcfg *c, const char *key, us_jsonr_val v, const char *const *keys,
                     const char *kinds)
{
    int rc = jcfg_type(c, key, v, US_JSONR_ARRAY);
    if (rc < 0)
        return rc;
    size_t k = 0;
    for (us_jsonr_val e = us_jsonr_first(c->d, v); e != US_JSONR_NONE;
         e = us_jsonr_next(c->d, e), k++) {
        char p[160];
        snprintf(p, sizeof p, "%.100s[%zu]", key, k);
        us_buf_printf(c->out, "%s {\n", key);
        if ((rc = jcfg_fields(c, p, e, keys, kinds)) < 0)
            return rc;
        us_buf_puts(c->out, "}\n");
    }
    return USHER_OK;
}

int repo_config_from_json(const char *json, size_t len, char **out, size_t *out_len,
                          usher_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (len > REPO_CONFIG_JSON_MAX)
        return us_err_set(err, USHER_ERR_LIMIT, CONFIG_PARAM_LABEL ": %zu bytes, over %u",
                          len, REPO_CONFIG_JSON_MAX);
    us_jsonr_limits lim = us_jsonr_default_limits();
    lim.max_len = REPO_CONFIG_JSON_MAX;
    lim.max_depth = PB_MAX_DEPTH;
    us_jsonr_doc *d = NULL;
    usher_error e;
    if (us_jsonr_parse(json, len, &lim, &d, NULL, &e) < 0)
        return us_err_set(err, e.code == USHER_ERR_NOMEM ? USHER_ERR_NOMEM : USHER_ERR_PARSE,
                          CONFIG_PARAM_LABEL ": not JSON: %s", e.msg);
    us_buf b;
    us_buf_init(&b, 2 * (size_t)REPO_CONFIG_JSON_MAX);
    jcfg c = {.d = d, .out = &b, .err = err};
    us_jsonr_val root = us_jsonr_root(d), v;
    us_jsonr_type rt = us_jsonr_type_of(d, root);
    if (rt != US_JSONR_OBJECT) {
        us_jsonr_free(d);
        us_buf_free(&b);
        return jcfg_error(&c, "expected a JSON object (Triton's model configuration), not %s",
                          us_jsonr_type_name(rt));
    }
    static const char *const top[] = {"name", "platform", "backend", "max_batch_size",
                                      "default_model_filename", NULL};
    static const char *const in[] = {"name", "data_type", "dims", NULL};
    static const char *const ig[] = {"count", "kind", "gpus", NULL};
    static const char *const db[] = {"preferred_batch_size", "max_queue_delay_microseconds",
                                     NULL};
    int rc = jcfg_fields(&c, "", root, top, "sssis");
    if (rc == USHER_OK && (v = us_jsonr_get(d, root, "input")) != US_JSONR_NONE)
        rc = jcfg_msgs(&c, "input", v, in, "sel");
    if (rc == USHER_OK && (v = us_jsonr_get(d, root, "instance_group")) != US_JSONR_NONE)
        rc = jcfg_msgs(&c, "instance_group", v, ig, "iel");
    if (rc == USHER_OK && (v = us_jsonr_get(d, root, "dynamic_batching")) != US_JSONR_NONE) {
        us_buf_puts(&b, "dynamic_batching {\n");
        rc = jcfg_fields(&c, "dynamic_batching", v, db, "li");
        us_buf_puts(&b, "}\n");
    }
    if (rc == USHER_OK && (v = us_jsonr_get(d, root, "version_policy")) != US_JSONR_NONE) {
        /* latest { num_versions }, or all / specific: config.pbtxt's refusal */
        rc = jcfg_type(&c, "version_policy", v, US_JSONR_OBJECT);
        us_jsonr_val l = us_jsonr_get(d, v, "latest");
        if (rc == USHER_OK && (us_jsonr_get(d, v, "all") != US_JSONR_NONE ||
                               us_jsonr_get(d, v, "specific") != US_JSONR_NONE))
            us_buf_puts(&b, "version_policy { all {} }\n");
        else if (rc == USHER_OK && l != US_JSONR_NONE) {
            static const char *const lv[] = {"num_versions", NULL};
            us_buf_puts(&b, "version_policy { latest {\n");
            rc = jcfg_fields(&c, "version_policy.latest", l, lv, "i");
            us_buf_puts(&b, "} }\n");
        }
    }
    us_jsonr_free(d);
    if (rc == USHER_OK && !us_buf_ok(&b))
        rc = us_err_set(err, USHER_ERR_NOMEM, CONFIG_PARAM_LABEL ": out of memory");
    if (rc < 0) {
        us_buf_free(&b);
        return rc;
    }
    if (b.len == 0) { /* "{}": an empty configuration */
        *out = us_calloc(1, 1);
        if (!*out)
            return us_err_set(err, USHER_ERR_NOMEM, CONFIG_PARAM_LABEL ": out of memory");
        return USHER_OK;
    }
    *out = b.data; /* the buffer's memory is the caller's now */
    *out_len = b.len;
    return USHER_OK;
}

/* ---- usher.yaml -------------------------------------------------------------------- */
/* the index of the input of that name in m->inputs; m->n_inputs if none */
static size_t input_index(const repo_model *m, const char *name)
{
    size_t i = 0;
    while (i < m->n_inputs && strcmp(m->inputs[i].name, name) != 0)
        i++;
    return i;
}

/* an item of a max_dims list: a plain decimal integer, 0 to 2^40 */
static int max_dim_item(const us_yaml_doc *d, const us_yaml_node *n, const char *path,
                        int64_t *out, usher_error *err)
{
    const char *s = us_yaml_node_kind(n) == US_YAML_SCALAR ? us_yaml_str(n) : NULL;
    size_t len = s ? strlen(s) : 0;
    bool ok = s && us_yaml_is_plain(n) && len > 0 && len <= 14 && (s[0] != '0' || len == 1);
    int64_t v = 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (s[i] - '0');
    }
    if (!ok || v > DIM_MAX) {
        bool show = s && len <= 32 && input_name_ok(s, len);
        return us_yaml_error(d, n, err, USHER_ERR_PARSE,
                             "field '%s': expected an integer from 0 (unbounded) to 2^40%s%s%s",
                             path, show ? ", found '" : "", show ? s : "", show ? "'" : "");
    }
    *out = v;
    return USHER_OK;
}

/*
 * max_dims: { NAME: [D, ...], ... }: per input, the largest each dim may be,
 * indexed as config.pbtxt's dims; stored into m->inputs (an input config.pbtxt
 * does not name is added with rank -1).
 */
static int read_max_dims(const us_yaml_doc *d, const us_yaml_node *md, repo_model *m,
                         usher_error *err)
{
    for (size_t i = 0; i < us_yaml_len(md); i++) {
        const char *name = us_yaml_key_at(md, i);
        const us_yaml_node *kn = us_yaml_key_node_at(md, i), *v = us_yaml_value_at(md, i);
        if (!input_name_ok(name, strlen(name)))
            return us_yaml_error(d, kn, err, USHER_ERR_PARSE,
                                 "field 'max_dims': an input name is 1 to %d bytes of "
                                 "printable ASCII",
                                 US_TENSOR_NAME_MAX - 1);
        char path[US_TENSOR_NAME_MAX + 32];
        snprintf(path, sizeof path, "max_dims.%s", name);
        size_t n = us_yaml_len(v);
        if (us_yaml_node_kind(v) != US_YAML_SEQ || n == 0 || n > US_TENSOR_MAX_RANK)
            return us_yaml_error(d, v, err, USHER_ERR_PARSE,
                                 "field '%s': expected a list of 1 to %d integers, e.g. "
                                 "[480000]",
                                 path, US_TENSOR_MAX_RANK);
        int64_t max[US_TENSOR_MAX_RANK];
        for (size_t j = 0; j < n; j++) {
            char ip[sizeof path + 16];
            snprintf(ip, sizeof ip, "%s[%zu]", path, j);
            int rc = max_dim_item(d, us_yaml_item(v, j), ip, &max[j], err);
            if (rc < 0)
                return rc;
        }
        size_t k = input_index(m, name);
        repo_input *in = k < m->n_inputs ? &m->inputs[k] : NULL;
        if (in && in->rank >= 0 && (size_t)in->rank != n)
            return us_yaml_error(d, v, err, USHER_ERR_PARSE,
                                 "field '%s': %zu dims, config.pbtxt gives input '%s' %d%s",
                                 path, n, name, in->rank,
                                 m->max_batch_size > 0 ? " (without the batch dim)" : "");
        for (size_t j = 0; in && in->rank >= 0 && j < n; j++)
            if (max[j] > 0 && in->dim[j] >= 0 && max[j] < in->dim[j])
                return us_yaml_error(d, us_yaml_item(v, j), err, USHER_ERR_PARSE,
                                     "field '%s[%zu]': %lld is below the dim config.pbtxt "
                                     "fixes (%lld)",
                                     path, j, (long long)max[j], (long long)in->dim[j]);
        if (!in) {
            if (m->n_inputs >= REPO_MAX_IO)
                return us_yaml_error(d, kn, err, USHER_ERR_PARSE,
                                     "field 'max_dims': more than %d inputs", REPO_MAX_IO);
            in = &m->inputs[m->n_inputs++];
            memset(in, 0, sizeof *in);
            in->dtype = US_DT_INVALID;
            in->rank = -1;
            snprintf(in->name, sizeof in->name, "%s", name);
        }
        in->max_rank = (int)n;
        memcpy(in->max, max, n * sizeof max[0]);
    }
    return USHER_OK;
}

static int read_usher_yaml(const char *path, const char *label, repo_model *m, usher_error *err)
{
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = us_yaml_default_limits();
    lim.max_bytes = 64 * 1024;
    int rc = us_yaml_load(path, &lim, &d, err);
    if (rc < 0)
        return rc;
    static const char *const keys[] = {"slo_ms", "rate", "priority", "replicas", "threads",
                                       "max_batch", "sample", "max_dims", "merge_group",
                                       "merge_shape", "merge_value", "merge_tolerance",
                                       "merge_kind", NULL};
    const char *sample = NULL, *group = NULL, *mshape = NULL, *mvalue = NULL, *mkind = NULL;
    const us_yaml_node *root = us_yaml_root(d), *md = NULL;
    int64_t prio = 0, reps = 0, thr = 0, mb = 0;
    if (root && us_yaml_node_kind(root) != US_YAML_MAP)
        rc = us_yaml_error(d, root, err, USHER_ERR_PARSE, "expected a map");
    else if ((rc = us_yaml_check_keys(d, root, NULL, keys, err)) == USHER_OK &&
             (rc = us_yaml_get_f64(d, root, "slo_ms", NULL, 1e-3, 3.6e6, &m->slo_ms, 0, false,
                                   err)) == USHER_OK &&
             (rc = us_yaml_get_f64(d, root, "rate", NULL, 0, 1e9, &m->rate, 0, false, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_i64(d, root, "priority", NULL, 0, 1000, &prio, 0, false, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_i64(d, root, "replicas", NULL, 1, 256, &reps, 0, false, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_i64(d, root, "threads", NULL, 1, 1024, &thr, 0, false, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_i64(d, root, "max_batch", NULL, 1, 4096, &mb, 0, false, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_str(d, root, "sample", NULL, &sample, NULL, err)) == USHER_OK &&
             (rc = us_yaml_get_str(d, root, "merge_group", NULL, &group, NULL, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_str(d, root, "merge_shape", NULL, &mshape, NULL, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_str(d, root, "merge_value", NULL, &mvalue, NULL, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_f64(d, root, "merge_tolerance", NULL, 0, 1, &m->merge_tolerance,
                                   0, false, err)) == USHER_OK &&
             (rc = us_yaml_get_str(d, root, "merge_kind", NULL, &mkind, NULL, err)) ==
                 USHER_OK &&
             (rc = us_yaml_get_node(d, root, "max_dims", NULL, US_YAML_MAP, false, &md, err)) ==
                 USHER_OK &&
             (rc = read_max_dims(d, md, m, err)) == USHER_OK) {
        if (sample && !repo_name_ok(sample, strlen(sample)))
            rc = us_yaml_error(d, us_yaml_get(root, "sample"), err, USHER_ERR_PARSE,
                               "field 'sample': a file name in the model's directory");
        if (rc == USHER_OK && group && !repo_name_ok(group, strlen(group)))
            rc = us_yaml_error(d, us_yaml_get(root, "merge_group"), err, USHER_ERR_PARSE,
                               "field 'merge_group': 1 to 127 letters, digits, '-', '_', '.'");
        if (rc == USHER_OK && ((mshape && strlen(mshape) >= sizeof m->merge_shape) ||
                               (mvalue && strlen(mvalue) >= sizeof m->merge_value)))
            rc = us_yaml_error(d, us_yaml_get(root, mshape && strlen(mshape) >=
                                                        sizeof m->merge_shape ? "merge_shape"
                                                                              : "merge_value"),
                               err, USHER_ERR_PARSE, "field '%s': at most %zu bytes",
                               mshape && strlen(mshape) >= sizeof m->merge_shape ? "merge_shape"
                                                                                 : "merge_value",
                               sizeof m->merge_shape - 1);
        m->merge_kind = -1;
        if (rc == USHER_OK && mkind) {
            static const char *const kinds[] = {"shared", "stacked", "side-by-side"};
            for (int k = 0; k < 3; k++)
                if (strcmp(mkind, kinds[k]) == 0)
                    m->merge_kind = k;
            if (m->merge_kind < 0)
                rc = us_yaml_error(d, us_yaml_get(root, "merge_kind"), err, USHER_ERR_PARSE,
                                   "field 'merge_kind': shared, stacked or side-by-side");
        }
        if (rc == USHER_OK) {
            snprintf(m->merge_group, sizeof m->merge_group, "%s", group ? group : "");
            snprintf(m->merge_shape, sizeof m->merge_shape, "%s", mshape ? mshape : "");
            snprintf(m->merge_value, sizeof m->merge_value, "%s", mvalue ? mvalue : "");
        }
        m->priority = (int)prio;
        m->replicas = (int)reps;
        m->threads = (int)thr;
        m->max_batch = (int)mb;
        if (sample && rc == USHER_OK) {
            const char *slash = strrchr(path, '/');
            int dl = slash ? (int)(slash - path) : 0;
            if (snprintf(m->sample, sizeof m->sample, "%.*s/%s", dl, path, sample) >=
                (int)sizeof m->sample)
                m->sample[0] = 0;
        }
    }
    us_yaml_free(d);
    (void)label;
    return rc;
}

int repo_reread_objectives(const char *dir, repo_model *m, usher_error *err)
{
    char path[4200], label[REPO_NAME_MAX + 16];
    if (snprintf(path, sizeof path, "%s/%s/usher.yaml", dir, m->name) >= (int)sizeof path)
        return us_err_set(err, USHER_ERR_LIMIT, "%s/usher.yaml: path too long", m->name);
    snprintf(label, sizeof label, "%s/usher.yaml", m->name);
    repo_model *t = us_malloc(sizeof *t); /* 35 KiB: not on the stack */
    if (!t)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    *t = *m;
    t->slo_ms = t->rate = 0;
    t->priority = t->replicas = t->threads = t->max_batch = 0;
    /* max_dims as if never read: the inputs only it named go, the others lose their bounds */
    size_t kept = 0;
    for (size_t i = 0; i < t->n_inputs; i++) {
        repo_input *in = &t->inputs[i];
        if (in->rank < 0 && in->dtype == US_DT_INVALID)
            continue;
        in->max_rank = 0;
        memset(in->max, 0, sizeof in->max);
        if (kept != i)
            t->inputs[kept] = *in;
        kept++;
    }
    t->n_inputs = kept;
    struct stat st;
    int rc = USHER_OK;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        rc = read_usher_yaml(path, label, t, err);
        if (rc < 0) {
            us_free(t);
            const char *msg = strstr(err->msg, "usher.yaml");
            char keep[USHER_ERROR_MAX];
            snprintf(keep, sizeof keep, "%s", msg ? msg : err->msg);
            return us_err_set(err, rc, "%s/%s", m->name, keep);
        }
    }
    m->slo_ms = t->slo_ms;
    m->rate = t->rate;
    m->priority = t->priority;
    m->replicas = t->replicas;
    m->threads = t->threads;
    m->max_batch = t->max_batch;
    memcpy(m->inputs, t->inputs, t->n_inputs * sizeof t->inputs[0]);
    m->n_inputs = t->n_inputs;
    us_free(t);
    return USHER_OK;
}

/* ---- scanning ---------------------------------------------------------------------- */
static bool all_digits(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* a regular file (not a link) at dirfd/name */
static bool regular_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int read_small(int dirfd, const char *name, char **text, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? USHER_ERR_NOT_FOUND : USHER_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > CONFIG_MAX_BYTES) {
        close(fd);
        return USHER_ERR_LIMIT;
    }
    char *b = us_malloc((size_t)st.st_size + 1);
    if (!b) {
        close(fd);
        return USHER_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    b[got] = 0;
    *text = b;
    *len = got;
    return USHER_OK;
}

/* cfg: config.pbtxt text to read instead of the directory's (a load's "config"
 * parameter, from repo_config_from_json); NULL: the directory's */
static void scan_model(int repofd, const char *repodir, repo_model *m, const char *cfg,
                       size_t cfg_len)
{
    usher_error e;
    snprintf(m->file, sizeof m->file, "model.onnx");
    m->max_batch_size = -1;
    m->max_queue_delay_us = -1;
    int mfd = openat(repofd, m->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mfd < 0) {
        snprintf(m->error, sizeof m->error, "not a directory");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = cfg ? USHER_ERR_NOT_FOUND : read_small(mfd, "config.pbtxt", &text, &len);
    if (cfg) {
        m->has_config = true;
        if (repo_parse_config(cfg, cfg_len, CONFIG_PARAM_LABEL, m, &e) < 0) {
            /* the line is one of the rewritten text's: the message names the field */
            const char *what = strstr(e.msg, ": ");
            snprintf(m->error, sizeof m->error, "%s%s", CONFIG_PARAM_LABEL, what ? what : "");
        }
    } else if (rc == USHER_OK) {
        m->has_config = true;
        char label[REPO_NAME_MAX + 32];
        snprintf(label, sizeof label, "%s/config.pbtxt", m->name);
        if (repo_parse_config(text, len, label, m, &e) < 0)
            snprintf(m->error, sizeof m->error, "%s", e.msg);
        us_free(text);
    } else if (rc != USHER_ERR_NOT_FOUND) {
        snprintf(m->error, sizeof m->error, "%s/config.pbtxt: unreadable or over 1 MiB", m->name);
    }
    if (!m->error[0] && regular_at(mfd, "usher.yaml")) {
        char path[8192], label[REPO_NAME_MAX + 32];
        if (snprintf(path, sizeof path, "%s/%s/usher.yaml", repodir, m->name) >= (int)sizeof path)
            path[0] = 0;
        snprintf(label, sizeof label, "%s/usher.yaml", m->name);
        if (read_usher_yaml(path, label, m, &e) < 0) {
            /* the YAML reader names the file by its path: keep only what follows it */
            const char *msg = strstr(e.msg, "usher.yaml");
            snprintf(m->error, sizeof m->error, "%s/%s", m->name, msg ? msg : "usher.yaml: invalid");
        }
    }
    /* the highest numeric version holding the model file */
    DIR *d = fdopendir(dup(mfd));
    int64_t best = -1;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!all_digits(de->d_name))
                continue;
            int64_t v = strtoll(de->d_name, NULL, 10);
            int vfd = openat(mfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (vfd < 0)
                continue;
            if (regular_at(vfd, m->file) && v > best)
                best = v;
            close(vfd);
        }
        closedir(d);
    }
    close(mfd);
    if (best < 0) {
        if (!m->error[0])
            snprintf(m->error, sizeof m->error, "no version directory holds %s", m->file);
        return;
    }
    m->version = best;
    int n = snprintf(m->path, sizeof m->path, "%s/%s/%lld/%s", repodir, m->name, (long long)best,
                     m->file);
    if (n < 0 || (size_t)n >= sizeof m->path)
        snprintf(m->error, sizeof m->error, "the model's path is longer than %zu bytes",
                 sizeof m->path - 1);
}

int repo_scan_one(const char *dir, const char *name, repo_model *out, usher_error *err)
{
    return repo_scan_one_config(dir, name, NULL, 0, out, err);
}

int repo_scan_one_config(const char *dir, const char *name, const char *config_json,
                         size_t config_len, repo_model *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    size_t nl = strlen(name);
    if (!repo_name_ok(name, nl))
        return us_err_set(err, USHER_ERR_INVALID, "not a valid model name (letters, digits, "
                                                  "'-', '_', '.')");
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return us_err_set(err, USHER_ERR_NOT_FOUND, "model repository '%s': %s", dir,
                          strerror(errno));
    int repofd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (repofd < 0)
        return us_err_set(err, USHER_ERR_IO, "model repository '%s': %s", dir, strerror(errno));
    memcpy(out->name, name, nl + 1);
    char *cfg = NULL;
    size_t cfg_len = 0;
    if (config_json) {
        usher_error e;
        if (repo_config_from_json(config_json, config_len, &cfg, &cfg_len, &e) < 0) {
            snprintf(out->error, sizeof out->error, "%s", e.msg);
            close(repofd);
            return USHER_OK;
        }
    }
    scan_model(repofd, real, out, cfg, cfg_len);
    us_free(cfg);
    close(repofd);
    return USHER_OK;
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp(((const repo_model *)a)->name, ((const repo_model *)b)->name);
}

int repo_scan(const char *dir, repo *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return us_err_set(err, USHER_ERR_NOT_FOUND, "model repository '%s': %s", dir,
                          strerror(errno));
    int repofd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (repofd < 0)
        return us_err_set(err, USHER_ERR_IO, "model repository '%s': %s", dir, strerror(errno));
    DIR *d = fdopendir(dup(repofd));
    if (!d) {
        close(repofd);
        return us_err_set(err, USHER_ERR_IO, "model repository '%s': %s", dir, strerror(errno));
    }
    out->m = us_calloc(REPO_MAX_MODELS, sizeof *out->m);
    int rc = USHER_OK;
    if (!out->m)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    struct dirent *de;
    while (rc == USHER_OK && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue; /* hidden entries and . / .. are not models */
        if (out->n == REPO_MAX_MODELS) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "model repository '%s': more than %d models",
                            dir, REPO_MAX_MODELS);
            break;
        }
        repo_model *m = &out->m[out->n++];
        size_t nl = strlen(de->d_name);
        if (!repo_name_ok(de->d_name, nl)) {
            snprintf(m->name, sizeof m->name, "%.*s", (int)(nl < 64 ? nl : 64), de->d_name);
            for (char *c = m->name; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                    *c = '?';
            snprintf(m->error, sizeof m->error,
                     "not a valid model name (letters, digits, '-', '_', '.')");
            continue;
        }
        memcpy(m->name, de->d_name, nl + 1);
        scan_model(repofd, real, m, NULL, 0);
    }
    closedir(d);
    close(repofd);
    if (rc < 0) {
        repo_free(out);
        return rc;
    }
    qsort(out->m, out->n, sizeof *out->m, cmp_model);
    return USHER_OK;
}

void repo_free(repo *r)
{
    us_free(r->m);
    r->m = NULL;
    r->n = 0;
}

int repo_instances(const repo_model *m, int gpus, bool *clamped)
{
    if (clamped)
        *clamped = false;
    if (m->instance_groups <= 0)
        return 0;
    int64_t n = (int64_t)m->instances + (int64_t)m->instances_per_gpu * (gpus > 1 ? gpus : 1);
    if (n > REPO_MAX_INSTANCES) {
        if (clamped)
            *clamped = true;
        n = REPO_MAX_INSTANCES;
    }
    return n < 1 ? 1 : (int)n;
}

const repo_input *repo_find_input(const repo_model *m, const char *name)
{
    size_t k = input_index(m, name);
    return k < m->n_inputs ? &m->inputs[k] : NULL;
}

bool repo_batch_dim(const repo_model *m, bool batchable)
{
    return m->max_batch_size > 0 || (m->max_batch_size < 0 && batchable);
}

int repo_check_input(const repo_model *m, const us_tensor *t, bool batch_dim, char *msg,
                     size_t cap)
{
    const repo_input *in = repo_find_input(m, t->name);
    if (!in)
        return 0;
    int off = batch_dim ? 1 : 0;
    if (in->dtype != US_DT_INVALID && t->dtype != in->dtype) {
        snprintf(msg, cap, "input '%s' is %s, config.pbtxt gives %s", in->name,
                 us_dtype_name(t->dtype), us_dtype_name(in->dtype));
        return -1;
    }
    if (in->rank >= 0) {
        if (t->shape.rank != in->rank + off) {
            snprintf(msg, cap, "input '%s' has rank %d, config.pbtxt gives %d dims%s", in->name,
                     t->shape.rank, in->rank, off ? " (plus the batch dim)" : "");
            return -1;
        }
        for (int i = 0; i < in->rank; i++)
            if (in->dim[i] >= 0 && t->shape.dim[i + off] != in->dim[i]) {
                snprintf(msg, cap, "input '%s': dim %d is %lld, config.pbtxt fixes it at %lld",
                         in->name, i + off, (long long)t->shape.dim[i + off],
                         (long long)in->dim[i]);
                return -1;
            }
    }
    for (int i = 0; i < in->max_rank && i + off < t->shape.rank; i++)
        if (in->max[i] > 0 && t->shape.dim[i + off] > in->max[i]) {
            snprintf(msg, cap,
                     "input '%s': dim %d is %lld, the model's usher.yaml max_dims allows at "
                     "most %lld",
                     in->name, i + off, (long long)t->shape.dim[i + off], (long long)in->max[i]);
            return -1;
        }
    return 0;
}

const repo_model *repo_find(const repo *r, const char *name)
{
    /* linear: repo_scan sorts, but the server appends directories found later */
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->m[i].name, name) == 0)
            return &r->m[i];
    return NULL;
}

/* ---- watching (poll mode) ------------------------------------------------------------ */
#define FP_MAX_ENTRIES 4096 /* entries of one directory a fingerprint looks at */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* what a file's contents and identity show without reading it: its name (under its
 * version), size, inode, modification and change times */
static uint64_t file_print(int64_t version, const char *name, const struct stat *st)
{
    uint64_t h = 14695981039346656037ull;
    int64_t v[7] = {version, (int64_t)st->st_size, (int64_t)st->st_ino,
                    (int64_t)st->st_mtim.tv_sec, (int64_t)st->st_mtim.tv_nsec,
                    (int64_t)st->st_ctim.tv_sec, (int64_t)st->st_ctim.tv_nsec};
    h = fnv(h, v, sizeof v);
    return fnv(h, name, strlen(name));
}

/* the sum (order-free: readdir's order is not stable) of the prints of the regular files in
 * dirfd, and of those in its numeric subdirectories when version < 0 */
static uint64_t dir_print(int dirfd, int64_t version)
{
    DIR *d = fdopendir(dup(dirfd));
    if (!d)
        return 1;
    uint64_t sum = 0;
    struct dirent *de;
    for (int k = 0; k < FP_MAX_ENTRIES && (de = readdir(d)); k++) {
        if (de->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            sum += file_print(version, de->d_name, &st);
        } else if (version < 0 && S_ISDIR(st.st_mode) && all_digits(de->d_name)) {
            int vfd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (vfd < 0)
                continue;
            int64_t v = strtoll(de->d_name, NULL, 10);
            sum += dir_print(vfd, v) * 31 + (uint64_t)v;
            close(vfd);
        }
    }
    closedir(d);
    return sum;
}

uint64_t repo_fingerprint(const char *dir, const char *name)
{
    if (!repo_name_ok(name, strlen(name)))
        return 0;
    int repofd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (repofd < 0)
        return 0;
    int mfd = openat(repofd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(repofd);
    if (mfd < 0)
        return 0;
    uint64_t h = dir_print(mfd, -1);
    close(mfd);
    return h ? h : 1;
}

int repo_list(const char *dir, char (*names)[REPO_NAME_MAX], size_t cap, size_t *n,
              usher_error *err)
{
    *n = 0;
    int repofd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (repofd < 0)
        return us_err_set(err, USHER_ERR_IO, "model repository '%s': %s", dir, strerror(errno));
    DIR *d = fdopendir(repofd);
    if (!d) {
        int e = errno;
        close(repofd);
        return us_err_set(err, USHER_ERR_IO, "model repository '%s': %s", dir, strerror(e));
    }
    struct dirent *de;
    while (*n < cap && (de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        struct stat st;
        if (de->d_name[0] == '.' || !repo_name_ok(de->d_name, nl) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        memcpy(names[(*n)++], de->d_name, nl + 1);
    }
    closedir(d);
    return USHER_OK;
}
