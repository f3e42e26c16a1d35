/* Images: decoding (libjpeg-turbo for JPEG when built with it, stb_image otherwise and for PNG/BMP), header
 * probes, channel conversion and Pillow-convention resampling of crop windows (resize, centre/random crops, flips). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "frugal_config.h"

#if FRUGAL_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

/* stb_image compiled privately (static) so that only the formats we accept are reachable, the fuzz build
 * instruments the decoder too, and nothing clashes with libstb or another file's copy. */
#if defined(__GNUC__)
/* stays off for the whole file: the check for unused static functions runs at its end */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
/* zeroed allocations: a JPEG that uses a Huffman table it never defined meets zeros (a decode error) instead of
 * what the heap held, which stb 2.27 (Debian 12) trusts without a bounds check (found by fuzz_image) */
#define STBI_MALLOC(sz) calloc(1, sz)
#define STBI_REALLOC(p, newsz) realloc(p, newsz)
#define STBI_FREE(p) free(p)
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS 16384
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Largest decoded image accepted (pixels): a small file cannot make us allocate gigabytes. Fuzz builds use a lower
 * bound so that each input decodes in milliseconds. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define FR_IMAGE_MAX_PIXELS (1ll << 22)
#else
#define FR_IMAGE_MAX_PIXELS (64ll << 20)
#endif

/* stb_image reallocates its buffer to a PNG chunk's declared length before reading it, so a 100-byte file that
 * declares a 2 GiB IDAT costs a 2 GiB allocation: reject chunks longer than the file first. */
static bool png_chunks_fit(const uint8_t *p, size_t size)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size < 8 || memcmp(p, sig, 8) != 0)
        return true; /* not a PNG: nothing to check here */
    size_t pos = 8;
    while (size - pos >= 12) {
        uint32_t len = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 | (uint32_t)p[pos + 2] << 8 | p[pos + 3];
        if (len > size - pos - 12)
            return false;
        if (!memcmp(p + pos + 4, "IEND", 4))
            return true;
        pos += 12 + (size_t)len;
    }
    return true; /* a missing IEND is stb_image's to report */
}

static bool is_jpeg(const uint8_t *p, size_t size) { return size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff; }

/* --- channel conversion --- */

static void convert_channels(const uint8_t *src, int sc, uint8_t *dst, int dc, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *s = src + i * (size_t)sc;
        uint8_t *d = dst + i * (size_t)dc;
        uint8_t grey, alpha = 255;
        if (sc <= 2) {
            grey = s[0];
            if (sc == 2)
                alpha = s[1];
        } else {
            grey = (uint8_t)((s[0] * 77 + s[1] * 150 + s[2] * 29) >> 8);
            if (sc == 4)
                alpha = s[3];
        }
        switch (dc) {
        case 1: d[0] = grey; break;
        case 2: d[0] = grey; d[1] = alpha; break;
        case 3:
        case 4:
            if (sc >= 3) {
                d[0] = s[0], d[1] = s[1], d[2] = s[2];
            } else {
                d[0] = d[1] = d[2] = grey;
            }
            if (dc == 4)
                d[3] = alpha;
            break;
        default: break;
        }
    }
}

/* --- resampling (Pillow's ImagingResample conventions: separable, triangle filter widened by the shrink factor,
 * 22-bit fixed-point weights, horizontal pass first into u8, taps clamped to the crop window) --- */

#define PREC_BITS 22

struct taps {
    int *first, *count; /* per output pixel: first source index and number of taps */
    int32_t *k;         /* per output pixel: `ksize` weights */
    int ksize;
};

static void taps_free(struct taps *t)
{
    free(t->first);
    free(t->count);
    free(t->k);
}

/* Taps mapping source positions [lo, lo + len) (a crop box; lo and len may have fractions) onto `out` pixels, reading
 * only pixels [floor(lo), ceil(lo + len)) of a row or column of `size`. */
static bool taps_make(double lo, double len, int size, int out, enum fr_resize mode, struct taps *t)
{
    /* relative to the box's first whole pixel: an integer box gives Pillow's numbers for crop + resize exactly */
    int base = (int)floor(lo), end = (int)ceil(lo + len);
    end = end > size ? size : end;
    int span = end - base;
    double frac = lo - base;
    double scale = len / out, fscale = scale > 1 ? scale : 1, support = mode == FR_RESIZE_NEAREST ? 0.5 : fscale;
    t->ksize = mode == FR_RESIZE_NEAREST ? 1 : (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * (size_t)out);
    t->count = malloc(sizeof(int) * (size_t)out);
    t->k = malloc(sizeof(int32_t) * (size_t)out * t->ksize);
    double *w = malloc(sizeof(double) * (size_t)t->ksize);
    if (!t->first || !t->count || !t->k || !w) {
        free(w);
        taps_free(t);
        return false;
    }
    for (int x = 0; x < out; x++) {
        double center = frac + (x + 0.5) * scale;
        int32_t *kk = t->k + (size_t)x * t->ksize;
        if (mode == FR_RESIZE_NEAREST) {
            int s = (int)center;
            t->first[x] = base + (s < span ? s : span - 1);
            t->count[x] = 1;
            kk[0] = 1 << PREC_BITS;
            continue;
        }
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        xmin = xmin < 0 ? 0 : xmin;
        xmax = (xmax > span ? span : xmax) - xmin;
        double sum = 0;
        for (int i = 0; i < xmax; i++) {
            double d = fabs((i + xmin - center + 0.5) / fscale);
            w[i] = d < 1 ? 1 - d : 0;
            sum += w[i];
        }
        for (int i = 0; i < xmax; i++) {
            double v = sum != 0 ? w[i] / sum : 0;
            kk[i] = (int32_t)(v < 0 ? v * (1 << PREC_BITS) - 0.5 : v * (1 << PREC_BITS) + 0.5);
        }
        t->first[x] = base + xmin;
        t->count[x] = xmax;
    }
    free(w);
    return true;
}

static inline uint8_t clip8(int32_t v)
{
    v = (v + (1 << (PREC_BITS - 1))) >> PREC_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FR_IMG_CLONES __attribute__((target_clones("avx2", "default"))) /* wider vectors, same integer sums */
#else
#define FR_IMG_CLONES
#endif

/* One horizontal pass over `rows` rows starting at `row0`: src rows of sw pixels → dst rows of dw pixels. */
FR_IMG_CLONES static void pass_h(const uint8_t *src, int sw, int c, int row0, int rows, const struct taps *t, bool flip,
                                 uint8_t *dst, int dw)
{
    const int ks = t->ksize;
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)(row0 + y) * sw * c;
        uint8_t *d = dst + (size_t)y * dw * c;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = t->k + (size_t)x * ks;
            const uint8_t *p = s + (size_t)t->first[x] * c;
            uint8_t *o = d + (size_t)(flip ? dw - 1 - x : x) * c;
            const int n = t->count[x];
            if (c == 3) {
                int32_t a0 = 0, a1 = 0, a2 = 0;
                int i = 0;
                for (; i + 1 < n; i += 2, p += 6) /* two taps a step: fewer loop-carried adds */
                    a0 += k[i] * p[0] + k[i + 1] * p[3], a1 += k[i] * p[1] + k[i + 1] * p[4],
                        a2 += k[i] * p[2] + k[i + 1] * p[5];
                if (i < n)
                    a0 += k[i] * p[0], a1 += k[i] * p[1], a2 += k[i] * p[2];
                o[0] = clip8(a0), o[1] = clip8(a1), o[2] = clip8(a2);
            } else if (c == 1) {
                int32_t a = 0;
                for (int i = 0; i < n; i++)
                    a += k[i] * p[i];
                o[0] = clip8(a);
            } else {
                for (int ch = 0; ch < c; ch++) {
                    int32_t a = 0;
                    for (int i = 0; i < n; i++)
                        a += k[i] * p[(size_t)i * c + ch];
                    o[ch] = clip8(a);
                }
            }
        }
    }
}

/* One vertical pass: src rows (row `first[y] - base` of a buffer of rows `stride` bytes long) → dst rows; acc holds
 * `stride` sums (a row at a time, so that the loops over a row vectorise). */
FR_IMG_CLONES static void pass_v(const uint8_t *src, size_t stride, int base, const struct taps *t, int dh, uint8_t *dst,
                                 int32_t *acc)
{
    for (int y = 0; y < dh; y++) {
        const int32_t *k = t->k + (size_t)y * t->ksize;
        const uint8_t *s = src + (size_t)(t->first[y] - base) * stride;
        uint8_t *d = dst + (size_t)y * stride;
        int n = t->count[y];
        for (size_t x = 0; x < stride; x++)
            acc[x] = 1 << (PREC_BITS - 1);
        for (int i = 0; i < n; i++) {
            const int32_t ki = k[i];
            const uint8_t *r = s + (size_t)i * stride;
            for (size_t x = 0; x < stride; x++)
                acc[x] += ki * r[x];
        }
        for (size_t x = 0; x < stride; x++) {
            int32_t v = acc[x] >> PREC_BITS;
            d[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

enum fr_status fr_img_resample_box(const uint8_t *src, int sc, int sh, int sw, const double box[4], bool flip,
                                   uint8_t *dst, int dc, int dh, int dw, enum fr_resize mode)
{
    double top = box[0], left = box[1], bh = box[2], bw = box[3];
    /* the whole pixels the box touches */
    int r0 = (int)floor(top), r1 = (int)ceil(top + bh), c0 = (int)floor(left), c1 = (int)ceil(left + bw);
    r1 = r1 > sh ? sh : r1, c1 = c1 > sw ? sw : c1;
    bool need_h = left != 0 || bw != sw || dw != sw || flip, need_v = top != 0 || bh != sh || dh != sh;
    /* the channel conversion runs on whichever side has fewer pixels */
    bool conv_first = sc != dc && (size_t)(r1 - r0) * (c1 - c0) < (size_t)dh * dw;
    int c = conv_first ? dc : sc;
    uint8_t *conv = NULL, *tmp = NULL, *out = dst;
    int32_t *acc = NULL;
    struct taps th = {0}, tv = {0};
    enum fr_status st = FR_STATUS_OK;
    if (!need_h && !need_v) {
        if (sc == dc)
            memcpy(dst, src, (size_t)sh * sw * sc);
        else
            convert_channels(src, sc, dst, dc, (size_t)sh * sw);
        return FR_STATUS_OK;
    }
    if (conv_first) { /* convert the box's pixels only, into rows 0.. */
        if (!(conv = malloc((size_t)(r1 - r0) * sw * dc)))
            goto oom;
        for (int y = r0; y < r1; y++)
            convert_channels(src + ((size_t)y * sw + c0) * sc, sc, conv + ((size_t)(y - r0) * sw + c0) * dc, dc,
                             (size_t)(c1 - c0));
        src = conv;
        top -= r0, r1 -= r0, r0 = 0;
    }
    if (c != dc && !(out = malloc((size_t)dh * dw * c)))
        goto oom;
    if ((need_h && !taps_make(left, bw, sw, dw, mode, &th)) || (need_v && !taps_make(top, bh, r1, dh, mode, &tv)))
        goto oom;
    if (need_v && !(acc = malloc(sizeof(int32_t) * (size_t)(need_h ? dw : sw) * c)))
        goto oom;
    if (need_h && need_v) {
        /* horizontal pass on the rows the vertical taps read */
        int y0 = tv.first[0], y1 = tv.first[0] + tv.count[0];
        for (int y = 0; y < dh; y++) {
            y0 = tv.first[y] < y0 ? tv.first[y] : y0;
            y1 = tv.first[y] + tv.count[y] > y1 ? tv.first[y] + tv.count[y] : y1;
        }
        if (!(tmp = malloc((size_t)(y1 - y0) * dw * c)))
            goto oom;
        pass_h(src, sw, c, y0, y1 - y0, &th, flip, tmp, dw);
        pass_v(tmp, (size_t)dw * c, y0, &tv, dh, out, acc);
    } else if (need_h) {
        pass_h(src, sw, c, r0, dh, &th, flip, out, dw);
    } else { /* vertical only: the box spans whole rows */
        pass_v(src, (size_t)sw * c, 0, &tv, dh, out, acc);
    }
    if (c != dc)
        convert_channels(out, c, dst, dc, (size_t)dh * dw);
    goto done;
oom:
    st = fr_error(FR_STATUS_OUT_OF_MEMORY, "out of memory resampling %gx%g to %dx%d", bh, bw, dh, dw);
done:
    taps_free(&th);
    taps_free(&tv);
    free(conv);
    free(tmp);
    free(acc);
    if (out != dst)
        free(out);
    return st;
}

enum fr_status fr_img_resample(const uint8_t *src, int sc, int sh, int sw, const int win[4], bool flip, uint8_t *dst,
                               int dc, int dh, int dw, enum fr_resize mode)
{
    const double box[4] = {win[0], win[1], win[2], win[3]};
    return fr_img_resample_box(src, sc, sh, sw, box, flip, dst, dc, dh, dw, mode);
}

void fr_img_center_window(int sh, int sw, int dh, int dw, int win[4])
{
    /* the largest window of the output's aspect ratio: the shorter side (relative to the output) spans the image */
    double s = (double)dh / sh > (double)dw / sw ? (double)dh / sh : (double)dw / sw;
    int wh = (int)lrint(dh / s), ww = (int)lrint(dw / s);
    wh = wh < 1 ? 1 : wh > sh ? sh : wh;
    ww = ww < 1 ? 1 : ww > sw ? sw : ww;
    win[0] = (sh - wh) / 2, win[1] = (sw - ww) / 2, win[2] = wh, win[3] = ww;
}

void fr_rrc_window(int h, int w, const float scale[2], const float ratio[2], double (*uniform)(void *ctx, uint32_t k),
                   void *ctx, int win[4])
{
    double area = (double)h * w, lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (uint32_t t = 0; t < 10; t++) {
        double target = area * (scale[0] + uniform(ctx, 4 * t) * (scale[1] - scale[0]));
        double ar = exp(lr0 + uniform(ctx, 4 * t + 1) * (lr1 - lr0));
        int ww = (int)lrint(sqrt(target * ar)), hh = (int)lrint(sqrt(target / ar));
        if (ww > 0 && ww <= w && hh > 0 && hh <= h) {
            win[0] = (int)(uniform(ctx, 4 * t + 2) * (h - hh + 1));
            win[1] = (int)(uniform(ctx, 4 * t + 3) * (w - ww + 1));
            win[2] = hh, win[3] = ww;
            return;
        }
    }
    double in_ratio = (double)w / h;
    int ww = w, hh = h;
    if (in_ratio < ratio[0])
        hh = (int)lrint(ww / ratio[0]);
    else if (in_ratio > ratio[1])
        ww = (int)lrint(hh * ratio[1]);
    hh = hh < 1 ? 1 : hh > h ? h : hh;
    ww = ww < 1 ? 1 : ww > w ? w : ww;
    win[0] = (h - hh) / 2, win[1] = (w - ww) / 2, win[2] = hh, win[3] = ww;
}

void fr_image_convert(const uint8_t *src, int sc, int sh, int sw, uint8_t *dst, int dc, int dh, int dw,
                      enum fr_resize mode)
{
    int win[4] = {0, 0, sh, sw};
    if (fr_img_resample(src, sc, sh, sw, win, false, dst, dc, dh, dw, mode) != FR_STATUS_OK)
        memset(dst, 0, (size_t)dh * dw * dc); /* only out of memory; callers cannot fail here */
}

/* --- decoding --- */

static enum fr_status check_dims(const char *name, int w, int h)
{
    if (w <= 0 || h <= 0 || (int64_t)w * h > FR_IMAGE_MAX_PIXELS)
        return fr_error(FR_STATUS_FORMAT, "%s: image size %dx%d out of range", name, w, h);
    return FR_STATUS_OK;
}

static enum fr_status stb_info(const uint8_t *data, size_t size, const char *name, int *c, int *h, int *w)
{
    if (size == 0)
        return fr_error(FR_STATUS_FORMAT, "%s: empty image file", name);
    if (size > INT32_MAX)
        return fr_error(FR_STATUS_FORMAT, "%s: image file too large (%zu bytes)", name, size);
    if (!png_chunks_fit(data, size))
        return fr_error(FR_STATUS_FORMAT, "%s: corrupt PNG (a chunk is longer than the file)", name);
    if (!stbi_info_from_memory(data, (int)size, w, h, c))
        return fr_error(FR_STATUS_FORMAT, "%s: not a readable PNG/JPEG/BMP image (%s)", name, stbi_failure_reason());
    return check_dims(name, *w, *h);
}

#if FRUGAL_HAVE_TURBOJPEG
/* libjpeg-turbo through the TurboJPEG API, reduced by 1/denom (1, 2, 4, 8: the IDCT of each 8x8 block outputs
 * 8/denom pixels); any failure: the caller falls back to stb_image, which then names the problem (so both builds
 * report bad files alike). */
static bool tj_decode(const uint8_t *data, size_t size, int channels, int denom, struct fr_img *out)
{
    if (!is_jpeg(data, size) || size > ULONG_MAX)
        return false;
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return false;
    int w, h, subsamp, cs;
    bool ok = false;
    if (tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &subsamp, &cs) == 0 && cs != TJCS_CMYK &&
        cs != TJCS_YCCK && w > 0 && h > 0 && (int64_t)w * h <= FR_IMAGE_MAX_PIXELS) {
        int c = channels ? channels : cs == TJCS_GRAY ? 1 : 3;
        int pf = c == 1 || c == 2 ? TJPF_GRAY : c == 3 ? TJPF_RGB : TJPF_RGBA;
        int pc = c == 2 ? 1 : c;
        w = (w + denom - 1) / denom, h = (h + denom - 1) / denom; /* TJSCALED(dim, 1/denom) */
        uint8_t *px = malloc((size_t)w * h * pc);
        /* a warning (e.g. a truncated file decoded with grey filling) is an error: the image is not what was stored */
        if (px && tjDecompress2(tj, data, (unsigned long)size, px, w, 0, h, pf, TJFLAG_STOPONWARNING) == 0) {
            if (c == 2) { /* grey + opaque alpha */
                uint8_t *ga = malloc((size_t)w * h * 2);
                if (ga)
                    convert_channels(px, 1, ga, 2, (size_t)w * h);
                free(px);
                px = ga;
            }
            if (px) {
                out->px = px, out->c = c, out->h = h, out->w = w;
                px = NULL;
                ok = true;
            }
        }
        free(px);
    }
    tjDestroy(tj);
    return ok;
}
#endif

enum fr_status fr_img_info(const uint8_t *data, size_t size, const char *name, int *c, int *h, int *w)
{
#if FRUGAL_HAVE_TURBOJPEG
    /* libjpeg-turbo reads JPEGs stb_image does not (arithmetic coding, 12-bit): ask the decoder that will decode */
    tjhandle tj = is_jpeg(data, size) && size <= ULONG_MAX ? tjInitDecompress() : NULL;
    if (tj) {
        int subsamp, cs;
        int ok = tjDecompressHeader3(tj, data, (unsigned long)size, w, h, &subsamp, &cs) == 0 && cs != TJCS_CMYK &&
                 cs != TJCS_YCCK;
        tjDestroy(tj);
        if (ok) {
            *c = cs == TJCS_GRAY ? 1 : 3;
            return check_dims(name, *w, *h);
        }
    }
#endif
    return stb_info(data, size, name, c, h, w);
}

enum fr_status fr_img_decode_reduced(const uint8_t *data, size_t size, const char *name, int channels, int denom,
                                     struct fr_img *out)
{
    memset(out, 0, sizeof *out);
    if (channels < 0 || channels > 4)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: bad channel count %d", name, channels);
#if FRUGAL_HAVE_TURBOJPEG
    if (tj_decode(data, size, channels, denom == 2 || denom == 4 || denom == 8 ? denom : 1, out))
        return FR_STATUS_OK;
#else
    (void)denom;
#endif
    int iw, ih, ic;
    enum fr_status st = stb_info(data, size, name, &ic, &ih, &iw);
    if (st != FR_STATUS_OK)
        return st;
    int dc = channels ? channels : ic;
    int sw, sh, sc;
    uint8_t *img = stbi_load_from_memory(data, (int)size, &sw, &sh, &sc, dc);
    if (!img)
        return fr_error(FR_STATUS_FORMAT, "%s: cannot decode image (%s)", name, stbi_failure_reason());
    /* stb allocates with plain malloc (STBI_MALLOC default), so callers free() it */
    out->px = img, out->c = dc, out->h = sh, out->w = sw;
    return FR_STATUS_OK;
}

enum fr_status fr_img_decode(const uint8_t *data, size_t size, const char *name, int channels, struct fr_img *out)
{
    return fr_img_decode_reduced(data, size, name, channels, 1, out);
}

enum fr_status fr_image_decode(const void *data, size_t size, const char *name, int channels, int height, int width,
                               enum fr_resize mode, uint8_t **pixels, int *c, int *h, int *w)
{
    *pixels = NULL;
    if (channels < 0 || channels > 4 || height < 0 || width < 0 || (height == 0) != (width == 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: bad requested image size %dx%dx%d", name, height, width,
                        channels);
    struct fr_img im;
    enum fr_status st = fr_img_decode(data, size, name, channels, &im);
    if (st != FR_STATUS_OK)
        return st;
    int dh = height ? height : im.h, dw = width ? width : im.w;
    if (dh != im.h || dw != im.w) {
        uint8_t *out = malloc((size_t)dh * dw * im.c);
        int win[4];
        fr_img_center_window(im.h, im.w, dh, dw, win); /* as datasets (and so eval, predict, training) read it */
        st = out ? fr_img_resample(im.px, im.c, im.h, im.w, win, false, out, im.c, dh, dw, mode)
                 : fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory resizing to %dx%d", name, dh, dw);
        free(im.px);
        if (st != FR_STATUS_OK) {
            free(out);
            return st;
        }
        im.px = out;
    }
    *pixels = im.px;
    *c = im.c;
    *h = dh;
    *w = dw;
    return FR_STATUS_OK;
}

enum fr_status fr_image_load(const char *path, int channels, int height, int width, enum fr_resize mode,
                             uint8_t **pixels, int *c, int *h, int *w)
{
    uint8_t *data;
    size_t size;
    *pixels = NULL;
    enum fr_status st = fr_read_file(path, &data, &size);
    if (st != FR_STATUS_OK)
        return st;
    st = fr_image_decode(data, size, path, channels, height, width, mode, pixels, c, h, w);
    free(data);
    return st;
}
