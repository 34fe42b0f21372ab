/*
 * json.c - the bounded JSON reader (see json.h for the grammar and limits).
 *
 * The tape. Each word is a 2-bit tag and a 30-bit payload:
 *   SCALAR  the byte offset of a string's '"', a number's first character,
 *           or a literal's first letter (the type is read from that byte);
 *   ARR/OBJ the tape index of the matching END word (so a container is
 *           skipped in O(1));
 *   END     the byte offset of the container's opening bracket.
 * An object's children alternate key (a SCALAR string) and value. Offsets
 * and indexes both fit 30 bits because the input is shorter than 2^30 and
 * no value produces more tape words than it has bytes.
 *
 * Invariants after a successful parse: every SCALAR's text is valid by the
 * grammar (the accessors below decode it without bounds checks beyond the
 * closing quote or the number's last digit); every ARR/OBJ payload points
 * to its END; the tape holds exactly one root value.
 */
#include "core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#define TAG_SCALAR 0u
#define TAG_ARR 1u
#define TAG_OBJ 2u
#define TAG_END 3u
#define TAG(w) ((w) >> 30)
#define PAY(w) ((w)&0x3FFFFFFFu)
#define MKW(t, p) ((uint32_t)(t) << 30 | (uint32_t)(p))

#define BLK_SHIFT 16
#define BLK_WORDS ((uint32_t)1 << BLK_SHIFT) /* 256 KiB blocks */
#define BLK_MASK (BLK_WORDS - 1)
#define BLK0_MIN 256 /* block 0 starts at 1 KiB: small requests stay small */

/* enough significant digits for correct rounding of any decimal: the
 * longest exact halfway point between two doubles has 767 */
#define NUM_DIGITS 768

struct us_jsonr_doc {
    const unsigned char *text;
    size_t len;
    uint32_t **blk; /* blk[b] holds words [b << BLK_SHIFT, (b + 1) << BLK_SHIFT) */
    size_t n_blk, cap_blk;
    uint32_t blk0_cap; /* words allocated for block 0 (it grows while alone) */
    uint32_t n;        /* words used */
};

us_jsonr_limits us_jsonr_default_limits(void)
{
    us_jsonr_limits l = {US_JSONR_MAX_LEN, 100};
    return l;
}

static inline uint32_t word(const us_jsonr_doc *d, uint32_t i)
{
    return d->blk[i >> BLK_SHIFT][i & BLK_MASK];
}

static bool tape_push(us_jsonr_doc *d, uint32_t w)
{
    uint32_t i = d->n;
    size_t b = i >> BLK_SHIFT;
    uint32_t o = i & BLK_MASK;
    if (b == 0 && o == d->blk0_cap) {
        uint32_t cap = d->blk0_cap ? d->blk0_cap * 2 : BLK0_MIN;
        uint32_t *nb = us_realloc(d->blk[0], (size_t)cap * sizeof *nb);
        if (!nb)
            return false;
        d->blk[0] = nb;
        d->blk0_cap = cap;
    } else if (b > 0 && o == 0) {
        if (b == d->cap_blk) {
            size_t cap = d->cap_blk * 2;
            uint32_t **nt = us_realloc(d->blk, cap * sizeof *nt);
            if (!nt)
                return false;
            d->blk = nt;
            d->cap_blk = cap;
        }
        d->blk[b] = us_malloc((size_t)BLK_WORDS * sizeof(uint32_t));
        if (!d->blk[b])
            return false;
        d->n_blk = b + 1;
    }
    d->blk[b][o] = w;
    d->n++;
    return true;
}

static void tape_set(us_jsonr_doc *d, uint32_t i, uint32_t w) { d->blk[i >> BLK_SHIFT][i & BLK_MASK] = w; }

void us_jsonr_free(us_jsonr_doc *d)
{
    if (!d)
        return;
    for (size_t b = 0; b < d->n_blk; b++)
        us_free(d->blk[b]);
    us_free(d->blk);
    us_free(d);
}

size_t us_jsonr_tape_bytes(const us_jsonr_doc *d)
{
    if (!d)
        return 0;
    size_t words = d->n_blk > 1 ? d->n_blk * (size_t)BLK_WORDS : d->blk0_cap;
    return words * sizeof(uint32_t) + d->cap_blk * sizeof(uint32_t *) + sizeof *d;
}

/* ---- UTF-8 and strings ---------------------------------------------------- */

size_t us_jsonr_utf8_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = us_utf8_seq(s + i, n - i);
        if (!l)
            return i;
        i += l;
    }
    return n;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* the 4 hex digits at s[i..i+4) (n bytes in all), -1 if not */
static long hex4(const unsigned char *s, size_t i, size_t n)
{
    if (n < 4 || i > n - 4)
        return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static int utf8_put(unsigned char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A cursor over the decoded bytes of a string already known to be valid. */
typedef struct strcur {
    const unsigned char *s;
    size_t i;
    unsigned char pend[4];
    int np, ip;
} strcur;

static void cur_init(strcur *c, const unsigned char *text, size_t quote)
{
    c->s = text;
    c->i = quote + 1;
    c->np = c->ip = 0;
}

/* the next decoded byte, -1 at the closing quote */
static int cur_next(strcur *c)
{
    if (c->ip < c->np)
        return c->pend[c->ip++];
    unsigned char b = c->s[c->i];
    if (b == '"')
        return -1;
    if (b != '\\') {
        c->i++;
        return b;
    }
    unsigned char e = c->s[c->i + 1];
    c->i += 2;
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': {
        unsigned long cp = (unsigned long)hex4(c->s, c->i, c->i + 4);
        c->i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* validated: a \u low surrogate follows */
            unsigned long lo = (unsigned long)hex4(c->s, c->i + 2, c->i + 6);
            c->i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        c->np = utf8_put(c->pend, cp);
        c->ip = 1;
        return c->pend[0];
    }
    default: return e; /* '"', '\\', '/' */
    }
}

/* 64-bit FNV-1a with a final mix: the duplicate-key check sorts by it */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
static inline uint64_t fnv_byte(uint64_t h, unsigned char b) { return (h ^ b) * FNV_PRIME; }
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- numbers ---------------------------------------------------------------- */

static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/*
 * Decode the number token s[0..n) (known to match the grammar). Returns
 * whether the value is a finite double. The double is computed by strtod on
 * a canonical form "[-]DIGITSe[-]EXP" with no decimal point (so the locale
 * cannot matter) and at most NUM_DIGITS significant digits plus a sticky
 * '1' standing for any nonzero digits cut off (so the rounding is still
 * correct), which keeps the work and the buffer bounded for any token.
 */
/* After an 'e' or 'E' at s[i - 1]: an optional sign and digits, the value saturated far
 * beyond any double's range; returns the index past them (the syntax is the caller's). */
static size_t exp_read(const unsigned char *s, size_t i, size_t n, int64_t *ex)
{
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    int64_t v = 0;
    for (; i < n && is_digit(s[i]); i++)
        if (v < 1000000000)
            v = v * 10 + (s[i] - '0');
    *ex = neg ? -v : v;
    return i;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * One pass over a number with a fraction or an exponent whose significant
 * digits fit 19 decimal digits and 53 bits and whose decimal exponent is
 * within +-22 (most tensor data: "0.0757", "-1.5e-3"): Clinger's fast path,
 * correctly rounded with one IEEE operation. It reads from s while the
 * bytes form a number (at most n) and says how many it took in *used.
 * False for anything else (integers included), which num_decode's full
 * path takes.
 */
static bool num_fast(const unsigned char *s, size_t n, us_jsonr_num *o, size_t *used)
{
    size_t i = 0;
    bool neg = n && s[0] == '-';
    i += neg;
    uint64_t mant = 0;
    int sig = 0;
    int64_t e10 = 0;
    bool plain = true;
    for (; i < n && is_digit(s[i]); i++)
        if (mant || s[i] != '0') {
            if (++sig > 19)
                return false;
            mant = mant * 10 + (uint64_t)(s[i] - '0');
        }
    if (i < n && s[i] == '.') {
        plain = false;
        for (i++; i < n && is_digit(s[i]); i++) {
            e10--;
            if (mant || s[i] != '0') {
                if (++sig > 19)
                    return false;
                mant = mant * 10 + (uint64_t)(s[i] - '0');
            }
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        plain = false;
        int64_t ex;
        i = exp_read(s, i + 1, n, &ex);
        e10 += ex;
    }
    if (plain || mant > (1ull << 53) || e10 < -22 || e10 > 22)
        return false;
    *used = i;
    double d = (double)mant;
    d = e10 >= 0 ? d * pow10_exact[e10] : d / pow10_exact[-e10];
    memset(o, 0, sizeof *o);
    o->negative = neg;
    o->d = neg ? -d : d;
    return true;
}

static bool num_decode(const unsigned char *s, size_t n, us_jsonr_num *o)
{
    size_t used;
    if (num_fast(s, n, o, &used) && used == n)
        return true;
    memset(o, 0, sizeof *o);
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg)
        i++;
    size_t i0 = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t i1 = i, f0 = i, f1 = i;
    bool frac = false, expo = false;
    if (i < n && s[i] == '.') {
        frac = true;
        f0 = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        f1 = i;
    }
    int64_t ex = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        expo = true;
        i = exp_read(s, i + 1, n, &ex);
    }
    o->negative = neg;
    o->integer = !frac && !expo;
    if (o->integer) {
        uint64_t u = 0;
        bool ovf = false;
        for (size_t k = i0; k < i1 && !ovf; k++)
            ovf = __builtin_mul_overflow(u, 10, &u) ||
                  __builtin_add_overflow(u, (uint64_t)(s[k] - '0'), &u);
        if (!ovf) {
            if (!neg) {
                o->u = u;
                o->fits_u64 = true;
                if (u <= (uint64_t)INT64_MAX) {
                    o->i = (int64_t)u;
                    o->fits_i64 = true;
                }
                o->d = (double)u;
            } else {
                if (u <= (uint64_t)INT64_MAX) {
                    o->i = -(int64_t)u;
                    o->fits_i64 = true;
                } else if (u == (uint64_t)INT64_MAX + 1) {
                    o->i = INT64_MIN;
                    o->fits_i64 = true;
                }
                o->fits_u64 = u == 0; /* "-0" */
                o->d = -(double)u;
            }
            return true;
        }
    }
    char buf[NUM_DIGITS + 40];
    size_t m = 0, sig = 0;
    bool sticky = false;
    if (neg)
        buf[m++] = '-';
    size_t lead = m;
    for (int part = 0; part < 2; part++) {
        size_t a = part ? f0 : i0, b = part ? f1 : i1;
        for (size_t k = a; k < b; k++) {
            if (sig == 0 && s[k] == '0')
                continue;
            sig++;
            if (m - lead < NUM_DIGITS)
                buf[m++] = (char)s[k];
            else if (s[k] != '0')
                sticky = true;
        }
    }
    if (sig == 0) {
        o->d = neg ? -0.0 : 0.0;
        return true;
    }
    /* what num_fast took is not here: the rest goes to strtod */
    int64_t e10 = ex - (int64_t)(f1 - f0) + (int64_t)(sig - (m - lead));
    if (sticky) {
        buf[m++] = '1';
        e10--;
    }
    if (e10 > 100000) /* at most NUM_DIGITS + 1 digits: beyond these it is 0 or inf anyway */
        e10 = 100000;
    if (e10 < -100000)
        e10 = -100000;
    snprintf(buf + m, sizeof buf - m, "e%lld", (long long)e10);
    o->d = strtod(buf, NULL);
    return isfinite(o->d);
}

/* ---- the parser ------------------------------------------------------------- */

typedef struct frame {
    uint32_t begin;    /* tape index of the ARR/OBJ word */
    uint32_t open;     /* byte offset of the bracket */
    size_t key_base;   /* first entry of this object's keys */
} frame;

typedef struct keyent {
    uint64_t hash;     /* of the decoded key */
    uint32_t off;      /* byte offset of its '"' */
} keyent;

typedef struct parser {
    const unsigned char *s;
    size_t n, pos;
    us_jsonr_doc *d;
    frame *stk;
    size_t n_stk, cap_stk;
    int max_depth;
    keyent *keys;
    size_t n_keys, cap_keys;
    usher_error *err;
    size_t err_off;
} parser;

static int fail(parser *p, size_t off, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(parser *p, size_t off, int code, const char *fmt, ...)
{
    char msg[USHER_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->err_off = off;
    return us_err_set(p->err, code, "byte %zu: %s", off, msg);
}

static int nomem(parser *p) { return fail(p, p->pos, USHER_ERR_NOMEM, "out of memory"); }

/* "'x'" for a printable byte, "byte 0x1f" otherwise, "the end" past it */
static const char *show(parser *p, size_t at, char *buf, size_t cap)
{
    if (at >= p->n)
        snprintf(buf, cap, "the end of the input");
    else if (p->s[at] > 0x20 && p->s[at] < 0x7F)
        snprintf(buf, cap, "'%c'", p->s[at]);
    else
        snprintf(buf, cap, "byte 0x%02x", p->s[at]);
    return buf;
}

static void skip_ws(parser *p)
{
    const unsigned char *s = p->s;
    size_t i = p->pos, n = p->n;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    p->pos = i;
}

/* The string whose '"' is at p->pos: validate, leave pos after it; with h,
 * hash the decoded bytes. */
static int scan_string(parser *p, uint64_t *h)
{
    const unsigned char *s = p->s;
    size_t n = p->n, i = p->pos + 1;
    uint64_t hash = FNV_OFFSET;
    for (;;) {
        size_t start = i;
        while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
            i++;
        if (h)
            for (size_t k = start; k < i; k++)
                hash = fnv_byte(hash, s[k]);
        if (i >= n)
            return fail(p, n, USHER_ERR_PARSE, "unterminated string (it starts at byte %zu)",
                        p->pos);
        unsigned char c = s[i];
        if (c == '"') {
            p->pos = i + 1;
            if (h)
                *h = mix64(hash);
            return USHER_OK;
        }
        if (c < 0x20)
            return fail(p, i, USHER_ERR_PARSE,
                        "control character 0x%02x in a string (it must be escaped)", c);
        if (c >= 0x80) {
            size_t l = us_utf8_seq(s + i, n - i);
            if (!l)
                return fail(p, i, USHER_ERR_PARSE, "invalid UTF-8 in a string");
            if (h)
                for (size_t k = 0; k < l; k++)
                    hash = fnv_byte(hash, s[i + k]);
            i += l;
            continue;
        }
        /* a backslash */
        if (i + 1 >= n)
            return fail(p, n, USHER_ERR_PARSE, "unterminated string (it starts at byte %zu)",
                        p->pos);
        unsigned char e = s[i + 1], dec[4];
        int nd = 1;
        switch (e) {
        case '"':
        case '\\':
        case '/': dec[0] = e; break;
        case 'b': dec[0] = '\b'; break;
        case 'f': dec[0] = '\f'; break;
        case 'n': dec[0] = '\n'; break;
        case 'r': dec[0] = '\r'; break;
        case 't': dec[0] = '\t'; break;
        case 'u': {
            long cp = hex4(s, i + 2, n);
            if (cp < 0)
                return fail(p, i, USHER_ERR_PARSE, "expected 4 hex digits after \\u");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(p, i, USHER_ERR_PARSE,
                            "lone low surrogate \\u%04lX (it must follow a high one)", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = i + 7 < n && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s, i + 8, n) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(p, i, USHER_ERR_PARSE,
                                "lone high surrogate \\u%04lX (expected a \\u low surrogate "
                                "after it)",
                                cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            nd = utf8_put(dec, (unsigned long)cp);
            i += 4;
            break;
        }
        default: {
            char sh[24];
            return fail(p, i, USHER_ERR_PARSE, "invalid escape: backslash before %s",
                        show(p, i + 1, sh, sizeof sh));
        }
        }
        if (h)
            for (int k = 0; k < nd; k++)
                hash = fnv_byte(hash, dec[k]);
        i += 2;
    }
}

static int scan_number(parser *p)
{
    const unsigned char *s = p->s;
    size_t n = p->n, i = p->pos, start = i;
    if (s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i])) {
        char sh[24];
        return fail(p, i, USHER_ERR_PARSE, "expected a digit after '-', found %s",
                    show(p, i, sh, sizeof sh));
    }
    size_t d0 = i;
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i]))
            return fail(p, d0, USHER_ERR_PARSE, "leading zero in a number");
    } else {
        while (i < n && is_digit(s[i]))
            i++;
    }
    /* the value is below 10^(integer digits + exponent) (no leading zeros in JSON):
     * at most 10^308, under the largest double, needs no decoding to know it is finite;
     * only numbers that might overflow are decoded here (the accessor decodes all) */
    int64_t mag = (int64_t)(i - d0);
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return fail(p, i, USHER_ERR_PARSE, "expected a digit after the decimal point");
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        size_t digit = i + (i < n && (s[i] == '+' || s[i] == '-'));
        if (digit >= n || !is_digit(s[digit]))
            return fail(p, digit, USHER_ERR_PARSE, "expected a digit in the exponent");
        int64_t ex;
        i = exp_read(s, i, n, &ex);
        mag += ex;
    }
    if (mag > 308) {
        us_jsonr_num num;
        if (!num_decode(s + start, i - start, &num))
            return fail(p, start, USHER_ERR_PARSE,
                        "number out of range (beyond the largest finite double)");
    }
    p->pos = i;
    return USHER_OK;
}

static int scan_literal(parser *p, const char *lit)
{
    size_t l = strlen(lit);
    if (p->n - p->pos < l || memcmp(p->s + p->pos, lit, l) != 0)
        return fail(p, p->pos, USHER_ERR_PARSE, "expected a value (is it '%s'?)", lit);
    p->pos += l;
    return USHER_OK;
}

/* compare two valid strings by their decoded bytes */
static int str_cmp(const unsigned char *t, uint32_t a, uint32_t b)
{
    strcur x, y;
    cur_init(&x, t, a);
    cur_init(&y, t, b);
    for (;;) {
        int cx = cur_next(&x), cy = cur_next(&y);
        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (cx < 0)
            return 0;
    }
}

/* order: hash, then decoded bytes, then offset (so equal keys end up adjacent and in document order) */
static int key_cmp(const unsigned char *t, const keyent *a, const keyent *b)
{
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    int c = str_cmp(t, a->off, b->off);
    if (c)
        return c;
    return a->off < b->off ? -1 : a->off > b->off;
}

static void sift(const unsigned char *t, keyent *a, size_t root, size_t end)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= end)
            return;
        if (child + 1 < end && key_cmp(t, &a[child], &a[child + 1]) < 0)
            child++;
        if (key_cmp(t, &a[root], &a[child]) >= 0)
            return;
        keyent tmp = a[root];
        a[root] = a[child];
        a[child] = tmp;
        root = child;
    }
}

/* heapsort: O(n log n) in the worst case, no recursion, no allocation */
static void sort_keys(const unsigned char *t, keyent *a, size_t n)
{
    for (size_t start = n / 2; start-- > 0;)
        sift(t, a, start, n);
    for (size_t end = n; end-- > 1;) {
        keyent tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        sift(t, a, 0, end);
    }
}

static int check_duplicates(parser *p, size_t base)
{
    keyent *k = p->keys + base;
    size_t n = p->n_keys - base;
    if (n < 2)
        return USHER_OK;
    sort_keys(p->s, k, n);
    uint32_t dup = UINT32_MAX;
    for (size_t i = 1; i < n; i++)
        if (k[i].hash == k[i - 1].hash && str_cmp(p->s, k[i].off, k[i - 1].off) == 0 &&
            k[i].off < dup)
            dup = k[i].off;
    if (dup == UINT32_MAX)
        return USHER_OK;
    char shown[48];
    strcur c;
    cur_init(&c, p->s, dup);
    size_t o = 0;
    int b;
    while ((b = cur_next(&c)) >= 0 && o < 40)
        shown[o++] = b >= 0x20 && b < 0x7F ? (char)b : '?';
    shown[o] = 0;
    return fail(p, dup, USHER_ERR_PARSE, "duplicate key \"%s%s\"", shown, b >= 0 ? "..." : "");
}

static int open_container(parser *p, bool obj)
{
    if ((int)p->n_stk >= p->max_depth)
        return fail(p, p->pos, USHER_ERR_PARSE, "nesting deeper than the limit of %d",
                    p->max_depth);
    if (p->n_stk == p->cap_stk) {
        size_t cap = p->cap_stk ? p->cap_stk * 2 : 16;
        frame *ns = us_realloc(p->stk, cap * sizeof *ns);
        if (!ns)
            return nomem(p);
        p->stk = ns;
        p->cap_stk = cap;
    }
    frame *f = &p->stk[p->n_stk++];
    f->begin = p->d->n;
    f->open = (uint32_t)p->pos;
    f->key_base = p->n_keys;
    if (!tape_push(p->d, MKW(obj ? TAG_OBJ : TAG_ARR, 0)))
        return nomem(p);
    p->pos++;
    return USHER_OK;
}

/* at the closing bracket of the innermost container */
static int close_container(parser *p)
{
    frame *f = &p->stk[p->n_stk - 1];
    uint32_t end = p->d->n, bw = word(p->d, f->begin);
    if (!tape_push(p->d, MKW(TAG_END, f->open)))
        return nomem(p);
    tape_set(p->d, f->begin, MKW(TAG(bw), end));
    if (TAG(bw) == TAG_OBJ) {
        int rc = check_duplicates(p, f->key_base);
        if (rc)
            return rc;
        p->n_keys = f->key_base;
    }
    p->n_stk--;
    p->pos++;
    return USHER_OK;
}

/* a key and its ':' (whitespace before the key already skipped) */
static int read_key(parser *p)
{
    if (p->pos >= p->n || p->s[p->pos] != '"') {
        char sh[24];
        return fail(p, p->pos, USHER_ERR_PARSE, "expected a string key, found %s",
                    show(p, p->pos, sh, sizeof sh));
    }
    if (p->n_keys == p->cap_keys) {
        size_t cap = p->cap_keys ? p->cap_keys * 2 : 32;
        keyent *nk = us_realloc(p->keys, cap * sizeof *nk);
        if (!nk)
            return nomem(p);
        p->keys = nk;
        p->cap_keys = cap;
    }
    keyent *k = &p->keys[p->n_keys];
    k->off = (uint32_t)p->pos;
    if (!tape_push(p->d, MKW(TAG_SCALAR, p->pos)))
        return nomem(p);
    int rc = scan_string(p, &k->hash);
    if (rc)
        return rc;
    p->n_keys++;
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != ':') {
        char sh[24];
        return fail(p, p->pos, USHER_ERR_PARSE, "expected ':' after a key, found %s",
                    show(p, p->pos, sh, sizeof sh));
    }
    p->pos++;
    return USHER_OK;
}

/*
 * One value at p->pos. Returns < 0 on error, 0 when a value is complete
 * (a scalar, or an empty container), 1 when a container was opened and its
 * first element (or first key and ':') has been read up to the value.
 */
static int value(parser *p)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return fail(p, p->pos, USHER_ERR_PARSE, "expected a value, found the end of the input");
    unsigned char c = p->s[p->pos];
    int rc;
    switch (c) {
    case '[':
    case '{':
        rc = open_container(p, c == '{');
        if (rc)
            return rc;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == (c == '[' ? ']' : '}'))
            return close_container(p);
        if (c == '{') {
            rc = read_key(p);
            if (rc)
                return rc;
        }
        return 1;
    case '"':
        if (!tape_push(p->d, MKW(TAG_SCALAR, p->pos)))
            return nomem(p);
        return scan_string(p, NULL);
    case 't':
    case 'f':
    case 'n':
        if (!tape_push(p->d, MKW(TAG_SCALAR, p->pos)))
            return nomem(p);
        return scan_literal(p, c == 't' ? "true" : c == 'f' ? "false" : "null");
    default:
        if (c == '-' || is_digit(c)) {
            if (!tape_push(p->d, MKW(TAG_SCALAR, p->pos)))
                return nomem(p);
            return scan_number(p);
        }
        char sh[24];
        return fail(p, p->pos, USHER_ERR_PARSE, "expected a value, found %s",
                    show(p, p->pos, sh, sizeof sh));
    }
}

/* After a complete value: 0 when another value is expected, 2 at the end. */
static int after_value(parser *p)
{
    for (;;) {
        skip_ws(p);
        if (p->n_stk == 0) {
            if (p->pos != p->n) {
                char sh[24];
                return fail(p, p->pos, USHER_ERR_PARSE, "unexpected %s after the JSON value",
                            show(p, p->pos, sh, sizeof sh));
            }
            return 2;
        }
        bool obj = TAG(word(p->d, p->stk[p->n_stk - 1].begin)) == TAG_OBJ;
        char close = obj ? '}' : ']';
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            if (obj) {
                skip_ws(p);
                return read_key(p);
            }
            return 0;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            int rc = close_container(p);
            if (rc)
                return rc;
            continue;
        }
        char sh[24];
        return fail(p, p->pos, USHER_ERR_PARSE, "expected ',' or '%c' in the %s opened at byte %u, found %s",
                    close, obj ? "object" : "array", p->stk[p->n_stk - 1].open,
                    show(p, p->pos, sh, sizeof sh));
    }
}

int us_jsonr_parse(const char *text, size_t len, const us_jsonr_limits *lim, us_jsonr_doc **out,
                   size_t *err_offset, usher_error *err)
{
    *out = NULL;
    if (err_offset)
        *err_offset = 0;
    us_jsonr_limits l = us_jsonr_default_limits();
    if (lim) {
        if (lim->max_len > 0 && lim->max_len < l.max_len)
            l.max_len = lim->max_len;
        if (lim->max_depth > 0)
            l.max_depth = lim->max_depth < US_JSONR_MAX_DEPTH ? lim->max_depth : US_JSONR_MAX_DEPTH;
    }
    if (len > l.max_len) {
        if (err_offset)
            *err_offset = l.max_len;
        return us_err_set(err, USHER_ERR_LIMIT, "byte %zu: the input is %zu bytes, more than the limit of %zu",
                          l.max_len, len, l.max_len);
    }
    us_jsonr_doc *d = us_calloc(1, sizeof *d);
    if (!d)
        return us_err_set(err, USHER_ERR_NOMEM, "byte 0: out of memory");
    d->text = (const unsigned char *)text;
    d->len = len;
    d->blk = us_calloc(4, sizeof *d->blk);
    if (!d->blk) {
        us_jsonr_free(d);
        return us_err_set(err, USHER_ERR_NOMEM, "byte 0: out of memory");
    }
    d->cap_blk = 4;
    d->n_blk = 1; /* block 0 exists (empty) from here on */
    parser p;
    memset(&p, 0, sizeof p);
    p.s = d->text;
    p.n = len;
    p.d = d;
    p.max_depth = l.max_depth;
    p.err = err;
    int rc;
    for (;;) {
        rc = value(&p);
        if (rc < 0)
            break;
        if (rc == 1)
            continue;
        rc = after_value(&p);
        if (rc < 0)
            break;
        if (rc == 2) {
            rc = USHER_OK;
            break;
        }
    }
    us_free(p.stk);
    us_free(p.keys);
    if (rc < 0) {
        if (err_offset)
            *err_offset = p.err_off;
        us_jsonr_free(d);
        return rc;
    }
    if (err)
        us_err_clear(err);
    *out = d;
    return USHER_OK;
}

/* ---- accessors ------------------------------------------------------------ */

static bool valid(const us_jsonr_doc *d, us_jsonr_val v)
{
    return d && v != US_JSONR_NONE && v < d->n && TAG(word(d, v)) != TAG_END;
}

us_jsonr_val us_jsonr_root(const us_jsonr_doc *d) { return d && d->n ? 0 : US_JSONR_NONE; }

us_jsonr_type us_jsonr_type_of(const us_jsonr_doc *d, us_jsonr_val v)
{
    if (!valid(d, v))
        return US_JSONR_INVALID;
    uint32_t w = word(d, v);
    if (TAG(w) == TAG_ARR)
        return US_JSONR_ARRAY;
    if (TAG(w) == TAG_OBJ)
        return US_JSONR_OBJECT;
    switch (d->text[PAY(w)]) {
    case '"': return US_JSONR_STRING;
    case 't':
    case 'f': return US_JSONR_BOOL;
    case 'n': return US_JSONR_NULL;
    default: return US_JSONR_NUMBER;
    }
}

const char *us_jsonr_type_name(us_jsonr_type t)
{
    switch (t) {
    case US_JSONR_NULL: return "null";
    case US_JSONR_BOOL: return "a boolean";
    case US_JSONR_NUMBER: return "a number";
    case US_JSONR_STRING: return "a string";
    case US_JSONR_ARRAY: return "an array";
    case US_JSONR_OBJECT: return "an object";
    default: return "nothing";
    }
}

size_t us_jsonr_offset(const us_jsonr_doc *d, us_jsonr_val v)
{
    if (!valid(d, v))
        return 0;
    uint32_t w = word(d, v);
    return TAG(w) == TAG_SCALAR ? PAY(w) : PAY(word(d, PAY(w)));
}

us_jsonr_val us_jsonr_first(const us_jsonr_doc *d, us_jsonr_val v)
{
    if (!valid(d, v) || TAG(word(d, v)) == TAG_SCALAR)
        return US_JSONR_NONE;
    return TAG(word(d, v + 1)) == TAG_END ? US_JSONR_NONE : v + 1;
}

us_jsonr_val us_jsonr_next(const us_jsonr_doc *d, us_jsonr_val v)
{
    if (!valid(d, v))
        return US_JSONR_NONE;
    uint32_t w = word(d, v);
    uint32_t nx = TAG(w) == TAG_SCALAR ? v + 1 : PAY(w) + 1;
    if (nx >= d->n || TAG(word(d, nx)) == TAG_END)
        return US_JSONR_NONE;
    return nx;
}

size_t us_jsonr_len(const us_jsonr_doc *d, us_jsonr_val v)
{
    us_jsonr_type t = us_jsonr_type_of(d, v);
    if (t != US_JSONR_ARRAY && t != US_JSONR_OBJECT)
        return 0;
    size_t n = 0;
    for (us_jsonr_val c = us_jsonr_first(d, v); c != US_JSONR_NONE; c = us_jsonr_next(d, c))
        n++;
    return t == US_JSONR_OBJECT ? n / 2 : n;
}

us_jsonr_val us_jsonr_get(const us_jsonr_doc *d, us_jsonr_val obj, const char *key)
{
    if (us_jsonr_type_of(d, obj) != US_JSONR_OBJECT)
        return US_JSONR_NONE;
    size_t kl = strlen(key);
    for (us_jsonr_val k = us_jsonr_first(d, obj); k != US_JSONR_NONE;
         k = us_jsonr_next(d, us_jsonr_next(d, k)))
        if (us_jsonr_str_eq(d, k, key, kl))
            return us_jsonr_next(d, k);
    return US_JSONR_NONE;
}

void us_jsonr_flat_init(us_jsonr_flat *it, const us_jsonr_doc *d, us_jsonr_val arr)
{
    it->d = d;
    it->at = it->end = 0;
    if (us_jsonr_type_of(d, arr) == US_JSONR_ARRAY) {
        it->at = arr + 1;
        it->end = PAY(word(d, arr));
    }
}

us_jsonr_val us_jsonr_flat_next(us_jsonr_flat *it)
{
    while (it->at < it->end) {
        uint32_t w = word(it->d, it->at);
        switch (TAG(w)) {
        case TAG_ARR:
        case TAG_END: it->at++; break; /* step into / out of a nested array */
        case TAG_OBJ: {
            us_jsonr_val v = it->at;
            it->at = PAY(w) + 1;
            return v;
        }
        default: return it->at++;
        }
    }
    return US_JSONR_NONE;
}

bool us_jsonr_bool(const us_jsonr_doc *d, us_jsonr_val v, bool *out)
{
    if (us_jsonr_type_of(d, v) != US_JSONR_BOOL)
        return false;
    *out = d->text[PAY(word(d, v))] == 't';
    return true;
}

bool us_jsonr_number(const us_jsonr_doc *d, us_jsonr_val v, us_jsonr_num *out)
{
    if (us_jsonr_type_of(d, v) != US_JSONR_NUMBER)
        return false;
    size_t o = PAY(word(d, v)), e = o, used;
    const unsigned char *s = d->text;
    /* the parser checked the number's syntax: the fast path finds its end itself */
    if (num_fast(s + o, d->len - o, out, &used))
        return true;
    while (e < d->len && (is_digit(s[e]) || s[e] == '-' || s[e] == '+' || s[e] == '.' ||
                          s[e] == 'e' || s[e] == 'E'))
        e++;
    num_decode(s + o, e - o, out);
    return true;
}

size_t us_jsonr_str_len(const us_jsonr_doc *d, us_jsonr_val v)
{
    if (us_jsonr_type_of(d, v) != US_JSONR_STRING)
        return 0;
    strcur c;
    cur_init(&c, d->text, PAY(word(d, v)));
    size_t n = 0;
    while (cur_next(&c) >= 0)
        n++;
    return n;
}

size_t us_jsonr_str_copy(const us_jsonr_doc *d, us_jsonr_val v, char *dst, size_t cap)
{
    if (us_jsonr_type_of(d, v) != US_JSONR_STRING) {
        if (cap)
            dst[0] = 0;
        return 0;
    }
    strcur c;
    cur_init(&c, d->text, PAY(word(d, v)));
    size_t n = 0;
    int b;
    while ((b = cur_next(&c)) >= 0) {
        if (n < cap)
            dst[n] = (char)b;
        n++;
    }
    if (n < cap)
        dst[n] = 0;
    return n;
}

bool us_jsonr_str_eq(const us_jsonr_doc *d, us_jsonr_val v, const char *s, size_t n)
{
    if (us_jsonr_type_of(d, v) != US_JSONR_STRING)
        return false;
    strcur c;
    cur_init(&c, d->text, PAY(word(d, v)));
    size_t i = 0;
    int b;
    while ((b = cur_next(&c)) >= 0) {
        if (i >= n || (unsigned char)s[i] != b)
            return false;
        i++;
    }
    return i == n;
}
