/* OpenCL launchers of the collective ops (ops_dist.def): blocking copies to the host and back around the work of
 * src/dist/ops.c (MPI reads host memory); the tensors are small (batch-norm statistics, per-channel sums). */
#include "dist/dist_internal.h"
#include "opencl/opencl_internal.h"

static enum fr_status cl_rank_sum(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)cl, (void)ex;
    return fr_dist_rank_sum_node(y);
}

static enum fr_status cl_batchnorm_rank_stats(struct fr_cl *cl, struct fr_tensor *y, const struct fr_exec *ex)
{
    (void)cl;
    return fr_dist_bn_rank_stats_node(y, ex);
}

void fr_cl_register_dist(struct fr_cl_op *t)
{
    t[FR_OP_RANK_SUM] = (struct fr_cl_op){cl_rank_sum, NULL};
    t[FR_OP_BATCHNORM_RANK_STATS] = (struct fr_cl_op){cl_batchnorm_rank_stats, NULL};
}
