/* Benchmarks of every device side by side: device limits, ops, augmentation, training, with each
 * timed op's output checked against the CPU path. The library measures and formats; the CLI prints.
 *
 *   struct fr_bench_opts o;  fr_bench_opts_init(&o);  o.suites = FR_BENCH_QUICK;
 *   struct fr_bench_report *r;
 *   const char *devs[] = {"cpu", "cl:0:0"};
 *   if (fr_bench_run(devs, 2, &o, &r) == FR_STATUS_OK) {
 *       char *s = fr_bench_format(r, FR_BENCH_FMT_TABLE);  fputs(s, stdout);  free(s);
 *       fr_bench_report_free(r);
 *   }
 */
#ifndef FRUGAL_BENCH_H
#define FRUGAL_BENCH_H

#include <stdbool.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum fr_bench_suite {
    FR_BENCH_LIMITS = 1u << 0,
    FR_BENCH_OPS = 1u << 1,
    FR_BENCH_AUGMENT = 1u << 2,
    FR_BENCH_TRAIN = 1u << 3,
    FR_BENCH_QUICK_FLAG = 1u << 4, /* smaller shapes and fewer items in each suite */
    FR_BENCH_FULL = FR_BENCH_LIMITS | FR_BENCH_OPS | FR_BENCH_AUGMENT | FR_BENCH_TRAIN,
    FR_BENCH_QUICK = FR_BENCH_FULL | FR_BENCH_QUICK_FLAG,
};
/* "quick", "full", "limits", "ops", "augment", "train", or a comma list of them ("quick,ops,train": those
 * suites at the quick sizes) -> mask; false when a name is unknown. */
bool fr_bench_suite_parse(const char *name, unsigned *mask);

struct fr_bench_opts {
    unsigned suites;     /* enum fr_bench_suite bits */
    double seconds;      /* target time of one timed batch (clpeak's calibration); <= 0: 0.2 (quick 0.05) */
    int repeat;          /* timed batches per figure, the median is kept; <= 0: 5 (quick 3) */
    int threads;         /* CPU threads (0 = default rule) */
    /* One line per item ("cl:0:0 ops: gemm 256x256x256"), may be NULL. */
    void (*progress)(const char *line, void *user);
    void *user;
};
void fr_bench_opts_init(struct fr_bench_opts *o);

struct fr_bench_figure {
    char suite[16];   /* limits, ops, augment, train */
    char name[96];    /* "gemm 256x256x256 time" */
    char device[48];  /* "cpu", "cl:0:0" */
    double value;
    char unit[16];    /* "GB/s", "GFLOP/s", "ms", "us", "img/s", "% peak" */
    char method[80];  /* "cl-events", "wall", "wall (fr_sgemm ...)" ... */
    /* correctness against the CPU path (checked = false when the figure has no output to compare) */
    bool checked;
    double max_abs_err, max_rel_err, tol;
    bool flagged;     /* max_rel_err above tol */
};

struct fr_bench_device {
    char spec[48];
    char name[128];
    char driver[128]; /* OpenCL platform + driver version, or the CPU SIMD level */
};

struct fr_bench_report {
    char version[32];
    char build_options[160];
    char date[40]; /* ISO 8601 UTC */
    struct fr_bench_device *devices;
    int n_devices;
    struct fr_bench_figure *figures;
    int n_figures, cap_figures;
    int n_flagged;
    int n_skipped; /* items left out (missing ops, unsupported) */
    int n_failed;  /* items or suites that failed on a device (the reason is in the notes) */
    char notes[2048]; /* "skipped: ..." lines */
};

/* Opens each device spec ("cpu", "cl:P:D"; "all" = the CPU path and every usable OpenCL device) and
 * runs the chosen suites on each. Environment FRUGAL_BENCH_PERTURB=NAME (test hook) perturbs the
 * output of every op item whose name starts with NAME before the comparison. */
enum fr_status fr_bench_run(const char *const *specs, int n_specs, const struct fr_bench_opts *o,
                            struct fr_bench_report **out);
void fr_bench_report_free(struct fr_bench_report *r);

/* Expands "all" (or NULL) to "cpu" plus every usable OpenCL device; a comma list is split. Caller frees
 * each string and the array. */
enum fr_status fr_bench_device_list(const char *spec, char ***specs, int *n);

enum fr_bench_format { FR_BENCH_FMT_TABLE = 0, FR_BENCH_FMT_MARKDOWN, FR_BENCH_FMT_CSV, FR_BENCH_FMT_JSON };
/* The report as text (malloc'd, NUL-terminated); NULL on allocation failure. */
char *fr_bench_format(const struct fr_bench_report *r, enum fr_bench_format fmt);

/* Reads a report written with FR_BENCH_FMT_JSON; FR_STATUS_IO / FR_STATUS_FORMAT naming the file. */
enum fr_status fr_bench_load_json(const char *path, struct fr_bench_report **out);

/* Per-figure ratios NEW/OLD of two JSON reports, matched on (suite, name, device, unit); a text table
 * (malloc'd) in *text. *n_matched counts figures present in both. */
enum fr_status fr_bench_compare(const char *old_path, const char *new_path, char **text, int *n_matched);

#ifdef __cplusplus
}
#endif
#endif
