/* Layout kernels: strided -> contiguous copies (CONT; `_c`: the destination is contiguous) and constant
 * fills (FILL), per element size. */
#include "common.h"

/* Four-byte elements (f32 and i32 alike) are copied as uint so no float canonicalises a NaN payload. */
__kernel void layout_cont_4(__global uint *dst, const fr_clt pd, __global const uint *src, const fr_clt ps)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    dst[fr_clt_index(pd, i)] = src[fr_clt_index(ps, i)];
}

__kernel void layout_cont_1(__global uchar *dst, const fr_clt pd, __global const uchar *src, const fr_clt ps)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    dst[fr_clt_index(pd, i)] = src[fr_clt_index(ps, i)];
}

/* contiguous destinations: element i at pd.off + i */
__kernel void layout_cont_4_c(__global uint *dst, const fr_clt pd, __global const uint *src, const fr_clt ps)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    dst[pd.off + i] = src[fr_clt_index(ps, i)];
}

__kernel void layout_cont_1_c(__global uchar *dst, const fr_clt pd, __global const uchar *src, const fr_clt ps)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    dst[pd.off + i] = src[fr_clt_index(ps, i)];
}

/* The host converts the fill value to the destination's bit pattern, so one kernel per size suffices. */
__kernel void layout_fill_4(__global uint *dst, const fr_clt pd, const uint v)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    dst[fr_clt_index(pd, i)] = v;
}

__kernel void layout_fill_1(__global uchar *dst, const fr_clt pd, const uint v)
{
    int i = get_global_id(0);
    if (i >= pd.n)
        return;
    dst[fr_clt_index(pd, i)] = (uchar)v;
}
