/* The OpenCL backend: opening a device (explicit or auto), buffers, the op dispatch over the launcher
 * table, one in-order queue per device with a single host sync per graph run, and --precompile. */
#include "opencl/opencl_internal.h"

static struct fr_cl *cl_of(struct fr_backend *b) { return (struct fr_cl *)b->ctx; }

static void cl_free(struct fr_backend *b)
{
    if (!b)
        return;
    struct fr_cl *cl = cl_of(b);
    if (cl) {
        if (cl->n_cache_hits + cl->n_compiled > 0)
            fr_log(fr_debug_enabled("cache") ? FR_LOG_DEBUG : FR_LOG_INFO,
                   "opencl: %s: %d kernel programs from the disk cache, %d compiled (%.0f ms)", cl->info.spec,
                   cl->n_cache_hits, cl->n_compiled, cl->compile_ms);
        if (cl->queue)
            clFinish(cl->queue);
        fr_cl_gemm_release(cl);
        for (int i = 0; i < cl->n_kernels; i++)
            clReleaseKernel(cl->kernels[i].kernel);
        for (int i = 0; i < cl->n_programs; i++)
            clReleaseProgram(cl->programs[i].program);
        free(cl->kernels);
        free(cl->programs);
        if (cl->queue)
            clReleaseCommandQueue(cl->queue);
        if (cl->context)
            clReleaseContext(cl->context);
        free(cl);
    }
    free(b);
}

static enum fr_status cl_buffer_alloc(struct fr_backend *b, size_t size, struct fr_buffer **out)
{
    struct fr_cl *cl = cl_of(b);
    *out = NULL;
    if (size > cl->info.max_alloc)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: %zu bytes exceed %s's max allocation of %llu", size,
                        cl->info.spec, (unsigned long long)cl->info.max_alloc);
    struct fr_buffer *buf = calloc(1, sizeof *buf);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    cl_int err;
    cl_mem m = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, size ? size : 1, NULL, &err);
    if (!m || err != CL_SUCCESS) {
        free(buf);
        return fr_error(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                                err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE
                            ? FR_STATUS_OUT_OF_MEMORY
                            : FR_STATUS_DEVICE,
                        "opencl: cannot allocate %zu bytes on %s: %s", size, cl->info.spec, fr_cl_error_name(err));
    }
    buf->backend = b;
    buf->size = size;
    buf->host = NULL;
    buf->handle = m;
    *out = buf;
    return FR_STATUS_OK;
}

static void cl_buffer_free(struct fr_buffer *buf)
{
    if (!buf)
        return;
    if (buf->handle)
        clReleaseMemObject((cl_mem)buf->handle);
    free(buf);
}

static enum fr_status check_range(struct fr_buffer *buf, size_t offset, size_t size, const char *what)
{
    if (offset > buf->size || size > buf->size - offset)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "opencl: %s of %zu bytes at %zu outside a buffer of %zu", what,
                        size, offset, buf->size);
    return FR_STATUS_OK;
}

/* Blocking writes: the caller's memory may be reused as soon as this returns. */
static enum fr_status cl_buffer_set(struct fr_buffer *buf, size_t offset, const void *src, size_t size)
{
    enum fr_status st = check_range(buf, offset, size, "write");
    if (st != FR_STATUS_OK || size == 0)
        return st;
    struct fr_cl *cl = cl_of(buf->backend);
    cl_int err = clEnqueueWriteBuffer(cl->queue, (cl_mem)buf->handle, CL_TRUE, offset, size, src, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "opencl: write to %s failed: %s", cl->info.spec, fr_cl_error_name(err));
    return FR_STATUS_OK;
}

/* The queue is in order, so a blocking read also waits for every kernel enqueued before it. */
static enum fr_status cl_buffer_get(struct fr_buffer *buf, size_t offset, void *dst, size_t size)
{
    enum fr_status st = check_range(buf, offset, size, "read");
    if (st != FR_STATUS_OK || size == 0)
        return st;
    struct fr_cl *cl = cl_of(buf->backend);
    cl_int err = clEnqueueReadBuffer(cl->queue, (cl_mem)buf->handle, CL_TRUE, offset, size, dst, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "opencl: read from %s failed: %s", cl->info.spec, fr_cl_error_name(err));
    return FR_STATUS_OK;
}

static bool default_supports(const struct fr_tensor *node)
{
    if (node->type != FR_F32)
        return false;
    for (int i = 0; i < FR_MAX_SRC; i++)
        if (node->src[i] && node->src[i]->type != FR_F32)
            return false;
    return true;
}

static bool cl_supports_op(struct fr_backend *b, const struct fr_tensor *node)
{
    if ((unsigned)node->op >= FR_OP_COUNT)
        return false;
    if (node->op == FR_OP_NONE || node->op == FR_OP_VIEW)
        return true;
    const struct fr_cl_op *e = &fr_cl_ops()[node->op];
    if (!e->launch)
        return false;
    if (fr_nelements(node) >= INT32_MAX)
        return false;
    for (int i = 0; i < FR_MAX_SRC; i++)
        if (node->src[i] && fr_nelements(node->src[i]) >= INT32_MAX)
            return false;
    return e->supports ? e->supports(cl_of(b), node) : default_supports(node);
}

static enum fr_status cl_graph_compute(struct fr_backend *b, struct fr_tensor **nodes, int n, const struct fr_exec *ex)
{
    struct fr_cl *cl = cl_of(b);
    const struct fr_cl_op *ops = fr_cl_ops();
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = nodes[i];
        if (t->op == FR_OP_NONE || t->op == FR_OP_VIEW)
            continue;
        if ((unsigned)t->op >= FR_OP_COUNT || !ops[t->op].launch)
            return fr_error(FR_STATUS_UNSUPPORTED, "opencl: op %s has no OpenCL kernel", fr_op_name(t->op));
        enum fr_status st = ops[t->op].launch(cl, t, ex);
        if (st != FR_STATUS_OK)
            return st;
    }
    if (fr_debug_enabled("clsync")) /* debugging aid: find the op that faults */
        return b->iface->synchronize(b);
    return FR_STATUS_OK;
}

static enum fr_status cl_synchronize(struct fr_backend *b)
{
    struct fr_cl *cl = cl_of(b);
    cl_int err = clFinish(cl->queue);
    if (err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "opencl: %s failed while running: %s", cl->info.spec, fr_cl_error_name(err));
    return FR_STATUS_OK;
}

static const struct fr_backend_i cl_iface = {
    .free = cl_free,
    .buffer_alloc = cl_buffer_alloc,
    .buffer_free = cl_buffer_free,
    .buffer_set = cl_buffer_set,
    .buffer_get = cl_buffer_get,
    .supports_op = cl_supports_op,
    .graph_compute = cl_graph_compute,
    .synchronize = cl_synchronize,
};

/* Platform and device handles for "cl:P:D". */
static enum fr_status find_device(int pi, int di, cl_platform_id *pp, cl_device_id *dd)
{
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err != CL_SUCCESS || np == 0)
        return fr_error(FR_STATUS_NOT_FOUND, "cl:%d:%d: no OpenCL platform (%s)", pi, di,
                        err != CL_SUCCESS ? fr_cl_error_name(err) : "none installed");
    if (pi < 0 || (cl_uint)pi >= np)
        return fr_error(FR_STATUS_NOT_FOUND, "cl:%d:%d: no such platform (%u available)", pi, di, np);
    cl_platform_id plats[64];
    if (np > 64)
        np = 64;
    clGetPlatformIDs(np, plats, NULL);
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0 || di < 0 ||
        (cl_uint)di >= nd)
        return fr_error(FR_STATUS_NOT_FOUND, "cl:%d:%d: no such device (platform %d has %u)", pi, di, pi, nd);
    cl_device_id devs[64];
    if (nd > 64)
        nd = 64;
    clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
    *pp = plats[pi];
    *dd = devs[di];
    return FR_STATUS_OK;
}

enum fr_status fr_opencl_open(int platform, int device, struct fr_backend **out)
{
    *out = NULL;
    cl_platform_id p;
    cl_device_id d;
    enum fr_status st = find_device(platform, device, &p, &d);
    if (st != FR_STATUS_OK)
        return st;
    struct fr_backend *b = calloc(1, sizeof *b);
    struct fr_cl *cl = calloc(1, sizeof *cl);
    if (!b || !cl) {
        free(b);
        free(cl);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    }
    b->iface = &cl_iface;
    b->kind = FR_BACKEND_OPENCL;
    b->ctx = cl;
    cl->backend = b;
    cl->platform_index = platform;
    cl->device_index = device;
    cl->platform = p;
    cl->device = d;
    fr_cl_device_info(p, d, platform, device, &cl->info);
    snprintf(b->name, sizeof b->name, "%.20s (%.90s)", cl->info.spec, cl->info.name);
    if (!cl->info.usable) {
        fr_error(FR_STATUS_UNSUPPORTED, "%s (%s): frugal cannot use it: %s", cl->info.spec, cl->info.name,
                 cl->info.why_not);
        free(cl);
        free(b);
        return FR_STATUS_UNSUPPORTED;
    }
    cl->max_work_group = cl->info.max_work_group;
    size_t items[3] = {1, 1, 1};
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL) != CL_SUCCESS)
        items[0] = items[1] = 1;
    cl->max_item[0] = items[0] ? items[0] : 1;
    cl->max_item[1] = items[1] ? items[1] : 1;
    cl_ulong lmem = 0;
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    cl->local_mem = lmem;
    /* No -cl-fast-relaxed-math: it breaks NaN checks and CPU parity. */
    snprintf(cl->build_options, sizeof cl->build_options, "-cl-std=CL1.2");
    const char *cb = getenv("FRUGAL_CLBLAST");
    cl->use_clblast = FRUGAL_HAVE_CLBLAST && !(cb && (strcmp(cb, "off") == 0 || strcmp(cb, "0") == 0));

    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)p, 0};
    cl->context = clCreateContext(props, 1, &d, NULL, NULL, &err);
    if (!cl->context || err != CL_SUCCESS) {
        st = fr_error(FR_STATUS_DEVICE, "%s (%s): clCreateContext failed: %s", cl->info.spec, cl->info.name,
                      fr_cl_error_name(err));
        cl_free(b);
        return st;
    }
    cl->queue = clCreateCommandQueue(cl->context, d, 0, &err);
    if (!cl->queue || err != CL_SUCCESS) {
        st = fr_error(FR_STATUS_DEVICE, "%s (%s): clCreateCommandQueue failed: %s", cl->info.spec, cl->info.name,
                      fr_cl_error_name(err));
        cl_free(b);
        return st;
    }
    *out = b;
    return FR_STATUS_OK;
}

enum fr_status fr_opencl_open_auto(struct fr_backend **out)
{
    *out = NULL;
    struct fr_device_info *devs;
    int n;
    enum fr_status st = fr_opencl_list_devices(&devs, &n);
    if (st != FR_STATUS_OK)
        return st;
    char last[256] = "no OpenCL device found";
    /* GPUs first, then accelerators and other devices. OpenCL devices of type CPU (PoCL, Intel's CPU
     * runtime) are never chosen automatically: on the same cores the pure-C path is many times faster
     * (here ~2,600 vs ~70 img/s training model s). They stay available as an explicit cl:P:D. */
    int n_cpu = 0;
    for (int pass = 0; pass < 2 && !*out; pass++) {
        for (int i = 0; i < n && !*out; i++) {
            bool gpu = strcmp(devs[i].type, "gpu") == 0, cpu = strcmp(devs[i].type, "cpu") == 0;
            if (pass == 0 && cpu && devs[i].usable)
                n_cpu++;
            if (!devs[i].usable || cpu || gpu != (pass == 0))
                continue;
            if (fr_opencl_open(devs[i].platform, devs[i].device, out) != FR_STATUS_OK)
                snprintf(last, sizeof last, "%s", fr_last_error());
        }
    }
    if (!*out && n_cpu > 0) {
        fr_opencl_free_devices(devs);
        return fr_error(FR_STATUS_UNSUPPORTED,
                        "opencl: only CPU OpenCL devices (%d); the pure-C path is faster on the same cores", n_cpu);
    }
    fr_opencl_free_devices(devs);
    if (!*out)
        return fr_error(FR_STATUS_NOT_FOUND, "opencl: %s", last);
    fr_log(FR_LOG_INFO, "opencl: auto chose %s", (*out)->name);
    return FR_STATUS_OK;
}

enum fr_status fr_opencl_precompile(int platform, int device, int *n_programs, int *n_compiled)
{
    if (n_programs)
        *n_programs = 0;
    if (n_compiled)
        *n_compiled = 0;
    struct fr_backend *b;
    enum fr_status st = fr_opencl_open(platform, device, &b);
    if (st != FR_STATUS_OK)
        return st;
    const char *names[128];
    int n = fr_cl_source_list(names, 128);
    for (int i = 0; i < n && st == FR_STATUS_OK; i++) {
        cl_program p;
        st = fr_cl_program(cl_of(b), names[i], &p);
        if (st == FR_STATUS_OK && n_programs)
            (*n_programs)++;
    }
    if (n_compiled)
        *n_compiled = cl_of(b)->n_compiled;
    cl_free(b);
    return st;
}
