/* The collective ops' work, shared by the CPU kernels (src/cpu/dist.c) and the OpenCL launchers
 * (src/opencl/ops_dist.c): the tensors go through host memory, as MPI needs them. */
#include <stdlib.h>

#include "core/internal.h"
#include "dist/dist_internal.h"

/* a host copy of t (f32), malloc'd */
static enum fr_status host_get(struct fr_tensor *t, float **h)
{
    *h = malloc(fr_nbytes(t) + 1);
    if (!*h)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", fr_op_name(t->op));
    return fr_tensor_get(t, *h, fr_nbytes(t));
}

enum fr_status fr_dist_rank_sum_node(struct fr_tensor *y)
{
    float *h = NULL;
    enum fr_status st = host_get(y->src[0], &h);
    if (st == FR_STATUS_OK)
        st = fr_dist_sum(fr_dist_world(), h, fr_nelements(y), NULL);
    if (st == FR_STATUS_OK)
        st = fr_tensor_set(y, h, fr_nbytes(y));
    free(h);
    return st;
}

enum fr_status fr_dist_bn_rank_stats_node(struct fr_tensor *y, const struct fr_exec *ex)
{
    struct fr_tensor *local = y->src[0], *rm = y->src[1], *rv = y->src[2];
    float *h = NULL, *m = NULL, *v = NULL;
    enum fr_status st = host_get(local, &h);
    bool batch = ex->training && !(y->src[3]->flags & FR_FLAG_FROZEN);
    if (st == FR_STATUS_OK && batch && (st = host_get(rm, &m)) == FR_STATUS_OK && (st = host_get(rv, &v)) == FR_STATUS_OK &&
        (st = fr_dist_bn_stats(fr_dist_world(), h, y->ne[1], (double)y->params[2].i, y->params[0].f, y->params[1].f, m,
                               v, h)) == FR_STATUS_OK &&
        (st = fr_tensor_set(rm, m, fr_nbytes(rm))) == FR_STATUS_OK)
        st = fr_tensor_set(rv, v, fr_nbytes(rv));
    if (st == FR_STATUS_OK) /* eval mode, a frozen layer: the statistics as they are */
        st = fr_tensor_set(y, h, fr_nbytes(y));
    free(h);
    free(m);
    free(v);
    return st;
}
