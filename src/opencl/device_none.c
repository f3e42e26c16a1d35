/* Device listing in a build without OpenCL: no devices, and --precompile says why. */
#include <stddef.h>

#include "frugal/device.h"

enum fr_status fr_opencl_list_devices(struct fr_device_info **out, int *n)
{
    *out = NULL;
    *n = 0;
    return FR_STATUS_OK;
}

void fr_opencl_free_devices(struct fr_device_info *d) { (void)d; }

enum fr_status fr_opencl_precompile(int platform, int device, int *n_programs, int *n_compiled)
{
    (void)platform;
    (void)device;
    if (n_programs)
        *n_programs = 0;
    if (n_compiled)
        *n_compiled = 0;
    return fr_error(FR_STATUS_UNSUPPORTED, "opencl: this frugal was built without OpenCL");
}
