/*
 * convert.c - `usher convert`: rewrite a model (layer 9).
 *
 * Used to make the graph-only zoo (strip), to make real-weight models for
 * timing (fill random weights into a graph-only model) and to move weights
 * to an external data file.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "usher/model.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher convert IN OUT [--strip [--strip-min-bytes N]]\n"
            "                            [--fill-random SEED] [--external-data NAME]\n\n"
            "  --strip              drop floating-point weights (graph-only model; shapes,\n"
            "                       small constants and the graph stay)\n"
            "  --strip-min-bytes N  only weights of at least N bytes (default 4096)\n"
            "  --fill-random SEED   give weights without data pseudo-random values\n"
            "                       (uniform in [-0.05, 0.05)); reads IN as graph-only\n"
            "  --external-data NAME write weights of 1 KiB or more to NAME beside OUT\n");
}

int cli_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *ext = NULL;
    bool strip = false, fill = false;
    int64_t min_bytes = 4096, seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--strip") == 0) {
            strip = true;
        } else if (strcmp(a, "--strip-min-bytes") == 0 || strcmp(a, "--fill-random") == 0) {
            int64_t v;
            if (i + 1 >= argc || !cli_parse_i64(argv[i + 1], 0, INT64_MAX / 2, &v)) {
                fprintf(stderr, "usher convert: %s needs a non-negative integer\n", a);
                return CLI_USAGE;
            }
            if (strcmp(a, "--fill-random") == 0) {
                fill = true;
                seed = v;
            } else {
                min_bytes = v > 0 ? v : 1;
            }
            i++;
        } else if (strcmp(a, "--external-data") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "usher convert: --external-data needs a file name\n");
                return CLI_USAGE;
            }
            ext = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "usher convert: unknown option '%s'\n", a);
            return CLI_USAGE;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "usher convert: unexpected argument '%s'\n", a);
            return CLI_USAGE;
        }
    }
    if (!in || !out) {
        help(stderr);
        return CLI_USAGE;
    }
    if (strip && fill) {
        fprintf(stderr, "usher convert: --strip and --fill-random exclude each other\n");
        return CLI_USAGE;
    }
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = fill;
    usher_model *m;
    usher_error err;
    if (usher_model_load(in, &lp, &m, &err) < 0) {
        fprintf(stderr, "usher convert: %s\n", err.msg);
        return CLI_FAIL;
    }
    usher_save_params sp = usher_save_default_params();
    sp.strip_min_bytes = strip ? (uint64_t)min_bytes : 0;
    sp.fill_random = fill;
    sp.seed = (uint64_t)seed;
    sp.external_data = ext;
    int rc = usher_model_save(m, out, &sp, &err);
    usher_model_free(m);
    if (rc < 0) {
        fprintf(stderr, "usher convert: %s\n", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}
