/* test_gpu.c - layer 2: the GPU catalog, MIG instances, the occupancy calculator and the
 * CUDA loader. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>

#include "core/buf.h"
#include "core/err.h"
#include "gpu/csv.h"
#include "gpu/cuda.h"
#include "gpu/gpu.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------------- */

/* The header of data/gpus.csv, for hand-made catalogs. */
#define HDR                                                                                        \
    "key,name,arch,compute_capability,sm_count,max_threads_per_sm,max_blocks_per_sm,regs_per_sm,"  \
    "smem_per_sm_kb,l2_mb,mem_gb,mem_bw_gbs,boost_clock_mhz,fp32_tflops,fp16_tensor_tflops,"      \
    "int8_tops,tdp_w,mig_max_instances,typical_cloud_usd_per_hour,source\n"
#define ROW_A100                                                                                   \
    "a100-80gb,A100-SXM4-80GB,Ampere (GA100),8.0,108,2048,32,65536,164,40,80,2039,1410,19.5,312,"  \
    "624,400,7,5.12,\"datasheet (2039 GB/s, \"\"MIG\"\" 7)\"\n"
#define ROW_T4 "t4,T4,Turing,7.5,40,1024,16,65536,64,4,16,320,1590,8.1,65,130,70,0,0.526,x\n"

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1); }

/* parse text, expect failure with code and every needle in the message */
static int expect_parse_error(const char *text, size_t len, int code, const char *n1,
                              const char *n2)
{
    usher_error err = {0};
    gpu_catalog *c = (gpu_catalog *)1;
    int rc = gpu_catalog_parse(text, len, "t.csv", &c, &err);
    int ok = rc == code && c == NULL && strstr(err.msg, n1) && (!n2 || strstr(err.msg, n2));
    if (!ok)
        fprintf(stderr, "  expected %s with '%s'%s%s, got %s: %s\n", usher_status_name(code), n1,
                n2 ? " and " : "", n2 ? n2 : "", usher_status_name(rc), err.msg);
    gpu_catalog_free(rc == 0 ? c : NULL);
    return ok;
}
#define EXPECT_PARSE_ERROR(text, code, n1, n2)                                                     \
    ASSERT(expect_parse_error(text, strlen(text), code, n1, n2))

/* ---- the catalog ------------------------------------------------------------- */

TEST(catalog_embedded_has_every_row)
{
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_OK(gpu_catalog_default(&c, &err));
    static const char *keys[] = {"t4",        "v100-16gb", "v100-32gb", "v100-sxm3-32gb",
                                 "a10",       "a10g",      "l4",        "a30",
                                 "a40",       "a100-40gb", "a100-80gb", "h100-sxm",
                                 "h100-pcie", "h200",      "l40s",      "b200",
                                 "rtx2080ti", "mi300x"};
    ASSERT_EQ_U64(gpu_catalog_count(c), 18);
    for (size_t i = 0; i < 18; i++) {
        ASSERT_STR_EQ(gpu_catalog_at(c, i)->key, keys[i]);
        ASSERT(!gpu_catalog_at(c, i)->is_mig);
        ASSERT_EQ_U64(gpu_catalog_at(c, i)->csv_line, i + 2);
    }
    ASSERT(gpu_catalog_at(c, 18) == NULL);
    /* 5 A30 profiles, 7 each for A100 40/80, H100 SXM/PCIe, H200, B200 */
    ASSERT_EQ_U64(gpu_catalog_count_all(c), 18 + 5 + 6 * 7);

    const gpu_type *t = NULL;
    ASSERT_OK(gpu_catalog_find(c, "a100-80gb", &t, &err));
    ASSERT_STR_EQ(t->name, "A100-SXM4-80GB");
    ASSERT_STR_EQ(t->arch, "Ampere (GA100)");
    ASSERT_STR_EQ(t->cc, "8.0");
    ASSERT(t->is_cuda && t->cc_major == 8 && t->cc_minor == 0);
    ASSERT_EQ_INT(t->sm_count, 108);
    ASSERT_EQ_INT(t->max_threads_per_sm, 2048);
    ASSERT_EQ_INT(t->max_blocks_per_sm, 32);
    ASSERT_EQ_INT(t->regs_per_sm, 65536);
    ASSERT_EQ_INT(t->smem_per_sm_kb, 164);
    ASSERT(near(t->l2_mb, 40) && near(t->mem_gb, 80) && near(t->mem_bw_gbs, 2039));
    ASSERT(near(t->boost_clock_mhz, 1410) && near(t->fp32_tflops, 19.5));
    ASSERT(near(t->fp16_tensor_tflops, 312) && near(t->int8_tops, 624) && near(t->tdp_w, 400));
    ASSERT_EQ_INT(t->mig_max_instances, 7);
    ASSERT(near(t->price_per_hour, 5.12));
    ASSERT_EQ_U64(t->known, (1u << GPU_F_COUNT) - 1); /* every number given */
    ASSERT_CONTAINS(t->source, "NVIDIA A100 80GB datasheet (2039 GB/s, 400 W, MIG 7 x 10 GB)");
    ASSERT_EQ_U64(t->n_mig_profiles, 7);

    ASSERT_OK(gpu_catalog_find(c, "h100-sxm", &t, &err));
    ASSERT_EQ_INT(t->sm_count, 132);
    ASSERT(near(t->mem_bw_gbs, 3350) && near(t->fp16_tensor_tflops, 989.4));
    ASSERT_EQ_INT(t->smem_per_sm_kb, 228);
    ASSERT_OK(gpu_catalog_find(c, "rtx2080ti", &t, &err));
    ASSERT(near(t->l2_mb, 5.5));
    ASSERT(!gpu_known(t, GPU_F_PRICE_PER_HOUR) && t->price_per_hour == 0);
    ASSERT_OK(gpu_catalog_find(c, "t4", &t, &err));
    ASSERT(near(t->price_per_hour, 0.526) && t->cc_major == 7 && t->cc_minor == 5);
    ASSERT_EQ_INT(t->mig_max_instances, 0);
    ASSERT(gpu_known(t, GPU_F_MIG_MAX_INSTANCES));
    /* empty cells are unknown, never guessed */
    ASSERT_OK(gpu_catalog_find(c, "v100-16gb", &t, &err));
    ASSERT(!gpu_known(t, GPU_F_INT8_TOPS) && t->int8_tops == 0);
    ASSERT(gpu_known(t, GPU_F_FP32_TFLOPS));
    ASSERT_OK(gpu_catalog_find(c, "a10g", &t, &err));
    ASSERT(!gpu_known(t, GPU_F_SM_COUNT) && t->sm_count == 0);
    ASSERT(gpu_known(t, GPU_F_MAX_THREADS_PER_SM));
    ASSERT_OK(gpu_catalog_find(c, "b200", &t, &err));
    ASSERT(!gpu_known(t, GPU_F_SMEM_PER_SM_KB) && t->cc_major == 10);
    ASSERT_OK(gpu_catalog_find(c, "mi300x", &t, &err));
    ASSERT(!t->is_cuda);
    ASSERT_STR_EQ(t->cc, "gfx942");
    ASSERT_EQ_INT(t->sm_count, 304);
    ASSERT(!gpu_known(t, GPU_F_MAX_THREADS_PER_SM));
    ASSERT_EQ_INT(t->mig_max_instances, 8);
    ASSERT_EQ_U64(t->n_mig_profiles, 0);
    ASSERT_STR_EQ(gpu_field_name(GPU_F_PRICE_PER_HOUR), "typical_cloud_usd_per_hour");
    ASSERT_STR_EQ(gpu_field_name(GPU_F_COUNT), "?");
    gpu_catalog_free(c);
    gpu_catalog_free(NULL);
}

static int same_type(const gpu_type *a, const gpu_type *b)
{
    return strcmp(a->key, b->key) == 0 && strcmp(a->name, b->name) == 0 &&
           strcmp(a->arch, b->arch) == 0 && strcmp(a->cc, b->cc) == 0 &&
           strcmp(a->source, b->source) == 0 && a->known == b->known &&
           a->sm_count == b->sm_count && a->max_threads_per_sm == b->max_threads_per_sm &&
           a->max_blocks_per_sm == b->max_blocks_per_sm && a->regs_per_sm == b->regs_per_sm &&
           a->smem_per_sm_kb == b->smem_per_sm_kb && a->l2_mb == b->l2_mb &&
           a->mem_gb == b->mem_gb && a->mem_bw_gbs == b->mem_bw_gbs &&
           a->boost_clock_mhz == b->boost_clock_mhz && a->fp32_tflops == b->fp32_tflops &&
           a->fp16_tensor_tflops == b->fp16_tensor_tflops && a->int8_tops == b->int8_tops &&
           a->tdp_w == b->tdp_w && a->mig_max_instances == b->mig_max_instances &&
           a->price_per_hour == b->price_per_hour && a->is_mig == b->is_mig &&
           a->n_mig_profiles == b->n_mig_profiles;
}

TEST(catalog_file_matches_embedded_copy)
{
    usher_error err = {0};
    gpu_catalog *emb = NULL, *file = NULL;
    ASSERT_OK(gpu_catalog_default(&emb, &err));
    const char *path = test_path(test_source_dir(), "data/gpus.csv");
    int rc = gpu_catalog_load(path, &file, &err);
    if (rc == 0) {
        ASSERT_EQ_U64(gpu_catalog_count_all(file), gpu_catalog_count_all(emb));
        for (size_t i = 0; i < gpu_catalog_count_all(emb); i++)
            if (!same_type(gpu_catalog_at_all(emb, i), gpu_catalog_at_all(file, i)))
                fprintf(stderr, "  type %zu (%s) differs\n", i, gpu_catalog_at_all(emb, i)->key),
                    rc = -1;
    }
    gpu_catalog_free(emb);
    gpu_catalog_free(file);
    ASSERT_EQ_INT(rc, 0);
    gpu_catalog *c = (gpu_catalog *)1;
    rc = gpu_catalog_load(test_path(test_tmpdir(), "missing.csv"), &c, &err);
    ASSERT_EQ_INT(rc, USHER_ERR_NOT_FOUND);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(err.msg, "missing.csv");
}

TEST(catalog_columns_by_name_in_any_order)
{
    /* columns shuffled, an unknown column, CRLF line ends, a BOM, blank lines, no price/source */
    const char *text =
        "\xEF\xBB\xBF"
        "notes,mem_gb,key,compute_capability,name,arch,sm_count,max_threads_per_sm,"
        "max_blocks_per_sm,regs_per_sm,smem_per_sm_kb,l2_mb,mem_bw_gbs,boost_clock_mhz,"
        "fp32_tflops,fp16_tensor_tflops,int8_tops,tdp_w,mig_max_instances\r\n"
        "\r\n"
        "\"ignored, really\",24,my-gpu.2,8.6,My GPU,,72,1536,16,65536,100,6,600,,31.2,125,250,150,"
        "0\r\n"
        "\n"
        "x,192,amd-1,gfx942,AMD,CDNA3,304,,,,64,256,5300,2100,163.4,1307.4,2614.9,750,8";
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_OK(gpu_catalog_parse(text, strlen(text), "t.csv", &c, &err));
    ASSERT_EQ_U64(gpu_catalog_count(c), 2);
    const gpu_type *t = gpu_catalog_at(c, 0);
    ASSERT_STR_EQ(t->key, "my-gpu.2");
    ASSERT_STR_EQ(t->name, "My GPU");
    ASSERT_STR_EQ(t->arch, "");
    ASSERT_STR_EQ(t->source, "");
    ASSERT_EQ_U64(t->csv_line, 3);
    ASSERT(near(t->mem_gb, 24) && t->sm_count == 72 && t->cc_major == 8 && t->cc_minor == 6);
    ASSERT(!gpu_known(t, GPU_F_BOOST_CLOCK_MHZ) && !gpu_known(t, GPU_F_PRICE_PER_HOUR));
    t = gpu_catalog_at(c, 1);
    ASSERT_EQ_U64(t->csv_line, 5);
    ASSERT(!t->is_cuda && t->mig_max_instances == 8 && t->n_mig_profiles == 0);
    gpu_catalog_free(c);
}

TEST(catalog_quoted_fields)
{
    /* quotes, commas and a line break inside a field; the next row's line number is right */
    const char *text = HDR ROW_A100
        "t4,\"T4, \"\"Turing\"\"\",\"multi\nline\",7.5,40,1024,16,65536,64,4,16,320,1590,8.1,65,"
        "130,70,0,0.526,\"\"\n" ROW_T4;
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT(expect_parse_error(text, strlen(text), USHER_ERR_PARSE, "t.csv:5: duplicate key 't4'",
                              "(already on line 3)"));
    size_t len = strlen(text) - strlen(ROW_T4);
    ASSERT_OK(gpu_catalog_parse(text, len, "t.csv", &c, &err));
    ASSERT_STR_EQ(gpu_catalog_at(c, 0)->source, "datasheet (2039 GB/s, \"MIG\" 7)");
    ASSERT_STR_EQ(gpu_catalog_at(c, 1)->name, "T4, \"Turing\"");
    ASSERT_STR_EQ(gpu_catalog_at(c, 1)->arch, "multi\nline");
    ASSERT_STR_EQ(gpu_catalog_at(c, 1)->source, "");
    gpu_catalog_free(c);
}

TEST(catalog_rejects_bad_csv)
{
    /* a required column missing */
    EXPECT_PARSE_ERROR("key,name,arch,compute_capability\na,b,c,8.0\n", USHER_ERR_PARSE,
                       "t.csv:1: missing required column 'sm_count'", NULL);
    /* a non-numeric value in a numeric column, naming line, column and field */
    EXPECT_PARSE_ERROR(HDR ROW_T4
                       "a,A,x,8.0,1o8,2048,32,65536,164,40,80,2039,1410,19.5,312,624,400,7,5.12,"
                       "s\n",
                       USHER_ERR_PARSE, "t.csv:3:11: column 5 'sm_count': '1o8' is not a whole",
                       NULL);
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.0,108,2048,32,65536,164,40,80,\"2,039\",1410,19.5,312,624,400,"
                           "7,5.12,s\n",
                       USHER_ERR_PARSE, "t.csv:2:",
                       "column 12 'mem_bw_gbs': '2,039' is not a number");
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.0,108,2048,32,65536,164,40,-80,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "column 11 'mem_gb': '-80' is not a number", NULL);
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.0,108,2048,32,65536,164,40,1e3,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "'1e3' is not a number", NULL);
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.0,108,2048,32,65536,164,40,5.,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "'5.' is not a number", NULL);
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.0, 108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "' 108' is not a whole number", NULL);
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.0,1234567890,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "1234567890 is larger than", NULL);
    EXPECT_PARSE_ERROR(HDR "a,A,x,8.x,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "column 4 'compute_capability': '8.x' is neither", NULL);
    /* keys */
    EXPECT_PARSE_ERROR(HDR ROW_A100 ROW_T4 ROW_A100, USHER_ERR_PARSE,
                       "t.csv:4: duplicate key 'a100-80gb' (already on line 2)", NULL);
    EXPECT_PARSE_ERROR(HDR "A100,A,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "t.csv:2:1: column 1 'key': key 'A100' may only hold",
                       NULL);
    EXPECT_PARSE_ERROR(HDR "a:b,A,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "key 'a:b' may only hold", NULL);
    EXPECT_PARSE_ERROR(HDR ",A,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "the key is empty", NULL);
    EXPECT_PARSE_ERROR(HDR "a,,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,s\n",
                       USHER_ERR_PARSE, "column 2 'name': the name is empty", NULL);
    /* syntax */
    EXPECT_PARSE_ERROR(HDR ROW_T4 "a,\"A,x,8.0,108\n", USHER_ERR_PARSE,
                       "t.csv:3:3: unterminated quoted field", NULL);
    EXPECT_PARSE_ERROR(HDR "a,\"A\"x,x,8.0\n", USHER_ERR_PARSE, "t.csv:2:6: 'x' after the closing",
                       NULL);
    EXPECT_PARSE_ERROR(HDR "a,A\"B,x,8.0\n", USHER_ERR_PARSE,
                       "t.csv:2:4: '\"' inside an unquoted field", NULL);
    EXPECT_PARSE_ERROR(HDR "a,A\rB,x,8.0\n", USHER_ERR_PARSE, "t.csv:2:4: carriage return", NULL);
    ASSERT(expect_parse_error(HDR "a,A\0B\n", sizeof(HDR "a,A\0B\n") - 1, USHER_ERR_PARSE,
                              "t.csv:2:4: NUL byte", NULL));
    EXPECT_PARSE_ERROR(HDR ROW_T4 "a,b,c\n", USHER_ERR_PARSE,
                       "t.csv:3: 3 fields, but the header has 20", NULL);
    EXPECT_PARSE_ERROR("key,name,key\n", USHER_ERR_PARSE,
                       "t.csv:1:10: header column 3 'key' repeats column 1", NULL);
    EXPECT_PARSE_ERROR("key,,name\n", USHER_ERR_PARSE, "t.csv:1:5: header column 2 has no name",
                       NULL);
    /* empty input, header only */
    ASSERT(expect_parse_error("", 0, USHER_ERR_PARSE, "t.csv:1: empty: no header line", NULL));
    EXPECT_PARSE_ERROR("\n\r\n\n", USHER_ERR_PARSE, "empty: no header line", NULL);
    EXPECT_PARSE_ERROR(HDR, USHER_ERR_PARSE, "t.csv:2: no GPU rows after the header", NULL);
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_EQ_INT(gpu_catalog_parse(NULL, 5, "t.csv", &c, &err), USHER_ERR_INVALID);
}

TEST(catalog_limits)
{
    us_buf b;
    us_buf_init(&b, 0);
    /* an over-long field (the source column) */
    us_buf_puts(&b, HDR "a,A,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,");
    for (int i = 0; i < 4097; i++)
        us_buf_putc(&b, 'z');
    us_buf_putc(&b, '\n');
    ASSERT(expect_parse_error(b.data, b.len, USHER_ERR_LIMIT,
                              "t.csv:2:", "field longer than 4096 bytes"));
    /* the same inside quotes */
    us_buf_reset(&b);
    us_buf_puts(&b, HDR "a,A,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,\"");
    for (int i = 0; i < 4097; i++)
        us_buf_putc(&b, ',');
    us_buf_puts(&b, "\"\n");
    ASSERT(expect_parse_error(b.data, b.len, USHER_ERR_LIMIT, "field longer than 4096 bytes",
                              NULL));
    /* exactly 4096 bytes is fine */
    us_buf_reset(&b);
    us_buf_puts(&b, HDR "a,A,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,7,1,");
    for (int i = 0; i < 4096; i++)
        us_buf_putc(&b, 'z');
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_OK(gpu_catalog_parse(b.data, b.len, "t.csv", &c, &err));
    ASSERT_EQ_U64(strlen(gpu_catalog_at(c, 0)->source), 4096);
    gpu_catalog_free(c);
    /* 256 rows are fine, 257 are not */
    us_buf_reset(&b);
    us_buf_puts(&b, HDR);
    for (int i = 0; i < 257; i++)
        us_buf_printf(&b, "g%d,G,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,0,1,s\n", i);
    ASSERT(us_buf_ok(&b));
    ASSERT(expect_parse_error(b.data, b.len, USHER_ERR_LIMIT, "t.csv:258: more than 256 GPU rows",
                              NULL));
    size_t last = b.len - strlen("g256,G,x,8.0,108,2048,32,65536,164,40,5,1,1,1,1,1,1,0,1,s\n");
    ASSERT_OK(gpu_catalog_parse(b.data, last, "t.csv", &c, &err));
    ASSERT_EQ_U64(gpu_catalog_count(c), 256);
    gpu_catalog_free(c);
    /* 65 columns */
    us_buf_reset(&b);
    us_buf_puts(&b, "key");
    for (int i = 0; i < 64; i++)
        us_buf_printf(&b, ",c%d", i);
    us_buf_putc(&b, '\n');
    ASSERT(expect_parse_error(b.data, b.len, USHER_ERR_LIMIT, "t.csv:1:", "more than 64 columns"));
    /* over 1 MiB */
    us_buf_free(&b);
    us_buf_init(&b, 0);
    us_buf_puts(&b, HDR);
    while (b.len <= GPU_CSV_MAX_BYTES)
        us_buf_puts(&b, "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n");
    ASSERT(us_buf_ok(&b));
    ASSERT(expect_parse_error(b.data, b.len, USHER_ERR_LIMIT, "over the 1048576-byte limit", NULL));
    us_buf_free(&b);
}

TEST(catalog_survives_allocation_failures)
{
    uint64_t missing = us_err_missing_detail_count();
    int done = 0;
    for (uint64_t k = 1; k < 1000 && !done; k++) {
        usher_error err = {0};
        gpu_catalog *c = NULL;
        uint64_t before = us_alloc_injected_failures();
        us_alloc_fail_nth(k);
        int rc = gpu_catalog_default(&c, &err);
        us_alloc_fail_nth(0);
        int injected = us_alloc_injected_failures() != before;
        if (rc == 0) {
            ASSERT(c != NULL && !injected); /* a failed allocation must not be swallowed */
            gpu_catalog_free(c);
            done = 1; /* k is past the last allocation */
        } else {
            ASSERT(injected);
            ASSERT_EQ_INT(rc, USHER_ERR_NOMEM);
            ASSERT(c == NULL);
            ASSERT_CONTAINS(err.msg, "out of memory");
        }
    }
    ASSERT(done);
    ASSERT_EQ_U64(us_err_missing_detail_count(), missing);
}

/* ---- MIG ----------------------------------------------------------------------- */

/* Every profile of every MIG GPU: compute slices, memory slices, SMs, memory (GB). */
static const struct {
    const char *key;
    int gpcs, mem_slices, sms;
    double mem_gb;
} mig_expect[] = {
    {"a30:1g.6gb", 1, 1, 14, 6},
    {"a30:1g.6gb+me", 1, 1, 14, 6},
    {"a30:2g.12gb", 2, 2, 28, 12},
    {"a30:2g.12gb+me", 2, 2, 28, 12},
    {"a30:4g.24gb", 4, 4, 56, 24},
    {"a100-40gb:1g.5gb", 1, 1, 14, 5},
    {"a100-40gb:1g.5gb+me", 1, 1, 14, 5},
    {"a100-40gb:1g.10gb", 1, 2, 14, 10},
    {"a100-40gb:2g.10gb", 2, 2, 28, 10},
    {"a100-40gb:3g.20gb", 3, 4, 42, 20},
    {"a100-40gb:4g.20gb", 4, 4, 56, 20},
    {"a100-40gb:7g.40gb", 7, 8, 98, 40},
    {"a100-80gb:1g.10gb", 1, 1, 14, 10},
    {"a100-80gb:1g.10gb+me", 1, 1, 14, 10},
    {"a100-80gb:1g.20gb", 1, 2, 14, 20},
    {"a100-80gb:2g.20gb", 2, 2, 28, 20},
    {"a100-80gb:3g.40gb", 3, 4, 42, 40},
    {"a100-80gb:4g.40gb", 4, 4, 56, 40},
    {"a100-80gb:7g.80gb", 7, 8, 98, 80},
    {"h100-sxm:1g.10gb", 1, 1, 16, 10},
    {"h100-sxm:1g.10gb+me", 1, 1, 16, 10},
    {"h100-sxm:1g.20gb", 1, 2, 26, 20},
    {"h100-sxm:2g.20gb", 2, 2, 32, 20},
    {"h100-sxm:3g.40gb", 3, 4, 60, 40},
    {"h100-sxm:4g.40gb", 4, 4, 64, 40},
    {"h100-sxm:7g.80gb", 7, 8, 132, 80},
    {"h100-pcie:1g.10gb", 1, 1, 16, 10}, /* derived */
    {"h100-pcie:1g.10gb+me", 1, 1, 16, 10},
    {"h100-pcie:1g.20gb", 1, 2, 16, 20},
    {"h100-pcie:2g.20gb", 2, 2, 32, 20},
    {"h100-pcie:3g.40gb", 3, 4, 48, 40},
    {"h100-pcie:4g.40gb", 4, 4, 64, 40},
    {"h100-pcie:7g.80gb", 7, 8, 114, 80},
    {"h200:1g.18gb", 1, 1, 16, 17.625},
    {"h200:1g.18gb+me", 1, 1, 16, 17.625},
    {"h200:1g.35gb", 1, 2, 26, 35.25},
    {"h200:2g.35gb", 2, 2, 32, 35.25},
    {"h200:3g.71gb", 3, 4, 60, 70.5},
    {"h200:4g.71gb", 4, 4, 64, 70.5},
    {"h200:7g.141gb", 7, 8, 132, 141},
    {"b200:1g.23gb", 1, 1, 18, 22.5},
    {"b200:1g.23gb+me", 1, 1, 18, 22.5},
    {"b200:1g.45gb", 1, 2, 30, 45},
    {"b200:2g.45gb", 2, 2, 36, 45},
    {"b200:3g.90gb", 3, 4, 62, 90}, /* derived */
    {"b200:4g.90gb", 4, 4, 84, 90}, /* derived */
    {"b200:7g.180gb", 7, 8, 148, 180}, /* derived */
};

TEST(mig_every_profile_derives)
{
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_OK(gpu_catalog_default(&c, &err));
    size_t n_expect = sizeof mig_expect / sizeof mig_expect[0], seen = 0;
    ASSERT_EQ_U64(gpu_catalog_count_all(c) - gpu_catalog_count(c), n_expect);
    for (size_t i = 0; i < gpu_catalog_count(c); i++) {
        const gpu_type *p = gpu_catalog_at(c, i);
        const char *const *names = NULL;
        size_t n = 99;
        ASSERT_OK(gpu_mig_profiles(p, &names, &n));
        if (p->mig_max_instances == 0 || !p->is_cuda)
            ASSERT_EQ_U64(n, 0);
        for (size_t k = 0; k < n; k++, seen++) {
            char key[128];
            snprintf(key, sizeof key, "%s:%s", p->key, names[k]);
            const gpu_type *t = NULL;
            ASSERT_OK(gpu_catalog_find(c, key, &t, &err));
            size_t e = 0;
            while (e < n_expect && strcmp(mig_expect[e].key, key) != 0)
                e++;
            if (e == n_expect)
                FAIL_("%s is not in mig_expect", key);
            ASSERT_STR_EQ(t->key, key);
            ASSERT(t->is_mig && t->parent == p);
            ASSERT_STR_EQ(t->parent_key, p->key);
            ASSERT_STR_EQ(t->mig_profile, names[k]);
            ASSERT_EQ_INT(t->mig_gpcs, mig_expect[e].gpcs);
            ASSERT_EQ_INT(t->mig_mem_slices, mig_expect[e].mem_slices);
            ASSERT_EQ_INT(t->sm_count, mig_expect[e].sms);
            ASSERT(near(t->mem_gb, mig_expect[e].mem_gb));
            ASSERT(gpu_known(t, GPU_F_SM_COUNT) && gpu_known(t, GPU_F_MEM_GB));
            ASSERT_EQ_INT(t->mig_max_instances, 0);
            ASSERT_EQ_U64(t->n_mig_profiles, 0);
            ASSERT(t->mig_profile_max_count >= 1 && t->mig_profile_max_count <= 7);
            /* scaling rules */
            double mf = (double)t->mig_mem_slices / t->mig_mem_slices_total;
            double cf = (double)t->sm_count / p->sm_count;
            double gf = (double)t->mig_gpcs / t->mig_gpcs_total;
            double share = gf > mf ? gf : mf;
            ASSERT(near(t->mig_memory_fraction, mf) && near(t->mig_compute_fraction, cf));
            ASSERT(near(t->mig_share, share));
            ASSERT(near(t->l2_mb, p->l2_mb * mf) && near(t->mem_bw_gbs, p->mem_bw_gbs * mf));
            ASSERT(near(t->fp32_tflops, p->fp32_tflops * cf));
            ASSERT(near(t->fp16_tensor_tflops, p->fp16_tensor_tflops * cf));
            ASSERT(near(t->int8_tops, p->int8_tops * cf));
            ASSERT(near(t->tdp_w, p->tdp_w * share));
            ASSERT(near(t->price_per_hour, p->price_per_hour * share));
            ASSERT_EQ_INT(gpu_known(t, GPU_F_PRICE_PER_HOUR), gpu_known(p, GPU_F_PRICE_PER_HOUR));
            ASSERT(t->max_threads_per_sm == p->max_threads_per_sm && t->cc_major == p->cc_major);
            ASSERT_CONTAINS(t->name, " MIG ");
            ASSERT_CONTAINS(t->source, names[k]);
            /* the occupancy limits of an instance are its parent's */
            gpu_sm_limits lim;
            ASSERT_OK(gpu_sm_limits_for_type(t, &lim, &err));
            ASSERT_EQ_INT(lim.cc_major, p->cc_major);
        }
    }
    ASSERT_EQ_U64(seen, n_expect);

    const gpu_type *t = NULL;
    ASSERT_OK(gpu_catalog_find(c, "a100-80gb:3g.40gb", &t, &err));
    ASSERT(near(t->l2_mb, 20) && near(t->mem_bw_gbs, 1019.5) && near(t->price_per_hour, 2.56));
    ASSERT_EQ_INT(t->mig_sm_basis, GPU_MIG_SM_LISTED);
    ASSERT_STR_EQ(t->name, "A100-SXM4-80GB MIG 3g.40gb");
    ASSERT_OK(gpu_catalog_find(c, "a100-80gb:7g.80gb", &t, &err));
    ASSERT(near(t->price_per_hour, 5.12) && near(t->tdp_w, 400)); /* the whole GPU is taken */
    ASSERT(near(t->fp32_tflops, 19.5 * 98 / 108));                /* but 10 SMs idle */
    ASSERT_OK(gpu_catalog_find(c, "a100-80gb:1g.20gb", &t, &err));
    ASSERT(near(t->price_per_hour, 5.12 / 4) && t->mig_profile_max_count == 4);
    ASSERT_OK(gpu_catalog_find(c, "h100-sxm:1g.20gb", &t, &err));
    ASSERT_EQ_INT(t->mig_sm_basis, GPU_MIG_SM_SAME_DIE);
    ASSERT_OK(gpu_catalog_find(c, "h100-pcie:7g.80gb", &t, &err));
    ASSERT_EQ_INT(t->mig_sm_basis, GPU_MIG_SM_DERIVED);
    ASSERT(!gpu_known(t, GPU_F_PRICE_PER_HOUR));
    ASSERT_CONTAINS(t->source, "derived");
    ASSERT_OK(gpu_catalog_find(c, "b200:2g.45gb", &t, &err));
    ASSERT_EQ_INT(t->mig_sm_basis, GPU_MIG_SM_LISTED);
    ASSERT_OK(gpu_catalog_find(c, "b200:4g.90gb", &t, &err));
    ASSERT_EQ_INT(t->mig_sm_basis, GPU_MIG_SM_DERIVED);
    ASSERT_OK(gpu_catalog_find(c, "a30:4g.24gb", &t, &err));
    ASSERT(near(t->mig_share, 1) && near(t->l2_mb, 24) && t->mig_gpcs_total == 4);
    gpu_catalog_free(c);
}

TEST(mig_lookup_errors_list_alternatives)
{
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_OK(gpu_catalog_default(&c, &err));
    const gpu_type *t = (const gpu_type *)1;
    ASSERT_EQ_INT(gpu_catalog_find(c, "a100", &t, &err), USHER_ERR_NOT_FOUND);
    ASSERT(t == NULL);
    ASSERT_CONTAINS(err.msg, "unknown GPU 'a100'");
    ASSERT_CONTAINS(err.msg, "t4, v100-16gb,");
    ASSERT_CONTAINS(err.msg, "a100-80gb, h100-sxm");
    ASSERT_CONTAINS(err.msg, "mi300x");
    ASSERT_EQ_INT(gpu_catalog_find(c, "a100:3g.40gb", &t, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "unknown GPU 'a100'");
    ASSERT_EQ_INT(gpu_catalog_find(c, "", &t, &err), USHER_ERR_NOT_FOUND);
    ASSERT_EQ_INT(gpu_catalog_find(c, "a100-80gb:3g.20gb", &t, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "GPU 'a100-80gb' has no MIG profile '3g.20gb'; its profiles: "
                             "1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb");
    ASSERT_EQ_INT(gpu_catalog_find(c, "a100-80gb:", &t, &err), USHER_ERR_NOT_FOUND);
    ASSERT_EQ_INT(gpu_catalog_find(c, "a100-80gb:3g.40gb:x", &t, &err), USHER_ERR_NOT_FOUND);
    ASSERT_EQ_INT(gpu_catalog_find(c, "t4:1g.5gb", &t, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "GPU 't4' does not support MIG (mig_max_instances is 0)");
    ASSERT_CONTAINS(err.msg,
                    "MIG GPUs: a30, a100-40gb, a100-80gb, h100-sxm, h100-pcie, h200, b200");
    ASSERT_EQ_INT(gpu_catalog_find(c, "a10g:1g.6gb", &t, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_EQ_INT(gpu_catalog_find(c, "mi300x:1g.24gb", &t, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "'mi300x' has mig_max_instances 8 but usher has no MIG profile table");
    ASSERT_CONTAINS(err.msg, "not an NVIDIA GPU");
    ASSERT_EQ_INT(gpu_catalog_find(NULL, "t4", &t, &err), USHER_ERR_INVALID);
    ASSERT_EQ_INT(gpu_catalog_find(c, NULL, &t, &err), USHER_ERR_INVALID);
    /* profiles of an instance or of a GPU without MIG: none */
    const char *const *names = NULL;
    size_t n = 9;
    ASSERT_OK(gpu_catalog_find(c, "a30:1g.6gb", &t, &err));
    ASSERT_OK(gpu_mig_profiles(t, &names, &n));
    ASSERT_EQ_U64(n, 0);
    ASSERT_EQ_INT(gpu_mig_profiles(NULL, &names, &n), USHER_ERR_INVALID);
    gpu_catalog_free(c);

    /* a MIG-capable row with a key usher has no table for, and a known key without MIG */
    const char *text = HDR "h100-nvl,H100 NVL,Hopper,9.0,132,2048,32,65536,228,50,94,3900,,,,,"
                           "400,7,,s\n"
                           "a30,A30,Ampere,8.0,56,2048,32,65536,164,24,24,933,,,,,165,0,,s\n";
    ASSERT_OK(gpu_catalog_parse(text, strlen(text), "t.csv", &c, &err));
    ASSERT_EQ_U64(gpu_catalog_count_all(c), 2);
    ASSERT_EQ_INT(gpu_catalog_find(c, "h100-nvl:1g.12gb", &t, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "no MIG profile table for it, so it has no profile '1g.12gb'");
    ASSERT_EQ_INT(gpu_catalog_find(c, "a30:1g.6gb", &t, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "does not support MIG");
    gpu_catalog_free(c);
}

/* ---- occupancy ------------------------------------------------------------------ */

/*
 * Golden values from NVIDIA's occupancy calculator (cuda_occupancy.h of the
 * CUDA 13 toolkit), printed by tools/occupancy/golden.cpp:
 *   g++ -std=c++17 -O1 -I/usr/local/cuda/include tools/occupancy/golden.cpp -o /tmp/golden
 *   /tmp/golden
 * {cc major, cc minor, threads per block, registers per thread, shared memory bytes per block
 *  (dynamic, kernel opted in to the maximum), carve-out % (-1 default), blocks per SM (0: the
 *  launch cannot run), limiting factors (1 warps, 2 registers, 4 shared memory, 8 slots)}.
 */
static const struct {
    int major, minor, threads, regs;
    size_t smem;
    int carveout, blocks;
    unsigned limiters;
} occ_golden[] = {
    /* compute capability 7.0 */
    {7, 0, 1, 32, 0, -1, 32, 0x08},
    {7, 0, 32, 32, 0, -1, 32, 0x08},
    {7, 0, 33, 32, 0, -1, 32, 0x0b},
    {7, 0, 64, 32, 0, -1, 32, 0x0b},
    {7, 0, 96, 32, 0, -1, 21, 0x03},
    {7, 0, 100, 32, 0, -1, 16, 0x03},
    {7, 0, 128, 32, 0, -1, 16, 0x03},
    {7, 0, 160, 32, 0, -1, 12, 0x03},
    {7, 0, 192, 32, 0, -1, 10, 0x03},
    {7, 0, 256, 32, 0, -1, 8, 0x03},
    {7, 0, 288, 32, 0, -1, 7, 0x03},
    {7, 0, 320, 32, 0, -1, 6, 0x03},
    {7, 0, 384, 32, 0, -1, 5, 0x03},
    {7, 0, 448, 32, 0, -1, 4, 0x03},
    {7, 0, 500, 32, 0, -1, 4, 0x03},
    {7, 0, 512, 32, 0, -1, 4, 0x03},
    {7, 0, 576, 32, 0, -1, 3, 0x03},
    {7, 0, 640, 32, 0, -1, 3, 0x03},
    {7, 0, 768, 32, 0, -1, 2, 0x03},
    {7, 0, 800, 32, 0, -1, 2, 0x03},
    {7, 0, 896, 32, 0, -1, 2, 0x03},
    {7, 0, 992, 32, 0, -1, 2, 0x03},
    {7, 0, 1000, 32, 0, -1, 2, 0x03},
    {7, 0, 1024, 32, 0, -1, 2, 0x03},
    {7, 0, 256, 0, 0, -1, 8, 0x01},
    {7, 0, 256, 8, 0, -1, 8, 0x01},
    {7, 0, 256, 16, 0, -1, 8, 0x01},
    {7, 0, 256, 24, 0, -1, 8, 0x01},
    {7, 0, 256, 32, 0, -1, 8, 0x03},
    {7, 0, 256, 37, 0, -1, 6, 0x02},
    {7, 0, 256, 40, 0, -1, 6, 0x02},
    {7, 0, 256, 48, 0, -1, 5, 0x02},
    {7, 0, 256, 56, 0, -1, 4, 0x02},
    {7, 0, 256, 64, 0, -1, 4, 0x02},
    {7, 0, 256, 72, 0, -1, 3, 0x02},
    {7, 0, 256, 80, 0, -1, 3, 0x02},
    {7, 0, 256, 96, 0, -1, 2, 0x02},
    {7, 0, 256, 128, 0, -1, 2, 0x02},
    {7, 0, 256, 168, 0, -1, 1, 0x02},
    {7, 0, 256, 200, 0, -1, 1, 0x02},
    {7, 0, 256, 255, 0, -1, 1, 0x02},
    {7, 0, 128, 32, 0, -1, 16, 0x03},
    {7, 0, 128, 32, 1, -1, 16, 0x03},
    {7, 0, 128, 32, 1024, -1, 16, 0x03},
    {7, 0, 128, 32, 3000, -1, 16, 0x03},
    {7, 0, 128, 32, 4096, -1, 16, 0x03},
    {7, 0, 128, 32, 8192, -1, 12, 0x04},
    {7, 0, 128, 32, 12288, -1, 8, 0x04},
    {7, 0, 128, 32, 16384, -1, 6, 0x04},
    {7, 0, 128, 32, 24576, -1, 4, 0x04},
    {7, 0, 128, 32, 32768, -1, 3, 0x04},
    {7, 0, 128, 32, 40000, -1, 2, 0x04},
    {7, 0, 128, 32, 49152, -1, 2, 0x04},
    {7, 0, 128, 32, 65536, -1, 1, 0x04},
    {7, 0, 128, 32, 73728, -1, 1, 0x04},
    {7, 0, 128, 32, 98304, -1, 1, 0x04},
    {7, 0, 128, 32, 98304, -1, 1, 0x04},
    {7, 0, 128, 32, 98305, -1, 0, 0x04},
    {7, 0, 1024, 64, 0, -1, 1, 0x02},
    {7, 0, 1024, 72, 0, -1, 0, 0x02},
    {7, 0, 800, 80, 0, -1, 0, 0x02},
    {7, 0, 512, 24, 98304, -1, 1, 0x04},
    {7, 0, 96, 72, 98304, -1, 1, 0x04},
    {7, 0, 992, 96, 49152, -1, 0, 0x02},
    {7, 0, 896, 96, 98304, -1, 0, 0x02},
    {7, 0, 128, 32, 12288, -1, 8, 0x04},
    {7, 0, 64, 0, 1, -1, 32, 0x09},
    {7, 0, 1024, 48, 24576, -1, 1, 0x02},
    {7, 0, 128, 56, 0, -1, 9, 0x02},
    {7, 0, 1, 56, 1024, -1, 32, 0x08},
    {7, 0, 576, 128, 12288, -1, 0, 0x02},
    {7, 0, 512, 16, 98304, -1, 1, 0x04},
    {7, 0, 192, 16, 98304, -1, 1, 0x04},
    {7, 0, 288, 255, 3000, -1, 0, 0x02},
    {7, 0, 1, 32, 24576, -1, 4, 0x04},
    {7, 0, 192, 64, 73728, -1, 1, 0x04},
    {7, 0, 512, 32, 98304, -1, 1, 0x04},
    {7, 0, 192, 0, 98304, -1, 1, 0x04},
    {7, 0, 160, 40, 24576, -1, 4, 0x04},
    {7, 0, 160, 32, 65536, -1, 1, 0x04},
    {7, 0, 160, 200, 98304, -1, 1, 0x06},
    {7, 0, 500, 96, 3000, -1, 1, 0x02},
    {7, 0, 256, 128, 73728, -1, 1, 0x04},
    {7, 0, 576, 128, 24576, -1, 0, 0x02},
    {7, 0, 800, 255, 40000, -1, 0, 0x02},
    {7, 0, 1024, 16, 98304, -1, 1, 0x04},
    {7, 0, 256, 128, 1, -1, 2, 0x02},
    {7, 0, 512, 37, 32768, -1, 3, 0x06},
    {7, 0, 256, 80, 40000, -1, 2, 0x04},
    {7, 0, 192, 48, 98304, -1, 1, 0x04},
    {7, 0, 96, 80, 40000, -1, 2, 0x04},
    {7, 0, 512, 24, 16384, 25, 2, 0x04},
    {7, 0, 96, 40, 49152, 10, 1, 0x04},
    {7, 0, 448, 72, 8192, 0, 1, 0x04},
    {7, 0, 500, 48, 40000, 100, 2, 0x06},
    {7, 0, 768, 64, 1, 25, 1, 0x02},
    {7, 0, 1000, 48, 24576, 0, 1, 0x06},
    {7, 0, 1000, 40, 32768, 75, 1, 0x02},
    {7, 0, 100, 16, 8192, 75, 12, 0x04},
    {7, 0, 576, 72, 24576, 75, 1, 0x02},
    {7, 0, 800, 48, 1, 50, 1, 0x02},
    /* compute capability 7.5 */
    {7, 5, 1, 32, 0, -1, 16, 0x08},
    {7, 5, 32, 32, 0, -1, 16, 0x08},
    {7, 5, 33, 32, 0, -1, 16, 0x09},
    {7, 5, 64, 32, 0, -1, 16, 0x09},
    {7, 5, 96, 32, 0, -1, 10, 0x01},
    {7, 5, 100, 32, 0, -1, 8, 0x01},
    {7, 5, 128, 32, 0, -1, 8, 0x01},
    {7, 5, 160, 32, 0, -1, 6, 0x01},
    {7, 5, 192, 32, 0, -1, 5, 0x01},
    {7, 5, 256, 32, 0, -1, 4, 0x01},
    {7, 5, 288, 32, 0, -1, 3, 0x01},
    {7, 5, 320, 32, 0, -1, 3, 0x01},
    {7, 5, 384, 32, 0, -1, 2, 0x01},
    {7, 5, 448, 32, 0, -1, 2, 0x01},
    {7, 5, 500, 32, 0, -1, 2, 0x01},
    {7, 5, 512, 32, 0, -1, 2, 0x01},
    {7, 5, 576, 32, 0, -1, 1, 0x01},
    {7, 5, 640, 32, 0, -1, 1, 0x01},
    {7, 5, 768, 32, 0, -1, 1, 0x01},
    {7, 5, 800, 32, 0, -1, 1, 0x01},
    {7, 5, 896, 32, 0, -1, 1, 0x01},
    {7, 5, 992, 32, 0, -1, 1, 0x01},
    {7, 5, 1000, 32, 0, -1, 1, 0x01},
    {7, 5, 1024, 32, 0, -1, 1, 0x01},
    {7, 5, 256, 0, 0, -1, 4, 0x01},
    {7, 5, 256, 8, 0, -1, 4, 0x01},
    {7, 5, 256, 16, 0, -1, 4, 0x01},
    {7, 5, 256, 24, 0, -1, 4, 0x01},
    {7, 5, 256, 32, 0, -1, 4, 0x01},
    {7, 5, 256, 37, 0, -1, 4, 0x01},
    {7, 5, 256, 40, 0, -1, 4, 0x01},
    {7, 5, 256, 48, 0, -1, 4, 0x01},
    {7, 5, 256, 56, 0, -1, 4, 0x03},
    {7, 5, 256, 64, 0, -1, 4, 0x03},
    {7, 5, 256, 72, 0, -1, 3, 0x02},
    {7, 5, 256, 80, 0, -1, 3, 0x02},
    {7, 5, 256, 96, 0, -1, 2, 0x02},
    {7, 5, 256, 128, 0, -1, 2, 0x02},
    {7, 5, 256, 168, 0, -1, 1, 0x02},
    {7, 5, 256, 200, 0, -1, 1, 0x02},
    {7, 5, 256, 255, 0, -1, 1, 0x02},
    {7, 5, 128, 32, 0, -1, 8, 0x01},
    {7, 5, 128, 32, 1, -1, 8, 0x01},
    {7, 5, 128, 32, 1024, -1, 8, 0x01},
    {7, 5, 128, 32, 3000, -1, 8, 0x01},
    {7, 5, 128, 32, 4096, -1, 8, 0x01},
    {7, 5, 128, 32, 8192, -1, 8, 0x05},
    {7, 5, 128, 32, 12288, -1, 5, 0x04},
    {7, 5, 128, 32, 16384, -1, 4, 0x04},
    {7, 5, 128, 32, 24576, -1, 2, 0x04},
    {7, 5, 128, 32, 32768, -1, 2, 0x04},
    {7, 5, 128, 32, 40000, -1, 1, 0x04},
    {7, 5, 128, 32, 49152, -1, 1, 0x04},
    {7, 5, 128, 32, 65536, -1, 1, 0x04},
    {7, 5, 128, 32, 65536, -1, 1, 0x04},
    {7, 5, 128, 32, 65537, -1, 0, 0x04},
    {7, 5, 1024, 64, 0, -1, 1, 0x03},
    {7, 5, 1024, 72, 0, -1, 0, 0x02},
    {7, 5, 800, 80, 0, -1, 0, 0x02},
    {7, 5, 768, 8, 1, -1, 1, 0x01},
    {7, 5, 192, 255, 40000, -1, 1, 0x06},
    {7, 5, 800, 32, 4096, -1, 1, 0x01},
    {7, 5, 576, 24, 65536, -1, 1, 0x05},
    {7, 5, 992, 0, 65536, -1, 1, 0x05},
    {7, 5, 640, 255, 40000, -1, 0, 0x02},
    {7, 5, 576, 48, 65536, -1, 1, 0x05},
    {7, 5, 512, 37, 65536, -1, 1, 0x04},
    {7, 5, 256, 255, 24576, -1, 1, 0x02},
    {7, 5, 160, 32, 8192, -1, 6, 0x01},
    {7, 5, 640, 96, 32768, -1, 1, 0x03},
    {7, 5, 992, 8, 65536, -1, 1, 0x05},
    {7, 5, 320, 255, 12288, -1, 0, 0x02},
    {7, 5, 500, 56, 1, -1, 2, 0x03},
    {7, 5, 640, 96, 65536, -1, 1, 0x07},
    {7, 5, 128, 64, 65536, -1, 1, 0x04},
    {7, 5, 160, 80, 65536, -1, 1, 0x04},
    {7, 5, 288, 64, 65536, -1, 1, 0x04},
    {7, 5, 128, 48, 24576, -1, 2, 0x04},
    {7, 5, 992, 64, 65536, -1, 1, 0x07},
    {7, 5, 640, 24, 65536, -1, 1, 0x05},
    {7, 5, 128, 64, 16384, -1, 4, 0x04},
    {7, 5, 33, 8, 0, -1, 16, 0x09},
    {7, 5, 1024, 168, 65536, -1, 0, 0x02},
    {7, 5, 896, 255, 65536, -1, 0, 0x02},
    {7, 5, 160, 0, 65536, -1, 1, 0x04},
    {7, 5, 33, 64, 65536, -1, 1, 0x04},
    {7, 5, 1, 80, 65536, -1, 1, 0x04},
    {7, 5, 500, 72, 65536, -1, 1, 0x06},
    {7, 5, 32, 24, 65536, -1, 1, 0x04},
    {7, 5, 32, 0, 0, 75, 16, 0x08},
    {7, 5, 384, 72, 0, 100, 2, 0x03},
    {7, 5, 768, 24, 24576, 50, 1, 0x05},
    {7, 5, 896, 80, 4096, 10, 0, 0x02},
    {7, 5, 256, 8, 12288, 50, 2, 0x04},
    {7, 5, 64, 16, 24576, 50, 1, 0x04},
    {7, 5, 576, 72, 49152, 10, 1, 0x07},
    {7, 5, 256, 8, 49152, 0, 1, 0x04},
    {7, 5, 992, 48, 0, 50, 1, 0x03},
    {7, 5, 128, 48, 8192, 50, 4, 0x04},
    /* compute capability 8.0 */
    {8, 0, 1, 32, 0, -1, 32, 0x08},
    {8, 0, 32, 32, 0, -1, 32, 0x08},
    {8, 0, 33, 32, 0, -1, 32, 0x0b},
    {8, 0, 64, 32, 0, -1, 32, 0x0b},
    {8, 0, 96, 32, 0, -1, 21, 0x03},
    {8, 0, 100, 32, 0, -1, 16, 0x03},
    {8, 0, 128, 32, 0, -1, 16, 0x03},
    {8, 0, 160, 32, 0, -1, 12, 0x03},
    {8, 0, 192, 32, 0, -1, 10, 0x03},
    {8, 0, 256, 32, 0, -1, 8, 0x03},
    {8, 0, 288, 32, 0, -1, 7, 0x03},
    {8, 0, 320, 32, 0, -1, 6, 0x03},
    {8, 0, 384, 32, 0, -1, 5, 0x03},
    {8, 0, 448, 32, 0, -1, 4, 0x03},
    {8, 0, 500, 32, 0, -1, 4, 0x03},
    {8, 0, 512, 32, 0, -1, 4, 0x03},
    {8, 0, 576, 32, 0, -1, 3, 0x03},
    {8, 0, 640, 32, 0, -1, 3, 0x03},
    {8, 0, 768, 32, 0, -1, 2, 0x03},
    {8, 0, 800, 32, 0, -1, 2, 0x03},
    {8, 0, 896, 32, 0, -1, 2, 0x03},
    {8, 0, 992, 32, 0, -1, 2, 0x03},
    {8, 0, 1000, 32, 0, -1, 2, 0x03},
    {8, 0, 1024, 32, 0, -1, 2, 0x03},
    {8, 0, 256, 0, 0, -1, 8, 0x01},
    {8, 0, 256, 8, 0, -1, 8, 0x01},
    {8, 0, 256, 16, 0, -1, 8, 0x01},
    {8, 0, 256, 24, 0, -1, 8, 0x01},
    {8, 0, 256, 32, 0, -1, 8, 0x03},
    {8, 0, 256, 37, 0, -1, 6, 0x02},
    {8, 0, 256, 40, 0, -1, 6, 0x02},
    {8, 0, 256, 48, 0, -1, 5, 0x02},
    {8, 0, 256, 56, 0, -1, 4, 0x02},
    {8, 0, 256, 64, 0, -1, 4, 0x02},
    {8, 0, 256, 72, 0, -1, 3, 0x02},
    {8, 0, 256, 80, 0, -1, 3, 0x02},
    {8, 0, 256, 96, 0, -1, 2, 0x02},
    {8, 0, 256, 128, 0, -1, 2, 0x02},
    {8, 0, 256, 168, 0, -1, 1, 0x02},
    {8, 0, 256, 200, 0, -1, 1, 0x02},
    {8, 0, 256, 255, 0, -1, 1, 0x02},
    {8, 0, 128, 32, 0, -1, 16, 0x03},
    {8, 0, 128, 32, 1, -1, 16, 0x03},
    {8, 0, 128, 32, 1024, -1, 16, 0x03},
    {8, 0, 128, 32, 3000, -1, 16, 0x03},
    {8, 0, 128, 32, 4096, -1, 16, 0x03},
    {8, 0, 128, 32, 8192, -1, 16, 0x03},
    {8, 0, 128, 32, 12288, -1, 12, 0x04},
    {8, 0, 128, 32, 16384, -1, 9, 0x04},
    {8, 0, 128, 32, 24576, -1, 6, 0x04},
    {8, 0, 128, 32, 32768, -1, 4, 0x04},
    {8, 0, 128, 32, 40000, -1, 4, 0x04},
    {8, 0, 128, 32, 49152, -1, 3, 0x04},
    {8, 0, 128, 32, 65536, -1, 2, 0x04},
    {8, 0, 128, 32, 73728, -1, 2, 0x04},
    {8, 0, 128, 32, 98304, -1, 1, 0x04},
    {8, 0, 128, 32, 102400, -1, 1, 0x04},
    {8, 0, 128, 32, 132000, -1, 1, 0x04},
    {8, 0, 128, 32, 166912, -1, 1, 0x04},
    {8, 0, 128, 32, 166912, -1, 1, 0x04},
    {8, 0, 128, 32, 166913, -1, 0, 0x04},
    {8, 0, 1024, 64, 0, -1, 1, 0x02},
    {8, 0, 1024, 72, 0, -1, 0, 0x02},
    {8, 0, 800, 80, 0, -1, 0, 0x02},
    {8, 0, 256, 24, 3000, -1, 8, 0x01},
    {8, 0, 288, 80, 132000, -1, 1, 0x04},
    {8, 0, 128, 0, 3000, -1, 16, 0x01},
    {8, 0, 384, 72, 32768, -1, 2, 0x02},
    {8, 0, 448, 48, 166912, -1, 1, 0x04},
    {8, 0, 512, 40, 166912, -1, 1, 0x04},
    {8, 0, 320, 37, 166912, -1, 1, 0x04},
    {8, 0, 640, 200, 3000, -1, 0, 0x02},
    {8, 0, 32, 128, 16384, -1, 9, 0x04},
    {8, 0, 1000, 200, 166912, -1, 0, 0x02},
    {8, 0, 33, 96, 49152, -1, 3, 0x04},
    {8, 0, 96, 24, 166912, -1, 1, 0x04},
    {8, 0, 192, 48, 166912, -1, 1, 0x04},
    {8, 0, 992, 48, 16384, -1, 1, 0x02},
    {8, 0, 160, 168, 1024, -1, 2, 0x02},
    {8, 0, 512, 48, 16384, -1, 2, 0x02},
    {8, 0, 160, 168, 166912, -1, 1, 0x04},
    {8, 0, 128, 24, 98304, -1, 1, 0x04},
    {8, 0, 448, 37, 98304, -1, 1, 0x04},
    {8, 0, 512, 8, 166912, -1, 1, 0x04},
    {8, 0, 768, 40, 132000, -1, 1, 0x04},
    {8, 0, 500, 128, 16384, -1, 1, 0x02},
    {8, 0, 768, 96, 98304, -1, 0, 0x02},
    {8, 0, 192, 255, 40000, -1, 1, 0x02},
    {8, 0, 992, 8, 24576, -1, 2, 0x01},
    {8, 0, 576, 200, 166912, -1, 0, 0x02},
    {8, 0, 192, 48, 4096, -1, 6, 0x02},
    {8, 0, 500, 168, 166912, -1, 0, 0x02},
    {8, 0, 800, 37, 49152, -1, 1, 0x02},
    {8, 0, 33, 72, 12288, -1, 12, 0x04},
    {8, 0, 800, 64, 40000, 75, 1, 0x02},
    {8, 0, 384, 8, 24576, 50, 4, 0x04},
    {8, 0, 992, 40, 8192, 25, 1, 0x02},
    {8, 0, 640, 32, 0, 50, 3, 0x03},
    {8, 0, 448, 40, 3000, 10, 3, 0x02},
    {8, 0, 100, 64, 0, 50, 8, 0x02},
    {8, 0, 96, 8, 0, 100, 21, 0x01},
    {8, 0, 1024, 37, 3000, 50, 1, 0x02},
    {8, 0, 33, 16, 24576, 75, 5, 0x04},
    {8, 0, 640, 8, 24576, 10, 1, 0x04},
    /* compute capability 8.6 */
    {8, 6, 1, 32, 0, -1, 16, 0x08},
    {8, 6, 32, 32, 0, -1, 16, 0x08},
    {8, 6, 33, 32, 0, -1, 16, 0x08},
    {8, 6, 64, 32, 0, -1, 16, 0x08},
    {8, 6, 96, 32, 0, -1, 16, 0x09},
    {8, 6, 100, 32, 0, -1, 12, 0x01},
    {8, 6, 128, 32, 0, -1, 12, 0x01},
    {8, 6, 160, 32, 0, -1, 9, 0x01},
    {8, 6, 192, 32, 0, -1, 8, 0x01},
    {8, 6, 256, 32, 0, -1, 6, 0x01},
    {8, 6, 288, 32, 0, -1, 5, 0x01},
    {8, 6, 320, 32, 0, -1, 4, 0x01},
    {8, 6, 384, 32, 0, -1, 4, 0x01},
    {8, 6, 448, 32, 0, -1, 3, 0x01},
    {8, 6, 500, 32, 0, -1, 3, 0x01},
    {8, 6, 512, 32, 0, -1, 3, 0x01},
    {8, 6, 576, 32, 0, -1, 2, 0x01},
    {8, 6, 640, 32, 0, -1, 2, 0x01},
    {8, 6, 768, 32, 0, -1, 2, 0x03},
    {8, 6, 800, 32, 0, -1, 1, 0x01},
    {8, 6, 896, 32, 0, -1, 1, 0x01},
    {8, 6, 992, 32, 0, -1, 1, 0x01},
    {8, 6, 1000, 32, 0, -1, 1, 0x01},
    {8, 6, 1024, 32, 0, -1, 1, 0x01},
    {8, 6, 256, 0, 0, -1, 6, 0x01},
    {8, 6, 256, 8, 0, -1, 6, 0x01},
    {8, 6, 256, 16, 0, -1, 6, 0x01},
    {8, 6, 256, 24, 0, -1, 6, 0x01},
    {8, 6, 256, 32, 0, -1, 6, 0x01},
    {8, 6, 256, 37, 0, -1, 6, 0x03},
    {8, 6, 256, 40, 0, -1, 6, 0x03},
    {8, 6, 256, 48, 0, -1, 5, 0x02},
    {8, 6, 256, 56, 0, -1, 4, 0x02},
    {8, 6, 256, 64, 0, -1, 4, 0x02},
    {8, 6, 256, 72, 0, -1, 3, 0x02},
    {8, 6, 256, 80, 0, -1, 3, 0x02},
    {8, 6, 256, 96, 0, -1, 2, 0x02},
    {8, 6, 256, 128, 0, -1, 2, 0x02},
    {8, 6, 256, 168, 0, -1, 1, 0x02},
    {8, 6, 256, 200, 0, -1, 1, 0x02},
    {8, 6, 256, 255, 0, -1, 1, 0x02},
    {8, 6, 128, 32, 0, -1, 12, 0x01},
    {8, 6, 128, 32, 1, -1, 12, 0x01},
    {8, 6, 128, 32, 1024, -1, 12, 0x01},
    {8, 6, 128, 32, 3000, -1, 12, 0x01},
    {8, 6, 128, 32, 4096, -1, 12, 0x01},
    {8, 6, 128, 32, 8192, -1, 11, 0x04},
    {8, 6, 128, 32, 12288, -1, 7, 0x04},
    {8, 6, 128, 32, 16384, -1, 5, 0x04},
    {8, 6, 128, 32, 24576, -1, 4, 0x04},
    {8, 6, 128, 32, 32768, -1, 3, 0x04},
    {8, 6, 128, 32, 40000, -1, 2, 0x04},
    {8, 6, 128, 32, 49152, -1, 2, 0x04},
    {8, 6, 128, 32, 65536, -1, 1, 0x04},
    {8, 6, 128, 32, 73728, -1, 1, 0x04},
    {8, 6, 128, 32, 98304, -1, 1, 0x04},
    {8, 6, 128, 32, 101376, -1, 1, 0x04},
    {8, 6, 128, 32, 101377, -1, 0, 0x04},
    {8, 6, 1024, 64, 0, -1, 1, 0x03},
    {8, 6, 1024, 72, 0, -1, 0, 0x02},
    {8, 6, 800, 80, 0, -1, 0, 0x02},
    {8, 6, 1024, 255, 101376, -1, 0, 0x02},
    {8, 6, 32, 255, 12288, -1, 7, 0x04},
    {8, 6, 96, 64, 49152, -1, 2, 0x04},
    {8, 6, 64, 128, 24576, -1, 4, 0x04},
    {8, 6, 256, 96, 65536, -1, 1, 0x04},
    {8, 6, 768, 96, 101376, -1, 0, 0x02},
    {8, 6, 512, 80, 12288, -1, 1, 0x02},
    {8, 6, 32, 37, 4096, -1, 16, 0x08},
    {8, 6, 256, 200, 98304, -1, 1, 0x06},
    {8, 6, 100, 24, 65536, -1, 1, 0x04},
    {8, 6, 32, 56, 4096, -1, 16, 0x08},
    {8, 6, 256, 56, 1024, -1, 4, 0x02},
    {8, 6, 64, 255, 32768, -1, 3, 0x04},
    {8, 6, 896, 200, 0, -1, 0, 0x02},
    {8, 6, 160, 0, 1, -1, 9, 0x01},
    {8, 6, 1, 56, 40000, -1, 2, 0x04},
    {8, 6, 288, 96, 8192, -1, 2, 0x02},
    {8, 6, 320, 200, 1, -1, 0, 0x02},
    {8, 6, 896, 32, 0, -1, 1, 0x01},
    {8, 6, 256, 168, 101376, -1, 1, 0x06},
    {8, 6, 320, 48, 1, -1, 4, 0x03},
    {8, 6, 576, 80, 73728, -1, 1, 0x06},
    {8, 6, 128, 37, 98304, -1, 1, 0x04},
    {8, 6, 33, 0, 49152, -1, 2, 0x04},
    {8, 6, 256, 32, 40000, -1, 2, 0x04},
    {8, 6, 100, 96, 8192, -1, 5, 0x02},
    {8, 6, 1024, 128, 49152, -1, 0, 0x02},
    {8, 6, 448, 96, 101376, -1, 1, 0x06},
    {8, 6, 768, 37, 0, -1, 2, 0x03},
    {8, 6, 160, 40, 0, -1, 9, 0x03},
    {8, 6, 800, 8, 49152, 0, 1, 0x05},
    {8, 6, 640, 72, 3000, 75, 1, 0x02},
    {8, 6, 64, 72, 16384, 0, 1, 0x04},
    {8, 6, 192, 32, 32768, 75, 3, 0x04},
    {8, 6, 768, 64, 3000, 0, 1, 0x02},
    {8, 6, 1024, 37, 12288, 75, 1, 0x03},
    {8, 6, 1, 56, 40000, 10, 1, 0x04},
    {8, 6, 896, 16, 3000, 75, 1, 0x01},
    {8, 6, 448, 40, 4096, 75, 3, 0x03},
    {8, 6, 1, 37, 40000, 50, 1, 0x04},
    /* compute capability 8.9 */
    {8, 9, 1, 32, 0, -1, 24, 0x08},
    {8, 9, 32, 32, 0, -1, 24, 0x08},
    {8, 9, 33, 32, 0, -1, 24, 0x09},
    {8, 9, 64, 32, 0, -1, 24, 0x09},
    {8, 9, 96, 32, 0, -1, 16, 0x01},
    {8, 9, 100, 32, 0, -1, 12, 0x01},
    {8, 9, 128, 32, 0, -1, 12, 0x01},
    {8, 9, 160, 32, 0, -1, 9, 0x01},
    {8, 9, 192, 32, 0, -1, 8, 0x01},
    {8, 9, 256, 32, 0, -1, 6, 0x01},
    {8, 9, 288, 32, 0, -1, 5, 0x01},
    {8, 9, 320, 32, 0, -1, 4, 0x01},
    {8, 9, 384, 32, 0, -1, 4, 0x01},
    {8, 9, 448, 32, 0, -1, 3, 0x01},
    {8, 9, 500, 32, 0, -1, 3, 0x01},
    {8, 9, 512, 32, 0, -1, 3, 0x01},
    {8, 9, 576, 32, 0, -1, 2, 0x01},
    {8, 9, 640, 32, 0, -1, 2, 0x01},
    {8, 9, 768, 32, 0, -1, 2, 0x03},
    {8, 9, 800, 32, 0, -1, 1, 0x01},
    {8, 9, 896, 32, 0, -1, 1, 0x01},
    {8, 9, 992, 32, 0, -1, 1, 0x01},
    {8, 9, 1000, 32, 0, -1, 1, 0x01},
    {8, 9, 1024, 32, 0, -1, 1, 0x01},
    {8, 9, 256, 0, 0, -1, 6, 0x01},
    {8, 9, 256, 8, 0, -1, 6, 0x01},
    {8, 9, 256, 16, 0, -1, 6, 0x01},
    {8, 9, 256, 24, 0, -1, 6, 0x01},
    {8, 9, 256, 32, 0, -1, 6, 0x01},
    {8, 9, 256, 37, 0, -1, 6, 0x03},
    {8, 9, 256, 40, 0, -1, 6, 0x03},
    {8, 9, 256, 48, 0, -1, 5, 0x02},
    {8, 9, 256, 56, 0, -1, 4, 0x02},
    {8, 9, 256, 64, 0, -1, 4, 0x02},
    {8, 9, 256, 72, 0, -1, 3, 0x02},
    {8, 9, 256, 80, 0, -1, 3, 0x02},
    {8, 9, 256, 96, 0, -1, 2, 0x02},
    {8, 9, 256, 128, 0, -1, 2, 0x02},
    {8, 9, 256, 168, 0, -1, 1, 0x02},
    {8, 9, 256, 200, 0, -1, 1, 0x02},
    {8, 9, 256, 255, 0, -1, 1, 0x02},
    {8, 9, 128, 32, 0, -1, 12, 0x01},
    {8, 9, 128, 32, 1, -1, 12, 0x01},
    {8, 9, 128, 32, 1024, -1, 12, 0x01},
    {8, 9, 128, 32, 3000, -1, 12, 0x01},
    {8, 9, 128, 32, 4096, -1, 12, 0x01},
    {8, 9, 128, 32, 8192, -1, 11, 0x04},
    {8, 9, 128, 32, 12288, -1, 7, 0x04},
    {8, 9, 128, 32, 16384, -1, 5, 0x04},
    {8, 9, 128, 32, 24576, -1, 4, 0x04},
    {8, 9, 128, 32, 32768, -1, 3, 0x04},
    {8, 9, 128, 32, 40000, -1, 2, 0x04},
    {8, 9, 128, 32, 49152, -1, 2, 0x04},
    {8, 9, 128, 32, 65536, -1, 1, 0x04},
    {8, 9, 128, 32, 73728, -1, 1, 0x04},
    {8, 9, 128, 32, 98304, -1, 1, 0x04},
    {8, 9, 128, 32, 101376, -1, 1, 0x04},
    {8, 9, 128, 32, 101377, -1, 0, 0x04},
    {8, 9, 1024, 64, 0, -1, 1, 0x03},
    {8, 9, 1024, 72, 0, -1, 0, 0x02},
    {8, 9, 800, 80, 0, -1, 0, 0x02},
    {8, 9, 640, 80, 32768, -1, 1, 0x02},
    {8, 9, 576, 37, 1, -1, 2, 0x03},
    {8, 9, 512, 72, 101376, -1, 1, 0x06},
    {8, 9, 500, 16, 0, -1, 3, 0x01},
    {8, 9, 500, 16, 12288, -1, 3, 0x01},
    {8, 9, 576, 24, 40000, -1, 2, 0x05},
    {8, 9, 96, 80, 4096, -1, 8, 0x02},
    {8, 9, 384, 200, 4096, -1, 0, 0x02},
    {8, 9, 512, 0, 73728, -1, 1, 0x04},
    {8, 9, 448, 40, 32768, -1, 3, 0x07},
    {8, 9, 500, 8, 16384, -1, 3, 0x01},
    {8, 9, 800, 255, 3000, -1, 0, 0x02},
    {8, 9, 576, 56, 24576, -1, 2, 0x03},
    {8, 9, 500, 72, 40000, -1, 1, 0x02},
    {8, 9, 288, 168, 98304, -1, 1, 0x06},
    {8, 9, 500, 64, 40000, -1, 2, 0x06},
    {8, 9, 96, 37, 73728, -1, 1, 0x04},
    {8, 9, 992, 48, 4096, -1, 1, 0x03},
    {8, 9, 800, 37, 98304, -1, 1, 0x07},
    {8, 9, 288, 64, 101376, -1, 1, 0x04},
    {8, 9, 576, 96, 101376, -1, 1, 0x06},
    {8, 9, 1, 48, 73728, -1, 1, 0x04},
    {8, 9, 512, 128, 16384, -1, 1, 0x02},
    {8, 9, 320, 200, 4096, -1, 0, 0x02},
    {8, 9, 1, 8, 101376, -1, 1, 0x04},
    {8, 9, 1, 32, 3000, -1, 24, 0x08},
    {8, 9, 576, 48, 1, -1, 2, 0x03},
    {8, 9, 100, 8, 40000, -1, 2, 0x04},
    {8, 9, 576, 40, 1, -1, 2, 0x03},
    {8, 9, 384, 24, 40000, -1, 2, 0x04},
    {8, 9, 64, 32, 3000, 0, 2, 0x04},
    {8, 9, 896, 64, 4096, 100, 1, 0x03},
    {8, 9, 576, 24, 49152, 75, 2, 0x05},
    {8, 9, 384, 37, 40000, 25, 1, 0x04},
    {8, 9, 896, 32, 3000, 25, 1, 0x01},
    {8, 9, 320, 0, 16384, 25, 1, 0x04},
    {8, 9, 1000, 32, 12288, 25, 1, 0x01},
    {8, 9, 32, 37, 16384, 50, 3, 0x04},
    {8, 9, 1, 0, 16384, 0, 1, 0x04},
    {8, 9, 1000, 16, 12288, 50, 1, 0x01},
    /* compute capability 9.0 */
    {9, 0, 1, 32, 0, -1, 32, 0x08},
    {9, 0, 32, 32, 0, -1, 32, 0x08},
    {9, 0, 33, 32, 0, -1, 32, 0x0b},
    {9, 0, 64, 32, 0, -1, 32, 0x0b},
    {9, 0, 96, 32, 0, -1, 21, 0x03},
    {9, 0, 100, 32, 0, -1, 16, 0x03},
    {9, 0, 128, 32, 0, -1, 16, 0x03},
    {9, 0, 160, 32, 0, -1, 12, 0x03},
    {9, 0, 192, 32, 0, -1, 10, 0x03},
    {9, 0, 256, 32, 0, -1, 8, 0x03},
    {9, 0, 288, 32, 0, -1, 7, 0x03},
    {9, 0, 320, 32, 0, -1, 6, 0x03},
    {9, 0, 384, 32, 0, -1, 5, 0x03},
    {9, 0, 448, 32, 0, -1, 4, 0x03},
    {9, 0, 500, 32, 0, -1, 4, 0x03},
    {9, 0, 512, 32, 0, -1, 4, 0x03},
    {9, 0, 576, 32, 0, -1, 3, 0x03},
    {9, 0, 640, 32, 0, -1, 3, 0x03},
    {9, 0, 768, 32, 0, -1, 2, 0x03},
    {9, 0, 800, 32, 0, -1, 2, 0x03},
    {9, 0, 896, 32, 0, -1, 2, 0x03},
    {9, 0, 992, 32, 0, -1, 2, 0x03},
    {9, 0, 1000, 32, 0, -1, 2, 0x03},
    {9, 0, 1024, 32, 0, -1, 2, 0x03},
    {9, 0, 256, 0, 0, -1, 8, 0x01},
    {9, 0, 256, 8, 0, -1, 8, 0x01},
    {9, 0, 256, 16, 0, -1, 8, 0x01},
    {9, 0, 256, 24, 0, -1, 8, 0x01},
    {9, 0, 256, 32, 0, -1, 8, 0x03},
    {9, 0, 256, 37, 0, -1, 6, 0x02},
    {9, 0, 256, 40, 0, -1, 6, 0x02},
    {9, 0, 256, 48, 0, -1, 5, 0x02},
    {9, 0, 256, 56, 0, -1, 4, 0x02},
    {9, 0, 256, 64, 0, -1, 4, 0x02},
    {9, 0, 256, 72, 0, -1, 3, 0x02},
    {9, 0, 256, 80, 0, -1, 3, 0x02},
    {9, 0, 256, 96, 0, -1, 2, 0x02},
    {9, 0, 256, 128, 0, -1, 2, 0x02},
    {9, 0, 256, 168, 0, -1, 1, 0x02},
    {9, 0, 256, 200, 0, -1, 1, 0x02},
    {9, 0, 256, 255, 0, -1, 1, 0x02},
    {9, 0, 128, 32, 0, -1, 16, 0x03},
    {9, 0, 128, 32, 1, -1, 16, 0x03},
    {9, 0, 128, 32, 1024, -1, 16, 0x03},
    {9, 0, 128, 32, 3000, -1, 16, 0x03},
    {9, 0, 128, 32, 4096, -1, 16, 0x03},
    {9, 0, 128, 32, 8192, -1, 16, 0x03},
    {9, 0, 128, 32, 12288, -1, 16, 0x03},
    {9, 0, 128, 32, 16384, -1, 13, 0x04},
    {9, 0, 128, 32, 24576, -1, 9, 0x04},
    {9, 0, 128, 32, 32768, -1, 6, 0x04},
    {9, 0, 128, 32, 40000, -1, 5, 0x04},
    {9, 0, 128, 32, 49152, -1, 4, 0x04},
    {9, 0, 128, 32, 65536, -1, 3, 0x04},
    {9, 0, 128, 32, 73728, -1, 3, 0x04},
    {9, 0, 128, 32, 98304, -1, 2, 0x04},
    {9, 0, 128, 32, 102400, -1, 2, 0x04},
    {9, 0, 128, 32, 132000, -1, 1, 0x04},
    {9, 0, 128, 32, 166912, -1, 1, 0x04},
    {9, 0, 128, 32, 200000, -1, 1, 0x04},
    {9, 0, 128, 32, 232448, -1, 1, 0x04},
    {9, 0, 128, 32, 232448, -1, 1, 0x04},
    {9, 0, 128, 32, 232449, -1, 0, 0x04},
    {9, 0, 1024, 64, 0, -1, 1, 0x02},
    {9, 0, 1024, 72, 0, -1, 0, 0x02},
    {9, 0, 800, 80, 0, -1, 0, 0x02},
    {9, 0, 32, 24, 4096, -1, 32, 0x08},
    {9, 0, 192, 32, 102400, -1, 2, 0x04},
    {9, 0, 384, 0, 40000, -1, 5, 0x05},
    {9, 0, 160, 128, 0, -1, 3, 0x02},
    {9, 0, 128, 37, 32768, -1, 6, 0x04},
    {9, 0, 1000, 56, 12288, -1, 1, 0x02},
    {9, 0, 512, 37, 132000, -1, 1, 0x04},
    {9, 0, 1024, 64, 24576, -1, 1, 0x02},
    {9, 0, 448, 24, 132000, -1, 1, 0x04},
    {9, 0, 576, 168, 132000, -1, 0, 0x02},
    {9, 0, 160, 200, 24576, -1, 1, 0x02},
    {9, 0, 100, 16, 12288, -1, 16, 0x01},
    {9, 0, 288, 128, 16384, -1, 1, 0x02},
    {9, 0, 384, 255, 200000, -1, 0, 0x02},
    {9, 0, 1000, 128, 232448, -1, 0, 0x02},
    {9, 0, 1000, 72, 1, -1, 0, 0x02},
    {9, 0, 576, 72, 98304, -1, 1, 0x02},
    {9, 0, 384, 37, 102400, -1, 2, 0x04},
    {9, 0, 640, 128, 24576, -1, 0, 0x02},
    {9, 0, 1000, 72, 40000, -1, 0, 0x02},
    {9, 0, 896, 200, 232448, -1, 0, 0x02},
    {9, 0, 100, 24, 73728, -1, 3, 0x04},
    {9, 0, 800, 168, 1, -1, 0, 0x02},
    {9, 0, 640, 37, 0, -1, 2, 0x02},
    {9, 0, 288, 72, 132000, -1, 1, 0x04},
    {9, 0, 288, 200, 40000, -1, 0, 0x02},
    {9, 0, 768, 37, 65536, -1, 2, 0x03},
    {9, 0, 33, 168, 32768, -1, 6, 0x06},
    {9, 0, 1000, 40, 12288, -1, 1, 0x02},
    {9, 0, 1, 64, 12288, -1, 17, 0x04},
    {9, 0, 1, 37, 1024, 50, 32, 0x08},
    {9, 0, 288, 8, 12288, 100, 7, 0x01},
    {9, 0, 1024, 48, 0, 50, 1, 0x02},
    {9, 0, 32, 0, 12288, 100, 17, 0x04},
    {9, 0, 128, 0, 1, 10, 16, 0x01},
    {9, 0, 512, 48, 1, 0, 2, 0x02},
    {9, 0, 320, 64, 40000, 50, 3, 0x06},
    {9, 0, 96, 64, 49152, 10, 1, 0x04},
    {9, 0, 160, 56, 8192, 25, 7, 0x06},
    {9, 0, 576, 37, 24576, 0, 1, 0x04},
    /* compute capability 10.0 */
    {10, 0, 1, 32, 0, -1, 32, 0x08},
    {10, 0, 32, 32, 0, -1, 32, 0x08},
    {10, 0, 33, 32, 0, -1, 32, 0x0b},
    {10, 0, 64, 32, 0, -1, 32, 0x0b},
    {10, 0, 96, 32, 0, -1, 21, 0x03},
    {10, 0, 100, 32, 0, -1, 16, 0x03},
    {10, 0, 128, 32, 0, -1, 16, 0x03},
    {10, 0, 160, 32, 0, -1, 12, 0x03},
    {10, 0, 192, 32, 0, -1, 10, 0x03},
    {10, 0, 256, 32, 0, -1, 8, 0x03},
    {10, 0, 288, 32, 0, -1, 7, 0x03},
    {10, 0, 320, 32, 0, -1, 6, 0x03},
    {10, 0, 384, 32, 0, -1, 5, 0x03},
    {10, 0, 448, 32, 0, -1, 4, 0x03},
    {10, 0, 500, 32, 0, -1, 4, 0x03},
    {10, 0, 512, 32, 0, -1, 4, 0x03},
    {10, 0, 576, 32, 0, -1, 3, 0x03},
    {10, 0, 640, 32, 0, -1, 3, 0x03},
    {10, 0, 768, 32, 0, -1, 2, 0x03},
    {10, 0, 800, 32, 0, -1, 2, 0x03},
    {10, 0, 896, 32, 0, -1, 2, 0x03},
    {10, 0, 992, 32, 0, -1, 2, 0x03},
    {10, 0, 1000, 32, 0, -1, 2, 0x03},
    {10, 0, 1024, 32, 0, -1, 2, 0x03},
    {10, 0, 256, 0, 0, -1, 8, 0x01},
    {10, 0, 256, 8, 0, -1, 8, 0x01},
    {10, 0, 256, 16, 0, -1, 8, 0x01},
    {10, 0, 256, 24, 0, -1, 8, 0x01},
    {10, 0, 256, 32, 0, -1, 8, 0x03},
    {10, 0, 256, 37, 0, -1, 6, 0x02},
    {10, 0, 256, 40, 0, -1, 6, 0x02},
    {10, 0, 256, 48, 0, -1, 5, 0x02},
    {10, 0, 256, 56, 0, -1, 4, 0x02},
    {10, 0, 256, 64, 0, -1, 4, 0x02},
    {10, 0, 256, 72, 0, -1, 3, 0x02},
    {10, 0, 256, 80, 0, -1, 3, 0x02},
    {10, 0, 256, 96, 0, -1, 2, 0x02},
    {10, 0, 256, 128, 0, -1, 2, 0x02},
    {10, 0, 256, 168, 0, -1, 1, 0x02},
    {10, 0, 256, 200, 0, -1, 1, 0x02},
    {10, 0, 256, 255, 0, -1, 1, 0x02},
    {10, 0, 128, 32, 0, -1, 16, 0x03},
    {10, 0, 128, 32, 1, -1, 16, 0x03},
    {10, 0, 128, 32, 1024, -1, 16, 0x03},
    {10, 0, 128, 32, 3000, -1, 16, 0x03},
    {10, 0, 128, 32, 4096, -1, 16, 0x03},
    {10, 0, 128, 32, 8192, -1, 16, 0x03},
    {10, 0, 128, 32, 12288, -1, 16, 0x03},
    {10, 0, 128, 32, 16384, -1, 13, 0x04},
    {10, 0, 128, 32, 24576, -1, 9, 0x04},
    {10, 0, 128, 32, 32768, -1, 6, 0x04},
    {10, 0, 128, 32, 40000, -1, 5, 0x04},
    {10, 0, 128, 32, 49152, -1, 4, 0x04},
    {10, 0, 128, 32, 65536, -1, 3, 0x04},
    {10, 0, 128, 32, 73728, -1, 3, 0x04},
    {10, 0, 128, 32, 98304, -1, 2, 0x04},
    {10, 0, 128, 32, 102400, -1, 2, 0x04},
    {10, 0, 128, 32, 132000, -1, 1, 0x04},
    {10, 0, 128, 32, 166912, -1, 1, 0x04},
    {10, 0, 128, 32, 200000, -1, 1, 0x04},
    {10, 0, 128, 32, 232448, -1, 1, 0x04},
    {10, 0, 128, 32, 232448, -1, 1, 0x04},
    {10, 0, 128, 32, 232449, -1, 0, 0x04},
    {10, 0, 1024, 64, 0, -1, 1, 0x02},
    {10, 0, 1024, 72, 0, -1, 0, 0x02},
    {10, 0, 800, 80, 0, -1, 0, 0x02},
    {10, 0, 320, 48, 16384, -1, 4, 0x02},
    {10, 0, 896, 0, 12288, -1, 2, 0x01},
    {10, 0, 384, 96, 1, -1, 1, 0x02},
    {10, 0, 1024, 16, 1, -1, 2, 0x01},
    {10, 0, 992, 16, 49152, -1, 2, 0x01},
    {10, 0, 32, 0, 3000, -1, 32, 0x08},
    {10, 0, 384, 0, 49152, -1, 4, 0x04},
    {10, 0, 32, 80, 1024, -1, 24, 0x02},
    {10, 0, 160, 37, 24576, -1, 9, 0x06},
    {10, 0, 256, 37, 1, -1, 6, 0x02},
    {10, 0, 448, 8, 98304, -1, 2, 0x04},
    {10, 0, 192, 16, 102400, -1, 2, 0x04},
    {10, 0, 992, 16, 1, -1, 2, 0x01},
    {10, 0, 576, 16, 1, -1, 3, 0x01},
    {10, 0, 96, 0, 166912, -1, 1, 0x04},
    {10, 0, 1, 255, 232448, -1, 1, 0x04},
    {10, 0, 64, 128, 65536, -1, 3, 0x04},
    {10, 0, 768, 72, 12288, -1, 1, 0x02},
    {10, 0, 448, 24, 1, -1, 4, 0x01},
    {10, 0, 96, 40, 49152, -1, 4, 0x04},
    {10, 0, 96, 37, 3000, -1, 16, 0x02},
    {10, 0, 768, 37, 40000, -1, 2, 0x03},
    {10, 0, 96, 48, 12288, -1, 13, 0x02},
    {10, 0, 768, 40, 49152, -1, 2, 0x03},
    {10, 0, 992, 80, 16384, -1, 0, 0x02},
    {10, 0, 448, 40, 232448, -1, 1, 0x04},
    {10, 0, 896, 64, 4096, -1, 1, 0x02},
    {10, 0, 384, 80, 102400, -1, 2, 0x06},
    {10, 0, 33, 0, 3000, -1, 32, 0x09},
    {10, 0, 512, 72, 1024, -1, 1, 0x02},
    {10, 0, 800, 56, 3000, 0, 1, 0x02},
    {10, 0, 1024, 16, 1024, 10, 2, 0x01},
    {10, 0, 320, 0, 1, 10, 6, 0x01},
    {10, 0, 800, 24, 12288, 10, 2, 0x05},
    {10, 0, 768, 24, 40000, 10, 1, 0x04},
    {10, 0, 992, 48, 8192, 10, 1, 0x02},
    {10, 0, 192, 56, 12288, 0, 1, 0x04},
    {10, 0, 512, 24, 40000, 50, 3, 0x04},
    {10, 0, 992, 37, 1, 25, 1, 0x02},
    {10, 0, 576, 8, 49152, 75, 3, 0x01},
};

TEST(occupancy_matches_cuda_occupancy_h)
{
    size_t n = sizeof occ_golden / sizeof occ_golden[0], bad = 0;
    ASSERT(n > 600);
    for (size_t i = 0; i < n; i++) {
        usher_error err = {0};
        gpu_sm_limits lim;
        ASSERT_OK(gpu_sm_limits_for_cc(occ_golden[i].major, occ_golden[i].minor, &lim, &err));
        gpu_launch l = gpu_launch_default();
        l.threads_per_block = occ_golden[i].threads;
        l.regs_per_thread = occ_golden[i].regs;
        l.smem_per_block = occ_golden[i].smem;
        l.carveout_pct = occ_golden[i].carveout;
        gpu_occupancy o;
        memset(&o, 0, sizeof o);
        int rc = gpu_occupancy_calc(&lim, &l, &o, &err);
        int ok;
        if (occ_golden[i].blocks == 0) {
            const char *what = occ_golden[i].limiters & GPU_OCC_LIMIT_REGISTERS ? "registers"
                                                                                 : "shared memory";
            ok = rc == USHER_ERR_LIMIT && strncmp(err.msg, what, strlen(what)) == 0;
        } else {
            ok = rc == 0 && o.blocks_per_sm == occ_golden[i].blocks &&
                 o.limiters == occ_golden[i].limiters &&
                 o.active_warps_per_sm == o.blocks_per_sm * o.warps_per_block &&
                 o.occupancy > 0 && o.occupancy <= 1;
        }
        if (!ok && bad++ < 10)
            fprintf(stderr,
                    "  case %zu: cc %d.%d threads %d regs %d smem %zu carveout %d: want %d blocks "
                    "(0x%02x), got rc %d blocks %d (0x%02x) %s\n",
                    i, occ_golden[i].major, occ_golden[i].minor, occ_golden[i].threads,
                    occ_golden[i].regs, occ_golden[i].smem, occ_golden[i].carveout,
                    occ_golden[i].blocks, occ_golden[i].limiters, rc, o.blocks_per_sm,
                    o.limiters, err.msg);
    }
    ASSERT_EQ_U64(bad, 0);
}

TEST(occupancy_worked_examples)
{
    usher_error err = {0};
    gpu_sm_limits lim;
    gpu_occupancy o;
    char buf[64];
    /* A100: 256 threads, 64 registers, 48 KB: registers allow 4 blocks, shared memory 3 */
    ASSERT_OK(gpu_sm_limits_for_cc(8, 0, &lim, &err));
    gpu_launch l = {256, 64, 48 * 1024, -1};
    ASSERT_OK(gpu_occupancy_calc(&lim, &l, &o, &err));
    ASSERT_EQ_INT(o.warps_per_block, 8);
    ASSERT_EQ_INT(o.blocks_by_warps, 8);
    ASSERT_EQ_INT(o.blocks_by_regs, 4);
    ASSERT_EQ_INT(o.regs_per_block, 256 * 64);
    ASSERT_EQ_U64(o.smem_per_block, 48 * 1024 + 1024); /* the driver's 1 KB */
    ASSERT_EQ_INT(o.blocks_by_smem, 3);                  /* 164 KB / 49 KB */
    ASSERT_EQ_INT(o.blocks_by_slots, 32);
    ASSERT_EQ_INT(o.blocks_per_sm, 3);
    ASSERT_EQ_U64(o.limiters, GPU_OCC_LIMIT_SMEM);
    ASSERT_EQ_INT(o.active_warps_per_sm, 24);
    ASSERT(near(o.occupancy, 24.0 / 64));
    ASSERT_STR_EQ(gpu_occ_limiters_str(o.limiters, buf, sizeof buf), "shared memory");
    /* no registers, no shared memory: warps bind */
    gpu_launch d = gpu_launch_default();
    ASSERT_OK(gpu_occupancy_calc(&lim, &d, &o, &err));
    ASSERT_EQ_INT(o.blocks_by_regs, GPU_OCC_UNLIMITED);
    ASSERT_EQ_INT(o.blocks_per_sm, 8);
    ASSERT(near(o.occupancy, 1));
    /* T4 (7.5): 1024 resident threads, 16 slots; 32-thread blocks hit the slot limit */
    ASSERT_OK(gpu_sm_limits_for_cc(7, 5, &lim, &err));
    gpu_launch small = {32, 32, 0, -1};
    ASSERT_OK(gpu_occupancy_calc(&lim, &small, &o, &err));
    ASSERT_EQ_INT(o.blocks_per_sm, 16);
    ASSERT_EQ_U64(o.limiters, GPU_OCC_LIMIT_BLOCKS);
    ASSERT(near(o.occupancy, 0.5));
    ASSERT_STR_EQ(gpu_occ_limiters_str(GPU_OCC_LIMIT_WARPS | GPU_OCC_LIMIT_REGISTERS, buf,
                                       sizeof buf),
                  "warps+registers");
    ASSERT_STR_EQ(gpu_occ_limiters_str(0, buf, sizeof buf), "none");
}

TEST(occupancy_rejects_invalid_launches)
{
    usher_error err = {0};
    gpu_sm_limits lim;
    gpu_occupancy o;
    ASSERT_OK(gpu_sm_limits_for_cc(9, 0, &lim, &err));
    gpu_launch l = {0, 32, 0, -1};
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "threads_per_block is 0: must be 1..1024");
    l.threads_per_block = 1025;
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "threads_per_block is 1025");
    l.threads_per_block = 128;
    l.regs_per_thread = 256;
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "regs_per_thread is 256: must be 0..255");
    l.regs_per_thread = -1;
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_INVALID);
    l.regs_per_thread = 32;
    l.carveout_pct = 101;
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "carveout_pct is 101");
    l.carveout_pct = -1;
    l.smem_per_block = 227 * 1024 + 1;
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "shared memory: 232449 bytes per block is over the 232448 bytes");
    l.smem_per_block = 227 * 1024;
    ASSERT_OK(gpu_occupancy_calc(&lim, &l, &o, &err));
    ASSERT_EQ_INT(o.blocks_per_sm, 1);
    l.smem_per_block = 0;
    l.threads_per_block = 1024;
    l.regs_per_thread = 65; /* 2080 -> 2304 registers per warp x 32 warps > 65536 */
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "registers: 1024 threads x 65 registers");
    ASSERT_CONTAINS(err.msg, "over the 65536 a block may use");
    l.threads_per_block = 800; /* 25 warps fit in 64000 registers, but count as 28 */
    l.regs_per_thread = 80;
    ASSERT_EQ_INT(gpu_occupancy_calc(&lim, &l, &o, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "counted as 28");
    ASSERT_EQ_INT(gpu_occupancy_calc(NULL, &l, &o, &err), USHER_ERR_INVALID);
    ASSERT_EQ_INT(gpu_sm_limits_for_cc(6, 1, &lim, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "compute capability 6.1 is not in the occupancy table");
}

TEST(occupancy_limits_agree_with_the_catalog)
{
    usher_error err = {0};
    gpu_catalog *c = NULL;
    ASSERT_OK(gpu_catalog_default(&c, &err));
    size_t cuda = 0;
    for (size_t i = 0; i < gpu_catalog_count(c); i++) {
        const gpu_type *t = gpu_catalog_at(c, i);
        gpu_sm_limits lim;
        int rc = gpu_sm_limits_for_type(t, &lim, &err);
        if (!t->is_cuda) {
            ASSERT_EQ_INT(rc, USHER_ERR_UNSUPPORTED);
            ASSERT_CONTAINS(err.msg, "mi300x: compute capability 'gfx942' is not a CUDA");
            continue;
        }
        ASSERT_OK(rc);
        cuda++;
        if (gpu_known(t, GPU_F_SMEM_PER_SM_KB))
            ASSERT_EQ_U64(lim.smem_per_sm, (size_t)t->smem_per_sm_kb * 1024);
        ASSERT_EQ_INT(lim.max_warps_per_sm * 32, t->max_threads_per_sm);
        ASSERT_EQ_INT(lim.max_blocks_per_sm, t->max_blocks_per_sm);
    }
    ASSERT_EQ_U64(cuda, 17);
    gpu_catalog_free(c);

    /* a row that contradicts its compute capability */
    const char *text = HDR "bad,Bad,x,8.6,10,1536,32,65536,100,1,1,1,1,1,1,1,1,0,1,s\n"
                           "odd,Odd,x,6.1,10,2048,32,65536,96,1,1,1,1,1,1,1,1,0,1,s\n";
    ASSERT_OK(gpu_catalog_parse(text, strlen(text), "t.csv", &c, &err));
    gpu_sm_limits lim;
    ASSERT_EQ_INT(gpu_sm_limits_for_type(gpu_catalog_at(c, 0), &lim, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg,
                    "bad: max_blocks_per_sm is 32 in the catalog, but compute capability 8.6 "
                    "has 16");
    ASSERT_EQ_INT(gpu_sm_limits_for_type(gpu_catalog_at(c, 1), &lim, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "odd: compute capability 6.1 is not in the occupancy table");
    gpu_catalog_free(c);
}

TEST(csv_reader_directly)
{
    usher_error err = {0};
    gpu_csv r;
    const char *text = "a,\"b\"\"c\",\r\n\"\",x";
    ASSERT_OK(gpu_csv_init(&r, text, strlen(text), "r", 16, 4, &err));
    ASSERT_EQ_INT(gpu_csv_next(&r, &err), 1);
    ASSERT_EQ_U64(r.n_fields, 3); /* a trailing comma gives an empty last field */
    ASSERT_STR_EQ(gpu_csv_field(&r, 0), "a");
    ASSERT_STR_EQ(gpu_csv_field(&r, 1), "b\"c");
    ASSERT_STR_EQ(gpu_csv_field(&r, 2), "");
    ASSERT(gpu_csv_field(&r, 3) == NULL);
    ASSERT_EQ_INT(gpu_csv_next(&r, &err), 1);
    ASSERT_EQ_U64(r.rec_line, 2);
    ASSERT_EQ_U64(r.n_fields, 2);
    ASSERT_STR_EQ(gpu_csv_field(&r, 0), "");
    ASSERT_EQ_U64(r.field_col[1], 4);
    ASSERT_EQ_INT(gpu_csv_next(&r, &err), 0);
    gpu_csv_free(&r);
    gpu_csv_free(NULL);
}

static void *load_driver(void *out)
{
    *(const void **)out = gpu_cuda_driver(NULL);
    return NULL;
}

TEST(cuda_loader_says_why_there_is_no_gpu)
{
    /* one loader for every caller, from any thread: the same table or the same
     * reason; without a driver the probe and the loader both say what is missing */
    enum { N = 4 };
    pthread_t th[N];
    const void *got[N];
    for (int i = 0; i < N; i++)
        ASSERT(pthread_create(&th[i], NULL, load_driver, &got[i]) == 0);
    for (int i = 0; i < N; i++)
        ASSERT(pthread_join(th[i], NULL) == 0);
    usher_error err = {0};
    const gpu_cu *cu = gpu_cuda_driver(&err);
    for (int i = 0; i < N; i++)
        ASSERT(got[i] == (const void *)cu);
    char why[256] = "";
    int n = gpu_device_count(why, sizeof why);
    ASSERT(n >= 0);
    if (!cu) {
        printf("  %s\n", why);
        ASSERT_EQ_INT(n, 0);
        ASSERT_EQ_INT(err.code, USHER_ERR_UNSUPPORTED);
        ASSERT_STR_EQ(err.msg, gpu_cuda_driver_why());
        ASSERT_STR_EQ(why, gpu_cuda_driver_why());
        void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h)
            ASSERT_STR_EQ(why, "no NVIDIA driver (libcuda.so.1 cannot be loaded)");
        else
            dlclose(h);
    } else {
        ASSERT_STR_EQ(gpu_cuda_driver_why(), "");
        ASSERT(cu->init && cu->device_get_count && cu->device_get_name);
        ASSERT((cu->green_missing == NULL) == (cu->green_ctx_create != NULL));
        if (n == 0)
            ASSERT(why[0] != '\0');
    }
    const gpu_cudart *rt = gpu_cuda_runtime(&err);
    if (!rt) {
        ASSERT_EQ_INT(err.code, USHER_ERR_UNSUPPORTED);
        ASSERT_CONTAINS(err.msg, "no GPU: ");
    }
    ASSERT(gpu_cuda_runtime(NULL) == rt);
    const gpu_cublas *blas = gpu_cuda_blas(&err);
    if (!blas)
        ASSERT_CONTAINS(err.msg, "libcublas");
    ASSERT(gpu_cuda_blas(NULL) == blas);
}

TEST_MAIN(TEST_ENTRY(catalog_embedded_has_every_row),
          TEST_ENTRY(catalog_file_matches_embedded_copy),
          TEST_ENTRY(catalog_columns_by_name_in_any_order), TEST_ENTRY(catalog_quoted_fields),
          TEST_ENTRY(catalog_rejects_bad_csv), TEST_ENTRY(catalog_limits),
          TEST_ENTRY(catalog_survives_allocation_failures), TEST_ENTRY(mig_every_profile_derives),
          TEST_ENTRY(mig_lookup_errors_list_alternatives),
          TEST_ENTRY(occupancy_matches_cuda_occupancy_h), TEST_ENTRY(occupancy_worked_examples),
          TEST_ENTRY(occupancy_rejects_invalid_launches),
          TEST_ENTRY(occupancy_limits_agree_with_the_catalog), TEST_ENTRY(csv_reader_directly),
          TEST_ENTRY(cuda_loader_says_why_there_is_no_gpu))
