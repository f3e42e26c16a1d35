/* OpenCL device discovery: every platform's devices, their properties and whether frugal can use them. */
#include <ctype.h>
#include <stdio.h>
#include <time.h>

#include "opencl/opencl_internal.h"

const char *fr_cl_error_name(cl_int err)
{
    switch (err) {
#define E(x) \
    case x: return #x;
        E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
        E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
        E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE)
        E(CL_LINK_PROGRAM_FAILURE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM)
        E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
        E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE)
        E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION)
        E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET)
        E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

double fr_cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Strings longer than the field (PoCL's device version is) are truncated, not lost. */
static void dev_str(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    size_t n = 0;
    char *tmp;
    snprintf(buf, size, "?");
    if (clGetDeviceInfo(d, what, 0, NULL, &n) != CL_SUCCESS || n == 0 || !(tmp = calloc(1, n + 1)))
        return;
    if (clGetDeviceInfo(d, what, n, tmp, NULL) == CL_SUCCESS)
        snprintf(buf, size, "%s", tmp);
    free(tmp);
}

static void plat_str(cl_platform_id p, cl_platform_info what, char *buf, size_t size)
{
    size_t n = 0;
    char *tmp;
    snprintf(buf, size, "?");
    if (clGetPlatformInfo(p, what, 0, NULL, &n) != CL_SUCCESS || n == 0 || !(tmp = calloc(1, n + 1)))
        return;
    if (clGetPlatformInfo(p, what, n, tmp, NULL) == CL_SUCCESS)
        snprintf(buf, size, "%s", tmp);
    free(tmp);
}

/* "OpenCL C 1.2 pocl" -> 102; 0 when unparsable */
static int c_version(const char *s)
{
    int major = 0, minor = 0;
    if (sscanf(s, "OpenCL C %d.%d", &major, &minor) != 2)
        return 0;
    return major * 100 + minor;
}

void fr_cl_device_info(cl_platform_id p, cl_device_id d, int pi, int di, struct fr_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->platform = pi;
    info->device = di;
    snprintf(info->spec, sizeof info->spec, "cl:%d:%d", pi, di);
    plat_str(p, CL_PLATFORM_NAME, info->platform_name, sizeof info->platform_name);
    plat_str(p, CL_PLATFORM_VERSION, info->platform_version, sizeof info->platform_version);
    dev_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    dev_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    dev_str(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    dev_str(d, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
    dev_str(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
    cl_device_type type = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    snprintf(info->type, sizeof info->type, "%s",
             (type & CL_DEVICE_TYPE_GPU)           ? "gpu"
             : (type & CL_DEVICE_TYPE_CPU)         ? "cpu"
             : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator"
                                                   : "other");
    cl_uint cu = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    info->compute_units = cu;
    cl_ulong gm = 0, ma = 0;
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gm, &gm, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ma, &ma, NULL);
    info->global_mem = gm;
    info->max_alloc = ma;
    size_t wg = 0, mp = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    info->max_work_group = wg;
    clGetDeviceInfo(d, CL_DEVICE_MAX_PARAMETER_SIZE, sizeof mp, &mp, NULL);
    info->max_parameter_size = mp;
    static const char *const fp64_names[] = {"none", "slow", "full"};
    snprintf(info->fp64, sizeof info->fp64, "%s", fp64_names[fr_cl_fp64_class(d, info)]);

    cl_bool avail = CL_FALSE, compiler = CL_FALSE;
    clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
    clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
    int cv = c_version(info->opencl_c_version);
    /* Capabilities decide, never the vendor: the kernels need OpenCL C 1.2 and a run-time compiler. */
    if (!avail)
        snprintf(info->why_not, sizeof info->why_not, "device reports itself unavailable");
    else if (!compiler)
        snprintf(info->why_not, sizeof info->why_not, "no OpenCL C compiler for this device");
    else if (cv < 102)
        snprintf(info->why_not, sizeof info->why_not, "OpenCL C 1.2 needed, device has '%s'", info->opencl_c_version);
    else if (ma < (cl_ulong)1 << 24)
        snprintf(info->why_not, sizeof info->why_not, "max allocation %llu bytes is too small",
                 (unsigned long long)ma);
    else
        info->usable = true;
}

/* one of words as a whole token of s ("A100" in "NVIDIA A100-SXM4-80GB", not in "RTX A1000") */
static bool has_any(const char *s, const char *const *words)
{
    for (; *words; words++) {
        size_t n = strlen(*words);
        for (const char *p = strstr(s, *words); p; p = strstr(p + 1, *words))
            if ((p == s || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[n]))
                return true;
    }
    return false;
}

/* OpenCL has no query for the fp64 rate: full rate is known by name (datacenter parts), every other GPU is
 * taken as slow, which only costs the host the exact integer tables the no-fp64 path uses anyway.
 * NVIDIA: GA100/GH100/GV100/GP100 parts; AMD: CDNA (gfx908, gfx90a, gfx94x) and gfx906 (MI50/60); Intel:
 * Data Center GPU Max. */
enum fr_cl_fp64 fr_cl_fp64_by_name(const char *type, const char *name, const char *board)
{
    static const char *const full[] = {"A100", "A800", "H100", "H800", "H200", "H20", "GH200", "B100", "B200",
                                       "V100", "P100", "TITAN V", "GV100", "GP100", "gfx906", "gfx908", "gfx90a",
                                       "gfx940", "gfx941", "gfx942", "gfx950", "Instinct", "Data Center GPU Max",
                                       NULL};
    if (strcmp(type, "cpu") == 0)
        return FR_CL_FP64_FULL;
    return has_any(name, full) || (board && has_any(board, full)) ? FR_CL_FP64_FULL : FR_CL_FP64_SLOW;
}

enum fr_cl_fp64 fr_cl_fp64_class(cl_device_id d, const struct fr_device_info *info)
{
    const char *e = getenv("FRUGAL_CL_FP64");
    if (e && strcmp(e, "none") == 0)
        return FR_CL_FP64_NONE;
    cl_device_fp_config fp64 = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS || !fp64)
        return FR_CL_FP64_NONE;
    if (e && strcmp(e, "slow") == 0)
        return FR_CL_FP64_SLOW;
    if (e && strcmp(e, "full") == 0)
        return FR_CL_FP64_FULL;
    char board[128] = ""; /* CL_DEVICE_BOARD_NAME_AMD (0x4038): the marketing name on AMD */
    if (strstr(info->vendor, "Advanced Micro Devices") || strstr(info->vendor, "AMD"))
        clGetDeviceInfo(d, 0x4038, sizeof board - 1, board, NULL);
    board[sizeof board - 1] = 0;
    return fr_cl_fp64_by_name(info->type, info->name, board);
}

enum fr_status fr_opencl_list_devices(struct fr_device_info **out, int *n)
{
    *out = NULL;
    *n = 0;
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err != CL_SUCCESS || np == 0)
        return FR_STATUS_OK; /* no ICD / no platform: simply no devices */
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    if (clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) {
        free(plats);
        return FR_STATUS_OK;
    }
    struct fr_device_info *list = NULL;
    int count = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id *devs = calloc(nd, sizeof *devs);
        struct fr_device_info *grown = realloc(list, (size_t)(count + (int)nd) * sizeof *list);
        if (!devs || !grown) {
            free(devs);
            free(grown ? grown : list);
            free(plats);
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
        }
        list = grown;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS)
            for (cl_uint d = 0; d < nd; d++)
                fr_cl_device_info(plats[p], devs[d], (int)p, (int)d, &list[count++]);
        free(devs);
    }
    free(plats);
    if (count == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *n = count;
    return FR_STATUS_OK;
}

void fr_opencl_free_devices(struct fr_device_info *d) { free(d); }
