/* Device scratch memory of one OpenCL backend (im2col columns, transposed operands, CLBlast's temporary
 * buffer, reduction partials: grown on demand, never allocated per launch), device copies of small constant
 * tables (the multi-tensor optimizer's), and work sizing for kernels. */
#include "opencl/opencl_internal.h"

/* A slot grows to at least 1.5x its old size (rounded to 1 MiB) so a sequence of growing requests
 * reallocates a few times only. */
enum fr_status fr_cl_scratch(struct fr_cl *cl, int slot, size_t bytes, cl_mem *out)
{
    *out = NULL;
    if (slot < 0 || slot >= FR_CL_SCRATCH_SLOTS)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "opencl: no scratch slot %d", slot);
    struct fr_cl_scratch *s = &cl->scratch[slot];
    if (bytes == 0)
        bytes = 1;
    if (s->mem && s->size >= bytes) {
        *out = s->mem;
        return FR_STATUS_OK;
    }
    size_t want = FR_MAX(bytes, s->size + s->size / 2);
    want = (want + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (want > cl->info.max_alloc)
        want = bytes;
    if (s->mem) {
        /* kernels already enqueued may still read the old buffer: let them finish before it goes */
        clFinish(cl->queue);
        clReleaseMemObject(s->mem);
        s->mem = NULL;
        s->size = 0;
    }
    cl_mem m;
    enum fr_status st = fr_cl_buffer_create(cl, CL_MEM_READ_WRITE, want, NULL, &m, "scratch memory");
    if (st != FR_STATUS_OK)
        return st;
    s->mem = m;
    s->size = want;
    *out = m;
    return FR_STATUS_OK;
}

enum fr_status fr_cl_table(struct fr_cl *cl, const void *data, size_t bytes, cl_mem *out)
{
    *out = NULL;
    struct fr_cl_table *e = NULL;
    for (int i = 0; i < FR_CL_TABLES; i++) {
        struct fr_cl_table *t = &cl->tables[i];
        if (t->mem && t->size == bytes && memcmp(t->host, data, bytes) == 0) {
            t->used = ++cl->table_clock;
            *out = t->mem;
            return FR_STATUS_OK;
        }
        if (!e || !t->mem || (e->mem && t->used < e->used))
            e = t; /* a free slot, else the least recently used */
    }
    if (e->mem) {
        clFinish(cl->queue); /* kernels enqueued earlier may still read it */
        clReleaseMemObject(e->mem);
        free(e->host);
        memset(e, 0, sizeof *e);
    }
    void *host = malloc(bytes);
    if (!host)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
    memcpy(host, data, bytes);
    /* COPY_HOST_PTR: the data is copied at creation, so nothing on the queue can see a half-written table */
    cl_mem m;
    enum fr_status st = fr_cl_buffer_create(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, host, &m, "a table");
    if (st != FR_STATUS_OK) {
        free(host);
        return st;
    }
    e->mem = m;
    e->host = host;
    e->size = bytes;
    e->used = ++cl->table_clock;
    *out = m;
    return FR_STATUS_OK;
}

void fr_cl_scratch_release(struct fr_cl *cl)
{
    for (int i = 0; i < FR_CL_TABLES; i++) {
        if (cl->tables[i].mem)
            clReleaseMemObject(cl->tables[i].mem);
        free(cl->tables[i].host);
        memset(&cl->tables[i], 0, sizeof cl->tables[i]);
    }
    for (int i = 0; i < FR_CL_SCRATCH_SLOTS; i++) {
        if (cl->scratch[i].mem)
            clReleaseMemObject(cl->scratch[i].mem);
        cl->scratch[i].mem = NULL;
        cl->scratch[i].size = 0;
    }
}

/* test hooks (fr_cl_set_sizing): 0 = the device's own values */
static size_t budget_override;
static int64_t fill_override;

void fr_cl_set_sizing(size_t scratch_budget, int64_t fill_items)
{
    budget_override = scratch_budget;
    fill_override = fill_items;
}

size_t fr_cl_scratch_budget(const struct fr_cl *cl)
{
    if (budget_override)
        return budget_override;
    size_t cap = (size_t)64 << 20;
    if (cl->info.max_alloc / 4 < cap)
        cap = (size_t)(cl->info.max_alloc / 4);
    return FR_MAX(cap, (size_t)1 << 20);
}

/* CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE of the first kernel asked (it is a property of the
 * device's SIMD width in practice: 32 on NVIDIA, 32/64 on AMD, 8-32 on Intel, 8 on PoCL). */
static size_t wg_multiple(struct fr_cl *cl, cl_kernel k)
{
    if (cl->wg_multiple == 0) {
        size_t m = 0;
        if (clGetKernelWorkGroupInfo(k, cl->device, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE, sizeof m, &m,
                                     NULL) != CL_SUCCESS ||
            m == 0)
            m = 1;
        cl->wg_multiple = m;
    }
    return cl->wg_multiple;
}

int64_t fr_cl_fill_items(struct fr_cl *cl, cl_kernel k)
{
    if (fill_override)
        return fill_override;
    return 8 * (int64_t)FR_MAX(cl->info.compute_units, 1u) * (int64_t)wg_multiple(cl, k);
}

int fr_cl_lanes(const struct fr_cl_launch *L, int64_t len)
{
    size_t lanes = 1;
    size_t cap = FR_MIN(L->wg_size, (size_t)FR_CL_LANES);
    while (lanes * 2 <= cap && (int64_t)lanes < len)
        lanes *= 2;
    return (int)lanes;
}

int fr_cl_splits(struct fr_cl_launch *L, int64_t rows, int64_t len, int lanes)
{
    int64_t fill = fr_cl_fill_items(L->cl, L->kernel);
    int64_t s = (fill + rows * lanes - 1) / (rows * lanes);
    int64_t most = FR_MAX(len / (4 * (int64_t)lanes), 1); /* each lane keeps at least ~4 elements */
    s = FR_MIN(FR_MIN(s, most), (int64_t)FR_CL_MAX_SPLITS);
    return (int)FR_MAX(s, 1);
}

int64_t fr_cl_run_length(struct fr_cl_launch *L, int64_t rows, int64_t len, int64_t most)
{
    int64_t fill = fr_cl_fill_items(L->cl, L->kernel), run = most;
    while (run > 1 && rows * ((len + run - 1) / run) < fill)
        run /= 2;
    return run;
}
