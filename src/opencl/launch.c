/* Kernel launch helpers: tensor storage and parameter structs, sticky-error argument setting within the
 * device's parameter size, and enqueueing with global sizes rounded up to a work-group size the kernel
 * allows (fault injection, profiling events and out-of-memory statuses included). */
#include "opencl/opencl_internal.h"

/* Buffer and byte offset of element 0, following views when the planner left a view without its own. */
static const struct fr_buffer *storage_of(const struct fr_tensor *t, size_t *off)
{
    size_t extra = 0;
    while (!t->buffer && t->view_src) {
        extra += t->view_offs;
        t = t->view_src;
    }
    *off = t->offset + extra;
    return t->buffer;
}

enum fr_status fr_cl_storage(struct fr_cl *cl, const struct fr_tensor *t, cl_mem *mem, size_t *offset)
{
    const struct fr_buffer *b = storage_of(t, offset);
    if (!b)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "opencl: tensor '%s' (%s) has no storage", t->name,
                        fr_op_name(t->op));
    if (b->backend != cl->backend || !b->handle)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "opencl: tensor '%s' lives on backend '%s', not %s", t->name,
                        b->backend ? b->backend->name : "?", cl->info.spec);
    *mem = (cl_mem)b->handle;
    return FR_STATUS_OK;
}

enum fr_status fr_cl_param_raw(const struct fr_tensor *t, const int64_t *ne, const int64_t *nb, fr_clt *p)
{
    memset(p, 0, sizeof *p);
    int64_t es = (int64_t)fr_dtype_size(t->type);
    size_t off = 0;
    storage_of(t, &off);
    if (es == 0 || off % (size_t)es)
        return fr_error(FR_STATUS_UNSUPPORTED, "opencl: tensor '%s' offset %zu is not a multiple of its element size",
                        t->name, off);
    int64_t n = 1, reach = (int64_t)(off / (size_t)es);
    for (int d = 0; d < 4; d++) {
        if (nb[d] % es)
            return fr_error(FR_STATUS_UNSUPPORTED, "opencl: tensor '%s' stride %lld is not a multiple of %lld",
                            t->name, (long long)nb[d], (long long)es);
        p->ne[d] = (fr_i32)ne[d];
        p->st[d] = (fr_i32)(nb[d] / es);
        n *= ne[d];
        reach += (ne[d] - 1) * (nb[d] < 0 ? -nb[d] : nb[d]) / es;
    }
    if (n >= INT32_MAX || reach >= INT32_MAX)
        return fr_error(FR_STATUS_UNSUPPORTED, "opencl: tensor '%s' is beyond 2^31 elements", t->name);
    p->off = (fr_i32)(off / (size_t)es);
    p->n = (fr_i32)n;
    return FR_STATUS_OK;
}

enum fr_status fr_cl_param(const struct fr_tensor *t, const struct fr_tensor *shape, fr_clt *p)
{
    if (!shape)
        return fr_cl_param_raw(t, t->ne, t->nb, p);
    int64_t nb[4];
    fr_broadcast_strides(t, shape->ndim, shape->ne, nb);
    return fr_cl_param_raw(t, shape->ne, nb, p);
}

enum fr_status fr_cl_begin(struct fr_cl_launch *L, struct fr_cl *cl, const char *file, const char *kernel)
{
    memset(L, 0, sizeof *L);
    L->cl = cl;
    L->name = kernel;
    L->st = fr_cl_kernel(cl, file, kernel, &L->kernel, &L->wg_size);
    L->wg_multiple = cl->wg_multiple ? cl->wg_multiple : 1;
    return L->st;
}

void fr_cl_arg_bytes(struct fr_cl_launch *L, const void *p, size_t size)
{
    if (L->st != FR_STATUS_OK)
        return;
    L->arg_bytes += size;
    if (L->cl->max_param && L->arg_bytes > L->cl->max_param) {
        L->st = fr_error(FR_STATUS_UNSUPPORTED, "opencl: %s: arguments of %zu bytes exceed %s's parameter size %zu",
                         L->name, L->arg_bytes, L->cl->info.spec, L->cl->max_param);
        return;
    }
    cl_int err = clSetKernelArg(L->kernel, L->n_args, size, p);
    if (err != CL_SUCCESS)
        L->st = fr_error(FR_STATUS_DEVICE, "opencl: %s: argument %u: %s", L->name, L->n_args, fr_cl_error_name(err));
    L->n_args++;
}

void fr_cl_arg_mem(struct fr_cl_launch *L, cl_mem m) { fr_cl_arg_bytes(L, &m, sizeof m); }
void fr_cl_arg_param(struct fr_cl_launch *L, const fr_clt *p) { fr_cl_arg_bytes(L, p, sizeof *p); }
void fr_cl_arg_int(struct fr_cl_launch *L, int v)
{
    cl_int x = v;
    fr_cl_arg_bytes(L, &x, sizeof x);
}
void fr_cl_arg_uint(struct fr_cl_launch *L, unsigned v)
{
    cl_uint x = v;
    fr_cl_arg_bytes(L, &x, sizeof x);
}
void fr_cl_arg_float(struct fr_cl_launch *L, float v)
{
    cl_float x = v;
    fr_cl_arg_bytes(L, &x, sizeof x);
}

static void arg_tensor(struct fr_cl_launch *L, const struct fr_tensor *t, const struct fr_tensor *shape)
{
    if (L->st != FR_STATUS_OK)
        return;
    cl_mem mem;
    size_t off;
    fr_clt p;
    enum fr_status st = fr_cl_storage(L->cl, t, &mem, &off);
    if (st == FR_STATUS_OK)
        st = fr_cl_param(t, shape, &p);
    if (st != FR_STATUS_OK) {
        L->st = st;
        return;
    }
    fr_cl_arg_mem(L, mem);
    fr_cl_arg_param(L, &p);
}

void fr_cl_arg_tensor(struct fr_cl_launch *L, const struct fr_tensor *t) { arg_tensor(L, t, NULL); }
void fr_cl_arg_tensor_bcast(struct fr_cl_launch *L, const struct fr_tensor *t, const struct fr_tensor *shape)
{
    arg_tensor(L, t, shape);
}

static size_t pow2_floor(size_t x)
{
    size_t p = 1;
    while (p * 2 <= x)
        p *= 2;
    return p;
}

static enum fr_status enqueue(struct fr_cl_launch *L, cl_uint dims, const size_t *global, const size_t *local,
                              int64_t items)
{
    cl_int err = fr_cl_fault(FR_CL_ENQUEUE);
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(L->cl->queue, L->kernel, dims, NULL, global, local, 0, NULL,
                                     fr_cl_prof_event(L->cl, L->name, items));
    if (err != CL_SUCCESS)
        return L->st = fr_cl_fail(L->cl, err, "clEnqueueNDRangeKernel", "%s, %lld work-items", L->name,
                                  (long long)items);
    return FR_STATUS_OK;
}

enum fr_status fr_cl_run_1d(struct fr_cl_launch *L, int64_t n)
{
    if (L->st != FR_STATUS_OK)
        return L->st;
    if (n <= 0)
        return FR_STATUS_OK;
    /* at most 128 (kernels may size local arrays by it), a power of two: a multiple of every preferred
     * multiple reported so far (NVIDIA 32, AMD 32/64, Intel 8-32, PoCL 8) */
    size_t local = pow2_floor(FR_MIN(L->wg_size, (size_t)128));
    size_t global = ((size_t)n + local - 1) / local * local;
    return enqueue(L, 1, &global, &local, n);
}

enum fr_status fr_cl_run_2d(struct fr_cl_launch *L, int64_t nx, int64_t ny, size_t lx, size_t ly)
{
    if (L->st != FR_STATUS_OK)
        return L->st;
    if (nx <= 0 || ny <= 0)
        return FR_STATUS_OK;
    size_t global[2], local[2] = {lx, ly};
    if (lx == 0 || ly == 0) {
        /* square-ish groups within the kernel's limit */
        size_t w = pow2_floor(FR_MIN(L->wg_size, (size_t)256));
        local[0] = 1;
        local[1] = 1;
        while (local[0] * local[1] < w) {
            if (local[0] <= local[1] && local[0] * 2 <= L->cl->max_item[0])
                local[0] *= 2;
            else if (local[1] * 2 <= L->cl->max_item[1])
                local[1] *= 2;
            else
                break;
        }
    } else if (lx * ly > L->wg_size || lx > L->cl->max_item[0] || ly > L->cl->max_item[1]) {
        return L->st = fr_error(FR_STATUS_UNSUPPORTED, "opencl: %s: work-group %zux%zu above the kernel's limit %zu",
                                L->name, lx, ly, L->wg_size);
    }
    global[0] = ((size_t)nx + local[0] - 1) / local[0] * local[0];
    global[1] = ((size_t)ny + local[1] - 1) / local[1] * local[1];
    return enqueue(L, 2, global, local, nx * ny);
}
