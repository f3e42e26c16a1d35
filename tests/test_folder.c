/* Image-folder datasets from small PNG/BMP/JPEG files written by the test: sorted classes, channel conversion,
 * resizing, corrupt files skipped or failing, unlabeled folders; on-demand reads (centre and random resized crops,
 * flips, determinism, threads, subsets), Pillow's resampling, libjpeg-turbo against stb_image, the one rule for which
 * files are images, and the CLI's --size/--channels/--on-bad-image (new-user findings 11, 18, 21, 22). */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>
/* exported by libstb but declared only in the implementation part of the header */
unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x, int y, int n, int *out_len);

#include "testutil.h"
#include "data/data_internal.h"
#include "frugal/data.h"
#include "frugal/io.h"
#include "frugal_config.h"
#if FRUGAL_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif
/* libstb's own decoder: the reference the turbojpeg build is compared with */
unsigned char *stbi_load_from_memory(const unsigned char *buffer, int len, int *x, int *y, int *comp, int req_comp);

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_create(tmpdir, sizeof tmpdir, "folder");
}

static int teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static char *tpath(const char *fmt, const char *a)
{
    static char buf[4][512];
    static int k;
    char rel[256];
    k = (k + 1) % 4;
    snprintf(rel, sizeof rel, fmt, a);
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, rel);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* 6 wide, 4 high; pixel (y, x, k) = seed + 40*y + 7*x + 3*k */
#define IW 6
#define IH 4
static void make_img(uint8_t *p, int c, int seed)
{
    for (int y = 0; y < IH; y++)
        for (int x = 0; x < IW; x++)
            for (int k = 0; k < c; k++)
                p[(y * IW + x) * c + k] = (uint8_t)(seed + 40 * y + 7 * x + 3 * k);
}

static uint8_t cat0[IH * IW * 3], cat1[IH * IW * 3], dog0[IH * IW];

/* root/a_cat/{0.png,1.bmp}, root/b_dog/0.png (grey), plus files that must be ignored */
static const char *make_tree(const char *root)
{
    static char r[512]; /* tpath's buffers rotate */
    snprintf(r, sizeof r, "%s", tpath("%s", root));
    mkdir(r, 0755);
    mkdir(tpath("%s/b_dog", root), 0755);
    mkdir(tpath("%s/a_cat", root), 0755);
    make_img(cat0, 3, 1);
    make_img(cat1, 3, 100);
    make_img(dog0, 1, 50);
    assert_true(stbi_write_png(tpath("%s/a_cat/0.png", root), IW, IH, 3, cat0, IW * 3));
    assert_true(stbi_write_bmp(tpath("%s/a_cat/1.bmp", root), IW, IH, 3, cat1));
    assert_true(stbi_write_png(tpath("%s/b_dog/0.png", root), IW, IH, 1, dog0, IW));
    write_bytes(tpath("%s/a_cat/notes.txt", root), "hello", 5);
    write_bytes(tpath("%s/a_cat/.hidden.png", root), "junk", 4);
    return r;
}

static void test_classes_sorted_native(void **state)
{
    (void)state;
    const char *root = make_tree("t1");
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", root);
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->n_classes, 2);
    assert_string_equal(ds->class_names[0], "a_cat");
    assert_string_equal(ds->class_names[1], "b_dog");
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 0);
    assert_int_equal(ds->labels[2], 1);
    assert_int_equal(ds->c, 3); /* the first image's channel count */
    assert_int_equal(ds->h, IH);
    assert_int_equal(ds->w, IW);
    assert_null(ds->pixels); /* decoded on demand */
    size_t isz = IH * IW * 3;
    uint8_t *px = tu_read_all(ds);
    assert_memory_equal(px, cat0, isz);       /* PNG is lossless */
    assert_memory_equal(px + isz, cat1, isz); /* so is BMP */
    for (int i = 0; i < IH * IW; i++)         /* grey → RGB replicates */
        for (int k = 0; k < 3; k++)
            assert_int_equal(px[2 * isz + i * 3 + k], dog0[i]);
    free(px);
    assert_non_null(strstr(ds->paths[1], "a_cat/1.bmp"));
    fr_dataset_free(ds);
}

static void test_grey_and_resize(void **state)
{
    (void)state;
    const char *root = make_tree("t2");
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.channels = 1;
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->c, 1);
    uint8_t *px = tu_read_all(ds);
    for (int i = 0; i < IH * IW; i++) {
        const uint8_t *p = cat0 + 3 * i;
        assert_int_equal(px[i], (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8); /* stb_image's luma */
    }
    assert_memory_equal(px + 2 * IH * IW, dog0, IH * IW);
    free(px);
    fr_dataset_free(ds);
    /* 4x6 → 2x3 nearest: source pixel (2y+1, 2x+1) */
    o.channels = 3, o.height = 2, o.width = 3, o.resize = FR_RESIZE_NEAREST;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->h, 2);
    assert_int_equal(ds->w, 3);
    px = tu_read_all(ds);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int k = 0; k < 3; k++)
                assert_int_equal(px[(y * 3 + x) * 3 + k], cat0[((2 * y + 1) * IW + 2 * x + 1) * 3 + k]);
    free(px);
    fr_dataset_free(ds);
    /* upscale 4x6 → 8x12 bilinear: values stay within the source range and the corners are copied */
    o.height = 8, o.width = 12, o.resize = FR_RESIZE_BILINEAR;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    px = tu_read_all(ds);
    assert_int_equal(px[0], cat0[0]);
    assert_int_equal(px[(8 * 12 - 1) * 3], cat0[(IH * IW - 1) * 3]);
    /* pixel (1,1) of the output maps to source (0.25, 0.25): 1 + 0.25*40 + 0.25*7 = 12.75 → 13 */
    assert_int_equal(px[(1 * 12 + 1) * 3], 13);
    free(px);
    fr_dataset_free(ds);
}

static int warnings;
static char last_warning[512];
static void count_log(enum fr_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == FR_LOG_WARN) {
        warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", msg);
    }
}

static void test_corrupt_image(void **state)
{
    (void)state;
    const char *root = make_tree("t3");
    /* a PNG cut in half and a text file named .jpg */
    uint8_t png[4096];
    FILE *f = fopen(tpath("t3/a_cat/0.png", NULL), "rb");
    size_t n = fread(png, 1, sizeof png, f);
    fclose(f);
    write_bytes(tpath("t3/a_cat/2.png", NULL), png, n / 2);
    write_bytes(tpath("t3/b_dog/9.jpg", NULL), "not a jpeg at all", 17);
    struct fr_dataset *ds = (void *)1;
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    /* the text file has no image header: the open says so */
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(fr_last_error(), "b_dog/9.jpg"));
    assert_null(strchr(fr_last_error(), '\n'));
    o.on_bad_image = FR_BAD_IMAGE_SKIP;
    warnings = 0;
    fr_log_set_callback(count_log, NULL);
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(warnings, 1);
    assert_non_null(strstr(last_warning, "b_dog/9.jpg"));
    /* the truncated PNG has a good header: it is found when read, named once, and replaced */
    assert_int_equal(ds->n, 4);
    assert_non_null(strstr(ds->paths[2], "a_cat/2.png"));
    int64_t idx[3] = {0, 2, 3};
    uint8_t px[3 * IH * IW * 3];
    for (int round = 0; round < 2; round++) {
        idx[1] = 2;
        assert_int_equal(fr_dataset_read(ds, idx, 3, NULL, px), FR_STATUS_OK);
        assert_int_equal(idx[1], 0); /* the image before it in the call */
        assert_memory_equal(px + IH * IW * 3, px, IH * IW * 3);
    }
    fr_log_set_callback(NULL, NULL);
    assert_int_equal(warnings, 2);
    assert_non_null(strstr(last_warning, "a_cat/2.png"));
    assert_int_equal(ds->labels[2], 0);
    fr_dataset_free(ds);
    remove(tpath("t3/b_dog/9.jpg", NULL));
    o.on_bad_image = FR_BAD_IMAGE_FAIL;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    idx[1] = 2;
    assert_int_equal(fr_dataset_read(ds, idx, 3, NULL, px), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "a_cat/2.png"));
    fr_dataset_free(ds);
    /* native size: an image of another size fails (or is skipped) unless a size is asked */
    uint8_t big[8 * 8];
    memset(big, 9, sizeof big);
    assert_true(stbi_write_png(tpath("t3/b_dog/5.png", NULL), 8, 8, 1, big, 8));
    remove(tpath("t3/a_cat/2.png", NULL));
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "8x8"));
    o.height = 4, o.width = 4;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 4);
    fr_dataset_free(ds);
}

static void test_unlabeled_and_errors(void **state)
{
    (void)state;
    char root[512];
    snprintf(root, sizeof root, "%s", tpath("%s", "flat"));
    mkdir(root, 0755);
    make_img(cat0, 3, 5);
    assert_true(stbi_write_png(tpath("flat/b.PNG", NULL), IW, IH, 3, cat0, IW * 3));
    assert_true(stbi_write_jpg(tpath("flat/a.jpeg", NULL), IW, IH, 3, cat0, 95));
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_folder_open(root, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->n_classes, 0);
    assert_int_equal(ds->labels[0], -1);
    assert_non_null(strstr(ds->paths[0], "a.jpeg")); /* sorted by name */
    uint8_t *px = tu_read_all(ds);
    for (int i = 0; i < IH * IW * 3; i++) /* JPEG at quality 95: close to the source */
        assert_true(abs(px[i] - cat0[i]) <= 12);
    assert_memory_equal(px + IH * IW * 3, cat0, IH * IW * 3);
    free(px);
    fr_dataset_free(ds);
    char empty[512];
    snprintf(empty, sizeof empty, "%s", tpath("%s", "empty"));
    mkdir(empty, 0755);
    assert_int_equal(fr_dataset_folder_open(empty, NULL, &ds), FR_STATUS_NOT_FOUND);
    assert_non_null(strstr(fr_last_error(), "empty"));
    assert_int_equal(fr_dataset_folder_open(tpath("%s", "nope"), NULL, &ds), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "nope"));
}

static void test_decode_from_memory(void **state)
{
    (void)state;
    make_img(cat0, 3, 7);
    int len;
    unsigned char *png = stbi_write_png_to_mem(cat0, IW * 3, IW, IH, 3, &len);
    assert_non_null(png);
    uint8_t *px;
    int c, h, w;
    assert_int_equal(fr_image_decode(png, (size_t)len, "m.png", 0, 0, 0, FR_RESIZE_BILINEAR, &px, &c, &h, &w),
                     FR_STATUS_OK);
    assert_int_equal(c, 3);
    assert_int_equal(h, IH);
    assert_memory_equal(px, cat0, sizeof cat0);
    free(px);
    assert_int_equal(fr_image_decode(png, 30, "m.png", 0, 0, 0, FR_RESIZE_BILINEAR, &px, &c, &h, &w),
                     FR_STATUS_FORMAT);
    assert_null(px);
    assert_non_null(strstr(fr_last_error(), "m.png"));
    assert_int_equal(fr_image_decode(png, (size_t)len, "m.png", 0, 5, 0, FR_RESIZE_BILINEAR, &px, &c, &h, &w),
                     FR_STATUS_INVALID_ARGUMENT);
    free(png);
    /* found by fuzz_image: a 1x2 PNG whose last 9 bytes are a torn chunk header (stb_image reads "IDAT" as a length
     * of 1.2 GB and reallocates to it) is refused before stb_image sees it */
    static const uint8_t torn[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06, 0x00, 0x00, 0x00, 0x99, 0x81, 0xb6, 0x27, 0x00, 0x00, 0x00,
        0x12, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x64, 0x61, 0x65, 0x66, 0x62, 0x00, 0x63, 0x60, 0xe7,
        0x00, 0x00, 0x8c, 0x08, 0x25, 0x28, 0x52, 0x82, 0x49, 0x44, 0x41, 0x54, 0x12, 0x49, 0x44, 0x41, 0x54};
    assert_int_equal(fr_image_decode(torn, sizeof torn, "torn.png", 0, 0, 0, FR_RESIZE_BILINEAR, &px, &c, &h, &w),
                     FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "torn.png: corrupt PNG"));
}


/* --- resampling: Pillow's Image.crop(box).resize(size, BILINEAR) [+ FLIP_LEFT_RIGHT], values from Pillow 9.4 --- */

static void test_resample_pillow(void **state)
{
    (void)state;
    enum { H = 10, W = 13 };
    uint8_t src[H * W * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++)
                src[(y * W + x) * 3 + k] = (uint8_t)((y * 37 + x * 11 + k * 53 + ((x * y) % 7) * 9) & 255);
    static const uint8_t crop_flip[] = { /* window top 1, left 2, 7x9 -> 4x5, flipped */
        187, 131, 51,  153, 179, 114, 157, 203, 70,  133, 186, 171, 116, 169, 163, 123, 53,  102, 147, 101,
        71,  188, 116, 54,  166, 170, 64,  177, 194, 56,  56,  109, 162, 62,  92,  145, 66,  64,  117, 81,
        60,  113, 175, 69,  86,  106, 159, 212, 87,  140, 193, 54,  107, 160, 44,  95,  148, 41,  83,  136};
    static const uint8_t shrink[] = { /* the whole 10x13 -> 3x4 */
        86, 137, 156, 125, 163, 127, 142, 152, 111, 163, 115, 105, 152, 134, 112, 114, 100, 99,
        98, 97,  122, 98,  110, 162, 75,  110, 152, 96,  146, 150, 123, 161, 138, 161, 141, 131};
    static const uint8_t grow[] = { /* window top 4, left 4, 3x3 -> 5x6 */
        210, 7,   60,  158, 19,  72,  53,  42,  95,  61,  50,  103, 181, 42,  95,  241, 38,  91,
        137, 36,  89,  105, 43,  96,  41,  55,  108, 44,  58,  111, 115, 52,  105, 150, 49,  102,
        27,  80,  133, 25,  78,  131, 22,  75,  128, 18,  71,  124, 15,  68,  121, 13,  66,  119,
        33,  86,  139, 33,  86,  139, 32,  85,  138, 31,  84,  137, 31,  84,  137, 30,  83,  136,
        37,  90,  143, 38,  91,  144, 39,  92,  145, 40,  93,  146, 41,  94,  147, 41,  94,  147};
    uint8_t out[5 * 6 * 3];
    assert_int_equal(fr_img_resample(src, 3, H, W, (int[]){1, 2, 7, 9}, true, out, 3, 4, 5, FR_RESIZE_BILINEAR),
                     FR_STATUS_OK);
    assert_memory_equal(out, crop_flip, sizeof crop_flip);
    fr_image_convert(src, 3, H, W, out, 3, 3, 4, FR_RESIZE_BILINEAR); /* the public stretch */
    assert_memory_equal(out, shrink, sizeof shrink);
    assert_int_equal(fr_img_resample(src, 3, H, W, (int[]){4, 4, 3, 3}, false, out, 3, 5, 6, FR_RESIZE_BILINEAR),
                     FR_STATUS_OK);
    assert_memory_equal(out, grow, sizeof grow);
    /* to grey on the way: stb_image's luma of the colour result */
    uint8_t grey[4 * 5];
    assert_int_equal(fr_img_resample(src, 3, H, W, (int[]){1, 2, 7, 9}, true, grey, 1, 4, 5, FR_RESIZE_BILINEAR),
                     FR_STATUS_OK);
    for (int i = 0; i < 20; i++) {
        const uint8_t *p = crop_flip + 3 * i;
        assert_true(abs(grey[i] - ((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8)) <= 1);
    }
}

/* torchvision RandomResizedCrop.get_params with given draws (hand-computed windows) */
static double seq_uniform(void *ctx, uint32_t k) { return ((const double *)ctx)[k % 8]; }

static void test_rrc_window(void **state)
{
    (void)state;
    const float scale[2] = {0.08f, 1.0f}, ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
    int win[4];
    /* area 100*200*0.08 = 1600, ratio exp(log(3/4) + 0.5*log(16/9)) = 1: 40x40; top int(0.25*61) = 15,
     * left int(0.75*161) = 120 */
    double u1[8] = {0, 0.5, 0.25, 0.75};
    fr_rrc_window(100, 200, scale, ratio, seq_uniform, u1, win);
    assert_int_equal(win[0], 15);
    assert_int_equal(win[1], 120);
    assert_int_equal(win[2], 40);
    assert_int_equal(win[3], 40);
    /* a first miss (the whole area at ratio 4/3: 163 wide, 122 high > 100) then a hit */
    double u2[8] = {1, 1, 0, 0, 0, 0.5, 0.999, 0.999};
    fr_rrc_window(100, 200, scale, ratio, seq_uniform, u2, win);
    assert_int_equal(win[2], 40); /* attempt 1 repeats u2[4..7]: 40x40 at the bottom right */
    assert_int_equal(win[0], 60);
    assert_int_equal(win[1], 160);
    /* ten misses: the central crop, ratio clamped to 4/3: 100 high, round(133.3) = 133 wide */
    const float big[2] = {2.0f, 2.0f};
    fr_rrc_window(100, 200, big, ratio, seq_uniform, u1, win);
    assert_int_equal(win[2], 100);
    assert_int_equal(win[3], 133);
    assert_int_equal(win[0], 0);
    assert_int_equal(win[1], 33);
}

/* a folder of n colour PNGs (sizes vary unless same_size) whose pixels encode (image, y, x, channel) */
static const char *make_photos(const char *name, int n, bool same_size)
{
    static char r[512];
    snprintf(r, sizeof r, "%s", tpath("%s", name));
    mkdir(r, 0755);
    char cdir[600];
    snprintf(cdir, sizeof cdir, "%s/c", r);
    mkdir(cdir, 0755);
    for (int i = 0; i < n; i++) {
        int h = same_size ? 24 : 20 + 3 * i, w = same_size ? 30 : 34 - 2 * i;
        uint8_t *p = malloc((size_t)h * w * 3);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < 3; k++)
                    p[(y * w + x) * 3 + k] = (uint8_t)(i * 40 + y * 5 + x * 3 + k * 60);
        char path[700];
        snprintf(path, sizeof path, "%s/%02d.png", cdir, i);
        assert_true(stbi_write_png(path, w, h, 3, p, w * 3));
        free(p);
    }
    return r;
}

static void test_center_crop(void **state)
{
    (void)state;
    const char *root = make_photos("cc", 1, true); /* 24 high x 30 wide */
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.height = o.width = 24;
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->c, 3); /* colour: from the headers */
    uint8_t *px = tu_read_all(ds);
    /* the shorter side already fits: the centre 24x24, columns 3..26, copied exactly */
    for (int y = 0; y < 24; y++)
        for (int x = 0; x < 24; x++)
            assert_int_equal(px[(y * 24 + x) * 3], (uint8_t)(y * 5 + (x + 3) * 3));
    free(px);
    fr_dataset_free(ds);
    /* 12x12: the same window halved (Pillow bilinear on the centre 24x24) */
    o.height = o.width = 12;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    px = tu_read_all(ds);
    uint8_t *src = NULL;
    int c, h, w;
    char path[600];
    snprintf(path, sizeof path, "%s/c/00.png", root);
    assert_int_equal(fr_image_load(path, 3, 0, 0, FR_RESIZE_BILINEAR, &src, &c, &h, &w), FR_STATUS_OK);
    uint8_t want[12 * 12 * 3];
    assert_int_equal(fr_img_resample(src, 3, 24, 30, (int[]){0, 3, 24, 24}, false, want, 3, 12, 12, FR_RESIZE_BILINEAR),
                     FR_STATUS_OK);
    assert_memory_equal(px, want, sizeof want);
    free(src);
    free(px);
    fr_dataset_free(ds);
}

/* random resized crops and flips: a function of (seed, epoch, index), whatever the batch or the threads */
static void test_random_crops(void **state)
{
    (void)state;
    const char *root = make_photos("rrc", 6, false);
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.height = o.width = 16, o.threads = 1;
    struct fr_dataset *ds, *ds3;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    o.threads = 3;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds3), FR_STATUS_OK);
    assert_int_equal(ds->n, 6);
    enum { SZ = 16 * 16 * 3 };
    struct fr_read_opts ro;
    fr_read_opts_init(&ro);
    ro.crop = FR_CROP_RANDOM, ro.seed = 7, ro.epoch = 2;
    uint8_t all[6 * SZ], one[SZ], again[6 * SZ];
    int64_t idx[6] = {0, 1, 2, 3, 4, 5};
    assert_int_equal(fr_dataset_read(ds, idx, 6, &ro, all), FR_STATUS_OK);
    int64_t i4 = 4;
    assert_int_equal(fr_dataset_read(ds, &i4, 1, &ro, one), FR_STATUS_OK);
    assert_memory_equal(one, all + 4 * SZ, SZ);
    int64_t rev[6] = {5, 4, 3, 2, 1, 0};
    assert_int_equal(fr_dataset_read(ds3, rev, 6, &ro, again), FR_STATUS_OK);
    for (int i = 0; i < 6; i++)
        assert_memory_equal(again + i * SZ, all + (5 - i) * SZ, SZ);
    /* the crop is the window fr_ds_window gives, resampled from the decoded file */
    char path[600];
    snprintf(path, sizeof path, "%s/c/04.png", root);
    uint8_t *src;
    int c, h, w, win[4];
    assert_int_equal(fr_image_load(path, 3, 0, 0, FR_RESIZE_BILINEAR, &src, &c, &h, &w), FR_STATUS_OK);
    assert_false(fr_ds_window(&ro, 4, h, w, 16, 16, win));
    assert_true(win[2] < h || win[3] < w); /* a real crop */
    uint8_t want[SZ];
    assert_int_equal(fr_img_resample(src, 3, h, w, win, false, want, 3, 16, 16, FR_RESIZE_BILINEAR), FR_STATUS_OK);
    assert_memory_equal(all + 4 * SZ, want, SZ);
    /* another epoch or seed: other crops */
    ro.epoch = 3;
    assert_int_equal(fr_dataset_read(ds, idx, 6, &ro, again), FR_STATUS_OK);
    assert_memory_not_equal(again, all, sizeof all);
    /* flips: the same windows, mirrored */
    ro.epoch = 2, ro.hflip = 1.0f;
    assert_int_equal(fr_dataset_read(ds, idx, 6, &ro, again), FR_STATUS_OK);
    for (int i = 0; i < 6; i++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                assert_memory_equal(again + i * SZ + (y * 16 + x) * 3, all + i * SZ + (y * 16 + 15 - x) * 3, 3);
    /* p = 0.5 flips some images, not all, and stays a function of the index */
    ro.hflip = 0.5f;
    int flipped = 0;
    for (int64_t i = 0; i < 64; i++) {
        int wn[4];
        flipped += fr_ds_window(&ro, i, 40, 40, 16, 16, wn);
    }
    assert_true(flipped > 16 && flipped < 48);
    /* an in-memory dataset crops its stored images the same way (a subset of IDX-like pixels) */
    ro.hflip = 0;
    struct fr_dataset *mem = calloc(1, sizeof *mem);
    mem->n = 6, mem->c = 3, mem->h = mem->w = 16;
    mem->pixels = tu_read_all(ds); /* centre crops, stored */
    mem->source = strdup("mem");
    uint8_t from_mem[6 * SZ];
    assert_int_equal(fr_dataset_read(mem, idx, 6, &ro, from_mem), FR_STATUS_OK);
    for (int i = 0; i < 6; i++) {
        assert_false(fr_ds_window(&ro, i, 16, 16, 16, 16, win));
        assert_int_equal(fr_img_resample(mem->pixels + i * SZ, 3, 16, 16, win, false, want, 3, 16, 16,
                                         FR_RESIZE_BILINEAR), FR_STATUS_OK);
        assert_memory_equal(from_mem + i * SZ, want, SZ);
    }
    /* a bad range is refused */
    ro.scale[0] = 0;
    assert_int_equal(fr_dataset_read(mem, idx, 6, &ro, from_mem), FR_STATUS_INVALID_ARGUMENT);
    free(src);
    fr_dataset_free(mem);
    fr_dataset_free(ds);
    fr_dataset_free(ds3);
}

/* finding 11 and 18: channels from every file, not the first; mixed sizes need a size and name the first misfit */
static void test_mixed_sizes_and_channels(void **state)
{
    (void)state;
    const char *root = make_tree("mixed"); /* a_cat: 2 RGB, b_dog: 1 grey, all 4x6 */
    uint8_t rgba[IH * IW * 4], grey[10 * 12];
    for (int i = 0; i < IH * IW * 4; i++)
        rgba[i] = (uint8_t)(i * 7);
    memset(grey, 77, sizeof grey);
    /* an RGBA file that sorts first, and a bigger grey one */
    assert_true(stbi_write_png(tpath("%s/a_cat/-rgba.png", "mixed"), IW, IH, 4, rgba, IW * 4));
    assert_true(stbi_write_png(tpath("%s/b_dog/z_big.png", "mixed"), 12, 10, 1, grey, 12));
    struct fr_dataset *ds = (void *)1;
    assert_int_equal(fr_dataset_folder_open(root, NULL, &ds), FR_STATUS_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(fr_last_error(), "b_dog/z_big.png: image is 10x12"));
    assert_non_null(strstr(fr_last_error(), "--size"));
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.height = 4, o.width = 6;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->c, 3); /* colour, and the alpha of the first file is no model input */
    uint8_t *px = tu_read_all(ds);
    for (int i = 0; i < IH * IW; i++) /* RGBA -> RGB keeps the colour */
        assert_memory_equal(px + 3 * i, rgba + 4 * i, 3);
    for (int i = 0; i < IH * IW * 3; i++) /* 10x12 -> 4x6 of a flat image: flat */
        assert_int_equal(px[4 * IH * IW * 3 + i], 77);
    free(px);
    fr_dataset_free(ds);
    o.channels = 4; /* alpha when asked */
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    px = tu_read_all(ds);
    assert_memory_equal(px, rgba, sizeof rgba);
    assert_int_equal(px[IH * IW * 4 + 3], 255); /* opaque where the file has no alpha */
    free(px);
    fr_dataset_free(ds);
    /* grey files only: one channel */
    char g[512];
    snprintf(g, sizeof g, "%s", tpath("%s", "greyonly"));
    mkdir(g, 0755);
    assert_true(stbi_write_png(tpath("%s/0.png", "greyonly"), 12, 10, 1, grey, 12));
    assert_true(stbi_write_png(tpath("%s/1.png", "greyonly"), 12, 10, 1, grey, 12));
    assert_int_equal(fr_dataset_folder_open(g, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->h, 10);
    fr_dataset_free(ds);
}

/* subsets of an on-demand dataset read the same files and keep the marks of known-bad ones */
static void test_subset_and_files(void **state)
{
    (void)state;
    const char *root = make_photos("sub", 4, true);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/c/02.png", root);
    uint8_t head[64];
    FILE *f = fopen(bad, "rb");
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    write_bytes(bad, head, sizeof head); /* header intact, data gone */
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.on_bad_image = FR_BAD_IMAGE_SKIP, o.height = 8, o.width = 8, o.channels = 3; /* no header scan */
    struct fr_dataset *ds, *sub;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 4);
    enum { SZ = 8 * 8 * 3 };
    uint8_t a[4 * SZ], b[3 * SZ];
    int64_t idx[4] = {0, 1, 2, 3};
    warnings = 0;
    fr_log_set_callback(count_log, NULL);
    assert_int_equal(fr_dataset_read(ds, idx, 4, NULL, a), FR_STATUS_OK);
    assert_int_equal(idx[2], 1);
    assert_int_equal(warnings, 1);
    int64_t pick[3] = {3, 2, 0}, sidx[3] = {0, 1, 2};
    assert_int_equal(fr_dataset_subset(ds, pick, 3, false, &sub), FR_STATUS_OK);
    assert_null(sub->pixels);
    assert_int_equal(fr_dataset_read(sub, sidx, 3, NULL, b), FR_STATUS_OK);
    assert_int_equal(warnings, 1); /* named once, in the parent */
    assert_int_equal(sidx[1], 0);  /* replaced by the image before it: 03.png */
    assert_memory_equal(b, a + 3 * SZ, SZ);
    assert_memory_equal(b + 2 * SZ, a, SZ);
    /* no readable image in the call: index -1, zeros */
    int64_t only = 1;
    assert_int_equal(fr_dataset_read(sub, &only, 1, NULL, b), FR_STATUS_OK);
    assert_int_equal(only, -1);
    for (int i = 0; i < SZ; i++)
        assert_int_equal(b[i], 0);
    fr_log_set_callback(NULL, NULL);
    fr_dataset_free(sub);
    fr_dataset_free(ds);
    /* a dataset of given files with labels */
    char p0[600], p1[600];
    snprintf(p0, sizeof p0, "%s/c/00.png", root);
    snprintf(p1, sizeof p1, "%s/c/01.png", root);
    char *paths[2] = {p0, p1};
    int32_t labels[2] = {1, 0};
    assert_int_equal(fr_dataset_from_files(paths, labels, 2, "two", NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n_classes, 2);
    assert_int_equal(ds->labels[0], 1);
    assert_int_equal(ds->h, 24);
    fr_dataset_free(ds);
    int64_t out_of_range = 9;
    assert_int_equal(fr_dataset_from_files(paths, labels, 2, "two", NULL, &ds), FR_STATUS_OK);
    assert_int_equal(fr_dataset_read(ds, &out_of_range, 1, NULL, a), FR_STATUS_INVALID_ARGUMENT);
    fr_dataset_free(ds);
}

/* the prefetching loader reads on-demand datasets through fr_dataset_read: same bytes, labels that follow
 * replaced images, a failure returned by fr_loader_next */
static void test_loader_on_folder(void **state)
{
    (void)state;
    const char *root = make_tree("ld"); /* a_cat/0.png, a_cat/1.bmp, b_dog/0.png */
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.channels = 3, o.height = IH, o.width = IW, o.on_bad_image = FR_BAD_IMAGE_SKIP;
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    uint8_t *all = tu_read_all(ds);
    struct fr_loader_opts lo;
    fr_loader_opts_init(&lo);
    lo.batch = 2, lo.seed = 3;
    struct fr_loader *ld;
    assert_int_equal(fr_loader_new(ds, NULL, 0, &lo, &ld), FR_STATUS_OK);
    enum { SZ = IH * IW * 3 };
    for (int e = 0; e < 2; e++) {
        assert_int_equal(fr_loader_start(ld, e, 0), FR_STATUS_OK);
        const struct fr_batch *b;
        int seen = 0;
        while (fr_loader_next(ld, &b) == FR_STATUS_OK && b) {
            for (int i = 0; i < b->n; i++) {
                assert_memory_equal(b->images + i * SZ, all + b->index[i] * SZ, SZ);
                assert_int_equal(b->labels[i], ds->labels[b->index[i]]);
            }
            seen += b->n;
        }
        assert_int_equal(seen, 3);
    }
    fr_loader_free(ld);
    /* b_dog/0.png truncated after its header: replaced by a cat in its batch, with the cat's label */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/b_dog/0.png", root);
    write_bytes(bad, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x06\0\0\0\x04\x08\x02\0\0\0", 29);
    fr_log_set_callback(count_log, NULL);
    lo.batch = 3, lo.prefetch = false;
    assert_int_equal(fr_loader_new(ds, NULL, 0, &lo, &ld), FR_STATUS_OK);
    assert_int_equal(fr_loader_start(ld, 0, 0), FR_STATUS_OK);
    const struct fr_batch *b;
    assert_int_equal(fr_loader_next(ld, &b), FR_STATUS_OK);
    assert_non_null(b);
    for (int i = 0; i < 3; i++) {
        assert_int_not_equal(b->index[i], 2);
        assert_int_equal(b->labels[i], 0);
    }
    fr_loader_free(ld);
    fr_dataset_free(ds);
    o.on_bad_image = FR_BAD_IMAGE_FAIL;
    assert_int_equal(fr_dataset_folder_open(root, &o, &ds), FR_STATUS_OK);
    lo.prefetch = true;
    assert_int_equal(fr_loader_new(ds, NULL, 0, &lo, &ld), FR_STATUS_OK);
    assert_int_equal(fr_loader_start(ld, 0, 0), FR_STATUS_OK);
    assert_int_equal(fr_loader_next(ld, &b), FR_STATUS_FORMAT);
    assert_null(b);
    assert_non_null(strstr(fr_last_error(), "b_dog/0.png"));
    fr_log_set_callback(NULL, NULL);
    fr_loader_free(ld);
    fr_dataset_free(ds);
    free(all);
}

/* finding 22: one rule for which files are images */
static void test_image_names(void **state)
{
    (void)state;
    assert_true(fr_image_name_ok("a.png"));
    assert_true(fr_image_name_ok("dir/B.JPG"));
    assert_true(fr_image_name_ok("x.jpeg"));
    assert_true(fr_image_name_ok("x.Bmp"));
    assert_false(fr_image_name_ok("x.gif"));
    assert_false(fr_image_name_ok("x.pgm"));
    assert_false(fr_image_name_ok("x.ppm"));
    assert_false(fr_image_name_ok("x.tga"));
    assert_false(fr_image_name_ok(".hidden.png"));
    assert_false(fr_image_name_ok("dir/.hidden.png"));
    assert_false(fr_image_name_ok("png"));
    char d[512];
    snprintf(d, sizeof d, "%s", tpath("%s", "names"));
    mkdir(d, 0755);
    make_img(cat0, 3, 3);
    assert_true(stbi_write_png(tpath("%s/b.png", "names"), IW, IH, 3, cat0, IW * 3));
    assert_true(stbi_write_png(tpath("%s/A.PNG", "names"), IW, IH, 3, cat0, IW * 3));
    write_bytes(tpath("%s/c.gif", "names"), "GIF89a", 6);
    write_bytes(tpath("%s/.h.png", "names"), "x", 1);
    mkdir(tpath("%s/dir.png", "names"), 0755);
    mkdir(tpath("%s/sub", "names"), 0755);
    assert_int_equal(symlink("nowhere.png", tpath("%s/link.png", "names")), 0);
    char **paths, **subs;
    int64_t n, ns;
    assert_int_equal(fr_image_list_dir(d, &paths, &n, &subs, &ns), FR_STATUS_OK);
    assert_int_equal(n, 3); /* A.PNG b.png link.png: the broken link is reported when read */
    assert_non_null(strstr(paths[0], "/A.PNG"));
    assert_non_null(strstr(paths[1], "/b.png"));
    assert_non_null(strstr(paths[2], "/link.png"));
    assert_int_equal(ns, 2);
    assert_string_equal(subs[0], "dir.png");
    assert_string_equal(subs[1], "sub");
    fr_image_list_free(paths, n);
    fr_image_list_free(subs, ns);
}

/* libjpeg-turbo and stb_image decode the same JPEG to the same grey levels within 1 (grey JPEGs and the luma of
 * colour ones at every pixel); colour channels differ by the two libraries' rounding of the IDCT and YCbCr->RGB and
 * their chroma upsampling at the right and bottom edges: bounded here away from those edges. */
static void photo(uint8_t *p, int h, int w, int c, int seed)
{
    uint32_t r = (uint32_t)seed * 2654435761u;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                r = r * 1664525u + 1013904223u;
                int v = 128 + (int)(60 * sin(0.07 * x * (k + 1) + 0.05 * y)) + (int)((r >> 28) & 15) - 8;
                if ((x / 13 + y / 11 + k) % 3 == 0) /* sharp coloured blocks */
                    v = (v + 90 * k) % 256;
                p[(y * w + x) * c + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

static void compare_decoders(const uint8_t *jpg, size_t n, int channels, int max_interior, int edge)
{
    int w, h, c;
    uint8_t *ref = stbi_load_from_memory(jpg, (int)n, &w, &h, &c, channels);
    assert_non_null(ref);
    struct fr_img im;
    assert_int_equal(fr_img_decode(jpg, n, "t.jpg", channels, &im), FR_STATUS_OK);
    assert_int_equal(im.w, w);
    assert_int_equal(im.h, h);
    int worst = 0;
    for (int y = 0; y < h - edge; y++)
        for (int x = 0; x < w - edge; x++)
            for (int k = 0; k < channels; k++) {
                int d = abs(ref[(y * w + x) * channels + k] - im.px[(y * w + x) * channels + k]);
                worst = d > worst ? d : worst;
            }
    if (worst > max_interior)
        fail_msg("%d channel(s): libjpeg-turbo and stb_image differ by %d grey levels (allowed %d)", channels, worst,
                 max_interior);
    free(ref);
    free(im.px);
}

static void test_jpeg_decoders(void **state)
{
    (void)state;
    enum { H = 61, W = 83 };
    uint8_t rgb[H * W * 3], grey[H * W];
    photo(rgb, H, W, 3, 1);
    photo(grey, H, W, 1, 2);
#if FRUGAL_HAVE_TURBOJPEG
    printf("libjpeg-turbo (this build's JPEG decoder) against stb_image\n");
    tjhandle tj = tjInitCompress();
    assert_non_null(tj);
    const int samp[4] = {TJSAMP_444, TJSAMP_422, TJSAMP_420, TJSAMP_GRAY};
    for (int s = 0; s < 4; s++) {
        unsigned char *buf = NULL;
        unsigned long n = 0;
        bool g = samp[s] == TJSAMP_GRAY;
        assert_int_equal(tjCompress2(tj, g ? grey : rgb, W, 0, H, g ? TJPF_GRAY : TJPF_RGB, &buf, &n, samp[s], 90, 0), 0);
        compare_decoders(buf, n, 1, 1, 0); /* grey levels: every pixel */
        if (!g)
            compare_decoders(buf, n, 3, 4, 16);
        tjFree(buf);
    }
    tjDestroy(tj);
#else
    printf("built without libjpeg-turbo: stb_image decodes JPEG (compared with itself)\n");
#endif
    /* a JPEG written by stb (4:2:0 at quality 90) too */
    char path[600];
    snprintf(path, sizeof path, "%s", tpath("%s", "stb.jpg"));
    assert_true(stbi_write_jpg(path, W, H, 3, rgb, 90));
    uint8_t *data;
    size_t n;
    assert_int_equal(fr_read_file(path, &data, &n), FR_STATUS_OK);
    compare_decoders(data, n, 1, 1, 0);
    compare_decoders(data, n, 3, 4, 16);
    free(data);
}

/* A large JPEG read at a small size: libjpeg-turbo decodes it reduced (here by 4) and gives nearly the pixels of a
 * full decode resampled; stb_image builds (and PNGs) take the full decode. */
static void test_reduced_decode(void **state)
{
    (void)state;
    enum { H = 600, W = 800, S = 64 };
    uint8_t *rgb = malloc((size_t)H * W * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++) /* smooth shading and soft-edged discs, as in a photo */
                rgb[((size_t)y * W + x) * 3 + k] =
                    (uint8_t)(100 + 60 * sin(0.011 * x * (k + 1) + 0.007 * y) +
                              (((x - 300) * (x - 300) + (y - 250) * (y - 250)) < 150 * 150 ? 60 * k - 50 : 0));
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s", tpath("%s", "large"));
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/big.jpg", dir);
    assert_true(stbi_write_jpg(path, W, H, 3, rgb, 95));
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.height = o.width = S, o.channels = 3;
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_folder_open(dir, &o, &ds), FR_STATUS_OK);
    uint8_t *got = tu_read_all(ds);
    /* reference: the full decode, its centre 600x600 resampled to 64x64 */
    uint8_t *data, want[S * S * 3];
    size_t n;
    assert_int_equal(fr_read_file(path, &data, &n), FR_STATUS_OK);
    struct fr_img im;
    assert_int_equal(fr_img_decode(data, n, path, 3, &im), FR_STATUS_OK);
    assert_int_equal(fr_img_resample(im.px, 3, H, W, (int[]){0, 100, 600, 600}, false, want, 3, S, S,
                                     FR_RESIZE_BILINEAR), FR_STATUS_OK);
    double sum = 0;
    int worst = 0;
    for (int i = 0; i < S * S * 3; i++) {
        int d = abs(got[i] - want[i]);
        sum += d;
        worst = d > worst ? d : worst;
    }
    printf("reduced decode vs full decode + resample: mean |diff| %.3f, max %d grey levels\n", sum / (S * S * 3), worst);
    assert_true(sum / (S * S * 3) < 0.5);
    assert_true(worst <= 8); /* at the disc's edge */
    free(data);
    free(im.px);
    free(got);
    free(rgb);
    fr_dataset_free(ds);
}

/* --- the CLI: findings 11, 18, 21, 22 end to end --- */

static char out_text[1 << 16], err_text[1 << 14];

static int cli(const char *fmt, ...)
{
    const char *exe = getenv("FRUGAL_EXE");
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "FRUGAL_DEVICE=cpu FRUGAL_THREADS=2 %s %s >%s/out.txt 2>%s/err.txt", exe, args, tmpdir,
             tmpdir);
    int st = system(cmd);
    const char *names[2] = {"out.txt", "err.txt"};
    char *bufs[2] = {out_text, err_text};
    size_t caps[2] = {sizeof out_text, sizeof err_text};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(tu_path(tmpdir, names[i]), "r");
        size_t n = f ? fread(bufs[i], 1, caps[i] - 1, f) : 0;
        bufs[i][n] = 0;
        if (f)
            fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count_str(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_cli_findings(void **state)
{
    (void)state;
    if (!getenv("FRUGAL_EXE")) {
        printf("skipped: FRUGAL_EXE not set (built without the tools)\n");
        skip();
    }
    /* three classes of 12 images each: grey 28x28 PNGs, one RGBA file sorting first, big 32x32 and 40x24 JPEGs */
    char root[512];
    snprintf(root, sizeof root, "%s", tpath("%s", "cli"));
    mkdir(root, 0755);
    uint8_t img[40 * 40 * 4];
    for (int k = 0; k < 3; k++) {
        char cdir[600];
        snprintf(cdir, sizeof cdir, "%s/%c", root, 'a' + k);
        mkdir(cdir, 0755);
        for (int i = 0; i < 12; i++) {
            char path[700];
            int s = i == 11 ? 32 : 28;
            for (int j = 0; j < s * s * 4; j++) /* class k: a bright band at rows k*9.. */
                img[j] = (uint8_t)(((j / 4 / s) / 9 == k ? 220 : 30) + ((j * 7 + i) % 13));
            if (i == 0 && k == 0) {
                snprintf(path, sizeof path, "%s/-rgba.png", cdir);
                for (int j = 0; j < s * s; j++)
                    img[4 * j + 1] = img[4 * j + 2] = img[4 * j], img[4 * j + 3] = 255;
                assert_true(stbi_write_png(path, s, s, 4, img, s * 4));
                continue;
            }
            snprintf(path, sizeof path, "%s/%02d.%s", cdir, i, i == 11 ? "jpg" : "png");
            for (int j = 0; j < s * s; j++)
                img[j] = img[4 * j];
            assert_true(i == 11 ? stbi_write_jpg(path, s, s, 1, img, 95) : stbi_write_png(path, s, s, 1, img, s));
        }
    }
    /* 18: without --size the first misfit is named; with it, training runs */
    assert_int_equal(cli("train --data folder:%s --model t --epochs 1 --json", root), 2);
    assert_non_null(strstr(err_text, "a/11.jpg: image is 32x32"));
    assert_non_null(strstr(err_text, "--size"));
    assert_int_equal(cli("train --data folder:%s --size 28 --model t --epochs 8 --lr 0.01 --val 0 --out %s/run --json",
                         root, tmpdir),
                     0);
    /* 11: the RGBA file sorting first does not make alpha a model input: grey + colour files -> 3 channels */
    char ck[600];
    snprintf(ck, sizeof ck, "%s/run/model.safetensors", tmpdir);
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(ck, &st), FR_STATUS_OK);
    assert_string_equal(fr_st_meta(st, "frugal.input"), "3,28,28");
    fr_st_free(st);
    assert_int_equal(cli("eval --model %s --data folder:%s --json", ck, root), 0);
    assert_non_null(strstr(out_text, "\"test_images\":36"));
    /* 18: eval takes what predict takes: images of another size (40 wide, 24 high, colour) are brought to the
     * model's input, and predict's top class of each file is the one eval counted */
    char big[600];
    snprintf(big, sizeof big, "%s", tpath("%s", "big"));
    mkdir(big, 0755);
    for (int k = 0; k < 3; k++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%c", big, 'a' + k);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/%c/0.png", big, 'a' + k);
        for (int j = 0; j < 24 * 40 * 3; j++)
            img[j] = (uint8_t)(((j / 3 / 40) * 28 / 24 / 9 == k ? 220 : 30) + (j % 5));
        assert_true(stbi_write_png(path, 40, 24, 3, img, 40 * 3));
    }
    assert_int_equal(cli("eval --model %s --data folder:%s --json", ck, big), 0);
    cJSON *ev = cJSON_Parse(out_text);
    assert_non_null(ev);
    const cJSON *cm = cJSON_GetObjectItem(ev, "confusion_matrix");
    assert_int_equal(cJSON_GetArraySize(cm), 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(cli("predict --model %s --input %s/%c/0.png --json", ck, big, 'a' + k), 0);
        cJSON *pr = cJSON_Parse(out_text);
        assert_non_null(pr);
        const cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(pr,
                                                                  "predictions"), 0), "top"), 0);
        int cls = (int)cJSON_GetObjectItem(top, "class")->valuedouble;
        assert_int_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(cm, k), cls)->valuedouble, 1);
        cJSON_Delete(pr);
    }
    cJSON_Delete(ev);
    /* 22: predict, augment and datasets agree on which files are images */
    char odd[600];
    snprintf(odd, sizeof odd, "%s", tpath("%s", "odd"));
    mkdir(odd, 0755);
    make_img(cat0, 3, 9);
    assert_true(stbi_write_png(tpath("%s/ok.png", "odd"), IW, IH, 3, cat0, IW * 3));
    write_bytes(tpath("%s/anim.gif", "odd"), "GIF89a....", 10);
    write_bytes(tpath("%s/.hidden.png", "odd"), "x", 1);
    mkdir(tpath("%s/folder.png", "odd"), 0755);
    assert_int_equal(cli("predict --model %s --input %s --json", ck, odd), 0);
    assert_non_null(strstr(out_text, "\"images\":1"));
    assert_int_equal(cli("augment --input %s --policy hflip --out-dir %s/aug", odd, tmpdir), 0);
    assert_int_equal(count_str(err_text, "anim.gif"), 0);
    /* 21: one truncated JPEG: stop names it; skip names it once and goes on, in train, eval and predict */
    char trunc[700];
    snprintf(trunc, sizeof trunc, "%s/b/99.jpg", root);
    uint8_t *jpg;
    size_t n;
    char src[700];
    snprintf(src, sizeof src, "%s/a/11.jpg", root);
    assert_int_equal(fr_read_file(src, &jpg, &n), FR_STATUS_OK);
    write_bytes(trunc, jpg, n / 2);
    free(jpg);
    assert_int_equal(cli("eval --model %s --data folder:%s --json", ck, root), 2); /* bad input */
    assert_non_null(strstr(err_text, "b/99.jpg"));
    assert_int_equal(cli("eval --model %s --data folder:%s --on-bad-image skip --json", ck, root), 0);
    assert_int_equal(count_str(err_text, "b/99.jpg"), 1);
    assert_non_null(strstr(out_text, "\"test_images\":36"));
    assert_int_equal(cli("train --data folder:%s --size 28 --model t --epochs 2 --batch 8 --on-bad-image skip --json",
                         root),
                     0);
    assert_int_equal(count_str(err_text, "b/99.jpg"), 1);
    assert_int_equal(cli("predict --model %s --input %s/b --on-bad-image skip --json", ck, root), 0);
    assert_int_equal(count_str(err_text, "b/99.jpg"), 1);
    assert_non_null(strstr(out_text, "\"skipped\":1"));
    assert_int_equal(cli("train --data folder:%s --size 28 --model t --epochs 1 --on-bad-image maybe", root), 2);
    assert_int_equal(cli("train --data folder:%s --size 0x5 --model t --epochs 1", root), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_sorted_native), cmocka_unit_test(test_grey_and_resize),
        cmocka_unit_test(test_corrupt_image),         cmocka_unit_test(test_unlabeled_and_errors),
        cmocka_unit_test(test_decode_from_memory),    cmocka_unit_test(test_resample_pillow),
        cmocka_unit_test(test_rrc_window),            cmocka_unit_test(test_center_crop),
        cmocka_unit_test(test_random_crops),          cmocka_unit_test(test_mixed_sizes_and_channels),
        cmocka_unit_test(test_subset_and_files),      cmocka_unit_test(test_loader_on_folder),
        cmocka_unit_test(test_image_names),
        cmocka_unit_test(test_jpeg_decoders),         cmocka_unit_test(test_reduced_decode),
        cmocka_unit_test(test_cli_findings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
