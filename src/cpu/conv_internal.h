/* Shared by the conv2d CPU kernels (conv.c) and their Winograd F(2x2, 3x3) path (conv_winograd.c): the node's
 * geometry, the Winograd job and its entry points. */
#ifndef FRUGAL_CPU_CONV_INTERNAL_H
#define FRUGAL_CPU_CONV_INTERNAL_H

#include "cpu/cpu.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_CONV_CLONES __attribute__((target_clones("avx2", "default"))) /* wider vectors, same IEEE ops */
#else
#define FR_CONV_CLONES
#endif

enum { P_SH, P_SW, P_PH, P_PW, P_DH, P_DW, P_GROUPS, P_RELU };

struct conv_geom {
    int64_t n, c, h, w;     /* input */
    int64_t o, kh, kw;      /* weight */
    int64_t oh, ow;         /* output */
    int sh, sw, ph, pw, dh, dw, groups;
    int64_t cg, og, kg;     /* channels, outputs and GEMM depth per group */
    int64_t ohw;
    bool direct;            /* 1x1, stride 1, no padding: the input already is the column matrix */
};

/* copies n floats; feature-map rows are short (14, 28), where a memcpy call costs more than the copy */
static inline void copy_row(float *dst, const float *src, int64_t n)
{
    int64_t q = 0;
    for (; q + 4 <= n; q += 4)
        memcpy(dst + q, src + q, 4 * sizeof *dst); /* fixed size: one vector move, no call */
    for (; q < n; q++)
        dst[q] = src[q];
}

struct wino_job {
    const float *x, *u, *bias;
    float *y, *scratch;
    int64_t n, cin, h, w, cout, oh, ow, ph, pw, th, tw, tiles, group;
    size_t per_thread;
    struct fr_threadpool *gemm_pool;
    bool relu;
};

/* 3x3 stride-1 convolutions with enough channels to pay for the transforms (FRUGAL_CONV_NO_WINOGRAD=1: never) */
bool fr_cpu_wino_fits(const struct conv_geom *g);
/* U[ξ][a][b] = G·g·Gᵀ of every filter (flip: of the 180°-rotated transposed filters, for the input gradient) */
void fr_cpu_wino_filter(const float *w, int64_t o_ch, int64_t c_ch, bool flip, float *u);
/* the forward (or, on gy with flipped filters, the input gradient); false when out of scratch memory */
bool fr_cpu_wino_run(struct fr_cpu_kctx *k, struct wino_job *j);
/* dW of a Winograd-shaped convolution */
enum fr_status fr_cpu_wino_bwd_weight(struct fr_cpu_kctx *k, const struct conv_geom *g, const float *x,
                                      const float *gy, float *dw, const char *name);

#endif
