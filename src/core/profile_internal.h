/* Per-op profile counters of a backend (frugal/profile.h), fed by the graph runner and the OpenCL backend. */
#ifndef FRUGAL_PROFILE_INTERNAL_H
#define FRUGAL_PROFILE_INTERNAL_H

#include "core/internal.h"
#include "frugal/profile.h"

/* Where a timed command ran: inside a training graph run (a step), inside another graph run, or outside
 * any run (copies of inputs and results). */
enum fr_prof_phase { FR_PROF_STEP = 0, FR_PROF_OTHER_RUN, FR_PROF_OUTSIDE };

/* fr_graph_compute brackets each run; the phase of commands timed meanwhile follows. */
void fr_prof_run_begin(struct fr_backend *b, bool training);
void fr_prof_run_end(struct fr_backend *b);
enum fr_prof_phase fr_prof_phase(const struct fr_backend *b);
/* One timed command of `op`: kernel may be NULL; items (work-items) and out (elements of the op's output)
 * are -1 when unknown. Ignored when profiling is off. */
void fr_prof_add(struct fr_backend *b, enum fr_prof_phase phase, const char *op, const char *kernel, double ms,
                 int64_t items, int64_t out);
/* Frees a profile that was never stopped (fr_backend_free). */
void fr_prof_free(struct fr_prof *p);
/* The backend's method ("OpenCL profiling events (device time)") and parallelism target (0: none). */
void fr_prof_describe(struct fr_backend *b, const char *method, int64_t parallel_target);

#endif
