/* Image decoding (stb_image: PNG, JPEG, BMP), channel conversion and nearest/bilinear resizing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/data_internal.h"

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

static void resize(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw, enum fr_resize mode)
{
    double fy = (double)sh / dh, fx = (double)sw / dw;
    if (mode == FR_RESIZE_NEAREST) {
        for (int y = 0; y < dh; y++) {
            int sy = (int)floor((y + 0.5) * fy);
            sy = sy < sh ? sy : sh - 1;
            for (int x = 0; x < dw; x++) {
                int sx = (int)floor((x + 0.5) * fx);
                sx = sx < sw ? sx : sw - 1;
                memcpy(dst + ((size_t)y * dw + x) * c, src + ((size_t)sy * sw + sx) * c, (size_t)c);
            }
        }
        return;
    }
    for (int y = 0; y < dh; y++) {
        double syf = (y + 0.5) * fy - 0.5;
        if (syf < 0)
            syf = 0;
        int y0 = (int)syf;
        if (y0 > sh - 1)
            y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        float wy = (float)(syf - y0);
        for (int x = 0; x < dw; x++) {
            double sxf = (x + 0.5) * fx - 0.5;
            if (sxf < 0)
                sxf = 0;
            int x0 = (int)sxf;
            if (x0 > sw - 1)
                x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            float wx = (float)(sxf - x0);
            const uint8_t *p00 = src + ((size_t)y0 * sw + x0) * c, *p01 = src + ((size_t)y0 * sw + x1) * c;
            const uint8_t *p10 = src + ((size_t)y1 * sw + x0) * c, *p11 = src + ((size_t)y1 * sw + x1) * c;
            uint8_t *d = dst + ((size_t)y * dw + x) * c;
            for (int k = 0; k < c; k++) {
                float top = p00[k] + wx * (p01[k] - p00[k]);
                float bot = p10[k] + wx * (p11[k] - p10[k]);
                float v = top + wy * (bot - top);
                d[k] = (uint8_t)(v + 0.5f);
            }
        }
    }
}

void fr_image_convert(const uint8_t *src, int sc, int sh, int sw, uint8_t *dst, int dc, int dh, int dw,
                      enum fr_resize mode)
{
    size_t npix = (size_t)sh * sw;
    if (sh == dh && sw == dw) {
        if (sc == dc)
            memmove(dst, src, npix * sc);
        else
            convert_channels(src, sc, dst, dc, npix);
        return;
    }
    if (sc == dc) {
        resize(src, sh, sw, sc, dst, dh, dw, mode);
        return;
    }
    /* convert on the smaller of the two images to save work */
    if ((size_t)dh * dw < npix) {
        uint8_t *tmp = malloc((size_t)dh * dw * sc);
        if (tmp) {
            resize(src, sh, sw, sc, tmp, dh, dw, mode);
            convert_channels(tmp, sc, dst, dc, (size_t)dh * dw);
            free(tmp);
            return;
        }
    }
    uint8_t *tmp = malloc(npix * dc);
    if (!tmp) {
        memset(dst, 0, (size_t)dh * dw * dc); /* only reached when out of memory; callers cannot fail here */
        return;
    }
    convert_channels(src, sc, tmp, dc, npix);
    resize(tmp, sh, sw, dc, dst, dh, dw, mode);
    free(tmp);
}

enum fr_status fr_image_decode(const void *data, size_t size, const char *name, int channels, int height, int width,
                               enum fr_resize mode, uint8_t **pixels, int *c, int *h, int *w)
{
    *pixels = NULL;
    if (channels < 0 || channels > 4 || height < 0 || width < 0 || (height == 0) != (width == 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: bad requested image size %dx%dx%d", name, height, width,
                        channels);
    if (size == 0)
        return fr_error(FR_STATUS_FORMAT, "%s: empty image file", name);
    if (size > INT32_MAX)
        return fr_error(FR_STATUS_FORMAT, "%s: image file too large (%zu bytes)", name, size);
    if (!png_chunks_fit(data, size))
        return fr_error(FR_STATUS_FORMAT, "%s: corrupt PNG (a chunk is longer than the file)", name);
    int iw, ih, ic;
    if (!stbi_info_from_memory(data, (int)size, &iw, &ih, &ic))
        return fr_error(FR_STATUS_FORMAT, "%s: not a readable PNG/JPEG/BMP image (%s)", name, stbi_failure_reason());
    if (iw <= 0 || ih <= 0 || (int64_t)iw * ih > FR_IMAGE_MAX_PIXELS)
        return fr_error(FR_STATUS_FORMAT, "%s: image size %dx%d out of range", name, iw, ih);
    int dc = channels ? channels : ic;
    int sw, sh, sc;
    uint8_t *img = stbi_load_from_memory(data, (int)size, &sw, &sh, &sc, dc);
    if (!img)
        return fr_error(FR_STATUS_FORMAT, "%s: cannot decode image (%s)", name, stbi_failure_reason());
    int dh = height ? height : sh, dw = width ? width : sw;
    uint8_t *out = img;
    if (dh != sh || dw != sw) {
        out = malloc((size_t)dh * dw * dc);
        if (!out) {
            stbi_image_free(img);
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory resizing to %dx%d", name, dh, dw);
        }
        resize(img, sh, sw, dc, out, dh, dw, mode);
        stbi_image_free(img);
    } /* else: stb allocates with plain malloc (STBI_MALLOC default), so the caller can free() it */
    *pixels = out;
    *c = dc;
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
