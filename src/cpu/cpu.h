/* The CPU backend's kernel interface: every op's fr_cpu_<name>() and the scratch/thread helpers they use. */
#ifndef FRUGAL_CPU_H
#define FRUGAL_CPU_H

#include "core/internal.h"
#include "core/threadpool.h"

struct fr_cpu_kctx {
    struct fr_threadpool *pool;
    const struct fr_exec *ex;
    struct fr_cpu_state *state; /* backend-owned scratch, see fr_cpu_scratch() */
};

/* Persistent per-backend scratch of at least `bytes` (grows, never shrinks: no steady-state allocation).
 * Returns NULL when out of memory. Slot 0..3 are independent areas. */
void *fr_cpu_scratch(struct fr_cpu_kctx *k, int slot, size_t bytes);

#define FR_OP(ENUM, name, n_src, bwd) enum fr_status fr_cpu_##name(struct fr_cpu_kctx *k, struct fr_tensor *dst);
#include "frugal/ops.def"
#undef FR_OP

/* Runs one node on the CPU (used by the CPU backend and by the fallback path of other backends). */
enum fr_status fr_cpu_compute_node(struct fr_cpu_kctx *k, struct fr_tensor *node);

/* Runs fn(ctx, begin, end) over [0, n) split into at most one chunk per `grain` items, on the pool. */
typedef void (*fr_range_fn)(void *ctx, int64_t begin, int64_t end);
void fr_cpu_parallel_for(struct fr_cpu_kctx *k, int64_t n, int64_t grain, fr_range_fn fn, void *ctx);

/* f32 pointer to element 0 of a host tensor */
static inline float *fr_f32(const struct fr_tensor *t) { return (float *)fr_tensor_data(t); }

#endif
