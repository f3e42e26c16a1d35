/* Kernels of `frugal bench` (device limits, clpeak's method): a streaming copy, chains of
 * multiply-adds, an empty kernel for the launch latency. */

__kernel void bench_copy(__global const float4 *src, __global float4 *dst, int n)
{
    int i = get_global_id(0);
    if (i < n)
        dst[i] = src[i];
}

/* Eight independent float4 chains x = x*a + c keep the FMA/MAD pipes busy with no memory access in the
 * loop: 32 mads = 64 flops per iteration and work-item. With |a| < 1 each chain converges (no overflow,
 * no denormals); the sum is stored so nothing is optimised away. */
__kernel void bench_mad(__global float *out, float a, int iters, int n)
{
    int i = get_global_id(0);
    float4 c = (float4)(i * 1e-7f, 0.1f, 0.2f, 0.3f);
    float4 x0 = c, x1 = c + 1.0f, x2 = c + 2.0f, x3 = c + 3.0f;
    float4 x4 = c + 4.0f, x5 = c + 5.0f, x6 = c + 6.0f, x7 = c + 7.0f;
    float4 b = (float4)(a);
    for (int k = 0; k < iters; k++) {
        x0 = mad(x0, b, c);
        x1 = mad(x1, b, c);
        x2 = mad(x2, b, c);
        x3 = mad(x3, b, c);
        x4 = mad(x4, b, c);
        x5 = mad(x5, b, c);
        x6 = mad(x6, b, c);
        x7 = mad(x7, b, c);
    }
    float4 s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    if (i < n)
        out[i] = s.x + s.y + s.z + s.w;
}

__kernel void bench_empty(__global float *out, int n)
{
    int i = get_global_id(0);
    if (i < n && i < 0)
        out[i] = 0.0f;
}
