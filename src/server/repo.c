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
#include "core/err.h"
#include "core/file.h"
#include "core/yaml.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define PB_MAX_DEPTH 16

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
} pb;

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

/* what usher reads, by the field's dotted path */
static int pb_scalar(pb *p, const char *path)
{
    repo_model *m = p->m;
    int64_t v;
    int rc = USHER_OK;
    if (strcmp(path, "name") == 0) {
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
    } else if (strcmp(path, "instance_group.count") == 0) {
        if ((rc = pb_int(p, path, 1, 1024, &v)) == USHER_OK)
            m->instances += (int)v;
    } else if (strcmp(path, "instance_group.kind") == 0) {
        if (p->kind != T_IDENT)
            return pb_error(p, "field '%s': expected KIND_CPU or KIND_GPU", path);
        m->kind_gpu |= p->len == 8 && memcmp(p->tok, "KIND_GPU", 8) == 0;
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
        if ((rc = pb_next(p)) < 0)
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
    int rc;
    for (;;) {
        if (p->kind == T_END) {
            if (close)
                return pb_error(p, "%s", "a message is not closed");
            return USHER_OK;
        }
        if (close && is_punct(p, close))
            return pb_next(p);
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
    if (rc < 0)
        return rc;
    return pb_message(&p, "", 0, 0);
}

/* ---- usher.yaml -------------------------------------------------------------------- */
static int read_usher_yaml(const char *path, const char *label, repo_model *m, usher_error *err)
{
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = us_yaml_default_limits();
    lim.max_bytes = 64 * 1024;
    int rc = us_yaml_load(path, &lim, &d, err);
    if (rc < 0)
        return rc;
    static const char *const keys[] = {"slo_ms", "rate", "priority", "replicas", "threads",
                                       "max_batch", "sample", NULL};
    const char *sample = NULL;
    const us_yaml_node *root = us_yaml_root(d);
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
             (rc = us_yaml_get_str(d, root, "sample", NULL, &sample, NULL, err)) == USHER_OK) {
        if (sample && !repo_name_ok(sample, strlen(sample)))
            rc = us_yaml_error(d, us_yaml_get(root, "sample"), err, USHER_ERR_PARSE,
                               "field 'sample': a file name in the model's directory");
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
    repo_model t = *m;
    t.slo_ms = t.rate = 0;
    t.priority = t.replicas = t.threads = t.max_batch = 0;
    struct stat st;
    int rc = USHER_OK;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        rc = read_usher_yaml(path, label, &t, err);
        if (rc < 0) {
            const char *msg = strstr(err->msg, "usher.yaml");
            char keep[USHER_ERROR_MAX];
            snprintf(keep, sizeof keep, "%s", msg ? msg : err->msg);
            return us_err_set(err, rc, "%s/%s", m->name, keep);
        }
    }
    m->slo_ms = t.slo_ms;
    m->rate = t.rate;
    m->priority = t.priority;
    m->replicas = t.replicas;
    m->threads = t.threads;
    m->max_batch = t.max_batch;
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

static void scan_model(int repofd, const char *repodir, repo_model *m)
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
    int rc = read_small(mfd, "config.pbtxt", &text, &len);
    if (rc == USHER_OK) {
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
        scan_model(repofd, real, m);
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

const repo_model *repo_find(const repo *r, const char *name)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->m[mid].name, name);
        if (c == 0)
            return &r->m[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
