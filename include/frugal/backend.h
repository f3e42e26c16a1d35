/* Backends: an opaque handle over a table of functions. The CPU backend is always present;
 * OpenCL devices are added when the build and the machine have them. A backend (and every graph planned on
 * it) is used by one thread at a time; open one backend per thread to run devices in parallel.
 *
 *   struct fr_backend *b = NULL;
 *   if (fr_backend_open("auto", &b) != FR_STATUS_OK) { puts(fr_last_error()); }
 *   printf("running on %s\n", fr_backend_name(b));
 */
#ifndef FRUGAL_BACKEND_H
#define FRUGAL_BACKEND_H

#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_backend;
struct fr_threadpool;

/* Settings a graph run hands to the kernels. */
struct fr_exec {
    bool training;
    uint32_t seed_lo, seed_hi;
    uint32_t step;
    uint32_t first_sample; /* global index of the batch's first sample (its share of a batch split across processes):
                              random ops draw per sample as in the whole batch */
};

struct fr_buffer {
    struct fr_backend *backend;
    size_t size;
    void *host;   /* base address when the buffer lives in host memory, else NULL */
    void *handle; /* backend-specific (cl_mem for OpenCL) */
};

struct fr_backend_i {
    void (*free)(struct fr_backend *b);
    enum fr_status (*buffer_alloc)(struct fr_backend *b, size_t size, struct fr_buffer **out);
    void (*buffer_free)(struct fr_buffer *buf);
    enum fr_status (*buffer_set)(struct fr_buffer *buf, size_t offset, const void *src, size_t size);
    enum fr_status (*buffer_get)(struct fr_buffer *buf, size_t offset, void *dst, size_t size);
    /* Can this backend run `node` (given its dtypes, shapes and params)? */
    bool (*supports_op)(struct fr_backend *b, const struct fr_tensor *node);
    /* Enqueue nodes[0..n) in order; need not wait for completion. */
    enum fr_status (*graph_compute)(struct fr_backend *b, struct fr_tensor **nodes, int n,
                                    const struct fr_exec *ex);
    enum fr_status (*synchronize)(struct fr_backend *b);
    /* Optional, for overlapping transfers with compute (NULL: the blocking buffer_set/get are used). A write that
     * returns at once and happens before the nodes enqueued after it: src must stay unchanged until the next
     * synchronize or wait. A read of what the nodes enqueued before it write, completed by wait(*ticket). */
    enum fr_status (*buffer_set_async)(struct fr_buffer *buf, size_t offset, const void *src, size_t size);
    enum fr_status (*buffer_get_async)(struct fr_buffer *buf, size_t offset, void *dst, size_t size, void **ticket);
    enum fr_status (*wait)(struct fr_backend *b, void *ticket); /* waits for one async read, releases its ticket */
};

enum fr_backend_kind { FR_BACKEND_CPU = 0, FR_BACKEND_OPENCL };

struct fr_prof;

struct fr_backend {
    const struct fr_backend_i *iface;
    enum fr_backend_kind kind;
    char name[128]; /* "cpu" or "cl:0:0 (device name)" */
    bool no_fp64;   /* no full-rate doubles in kernels: AUG_APPLY then takes its coordinate-table input (augment.h) */
    void *ctx;
    uint64_t mem_bytes;   /* device memory (0: host memory, not tracked) */
    uint64_t max_buffer;  /* largest buffer the planner makes (0: no limit); the arena is split into chunks of
                           * at most this: the device's max allocation, at most 2 GiB where kernels index
                           * elements with 32-bit ints */
    struct fr_prof *prof; /* per-op timing while on (frugal/profile.h), else NULL */
    char oom_hint[200];   /* what the graph last planned or run here needs and a batch to try: appended to
                           * out-of-memory messages */
};

/* The pure-C backend; n_threads <= 0 means FRUGAL_THREADS or all online cores. */
struct fr_backend *fr_backend_cpu_new(int n_threads);
int fr_backend_cpu_threads(const struct fr_backend *b);

/* Opens a backend from a spec: "cpu", "cl:P:D", or "auto" (a GPU, then another non-CPU OpenCL device,
 * then the CPU path; CPU-type OpenCL devices such as PoCL are slower than the pure-C path on the same
 * cores and are used only when named; a warning through the log when OpenCL is unusable). NULL spec = FRUGAL_DEVICE
 * or "auto". An explicit unavailable "cl:P:D" is FR_STATUS_NOT_FOUND / FR_STATUS_DEVICE. */
enum fr_status fr_backend_open(const char *spec, struct fr_backend **out);
void fr_backend_free(struct fr_backend *b);
const char *fr_backend_name(const struct fr_backend *b);

/* Number of CPU threads for the CPU path (0 = FRUGAL_THREADS or all online cores). Affects
 * backends opened afterwards with n_threads <= 0. */
void fr_set_threads(int n_threads);

/* Buffer helpers used by the planner and the CLI. */
enum fr_status fr_buffer_alloc(struct fr_backend *b, size_t size, struct fr_buffer **out);
void fr_buffer_free(struct fr_buffer *buf);

#ifdef __cplusplus
}
#endif
#endif
