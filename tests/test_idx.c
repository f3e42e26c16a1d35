/* IDX reader: round trips (plain, gzip, memory), corruption cases, size conversion, the real Fashion-MNIST files. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "frugal/data.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_create(tmpdir, sizeof tmpdir, "idx");
}

static int teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static const char *tpath(const char *name) { return tu_path(tmpdir, name); }

/* IDX bytes laid out per the format: 0,0,type,ndim, big-endian dims, data. */
static size_t make_idx(uint8_t *out, uint8_t type, int ndim, const uint32_t *dims, const uint8_t *data, size_t n)
{
    size_t k = 0;
    out[k++] = 0, out[k++] = 0, out[k++] = type, out[k++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        out[k++] = (uint8_t)(dims[i] >> 24), out[k++] = (uint8_t)(dims[i] >> 16);
        out[k++] = (uint8_t)(dims[i] >> 8), out[k++] = (uint8_t)dims[i];
    }
    memcpy(out + k, data, n);
    return k + n;
}

static void write_file(const char *path, const void *data, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

/* 5 images of 3x4, pixel = 10*i + y*4 + x, labels 0..4 reversed */
#define N 5
#define H 3
#define W 4
static uint8_t px[N * H * W], lab[N];
static uint8_t img_file[16 + N * H * W], lab_file[8 + N];
static size_t img_size, lab_size;

static void make_small(void)
{
    for (int i = 0; i < N * H * W; i++)
        px[i] = (uint8_t)(10 * (i / (H * W)) + i % (H * W));
    for (int i = 0; i < N; i++)
        lab[i] = (uint8_t)(4 - i);
    img_size = make_idx(img_file, 0x08, 3, (uint32_t[]){N, H, W}, px, sizeof px);
    lab_size = make_idx(lab_file, 0x08, 1, (uint32_t[]){N}, lab, sizeof lab);
}

static void check_small(const struct fr_dataset *ds)
{
    assert_int_equal(ds->n, N);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->h, H);
    assert_int_equal(ds->w, W);
    assert_int_equal(ds->n_classes, 5);
    assert_memory_equal(ds->pixels, px, sizeof px);
    for (int i = 0; i < N; i++)
        assert_int_equal(ds->labels[i], 4 - i);
    assert_string_equal(ds->class_names[3], "3");
}

static void test_roundtrip_plain_and_gz(void **state)
{
    (void)state;
    make_small();
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = tpath(gz ? "img.gz" : "img"), *lp = tpath(gz ? "lab.gz" : "lab");
        write_file(ip, img_file, img_size, gz);
        write_file(lp, lab_file, lab_size, gz);
        struct fr_dataset *ds;
        assert_int_equal(fr_dataset_idx_open(ip, lp, NULL, &ds), FR_STATUS_OK);
        check_small(ds);
        fr_dataset_free(ds);
        char spec[1200];
        snprintf(spec, sizeof spec, "idx:%s,%s", ip, lp);
        assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
        check_small(ds);
        fr_dataset_free(ds);
        /* without labels: unlabeled */
        snprintf(spec, sizeof spec, "idx:%s", ip);
        assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
        assert_int_equal(ds->n, N);
        assert_int_equal(ds->labels[0], -1);
        assert_int_equal(ds->n_classes, 0);
        fr_dataset_free(ds);
    }
}

static void test_from_memory_plain_and_gzip(void **state)
{
    (void)state;
    make_small();
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_idx_from_memory(img_file, img_size, lab_file, lab_size, "mem", &ds), FR_STATUS_OK);
    check_small(ds);
    fr_dataset_free(ds);
    /* gzip in memory, made by writing a .gz file and reading its bytes back */
    const char *ip = tpath("m.gz");
    write_file(ip, img_file, img_size, true);
    FILE *f = fopen(ip, "rb");
    uint8_t gzbuf[4096];
    size_t gzn = fread(gzbuf, 1, sizeof gzbuf, f);
    fclose(f);
    assert_int_equal(gzbuf[0], 0x1f);
    assert_int_equal(fr_dataset_idx_from_memory(gzbuf, gzn, lab_file, lab_size, "memgz", &ds), FR_STATUS_OK);
    check_small(ds);
    fr_dataset_free(ds);
    /* truncated gzip stream */
    assert_int_equal(fr_dataset_idx_from_memory(gzbuf, gzn / 2, NULL, 0, "memgz", &ds), FR_STATUS_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(fr_last_error(), "memgz"));
}

static void test_four_dims_channels(void **state)
{
    (void)state;
    uint8_t data[2 * 2 * 2 * 3], file[64];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    size_t n = make_idx(file, 0x08, 4, (uint32_t[]){2, 2, 2, 3}, data, sizeof data);
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_idx_from_memory(file, n, NULL, 0, "rgb", &ds), FR_STATUS_OK);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->h, 2);
    assert_memory_equal(ds->pixels, data, sizeof data);
    fr_dataset_free(ds);
    n = make_idx(file, 0x08, 4, (uint32_t[]){2, 2, 2, 5}, data, sizeof data);
    assert_int_equal(fr_dataset_idx_from_memory(file, n, NULL, 0, "rgb", &ds), FR_STATUS_FORMAT);
}

/* expects a FORMAT-class failure whose message names the file and contains `what` */
static void expect_bad(const uint8_t *img, size_t img_n, const uint8_t *lb, size_t lb_n, enum fr_status want,
                       const char *what)
{
    struct fr_dataset *ds = (void *)1;
    enum fr_status st = fr_dataset_idx_from_memory(img, img_n, lb, lb_n, "bad.idx", &ds);
    if (st != want)
        fail_msg("status %s, want %s (%s)", fr_status_str(st), fr_status_str(want), fr_last_error());
    assert_null(ds);
    if (!strstr(fr_last_error(), "bad.idx") || !strstr(fr_last_error(), what))
        fail_msg("message '%s' lacks 'bad.idx' or '%s'", fr_last_error(), what);
    assert_null(strchr(fr_last_error(), '\n'));
}

static void test_corruption(void **state)
{
    (void)state;
    make_small();
    uint8_t buf[256];
    /* truncated: header, dimensions, data */
    expect_bad(img_file, 3, NULL, 0, FR_STATUS_FORMAT, "truncated");
    expect_bad(img_file, 9, NULL, 0, FR_STATUS_FORMAT, "truncated");
    expect_bad(img_file, img_size - 1, NULL, 0, FR_STATUS_FORMAT, "truncated");
    expect_bad(img_file, 0, NULL, 0, FR_STATUS_FORMAT, "truncated");
    /* wrong magic */
    memcpy(buf, img_file, img_size);
    buf[0] = 0x1e;
    expect_bad(buf, img_size, NULL, 0, FR_STATUS_FORMAT, "magic");
    /* type other than u8 */
    memcpy(buf, img_file, img_size);
    buf[2] = 0x0D;
    expect_bad(buf, img_size, NULL, 0, FR_STATUS_UNSUPPORTED, "0x0d");
    /* labels given as images (1 dim) and images given as labels */
    expect_bad(lab_file, lab_size, NULL, 0, FR_STATUS_FORMAT, "dimensions");
    expect_bad(img_file, img_size, img_file, img_size, FR_STATUS_FORMAT, "dimensions");
    /* dims whose product overflows 64 bits, and dims far beyond the data */
    size_t n = make_idx(buf, 0x08, 3, (uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, px, 8);
    expect_bad(buf, n, NULL, 0, FR_STATUS_FORMAT, "overflow");
    n = make_idx(buf, 0x08, 3, (uint32_t[]){100000, 28, 28}, px, 8);
    expect_bad(buf, n, NULL, 0, FR_STATUS_FORMAT, "truncated");
    n = make_idx(buf, 0x08, 3, (uint32_t[]){5, 0, 4}, px, 8);
    expect_bad(buf, n, NULL, 0, FR_STATUS_FORMAT, "is 0");
    /* count mismatch between images and labels */
    uint8_t lb[16];
    n = make_idx(lb, 0x08, 1, (uint32_t[]){4}, lab, 4);
    expect_bad(img_file, img_size, lb, n, FR_STATUS_FORMAT, "4 labels for 5 images");
    /* trailing bytes */
    memcpy(buf, img_file, img_size);
    buf[img_size] = 1;
    expect_bad(buf, img_size + 1, NULL, 0, FR_STATUS_FORMAT, "trailing");
    /* a gzip header followed by garbage */
    const uint8_t junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_bad(junk, sizeof junk, NULL, 0, FR_STATUS_FORMAT, "gzip");
}

static void test_corrupt_files(void **state)
{
    (void)state;
    make_small();
    struct fr_dataset *ds;
    /* truncated .gz on disk */
    const char *ip = tpath("trunc.gz");
    write_file(ip, img_file, img_size, true);
    FILE *f = fopen(ip, "rb");
    uint8_t b[4096];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    write_file(ip, b, n - 12, false);
    assert_int_equal(fr_dataset_idx_open(ip, NULL, NULL, &ds), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), ip));
    /* missing file */
    assert_int_equal(fr_dataset_idx_open(tpath("nope"), NULL, NULL, &ds), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "nope"));
    /* bad specs */
    assert_int_equal(fr_dataset_open("mnist", NULL, &ds), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_dataset_open("fmnist:valid", NULL, &ds), FR_STATUS_INVALID_ARGUMENT);
}

static void test_convert_opts(void **state)
{
    (void)state;
    /* one 4x4 grey image; 2x downscale: nearest takes pixel (2y+1, 2x+1), bilinear is Pillow's */
    uint8_t data[16], file[64];
    for (int i = 0; i < 16; i++)
        data[i] = (uint8_t)(i * 16 + (i % 3));
    size_t n = make_idx(file, 0x08, 3, (uint32_t[]){1, 4, 4}, data, 16);
    const char *ip = tpath("conv");
    write_file(ip, file, n, false);
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.channels = 3, o.height = 2, o.width = 2, o.resize = FR_RESIZE_NEAREST;
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_idx_open(ip, NULL, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->h, 2);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            for (int k = 0; k < 3; k++)
                assert_int_equal(ds->pixels[(y * 2 + x) * 3 + k], data[(2 * y + 1) * 4 + 2 * x + 1]);
    fr_dataset_free(ds);
    o.channels = 1, o.resize = FR_RESIZE_BILINEAR;
    assert_int_equal(fr_dataset_idx_open(ip, NULL, &o, &ds), FR_STATUS_OK);
    /* Pillow's bilinear shrink: per axis the taps of output 0 are source 0,1,2 weighted 3/7,3/7,1/7 and of output 1
     * source 1,2,3 weighted 1/7,3/7,3/7, rows first, rounding after each pass; e.g. (0,0): rows 0..2 give 12, 77,
     * 140, then (3*12 + 3*77 + 140)/7 = 58.1. Pillow 9.4's Image.resize((2, 2), BILINEAR) gives the same four. */
    const uint8_t want[4] = {58, 83, 158, 184};
    assert_memory_equal(ds->pixels, want, 4);
    fr_dataset_free(ds);
}

/* FRUGAL_DATA points `fmnist` at another directory (plain or .gz files, FRUGAL_DATA or FRUGAL_DATA/fashion-mnist) */
static void test_frugal_data_env(void **state)
{
    (void)state;
    make_small();
    char dir[400];
    snprintf(dir, sizeof dir, "%s/fashion-mnist", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file(tpath("fashion-mnist/t10k-images-idx3-ubyte"), img_file, img_size, false);
    write_file(tpath("fashion-mnist/t10k-labels-idx1-ubyte.gz"), lab_file, lab_size, true);
    setenv("FRUGAL_DATA", tmpdir, 1);
    struct fr_dataset *ds = NULL, *none = NULL;
    enum fr_status st = fr_dataset_open("fmnist:test", NULL, &ds);
    enum fr_status st_train = fr_dataset_open("fmnist", NULL, &none); /* no train files there */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", fr_last_error());
    unsetenv("FRUGAL_DATA");
    assert_int_equal(st, FR_STATUS_OK);
    assert_int_equal(ds->n, N);
    assert_memory_equal(ds->pixels, px, sizeof px);
    assert_int_equal(ds->labels[0], 4);
    assert_int_equal(ds->n_classes, 10); /* Fashion-MNIST's classes, whatever labels the files hold */
    assert_string_equal(ds->class_names[0], "T-shirt/top");
    fr_dataset_free(ds);
    assert_int_equal(st_train, FR_STATUS_NOT_FOUND);
    assert_null(none);
    assert_non_null(strstr(msg, "train-images-idx3-ubyte"));
}

/* Reference numbers computed once with an independent reader, /tmp/fm_sum.py:
 *   import gzip, struct; b = gzip.open(path).read(); sum(b[16:])   (images), list(b[8:18]) (labels)
 * train: pixel sum 3431114169, first image 76247; test: pixel sum 573469082, first image 33456. */
static void test_fashion_mnist(void **state)
{
    (void)state;
    if (!fr_dataset_fmnist_dir()) {
        printf("SKIP: Fashion-MNIST not installed (apt install dataset-fashion-mnist)\n");
        skip();
    }
    struct {
        const char *spec;
        int64_t n;
        int labels[10];
        uint64_t sum, first;
    } want[2] = {
        {"fmnist", 60000, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 3431114169ull, 76247},
        {"fmnist:test", 10000, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 573469082ull, 33456},
    };
    for (int s = 0; s < 2; s++) {
        struct fr_dataset *ds;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(fr_dataset_open(want[s].spec, NULL, &ds), FR_STATUS_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s: loaded %lld images in %.3f s from %s\n", want[s].spec, (long long)ds->n,
               (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec), fr_dataset_fmnist_dir());
        assert_int_equal(ds->n, want[s].n);
        assert_int_equal(ds->h, 28);
        assert_int_equal(ds->w, 28);
        assert_int_equal(ds->c, 1);
        assert_int_equal(ds->n_classes, 10);
        assert_string_equal(ds->class_names[9], "Ankle boot");
        for (int i = 0; i < 10; i++)
            assert_int_equal(ds->labels[i], want[s].labels[i]);
        uint64_t sum = 0, first = 0;
        for (size_t i = 0; i < (size_t)ds->n * 784; i++)
            sum += ds->pixels[i];
        for (size_t i = 0; i < 784; i++)
            first += ds->pixels[i];
        assert_int_equal(sum, want[s].sum);
        assert_int_equal(first, want[s].first);
        int64_t counts[10];
        fr_dataset_class_counts(ds, counts);
        for (int k = 0; k < 10; k++)
            assert_int_equal(counts[k], want[s].n / 10);
        fr_dataset_free(ds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_plain_and_gz), cmocka_unit_test(test_from_memory_plain_and_gzip),
        cmocka_unit_test(test_four_dims_channels),     cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_corrupt_files),          cmocka_unit_test(test_convert_opts),
        cmocka_unit_test(test_frugal_data_env),        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
