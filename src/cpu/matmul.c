/* CPU kernel of matmul: the packed SGEMM of gemm.c on contiguous 2D operands. */
#include "cpu/cpu.h"
#include "cpu/gemm.h"

enum fr_status fr_cpu_matmul(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    const struct fr_tensor *a = dst->src[0], *b = dst->src[1];
    bool ta = dst->params[0].i, tb = dst->params[1].i;
    int64_t m = dst->ne[0], n = dst->ne[1], kk = ta ? a->ne[0] : a->ne[1];
    fr_sgemm(k->pool, ta, tb, m, n, kk, 1.0f, fr_tensor_data(a), a->ne[1], fr_tensor_data(b), b->ne[1], 0.0f,
             fr_tensor_data(dst), n);
    return FR_STATUS_OK;
}
