/*
 * merge.c - `usher merge`: merge related models into one ONNX graph (layer 9,
 * over include/usher/merge.h; docs/merge.md).
 *
 * Exit codes: 0 merged (and verified when asked), 1 refused or failed (the
 * message names the model and the reason; no output file is written), 2
 * usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "usher/merge.h"

#define MAX_OPTS 64

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher merge A.onnx B.onnx ... -o MERGED.onnx [--verify] [--tolerance T]\n"
            "                   [--json] [--kind shared|stacked|side-by-side] [--weight-rtol R]\n"
            "                   [--eps E] [--runs N] [--seed S] [--dim N]\n"
            "                   [--shape INPUT=D0xD1...] [--value INPUT=V] [--data INPUT=FILE]\n\n"
            "Merges related models (fine-tuned variants of one backbone, copies of one\n"
            "architecture) into one ONNX graph. Every original input and output is kept as\n"
            "<model>/<name> (<model>: the file name without .onnx); the merged file's\n"
            "metadata 'usher.merge.map' holds the mapping. See docs/merge.md.\n\n"
            "  -o FILE            write the merged model (temporary file, then rename)\n"
            "  --verify           run merged and separate models on ONNX Runtime (CPU) with\n"
            "                     random inputs first; a merge that disagrees is not written\n"
            "  --tolerance T      FP32: max abs error <= T x the output's largest |value|\n"
            "                     (default 1e-5)\n"
            "  --json             print the report as one JSON object\n"
            "  --kind K           force a kind: shared (common weights run once over the\n"
            "                     concatenated batch), stacked (grouped/batched operators),\n"
            "                     side-by-side (operators kept, common weights stored once);\n"
            "                     default: the first that applies, in that order\n"
            "  --weight-rtol R    weights equal within R (relative, per element) are common\n"
            "                     (default 1e-7; 0: bit-identical only)\n"
            "  --eps E            DBSCAN radius over the signature distance (default 0.3)\n"
            "  --runs N           random input sets for --verify (default 2)\n"
            "  --seed S           seed of those inputs (default 1)\n"
            "  --dim N            size of a dynamic dim in those inputs (default 2)\n"
            "  --shape IN=AxB     the shape of input IN for --verify (e.g. input=1x512)\n"
            "  --value IN=V       the value of scalar integer input IN (e.g. sr=16000)\n"
            "  --data IN=FILE     real data for input IN (raw little-endian elements of its\n"
            "                     type, shaped by --shape or the model): one more --verify\n"
            "                     round feeds it to every model's input IN\n");
}

static const char *arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "usher merge: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_merge(int argc, char **argv)
{
    const char *paths[MAX_OPTS], *shapes[MAX_OPTS], *values[MAX_OPTS], *data[MAX_OPTS];
    const char *out = NULL;
    size_t n = 0, ns = 0, nv = 0, nd = 0;
    bool json = false;
    usher_merge_params p = usher_merge_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t iv;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--verify") == 0) {
            p.verify = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "-o") == 0) {
            if (!(out = arg(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(a, "--tolerance") == 0 || strcmp(a, "--weight-rtol") == 0 ||
                   strcmp(a, "--eps") == 0) {
            double d;
            bool tol = strcmp(a, "--tolerance") == 0;
            if (!(v = arg(argc, argv, &i)) ||
                !cli_parse_double(v, tol ? 1e-12 : 0, tol ? 1 : 0.999, &d)) {
                fprintf(stderr, "usher merge: %s needs a number in %s\n", a,
                        tol ? "[1e-12, 1]" : "[0, 0.999]");
                return CLI_USAGE;
            }
            if (tol)
                p.verify_tol = d;
            else if (strcmp(a, "--eps") == 0)
                p.cluster_eps = d;
            else
                p.weight_rtol = d;
        } else if (strcmp(a, "--runs") == 0 || strcmp(a, "--seed") == 0 || strcmp(a, "--dim") == 0) {
            int64_t hi = strcmp(a, "--seed") == 0 ? INT64_MAX / 2 : strcmp(a, "--runs") == 0 ? 100 : 4096;
            if (!(v = arg(argc, argv, &i)) || !cli_parse_i64(v, 1, hi, &iv)) {
                fprintf(stderr, "usher merge: %s needs an integer in [1, %lld]\n", a,
                        (long long)hi);
                return CLI_USAGE;
            }
            if (a[2] == 'r')
                p.verify_runs = (int)iv;
            else if (a[2] == 's')
                p.seed = (uint64_t)iv;
            else
                p.verify_dim = iv;
        } else if (strcmp(a, "--kind") == 0) {
            if (!(v = arg(argc, argv, &i)))
                return CLI_USAGE;
            if (strcmp(v, "shared") == 0)
                p.kind = USHER_MERGE_SHARED;
            else if (strcmp(v, "stacked") == 0)
                p.kind = USHER_MERGE_STACKED;
            else if (strcmp(v, "side-by-side") == 0)
                p.kind = USHER_MERGE_SIDE_BY_SIDE;
            else {
                fprintf(stderr, "usher merge: --kind is shared, stacked or side-by-side\n");
                return CLI_USAGE;
            }
        } else if (strcmp(a, "--shape") == 0 || strcmp(a, "--value") == 0 ||
                   strcmp(a, "--data") == 0) {
            if (!(v = arg(argc, argv, &i)))
                return CLI_USAGE;
            if (!strchr(v, '=') || ns >= MAX_OPTS || nv >= MAX_OPTS || nd >= MAX_OPTS) {
                fprintf(stderr, "usher merge: %s wants INPUT=..., at most %d\n", a, MAX_OPTS);
                return CLI_USAGE;
            }
            if (a[2] == 's')
                shapes[ns++] = v;
            else if (a[2] == 'v')
                values[nv++] = v;
            else
                data[nd++] = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "usher merge: unknown option '%s'\n", a);
            return CLI_USAGE;
        } else {
            if (n >= MAX_OPTS) {
                fprintf(stderr, "usher merge: at most %d models\n", MAX_OPTS);
                return CLI_USAGE;
            }
            paths[n++] = a;
        }
    }
    if (n < 2 || !out) {
        fprintf(stderr, "usher merge: give two or more models and -o MERGED.onnx\n\n");
        help(stderr);
        return CLI_USAGE;
    }
    p.shapes = shapes;
    p.n_shapes = ns;
    p.values = values;
    p.n_values = nv;
    p.data = data;
    p.n_data = nd;
    usher_merge *m;
    usher_error err;
    if (usher_merge_models(paths, n, &p, &m, &err) < 0) {
        fprintf(stderr, "usher merge: %s\n", err.msg);
        return CLI_FAIL;
    }
    int rc = usher_merge_write(m, out, &err);
    const usher_merge_report *r = usher_merge_get_report(m);
    if (rc < 0) {
        fprintf(stderr, "usher merge: %s; %s not written\n", err.msg, out);
        usher_merge_free(m);
        return CLI_FAIL;
    }
    if (json) {
        char *s = usher_merge_json(m);
        if (!s) {
            fprintf(stderr, "usher merge: out of memory\n");
            usher_merge_free(m);
            return CLI_FAIL;
        }
        printf("%s\n", s);
        usher_merge_json_free(s);
    } else {
        char a[32], b[32], c[32];
        printf("merged %zu models into %s (%s)\n", r->n_models, out, r->kind_name);
        for (size_t i = 0; i < n; i++)
            printf("  %-24s %s\n", usher_merge_label(m, i), paths[i]);
        printf("why:      %s\n", r->why);
        printf("weights:  %s -> %s bytes (%s%s saved); %u of %u tensors common (%u identical, "
               "%u within %g)\n",
               cli_group(r->weight_bytes_before, a, sizeof a),
               cli_group(r->weight_bytes_after, b, sizeof b),
               r->weight_bytes_after > r->weight_bytes_before ? "-" : "",
               cli_si(r->weight_bytes_after > r->weight_bytes_before
                          ? (double)(r->weight_bytes_after - r->weight_bytes_before)
                          : (double)(r->weight_bytes_before - r->weight_bytes_after),
                      "B", c, sizeof c),
               r->n_weights_identical + r->n_weights_close, r->n_weights, r->n_weights_identical,
               r->n_weights_close, p.weight_rtol);
        printf("kernels:  %llu -> %llu (%lld saved)\n", (unsigned long long)r->kernels_before,
               (unsigned long long)r->kernels_after,
               (long long)r->kernels_before - (long long)r->kernels_after);
        printf("matched:  %u operators one-to-one; %u run once for all models, %u in part "
               "(common output channels once)\n",
               r->n_nodes_matched, r->n_nodes_shared, r->n_nodes_partial);
        printf("built in: %.3f s\n", r->build_seconds);
        if (r->verified)
            printf("verified: on ONNX Runtime, worst max abs error %.3g x scale (allowed %g); "
                   "merged run %.2fx the separate runs' speed (CPU, 1 thread)\n",
                   r->verify_max_rel_err, p.verify_tol, r->measured_speedup);
        else
            printf("verified: no (run with --verify)\n");
    }
    usher_merge_free(m);
    return CLI_OK;
}
