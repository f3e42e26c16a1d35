/* Dtype conversion with optional per-channel normalisation, as src/cpu/convert.c: every value goes
 * through f32, then y = (x * scale - mean[c]) / std[c] when axis >= 0 (c = min(3, index on axis)),
 * then f32 as is, i32 truncated, u8 rounded half-to-even and clamped (NaN -> 0). */
#include "common.h"

FR_CL_FN float cv_norm(float v, const fr_clt py, int i, int axis, float scale, float4 mean, float4 stdv)
{
    if (axis < 0)
        return v;
    int c[4];
    fr_unravel(py, i, c);
    int ch = min(3, c[axis]);
    float m = ch == 0 ? mean.s0 : ch == 1 ? mean.s1 : ch == 2 ? mean.s2 : mean.s3;
    float s = ch == 0 ? stdv.s0 : ch == 1 ? stdv.s1 : ch == 2 ? stdv.s2 : stdv.s3;
    float p = v * scale;
    return (p - m) / s;
}

FR_CL_FN float cv_store_f32(float v) { return v; }
FR_CL_FN int cv_store_i32(float v) { return convert_int_sat_rtz(v); }
FR_CL_FN uchar cv_store_u8(float v) { return (uchar)(isnan(v) ? 0.0f : clamp(rint(v), 0.0f, 255.0f)); }

#define FR_CONVERT(DN, DT, SN, ST)                                                                       \
    __kernel void convert_##DN##_##SN(__global DT *y, const fr_clt py, __global const ST *x,             \
                                      const fr_clt px, const int axis, const float scale,                \
                                      const float4 mean, const float4 stdv)                              \
    {                                                                                                    \
        int i = get_global_id(0);                                                                        \
        if (i >= py.n)                                                                                   \
            return;                                                                                      \
        float v = cv_norm((float)x[fr_clt_index(px, i)], py, i, axis, scale, mean, stdv);                \
        y[fr_clt_index(py, i)] = cv_store_##DN(v);                                                       \
    }

FR_CONVERT(f32, float, f32, float)
FR_CONVERT(f32, float, u8, uchar)
FR_CONVERT(f32, float, i32, int)
FR_CONVERT(u8, uchar, f32, float)
FR_CONVERT(u8, uchar, u8, uchar)
FR_CONVERT(u8, uchar, i32, int)
FR_CONVERT(i32, int, f32, float)
FR_CONVERT(i32, int, u8, uchar)
FR_CONVERT(i32, int, i32, int)
