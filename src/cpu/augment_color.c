/* CPU colour/pixel ops with PIL semantics on u8 images (enhance blends, posterize, solarize, equalize,
 * auto-contrast, grayscale, noise, cutout) and the per-sample program runner behind FR_OP_AUG_APPLY. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "core/threadpool.h"
#include "rng.h"

const char *fr_aug_code_name(enum fr_aug_code c)
{
    static const char *names[FR_AUG_OP_COUNT] = {
        "identity", "warp",     "brightness",   "color",    "contrast",  "sharpness", "posterize", "solarize",
        "solarize_add", "invert", "autocontrast", "equalize", "grayscale", "noise", "cutout", "contrast_tf"};
    return (unsigned)c < FR_AUG_OP_COUNT ? names[c] : "?";
}

struct fr_aug_plane fr_aug_plane_of(const struct fr_aug_images *b, int i)
{
    struct fr_aug_plane p;
    size_t es = b->type == FR_U8 ? 1 : sizeof(float);
    size_t img = (size_t)b->h * b->w * b->c;
    p.data = (char *)b->data + (size_t)i * img * es;
    p.type = b->type;
    p.h = b->h, p.w = b->w, p.c = b->c;
    if (b->layout == FR_AUG_NHWC)
        p.sc = 1, p.sx = b->c, p.sy = (ptrdiff_t)b->w * b->c;
    else
        p.sx = 1, p.sy = b->w, p.sc = (ptrdiff_t)b->w * b->h;
    return p;
}

void fr_aug_copy_plane(const struct fr_aug_plane *s, const struct fr_aug_plane *d)
{
    size_t es = s->type == FR_U8 ? 1 : sizeof(float);
    if (s->sx == d->sx && s->sy == d->sy && s->sc == d->sc) {
        memcpy(d->data, s->data, (size_t)s->h * s->w * s->c * es);
        return;
    }
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int k = 0; k < s->c; k++)
                memcpy((char *)d->data + (y * d->sy + x * d->sx + k * d->sc) * es,
                       (const char *)s->data + (y * s->sy + x * s->sx + k * s->sc) * es, es);
}

#define PIX(p, x, y, k) (((uint8_t *)(p)->data)[(y) * (p)->sy + (x) * (p)->sx + (k) * (p)->sc])

/* PIL's Image.blend(a, b, f) for one value: float arithmetic, truncation, clipping */
static inline uint8_t blend(int a, int b, float f)
{
    float t = (float)a + f * (float)(b - a);
    t = t < 0.0f ? 0.0f : t;
    t = t > 255.0f ? 255.0f : t;
    return (uint8_t)(int)t;
}

/* ITU-R 601-2 luma as PIL's RGB -> L conversion computes it */
static inline uint8_t luma(int r, int g, int b) { return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16); }

/* channels a colour op changes: alpha (4th) is kept, as PIL's enhancers keep it */
static inline int color_channels(int c) { return c == 4 ? 3 : c == 2 ? 1 : c; }

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

static void lut_equalize(const uint32_t h[256], uint8_t lut[256])
{
    int last = -1, nonempty = 0;
    uint64_t total = 0;
    for (int i = 0; i < 256; i++)
        if (h[i]) {
            last = i, nonempty++;
            total += h[i];
        }
    uint64_t step = nonempty <= 1 ? 0 : (total - h[last]) / 255;
    if (step == 0) {
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)i;
        return;
    }
    uint64_t n = step / 2;
    for (int i = 0; i < 256; i++) {
        uint64_t v = n / step;
        lut[i] = (uint8_t)(v > 255 ? 255 : v);
        n += h[i];
    }
}

static void lut_autocontrast(const uint32_t h[256], uint8_t lut[256])
{
    int lo = 0, hi = 255;
    while (lo < 256 && !h[lo])
        lo++;
    while (hi >= 0 && !h[hi])
        hi--;
    if (hi <= lo) {
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)i;
        return;
    }
    /* double precision and truncation as in PIL's ImageOps.autocontrast */
    double scale = 255.0 / (hi - lo), offset = -lo * scale;
    for (int i = 0; i < 256; i++) {
        double v = i * scale + offset;
        int iv = (int)v;
        lut[i] = (uint8_t)(iv < 0 ? 0 : iv > 255 ? 255 : iv);
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_AUG_CLONES __attribute__((target_clones("avx2", "default"))) /* wider vectors, same IEEE ops */
#else
#define FR_AUG_CLONES
#endif

/* one row of PIL's SMOOTH filter blended with the original, on interleaved pixels (neighbours at ±c).
 * PIL sums 0.5 + the 3×3 taps × (1 or 5)/13 in float and truncates. The exact value 0.5 + S/13 (S the integer
 * weighted sum, at most 3315) is never closer than 1/26 to an integer, far beyond float's rounding error there
 * (< 1e-3), so the truncation is exactly (2S + 13) / 26 in integers — which vectorises in 16-bit lanes. */
FR_AUG_CLONES
static void sharp_row(uint8_t *restrict o, const uint8_t *restrict r0, const uint8_t *restrict r1,
                      const uint8_t *restrict r2, ptrdiff_t n, int c, float f)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        uint16_t S = (uint16_t)(r0[i - c] + r0[i] + r0[i + c] + r1[i - c] + 5 * r1[i] + r1[i + c] + r2[i - c] + r2[i] +
                                r2[i + c]);
        int sm = (uint16_t)(2 * S + 13) / 26;
        /* PIL's blend, clipped in the integer domain (the same result, and no float branches) */
        float t = (float)sm + f * (float)((int)r1[i] - sm);
        t = t > -1.0f ? t : -1.0f; /* keeps the int conversion in range; anything <= 0 ends as 0 */
        t = t < 256.0f ? t : 256.0f;
        int ti = (int)t;
        o[i] = (uint8_t)(ti < 0 ? 0 : ti > 255 ? 255 : ti);
    }
}

static void smooth_then_blend(const struct fr_aug_plane *p, int n_ch, float f, uint8_t *tmp)
{
    /* tmp holds the original so that the filter reads unmodified neighbours */
    const int w = p->w, h = p->h;
    if (w < 3 || h < 3)
        return; /* PIL copies borders: nothing is smoothed */
    static const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
    if (interleaved(p) && n_ch == p->c) {
        /* neighbours sit at fixed offsets (±c, ±row): one flat loop per row, same float order as PIL */
        const int c = p->c;
        const ptrdiff_t row = (ptrdiff_t)w * c;
        uint8_t *d = p->data;
        memcpy(tmp, d, (size_t)h * row);
        for (int y = 1; y < h - 1; y++)
            sharp_row(d + y * row + c, tmp + (y - 1) * row + c, tmp + y * row + c, tmp + (y + 1) * row + c,
                      row - 2 * c, c, f);
        return;
    }
    for (int k = 0; k < n_ch; k++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                tmp[y * w + x] = PIX(p, x, y, k);
        for (int y = 1; y < h - 1; y++) {
            const uint8_t *r0 = tmp + (y - 1) * w, *r1 = tmp + y * w, *r2 = tmp + (y + 1) * w;
            for (int x = 1; x < w - 1; x++) {
                float ss = 0.5f;
                ss += (float)r2[x - 1] * k1 + (float)r2[x] * k1 + (float)r2[x + 1] * k1;
                ss += (float)r1[x - 1] * k1 + (float)r1[x] * k5 + (float)r1[x + 1] * k1;
                ss += (float)r0[x - 1] * k1 + (float)r0[x] * k1 + (float)r0[x + 1] * k1;
                int s = ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : (int)ss;
                PIX(p, x, y, k) = blend(s, r1[x], f);
            }
        }
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
        uint8_t l = luma(r[3 * j], r[3 * j + 1], r[3 * j + 2]);
        L[3 * j] = l, L[3 * j + 1] = l, L[3 * j + 2] = l;
    }
}

/* the sum of the grey values of n <= 4096 interleaved RGB pixels (fits 32 bits) */
FR_AUG_CLONES
static uint32_t luma_sum_chunk(const uint8_t *restrict r, int n)
{
    uint32_t s = 0;
    for (int j = 0; j < n; j++)
        s += luma(r[3 * j], r[3 * j + 1], r[3 * j + 2]);
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

static float gauss_pair(fr_u32 a, fr_u32 b, int second)
{
    double u1 = ((a >> 8) + 1) * (1.0 / 16777217.0), u2 = (b >> 8) * (1.0 / 16777216.0);
    double r = sqrt(-2.0 * log(u1));
    return (float)(second ? r * sin(2 * M_PI * u2) : r * cos(2 * M_PI * u2));
}

/* Runs one record on p, reading from `in`: p itself, or (first op of a program) the source image, which LUT
 * ops map straight into p instead of copying it first. */
static enum fr_status color_op(const struct fr_aug_plane *in, const struct fr_aug_plane *p, const float *rec,
                               uint8_t *scratch)
{
    int code = (int)rec[0];
    if (p->type != FR_U8)
        return fr_error(FR_STATUS_UNSUPPORTED, "augment: %s: colour ops need u8 images",
                        fr_aug_code_name((enum fr_aug_code)code));
    const int lut_op = code == FR_AUG_OP_BRIGHTNESS || code == FR_AUG_OP_CONTRAST || code == FR_AUG_OP_CONTRAST_TF ||
                       code == FR_AUG_OP_POSTERIZE || code == FR_AUG_OP_SOLARIZE || code == FR_AUG_OP_SOLARIZE_ADD ||
                       code == FR_AUG_OP_INVERT || code == FR_AUG_OP_AUTOCONTRAST || code == FR_AUG_OP_EQUALIZE;
    if (in->data != p->data && !(lut_op && interleaved(in) && interleaved(p) && in->c == p->c &&
                                 (p->c == 1 || p->c == 3) && in->h == p->h && in->w == p->w)) {
        fr_aug_copy_plane(in, p);
        in = p;
    }
    const int c = p->c, nc = color_channels(c);
    uint8_t lut[4][256];
    uint32_t h[256];
    switch (code) {
    case FR_AUG_OP_IDENTITY:
        return FR_STATUS_OK;
    case FR_AUG_OP_BRIGHTNESS:
        for (int i = 0; i < 256; i++)
            lut[0][i] = lut[1][i] = lut[2][i] = blend(0, i, rec[1]);
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    case FR_AUG_OP_CONTRAST:
    case FR_AUG_OP_CONTRAST_TF: {
        double sum = 0;
        uint32_t hist[256] = {0};
        if (interleaved(in) && c == 3 && code == FR_AUG_OP_CONTRAST) {
            sum = (double)luma_sum_rgb(in->data, (size_t)p->h * p->w); /* exact: PIL sums the same integers */
        } else if (interleaved(in) && nc >= 3) {
            const uint8_t *q = in->data;
            uint64_t isum = 0;
            for (size_t i = 0, n = (size_t)p->h * p->w; i < n; i++, q += c) {
                int l = luma(q[0], q[1], q[2]);
                isum += (uint64_t)l;
                hist[l]++;
            }
            sum = (double)isum; /* exact: PIL sums the same integers */
        } else
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                int l = nc >= 3 ? luma(PIX(in, x, y, 0), PIX(in, x, y, 1), PIX(in, x, y, 2)) : PIX(in, x, y, 0);
                sum += l;
                hist[l]++;
            }
        int mean;
        if (code == FR_AUG_OP_CONTRAST)
            mean = (int)(sum / ((double)p->h * p->w) + 0.5);
        else { /* TF's bug kept on purpose: the mean of the histogram's bin indices weighted... by nothing */
            double hs = 0;
            for (int i = 0; i < 256; i++)
                hs += hist[i];
            mean = (int)(hs / 256.0); /* tf.reduce_sum(hist)/256 as in the reference code */
            mean = mean < 0 ? 0 : mean > 255 ? 255 : mean;
        }
        for (int i = 0; i < 256; i++)
            lut[0][i] = lut[1][i] = lut[2][i] = blend(mean, i, rec[1]);
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    }
    case FR_AUG_OP_COLOR:
        if (nc < 3)
            return FR_STATUS_OK; /* grey image: the grey version is itself */
        if (interleaved(p) && c == 3) {
            color_rgb(p->data, (size_t)p->h * p->w, rec[1]);
            return FR_STATUS_OK;
        }
        if (interleaved(p)) {
            uint8_t *q = p->data;
            const float f = rec[1];
            for (size_t i = 0, n = (size_t)p->h * p->w; i < n; i++, q += c) {
                int l = luma(q[0], q[1], q[2]);
                q[0] = blend(l, q[0], f), q[1] = blend(l, q[1], f), q[2] = blend(l, q[2], f);
            }
            return FR_STATUS_OK;
        }
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                uint8_t *q = &PIX(p, x, y, 0);
                int l = luma(q[0], q[p->sc], q[2 * p->sc]);
                for (int k = 0; k < 3; k++)
                    q[k * p->sc] = blend(l, q[k * p->sc], rec[1]);
            }
        return FR_STATUS_OK;
    case FR_AUG_OP_SHARPNESS:
        smooth_then_blend(p, nc, rec[1], scratch);
        return FR_STATUS_OK;
    case FR_AUG_OP_POSTERIZE: {
        int bits = (int)rec[1];
        bits = bits < 0 ? 0 : bits > 8 ? 8 : bits;
        uint8_t mask = (uint8_t)(~((1u << (8 - bits)) - 1));
        for (int i = 0; i < 256; i++)
            lut[0][i] = lut[1][i] = lut[2][i] = (uint8_t)(i & mask);
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    }
    case FR_AUG_OP_SOLARIZE:
        for (int i = 0; i < 256; i++)
            lut[0][i] = lut[1][i] = lut[2][i] = (uint8_t)((float)i < rec[1] ? i : 255 - i);
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    case FR_AUG_OP_SOLARIZE_ADD:
        for (int i = 0; i < 256; i++) {
            int v = (float)i < rec[2] ? i + (int)rec[1] : i;
            lut[0][i] = lut[1][i] = lut[2][i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    case FR_AUG_OP_INVERT:
        for (int i = 0; i < 256; i++)
            lut[0][i] = lut[1][i] = lut[2][i] = (uint8_t)(255 - i);
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    case FR_AUG_OP_AUTOCONTRAST:
    case FR_AUG_OP_EQUALIZE:
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
                if (code == FR_AUG_OP_EQUALIZE)
                    lut_equalize(h3[k], lut[k]);
                else
                    lut_autocontrast(h3[k], lut[k]);
            apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
            return FR_STATUS_OK;
        }
        for (int k = 0; k < nc; k++) {
            histogram(in, k, h);
            if (code == FR_AUG_OP_EQUALIZE)
                lut_equalize(h, lut[k]);
            else
                lut_autocontrast(h, lut[k]);
        }
        apply_lut_from(in, p, (const uint8_t(*)[256])lut, nc);
        return FR_STATUS_OK;
    case FR_AUG_OP_GRAYSCALE:
        if (nc < 3)
            return FR_STATUS_OK;
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                uint8_t *q = &PIX(p, x, y, 0);
                uint8_t l = luma(q[0], q[p->sc], q[2 * p->sc]);
                q[0] = q[p->sc] = q[2 * p->sc] = l;
            }
        return FR_STATUS_OK;
    case FR_AUG_OP_NOISE: {
        fr_u32 k0 = (fr_u32)rec[2] | ((fr_u32)rec[3] << 24), k1 = (fr_u32)rec[4];
        int64_t i = 0;
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++)
                for (int k = 0; k < nc; k++, i++) {
                    fr_philox4 r = fr_rng_block(k0, k1, FR_RNG_NOISE, 0, 0, (fr_u32)(i / 2));
                    float z = gauss_pair(r.v[0], r.v[1], (int)(i & 1));
                    float v = (float)PIX(p, x, y, k) + rec[1] * z;
                    PIX(p, x, y, k) = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
                }
        return FR_STATUS_OK;
    }
    case FR_AUG_OP_CUTOUT: {
        int x0 = (int)rec[7], y0 = (int)rec[8], x1 = (int)rec[9], y1 = (int)rec[10];
        x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > p->w ? p->w : x1, y1 = y1 > p->h ? p->h : y1;
        float f = rec[1];
        uint8_t fill = (uint8_t)(f <= 0 ? 0 : f >= 255 ? 255 : lrintf(f));
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
    return color_op(p, p, rec, scratch);
}

/* --- the per-sample program runner --- */
#define MAX_SCRATCH_THREADS 256
struct apply_job {
    const struct fr_aug_images *in, *out;
    const float *prog;
    int k;
    void *scratch[MAX_SCRATCH_THREADS]; /* per pool thread: reused across samples (no malloc per image) */
    size_t scratch_size[MAX_SCRATCH_THREADS];
    atomic_int failed;
    pthread_mutex_t lock;
    enum fr_status status;
    char msg[256];
};

/* a WARP record: the source is first cut to the record's window (crop semantics: pixels outside it are
 * outside the image for the border rule), then resampled through the inverse map */
void fr_aug_record_map(const float *rec, int sw, int sh, double m[9], int win[4])
{
    for (int q = 0; q < 9; q++)
        m[q] = rec[7 + q];
    int x0 = (int)rec[16], y0 = (int)rec[17], x1 = (int)rec[18], y1 = (int)rec[19];
    if (x1 > x0 && y1 > y0) {
        x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > sw ? sw : x1, y1 = y1 > sh ? sh : y1;
        if (x1 <= x0 || y1 <= y0) { /* the window misses the image: everything is outside */
            x0 = y0 = 0, x1 = y1 = 1;
            fr_geom_translate(m, -1e9, -1e9);
            if (rec[2] != FR_AUG_CONSTANT)
                m[2] = m[5] = 0;
        } else if (x0 || y0) { /* window-local coordinates: subtract the window origin from the map's output */
            for (int q = 0; q < 3; q++) {
                m[q] -= x0 * m[6 + q];
                m[3 + q] -= y0 * m[6 + q];
            }
        }
    } else
        x0 = y0 = 0, x1 = sw, y1 = sh;
    win[0] = x0, win[1] = y0, win[2] = x1, win[3] = y1;
}

static enum fr_status warp_record(const struct fr_aug_plane *src, const struct fr_aug_plane *dst, const float *rec)
{
    double m[9];
    int win[4];
    fr_aug_record_map(rec, src->w, src->h, m, win);
    struct fr_aug_plane s = *src;
    size_t es = src->type == FR_U8 ? 1 : sizeof(float);
    s.data = (char *)src->data + (win[1] * src->sy + win[0] * src->sx) * (ptrdiff_t)es;
    s.w = win[2] - win[0], s.h = win[3] - win[1];
    return fr_aug_warp_plane(&s, dst, m, (enum fr_aug_interp)(int)rec[1], (enum fr_aug_border)(int)rec[2], rec[3]);
}

static enum fr_status run_sample(struct apply_job *j, int i, int thread)
{
    struct fr_aug_plane src = fr_aug_plane_of(j->in, i), dst = fr_aug_plane_of(j->out, i);
    size_t es = dst.type == FR_U8 ? 1 : sizeof(float);
    size_t bytes = (size_t)dst.h * dst.w * dst.c * es;
    void *buf = NULL;
    enum fr_status st = FR_STATUS_OK;
    int have = 0; /* the current image lives in dst */
    for (int r = 0; r < j->k && st == FR_STATUS_OK; r++) {
        const float *rec = j->prog + ((size_t)i * j->k + r) * FR_AUG_REC;
        int code = (int)rec[0];
        if (code == FR_AUG_OP_IDENTITY)
            continue;
        if (!buf) {
            size_t need = 2 * bytes; /* warp target + colour-op scratch (sharpness copies the image) */
            if (thread < MAX_SCRATCH_THREADS && j->scratch_size[thread] >= need)
                buf = j->scratch[thread];
            else if (thread < MAX_SCRATCH_THREADS) {
                free(j->scratch[thread]);
                j->scratch_size[thread] = 0;
                if (!(buf = j->scratch[thread] = malloc(need)))
                    return fr_error(FR_STATUS_OUT_OF_MEMORY, "augment: out of memory");
                j->scratch_size[thread] = need;
            } else if (!(buf = malloc(need)))
                return fr_error(FR_STATUS_OUT_OF_MEMORY, "augment: out of memory");
        }
        if (code == FR_AUG_OP_WARP) {
            if (!have) {
                st = warp_record(&src, &dst, rec);
            } else {
                struct fr_aug_plane tmp = dst;
                tmp.data = buf;
                st = warp_record(&dst, &tmp, rec);
                if (st == FR_STATUS_OK)
                    memcpy(dst.data, buf, bytes);
            }
            have = 1;
            continue;
        }
        if (!have) {
            if (src.h != dst.h || src.w != dst.w)
                return fr_error(FR_STATUS_SHAPE, "augment: sample %d: size changes need a warp as the first op", i);
            have = 1;
            st = dst.type == FR_U8 ? color_op(&src, &dst, rec, (uint8_t *)buf + bytes)
                                   : fr_aug_color_plane(&dst, rec, (uint8_t *)buf + bytes);
            continue;
        }
        st = fr_aug_color_plane(&dst, rec, (uint8_t *)buf + bytes);
    }
    if (thread >= MAX_SCRATCH_THREADS)
        free(buf);
    if (st == FR_STATUS_OK && !have) {
        if (src.h != dst.h || src.w != dst.w)
            return fr_error(FR_STATUS_SHAPE, "augment: sample %d: output size differs and no warp resizes it", i);
        fr_aug_copy_plane(&src, &dst);
    }
    return st;
}

static void apply_task(void *ctx, int64_t task, int thread)
{
    struct apply_job *j = ctx;
    if (atomic_load(&j->failed))
        return;
    enum fr_status st = run_sample(j, (int)task, thread);
    if (st != FR_STATUS_OK && !atomic_exchange(&j->failed, 1)) {
        /* fr_last_error() is per thread: carry the worker's message to the caller */
        pthread_mutex_lock(&j->lock);
        j->status = st;
        snprintf(j->msg, sizeof j->msg, "%s", fr_last_error());
        pthread_mutex_unlock(&j->lock);
    }
}

enum fr_status fr_aug_apply_host(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *prog,
                                 int k, struct fr_threadpool *pool)
{
    if (!in || !out || !in->data || !out->data || (!prog && k > 0) || k < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: apply: missing images or program");
    if (in->n != out->n || in->c != out->c || in->type != out->type || in->layout != out->layout)
        return fr_error(FR_STATUS_SHAPE, "augment: apply: input and output batches differ in n, channels, type or layout");
    if (in->c < 1 || in->c > 4 || (in->type != FR_U8 && in->type != FR_F32) || in->h < 1 || in->w < 1 || out->h < 1 ||
        out->w < 1)
        return fr_error(FR_STATUS_SHAPE, "augment: apply: images must be u8/f32 with 1-4 channels and a positive size");
    static const struct apply_job zero;
    struct apply_job j = zero;
    j.in = in, j.out = out, j.prog = prog, j.k = k, j.status = FR_STATUS_OK;
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.lock, NULL);
    if (pool)
        fr_threadpool_run(pool, in->n, apply_task, &j);
    else
        for (int i = 0; i < in->n; i++)
            apply_task(&j, i, 0);
    pthread_mutex_destroy(&j.lock);
    for (int t = 0; t < MAX_SCRATCH_THREADS; t++)
        free(j.scratch[t]);
    if (atomic_load(&j.failed))
        return fr_error(j.status, "%s", j.msg);
    return FR_STATUS_OK;
}

/* --- graph kernels --- */
#include "cpu/cpu.h"

/* a batch view of an image tensor in the op's layout */
struct fr_aug_images fr_aug_images_of(const struct fr_tensor *t, enum fr_aug_layout layout)
{
    struct fr_aug_images b = {fr_tensor_data(t), t->type, layout, (int)t->ne[0], 0, 0, 0};
    b.h = (int)(layout == FR_AUG_NHWC ? t->ne[1] : t->ne[2]);
    b.w = (int)(layout == FR_AUG_NHWC ? t->ne[2] : t->ne[3]);
    b.c = (int)(layout == FR_AUG_NHWC ? t->ne[3] : t->ne[1]);
    return b;
}

enum fr_status fr_cpu_aug_apply(struct fr_cpu_kctx *k, struct fr_tensor *dst)
{
    enum fr_aug_layout layout = (enum fr_aug_layout)dst->params[0].i;
    struct fr_aug_images in = fr_aug_images_of(dst->src[0], layout), out = fr_aug_images_of(dst, layout);
    return fr_aug_apply_host(&in, &out, fr_f32(dst->src[1]), (int)dst->src[1]->ne[1], k->pool);
}
