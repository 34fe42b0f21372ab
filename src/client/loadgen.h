/*
 * loadgen.h - an open-loop load generator for the KServe v2 / Open Inference
 * Protocol (layer 2, src/client, on core and httpc.h only; prefix lg_, kept
 * from before the folder existed rather than the folder's cl_: see
 * docs/architecture.md), behind `usher load`. Method notes are at the top of
 * loadgen.c.
 *
 * Pieces, usable alone (tests and benchmarks do):
 *   lg_rng       a seeded generator (splitmix64): the same seed gives the
 *                same arrivals and the same random inputs everywhere
 *   lg_schedule  arrival times drawn in advance: Poisson, uniform, or a
 *                trace file of "time_s model" lines
 *   lg_ledger    every request id with its scheduled time, delays, status
 *                and latency; counts answers per id (missing, duplicate,
 *                mismatched ids)
 *   lg_run       the engine: sends each request at its scheduled time over
 *                a pool of keep-alive connections, whatever the responses
 *                do, then fills an lg_report
 */
#ifndef LG_H
#define LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "usher/status.h"

#define LG_MAX_MODELS 64
#define LG_NAME_MAX 128                 /* bytes of a model name, terminator included */
#define LG_MAX_REQUESTS ((size_t)1 << 24) /* arrivals a run holds: ledger + schedule ~0.8 GiB */
#define LG_ID_MAX 256                   /* bytes of a response id we keep, terminator included */
#define LG_MAX_CONNECTIONS 16384

/* ---- random numbers ------------------------------------------------------- */

typedef struct lg_rng {
    uint64_t s;
} lg_rng;

void lg_rng_seed(lg_rng *r, uint64_t seed);
uint64_t lg_rng_next(lg_rng *r);
/* uniform in [0, 1), 53 random bits */
double lg_rng_unit(lg_rng *r);
/* exponential with the given rate (> 0): an inter-arrival gap of a Poisson process */
double lg_rng_exp(lg_rng *r, double rate);

/* ---- arrival schedules ---------------------------------------------------- */

typedef enum lg_arrivals {
    LG_ARRIVALS_POISSON = 0,
    LG_ARRIVALS_UNIFORM,
    LG_ARRIVALS_TRACE,
} lg_arrivals;

typedef struct lg_arrival {
    uint64_t t_us;  /* scheduled send time, microseconds from the start */
    uint32_t model; /* index into the model list */
} lg_arrival;

typedef struct lg_schedule {
    lg_arrival *a; /* sorted by time; equal times keep model order, then draw order */
    size_t n;
    double duration_s;
} lg_schedule;

/*
 * Draw arrivals for models with rates[i] requests/s (0: none for that
 * model) over [0, duration_s). Poisson: independent exponential gaps, one
 * random stream per model derived from seed. Uniform: evenly spaced at
 * 1/rate with a random phase per model, so models do not fire in lockstep.
 * USHER_ERR_LIMIT when more than LG_MAX_REQUESTS arrivals would be drawn
 * (checked from the rates before drawing), USHER_ERR_INVALID for a
 * negative or non-finite rate or duration. On failure *out is empty.
 */
int lg_schedule_draw(lg_arrivals kind, const double *rates, size_t n_models, double duration_s,
                     uint64_t seed, lg_schedule *out, usher_error *err);

/*
 * A trace: text of lines "time_s model" (seconds from the start, decimal,
 * >= 0; a model name from names[]), blank lines and lines starting with '#'
 * ignored, at most 1024 bytes a line. Lines at or after duration_s are
 * dropped when duration_s > 0; when it is 0 the schedule lasts until the
 * last arrival. Times need not be sorted (they are, stably). Every error
 * names "label:line" (USHER_ERR_PARSE; USHER_ERR_LIMIT over
 * LG_MAX_REQUESTS). On failure *out is empty.
 */
int lg_trace_parse(const char *text, size_t len, const char *label, const char *const *names,
                   size_t n_names, double duration_s, lg_schedule *out, usher_error *err);
/* The same from a file (at most 1 GiB). */
int lg_trace_load(const char *path, const char *const *names, size_t n_names,
                  double duration_s, lg_schedule *out, usher_error *err);
void lg_schedule_free(lg_schedule *s);

/* ---- request bodies ------------------------------------------------------- */

/*
 * An infer request body is built per request as
 *     {"id":"<id>"  +  tail
 * where tail is "," plus the other members and the closing brace, or just
 * "}". lg_body_tail_from_json makes the tail of a body given by the user:
 * the text must be one JSON object (core/json.h: strict, nesting depth
 * <= 100, no duplicate keys); its members are kept as written except a
 * top-level "id", which the generator sets itself. Errors are the
 * reader's, prefixed with label ("in.json: byte 12: ...").
 */
int lg_body_tail_from_json(const char *json, size_t len, const char *label, us_buf *tail,
                           usher_error *err);

/*
 * The tail of a request with random data for every input the model
 * metadata (GET /v2/models/NAME, JSON) lists: shape with -1 dims made 1,
 * values of the datatype (integers in [0, 100), floats in [0, 1), BOOL
 * true/false, BYTES short strings). USHER_ERR_PARSE for metadata that is
 * not of that form, USHER_ERR_LIMIT for an input of more than 2^22
 * elements or a body over 64 MiB, USHER_ERR_UNSUPPORTED for an unknown
 * datatype.
 */
int lg_body_tail_random(const char *metadata, size_t len, const char *model, lg_rng *rng,
                        us_buf *tail, usher_error *err);

/*
 * The "id" member of a response body, when the body is a JSON object with
 * a string "id" at the top level: decoded into id (at most cap - 1 bytes,
 * terminated), *len its length. Returns 1 when found, 0 when the body is
 * empty, not an object or has no string "id", -1 when it is not valid JSON
 * (core/json.h's strict grammar) or the id is longer than cap - 1.
 */
int lg_response_id(const char *body, size_t n, char *id, size_t cap, size_t *len);

/* ---- the ledger ----------------------------------------------------------- */

typedef enum lg_outcome {
    LG_OUT_SCHEDULED = 0, /* not yet released (the run ended first: never happens) */
    LG_OUT_WAITING,       /* released, waiting for a connection */
    LG_OUT_INFLIGHT,      /* written (at least in part), no response yet */
    LG_OUT_ANSWERED,      /* a response carrying this id arrived */
    LG_OUT_TIMEOUT,       /* no response within the timeout */
    LG_OUT_FAILED,        /* the connection failed or broke the protocol after sending, or
                             the response carried another id */
    LG_OUT_UNSENT,        /* released but never written (connect failed, or still waiting
                             for a connection when the run ended) */
} lg_outcome;

typedef struct lg_entry {
    uint64_t sched_us;   /* scheduled send time from the start */
    uint32_t lag_us;     /* released (found due, and sent or queued) - scheduled: how far
                            the generator itself was behind */
    uint32_t wait_us;    /* first byte written - released: waiting for a connection
                            (connect time of a new one included) */
    uint32_t latency_us; /* response complete - scheduled (saturates) */
    uint16_t status;     /* HTTP status of the first answer; 0: none */
    uint16_t model;
    uint8_t outcome;     /* lg_outcome */
    uint8_t answers;     /* responses credited to this id (saturates at 255) */
} lg_entry;

typedef struct lg_ledger {
    lg_entry *e;
    size_t n;
    uint64_t seed;
    char prefix[24]; /* "<seed>-" */
    size_t prefix_len;
    uint64_t duplicates;  /* responses for an id already answered */
    uint64_t unknown_ids; /* responses whose id was never sent */
    uint64_t id_mismatch; /* responses whose id differs from their request's (PROTO-5) */
    uint64_t id_missing;  /* responses without a string "id" */
} lg_ledger;

/* One entry per arrival of s; USHER_ERR_NOMEM leaves l empty. */
int lg_ledger_init(lg_ledger *l, uint64_t seed, const lg_schedule *s, usher_error *err);
void lg_ledger_free(lg_ledger *l);
/* "<seed>-<n>" into buf (always terminated); returns its length */
size_t lg_ledger_id(const lg_ledger *l, size_t n, char *buf, size_t cap);
/* The request number of an id of this run, or -1 when it is not one. */
int64_t lg_ledger_parse_id(const lg_ledger *l, const char *id, size_t len);
/*
 * A response arrived for request n (on the connection that carried it) at
 * done_us (from the start), with HTTP status and the body's id (id NULL:
 * the body had none). The answer is credited to the id the body names:
 * to n when it matches; to another request when it names one (a
 * mismatch: cross-talk, and n stays unanswered); to nobody when it names
 * none of ours (unknown). A body without an id is credited to n and
 * counted in id_missing. A second answer for one id is a duplicate.
 */
void lg_ledger_answer(lg_ledger *l, size_t n, int status, const char *id, size_t id_len,
                      uint64_t done_us);

/* ---- the run -------------------------------------------------------------- */

typedef struct lg_model {
    char name[LG_NAME_MAX];
    double rate;       /* requests/s for Poisson and uniform arrivals; unused with a trace */
    const char *input; /* JSON request body file; NULL: random input from metadata */
} lg_model;

typedef struct lg_params {
    const char *url;          /* http://host:port[/base] */
    lg_model models[LG_MAX_MODELS];
    size_t n_models;
    lg_arrivals arrivals;     /* default Poisson */
    const char *trace;        /* trace file, for LG_ARRIVALS_TRACE */
    double duration_s;        /* schedule length; 0 with a trace: until its last line */
    int max_connections;      /* keep-alive connections, opened as needed; default 64 */
    int timeout_ms;           /* per request from its send, and the drain after the
                                 schedule ends; default 10000 */
    double slo_ms;            /* latency objective for goodput; default 100 */
    uint64_t seed;            /* arrivals, random inputs and ids ("<seed>-<n>") */
    const char *ledger_path;  /* one line per request; NULL: none */
} lg_params;

lg_params lg_default_params(void);

typedef struct lg_dist {
    uint64_t n;
    double mean_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms;
} lg_dist;

typedef struct lg_model_report {
    char name[LG_NAME_MAX];
    double target_rate;      /* requests/s asked for (trace: arrivals / duration) */
    uint64_t sent, ok, good; /* released; answered 200; 200 within the SLO */
    double goodput;          /* good / duration */
    lg_dist latency;         /* of its 200 answers */
} lg_model_report;

typedef struct lg_report {
    uint64_t seed;
    double duration_s, slo_ms;
    double target_rate;     /* sum of the models' rates (trace: arrivals / duration) */
    double scheduled_rate;  /* arrivals / duration (a Poisson draw varies around target) */
    double achieved_rate;   /* requests written / time from start to the last write (at
                               least duration) */
    uint64_t sent;          /* requests released at their scheduled time (all arrivals) */
    uint64_t written;       /* of those, put on the wire */
    uint64_t answered;      /* ids answered at least once */
    uint64_t st_200, st_503, st_4xx, st_5xx, st_other; /* by first answer; 5xx without 503 */
    uint64_t timed_out, failed, unsent;
    uint64_t missing;       /* sent - answered: timed out, failed, unsent */
    uint64_t duplicates;    /* answers for an answered id + answers naming an unknown id */
    uint64_t id_mismatch, id_missing, unknown_ids;
    uint64_t good;          /* 200 within the SLO */
    double goodput;         /* good / duration, requests/s */
    double slo_pct;         /* good / sent, percent */
    lg_dist latency;        /* of 200 answers, from the scheduled time */
    lg_dist lag;            /* the generator's own delay behind the schedule */
    lg_dist wait;           /* of written requests: released until written (connect included) */
    bool behind;            /* lag p99 > 1 ms: the generator could not keep its schedule */
    int connections_opened, connections_max;
    uint64_t connect_errors, protocol_errors;
    uint64_t bad_json;      /* answers whose body is not valid JSON (their id is missing) */
    lg_model_report models[LG_MAX_MODELS];
    size_t n_models;
} lg_report;

/*
 * Run: build the schedule and the request bodies (reading --input files or
 * asking the server for model metadata), send every request at its time,
 * wait up to timeout_ms after the schedule ends for outstanding answers,
 * write the ledger file, fill *out. Returns USHER_OK when the run took
 * place, whatever the server did (missing or duplicate answers are in the
 * report); a negative status when it could not start (bad parameters,
 * unreadable input, metadata unavailable) or the ledger file could not be
 * written. ledger_out, when not NULL, receives the ledger (the caller frees
 * it); otherwise it is freed here.
 */
int lg_run(const lg_params *p, lg_report *out, lg_ledger *ledger_out, usher_error *err);

/* Fill a report from a ledger (lg_run does; tests call it on a ledger of their own).
   rates NULL: each model's target is its arrivals / duration (a trace). The
   fields seed, connections_*, *_errors and bad_json of *out are kept, the
   rest set. */
void lg_summarize(const lg_ledger *l, const char *const *names, const double *rates,
                  size_t n_models, double duration_s, double slo_ms, uint64_t last_write_us,
                  lg_report *out);

/* Percentile (nearest rank) of sorted values in microseconds, in ms. */
double lg_percentile_ms(const uint32_t *sorted, size_t n, double pct);

/* The report as one JSON object. */
void lg_report_json(const lg_report *r, us_buf *out);

#endif
