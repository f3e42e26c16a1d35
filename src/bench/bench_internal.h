/* Internals of `frugal bench`: the per-device run state, clpeak-style timing and the suites. */
#ifndef FRUGAL_BENCH_INTERNAL_H
#define FRUGAL_BENCH_INTERNAL_H

#include "core/internal.h"
#include "frugal/bench.h"
#include "frugal/frugal.h"

struct fr_bench_run {
    const struct fr_bench_opts *o;
    struct fr_bench_report *r;
    struct fr_backend *be;  /* device under test */
    struct fr_backend *ref; /* the CPU path: reference outputs */
    const char *spec;       /* device spec as in the figures */
    bool quick;
    double seconds;
    int repeat;
    double peak_gflops;     /* measured peaks of this device (0 = unknown) */
    double peak_gbs;
    bool best; /* fr_bench_time keeps the fastest batch instead of the median (limits: a peak) */
};

/* monotonic seconds */
double fr_bench_now(void);

/* clpeak's method: one warm-up call, then a batch of k calls sized so one batch takes about
 * run->seconds, timed `repeat` times; returns the median seconds per call (the fastest batch with
 * run->best), < 0 on failure with the status in *st. fn sets *device_seconds when it measured the call
 * itself (OpenCL profiling events); otherwise the batch is timed by the wall clock. */
typedef enum fr_status (*fr_bench_fn)(void *ctx, double *device_seconds);
double fr_bench_time(struct fr_bench_run *run, fr_bench_fn fn, void *ctx, enum fr_status *st);

/* Appends a figure; returns it (NULL on allocation failure) for the caller to add error fields. */
struct fr_bench_figure *fr_bench_add(struct fr_bench_run *run, const char *suite, const char *name, double value,
                                     const char *unit, const char *method);
void fr_bench_progress(struct fr_bench_run *run, const char *suite, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fr_bench_note(struct fr_bench_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Error statistics of got vs want (n floats): max |a-b| and that divided by max(|want|) (tiny floor). */
void fr_bench_errors(const float *got, const float *want, size_t n, double *max_abs, double *max_rel);
/* true when FRUGAL_BENCH_PERTURB names a prefix of `item` */
bool fr_bench_perturb(const char *item);
/* Records a failed item or suite in the notes and n_failed; returns FR_STATUS_OK, or st when it is
 * out of memory (nothing else will work either). */
enum fr_status fr_bench_failed(struct fr_bench_run *run, const char *suite, const char *what, enum fr_status st);

/* One graph workload, run on the device under test and (for the comparison) on the CPU path. */
struct fr_bench_item {
    char name[96];
    double flops;  /* per run; > 0: GFLOP/s and % of the peak fp32 figure */
    double bytes;  /* per run; used when flops == 0: GB/s and % of the bandwidth figure */
    double images; /* per run; > 0: images/s instead of the above */
    double tol;    /* max relative error (max|got-want| / max|want|) before the figure is flagged */
    int p[10];     /* shape parameters for `build` */
    bool training;
    /* Builds the workload in ctx, adds it to g (backward included), returns the tensor to compare. */
    struct fr_tensor *(*build)(struct fr_ctx *ctx, struct fr_graph *g, const struct fr_bench_item *it);
    /* Optional: fills leaf t (n elements of its dtype) instead of the default; false = default. */
    bool (*fill)(const struct fr_bench_item *it, struct fr_tensor *t, void *data, int64_t n);
};
/* Times `it` on run->be, compares with the CPU path and adds its figures; a workload the build cannot
 * construct is skipped with a note, one that fails on the device is noted and counted in n_failed
 * (the run goes on). Returns an error only when going on makes no sense (out of memory). */
enum fr_status fr_bench_item_run(struct fr_bench_run *run, const char *suite, const struct fr_bench_item *it);

/* The suites. Each adds figures to run->r; an error return stops that suite on that device only. */
enum fr_status fr_bench_limits(struct fr_bench_run *run, bool report);
enum fr_status fr_bench_ops(struct fr_bench_run *run);
enum fr_status fr_bench_augment(struct fr_bench_run *run);
enum fr_status fr_bench_train(struct fr_bench_run *run);

/* OpenCL limits (src/bench/limits_cl.c); FR_STATUS_UNSUPPORTED in a build without OpenCL. */
enum fr_status fr_bench_limits_cl(struct fr_bench_run *run, bool report);
/* Driver string of an OpenCL backend ("" otherwise). */
void fr_bench_cl_driver(struct fr_backend *be, char *name, size_t name_size, char *driver, size_t driver_size);

#endif
