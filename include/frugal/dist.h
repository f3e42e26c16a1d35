/* One job over several processes (MPI ranks started by mpirun, one per device): rank, size and hosts,
 * collectives with a deadline, and the checks that every rank sees the same inputs. The recipes use the job
 * fr_dist_init made: fr_fit splits each global batch across the ranks and sums their gradients, fr_net_predict
 * (evaluation, pseudo-labels) splits the images and gathers the logits in order. Without the MPI build, or when
 * the process was not started by mpirun, the job is one process (rank 0 of 1) and every collective is a copy.
 *
 *   struct fr_dist *d;
 *   if (fr_dist_init(&d) != FR_STATUS_OK) { fprintf(stderr, "%s\n", fr_last_error()); return; }  // exit 2
 *   float g[3] = {1, 2, 3};
 *   fr_dist_sum(d, g, 3, NULL);            // every rank now holds the sum of the ranks' g, added in rank order
 *   enum fr_status st = fr_dist_agree(d, FR_STATUS_OK);  // a failure of any rank becomes every rank's
 *   int exit_code = fr_dist_finalize(d, st == FR_STATUS_OK ? 0 : 1);  // the process's exit status
 *   (void)exit_code;
 */
#ifndef FRUGAL_DIST_H
#define FRUGAL_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_dist;

/* Whether this build has MPI (meson feature `mpi`). */
bool fr_dist_built(void);

/* Joins the job: MPI_Init_thread (MPI_THREAD_FUNNELED: only the calling thread uses MPI) when mpirun started this
 * process, else a job of one process. Gathers every rank's host name. Started by mpirun with more than one rank
 * in a build without MPI: FR_STATUS_UNSUPPORTED naming the rank. The handle becomes the process's job
 * (fr_dist_world) until fr_dist_finalize. The collectives' deadline is FRUGAL_RANK_TIMEOUT seconds (300). */
enum fr_status fr_dist_init(struct fr_dist **out);
/* Leaves the job: MPI_Finalize when every rank ends in the same state (exit_code 0, or a failure that
 * fr_dist_agree made known to every rank); else MPI_Abort(exit_code), which ends every rank, so none waits for
 * this one forever. Returns the job's exit code (every rank's: exit_code, or when it is 0 the code of the lowest
 * rank that failed). NULL returns exit_code. */
int fr_dist_finalize(struct fr_dist *d, int exit_code);
/* The rank a launcher gave this process (its environment), 0 when none: known even when fr_dist_init fails. */
int fr_dist_launch_rank(void);
/* The job made by fr_dist_init (NULL: none, one process). */
struct fr_dist *fr_dist_world(void);

/* Rank (0 for NULL), number of ranks (1 for NULL), ranks on this host and this rank's index among them, the host
 * name of a rank. */
int fr_dist_rank(const struct fr_dist *d);
int fr_dist_size(const struct fr_dist *d);
int fr_dist_local_size(const struct fr_dist *d);
int fr_dist_local_rank(const struct fr_dist *d);
const char *fr_dist_host(const struct fr_dist *d, int rank);

/* Seconds a collective waits for the other ranks before it fails naming the ranks that did not answer (FR_STATUS_IO;
 * the job can then only end with fr_dist_finalize's abort). */
void fr_dist_set_timeout(struct fr_dist *d, double seconds);
double fr_dist_timeout(const struct fr_dist *d);
/* Whether a collective failed (timeout, lost rank): the ranks are out of step. */
bool fr_dist_broken(const struct fr_dist *d);
/* Whether fr_dist_agree or fr_dist_same returned a failure: every rank knows of it (and has its message). */
bool fr_dist_agreed(const struct fr_dist *d);

/* --- collectives: every rank calls them in the same order with the same sizes --- */

/* Every rank's status: FR_STATUS_OK when all are OK, else on every rank the status of the lowest failing rank
 * with its message, prefixed "rank R (HOST): " when R is not this rank. */
enum fr_status fr_dist_agree(struct fr_dist *d, enum fr_status st);
/* x[0..n) = Σ_r weight[r]·x_r over the ranks in rank order, in double, rounded once (weight NULL: 1 each). The
 * same bits on every rank whatever the timing; the ranks' weight arrays must be equal. */
enum fr_status fr_dist_sum(struct fr_dist *d, float *x, int64_t n, const double *weight);
/* all[r·bytes ..) = rank r's mine[0..bytes) for every rank. */
enum fr_status fr_dist_allgather(struct fr_dist *d, const void *mine, size_t bytes, void *all);
/* Rows of an array split across the ranks (fr_dist_share): each rank holds rows [start, start + count) of its
 * share in buf[start·row_bytes ..); afterwards every rank holds all n rows. */
enum fr_status fr_dist_gather_rows(struct fr_dist *d, void *buf, int64_t n, size_t row_bytes, int64_t granule);
/* buf[0..bytes) of rank `root` on every rank. */
enum fr_status fr_dist_bcast(struct fr_dist *d, void *buf, size_t bytes, int root);
/* Fails on every rank (FR_STATUS_INVALID_ARGUMENT) when a rank's fingerprint differs from rank 0's: "WHAT: not the
 * same on rank R (HOST) as on rank 0 (HOST) (rank 0: DETAIL; rank R: DETAIL) ...". `detail` is a short description. */
enum fr_status fr_dist_same(struct fr_dist *d, const char *what, uint64_t fingerprint, const char *detail);

/* This rank's share of n items cut at multiples of `granule` (>= 1): rows [*start, *start + *count), shares as
 * equal as the granule allows, in rank order. */
void fr_dist_share(const struct fr_dist *d, int64_t n, int64_t granule, int64_t *start, int64_t *count);
/* A 64-bit fingerprint of bytes, chained from h (start with 0). */
uint64_t fr_dist_hash(uint64_t h, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
