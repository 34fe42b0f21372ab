/*
 * greenctx.h - an SM partition of a CUDA device for one session: a CUDA
 * green context and a stream in it (layer 7, private to the backend;
 * greenctx.c has the method and its status: never run on a GPU yet).
 */
#ifndef BE_GREENCTX_H
#define BE_GREENCTX_H

#include "usher/status.h"

typedef struct be_green be_green;

/* At least percent % of cuda:dev's SMs (rounded up to the device's
 * granularity). USHER_ERR_UNSUPPORTED when the driver or the device cannot
 * (no driver, CUDA < 12.4, the split refused), with the CUDA error. */
int be_green_open(int dev, int percent, be_green **out, usher_error *err);
void *be_green_stream(const be_green *g);                 /* a CUstream */
unsigned be_green_sms(const be_green *g, unsigned *total); /* SMs in it, and the device's */
void be_green_close(be_green *g);                         /* NULL is fine */

#endif
