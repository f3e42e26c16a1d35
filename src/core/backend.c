/* Opening a backend by spec ("auto", "cpu", "cl:P:D"), buffer helpers, and the op table's metadata. */
#include "core/internal.h"
#include "core/profile_internal.h"
#include "core/threadpool.h"
#include "frugal_config.h"
#if FRUGAL_HAVE_OPENCL
#include "opencl/opencl.h"
#endif

static const char *op_names[] = {
#define FR_OP(ENUM, name, n_src, bwd) #name,
#include "frugal/ops.def"
#undef FR_OP
};
static const int op_n_src[] = {
#define FR_OP(ENUM, name, n_src, bwd) n_src,
#include "frugal/ops.def"
#undef FR_OP
};
static const fr_bwd_fn op_bwd[] = {
#define FR_OP(ENUM, name, n_src, bwd) fr_bwd_##bwd,
#include "frugal/ops.def"
#undef FR_OP
};

const char *fr_op_name(enum fr_op op) { return (unsigned)op < FR_OP_COUNT ? op_names[op] : "?"; }
int fr_op_n_src(enum fr_op op) { return (unsigned)op < FR_OP_COUNT ? op_n_src[op] : 0; }
fr_bwd_fn fr_op_bwd(enum fr_op op) { return (unsigned)op < FR_OP_COUNT ? op_bwd[op] : NULL; }

enum fr_status fr_bwd_none(struct fr_ctx *ctx, struct fr_tensor *node, struct fr_tensor *gy)
{
    (void)ctx;
    (void)gy;
    for (int s = 0; s < FR_MAX_SRC; s++)
        if (fr_needs_grad(node->src[s]))
            return fr_error(FR_STATUS_UNSUPPORTED, "backward: op %s ('%s') is not differentiable", fr_op_name(node->op),
                            node->name);
    return FR_STATUS_OK;
}

enum fr_status fr_buffer_alloc(struct fr_backend *b, size_t size, struct fr_buffer **out)
{
    *out = NULL;
    return b->iface->buffer_alloc(b, size ? size : 1, out);
}

void fr_buffer_free(struct fr_buffer *buf)
{
    if (buf)
        buf->backend->iface->buffer_free(buf);
}

void fr_backend_free(struct fr_backend *b)
{
    if (!b)
        return;
    struct fr_prof *p = b->prof; /* a profile never stopped; the backend releases its own events */
    b->iface->free(b);
    fr_prof_free(p);
}

const char *fr_backend_name(const struct fr_backend *b) { return b ? b->name : "none"; }

enum fr_status fr_backend_open(const char *spec, struct fr_backend **out)
{
    *out = NULL;
    if (!spec || !*spec)
        spec = getenv("FRUGAL_DEVICE");
    if (!spec || !*spec)
        spec = "auto";
    if (strcmp(spec, "cpu") == 0) {
        *out = fr_backend_cpu_new(0);
        return *out ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    if (strcmp(spec, "auto") == 0) {
#if FRUGAL_HAVE_OPENCL
        enum fr_status st = fr_opencl_open_auto(out);
        if (st == FR_STATUS_OK)
            return st;
        /* CPU-only OpenCL is a normal situation, not a failure: say it quietly */
        fr_log(st == FR_STATUS_UNSUPPORTED ? FR_LOG_INFO : FR_LOG_WARN, "no usable OpenCL GPU (%s); using the CPU path",
               fr_last_error());
#endif
        *out = fr_backend_cpu_new(0);
        return *out ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    int p, d;
    char tail;
    if (sscanf(spec, "cl:%d:%d%c", &p, &d, &tail) == 2 && p >= 0 && d >= 0) {
#if FRUGAL_HAVE_OPENCL
        return fr_opencl_open(p, d, out);
#else
        return fr_error(FR_STATUS_UNSUPPORTED, "device %s: this build of frugal has no OpenCL support", spec);
#endif
    }
    return fr_error(FR_STATUS_INVALID_ARGUMENT, "device '%s': expected auto, cpu or cl:P:D", spec);
}

void fr_set_threads(int n_threads) { fr_threadpool_set_default_threads(n_threads); }
