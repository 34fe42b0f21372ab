/*
 * fuzz_config.c - libFuzzer target for the config.pbtxt reader
 * (repo_parse_config in src/server/repo.c: protobuf text format, bounded).
 *
 * The bytes are the file as it is (no mode byte), parsed twice: into a model
 * with no directory name, and into one named "fuzz-model" (so a differing
 * `name:` is refused). The contract checked on every input, beyond "no
 * crash, no sanitizer report":
 *   - a rejection is USHER_ERR_PARSE or USHER_ERR_UNSUPPORTED, err.code is
 *     the status and the message starts with "<label>:<line>:"; no error
 *     reaches a caller without a message (us_err_missing_detail_count);
 *   - nothing leaks through the allocation hook;
 *   - an accepted file gives a model within its documented bounds:
 *     max_batch_size -1 or 0 .. 2^31-1, queue delay -1 or >= 0, instances
 *     >= 0, preferred sizes distinct, ascending, >= 1 and none over a
 *     positive max_batch_size, at most REPO_MAX_IO inputs with unique
 *     printable names that repo_find_input finds, rank -1 .. 16 (under 16
 *     with a batch dim), each dim -1 or 0 .. 2^40, default_model_filename a
 *     plain name;
 *   - repo_check_input accepts a tensor shaped as an input's config says
 *     (dynamic dims as 1, the batch dim added when requests carry one) and
 *     refuses it, naming the input, with a fixed dim or the rank changed;
 *   - the directory name only ever refuses more: what the named parse
 *     accepts, the unnamed one accepts too, with the same fields.
 * The same bytes are also read as a load's "config" parameter (Triton's JSON model
 * configuration, repo_config_from_json): a rejection is USHER_ERR_PARSE or LIMIT with a
 * message starting "parameters.config: "; an accepted document gives config.pbtxt text that
 * repo_parse_config reads under the contract above (or refuses with a message); no leak.
 * Violations abort, so libFuzzer records them as crashes. tests/test_fuzz_config.c
 * replays fuzz/corpus-config and mutants of it through the same function.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_config.h"
#include "server/repo.h"

#define LABEL "fuzz/config.pbtxt"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? (int)err->code : 0, err ? err->msg : "");
        abort();
    }
}

static bool printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n == cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* a tensor shaped as config.pbtxt describes in (dynamic dims as 1) passes
 * repo_check_input; a fixed dim or the rank changed does not */
static void check_shapes(const repo_model *m, const repo_input *in)
{
    if (in->rank < 0)
        return;
    bool batch = repo_batch_dim(m, true);
    int off = batch ? 1 : 0;
    if (in->rank + off > US_TENSOR_MAX_RANK)
        return; /* cannot be sent at all */
    us_tensor t;
    memset(&t, 0, sizeof t);
    memcpy(t.name, in->name, sizeof t.name);
    t.dtype = in->dtype == US_DT_INVALID ? US_DT_FP32 : in->dtype;
    t.shape.rank = in->rank + off;
    if (batch)
        t.shape.dim[0] = 2;
    for (int i = 0; i < in->rank; i++)
        t.shape.dim[i + off] = in->dim[i] < 0 ? 1 : in->dim[i];
    char msg[512];
    msg[0] = 0;
    check(repo_check_input(m, &t, batch, msg, sizeof msg) == 0,
          "repo_check_input refused a tensor shaped as config.pbtxt says", NULL);
    for (int i = 0; i < in->rank; i++) {
        if (in->dim[i] < 0)
            continue;
        us_tensor bad = t;
        bad.shape.dim[i + off] = in->dim[i] + 1;
        msg[0] = 0;
        check(repo_check_input(m, &bad, batch, msg, sizeof msg) == -1 && strstr(msg, in->name),
              "repo_check_input took a changed fixed dim, or its message lost the input", NULL);
        break;
    }
    if (t.shape.rank < US_TENSOR_MAX_RANK) {
        us_tensor longer = t;
        longer.shape.dim[longer.shape.rank++] = 1;
        msg[0] = 0;
        check(repo_check_input(m, &longer, batch, msg, sizeof msg) == -1 && strstr(msg, in->name),
              "repo_check_input took a rank config.pbtxt does not give", NULL);
    }
}

static void check_model(const repo_model *m)
{
    check(m->max_batch_size >= -1 && m->max_batch_size <= INT32_MAX, "max_batch_size out of range",
          NULL);
    check(m->max_queue_delay_us >= -1, "queue delay out of range", NULL);
    check(m->instances >= 0 && m->instances_per_gpu >= 0 &&
              m->instances + m->instances_per_gpu <= REPO_MAX_INSTANCES &&
              (m->instance_groups > 0 || m->instances + m->instances_per_gpu == 0),
          "instance counts out of range", NULL);
    check(repo_instances(m, 1024, NULL) <= REPO_MAX_INSTANCES &&
              (m->instance_groups == 0) == (repo_instances(m, 0, NULL) == 0),
          "repo_instances out of range", NULL);
    check(m->n_preferred >= 0 && m->n_preferred <= REPO_MAX_PREFERRED,
          "too many preferred batch sizes", NULL);
    for (int i = 0; i < m->n_preferred; i++) {
        check(m->preferred_batch[i] >= 1, "a preferred batch size under 1", NULL);
        check(i == 0 || m->preferred_batch[i - 1] < m->preferred_batch[i],
              "preferred batch sizes not distinct and ascending", NULL);
    }
    if (m->max_batch_size > 0 && m->n_preferred > 0)
        check(m->preferred_batch[m->n_preferred - 1] <= m->max_batch_size,
              "a preferred batch size over max_batch_size", NULL);
    check(strnlen(m->file, sizeof m->file) < sizeof m->file &&
              repo_name_ok(m->file, strlen(m->file)),
          "default_model_filename not a plain name", NULL);
    check(m->n_inputs <= REPO_MAX_IO, "more inputs than REPO_MAX_IO", NULL);
    for (size_t i = 0; i < m->n_inputs; i++) {
        const repo_input *in = &m->inputs[i];
        check(printable(in->name, sizeof in->name), "an input name empty or not printable", NULL);
        check(repo_find_input(m, in->name) == in, "input names not unique or not found", NULL);
        check(in->rank >= -1 && in->rank <= US_TENSOR_MAX_RANK, "input rank out of range", NULL);
        if (m->max_batch_size > 0)
            check(in->rank < US_TENSOR_MAX_RANK, "no room for the batch dim", NULL);
        for (int d = 0; d < in->rank; d++)
            check(in->dim[d] >= -1 && in->dim[d] <= (INT64_C(1) << 40), "a dim out of range",
                  NULL);
        check(in->max_rank == 0, "max_dims from config.pbtxt", NULL);
        check_shapes(m, in);
    }
    check(!repo_find_input(m, "\x01 no such input"), "repo_find_input found a missing input",
          NULL);
}

static int parse(const uint8_t *data, size_t size, const char *name, repo_model *m)
{
    usher_error err;
    memset(&err, 0, sizeof err);
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->file, sizeof m->file, "model.onnx");
    m->max_batch_size = -1;
    m->max_queue_delay_us = -1;
    int rc = repo_parse_config((const char *)data, size, LABEL, m, &err);
    if (rc) {
        check(rc < 0 && err.code == rc && err.msg[0], "a rejection without a status or message",
              &err);
        check(rc == USHER_ERR_PARSE || rc == USHER_ERR_UNSUPPORTED, "unexpected status", &err);
        check(strncmp(err.msg, LABEL ":", strlen(LABEL) + 1) == 0 &&
                  err.msg[strlen(LABEL) + 1] >= '1' && err.msg[strlen(LABEL) + 1] <= '9',
              "the message does not start with label:line:", &err);
    } else {
        check_model(m);
    }
    check(us_err_missing_detail_count() == 0, "an error reached a caller without a message", &err);
    return rc;
}

static repo_model unnamed, named; /* 300 KB each: not on the stack */

/* the bytes as a load's JSON configuration */
static void parse_json(const uint8_t *data, size_t size)
{
    usher_error err;
    memset(&err, 0, sizeof err);
    char *text = NULL;
    size_t len = 0;
    int rc = repo_config_from_json((const char *)data, size, &text, &len, &err);
    if (rc) {
        check(rc < 0 && err.code == rc && !text, "a JSON rejection without a status", &err);
        check(rc == USHER_ERR_PARSE || rc == USHER_ERR_LIMIT, "unexpected JSON status", &err);
        check(strncmp(err.msg, "parameters.config: ", 19) == 0,
              "a JSON rejection not naming parameters.config", &err);
        return;
    }
    check(text != NULL, "an accepted JSON configuration without its text", NULL);
    parse((const uint8_t *)text, len, "fuzz-model", &named);
    us_free(text);
}

int usher_fuzz_config_one(const uint8_t *data, size_t size)
{
    size_t live = us_alloc_live_bytes();
    int ra = parse(data, size, "", &unnamed);
    int rb = parse(data, size, "fuzz-model", &named);
    if (rb == USHER_OK) {
        check(ra == USHER_OK, "the named parse accepted what the unnamed one refused", NULL);
        check(unnamed.max_batch_size == named.max_batch_size &&
                  unnamed.max_queue_delay_us == named.max_queue_delay_us &&
                  unnamed.instances == named.instances &&
                  unnamed.instances_per_gpu == named.instances_per_gpu &&
                  unnamed.instance_groups == named.instance_groups &&
                  unnamed.kind_gpu == named.kind_gpu &&
                  unnamed.n_preferred == named.n_preferred &&
                  unnamed.n_inputs == named.n_inputs && strcmp(unnamed.file, named.file) == 0 &&
                  memcmp(unnamed.preferred_batch, named.preferred_batch,
                         sizeof named.preferred_batch) == 0 &&
                  memcmp(unnamed.inputs, named.inputs, named.n_inputs * sizeof named.inputs[0]) ==
                      0,
              "the directory name changed what was read", NULL);
    }
    parse_json(data, size);
    check(us_alloc_live_bytes() == live, "the config.pbtxt reader leaked", NULL);
    return ra == USHER_OK;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usher_fuzz_config_one(data, size);
    return 0;
}
#endif
