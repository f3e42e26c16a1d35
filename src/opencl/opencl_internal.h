/* Internals of the OpenCL backend, shared by its files and by every op family's launchers.
 *
 * Adding an op family's OpenCL kernels (nn, loss, optim, augment, ...):
 *   1. Write cl/<family>.cl. Start it with `#include "common.h"` (the fr_clt parameter struct, the
 *      index helpers and the Philox RNG of rng.h); the host inlines quoted includes itself, so a
 *      kernel file compiles on its own. OpenCL C 1.2, fp32, a bounds check on the global id, no
 *      float atomics. Add the file name to the list in cl/meson.build (installed + embedded).
 *   2. Write src/opencl/ops_<family>.c with one launcher per op:
 *
 *        static enum fr_status cl_relu(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
 *        {
 *            struct fr_cl_launch L;
 *            fr_cl_begin(&L, cl, "elementwise.cl", "elementwise_relu"); // builds/loads the program once
 *            fr_cl_arg_tensor(&L, y);           // two kernel args: the cl_mem and an fr_clt (sizes,
 *            fr_cl_arg_tensor(&L, y->src[0]);   //   strides and offset in elements)
 *            fr_cl_arg_float(&L, 0.5f);         // scalars: fr_cl_arg_int/uint/float/bytes
 *            return fr_cl_run_1d(&L, fr_nelements(y)); // rounds the global size up to the
 *        }                                             // work-group size (clamped to the kernel's
 *                                                      // CL_KERNEL_WORK_GROUP_SIZE): bounds-check!
 *      fr_cl_arg_tensor_bcast(&L, src, y) passes src with y's sizes and stride 0 on broadcast dims.
 *      Errors are sticky in L (the first one wins) and returned by fr_cl_run_*; nothing waits for
 *      the device, the whole graph is enqueued on one in-order queue.
 *      Then `void fr_cl_register_<family>(struct fr_cl_op *t)` fills t[FR_OP_<X>] = {launcher,
 *      supports}; `supports` (may be NULL) refines the default check (every tensor f32, < 2^31
 *      elements) for ops with other dtypes or limits. Declare it below and call it from
 *      fr_cl_ops_init() in src/opencl/ops_table.c; add the .c to src/opencl/meson.build.
 *   3. Add rows to the parity table in tests/test_parity.c.
 * An op whose slot stays NULL runs on the CPU path with copies (counted as a fallback); so does a node whose
 * launcher returns FR_STATUS_UNSUPPORTED at run time (a program that does not build on the device: its op
 * is then marked unsupported there, see fr_cl_program).
 * Device memory a launcher needs (scratch, tables) comes from fr_cl_buffer_create, never clCreateBuffer:
 * it counts for fault injection and turns allocation failures into FR_STATUS_OUT_OF_MEMORY. A command
 * enqueued without fr_cl_run_* (CLBlast, a copy) passes fr_cl_prof_event(cl, name, items) as its event so
 * that --profile sees it. Errors of other OpenCL calls go through fr_cl_fail (device, call, OOM mapping).
 */
#ifndef FRUGAL_OPENCL_INTERNAL_H
#define FRUGAL_OPENCL_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <pthread.h>

#include "common.h"
#include "core/internal.h"
#include "frugal/device.h"
#include "frugal_config.h"
#include "opencl/opencl.h"

/* --- one opened device (the backend's ctx) --- */
struct fr_cl_kernel_entry {
    char file[64];
    char name[64];
    cl_kernel kernel;
    size_t wg_size;     /* CL_KERNEL_WORK_GROUP_SIZE */
    size_t wg_multiple; /* CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE */
};

struct fr_cl_program_entry {
    char file[64];
    cl_program program; /* NULL when the build failed: */
    char *error;        /* the failure, remembered: the program is never rebuilt in this backend */
};

/* How fast the device runs doubles: augmentation takes exact integer tables instead of doubles unless FULL. */
enum fr_cl_fp64 {
    FR_CL_FP64_NONE = 0, /* no cl_khr_fp64 */
    FR_CL_FP64_SLOW,     /* a fraction of the fp32 rate: GeForce/RTX/T4/L4, RDNA, Arc, other GPUs by default */
    FR_CL_FP64_FULL,     /* CPUs, NVIDIA A100/H100/H200/V100/P100, AMD Instinct (CDNA), Intel Data Center Max */
};

/* One profiled command waiting for its event (profiling on). */
struct fr_cl_prof_rec {
    cl_event ev;
    int op;         /* enum fr_op, or -1 (copies) */
    int phase;      /* enum fr_prof_phase */
    int64_t items;  /* work-items, -1 unknown */
    int64_t out;    /* elements of the op's output, -1 unknown */
    char kernel[40];
};

/* Device scratch memory (src/opencl/scratch.c): one buffer per slot, grown on demand, kept until the
 * backend closes. A slot's contents live only within one op's launches (the queue is in order, so the
 * next op reusing the slot runs after them). */
enum fr_cl_scratch_slot {
    FR_CL_SCRATCH_COL,  /* im2col columns / their gradient */
    FR_CL_SCRATCH_AUX,  /* a transposed operand (conv outputs or output gradients as columns) */
    FR_CL_SCRATCH_GEMM, /* CLBlast's temporary buffer */
    FR_CL_SCRATCH_PART, /* per-split partial results of reductions and split-K GEMMs */
    FR_CL_SCRATCH_FILTER, /* transformed filters (Winograd) */
    FR_CL_SCRATCH_SLOTS
};
struct fr_cl_scratch {
    cl_mem mem;
    size_t size;
};
/* A device copy of a small constant table (fr_cl_table), found again by content. */
#define FR_CL_TABLES 16
struct fr_cl_table {
    cl_mem mem;
    void *host; /* the bytes it holds */
    size_t size;
    uint64_t used; /* table_clock at the last use */
};

struct fr_cl {
    struct fr_backend *backend;
    int platform_index, device_index;
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    struct fr_device_info info;
    size_t max_work_group;
    size_t max_item[2]; /* CL_DEVICE_MAX_WORK_ITEM_SIZES of dims 0 and 1 */
    uint64_t local_mem; /* CL_DEVICE_LOCAL_MEM_SIZE */
    size_t max_param;   /* CL_DEVICE_MAX_PARAMETER_SIZE: bytes of all arguments of one kernel */
    size_t wg_multiple; /* preferred work-group size multiple of the kernels built so far (the largest) */
    enum fr_cl_fp64 fp64;
    struct fr_cl_program_entry *programs;
    int n_programs, cap_programs;
    struct fr_cl_kernel_entry *kernels;
    int n_kernels, cap_kernels;
    bool use_clblast;    /* CLBlast linked, not disabled by FRUGAL_CLBLAST=off */
    char build_options[256];
    int n_cache_hits, n_compiled; /* programs of this backend, for the summary at close */
    double compile_ms;
    bool quiet_build_failures; /* --precompile reports them itself */
    /* ops whose program failed to build on this device: the planner puts them on the CPU path */
    bool op_failed[FR_OP_COUNT];
    bool build_failed;       /* set by fr_cl_program on a failed build, read after each launcher */
    const struct fr_tensor *cur_node; /* the node being launched (NULL outside cl_graph_compute) */
    /* profiling (fr_profile_start): events of enqueued commands, read at the next synchronize */
    bool profiling;
    struct fr_cl_prof_rec *prof;
    int n_prof, cap_prof;
    struct fr_cl_scratch scratch[FR_CL_SCRATCH_SLOTS]; /* src/opencl/scratch.c */
    struct fr_cl_table tables[FR_CL_TABLES];
    uint64_t table_clock;
};

/* --- op launchers --- */
typedef enum fr_status (*fr_cl_launch_fn)(struct fr_cl *cl, struct fr_tensor *dst, const struct fr_exec *ex);
typedef bool (*fr_cl_supports_fn)(struct fr_cl *cl, const struct fr_tensor *dst);
struct fr_cl_op {
    fr_cl_launch_fn launch;    /* NULL: the op runs on the CPU path */
    fr_cl_supports_fn supports; /* NULL: the default check (all f32) */
};
/* A launcher for a run of consecutive nodes of one op (every optimizer step of a graph in one kernel):
 * launches nodes[0 .. *n_done), at least the first, and says how many it took. */
typedef enum fr_status (*fr_cl_group_fn)(struct fr_cl *cl, struct fr_tensor **nodes, int n, const struct fr_exec *ex,
                                         int *n_done);
/* The group launcher of an op, NULL for ops launched one node at a time (src/opencl/ops_optim.c). */
fr_cl_group_fn fr_cl_group_launcher(enum fr_op op);
/* The table indexed by enum fr_op, filled once by fr_cl_ops_init(). */
const struct fr_cl_op *fr_cl_ops(void);
void fr_cl_register_core(struct fr_cl_op *t);
void fr_cl_register_nn(struct fr_cl_op *t); /* src/opencl/ops_nn.c */
void fr_cl_register_conv(struct fr_cl_op *t); /* src/opencl/ops_conv.c, called by fr_cl_register_nn */
void fr_cl_register_loss(struct fr_cl_op *t);  /* src/opencl/ops_loss.c */
void fr_cl_register_optim(struct fr_cl_op *t); /* src/opencl/ops_optim.c */
void fr_cl_register_augment(struct fr_cl_op *t); /* src/opencl/ops_augment.c */
void fr_cl_register_dist(struct fr_cl_op *t);    /* src/opencl/ops_dist.c */
/* Test hook: replaces one entry (e.g. {NULL, NULL} to force the CPU fallback); returns the old one. */
struct fr_cl_op fr_cl_ops_override(enum fr_op op, struct fr_cl_op e);

/* --- launching --- */
struct fr_cl_launch {
    struct fr_cl *cl;
    cl_kernel kernel;
    size_t wg_size;
    cl_uint n_args;
    size_t arg_bytes;   /* against CL_DEVICE_MAX_PARAMETER_SIZE */
    size_t wg_multiple; /* the device's preferred work-group multiple, for launchers that size their groups */
    const char *name;
    enum fr_status st;
};
enum fr_status fr_cl_begin(struct fr_cl_launch *L, struct fr_cl *cl, const char *file, const char *kernel);
void fr_cl_arg_tensor(struct fr_cl_launch *L, const struct fr_tensor *t);
void fr_cl_arg_tensor_bcast(struct fr_cl_launch *L, const struct fr_tensor *t, const struct fr_tensor *shape);
void fr_cl_arg_mem(struct fr_cl_launch *L, cl_mem m);
void fr_cl_arg_param(struct fr_cl_launch *L, const fr_clt *p);
void fr_cl_arg_int(struct fr_cl_launch *L, int v);
void fr_cl_arg_uint(struct fr_cl_launch *L, unsigned v);
void fr_cl_arg_float(struct fr_cl_launch *L, float v);
void fr_cl_arg_bytes(struct fr_cl_launch *L, const void *p, size_t size);
/* Enqueues over n work-items (rounded up to the work-group size); n = 0 enqueues nothing. */
enum fr_status fr_cl_run_1d(struct fr_cl_launch *L, int64_t n);
/* 2-D: nx by ny work-items with work-group lx by ly (0, 0: let the driver choose). */
enum fr_status fr_cl_run_2d(struct fr_cl_launch *L, int64_t nx, int64_t ny, size_t lx, size_t ly);

/* A tensor's storage on this device: the cl_mem and the byte offset of element 0. */
enum fr_status fr_cl_storage(struct fr_cl *cl, const struct fr_tensor *t, cl_mem *mem, size_t *offset);
/* The kernel view of t (sizes, element strides, element offset); with `shape`, broadcast to it. */
enum fr_status fr_cl_param(const struct fr_tensor *t, const struct fr_tensor *shape, fr_clt *p);
/* Same with explicit sizes and byte strides (for kernels that view a tensor in another index space). */
enum fr_status fr_cl_param_raw(const struct fr_tensor *t, const int64_t *ne, const int64_t *nb, fr_clt *p);

/* --- device scratch memory and work sizing (src/opencl/scratch.c) --- */
/* A buffer of at least `bytes` for slot `slot`; may replace the slot's previous buffer (after a clFinish). */
enum fr_status fr_cl_scratch(struct fr_cl *cl, int slot, size_t bytes, cl_mem *out);
/* A read-only device buffer holding `bytes` of data: the same content gives the same buffer again without a
 * transfer (a graph's tables repeat every step); the least recently used of FR_CL_TABLES is replaced. */
enum fr_status fr_cl_table(struct fr_cl *cl, const void *data, size_t bytes, cl_mem *out);
/* Releases the scratch buffers and tables (at backend close). */
void fr_cl_scratch_release(struct fr_cl *cl);
/* Bytes an op should aim to use per scratch slot when it chunks its work (64 MiB, less on small devices). */
size_t fr_cl_scratch_budget(const struct fr_cl *cl);
/* 8 x compute units x the preferred work-group multiple: the fewest work-items a launch should have to
 * fill the device, unless its whole output is smaller. */
int64_t fr_cl_fill_items(struct fr_cl *cl, cl_kernel k);
/* Test hook: pretend every device has this scratch budget and fill size (0, 0: their own), so a small
 * device runs the chunked and split code paths of a large one. */
void fr_cl_set_sizing(size_t scratch_budget, int64_t fill_items);
#define FR_CL_MAX_SPLITS 64 /* most chunks one reduction row is split into */
/* Reduction geometry: lanes per work-group (a power of two <= FR_CL_LANES and the kernel's limit, no
 * more than len needs) and the number of chunks each of `rows` outputs of `len` terms is split into so
 * rows x splits x lanes fills the device. Fixed by shape and device: results are the same run to run. */
int fr_cl_lanes(const struct fr_cl_launch *L, int64_t len);
int fr_cl_splits(struct fr_cl_launch *L, int64_t rows, int64_t len, int lanes);
/* Values per work-item for `rows` rows of `len` values: `most` (a power of two), halved while
 * rows x ceil(len / run) does not fill the device. */
int64_t fr_cl_run_length(struct fr_cl_launch *L, int64_t rows, int64_t len, int64_t most);

/* --- sums (src/opencl/ops_core.c, cl/reduce.cl) --- */
/* y = Σ of x over every dim where `grid` (x's 4-D index space, y's sizes) has size 1 and x does not,
 * divided by mul; deterministic, split over work-groups when there are few outputs. */
enum fr_status fr_cl_sum_rows(struct fr_cl *cl, const struct fr_tensor *y, const int64_t *grid,
                              const struct fr_tensor *x, float mul);
/* y[i] (view py) = Σ_s part[i*istride + s*sstride] / mul, s < splits in order: the second pass of a split
 * reduction. */
enum fr_status fr_cl_sum_parts(struct fr_cl *cl, cl_mem y, const fr_clt *py, cl_mem part, int splits, int istride,
                               int sstride, float mul);

/* --- SGEMM on buffers: C = alpha op(A) op(B) + beta C, row-major, offsets in elements, unit stride
 * along rows (ld = row stride). CLBlast when available, else cl/gemm.cl. --- */
enum fr_status fr_cl_sgemm(struct fr_cl *cl, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                           cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                           cl_mem c, size_t c_off, size_t ldc);
/* A strided batch: C_i = alpha op(A_i) op(B_i) + beta C_i, i < batch, operand i at offset + i * stride. */
enum fr_status fr_cl_sgemm_batched(struct fr_cl *cl, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                                   cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                   size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                   size_t c_stride, int batch);
/* General strides (elements) for both dims of every operand: always cl/gemm.cl. */
enum fr_status fr_cl_sgemm_strided(struct fr_cl *cl, int m, int n, int k, float alpha, cl_mem a, int a_off,
                                   int sam, int sak, cl_mem b, int b_off, int sbk, int sbn, float beta, cl_mem c,
                                   int c_off, int scm, int scn);
enum fr_status fr_cl_sgemm_strided_batched(struct fr_cl *cl, int m, int n, int k, float alpha, cl_mem a, int a_off,
                                           int sam, int sak, int sab, cl_mem b, int b_off, int sbk, int sbn, int sbb,
                                           float beta, cl_mem c, int c_off, int scm, int scn, int scb, int batch);
/* Releases CLBlast's per-context cache for this device (at backend close). */
void fr_cl_gemm_release(struct fr_cl *cl);

/* --- programs, kernels, sources --- */
/* The compiled program of cl/<file> for this device (built once, from the disk cache when possible). */
enum fr_status fr_cl_program(struct fr_cl *cl, const char *file, cl_program *out);
enum fr_status fr_cl_kernel(struct fr_cl *cl, const char *file, const char *name, cl_kernel *k, size_t *wg);
/* Loads cl/<name> by the lookup order (FRUGAL_CL_PATH, data dir, build tree, embedded) with quoted
 * #includes expanded; *origin (may be NULL) names where it came from. Caller frees *src. */
enum fr_status fr_cl_source_load(const char *name, char **src, size_t *len, char *origin, size_t origin_size);
/* Every embedded kernel file name (.cl only), NULL-terminated, for --precompile. */
int fr_cl_source_list(const char **names, int max);

/* --- failures --- */
/* A failed OpenCL call as a status: CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES and
 * CL_OUT_OF_HOST_MEMORY give FR_STATUS_OUT_OF_MEMORY naming the device's memory, anything else
 * FR_STATUS_DEVICE. The one-line message names the device, the call and (fmt, may be NULL) what it did. */
enum fr_status fr_cl_fail(struct fr_cl *cl, cl_int err, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* clCreateBuffer through fault injection and fr_cl_fail (`what` names the buffer in the message). Use it for
 * every device allocation (scratch memory, tables), never clCreateBuffer directly. */
enum fr_status fr_cl_buffer_create(struct fr_cl *cl, cl_mem_flags flags, size_t size, void *host, cl_mem *out,
                                   const char *what);

/* Fault injection (src/opencl/fault.c): FRUGAL_CL_FAULT=KIND:N[+][=CL_ERROR],... makes the Nth call of a
 * kind fail. fr_cl_fault() counts a call and returns the error to report instead of making it (CL_SUCCESS:
 * make the call). */
enum fr_cl_call { FR_CL_BUILD = 0, FR_CL_ALLOC, FR_CL_WRITE, FR_CL_READ, FR_CL_ENQUEUE, FR_CL_FINISH, FR_CL_N_CALLS };
cl_int fr_cl_fault(enum fr_cl_call call);
const char *fr_cl_call_name(enum fr_cl_call call);
/* Test hooks: replaces the rules (NULL or "" = none) and restarts the counts; calls of a kind counted since
 * (only while some rule is set). */
void fr_cl_fault_set(const char *spec);
long fr_cl_fault_calls(enum fr_cl_call call);

/* --- profiling --- */
/* While profiling, the event slot for a command about to be enqueued on cl->queue, recorded against the
 * node being launched (`kernel` names it, `items` its work-items or -1); NULL when profiling is off. Pass
 * it as the enqueue's event argument (CLBlast's too): a failed enqueue leaves it NULL and nothing counts. */
cl_event *fr_cl_prof_event(struct fr_cl *cl, const char *kernel, int64_t items);
/* Reads the finished events into the backend's profile and releases them (after clFinish). */
void fr_cl_prof_collect(struct fr_cl *cl);

/* --- discovery --- */
const char *fr_cl_error_name(cl_int err);
/* Fills info for one device; usable/why_not included. */
void fr_cl_device_info(cl_platform_id p, cl_device_id d, int pi, int di, struct fr_device_info *info);
/* How fast the device runs doubles (name rules; FRUGAL_CL_FP64=none|slow|full overrides); the rules alone
 * for a device that has cl_khr_fp64 (type "gpu"/"cpu"/..., CL_DEVICE_NAME, AMD's board name or NULL). */
enum fr_cl_fp64 fr_cl_fp64_class(cl_device_id d, const struct fr_device_info *info);
enum fr_cl_fp64 fr_cl_fp64_by_name(const char *type, const char *name, const char *board);

/* --- disk cache of program binaries --- */
struct fr_cl_cache_stats {
    long hits;      /* programs created from a cached binary */
    long misses;    /* programs compiled from source */
    long rejected;  /* entries deleted as corrupt or unusable */
    long stored;    /* binaries written */
    long store_failed;
    double compile_ms; /* wall time spent compiling from source */
    double load_ms;    /* wall time spent building from cached binaries */
};
void fr_cl_cache_stats_get(struct fr_cl_cache_stats *s);
void fr_cl_cache_stats_reset(void);
/* Test hook: replaces FRUGAL_VERSION in the cache key (NULL restores it). */
void fr_cl_cache_set_version(const char *v);
/* Key of one program: 16 bytes over source, options, device identity and versions. */
void fr_cl_cache_key(const struct fr_cl *cl, const char *src, size_t len, const char *options, unsigned char key[16]);
/* Cache directory (created when missing); false when disabled or unavailable. */
bool fr_cl_cache_dir(char *buf, size_t size);
/* Path of a key's entry; false when the cache is disabled. */
bool fr_cl_cache_path(const unsigned char key[16], char *buf, size_t size);
/* Reads a valid entry into *bin (malloc'd); false when absent. Invalid entries are deleted. */
bool fr_cl_cache_load(const unsigned char key[16], unsigned char **bin, size_t *len);
void fr_cl_cache_store(const unsigned char key[16], const unsigned char *bin, size_t len);
void fr_cl_cache_count(int what, double ms); /* 0 hit, 1 miss, 2 rejected, 3 stored, 4 store failed */

/* monotonic milliseconds */
double fr_cl_now_ms(void);

#endif
