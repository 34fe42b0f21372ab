/*
 * calibrate_api.c - the public side of calibration (usher/estimate.h,
 * layer 4): measure a GPU and store its row in a calibration table file;
 * say which row (own or borrowed) an estimator uses for a GPU.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "estimate/est.h"
#include "estimate/kernels.h"
#include "usher/estimate.h"

int usher_calibrate_device(const char *gpu, int device, const char *out_path, char *report,
                           size_t report_len, char *row_text, size_t row_len, usher_error *err)
{
    gpu_catalog *cat;
    int rc = gpu_catalog_default(&cat, err);
    if (rc < 0)
        return rc;
    gpu_calib row;
    const gpu_type *g;
    rc = gpu_calibrate_device(cat, gpu, device, &row, &g, report, report_len, err);
    gpu_catalog_free(cat);
    if (rc < 0)
        return rc;
    char buf[4096];
    gpu_calib_format(&row, buf, sizeof buf);
    if (row_text)
        snprintf(row_text, row_len, "%s", buf);
    if (!out_path)
        return USHER_OK;
    gpu_calib_table t = {0};
    if (access(out_path, F_OK) == 0 && (rc = gpu_calib_load(out_path, &t, err)) < 0)
        return rc;
    us_buf b;
    us_buf_init(&b, 1u << 20);
    us_buf_puts(&b, "# usher calibration table, format v1 (docs/calibration.md)\n\n");
    for (uint32_t i = 0; i < t.n; i++) {
        if (strcmp(t.rows[i].gpu, row.gpu) == 0 && strcmp(t.rows[i].framework, row.framework) == 0)
            continue; /* replaced by the new row */
        char rb[4096];
        gpu_calib_format(&t.rows[i], rb, sizeof rb);
        us_buf_printf(&b, "%s\n", rb);
    }
    us_buf_puts(&b, buf);
    rc = us_buf_ok(&b) ? us_file_write_atomic(out_path, b.data, b.len, err)
                       : us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    us_buf_free(&b);
    gpu_calib_table_free(&t);
    return rc;
}

int usher_estimator_calibration_row(const usher_estimator *e, const char *gpu,
                                    const char *framework, char *out, size_t out_len,
                                    bool *borrowed, usher_error *err)
{
    if (!e || !gpu || !out || !out_len)
        return us_err_set(err, USHER_ERR_INVALID, "estimator, GPU and output are required");
    const gpu_type *g;
    int rc = gpu_catalog_find(est_catalog(e), gpu, &g, err);
    if (rc < 0)
        return rc;
    bool found;
    gpu_calib c = gpu_calib_lookup(est_calibration(e), g, framework ? framework : "onnxruntime-cuda",
                                   &found);
    snprintf(out, out_len, "%s", c.used);
    if (borrowed)
        *borrowed = c.borrowed || !found;
    return USHER_OK;
}
