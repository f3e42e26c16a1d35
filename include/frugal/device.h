/* Compute devices frugal can see: the OpenCL devices of every platform, for `frugal devices`.
 *
 *   struct fr_device_info *d; int n;
 *   if (fr_opencl_list_devices(&d, &n) == FR_STATUS_OK) {
 *       for (int i = 0; i < n; i++) printf("%s %s %s\n", d[i].spec, d[i].name, d[i].usable ? "yes" : d[i].why_not);
 *       fr_opencl_free_devices(d);
 *   }
 */
#ifndef FRUGAL_DEVICE_H
#define FRUGAL_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_device_info {
    char spec[32];             /* "cl:P:D", what --device accepts */
    int platform, device;      /* P and D */
    char platform_name[128];
    char platform_version[128];
    char name[128];
    char vendor[128];
    char type[16];             /* "gpu", "cpu", "accelerator", "other" */
    char driver_version[64];
    char device_version[128];  /* "OpenCL 3.0 ..." */
    char opencl_c_version[64]; /* "OpenCL C 1.2 ..." */
    unsigned compute_units;
    uint64_t global_mem;       /* bytes */
    uint64_t max_alloc;        /* bytes, CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    size_t max_work_group;
    size_t max_parameter_size; /* bytes of all arguments of one kernel (CL_DEVICE_MAX_PARAMETER_SIZE) */
    char fp64[8];              /* "none", "slow" (a fraction of the fp32 rate: GeForce, RDNA, ...) or "full";
                                * augmentation uses exact integer tables instead of doubles unless "full" */
    bool usable;
    char why_not[128];         /* reason when !usable */
};

/* Every OpenCL device on every platform, in platform/device order. No ICD, no platform or a build
 * without OpenCL give *n = 0 and FR_STATUS_OK; *out is NULL then. Free with fr_opencl_free_devices. */
enum fr_status fr_opencl_list_devices(struct fr_device_info **out, int *n);
void fr_opencl_free_devices(struct fr_device_info *d);

/* Builds every kernel program for device "cl:P:D" into the disk cache ahead of time, going on past
 * failures: *out counts the programs (n_ready built, n_compiled of them compiled rather than loaded from
 * the cache) and lists each one that failed with its error and build log. FR_STATUS_UNSUPPORTED when some
 * failed (their ops run on the CPU path on that device), other statuses when the device cannot be opened.
 * Free with fr_opencl_precompile_free. Needs an OpenCL build. */
struct fr_precompile_failure {
    char file[64]; /* "pool.cl" */
    char *error;   /* the message with the compiler's log (may span lines) */
};
struct fr_precompile_report {
    int n_programs, n_ready, n_compiled, n_failed;
    struct fr_precompile_failure *failures;
};
enum fr_status fr_opencl_precompile(int platform, int device, struct fr_precompile_report *out);
void fr_opencl_precompile_free(struct fr_precompile_report *r);

#ifdef __cplusplus
}
#endif
#endif
