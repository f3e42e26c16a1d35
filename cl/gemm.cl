/* Portable SGEMM, C = alpha * op(A) op(B) + beta * C, used for MATMUL and the convolutions when CLBlast is
 * absent or an operand has no unit stride. Operands are addressed by (row stride, column stride) in
 * elements, so transposes and views need no copies. NB GEMMs of one shape whose operands lie (sab, sbb,
 * scb) elements apart run in one launch (batch folded into global dimension 1). Accumulation runs
 * k = 0..K-1 in order. */
#include "common.h"

/* GEMM-like: a*b+c may become one fma (see common.h); results stay within the parity tolerances. */
#pragma OPENCL FP_CONTRACT ON

/* Element offsets: A(m,k) = a[aoff + m*sam + k*sak], B(k,n) = b[boff + k*sbk + n*sbn],
 * C(m,n) = c[coff + m*scm + n*scn]. */
#define FR_GEMM_ARGS                                                                                    \
    const int M, const int N, const int K, const float alpha, __global const float *a, const int aoff,   \
        const int sam, const int sak, __global const float *b, const int boff, const int sbk,            \
        const int sbn, const float beta, __global float *c, const int coff, const int scm, const int scn,  \
        const int sab, const int sbb, const int scb, const int NB

FR_CL_FN void gemm_store(__global float *c, int idx, float acc, float alpha, float beta)
{
    float r = alpha == 1.0f ? acc : alpha * acc;
    if (beta != 0.0f) {
        float old = beta == 1.0f ? c[idx] : beta * c[idx];
        r = r + old;
    }
    c[idx] = r;
}

/* One work-item per C element; dim 0 = n (columns), dim 1 = batch * M + m (rows). */
__kernel void gemm_naive(FR_GEMM_ARGS)
{
    int n = get_global_id(0), r = get_global_id(1);
    int bi = r / M, m = r - bi * M;
    if (bi >= NB || n >= N)
        return;
    a += bi * sab;
    b += bi * sbb;
    c += bi * scb;
    float acc = 0.0f;
    for (int k = 0; k < K; k++)
        acc += a[aoff + m * sam + k * sak] * b[boff + k * sbk + n * sbn];
    gemm_store(c, coff + m * scm + n * scn, acc, alpha, beta);
}

/* Register-blocked tiles: a 16x16 work-group computes a 64x64 block of C, each work-item a 4x4
 * sub-block strided by 16 (neighbouring work-items touch neighbouring addresses); A and B advance
 * through local memory 16 values of k at a time. Launched with global (ceil(N/64)*16,
 * NB*ceil(M/64)*16) and local (16, 16). Each C element still sums k = 0..K-1 in order, as gemm_naive does. */
#define GB_T 64 /* block edge */
#define GB_K 16 /* k per step */
#define GB_W 4  /* outputs per work-item per dimension */
__kernel void gemm_tiled(FR_GEMM_ARGS)
{
    /* A is stored transposed; the extra column spreads its column-wise writes over the banks */
    __local float As[GB_K][GB_T + 1];
    __local float Bs[GB_K][GB_T];
    (void)NB; /* the launch has exactly NB * tm groups along dimension 1 */
    int tm = (M + GB_T - 1) / GB_T, bi = get_group_id(1) / tm;
    a += bi * sab;
    b += bi * sbb;
    c += bi * scb;
    int tx = get_local_id(0), ty = get_local_id(1);
    int tid = ty * 16 + tx;
    int n0 = get_group_id(0) * GB_T, m0 = (get_group_id(1) - bi * tm) * GB_T;
    float acc[GB_W][GB_W];
    for (int i = 0; i < GB_W; i++)
        for (int j = 0; j < GB_W; j++)
            acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += GB_K) {
        for (int l = 0; l < 4; l++) {
            int idx = tid + l * 256;
            int r = idx / GB_K, c = idx % GB_K; /* A: row m0+r, column k0+c */
            int gm = m0 + r, gk = k0 + c;
            As[c][r] = (gm < M && gk < K) ? a[aoff + gm * sam + gk * sak] : 0.0f;
            int rb = idx / GB_T, cb = idx % GB_T; /* B: row k0+rb, column n0+cb */
            int bk = k0 + rb, bn = n0 + cb;
            Bs[rb][cb] = (bk < K && bn < N) ? b[boff + bk * sbk + bn * sbn] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < GB_K; k++) {
            float av[GB_W], bv[GB_W];
            for (int i = 0; i < GB_W; i++) {
                av[i] = As[k][ty + 16 * i];
                bv[i] = Bs[k][tx + 16 * i];
            }
            for (int i = 0; i < GB_W; i++)
                for (int j = 0; j < GB_W; j++)
                    acc[i][j] += av[i] * bv[j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < GB_W; i++) {
        int m = m0 + ty + 16 * i;
        for (int j = 0; j < GB_W; j++) {
            int n = n0 + tx + 16 * j;
            if (m < M && n < N)
                gemm_store(c, coff + m * scm + n * scn, acc[i][j], alpha, beta);
        }
    }
}
