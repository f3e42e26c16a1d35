/* Image-folder datasets from small PNG/BMP/JPEG files written by the test: sorted classes, channel conversion,
 * resizing, corrupt files skipped or failing, unlabeled folders. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>
/* exported by libstb but declared only in the implementation part of the header */
unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x, int y, int n, int *out_len);

#include "testutil.h"
#include "frugal/data.h"

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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_sorted_native), cmocka_unit_test(test_grey_and_resize),
        cmocka_unit_test(test_corrupt_image),         cmocka_unit_test(test_unlabeled_and_errors),
        cmocka_unit_test(test_decode_from_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
