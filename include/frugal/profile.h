/* Per-op timing of what a backend runs: OpenCL devices time every kernel and copy with profiling events
 * (device time), the CPU path times every node by the wall clock. `frugal train --profile` prints it.
 *
 *   fr_profile_start(be);
 *   for (int i = 0; i < 10; i++) fr_graph_compute(g);  // a training graph, or fr_fit, fr_trainer_step
 *   struct fr_profile p;
 *   if (fr_profile_stop(be, &p) == FR_STATUS_OK) {
 *       char *s = fr_profile_format(&p);  fputs(s, stderr);  free(s);
 *       fr_profile_free(&p);
 *   }
 */
#ifndef FRUGAL_PROFILE_H
#define FRUGAL_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_backend;

struct fr_profile_row {
    char op[48];            /* op name as in the op table ("conv2d_bwd_weight"), "host->device" / "device->host"
                             * copies, or "<op> (CPU fallback)" for a node the device could not run */
    bool training;          /* inside a training graph run (a step); false: other runs and copies outside runs */
    double ms;              /* summed time */
    long launches;          /* kernel launches (OpenCL) or node runs (CPU path) */
    double work_items;      /* summed global work-items of the launches whose size is known */
    int64_t min_work_items; /* the smallest such launch; -1 when none is known */
    char min_kernel[48];    /* its kernel */
};

struct fr_profile {
    char device[128];
    char method[64];         /* "OpenCL profiling events (device time)" or "wall clock per node" */
    int steps;               /* training graph runs */
    int other_runs;          /* graph runs without training: evaluation, inference, augmentation */
    double step_ms;          /* time inside training graph runs, all steps together */
    double other_ms;         /* everything else: other runs and copies outside graph runs */
    struct fr_profile_row *rows; /* training rows first, each group by time, largest first */
    int n_rows;
    /* the smallest kernel launch inside a training step (OpenCL; -1 when none is known) */
    int64_t min_work_items;
    char min_kernel[48], min_op[48];
    int64_t min_output; /* elements of that op's output */
    /* 8 x compute units x preferred work-group multiple (OpenCL; 0 on the CPU path): a kernel with fewer
     * work-items cannot fill the device */
    int64_t parallel_target;
    long below_target;       /* launches in steps below the target although their op's output is not smaller */
    char below_kernel[48], below_op[48]; /* the smallest of those */
    int64_t below_items, below_output;
};

/* Clears the counters and starts timing everything `b` runs. OpenCL: recreates the device's queue with
 * profiling on (between graph runs only). */
enum fr_status fr_profile_start(struct fr_backend *b);
/* Stops timing (after waiting for the device) and fills *out (rows allocated; fr_profile_free). */
enum fr_status fr_profile_stop(struct fr_backend *b, struct fr_profile *out);
void fr_profile_free(struct fr_profile *p);
/* A table: each op's share of a step, time per step, launches per step and work-items per launch, then
 * the smallest launch and the parallelism target (malloc'd; NULL when out of memory). */
char *fr_profile_format(const struct fr_profile *p);

#ifdef __cplusplus
}
#endif
#endif
