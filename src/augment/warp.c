/* Warps on the host: inverse-mapped resampling (nearest/bilinear/bicubic, constant/replicate/reflect-101 borders)
 * reproducing OpenCV 4.6 bit for bit: the reference functions of augment_common.h (fixed-point positions, 15-bit
 * weights) with vectorised row loops and SSE2 taps as fast paths. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h> /* baseline on x86-64: pmaddwd does a pixel's 2×2 taps × 3 channels in two multiplies */
#endif

#define AB_BITS FR_AUG_AB_BITS
#define AB_SCALE FR_AUG_AB_SCALE
#define TAB_BITS FR_AUG_TAB_BITS
#define TAB_SIZE FR_AUG_TAB_SIZE
#define COEF_BITS FR_AUG_COEF_BITS
#define PF_ROWS 2 /* prefetch distance in output rows */

/* bicubic weights per (fy, fx) sub-pixel position (fr_aug_cubic_weights), built once */
static int32_t cubic_tab[TAB_SIZE * TAB_SIZE][16];
static float cubic_tab_f[TAB_SIZE * TAB_SIZE][16];
static pthread_once_t cubic_once = PTHREAD_ONCE_INIT;

static void cubic_init(void)
{
    for (int fy = 0; fy < TAB_SIZE; fy++)
        for (int fx = 0; fx < TAB_SIZE; fx++)
            fr_aug_cubic_weights(fx, fy, cubic_tab_f[fy * TAB_SIZE + fx], cubic_tab[fy * TAB_SIZE + fx]);
}

/* bilinear weights per sub-pixel position fy*32+fx as int16 pairs (w00, w10, w01, w11): the operands of one
 * pmaddwd over interleaved (top, bottom) taps; every weight is at most 1024, so the pairs fit in int16 */
static int16_t bilin_tab[TAB_SIZE * TAB_SIZE][4];
static pthread_once_t bilin_once = PTHREAD_ONCE_INIT;

static void bilin_init(void)
{
    for (int fy = 0; fy < TAB_SIZE; fy++)
        for (int fx = 0; fx < TAB_SIZE; fx++) {
            int16_t *t = bilin_tab[fy * TAB_SIZE + fx];
            t[0] = (int16_t)((TAB_SIZE - fx) * (TAB_SIZE - fy)), t[1] = (int16_t)((TAB_SIZE - fx) * fy);
            t[2] = (int16_t)(fx * (TAB_SIZE - fy)), t[3] = (int16_t)(fx * fy);
        }
}

#define border_idx(i, n, border) fr_aug_border_index(i, n, border)
#define sat_int(v) fr_aug_sat_round(v)

/* Source positions of one output row: for nearest integer pixels, else 1/32-pixel fixed point (fr_aug_map_pos).
 * For affine maps A/B hold OpenCV's per-column terms fr_aug_affine_col, computed once; the row's 32-bit loop is
 * fr_aug_affine_pos without its 64-bit clamp, which cannot trigger in the checked range. */
static void row_coords_general(const double *M, int y, int w, int out_h, enum fr_aug_interp interp, int *X, int *Y);

static void row_coords(const double *M, int y, int w, int out_h, enum fr_aug_interp interp, const int *A, const int *B,
                       int *X, int *Y)
{
    int nearest = interp == FR_AUG_NEAREST;
    if (A) {
        int rd = nearest ? AB_SCALE / 2 : AB_SCALE / TAB_SIZE / 2;
        int shift = nearest ? AB_BITS : AB_BITS - TAB_BITS;
        int64_t X0 = (int64_t)fr_aug_affine_row(M, y, 0) + rd, Y0 = (int64_t)fr_aug_affine_row(M, y, 1) + rd;
        if (X0 > INT_MIN / 2 && X0 < INT_MAX / 2 && Y0 > INT_MIN / 2 && Y0 < INT_MAX / 2) {
            int x0 = (int)X0, y0 = (int)Y0; /* no overflow possible: a 32-bit loop the compiler vectorises */
            for (int x = 0; x < w; x++) {
                X[x] = (x0 + A[x]) >> shift;
                Y[x] = (y0 + B[x]) >> shift;
            }
        } else
            for (int x = 0; x < w; x++) {
                X[x] = (int)((X0 + A[x]) >> shift);
                Y[x] = (int)((Y0 + B[x]) >> shift);
            }
        return;
    }
    row_coords_general(M, y, w, out_h, interp, X, Y);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void row_coords_general(const double *M, int y, int w, int out_h, enum fr_aug_interp interp, int *X, int *Y)
{
    int nearest = interp == FR_AUG_NEAREST;
    if (fr_aug_is_affine(M)) { /* the reference form (huge maps, where row_coords' 32-bit loop cannot be used) */
        const int rx = fr_aug_affine_row(M, y, 0), ry = fr_aug_affine_row(M, y, 1);
        for (int x = 0; x < w; x++) {
            X[x] = fr_aug_affine_pos(rx, fr_aug_affine_col(M, x, 0), nearest);
            Y[x] = fr_aug_affine_pos(ry, fr_aug_affine_col(M, x, 1), nearest);
        }
        return;
    }
    /* OpenCV evaluates perspective maps in blocks whose start column enters the rounding */
    int bh0 = fr_aug_min_int(16, out_h);
    int bw0 = fr_aug_min_int(32 * 32 / bh0, w);
    for (int xb = 0; xb < w; xb += bw0) {
        int bw = fr_aug_min_int(bw0, w - xb);
        double X0 = M[0] * xb + M[1] * y + M[2];
        double Y0 = M[3] * xb + M[4] * y + M[5];
        double W0 = M[6] * xb + M[7] * y + M[8];
        /* four columns at a time in GCC vectors (one AVX register in the avx2 clone, two SSE2 ones otherwise), with the same IEEE operations as the scalar form
         * W = W ? ts/W : 0; fmax(INT_MIN, fmin(INT_MAX, v)) (NaN -> INT_MAX); lrint (adding and subtracting
         * 1.5·2^52 rounds half to even for |v| <= 2^31) */
        typedef double v2d __attribute__((vector_size(32)));
        typedef long long v2l __attribute__((vector_size(32)));
        typedef int v2i __attribute__((vector_size(16)));
        const double ts = nearest ? 1. : (double)TAB_SIZE;
        const v2d vmax = (v2d){0} + (double)INT_MAX, vmin = (v2d){0} + (double)INT_MIN;
        const v2d magic = (v2d){0} + 6755399441055744.0, one = (v2d){0} + 1., vts = (v2d){0} + ts;
#define SEL(m, a, b) ((v2d)(((v2l)(a) & (m)) | ((v2l)(b) & ~(m))))
        int x1 = 0;
        for (; x1 + 4 <= bw; x1 += 4) {
            const v2d xv = {(double)x1, (double)(x1 + 1), (double)(x1 + 2), (double)(x1 + 3)};
            v2d W = W0 + M[6] * xv;
            v2l nz = W != 0;
            v2d iw = vts / SEL(nz, W, one);
            iw = (v2d)((v2l)iw & nz);
            v2d fX = (X0 + M[0] * xv) * iw, fY = (Y0 + M[3] * xv) * iw;
            fX = SEL(fX < vmax, fX, vmax);
            fX = SEL(fX > vmin, fX, vmin);
            fY = SEL(fY < vmax, fY, vmax);
            fY = SEL(fY > vmin, fY, vmin);
            v2i ix = __builtin_convertvector((fX + magic) - magic, v2i);
            v2i iy = __builtin_convertvector((fY + magic) - magic, v2i);
            memcpy(X + xb + x1, &ix, sizeof ix);
            memcpy(Y + xb + x1, &iy, sizeof iy);
        }
#undef SEL
        for (; x1 < bw; x1++)
            fr_aug_persp_pos(M, xb + x1, y, w, out_h, nearest, X + xb + x1, Y + xb + x1);
    }
}

#define u8_fill(f) fr_aug_fill_u8(f)

/* pf: byte offset from a tap to the same output column's tap a few rows further down (0: none), so that a
 * rotated walk through a cold source image has its cache lines on the way before it needs them */
static void warp_u8(const struct fr_aug_plane *s, const struct fr_aug_plane *d, const int *X, const int *Y, int y,
                    enum fr_aug_interp interp, enum fr_aug_border border, float fillf, ptrdiff_t pf)
{
    const uint8_t *S = s->data;
    uint8_t *D = (uint8_t *)d->data + y * d->sy;
    const int c = s->c, sw = s->w, sh = s->h;
    const uint8_t fill = u8_fill(fillf);
    /* interleaved RGB is the common case: a tight loop for pixels whose taps are all inside */
    const int rgb = c == 3 && s->sc == 1 && d->sc == 1 && s->sx == 3 && d->sx == 3;
    const ptrdiff_t ssy = s->sy;
    const int last = d->w - 1; /* 4-byte stores stop before the row's last pixel */
    const uint32_t fill4 = 0x01010101u * fill;
    if (pf && rgb && interp != FR_AUG_BICUBIC) { /* every 4th column: lines hold ~21 pixels, rows turn < 45° */
        const int sh_ = interp == FR_AUG_NEAREST ? 0 : TAB_BITS;
        for (int x = 0; x < d->w; x += 4) {
            uintptr_t p = (uintptr_t)S + (uintptr_t)((ptrdiff_t)(Y[x] >> sh_) * ssy + (ptrdiff_t)(X[x] >> sh_) * 3 + pf);
            __builtin_prefetch((const void *)p);
            if (sh_)
                __builtin_prefetch((const void *)(p + (uintptr_t)ssy));
        }
    }
    for (int x = 0; x < d->w; x++) {
        uint8_t *o = D + x * d->sx;
        if (rgb && interp == FR_AUG_NEAREST) { /* tight loop while the taps stay inside */
            /* 4-byte moves: the spare byte lands on the next output pixel, rewritten right after, so the
             * row's last pixel is left to the careful path; reading a pixel's 4th byte needs one more
             * source byte, which exists unless it is the image's very last pixel */
            for (; x < last; x++, o += 3) {
                if (!((unsigned)X[x] < (unsigned)sw && (unsigned)Y[x] < (unsigned)sh && (X[x] < sw - 1 || Y[x] < sh - 1))) {
                    if (border == FR_AUG_CONSTANT && !((unsigned)X[x] < (unsigned)sw && (unsigned)Y[x] < (unsigned)sh)) {
                        memcpy(o, &fill4, 4); /* outside: the fill (the common case at rotated corners) */
                        continue;
                    }
                    break;
                }
                uint32_t v;
                const uint8_t *p = S + Y[x] * ssy + X[x] * 3;
                memcpy(&v, p, 4);
                memcpy(o, &v, 4);
            }
            for (; x < d->w && (unsigned)X[x] < (unsigned)sw && (unsigned)Y[x] < (unsigned)sh; x++, o += 3) {
                const uint8_t *p = S + Y[x] * ssy + X[x] * 3;
                o[0] = p[0], o[1] = p[1], o[2] = p[2];
            }
            if (x == d->w)
                break;
        }
        if (rgb && interp == FR_AUG_BILINEAR) {
#if defined(__SSE2__)
            /* 8-byte loads of the two tap pairs (2 bytes past the right tap: they exist unless the taps are
             * the image's bottom-right 2×2) and a 4-byte store (see nearest) */
            const __m128i zero = _mm_setzero_si128(), half = _mm_set1_epi32(1 << (2 * TAB_BITS - 1));
            for (; x < last; x++, o += 3) {
                int x0 = X[x] >> TAB_BITS, y0 = Y[x] >> TAB_BITS;
                if (!((unsigned)x0 < (unsigned)(sw - 1) && (unsigned)y0 < (unsigned)(sh - 1) &&
                      (x0 < sw - 2 || y0 < sh - 2))) {
                    if (border == FR_AUG_CONSTANT && (x0 >= sw || x0 + 1 < 0 || y0 >= sh || y0 + 1 < 0)) {
                        memcpy(o, &fill4, 4); /* all four taps outside: the fill */
                        continue;
                    }
                    break;
                }
                const uint8_t *p0 = S + y0 * ssy + x0 * 3;
                __m128i a = _mm_loadl_epi64((const __m128i *)(const void *)p0);
                __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(p0 + ssy));
                __m128i t = _mm_unpacklo_epi8(a, b); /* r0 R0 g0 G0 b0 B0 r1 R1 g1 G1 b1 B1 (top, bottom) */
                __m128i lo = _mm_unpacklo_epi8(t, zero), hi = _mm_unpackhi_epi8(t, zero);
                __m128i wv = _mm_loadl_epi64((const __m128i *)(const void *)
                                                 bilin_tab[((Y[x] & (TAB_SIZE - 1)) << TAB_BITS) | (X[x] & (TAB_SIZE - 1))]);
                __m128i w0 = _mm_shuffle_epi32(wv, _MM_SHUFFLE(1, 0, 0, 0));              /* left ×3, right */
                __m128i w1 = _mm_move_epi64(_mm_shuffle_epi32(wv, _MM_SHUFFLE(1, 1, 1, 1))); /* right ×2, 0, 0 */
                __m128i s0 = _mm_madd_epi16(lo, w0); /* R_left G_left B_left R_right */
                __m128i s1 = _mm_madd_epi16(hi, w1); /* G_right B_right 0 0 */
                __m128i sum = _mm_add_epi32(_mm_add_epi32(s0, _mm_srli_si128(s0, 12)), _mm_slli_si128(s1, 4));
                sum = _mm_srai_epi32(_mm_add_epi32(sum, half), 2 * TAB_BITS);
                sum = _mm_packs_epi32(sum, sum);
                uint32_t v = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(sum, sum));
                memcpy(o, &v, 4);
            }
#endif
            for (; x < d->w; x++, o += 3) {
                int x0 = X[x] >> TAB_BITS, y0 = Y[x] >> TAB_BITS;
                if (!((unsigned)x0 < (unsigned)(sw - 1) && (unsigned)y0 < (unsigned)(sh - 1)))
                    break;
                int fx = X[x] & (TAB_SIZE - 1), fy = Y[x] & (TAB_SIZE - 1);
                int w00 = (TAB_SIZE - fx) * (TAB_SIZE - fy), w01 = fx * (TAB_SIZE - fy);
                int w10 = (TAB_SIZE - fx) * fy, w11 = fx * fy;
                const uint8_t *p0 = S + y0 * ssy + x0 * 3, *p1 = p0 + ssy;
                (void)w00, (void)w01, (void)w10, (void)w11;
                o[0] = (uint8_t)fr_aug_bilinear_u8(p0[0], p0[3], p1[0], p1[3], fx, fy);
                o[1] = (uint8_t)fr_aug_bilinear_u8(p0[1], p0[4], p1[1], p1[4], fx, fy);
                o[2] = (uint8_t)fr_aug_bilinear_u8(p0[2], p0[5], p1[2], p1[5], fx, fy);
            }
            if (x == d->w)
                break;
        }
        if (interp == FR_AUG_NEAREST) {
            int ix = border_idx(X[x], sw, border), iy = border_idx(Y[x], sh, border);
            if (ix < 0 || iy < 0)
                for (int k = 0; k < c; k++)
                    o[k * d->sc] = fill;
            else {
                const uint8_t *p = S + iy * s->sy + ix * s->sx;
                for (int k = 0; k < c; k++)
                    o[k * d->sc] = p[k * s->sc];
            }
            continue;
        }
        int fx = X[x] & (TAB_SIZE - 1), fy = Y[x] & (TAB_SIZE - 1);
        int x0 = X[x] >> TAB_BITS, y0 = Y[x] >> TAB_BITS;
        if (interp == FR_AUG_BILINEAR) {
            if ((unsigned)x0 < (unsigned)(sw - 1) && (unsigned)y0 < (unsigned)(sh - 1)) {
                const uint8_t *p0 = S + y0 * s->sy + x0 * s->sx, *p1 = p0 + s->sy;
                for (int k = 0; k < c; k++) {
                    ptrdiff_t o0 = k * s->sc, o1 = o0 + s->sx;
                    o[k * d->sc] = (uint8_t)fr_aug_bilinear_u8(p0[o0], p0[o1], p1[o0], p1[o1], fx, fy);
                }
                continue;
            }
            if (border == FR_AUG_CONSTANT && (x0 >= sw || x0 + 1 < 0 || y0 >= sh || y0 + 1 < 0)) {
                for (int k = 0; k < c; k++)
                    o[k * d->sc] = fill;
                continue;
            }
            int xa = border_idx(x0, sw, border), xb = border_idx(x0 + 1, sw, border);
            int ya = border_idx(y0, sh, border), yb = border_idx(y0 + 1, sh, border);
            for (int k = 0; k < c; k++) {
#define TAP(yy, xx) ((yy) < 0 || (xx) < 0 ? fill : S[(yy) * s->sy + (xx) * s->sx + k * s->sc])
                o[k * d->sc] = (uint8_t)fr_aug_bilinear_u8(TAP(ya, xa), TAP(ya, xb), TAP(yb, xa), TAP(yb, xb), fx, fy);
            }
            continue;
        }
        /* bicubic */
        const int32_t *wt = cubic_tab[fy * TAB_SIZE + fx];
        if (border == FR_AUG_CONSTANT && (x0 >= sw + 1 || x0 + 2 < 0 || y0 >= sh + 1 || y0 + 2 < 0)) {
            for (int k = 0; k < c; k++)
                o[k * d->sc] = fill;
            continue;
        }
        int xi[4], yi[4];
        for (int t = 0; t < 4; t++) {
            xi[t] = border_idx(x0 - 1 + t, sw, border);
            yi[t] = border_idx(y0 - 1 + t, sh, border);
        }
        for (int k = 0; k < c; k++) {
            int v = 0;
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++)
                    v += TAP(yi[a], xi[b]) * wt[a * 4 + b];
            o[k * d->sc] = (uint8_t)fr_aug_cubic_u8(v);
        }
#undef TAP
    }
}

static void warp_f32(const struct fr_aug_plane *s, const struct fr_aug_plane *d, const int *X, const int *Y, int y,
                     enum fr_aug_interp interp, enum fr_aug_border border, float fill)
{
    const float *S = s->data;
    float *D = (float *)d->data + y * d->sy;
    const int c = s->c, sw = s->w, sh = s->h;
#define TAPF(yy, xx) ((yy) < 0 || (xx) < 0 ? fill : S[(yy) * s->sy + (xx) * s->sx + k * s->sc])
    for (int x = 0; x < d->w; x++) {
        float *o = D + x * d->sx;
        if (interp == FR_AUG_NEAREST) {
            int ix = border_idx(X[x], sw, border), iy = border_idx(Y[x], sh, border);
            for (int k = 0; k < c; k++)
                o[k * d->sc] = TAPF(iy, ix);
            continue;
        }
        int fx = X[x] & (TAB_SIZE - 1), fy = Y[x] & (TAB_SIZE - 1);
        int x0 = X[x] >> TAB_BITS, y0 = Y[x] >> TAB_BITS;
        if (interp == FR_AUG_BILINEAR) {
            int xa = border_idx(x0, sw, border), xb = border_idx(x0 + 1, sw, border);
            int ya = border_idx(y0, sh, border), yb = border_idx(y0 + 1, sh, border);
            for (int k = 0; k < c; k++)
                o[k * d->sc] = fr_aug_bilinear_f32(TAPF(ya, xa), TAPF(ya, xb), TAPF(yb, xa), TAPF(yb, xb), fx, fy);
            continue;
        }
        const float *wt = cubic_tab_f[fy * TAB_SIZE + fx];
        int xi[4], yi[4];
        for (int t = 0; t < 4; t++) {
            xi[t] = border_idx(x0 - 1 + t, sw, border);
            yi[t] = border_idx(y0 - 1 + t, sh, border);
        }
        for (int k = 0; k < c; k++) {
            float v = 0;
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++)
                    v += TAPF(yi[a], xi[b]) * wt[a * 4 + b];
            o[k * d->sc] = v;
        }
    }
#undef TAPF
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_AUG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FR_AUG_CLONES
#endif

/* run mirrored RGB pixels: o[j] = src[-j] (pixel units). Five pixels per 16-byte shuffle (one pshufb where the
 * CPU has it); each 16-byte store's spare byte lands on the next pixel, written after it, and each load's spare
 * byte is the pixel after src[-j], which the caller guarantees exists. The last pixel moves 3 bytes. */
FR_AUG_CLONES
static void mirror_rgb(uint8_t *restrict o, const uint8_t *restrict src, int run)
{
    typedef uint8_t v16 __attribute__((vector_size(16)));
    int j = 0;
    for (; j + 6 <= run; j += 5, o += 15, src -= 15) {
        v16 v;
        memcpy(&v, src - 12, 16);
#if defined(__clang__)
        v = __builtin_shufflevector(v, v, 12, 13, 14, 9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2, 15);
#else
        v = __builtin_shuffle(v, (v16){12, 13, 14, 9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2, 15});
#endif
        memcpy(o, &v, 16);
    }
    for (; j < run - 1; j++, o += 3, src -= 3) {
        uint32_t v;
        memcpy(&v, src, 4);
        memcpy(o, &v, 4);
    }
    if (j < run)
        o[0] = src[0], o[1] = src[1], o[2] = src[2];
}

/* Whole-pixel axis-aligned maps (translations, flips, crops, pads): x_src = ±x + tx, y_src = ±y + ty. Every
 * interpolation gives the source pixel itself there, so rows are copied (memcpy when not mirrored). */
static int warp_integer(const struct fr_aug_plane *s, const struct fr_aug_plane *d, const double *m,
                        enum fr_aug_border border, float fill)
{
    if (!(m[1] == 0 && m[3] == 0 && m[6] == 0 && m[7] == 0 && m[8] == 1 && fabs(m[0]) == 1 && fabs(m[4]) == 1 &&
          m[2] == floor(m[2]) && m[5] == floor(m[5]) && fabs(m[2]) < (1 << 28) && fabs(m[5]) < (1 << 28)))
        return 0;
    const int sx = (int)m[0], tx = (int)m[2], syy = (int)m[4], ty = (int)m[5], c = s->c;
    const size_t es = s->type == FR_U8 ? 1 : sizeof(float);
    const int contiguous_px = s->sc == 1 && d->sc == 1 && s->sx == c && d->sx == c; /* interleaved pixels */
    uint8_t fill8 = u8_fill(fill);
    for (int y = 0; y < d->h; y++) {
        int iy = border_idx(syy * y + ty, s->h, border);
        char *orow = (char *)d->data + (size_t)y * d->sy * es;
        if (sx == -1 && contiguous_px && y + 1 < d->h) {
            /* mirrored reads walk each row backwards, which the hardware prefetchers follow poorly: ask for the
             * next source row now (one request per 64-byte line) */
            int ny = border_idx(syy * (y + 1) + ty, s->h, border);
            if (ny >= 0) {
                const char *r = (const char *)s->data + (size_t)ny * s->sy * es;
                for (size_t b = 0; b < (size_t)s->w * c * es; b += 64)
                    __builtin_prefetch(r + b);
            }
        }
        for (int x = 0; x < d->w;) {
            int ix = border_idx(sx * x + tx, s->w, border);
            if (iy >= 0 && contiguous_px && sx == -1 && es == 1 && (unsigned)(tx - x) < (unsigned)s->w) {
                int run = fr_aug_min_int(d->w - x, tx - x + 1); /* mirrored row segment, pixel by pixel */
                const uint8_t *src = (const uint8_t *)s->data + (size_t)iy * s->sy + (size_t)(tx - x) * c;
                uint8_t *o = (uint8_t *)orow + (size_t)x * c;
                if (c == 3) {
                    /* 4-byte moves (the spare byte is rewritten by the next pixel); the run's last pixel, and a
                     * first source pixel at the row's end, take 3-byte moves so nothing outside is touched */
                    int j = 0;
                    if (run > 1 && tx - x == s->w - 1) {
                        o[0] = src[0], o[1] = src[1], o[2] = src[2];
                        j = 1, o += 3, src -= 3;
                    }
                    mirror_rgb(o, src, run - j);
                }
                else
                    for (int j = 0; j < run; j++, o += c, src -= c)
                        memcpy(o, src, (size_t)c);
                x += run;
                continue;
            }
            if (iy >= 0 && ix >= 0 && contiguous_px && sx == 1 && (unsigned)(x + tx) < (unsigned)s->w) {
                int run = fr_aug_min_int(d->w - x, s->w - (x + tx)); /* inside, left to right: one memcpy */
                memcpy(orow + (size_t)x * c * es, (const char *)s->data + ((size_t)iy * s->sy + (size_t)ix * c) * es,
                       (size_t)run * c * es);
                x += run;
                continue;
            }
            for (int k = 0; k < c; k++) {
                char *o = orow + (x * d->sx + k * d->sc) * (ptrdiff_t)es;
                if (iy < 0 || ix < 0) {
                    if (s->type == FR_U8)
                        *(uint8_t *)o = fill8;
                    else
                        *(float *)o = fill;
                } else
                    memcpy(o, (const char *)s->data + (iy * s->sy + ix * s->sx + k * s->sc) * (ptrdiff_t)es, es);
            }
            x++;
        }
    }
    return 1;
}

enum fr_status fr_aug_warp_plane(const struct fr_aug_plane *src, const struct fr_aug_plane *dst, const double minv[9],
                                 enum fr_aug_interp interp, enum fr_aug_border border, float fill)
{
    if (src->type != dst->type || src->c != dst->c)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: warp: source and destination differ in type or channels");
    if ((unsigned)interp > FR_AUG_BICUBIC || (unsigned)border > FR_AUG_REFLECT101)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: warp: bad interpolation %d or border %d", (int)interp,
                        (int)border);
    for (int i = 0; i < 9; i++)
        if (!isfinite(minv[i]))
            return fr_error(FR_STATUS_NUMERIC, "augment: warp: non-finite matrix");
    if (warp_integer(src, dst, minv, border, fill))
        return FR_STATUS_OK;
    if (interp == FR_AUG_BICUBIC)
        pthread_once(&cubic_once, cubic_init);
    if (interp == FR_AUG_BILINEAR)
        pthread_once(&bilin_once, bilin_init);
    int stack_xy[4 * 1024]; /* rows up to 1024 pixels need no allocation per sample */
    int *XY = dst->w <= 1024 ? stack_xy : malloc(sizeof(int) * 4 * (size_t)dst->w);
    if (!XY)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "augment: warp: out of memory");
    int *A = NULL, *B = NULL;
    if (minv[6] == 0 && minv[7] == 0 && minv[8] == 1) {
        A = XY + 2 * dst->w, B = XY + 3 * dst->w;
        for (int x = 0; x < dst->w; x++) {
            A[x] = fr_aug_affine_col(minv, x, 0);
            B[x] = fr_aug_affine_col(minv, x, 1);
            if (A[x] < -(1 << 29) || A[x] > (1 << 29) || B[x] < -(1 << 29) || B[x] > (1 << 29))
                A = B = NULL; /* huge maps: the general (block) path handles the range */
            if (!A)
                break;
        }
    }
    ptrdiff_t pf = 0;
    if (src->type == FR_U8 && minv[6] == 0 && minv[7] == 0 && fabs(minv[1]) < 64 && fabs(minv[4]) < 64)
        pf = (ptrdiff_t)lrint(PF_ROWS * minv[4]) * src->sy + (ptrdiff_t)lrint(PF_ROWS * minv[1]) * src->sx;
    for (int y = 0; y < dst->h; y++) {
        if (A)
            row_coords(minv, y, dst->w, dst->h, interp, A, B, XY, XY + dst->w);
        else
            row_coords_general(minv, y, dst->w, dst->h, interp, XY, XY + dst->w);
        if (src->type == FR_U8)
            warp_u8(src, dst, XY, XY + dst->w, y, interp, border, fill, pf);
        else
            warp_f32(src, dst, XY, XY + dst->w, y, interp, border, fill);
    }
    if (XY != stack_xy)
        free(XY);
    return FR_STATUS_OK;
}

/* the source positions of output row y of an out_w-wide, out_h-high warp (nearest: integer pixels, else 1/32 pixel) */
void fr_aug_warp_row_pos(const double minv[9], int y, int out_w, int out_h, enum fr_aug_interp interp, int *X, int *Y)
{
    row_coords_general(minv, y, out_w, out_h, interp, X, Y);
}
