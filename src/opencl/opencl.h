/* Entry points the core's fr_backend_open() uses to open an OpenCL device as a frugal backend. */
#ifndef FRUGAL_OPENCL_H
#define FRUGAL_OPENCL_H

#include "frugal/backend.h"

/* Opens device `device` of platform `platform` (indices as `frugal devices` lists them, "cl:P:D").
 * FR_STATUS_NOT_FOUND when no such device exists, FR_STATUS_UNSUPPORTED when it exists but frugal
 * cannot use it, FR_STATUS_DEVICE when the driver fails; fr_last_error() says which and why. */
enum fr_status fr_opencl_open(int platform, int device, struct fr_backend **out);

/* Opens the first usable GPU, else the first other usable OpenCL device; FR_STATUS_NOT_FOUND when
 * there is none (no ICD, no platform, no usable device). Logs the choice at INFO. */
enum fr_status fr_opencl_open_auto(struct fr_backend **out);

/* Turns event profiling of an OpenCL backend on (recreates its queue with CL_QUEUE_PROFILING_ENABLE) or
 * off (waits, reads the outstanding events into b->prof); for fr_profile_start/stop. */
enum fr_status fr_opencl_profiling(struct fr_backend *b, bool on);

#endif
