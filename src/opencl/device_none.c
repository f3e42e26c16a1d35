/* Device listing in a build without OpenCL: no devices, and --precompile says why. */
#include <stddef.h>
#include <string.h>

#include "frugal/device.h"

enum fr_status fr_opencl_list_devices(struct fr_device_info **out, int *n)
{
    *out = NULL;
    *n = 0;
    return FR_STATUS_OK;
}

void fr_opencl_free_devices(struct fr_device_info *d) { (void)d; }

enum fr_status fr_opencl_precompile(int platform, int device, struct fr_precompile_report *out)
{
    (void)platform;
    (void)device;
    memset(out, 0, sizeof *out);
    return fr_error(FR_STATUS_UNSUPPORTED, "opencl: this frugal was built without OpenCL");
}

void fr_opencl_precompile_free(struct fr_precompile_report *r) { (void)r; }
