/* The OpenCL backend: opening a device (explicit or auto), buffers, the op dispatch over the launcher
 * table, one in-order queue per device with a single host sync per graph run, failures as statuses (out of
 * memory, programs that do not build), event profiling, and --precompile. */
#include <math.h>
#include <stdarg.h>

#include "core/profile_internal.h"
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
        for (int i = 0; i < cl->n_prof; i++)
            if (cl->prof[i].ev)
                clReleaseEvent(cl->prof[i].ev);
        free(cl->prof);
        fr_cl_gemm_release(cl);
        fr_cl_scratch_release(cl);
        for (int i = 0; i < cl->n_kernels; i++)
            clReleaseKernel(cl->kernels[i].kernel);
        for (int i = 0; i < cl->n_programs; i++) {
            if (cl->programs[i].program)
                clReleaseProgram(cl->programs[i].program);
            free(cl->programs[i].error);
        }
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

static bool is_oom(cl_int err)
{
    return err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY;
}

enum fr_status fr_cl_fail(struct fr_cl *cl, cl_int err, const char *call, const char *fmt, ...)
{
    char what[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        what[0] = ' ';
        what[1] = '(';
        vsnprintf(what + 2, sizeof what - 3, fmt, ap);
        va_end(ap);
        strcat(what, ")");
    }
    const char *hint = cl->backend->oom_hint;
    if (is_oom(err))
        return fr_error(FR_STATUS_OUT_OF_MEMORY,
                        "opencl: %s (%s): out of device memory: %s%s returned %s; the device has %.1f GiB, at most "
                        "%.1f GiB per buffer%s%s",
                        cl->info.spec, cl->info.name, call, what, fr_cl_error_name(err),
                        (double)cl->info.global_mem / (1 << 30), (double)cl->info.max_alloc / (1 << 30),
                        hint[0] ? "; " : "", hint);
    return fr_error(FR_STATUS_DEVICE, "opencl: %s (%s): %s%s failed: %s", cl->info.spec, cl->info.name, call, what,
                    fr_cl_error_name(err));
}

enum fr_status fr_cl_buffer_create(struct fr_cl *cl, cl_mem_flags flags, size_t size, void *host, cl_mem *out,
                                   const char *what)
{
    *out = NULL;
    if (size > cl->info.max_alloc)
        return fr_error(FR_STATUS_OUT_OF_MEMORY,
                        "opencl: %s (%s): %s of %.1f MiB exceeds the device's largest buffer (%.1f MiB of %.1f GiB)",
                        cl->info.spec, cl->info.name, what, (double)size / (1 << 20),
                        (double)cl->info.max_alloc / (1 << 20), (double)cl->info.global_mem / (1 << 30));
    cl_int err = fr_cl_fault(FR_CL_ALLOC);
    cl_mem m = NULL;
    if (err == CL_SUCCESS)
        m = clCreateBuffer(cl->context, flags, size ? size : 1, host, &err);
    if (!m || err != CL_SUCCESS) {
        if (m)
            clReleaseMemObject(m);
        return fr_cl_fail(cl, err == CL_SUCCESS ? CL_MEM_OBJECT_ALLOCATION_FAILURE : err, "clCreateBuffer",
                          "%s, %.1f MiB", what, (double)size / (1 << 20));
    }
    *out = m;
    return FR_STATUS_OK;
}

static enum fr_status cl_buffer_alloc(struct fr_backend *b, size_t size, struct fr_buffer **out)
{
    struct fr_cl *cl = cl_of(b);
    *out = NULL;
    struct fr_buffer *buf = calloc(1, sizeof *buf);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    cl_mem m;
    enum fr_status st = fr_cl_buffer_create(cl, CL_MEM_READ_WRITE, size, NULL, &m, "buffer");
    if (st != FR_STATUS_OK) {
        free(buf);
        return st;
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

/* A write on the in-order queue; blocking: the caller's memory may be reused as soon as this returns. */
static enum fr_status buffer_write(struct fr_buffer *buf, size_t offset, const void *src, size_t size, cl_bool blocking)
{
    enum fr_status st = check_range(buf, offset, size, "write");
    if (st != FR_STATUS_OK || size == 0)
        return st;
    struct fr_cl *cl = cl_of(buf->backend);
    cl_int err = fr_cl_fault(FR_CL_WRITE);
    if (err == CL_SUCCESS)
        err = clEnqueueWriteBuffer(cl->queue, (cl_mem)buf->handle, blocking, offset, size, src, 0, NULL,
                                   fr_cl_prof_event(cl, "host->device", -1));
    if (err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clEnqueueWriteBuffer", "%zu bytes", size);
    return FR_STATUS_OK;
}

static enum fr_status cl_buffer_set(struct fr_buffer *buf, size_t offset, const void *src, size_t size)
{
    return buffer_write(buf, offset, src, size, CL_TRUE);
}

/* The queue is in order, so a blocking read also waits for every kernel enqueued before it. */
static enum fr_status cl_buffer_get(struct fr_buffer *buf, size_t offset, void *dst, size_t size)
{
    enum fr_status st = check_range(buf, offset, size, "read");
    if (st != FR_STATUS_OK || size == 0)
        return st;
    struct fr_cl *cl = cl_of(buf->backend);
    cl_int err = fr_cl_fault(FR_CL_READ);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(cl->queue, (cl_mem)buf->handle, CL_TRUE, offset, size, dst, 0, NULL,
                                  fr_cl_prof_event(cl, "device->host", -1));
    if (err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clEnqueueReadBuffer", "%zu bytes", size);
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

/* The node as the kernels see it: every operand within 2^31 elements of its buffer (the planner has
 * placed it by now, so this is where offsets beyond 32-bit indices are caught). */
static bool reachable(const struct fr_tensor *node)
{
    fr_clt p;
    for (int i = -1; i < FR_MAX_SRC; i++) {
        const struct fr_tensor *t = i < 0 ? node : node->src[i];
        if (t && (t->buffer || t->view_src) && fr_cl_param(t, NULL, &p) != FR_STATUS_OK)
            return false;
    }
    return true;
}

static bool cl_supports_op(struct fr_backend *b, const struct fr_tensor *node)
{
    if ((unsigned)node->op >= FR_OP_COUNT)
        return false;
    if (node->op == FR_OP_NONE || node->op == FR_OP_VIEW)
        return true;
    const struct fr_cl_op *e = &fr_cl_ops()[node->op];
    if (!e->launch || cl_of(b)->op_failed[node->op])
        return false;
    if (fr_nelements(node) >= INT32_MAX)
        return false;
    for (int i = 0; i < FR_MAX_SRC; i++)
        if (node->src[i] && fr_nelements(node->src[i]) >= INT32_MAX)
            return false;
    if (!(e->supports ? e->supports(cl_of(b), node) : default_supports(node)))
        return false;
    if (!reachable(node)) {
        fr_clear_error();
        return false;
    }
    return true;
}

/* A launcher that fails because a program does not build marks its op unsupported on this device: the
 * graph runner puts the node on the CPU path (FR_STATUS_UNSUPPORTED) and the planner does so from then on. */
static enum fr_status cl_graph_compute(struct fr_backend *b, struct fr_tensor **nodes, int n, const struct fr_exec *ex)
{
    struct fr_cl *cl = cl_of(b);
    const struct fr_cl_op *ops = fr_cl_ops();
    enum fr_status st = FR_STATUS_OK;
    for (int i = 0; i < n && st == FR_STATUS_OK; i++) {
        struct fr_tensor *t = nodes[i];
        if (t->op == FR_OP_NONE || t->op == FR_OP_VIEW)
            continue;
        if ((unsigned)t->op >= FR_OP_COUNT || !ops[t->op].launch || cl->op_failed[t->op])
            return fr_error(FR_STATUS_UNSUPPORTED, "opencl: op %s has no OpenCL kernel on %s", fr_op_name(t->op),
                            cl->info.spec);
        cl->cur_node = t;
        cl->build_failed = false;
        /* a group launcher takes a run of consecutive nodes of its op at once (every optimizer update) */
        fr_cl_group_fn group = fr_cl_group_launcher(t->op);
        int done = 1;
        st = group ? group(cl, nodes + i, n - i, ex, &done) : ops[t->op].launch(cl, t, ex);
        i += done - 1;
        cl->cur_node = NULL;
        if (st != FR_STATUS_OK && cl->build_failed) {
            cl->op_failed[t->op] = true;
            st = FR_STATUS_UNSUPPORTED;
        }
    }
    if (st == FR_STATUS_OK && fr_debug_enabled("clsync")) /* debugging aid: find the op that faults */
        return b->iface->synchronize(b);
    return st;
}

static enum fr_status cl_synchronize(struct fr_backend *b)
{
    struct fr_cl *cl = cl_of(b);
    cl_int err = fr_cl_fault(FR_CL_FINISH);
    if (err == CL_SUCCESS)
        err = clFinish(cl->queue);
    if (err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clFinish", NULL);
    fr_cl_prof_collect(cl);
    return FR_STATUS_OK;
}

cl_event *fr_cl_prof_event(struct fr_cl *cl, const char *kernel, int64_t items)
{
    if (!cl->profiling)
        return NULL;
    if (cl->n_prof >= 4096 && clFinish(cl->queue) == CL_SUCCESS) /* bound the outstanding events */
        fr_cl_prof_collect(cl);
    if (cl->n_prof == cl->cap_prof) {
        int cap = cl->cap_prof ? 2 * cl->cap_prof : 256;
        struct fr_cl_prof_rec *g = realloc(cl->prof, (size_t)cap * sizeof *g);
        if (!g)
            return NULL;
        cl->prof = g;
        cl->cap_prof = cap;
    }
    struct fr_cl_prof_rec *r = &cl->prof[cl->n_prof++];
    r->ev = NULL;
    r->op = cl->cur_node ? (int)cl->cur_node->op : -1;
    r->phase = fr_prof_phase(cl->backend);
    r->items = items;
    r->out = cl->cur_node ? fr_nelements(cl->cur_node) : -1;
    snprintf(r->kernel, sizeof r->kernel, "%s", kernel);
    return &r->ev;
}

static void prof_describe(struct fr_cl *cl)
{
    fr_prof_describe(cl->backend, "OpenCL profiling events (device time)",
                     8 * (int64_t)cl->info.compute_units * (int64_t)cl->wg_multiple);
}

void fr_cl_prof_collect(struct fr_cl *cl)
{
    if (cl->n_prof)
        prof_describe(cl); /* the target follows the preferred multiple of the kernels built so far */
    for (int i = 0; i < cl->n_prof; i++) {
        struct fr_cl_prof_rec *r = &cl->prof[i];
        if (!r->ev)
            continue;
        cl_ulong t0 = 0, t1 = 0;
        if (clGetEventProfilingInfo(r->ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(r->ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS)
            fr_prof_add(cl->backend, (enum fr_prof_phase)r->phase, r->op >= 0 ? fr_op_name((enum fr_op)r->op) : r->kernel,
                        r->kernel, t1 > t0 ? (double)(t1 - t0) * 1e-6 : 0.0, r->items, r->out);
        clReleaseEvent(r->ev);
    }
    cl->n_prof = 0;
}

/* Profiling needs a queue created with it; the queue is replaced between graph runs (in order, so
 * finishing the old one first loses nothing). */
enum fr_status fr_opencl_profiling(struct fr_backend *b, bool on)
{
    struct fr_cl *cl = cl_of(b);
    cl_int err = clFinish(cl->queue);
    if (err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clFinish", NULL);
    fr_cl_prof_collect(cl);
    if (on == cl->profiling)
        return FR_STATUS_OK;
    cl_command_queue q = clCreateCommandQueue(cl->context, cl->device, on ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
    if (!q || err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clCreateCommandQueue", "%s profiling", on ? "with" : "without");
    clReleaseCommandQueue(cl->queue);
    cl->queue = q;
    cl->profiling = on;
    if (on)
        prof_describe(cl);
    return FR_STATUS_OK;
}

/* Non-blocking transfers on the in-order queue (the trainer's overlapped input pipeline): the write runs before the
 * kernels enqueued after it; the read after those enqueued before it, its event is the ticket. */
static enum fr_status cl_buffer_set_async(struct fr_buffer *buf, size_t offset, const void *src, size_t size)
{
    return buffer_write(buf, offset, src, size, CL_FALSE);
}

static enum fr_status cl_buffer_get_async(struct fr_buffer *buf, size_t offset, void *dst, size_t size, void **ticket)
{
    *ticket = NULL;
    enum fr_status st = check_range(buf, offset, size, "read");
    if (st != FR_STATUS_OK || size == 0)
        return st;
    struct fr_cl *cl = cl_of(buf->backend);
    cl_event ev = NULL;
    cl_int err = fr_cl_fault(FR_CL_READ);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(cl->queue, (cl_mem)buf->handle, CL_FALSE, offset, size, dst, 0, NULL, &ev);
    if (err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clEnqueueReadBuffer", "%zu bytes", size);
    clFlush(cl->queue); /* start the queued work now: nothing else may come before the host waits */
    *ticket = ev;
    return FR_STATUS_OK;
}

static enum fr_status cl_wait(struct fr_backend *b, void *ticket)
{
    if (!ticket)
        return FR_STATUS_OK;
    struct fr_cl *cl = cl_of(b);
    cl_event ev = (cl_event)ticket;
    cl_int err = fr_cl_fault(FR_CL_FINISH), status = CL_COMPLETE;
    if (err == CL_SUCCESS)
        err = clWaitForEvents(1, &ev);
    if (err == CL_SUCCESS)
        err = clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
    clReleaseEvent(ev);
    if (err == CL_SUCCESS && status < 0)
        err = status; /* a command before the read failed */
    if (err != CL_SUCCESS)
        return fr_cl_fail(cl, err, "clWaitForEvents", NULL);
    if (cl->profiling) /* the steps' profiling events, in order */
        return cl_synchronize(b);
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
    .buffer_set_async = cl_buffer_set_async,
    .buffer_get_async = cl_buffer_get_async,
    .wait = cl_wait,
};

/* Platform and device handles for "cl:P:D". */
static enum fr_status find_device(int pi, int di, cl_platform_id *pp, cl_device_id *dd)
{
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err != CL_SUCCESS || np == 0)
        return fr_error(FR_STATUS_NOT_FOUND, "cl:%d:%d: no OpenCL platform (%s)", pi, di,
                        err != CL_SUCCESS ? fr_cl_error_name(err) : "none installed");
    if (np > 64) /* the lists below hold 64 */
        np = 64;
    if (pi < 0 || (cl_uint)pi >= np)
        return fr_error(FR_STATUS_NOT_FOUND, "cl:%d:%d: no such platform (%u available)", pi, di, np);
    cl_platform_id plats[64];
    clGetPlatformIDs(np, plats, NULL);
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS)
        nd = 0;
    nd = nd > 64 ? 64 : nd;
    if (nd == 0 || di < 0 || (cl_uint)di >= nd)
        return fr_error(FR_STATUS_NOT_FOUND, "cl:%d:%d: no such device (platform %d has %u)", pi, di, pi, nd);
    cl_device_id devs[64];
    clGetDeviceIDs(plats[pi], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
    *pp = plats[pi];
    *dd = devs[di];
    return FR_STATUS_OK;
}

enum fr_status fr_opencl_open(int platform, int device, struct fr_backend **out)
{
    *out = NULL;
    cl_platform_id p = NULL;
    cl_device_id d = NULL;
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
    size_t items[64] = {1, 1, 1}; /* sized by the device's dimensions (3 at least, more allowed) */
    cl_uint dims = 3;
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof dims, &dims, NULL);
    if (dims < 2 || dims > 64 ||
        clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, dims * sizeof items[0], items, NULL) != CL_SUCCESS)
        items[0] = items[1] = 1;
    cl->max_item[0] = items[0] ? items[0] : 1;
    cl->max_item[1] = items[1] ? items[1] : 1;
    cl_ulong lmem = 0;
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    cl->local_mem = lmem;
    cl->max_param = cl->info.max_parameter_size;
    cl->fp64 = fr_cl_fp64_class(d, &cl->info);
    /* the planner's chunks: the largest buffer, and within 2^31 bytes so that element offsets of any dtype
     * fit the kernels' 32-bit indices */
    b->mem_bytes = cl->info.global_mem;
    b->max_buffer = FR_MIN(cl->info.max_alloc, (uint64_t)INT32_MAX + 1 - 4096);
    b->no_fp64 = cl->fp64 != FR_CL_FP64_FULL; /* augmentation: host tables unless doubles run at full rate */
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

enum fr_status fr_opencl_precompile(int platform, int device, struct fr_precompile_report *out)
{
    memset(out, 0, sizeof *out);
    struct fr_backend *b;
    enum fr_status st = fr_opencl_open(platform, device, &b);
    if (st != FR_STATUS_OK)
        return st;
    struct fr_cl *cl = cl_of(b);
    cl->quiet_build_failures = true;
    const char *names[128];
    int n = fr_cl_source_list(names, 128);
    out->failures = calloc((size_t)n + 1, sizeof *out->failures);
    if (!out->failures) {
        cl_free(b);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    }
    char failed[512] = "";
    for (int i = 0; i < n; i++) {
        cl_program p;
        out->n_programs++;
        if (fr_cl_program(cl, names[i], &p) == FR_STATUS_OK) {
            out->n_ready++;
            continue;
        }
        struct fr_precompile_failure *f = &out->failures[out->n_failed++];
        snprintf(f->file, sizeof f->file, "%s", names[i]);
        f->error = strdup(fr_last_error());
        size_t len = strlen(failed);
        snprintf(failed + len, sizeof failed - len, "%s%s", len ? ", " : "", names[i]);
    }
    out->n_compiled = cl->n_compiled;
    char spec[200];
    snprintf(spec, sizeof spec, "%s (%s)", cl->info.spec, cl->info.name);
    cl_free(b);
    if (out->n_failed)
        return fr_error(FR_STATUS_UNSUPPORTED,
                        "%d of %d kernel programs failed to build on %s: %s; the ops that need them run on the CPU "
                        "path",
                        out->n_failed, out->n_programs, spec, failed);
    return FR_STATUS_OK;
}

void fr_opencl_precompile_free(struct fr_precompile_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_failed; i++)
        free(r->failures[i].error);
    free(r->failures);
    memset(r, 0, sizeof *r);
}
