/*
 * est.h - what the estimator's own tools (calibration fitting, the accuracy
 * report, benchmarks) may use beyond the public usher/estimate.h (layer 4).
 */
#ifndef EST_H
#define EST_H

#include "estimate/kernels.h"
#include "usher/estimate.h"

const gpu_catalog *est_catalog(const usher_estimator *e);
const gpu_calib_table *est_calibration(const usher_estimator *e);
/* Replace or add a calibration row; cached profiles are dropped. A failed
 * allocation leaves the table as it was. */
void est_set_calibration_row(usher_estimator *e, const gpu_calib *row);
/* Time a kernel plan on a GPU with a calibration row (no caches involved). */
int est_run(usher_estimator *e, const gpu_kplan *plan, const gpu_type *g, const gpu_calib *cal,
            const usher_estimate_params *p, usher_profile *out, usher_error *err);

#endif
