/*
 * fuzz_trace.c - libFuzzer target for the Azure Functions trace importer
 * (src/sim/trace_azure.c) over bytes in memory. Byte 0 is the mode:
 * map = mode % 3 (stripe, block, hash), arrivals = min(mode / 3, 2)
 * (uniform, Poisson, Gamma CV 2), models = 1 + mode % 2; the rest is the
 * CSV text, read through the importer's own 64 KiB chunks with a 16 KiB
 * line limit (so long lines reach the limit too).
 * Contract: a refusal has a message with the input's name and no missing
 * detail; an accepted trace yields arrivals in time order on valid models
 * (at most 100,000 are drained); nothing leaks through the allocation hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_trace.h"
#include "sim/workload_impl.h"

int usher_fuzz_trace_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t live = us_alloc_live_bytes();
    uint64_t missing = us_err_missing_detail_count();
    unsigned mode = data[0] % 8;
    sim_azure_trace_params p = sim_azure_trace_default_params();
    p.map = (sim_map)(mode % 3);
    p.arrivals = (sim_trace_arrivals)(mode / 3 > 2 ? 2 : mode / 3);
    p.cv = 2.0;
    p.n_models = 1 + mode % 2;
    p.max_line = 16384;
    p.seed = mode;
    ws_trace_input in = {.label = "fuzz.csv", .mem = data + 1, .len = size - 1};
    usher_error err;
    err.msg[0] = '\0';
    sim_source *s = NULL;
    sim_azure_trace_stats st;
    int rc = ws_trace_azure_open(&in, 1, &p, &s, &st, &err);
    const char *why = NULL;
    if (rc < 0) {
        if (!err.msg[0] || !strstr(err.msg, "fuzz.csv"))
            why = "a refusal without the input's name";
        if (s)
            why = "a refusal that returned a source";
    } else {
        sim_arrival a;
        uint64_t last = 0, n = 0;
        int r;
        while (n < 100000 && (r = sim_source_next(s, &a, &err)) == 1) {
            if (a.t_ns < last || a.model >= p.n_models || a.t_ns >= st.minutes * 60000000000ull)
                why = "an arrival out of order or range";
            last = a.t_ns;
            n++;
        }
        if (n < 100000 && p.arrivals == SIM_TRACE_UNIFORM && n != st.invocations)
            why = "uniform arrivals that do not match the counts";
        sim_source_free(s);
    }
    if (us_alloc_live_bytes() != live)
        why = "a leak";
    if (us_err_missing_detail_count() != missing)
        why = "an error without detail";
    if (why) {
        fprintf(stderr, "fuzz contract violated: %s (mode %u, rc %d, message '%s')\n", why, mode,
                rc, err.msg);
        abort();
    }
    return rc == 0;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return usher_fuzz_trace_one(data, size) * 0;
}
#endif
