/* safetensors: files laid out byte by byte in the test, every corruption case, dtype conversion, round trips,
 * atomic writes, loading into fr_tensors with all mismatches in one message. */
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "frugal/io.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tu_tmpdir_create(tmpdir, sizeof tmpdir, "st");
}

static int teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static const char *tpath(const char *name) { return tu_path(tmpdir, name); }

/* The reference layout, independent of frugal's writer: u64 LE header length, header text, data bytes. */
static size_t layout(uint8_t *out, const char *header, const void *data, size_t data_n)
{
    uint64_t n = strlen(header);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(n >> (8 * i));
    memcpy(out + 8, header, n);
    if (data_n)
        memcpy(out + 8 + n, data, data_n);
    return 8 + n + data_n;
}

static uint8_t file[4096];

/* a: F32 [2,2] = 1,2,3,4 at [0,16); b: I32 [3] = -1,0,7 at [16,28) */
static const char *good_header =
    "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":\"3\"},"
    "\"b\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[16,28]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";

static size_t good_file(void)
{
    uint8_t data[28];
    float a[4] = {1, 2, 3, 4};
    int32_t b[3] = {-1, 0, 7};
    memcpy(data, a, 16);
    memcpy(data + 16, b, 12);
    return layout(file, good_header, data, sizeof data);
}

static void check_good(const struct fr_safetensors *st)
{
    assert_int_equal(st->n_tensors, 2);
    const struct fr_st_tensor *a = fr_st_find(st, "a"), *b = fr_st_find(st, "b");
    assert_non_null(a);
    assert_non_null(b);
    assert_null(fr_st_find(st, "c"));
    assert_int_equal(a->dtype, FR_ST_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 2);
    float fa[4], fb[3];
    assert_int_equal(fr_st_read_f32(st, a, fa, 4), FR_STATUS_OK);
    tu_assert_close(fa, (float[]){1, 2, 3, 4}, 4, 0, 0);
    assert_int_equal(fr_st_read_f32(st, b, fb, 3), FR_STATUS_OK);
    tu_assert_close(fb, (float[]){-1, 0, 7}, 3, 0, 0);
    int32_t ib[3];
    assert_int_equal(fr_st_read_i32(st, b, ib, 3), FR_STATUS_OK);
    assert_int_equal(ib[0], -1);
    assert_int_equal(ib[2], 7);
    assert_int_equal(fr_st_read_i32(st, a, ib, 4), FR_STATUS_FORMAT); /* float tensor is not integer */
    assert_string_equal(fr_st_meta(st, "format"), "pt");
    assert_string_equal(fr_st_meta(st, "epoch"), "3");
    assert_null(fr_st_meta(st, "step"));
}

static void test_read_hand_made(void **state)
{
    (void)state;
    size_t n = good_file();
    struct fr_safetensors *st;
    assert_int_equal(fr_st_from_memory(file, n, "mem.safetensors", &st), FR_STATUS_OK);
    check_good(st);
    fr_st_free(st);
    FILE *f = fopen(tpath("good.safetensors"), "wb");
    fwrite(file, 1, n, f);
    fclose(f);
    assert_int_equal(fr_st_open(tpath("good.safetensors"), &st), FR_STATUS_OK);
    check_good(st);
    fr_st_free(st);
    /* header padded with trailing spaces (as PyTorch's writer does), scalar shape, empty tensor, empty file */
    const char *h = "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]}}    ";
    double d = -2.5;
    n = layout(file, h, &d, 8);
    assert_int_equal(fr_st_from_memory(file, n, "pad", &st), FR_STATUS_OK);
    float v;
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "s"), &v, 1), FR_STATUS_OK);
    assert_true(v == -2.5f);
    assert_int_equal(fr_st_numel(fr_st_find(st, "e")), 0);
    fr_st_free(st);
    n = layout(file, "{}", NULL, 0);
    assert_int_equal(fr_st_from_memory(file, n, "empty", &st), FR_STATUS_OK);
    assert_int_equal(st->n_tensors, 0);
    fr_st_free(st);
}

static void test_dtype_conversion(void **state)
{
    (void)state;
    /* F16: 1, -2, 0.5, 65504, 2^-24 (smallest subnormal), +inf; BF16: 1, -3; U8: 0, 255; I64: -5, 1<<40;
     * I8: -128; BOOL: 0, 1 */
    uint16_t f16[6] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00};
    uint16_t bf16[2] = {0x3F80, 0xC040};
    uint8_t u8[2] = {0, 255};
    int64_t i64[2] = {-5, (int64_t)1 << 40};
    int8_t i8[1] = {-128};
    uint8_t bl[2] = {0, 1};
    uint8_t data[64];
    size_t k = 0;
    memcpy(data + k, f16, 12), k += 12;
    memcpy(data + k, bf16, 4), k += 4;
    memcpy(data + k, u8, 2), k += 2;
    memcpy(data + k, i64, 16), k += 16; /* unaligned on purpose: offset 18 */
    memcpy(data + k, i8, 1), k += 1;
    memcpy(data + k, bl, 2), k += 2;
    const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                    "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                    "\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[16,18]},"
                    "\"l\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[18,34]},"
                    "\"c\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[34,35]},"
                    "\"t\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[35,37]}}";
    size_t n = layout(file, h, data, k);
    struct fr_safetensors *st;
    assert_int_equal(fr_st_from_memory(file, n, "conv", &st), FR_STATUS_OK);
    float out[6];
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "h"), out, 6), FR_STATUS_OK);
    tu_assert_close(out, (float[]){1, -2, 0.5f, 65504, 5.9604644775390625e-8f}, 5, 0, 0);
    assert_true(isinf(out[5]) && out[5] > 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "bf"), out, 2), FR_STATUS_OK);
    tu_assert_close(out, (float[]){1, -3}, 2, 0, 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "u"), out, 2), FR_STATUS_OK);
    tu_assert_close(out, (float[]){0, 255}, 2, 0, 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "l"), out, 2), FR_STATUS_OK);
    tu_assert_close(out, (float[]){-5, 1099511627776.0f}, 2, 0, 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "c"), out, 1), FR_STATUS_OK);
    assert_true(out[0] == -128);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "t"), out, 2), FR_STATUS_OK);
    tu_assert_close(out, (float[]){0, 1}, 2, 0, 0);
    int32_t iv[2];
    assert_int_equal(fr_st_read_i32(st, fr_st_find(st, "l"), iv, 2), FR_STATUS_FORMAT); /* 2^40 too big */
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "l"), out, 3), FR_STATUS_INVALID_ARGUMENT);
    fr_st_free(st);
}

static void expect_bad(const uint8_t *buf, size_t n, const char *what)
{
    struct fr_safetensors *st = (void *)1;
    enum fr_status s = fr_st_from_memory(buf, n, "bad.safetensors", &st);
    if (s != FR_STATUS_FORMAT)
        fail_msg("status %s for case '%s' (%s)", fr_status_str(s), what, fr_last_error());
    assert_null(st);
    const char *m = fr_last_error();
    if (!strstr(m, "bad.safetensors") || !strstr(m, what))
        fail_msg("message '%s' lacks 'bad.safetensors' or '%s'", m, what);
    assert_null(strchr(m, '\n'));
}

static void expect_bad_header(const char *header, size_t data_n, const char *what)
{
    static uint8_t zeros[256];
    size_t n = layout(file, header, zeros, data_n);
    expect_bad(file, n, what);
}

static void test_corruption(void **state)
{
    (void)state;
    size_t n = good_file();
    uint8_t buf[4096];
    /* too short for the length field; length beyond the file; length pointing into the data */
    expect_bad(file, 5, "too short");
    expect_bad(file, 0, "too short");
    memcpy(buf, file, n);
    buf[6] = 1; /* header length 2^48 + ... */
    expect_bad(buf, n, "runs past the end");
    memcpy(buf, file, n);
    uint64_t hl = strlen(good_header) - 3; /* header cut before its closing braces */
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hl >> (8 * i));
    expect_bad(buf, n, "not valid JSON");
    hl = strlen(good_header) + 3; /* header runs into the data, whose zero bytes cannot be JSON */
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hl >> (8 * i));
    expect_bad(buf, n, "NUL");
    /* truncated file: tensors point outside the data */
    expect_bad(file, n - 1, "outside");
    /* JSON errors */
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",", 0, "not valid JSON");
    expect_bad_header("{\"a\":1} x", 0, "not valid JSON");
    expect_bad_header("[1,2]", 0, "does not start with '{'");
    expect_bad_header("", 0, "does not start with '{'");
    n = good_file(); /* the cases above reused `file` */
    memcpy(buf, file, n);
    buf[8 + 5] = 0;
    expect_bad(buf, n, "NUL");
    /* entries */
    expect_bad_header("{\"a\":5}", 0, "not an object");
    expect_bad_header("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype");
    expect_bad_header("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'Q4'");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "not a non-negative");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "not a non-negative");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "shape");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "not [begin, end]");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "end before begin");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, "outside");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "need 8");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                      "\"data_offsets\":[0,4]}}", 4, "too large");
    /* overlap, hole, tail */
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "belong to no tensor");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "trailing");
    /* duplicates */
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate tensor name 'a'");
    expect_bad_header("{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{}}", 0, "duplicate __metadata__");
    expect_bad_header("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, "duplicate __metadata__ key");
    expect_bad_header("{\"__metadata__\":{\"k\":3}}", 0, "not a string");
    expect_bad_header("{\"__metadata__\":[]}", 0, "not an object");
    /* missing file */
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(tpath("missing.safetensors"), &st), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "missing.safetensors"));
}

static void test_writer_layout_and_roundtrip(void **state)
{
    (void)state;
    float a[4] = {1.5f, -2, 3, 1e-30f};
    int32_t b[2] = {INT32_MIN, 9};
    uint8_t c[3] = {0, 128, 255};
    struct fr_st_entry e[3] = {
        {"w.a", FR_ST_F32, 2, (int64_t[]){2, 2}, a},
        {"b", FR_ST_I32, 1, (int64_t[]){2}, b},
        {"q\"x", FR_ST_U8, 1, (int64_t[]){3}, c},
    };
    struct fr_kv meta[2] = {{"classes", "[\"cat\",\"dog\"]"}, {"step", "12"}};
    uint8_t *buf;
    size_t size;
    assert_int_equal(fr_st_serialize(e, 3, meta, 2, &buf, &size), FR_STATUS_OK);
    /* exact bytes against the layout written by hand */
    const char *want_h = "{\"__metadata__\":{\"classes\":\"[\\\"cat\\\",\\\"dog\\\"]\",\"step\":\"12\"},"
                         "\"w.a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                         "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                         "\"q\\\"x\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[24,27]}}";
    char padded[1024];
    size_t hl = strlen(want_h), pl = (hl + 7) / 8 * 8;
    memcpy(padded, want_h, hl);
    memset(padded + hl, ' ', pl - hl);
    padded[pl] = 0;
    uint8_t data[27];
    memcpy(data, a, 16);
    memcpy(data + 16, b, 8);
    memcpy(data + 24, c, 3);
    size_t n = layout(file, padded, data, 27);
    assert_int_equal(size, n);
    assert_memory_equal(buf, file, n);
    assert_int_equal((8 + pl) % 8, 0);
    /* and back */
    struct fr_safetensors *st;
    assert_int_equal(fr_st_from_memory(buf, size, "rt", &st), FR_STATUS_OK);
    free(buf);
    assert_string_equal(fr_st_meta(st, "classes"), "[\"cat\",\"dog\"]");
    const struct fr_st_tensor *t = fr_st_find(st, "q\"x");
    assert_non_null(t);
    assert_memory_equal(t->data, c, 3);
    assert_memory_equal(fr_st_find(st, "w.a")->data, a, 16);
    assert_memory_equal(fr_st_find(st, "b")->data, b, 8);
    fr_st_free(st);
    /* bad writer input */
    struct fr_st_entry dup[2] = {e[0], e[0]};
    assert_int_equal(fr_st_serialize(dup, 2, NULL, 0, &buf, &size), FR_STATUS_INVALID_ARGUMENT);
    struct fr_st_entry reserved = {"__metadata__", FR_ST_F32, 1, (int64_t[]){1}, a};
    assert_int_equal(fr_st_serialize(&reserved, 1, NULL, 0, &buf, &size), FR_STATUS_INVALID_ARGUMENT);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(d);
    return n;
}

static void test_atomic_write(void **state)
{
    (void)state;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/atomic", tmpdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/w.safetensors", sub);
    float a[2] = {1, 2};
    struct fr_st_entry e = {"a", FR_ST_F32, 1, (int64_t[]){2}, a};
    assert_int_equal(fr_st_write(path, &e, 1, NULL, 0), FR_STATUS_OK);
    a[1] = 5;
    assert_int_equal(fr_st_write(path, &e, 1, NULL, 0), FR_STATUS_OK); /* replaces */
    assert_int_equal(count_entries(sub), 1);                            /* no temp file left behind */
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(path, &st), FR_STATUS_OK);
    float v[2];
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "a"), v, 2), FR_STATUS_OK);
    assert_true(v[1] == 5);
    fr_st_free(st);
    /* a directory that does not exist: clean error, old file untouched */
    snprintf(path, sizeof path, "%s/nodir/w.safetensors", sub);
    assert_int_equal(fr_st_write(path, &e, 1, NULL, 0), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "nodir"));
    assert_int_equal(count_entries(sub), 1);
}

/* a directory or a text file given as a checkpoint: named as such (not "out of memory (9223372036854775807 bytes)") */
static void test_not_a_checkpoint(void **state)
{
    (void)state;
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(tmpdir, &st), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "is a directory"));
    char path[600];
    snprintf(path, sizeof path, "%s/model.txt", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("conv c1 8 3 1 1\nrelu\ngap\nlinear fc 10\n", f);
    fclose(f);
    assert_int_equal(fr_st_open(path, &st), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "not a safetensors file"));
    assert_null(strchr(fr_last_error(), '\n'));
}

/* streamed atomic files: complete or absent, the old content kept on abort */
static void test_atomic_stream(void **state)
{
    (void)state;
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/stream", tmpdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/labels.csv", sub);
    struct fr_atomic_file *af;
    FILE *f;
    assert_int_equal(fr_atomic_open(path, &af, &f), FR_STATUS_OK);
    fputs("old\n", f);
    assert_int_equal(fr_atomic_commit(af), FR_STATUS_OK);
    assert_int_equal(fr_atomic_open(path, &af, &f), FR_STATUS_OK);
    fputs("new, but abandoned\n", f);
    fr_atomic_abort(af);
    char buf[64] = "";
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "old\n");
    assert_int_equal(count_entries(sub), 1);
    /* a directory is not replaced by a file */
    assert_int_equal(fr_atomic_open(sub, &af, &f), FR_STATUS_IO);
}

/* a full disk (a 64 KiB tmpfs) is an error naming ENOSPC, never an empty file; the old file stays */
static void test_full_disk(void **state)
{
    (void)state;
    char mnt[600], path[700];
    snprintf(mnt, sizeof mnt, "%s/full", tmpdir);
    assert_int_equal(mkdir(mnt, 0755), 0);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=64k tmpfs '%s' 2>/dev/null", mnt);
    if (system(cmd) != 0) {
        printf("skipped: cannot mount a tmpfs here (needs root)\n");
        skip();
    }
    snprintf(path, sizeof path, "%s/w.bin", mnt);
    static uint8_t big[256 * 1024];
    memset(big, 7, sizeof big);
    assert_int_equal(fr_write_file_atomic(path, "small", 5), FR_STATUS_OK);
    enum fr_status a = fr_write_file_replace(path, big, sizeof big, false);
    struct fr_atomic_file *af;
    FILE *f;
    enum fr_status b = fr_atomic_open(path, &af, &f);
    if (b == FR_STATUS_OK) {
        fwrite(big, 1, sizeof big, f);
        b = fr_atomic_commit(af);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", fr_last_error());
    struct stat sb;
    int size_ok = stat(path, &sb) == 0 && sb.st_size == 5;
    int entries = count_entries(mnt);
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(a, FR_STATUS_IO);
    assert_int_equal(b, FR_STATUS_IO);
    assert_non_null(strstr(msg, "No space left on device"));
    assert_true(size_ok);          /* the old file is intact */
    assert_int_equal(entries, 1);  /* and no temporary file is left */
}

/* tests/data/torch_layout.safetensors, written by tests/data/make_data.py in the reference serializer's layout */
static void test_reference_file(void **state)
{
    (void)state;
    const char *cl = getenv("FRUGAL_CL_PATH"); /* set by tests/meson.build to <source>/cl */
    char path[1024];
    snprintf(path, sizeof path, "%s/../tests/data/torch_layout.safetensors", cl ? cl : ".");
    if (access(path, R_OK) != 0) {
        printf("SKIP: %s not found (run the test through meson test)\n", path);
        skip();
    }
    struct fr_safetensors *st;
    assert_int_equal(fr_st_open(path, &st), FR_STATUS_OK);
    assert_int_equal(st->n_tensors, 4);
    float w[6], b[2], emb[2], nbt;
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "fc1.weight"), w, 6), FR_STATUS_OK);
    tu_assert_close(w, (float[]){-1, -0.5f, 0, 0.5f, 1, 1.5f}, 6, 0, 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "fc1.bias"), b, 2), FR_STATUS_OK);
    tu_assert_close(b, (float[]){0.25f, -4}, 2, 0, 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "emb"), emb, 2), FR_STATUS_OK);
    tu_assert_close(emb, (float[]){1, -0.5f}, 2, 0, 0);
    assert_int_equal(fr_st_read_f32(st, fr_st_find(st, "bn.num_batches_tracked"), &nbt, 1), FR_STATUS_OK);
    assert_true(nbt == 100);
    /* frugal's writer, given the same tensors in another order, reproduces the reference bytes exactly */
    struct fr_st_entry e[4];
    const char *names[4] = {"emb", "fc1.weight", "bn.num_batches_tracked", "fc1.bias"};
    for (int i = 0; i < 4; i++) {
        const struct fr_st_tensor *t = fr_st_find(st, names[i]);
        e[i] = (struct fr_st_entry){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    uint8_t *buf;
    size_t size;
    assert_int_equal(fr_st_serialize(e, 4, (struct fr_kv[]){{"format", "pt"}}, 1, &buf, &size), FR_STATUS_OK);
    assert_int_equal(size, st->size);
    assert_memory_equal(buf, st->buf, size);
    free(buf);
    fr_st_free(st);
}

/* --- fr_tensors (needs the core and the CPU backend) --- */

static void test_load_into_tensors(void **state)
{
    (void)state;
    struct fr_backend *be = fr_backend_cpu_new(1);
    assert_non_null(be);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *w = fr_tensor_set_name(fr_tensor_new_2d(ctx, FR_F32, 2, 3), "fc.weight");
    struct fr_tensor *bias = fr_tensor_set_name(fr_tensor_new_1d(ctx, FR_F32, 2), "fc.bias");
    struct fr_tensor *cnt = fr_tensor_set_name(fr_tensor_new_1d(ctx, FR_I32, 1), "bn.count");
    struct fr_tensor *head = fr_tensor_set_name(fr_tensor_new_2d(ctx, FR_F32, 4, 3), "head.weight");
    assert_int_equal(fr_ctx_alloc(ctx, be, 0), FR_STATUS_OK);

    /* file: fc.weight F16 [2,3], fc.bias F32 [3] (wrong shape), bn.count I64 [] (scalar), extra.x F32 [1] */
    uint16_t wh[6] = {0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600}; /* 1..6 */
    float fb[3] = {7, 8, 9}, fx = 1;
    int64_t c64 = 42;
    uint8_t data[64];
    memcpy(data, wh, 12);
    memcpy(data + 12, fb, 12);
    memcpy(data + 24, &c64, 8);
    memcpy(data + 32, &fx, 4);
    const char *h = "{\"fc.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
                    "\"bn.count\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]},"
                    "\"extra.x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[32,36]}}";
    size_t n = layout(file, h, data, 36);
    struct fr_safetensors *st;
    assert_int_equal(fr_st_from_memory(file, n, "model.safetensors", &st), FR_STATUS_OK);
    struct fr_named_tensor all[4] = {{NULL, w}, {NULL, bias}, {NULL, cnt}, {NULL, head}};
    assert_int_equal(fr_tensor_fill_f32(w, -1), FR_STATUS_OK);

    /* strict: one message with the missing head, the bias shape and the unexpected extra */
    assert_int_equal(fr_st_load_tensors(st, all, 4, NULL), FR_STATUS_SHAPE);
    const char *m = fr_last_error();
    assert_non_null(strstr(m, "model.safetensors"));
    assert_non_null(strstr(m, "3 mismatches"));
    assert_non_null(strstr(m, "missing 'head.weight'"));
    assert_non_null(strstr(m, "'fc.bias' is F32[3] in the file, f32[2] in the model"));
    assert_non_null(strstr(m, "unexpected 'extra.x'"));
    float got[6];
    assert_int_equal(fr_tensor_get(w, got, sizeof got), FR_STATUS_OK);
    assert_true(got[0] == -1); /* nothing copied on failure */

    /* transfer learning: new head missing, extra ignored, still the bias shape */
    struct fr_st_load_opts lo = {.allow_missing = true, .ignore_unexpected = true};
    assert_int_equal(fr_st_load_tensors(st, all, 4, &lo), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "1 mismatch:"));
    struct fr_named_tensor ok[3] = {{NULL, w}, {NULL, cnt}, {NULL, head}};
    assert_int_equal(fr_st_load_tensors(st, ok, 3, &lo), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(w, got, sizeof got), FR_STATUS_OK);
    tu_assert_close(got, (float[]){1, 2, 3, 4, 5, 6}, 6, 0, 0);
    int32_t c;
    assert_int_equal(fr_tensor_get(cnt, &c, 4), FR_STATUS_OK);
    assert_int_equal(c, 42);
    /* a name override maps a model tensor to another file name */
    struct fr_named_tensor ren[1] = {{"extra.x", bias}};
    assert_int_equal(fr_st_load_tensors(st, ren, 1, &lo), FR_STATUS_SHAPE); /* [1] vs [2] */
    fr_st_free(st);

    /* save → load round trip, bit-identical */
    float wv[6] = {0.1f, -0.2f, 1e-20f, 3e10f, -0.0f, 7};
    float hv[12];
    for (int i = 0; i < 12; i++)
        hv[i] = (float)i / 3;
    assert_int_equal(fr_tensor_set(w, wv, sizeof wv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(head, hv, sizeof hv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_fill_f32(bias, 0.25f), FR_STATUS_OK);
    struct fr_kv meta[1] = {{"note", "x"}};
    assert_int_equal(fr_st_save_tensors(tpath("rt.safetensors"), all, 4, meta, 1), FR_STATUS_OK);
    struct fr_ctx *ctx2 = fr_ctx_new();
    struct fr_tensor *w2 = fr_tensor_set_name(fr_tensor_new_2d(ctx2, FR_F32, 2, 3), "fc.weight");
    struct fr_tensor *b2 = fr_tensor_set_name(fr_tensor_new_1d(ctx2, FR_F32, 2), "fc.bias");
    struct fr_tensor *c2 = fr_tensor_set_name(fr_tensor_new_1d(ctx2, FR_I32, 1), "bn.count");
    struct fr_tensor *h2 = fr_tensor_set_name(fr_tensor_new_2d(ctx2, FR_F32, 4, 3), "head.weight");
    assert_int_equal(fr_ctx_alloc(ctx2, be, 0), FR_STATUS_OK);
    struct fr_named_tensor all2[4] = {{NULL, w2}, {NULL, b2}, {NULL, c2}, {NULL, h2}};
    assert_int_equal(fr_st_load_file(tpath("rt.safetensors"), all2, 4, NULL), FR_STATUS_OK);
    float g2[12];
    assert_int_equal(fr_tensor_get(w2, g2, 24), FR_STATUS_OK);
    assert_memory_equal(g2, wv, 24);
    assert_int_equal(fr_tensor_get(h2, g2, 48), FR_STATUS_OK);
    assert_memory_equal(g2, hv, 48);
    assert_int_equal(fr_tensor_get(c2, &c, 4), FR_STATUS_OK);
    assert_int_equal(c, 42);
    fr_ctx_free(ctx2);
    fr_ctx_free(ctx);
    fr_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_hand_made),   cmocka_unit_test(test_dtype_conversion),
        cmocka_unit_test(test_corruption),       cmocka_unit_test(test_writer_layout_and_roundtrip),
        cmocka_unit_test(test_atomic_write),     cmocka_unit_test(test_reference_file),
        cmocka_unit_test(test_load_into_tensors),
        cmocka_unit_test(test_not_a_checkpoint), cmocka_unit_test(test_atomic_stream),
        cmocka_unit_test(test_full_disk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
