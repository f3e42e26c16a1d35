/* CPU kernels of the collective ops (ops_dist.def): the work is in src/dist/ops.c, shared with OpenCL. */
#include "cpu/cpu.h"
#include "dist/dist_internal.h"

enum fr_status fr_cpu_rank_sum(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    (void)k;
    return fr_dist_rank_sum_node(dst);
}

enum fr_status fr_cpu_batchnorm_rank_stats(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    return fr_dist_bn_rank_stats_node(dst, k->ex);
}
