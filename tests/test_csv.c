/* CSV label lists: hard and soft labels, headers, quoting, relative paths, unlabeled rows, every bad-row case. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "testutil.h"
#include "frugal/data.h"

static char tmpdir[256];

/* images/a.png (grey 2x2 = 10,20,30,40), images/b,c.png (value 1x 2x), "with, comma.png" */
static int setup(void **state)
{
    (void)state;
    if (tu_tmpdir_create(tmpdir, sizeof tmpdir, "csv") != 0)
        return -1;
    char p[512];
    snprintf(p, sizeof p, "%s/images", tmpdir);
    mkdir(p, 0755);
    const char *names[4] = {"a.png", "b.png", "c.png", "with, comma.png"};
    for (int i = 0; i < 4; i++) {
        uint8_t px[4];
        for (int k = 0; k < 4; k++)
            px[k] = (uint8_t)(10 * (k + 1) + 100 * i);
        snprintf(p, sizeof p, "%s/images/%s", tmpdir, names[i]);
        if (!stbi_write_png(p, 2, 2, 1, px, 2))
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(tmpdir);
}

static const char *write_csv(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_hard_labels(void **state)
{
    (void)state;
    /* header, CRLF, blank line, quoted path with a comma, unlabeled rows (empty, missing, -1) */
    const char *path = write_csv("hard.csv", "path,label\r\n"
                                             "images/a.png,2\r\n"
                                             "\r\n"
                                             "\"images/with, comma.png\",0\n"
                                             "images/b.png,\n"
                                             "images/c.png\n"
                                             " images/a.png , -1 \n");
    char spec[600];
    snprintf(spec, sizeof spec, "csv:%s", path);
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_open(spec, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->n_classes, 3);
    int want[5] = {2, 0, -1, -1, -1};
    for (int i = 0; i < 5; i++)
        assert_int_equal(ds->labels[i], want[i]);
    assert_null(ds->soft);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->h, 2);
    uint8_t a[4] = {10, 20, 30, 40}, comma[4] = {54, 64, 74, 84} /* (10*(k+1) + 300) mod 256 */;
    uint8_t *px = tu_read_all(ds); /* decoded on demand */
    assert_memory_equal(px, a, 4);
    assert_memory_equal(px + 4, comma, 4);
    assert_int_equal(px[8], 110); /* b.png */
    assert_memory_equal(px + 16, a, 4);
    free(px);
    assert_non_null(strstr(ds->paths[1], "images/with, comma.png"));
    assert_string_equal(ds->class_names[2], "2");
    fr_dataset_free(ds);
}

static void test_soft_labels(void **state)
{
    (void)state;
    const char *path = write_csv("soft.csv", "path,cat,dog,bird\n"
                                             "images/a.png,0.1,0.7,0.2\n"
                                             "images/b.png,1,0,0\n"
                                             "images/c.png,0.25,0.25,0.5\n");
    struct fr_dataset *ds;
    assert_int_equal(fr_dataset_csv_open(path, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->n_classes, 3);
    assert_string_equal(ds->class_names[0], "cat");
    assert_string_equal(ds->class_names[2], "bird");
    assert_non_null(ds->soft);
    tu_assert_close(ds->soft, (float[]){0.1f, 0.7f, 0.2f, 1, 0, 0, 0.25f, 0.25f, 0.5f}, 9, 0, 0);
    assert_int_equal(ds->labels[0], 1); /* argmax */
    assert_int_equal(ds->labels[1], 0);
    assert_int_equal(ds->labels[2], 2);
    fr_dataset_free(ds);
    /* without header: default class names; probabilities in exponent notation */
    path = write_csv("soft2.csv", "images/a.png,5e-1,5E-1\nimages/b.png,0,1\n");
    assert_int_equal(fr_dataset_csv_open(path, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n_classes, 2);
    assert_string_equal(ds->class_names[1], "1");
    assert_true(ds->soft[0] == 0.5f);
    fr_dataset_free(ds);
}

static void expect_bad(const char *text, const char *what)
{
    struct fr_csv_rows r;
    enum fr_status s = fr_csv_parse(text, strlen(text), "bad.csv", &r);
    if (s != FR_STATUS_FORMAT)
        fail_msg("status %s for '%s' (%s)", fr_status_str(s), text, fr_last_error());
    const char *m = fr_last_error();
    if (!strstr(m, "bad.csv") || !strstr(m, what))
        fail_msg("message '%s' lacks 'bad.csv' or '%s'", m, what);
    assert_null(strchr(m, '\n'));
    assert_int_equal(r.n, 0);
    assert_null(r.paths);
}

static void test_bad_rows(void **state)
{
    (void)state;
    expect_bad("a.png,1\nb.png,abc\n", "bad.csv:2: bad label 'abc'");
    expect_bad("a.png,1.5\n", "bad label");
    expect_bad("a.png,-2\n", "bad label");
    expect_bad("a.png,99999999999\n", "bad label");
    expect_bad("a.png,1\nb.png,1,2\n", "bad.csv:2: 3 columns, expected 2");
    expect_bad("a.png,0.5,0.5\nb.png,1\n", "2 columns, expected 3");
    expect_bad("path,p0,p1\na.png,0.5\n", "2 columns, expected 3");
    expect_bad("a.png,0.5,x\n", "bad probability 'x'");
    expect_bad("a.png,0.5,-0.5\n", "bad probability");
    expect_bad("a.png,nan,1\n", "bad probability");
    expect_bad("a.png,inf,1\n", "bad probability");
    expect_bad("a.png,0,0\n", "sum to 0");
    expect_bad("\"a.png,1\n", "bad.csv:1: bad quoting");
    expect_bad("\"a\"x.png,1\n", "bad quoting");
    expect_bad(",1\n", "empty path");
    expect_bad("", "no rows");
    expect_bad("path,label\n\n", "no rows");
    struct fr_csv_rows r;
    assert_int_equal(fr_csv_parse("a.png,1\0,2", 10, "bad.csv", &r), FR_STATUS_FORMAT);
    assert_non_null(strstr(fr_last_error(), "NUL"));
    /* a UTF-8 byte order mark before the header is not part of it */
    assert_int_equal(fr_csv_parse("\xEF\xBB\xBFpath,label\nx,1\n", 18, "bom.csv", &r), FR_STATUS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.header[0], "label");
    fr_csv_rows_free(&r);
    /* good rows parse without touching any image */
    const char *good = "x,3\n\"q\"\"uote\",1\n";
    assert_int_equal(fr_csv_parse(good, strlen(good), "ok.csv", &r), FR_STATUS_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.paths[1], "q\"uote");
    assert_int_equal(r.labels[0], 3);
    fr_csv_rows_free(&r);
}

/* what `frugal pseudo-label` writes reads back: numeric class names in a soft header, a #classes line keeping the
 * names, order and count of hard labels (also classes no row uses), comments; a ';'-separated file is named */
static void test_round_trip_formats(void **state)
{
    (void)state;
    struct fr_dataset *ds;
    const char *soft = write_csv("soft_numeric.csv", "path,0,1,10\nimages/a.png,0.2,0.3,0.5\nimages/b.png,1,0,0\n");
    assert_int_equal(fr_dataset_csv_open(soft, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->n_classes, 3);
    assert_string_equal(ds->class_names[2], "10");
    assert_int_equal(ds->labels[0], 2);
    fr_dataset_free(ds);
    const char *hard = write_csv("hard_classes.csv", "#classes,0,1,10,2,\"a,b\"\n# a comment\npath,label\n"
                                                     "images/a.png,2\nimages/b.png,0\n");
    assert_int_equal(fr_dataset_csv_open(hard, NULL, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n_classes, 5); /* not max label + 1 */
    assert_string_equal(ds->class_names[2], "10");
    assert_string_equal(ds->class_names[4], "a,b");
    assert_int_equal(ds->labels[0], 2);
    fr_dataset_free(ds);
    expect_bad("#classes,x,y\npath,label\na.png,2\n", "label 2, but #classes names 2 classes");
    expect_bad("#classes,x,y\na.png,0.5,0.2,0.3\n", "#classes names 2 classes, the rows have 3");
    expect_bad("#classes\na.png,0\n", "#classes lists no class");
    expect_bad("#classes,a\n#classes,b\na.png,0\n", "bad.csv:2: a second #classes line"); /* found by fuzz_csv */
    expect_bad("path;label\na.png;1\n", "bad.csv:1: expected comma-separated columns (path,label); this line uses ';'");
}

static void test_missing_images(void **state)
{
    (void)state;
    const char *path = write_csv("miss.csv", "images/a.png,0\nimages/gone.png,1\nimages/b.png,1\n");
    struct fr_dataset *ds = (void *)1;
    assert_int_equal(fr_dataset_csv_open(path, NULL, &ds), FR_STATUS_IO);
    assert_null(ds);
    assert_non_null(strstr(fr_last_error(), "gone.png"));
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.on_bad_image = FR_BAD_IMAGE_SKIP;
    fr_log_set_callback(NULL, NULL); /* keep the warning out of the test output */
    assert_int_equal(fr_dataset_csv_open(path, &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->labels[1], 1);
    uint8_t *px = tu_read_all(ds);
    assert_int_equal(px[4], 110);
    free(px);
    fr_dataset_free(ds);
    /* the CSV itself missing */
    assert_int_equal(fr_dataset_csv_open("/nonexistent/x.csv", NULL, &ds), FR_STATUS_IO);
    assert_non_null(strstr(fr_last_error(), "/nonexistent/x.csv"));
    /* from memory with an explicit base directory, resized and converted */
    char base[300];
    snprintf(base, sizeof base, "%s/images", tmpdir);
    o.channels = 3, o.height = 1, o.width = 1, o.resize = FR_RESIZE_BILINEAR;
    assert_int_equal(fr_dataset_csv_from_memory("a.png,0\n", 8, base, "mem.csv", &o, &ds), FR_STATUS_OK);
    assert_int_equal(ds->c, 3);
    px = tu_read_all(ds);
    assert_int_equal(px[0], 25); /* mean of 10,20,30,40 */
    free(px);
    fr_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hard_labels),
        cmocka_unit_test(test_soft_labels),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_missing_images),
        cmocka_unit_test(test_round_trip_formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
