/* What the recipes ask of the job: checks that every rank holds the same images and the same model. */
#ifndef FRUGAL_DIST_INTERNAL_H
#define FRUGAL_DIST_INTERNAL_H

#include "frugal/data.h"
#include "frugal/dist.h"
#include "frugal/recipes.h"

/* Fails on every rank when a rank's images idx[0..n) of ds (idx NULL: the first n) differ from rank 0's: their
 * count, size, labels and pixels (in-memory datasets) or paths and file sizes (datasets decoded on demand: their
 * pixels are read only later). `what` names them in the message ("training images"). */
enum fr_status fr_dist_same_images(struct fr_dist *d, const char *what, const struct fr_dataset *ds,
                                   const int64_t *idx, int64_t n);
/* Fails on every rank when a rank's network (architecture, classes, normalisation, every parameter and state
 * tensor) differs from rank 0's. */
enum fr_status fr_dist_same_net(struct fr_dist *d, const char *what, const struct fr_net *net);

/* FRUGAL_SLOWDOWN=F (read by fr_dist_init; 1 when unset): a benchmarking knob that models a slower device. A rank
 * whose compute step took `seconds` sleeps (F - 1)·seconds more before the gradient sum (fr_dp) and in --balance
 * speed's timed steps, so its steps take F times as long while its messages travel at full speed, as on a slower GPU
 * (a stopped process would stall the collectives too). FRUGAL_SLOWDOWN=F@N: from the N-th timed step on (counting
 * from 0, --balance speed's timed steps included): a device that another job slows down during the run. */
double fr_dist_slowdown(const struct fr_dist *d);
void fr_dist_slow_down(struct fr_dist *d, double seconds);

/* fr_dist_sum (unweighted) of n_parts arrays part[i][0..count[i]) taken as one array: two ranks exchange and add
 * them in place (no copy into one array: the data-parallel step sums the gradient tensors' own memory), more ranks
 * sum a copy. */
enum fr_status fr_dist_sum_parts(struct fr_dist *d, float *const *part, const int64_t *count, int n_parts);

/* Batch-norm statistics of the whole batch (sync-BN): every rank's (mean, invstd) [2, C] of n_local values per
 * channel, combined in rank order (means weighted by counts, variances with the spread of the means), into out
 * [2, C] (may be `local`); with rm and rv, the running averages take the whole batch's mean and unbiased variance.
 * The same bits on every rank. */
enum fr_status fr_dist_bn_stats(struct fr_dist *d, const float *local, int64_t C, double n_local, float eps,
                                float momentum, float *rm, float *rv, float *out);

/* The collective ops' work through host memory (CPU kernels and OpenCL launchers alike): RANK_SUM and
 * BATCHNORM_RANK_STATS nodes. */
struct fr_exec;
enum fr_status fr_dist_rank_sum_node(struct fr_tensor *y);
enum fr_status fr_dist_bn_rank_stats_node(struct fr_tensor *y, const struct fr_exec *ex);

/* Data-parallel training: the trainer's hook between the backward pass and the optimizer update sums, in one
 * message and in rank order, every rank's gradients (their loss already scaled by the rank's share of the global
 * batch), batch-norm running statistics weighted by the share, the loss and a stop vote; every rank then applies the
 * same update. */
struct fr_dp;
struct fr_trainer;
enum fr_status fr_dp_new(struct fr_dist *d, struct fr_trainer *tr, struct fr_model *m, double share, int64_t rows,
                         bool refine, struct fr_dp **out);
/* After new rows (fr_dp_refine): the sum moves to the new trainer (of the same model), with this rank's new share of
 * the global batch's rows (BN statistics are weighted by it) and its rows. */
enum fr_status fr_dp_retarget(struct fr_dp *dp, struct fr_trainer *tr, struct fr_model *m, double share, int64_t rows);
void fr_dp_free(struct fr_dp *dp);
/* This rank's stop vote, sent with the next step's sum. */
void fr_dp_vote_stop(struct fr_dp *dp, bool stop);
/* After a step: whether any rank voted to stop; the global batch's loss; seconds this rank spent in the sum. */
bool fr_dp_stop(const struct fr_dp *dp);
float fr_dp_loss(const struct fr_dp *dp);
double fr_dp_sync_seconds(const struct fr_dp *dp);
/* --balance speed: from every rank's step time for its rows [*first, *first + *count) of the global batch (and, when
 * prev_count > 0, an earlier time at prev_count rows: a fixed cost per step is then told apart from the cost per
 * image), new rows that end every rank's step at the same time (at least one each; the same split on every rank). */
enum fr_status fr_dp_balance(struct fr_dist *d, double seconds, double prev_seconds, int64_t prev_count,
                             int64_t *first, int64_t *count);
/* --balance speed during training (fr_dp_new with refine): every rank's step times travel with the sums; every 16
 * steps on the same rows their medians give each rank's time per step as above, and when two such windows in a row
 * propose the same new rows, predicting a step at least 3% shorter, true with this rank's new rows (the same decision
 * on every rank, from the same sums; at most 4 times a run). The caller then trains on them from the next step: a new trainer, the same weights and optimizer
 * state, fr_dp_retarget. */
bool fr_dp_refine(struct fr_dp *dp, int64_t *first, int64_t *count);

#endif
