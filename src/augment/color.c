/* Colour and pixel ops with PIL semantics on u8 images (enhance blends, posterize, solarize, equalize,
 * auto-contrast, grayscale, noise, cutout): vectorised loops over the reference functions of augment_common.h. */
#include <math.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "rng.h"

#define PIX(p, x, y, k) (((uint8_t *)(p)->data)[(y) * (p)->sy + (x) * (p)->sx + (k) * (p)->sc])

/* contiguous interleaved (NHWC) image: one flat run of h*w*c bytes */
static inline int interleaved(const struct fr_aug_plane *p)
{
    return p->sc == 1 && p->sx == p->c && p->sy == (ptrdiff_t)p->w * p->c;
}

/* contiguous planar (NCHW) image: channel k is a flat run of h*w bytes */
static inline int planar(const struct fr_aug_plane *p) { return p->sx == 1 && p->sy == p->w; }

/* src: where the LUT reads (p itself, or an interleaved source of the same size and channels, see
 * color_op_from) */
static void apply_lut_from(const struct fr_aug_plane *src, const struct fr_aug_plane *p, const uint8_t lut[][256],
                           int n_ch)
{
    if (src->data != p->data) {
        const size_t n = (size_t)p->h * p->w * p->c;
        const uint8_t *a = src->data, *l = lut[0];
        uint8_t *d = p->data;
        if (p->c == 1 || (!memcmp(lut[0], lut[1], 256) && !memcmp(lut[0], lut[2], 256)))
            for (size_t i = 0; i < n; i++)
                d[i] = l[a[i]];
        else
            for (size_t i = 0; i < n; i += 3)
                d[i] = lut[0][a[i]], d[i + 1] = lut[1][a[i + 1]], d[i + 2] = lut[2][a[i + 2]];
        return;
    }
    const size_t npix = (size_t)p->h * p->w;
    uint8_t *d = p->data;
    if (interleaved(p) && n_ch == p->c) {
        if (n_ch == 1 || (!memcmp(lut[0], lut[1], 256) && (n_ch < 3 || !memcmp(lut[0], lut[2], 256)))) {
            const uint8_t *l = lut[0];
            for (size_t i = 0; i < npix * n_ch; i++)
                d[i] = l[d[i]];
            return;
        }
        if (n_ch == 3) {
            for (size_t i = 0; i < npix; i++, d += 3)
                d[0] = lut[0][d[0]], d[1] = lut[1][d[1]], d[2] = lut[2][d[2]];
            return;
        }
    }
    if (planar(p)) {
        for (int k = 0; k < n_ch; k++) {
            uint8_t *q = d + k * p->sc;
            for (size_t i = 0; i < npix; i++)
                q[i] = lut[k][q[i]];
        }
        return;
    }
    for (int k = 0; k < n_ch; k++)
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                uint8_t *v = &PIX(p, x, y, k);
                *v = lut[k][*v];
            }
}

static void histogram(const struct fr_aug_plane *p, int k, uint32_t h[256])
{
    memset(h, 0, 256 * sizeof *h);
    if (interleaved(p) || planar(p)) {
        const uint8_t *q = (const uint8_t *)p->data + k * p->sc;
        const ptrdiff_t step = interleaved(p) ? p->c : 1;
        const size_t npix = (size_t)p->h * p->w;
        for (size_t i = 0; i < npix; i++)
            h[q[i * step]]++;
        return;
    }
    for (int y = 0; y < p->h; y++)
        for (int x = 0; x < p->w; x++)
            h[PIX(p, x, y, k)]++;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_AUG_CLONES __attribute__((target_clones("avx2", "default"))) /* wider vectors, same IEEE ops */
#else
#define FR_AUG_CLONES
#endif

/* one row of PIL's SMOOTH filter blended with the original, on interleaved pixels (neighbours at ±c): the
 * smoothed value is fr_aug_smooth_value of the integer weighted sum, in 16-bit lanes; PIL's float blend is clipped
 * in the integer domain (the same result as fr_aug_blend_u8, without float branches) */
FR_AUG_CLONES
static void sharp_row(uint8_t *restrict o, const uint8_t *restrict r0, const uint8_t *restrict r1,
                      const uint8_t *restrict r2, ptrdiff_t n, int c, float f)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        uint16_t S = (uint16_t)(r0[i - c] + r0[i] + r0[i + c] + r1[i - c] + 5 * r1[i] + r1[i + c] + r2[i - c] + r2[i] +
                                r2[i + c]);
        int sm = (uint16_t)(2 * S + 13) / 26;
        float t = (float)sm + f * (float)((int)r1[i] - sm);
        t = t > -1.0f ? t : -1.0f; /* keeps the int conversion in range; anything <= 0 ends as 0 */
        t = t < 256.0f ? t : 256.0f;
        int ti = (int)t;
        o[i] = (uint8_t)(ti < 0 ? 0 : ti > 255 ? 255 : ti);
    }
}

/* PIL's ImageEnhance.Sharpness: out = blend(SMOOTH(in), in, f) inside, in's border pixels as they are; in and out
 * are different images of the same size */
static void sharpness(const struct fr_aug_plane *in, const struct fr_aug_plane *out, int n_ch, float f)
{
    const int w = in->w, h = in->h;
    fr_aug_copy_plane(in, out);
    if (w < 3 || h < 3)
        return; /* PIL copies borders: nothing is smoothed */
    if (interleaved(in) && interleaved(out) && n_ch == in->c) {
        const int c = in->c;
        const ptrdiff_t row = (ptrdiff_t)w * c;
        const uint8_t *s = in->data;
        uint8_t *d = out->data;
        for (int y = 1; y < h - 1; y++)
            sharp_row(d + y * row + c, s + (y - 1) * row + c, s + y * row + c, s + (y + 1) * row + c, row - 2 * c, c, f);
        return;
    }
    for (int k = 0; k < n_ch; k++)
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) {
                int S = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        S += PIX(in, x + dx, y + dy, k) * (dx == 0 && dy == 0 ? 5 : 1);
                PIX(out, x, y, k) = fr_aug_blend_u8(fr_aug_smooth_value(S), PIX(in, x, y, k), f);
            }
}

/* blends one chunk of interleaved bytes with their pixel's grey value L (one per byte); PIL's float blend
 * with the clipping done in the integer domain (the same result) so that the loop vectorises */
FR_AUG_CLONES
static void blend_chunk(uint8_t *restrict q, const uint8_t *restrict L, int n, float f)
{
    for (int j = 0; j < n; j++) {
        float t = (float)L[j] + f * (float)((int)q[j] - (int)L[j]);
        t = t > -1.0f ? t : -1.0f; /* keeps the int conversion in range; anything <= 0 ends as 0 */
        t = t < 256.0f ? t : 256.0f;
        int ti = (int)t;
        q[j] = (uint8_t)(ti < 0 ? 0 : ti > 255 ? 255 : ti);
    }
}

/* grey values of n interleaved RGB pixels, each written three times (one per byte of its pixel) */
FR_AUG_CLONES
static void luma3_chunk(const uint8_t *restrict r, uint8_t *restrict L, int n)
{
    for (int j = 0; j < n; j++) {
        uint8_t l = fr_aug_luma(r[3 * j], r[3 * j + 1], r[3 * j + 2]);
        L[3 * j] = l, L[3 * j + 1] = l, L[3 * j + 2] = l;
    }
}

/* the sum of the grey values of n <= 4096 interleaved RGB pixels (fits 32 bits) */
FR_AUG_CLONES
static uint32_t luma_sum_chunk(const uint8_t *restrict r, int n)
{
    uint32_t s = 0;
    for (int j = 0; j < n; j++)
        s += fr_aug_luma(r[3 * j], r[3 * j + 1], r[3 * j + 2]);
    return s;
}

static uint64_t luma_sum_rgb(const uint8_t *q, size_t npix)
{
    uint64_t total = 0;
    for (size_t i = 0; i < npix; i += 4096)
        total += luma_sum_chunk(q + 3 * i, (int)(npix - i < 4096 ? npix - i : 4096));
    return total;
}

/* PIL's ImageEnhance.Color on interleaved RGB: grey values of a chunk of pixels, then one vector blend */
static void color_rgb(uint8_t *q, size_t npix, float f)
{
    enum { CHUNK = 256 };
    uint8_t L[3 * CHUNK];
    for (size_t i = 0; i < npix; i += CHUNK) {
        int n = (int)(npix - i < CHUNK ? npix - i : CHUNK);
        luma3_chunk(q + 3 * i, L, n);
        blend_chunk(q + 3 * i, L, 3 * n, f);
    }
}


/* Runs one colour record from `in` into `out` (the same image, or another of the same size: LUT ops then map
 * straight from in, other ops copy first; sharpness needs two different images). */
enum fr_status fr_aug_color_op(const struct fr_aug_plane *in, const struct fr_aug_plane *p, const float *rec)
{
    const int code = (int)rec[FR_AUG_R_CODE];
    const float a = rec[FR_AUG_R_ARG];
    if (p->type != FR_U8 || in->type != FR_U8)
        return fr_error(FR_STATUS_UNSUPPORTED, "augment: %s: colour ops need u8 images",
                        fr_aug_code_name((enum fr_aug_code)code));
    if ((unsigned)code >= FR_AUG_CODE_COUNT || code == FR_AUG_CODE_WARP)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: unknown op code %d in a program record", code);
    if (in->h != p->h || in->w != p->w || in->c != p->c)
        return fr_error(FR_STATUS_SHAPE, "augment: %s: source and destination differ in size",
                        fr_aug_code_name((enum fr_aug_code)code));
    if (code == FR_AUG_CODE_SHARPNESS) {
        if (in->data == p->data)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: sharpness cannot run in place");
        sharpness(in, p, fr_aug_color_channels(p->c), a);
        return FR_STATUS_OK;
    }
    if (in->data != p->data && !(fr_aug_is_lut_op(code) && interleaved(in) && interleaved(p) && (p->c == 1 || p->c == 3))) {
        fr_aug_copy_plane(in, p);
        in = p;
    }
    const int c = p->c, nc = fr_aug_color_channels(c);
    uint8_t lut[4][256];
    switch (code) {
    case FR_AUG_CODE_IDENTITY:
        if (in->data != p->data)
            fr_aug_copy_plane(in, p);
        return FR_STATUS_OK;
    case FR_AUG_CODE_CONTRAST:
    case FR_AUG_CODE_CONTRAST_TF:
    case FR_AUG_CODE_BRIGHTNESS:
    case FR_AUG_CODE_POSTERIZE:
    case FR_AUG_CODE_SOLARIZE:
    case FR_AUG_CODE_SOLARIZE_ADD:
    case FR_AUG_CODE_INVERT: {
        int mean = 0;
        const int64_t npix = (int64_t)p->h * p->w;
        if (code == FR_AUG_CODE_CONTRAST) { /* the mean of the grey image: exact integer sums, as PIL */
            uint64_t sum = 0;
            if (interleaved(in) && c == 3)
                sum = luma_sum_rgb(in->data, (size_t)npix);
            else
                for (int y = 0; y < p->h; y++)
                    for (int x = 0; x < p->w; x++)
                        sum += (uint64_t)(nc >= 3 ? fr_aug_luma(PIX(in, x, y, 0), PIX(in, x, y, 1), PIX(in, x, y, 2))
                                                  : PIX(in, x, y, 0));
            mean = fr_aug_contrast_mean(sum, npix);
        } else if (code == FR_AUG_CODE_CONTRAST_TF)
            mean = fr_aug_contrast_tf_mean(npix);
        for (int i = 0; i < 256; i++)
            lut[0][i] = lut[1][i] = lut[2][i] = (uint8_t)fr_aug_lut_point(code, a, rec[FR_AUG_R_THRESH], mean, i);
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    }
    case FR_AUG_CODE_COLOR:
        if (nc < 3)
            return FR_STATUS_OK; /* grey image: the grey version is itself */
        if (interleaved(p) && c == 3) {
            color_rgb(p->data, (size_t)p->h * p->w, a);
            return FR_STATUS_OK;
        }
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                uint8_t *q = &PIX(p, x, y, 0);
                int l = fr_aug_luma(q[0], q[p->sc], q[2 * p->sc]);
                for (int k = 0; k < 3; k++)
                    q[k * p->sc] = fr_aug_blend_u8(l, q[k * p->sc], a);
            }
        return FR_STATUS_OK;
    case FR_AUG_CODE_AUTOCONTRAST:
    case FR_AUG_CODE_EQUALIZE:
        if (interleaved(in) && nc == 3 && c == 3) { /* the three histograms in one pass over the pixels */
            /* two banks (even and odd pixels): neighbours often share a value, and one bank would make each
             * increment wait for the previous one's store */
            static _Thread_local uint32_t h3[3][256], h3b[3][256];
            memset(h3, 0, sizeof h3);
            memset(h3b, 0, sizeof h3b);
            const uint8_t *q = in->data;
            size_t i = 0, n = (size_t)p->h * p->w;
            for (; i + 1 < n; i += 2, q += 6) {
                h3[0][q[0]]++, h3[1][q[1]]++, h3[2][q[2]]++;
                h3b[0][q[3]]++, h3b[1][q[4]]++, h3b[2][q[5]]++;
            }
            if (i < n)
                h3[0][q[0]]++, h3[1][q[1]]++, h3[2][q[2]]++;
            for (int k = 0; k < 3; k++)
                for (int v = 0; v < 256; v++)
                    h3[k][v] += h3b[k][v];
            for (int k = 0; k < 3; k++)
                if (code == FR_AUG_CODE_EQUALIZE)
                    fr_aug_lut_equalize(h3[k], lut[k]);
                else
                    fr_aug_lut_autocontrast(h3[k], lut[k]);
        } else
            for (int k = 0; k < nc; k++) {
                uint32_t h[256];
                histogram(in, k, h);
                if (code == FR_AUG_CODE_EQUALIZE)
                    fr_aug_lut_equalize(h, lut[k]);
                else
                    fr_aug_lut_autocontrast(h, lut[k]);
            }
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    case FR_AUG_CODE_GRAYSCALE:
        if (nc < 3)
            return FR_STATUS_OK;
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                uint8_t *q = &PIX(p, x, y, 0);
                uint8_t l = (uint8_t)fr_aug_luma(q[0], q[p->sc], q[2 * p->sc]);
                q[0] = q[p->sc] = q[2 * p->sc] = l;
            }
        return FR_STATUS_OK;
    case FR_AUG_CODE_NOISE: {
        fr_u32 k0 = (fr_u32)rec[FR_AUG_R_KEY] | ((fr_u32)rec[FR_AUG_R_KEY + 1] << 24), k1 = (fr_u32)rec[FR_AUG_R_KEY + 2];
        int64_t i = 0;
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++)
                for (int k = 0; k < nc; k++, i++) {
                    fr_philox4 r = fr_rng_block(k0, k1, FR_RNG_NOISE, 0, 0, (fr_u32)(i / 2));
                    PIX(p, x, y, k) = fr_aug_noise_u8(PIX(p, x, y, k), a, fr_aug_gauss(r.v[0], r.v[1], (int)(i & 1)));
                }
        return FR_STATUS_OK;
    }
    case FR_AUG_CODE_CUTOUT: {
        int x0 = fr_aug_max_int((int)rec[FR_AUG_R_BOX], 0), y0 = fr_aug_max_int((int)rec[FR_AUG_R_BOX + 1], 0);
        int x1 = fr_aug_min_int((int)rec[FR_AUG_R_BOX + 2], p->w), y1 = fr_aug_min_int((int)rec[FR_AUG_R_BOX + 3], p->h);
        uint8_t fill = fr_aug_fill_u8(a);
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                for (int k = 0; k < nc; k++)
                    PIX(p, x, y, k) = fill;
        return FR_STATUS_OK;
    }
    default:
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: unknown op code %d in a program record", code);
    }
}

enum fr_status fr_aug_color_plane(const struct fr_aug_plane *p, const float *rec, uint8_t *scratch)
{
    if ((int)rec[FR_AUG_R_CODE] != FR_AUG_CODE_SHARPNESS)
        return fr_aug_color_op(p, p, rec);
    struct fr_aug_plane t = *p; /* sharpness reads a copy */
    t.data = scratch;
    fr_aug_copy_plane(p, &t);
    return fr_aug_color_op(&t, p, rec);
}
