/* Policy grammar: valid specs, error messages that list the valid ops/keys, output sizes, record counts,
 * fusion of geometric runs into one warp, and per-sample draws as a pure function of (seed, step, sample). */
#include <math.h>
#include <string.h>

#include "testutil.h"

#include "augment/augment_internal.h"
#include "frugal/augment.h"

static struct fr_aug_policy *parse_ok(const char *spec)
{
    struct fr_aug_policy *p = NULL;
    enum fr_status st = fr_aug_policy_parse(spec, &p);
    if (st != FR_STATUS_OK)
        fail_msg("'%s' did not parse: %s", spec, fr_last_error());
    return p;
}

static void parse_err(const char *spec, const char *needle)
{
    struct fr_aug_policy *p = NULL;
    assert_int_equal(fr_aug_policy_parse(spec, &p), FR_STATUS_INVALID_ARGUMENT);
    assert_null(p);
    if (!strstr(fr_last_error(), needle))
        fail_msg("'%s': error '%s' lacks '%s'", spec, fr_last_error(), needle);
}

static void test_valid_specs(void **state)
{
    (void)state;
    const char *specs[] = {"randaugment(n=2,m=9)",
                           "rrc(size=224);hflip(p=0.5);rotate(degrees=30,interp=bilinear,fill=0)",
                           " pad( amount = 4 ) ; crop(size=32, random=1) ; hflip ",
                           "rrc(size=(24,32),scale=(0.5,1),ratio=(0.75,1.333));trivialaugment;cutmix(alpha=1,p=0.5)",
                           "randaugment(n=2,m=27,scale=tf);normalize(mean=(0.5,0.5,0.5),std=0.25)",
                           "perspective(distortion=0.3,p=1,border=reflect101);erase(p=1);noise(std=4);mixup(alpha=0.2)",
                           "brightness(max=0.4);contrast;saturation;sharpness;posterize(bits=3);solarize;"
                           "solarize_add;invert;autocontrast;equalize;grayscale;cutout(size=8)",
                           "none", " NONE ;"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
        fr_aug_policy_free(parse_ok(specs[i]));
}

static void test_errors_list_valid_names(void **state)
{
    (void)state;
    parse_err("rotat(degrees=3)", "unknown op 'rotat'");
    parse_err("rotat(degrees=3)", "valid: rrc, resize, crop");
    parse_err("rotate(deg=3)", "unknown key 'deg' (valid: degrees, interp, border, fill, p)");
    parse_err("rotate(interp=linear)", "valid: nearest, bilinear, bicubic");
    parse_err("rotate(degrees=abc)", "needs a number");
    parse_err("rotate(degrees=3", "expected ',' or ')'");
    parse_err("rotate(degrees 3)", "expected '='");
    parse_err("hflip(p=2)", "p=2 must be in [0, 1]");
    parse_err("brightness;rrc(size=32)", "must come before pixel ops");
    parse_err("randaugment(n=99)", "n=99");
    parse_err("cutmix;hflip", "must come last");
    parse_err("rotate(degrees=(1,2))", "takes 1 value");
    parse_err("hflip rotate", "expected ';'");
    parse_err("mixup(alpha=0)", "alpha must be > 0");
    struct fr_aug_policy *p;
    assert_int_equal(fr_aug_policy_parse(NULL, &p), FR_STATUS_INVALID_ARGUMENT);
}

/* new-user findings 19 and 31: parse-time range checks, duplicate keys, empty policies, 'none' */
static void test_findings(void **state)
{
    (void)state;
    parse_err("", "has no op");
    parse_err(";;;", "has no op");
    parse_err("hflip(p=0.5,p=0.1)", "hflip: p given twice");
    parse_err("shear(x=1e9)", "shear factors must be in [-10, 10]");
    parse_err("translate(x=3)", "in [-1, 1]");
    parse_err("posterize(bits=9)", "bits=9 must be 0..8");
    parse_err("none;hflip", "unknown op 'none'");
    struct fr_aug_policy *p = parse_ok("none");
    int oh, ow;
    fr_aug_policy_out_size(p, 5, 7, &oh, &ow);
    assert_true(oh == 5 && ow == 7 && fr_aug_policy_mix(p) == NULL);
    float rec[FR_AUG_REC];
    assert_int_equal(fr_aug_policy_draw(p, 1, 2, 3, 5, 7, rec), FR_STATUS_OK);
    assert_true(rec[FR_AUG_R_CODE] == FR_AUG_OP_IDENTITY);
    fr_aug_policy_free(p);
    /* a big shear or translation is not singular; a random crop of a 1x500 image resized to 50x50 works */
    double m[9] = {1, 1e9, -3e9, 0, 1, 0, 0, 0, 1}, inv[9];
    assert_int_equal(fr_geom_invert(m, inv), FR_STATUS_OK);
    p = parse_ok("rrc(size=50)");
    static uint8_t wide[500], out[50 * 50];
    for (int i = 0; i < 500; i++)
        wide[i] = (uint8_t)i;
    for (uint32_t s = 0; s < 20; s++) {
        if (fr_aug_policy_draw(p, 1, s, 0, 1, 500, rec) != FR_STATUS_OK)
            fail_msg("rrc on 1x500, step %u: %s", s, fr_last_error());
        struct fr_aug_images a = {wide, FR_U8, FR_AUG_NHWC, 1, 1, 500, 1}, b = {out, FR_U8, FR_AUG_NHWC, 1, 50, 50, 1};
        assert_int_equal(fr_aug_apply_host(&a, &b, rec, 1, NULL), FR_STATUS_OK);
    }
    fr_aug_policy_free(p);
    p = parse_ok("rrc(size=5000)"); /* the finding's repro: 'singular transform matrix (determinant 2.5e+07)' */
    for (uint32_t s = 0; s < 20; s++)
        if (fr_aug_policy_draw(p, 1, s, 0, 1, 5000, rec) != FR_STATUS_OK)
            fail_msg("rrc(size=5000) on 1x5000, step %u: %s", s, fr_last_error());
    fr_aug_policy_free(p);
    /* a truly singular map says so, without calling a determinant of 1 singular */
    const double flat[9] = {1, 2, 0, 2, 4, 0, 0, 0, 1};
    assert_int_equal(fr_geom_invert(flat, inv), FR_STATUS_NUMERIC);
    assert_non_null(strstr(fr_last_error(), "onto a line"));
}

static void test_sizes_and_counts(void **state)
{
    (void)state;
    int h, w;
    struct fr_aug_policy *p = parse_ok("rrc(size=224);hflip;rotate;brightness;randaugment(n=2,m=9)");
    fr_aug_policy_out_size(p, 375, 500, &h, &w);
    assert_int_equal(h, 224);
    assert_int_equal(w, 224);
    assert_int_equal(fr_aug_policy_max_ops(p), 4); /* fused warp + brightness + 2 RandAugment ops */
    fr_aug_policy_free(p);
    p = parse_ok("pad(amount=4);crop(size=32,random=1);hflip");
    fr_aug_policy_out_size(p, 32, 32, &h, &w);
    assert_true(h == 32 && w == 32);
    assert_int_equal(fr_aug_policy_max_ops(p), 1);
    fr_aug_policy_free(p);
    p = parse_ok("resize(size=(10,20));normalize;cutmix");
    fr_aug_policy_out_size(p, 7, 7, &h, &w);
    assert_true(h == 10 && w == 20);
    float mean[4], sd[4];
    assert_int_equal(fr_aug_policy_normalize(p, mean, sd), 1);
    assert_true(fabsf(mean[0] - 0.485f) < 1e-6f && fabsf(sd[2] - 0.225f) < 1e-6f);
    assert_non_null(fr_aug_policy_mix(p));
    assert_int_equal(fr_aug_policy_mix(p)->mode, FR_AUG_MIX_CUTMIX);
    fr_aug_policy_free(p);
}

static void test_fused_flips(void **state)
{
    (void)state;
    /* hflip and vflip with p=1 fuse into one warp: a 180° turn, x -> W-1-x, y -> H-1-y */
    struct fr_aug_policy *p = parse_ok("hflip(p=1);vflip(p=1)");
    float rec[FR_AUG_REC];
    assert_int_equal(fr_aug_policy_max_ops(p), 1);
    assert_int_equal(fr_aug_policy_draw(p, 1, 0, 0, 4, 6, rec), FR_STATUS_OK);
    assert_int_equal((int)rec[FR_AUG_R_CODE], FR_AUG_OP_WARP);
    assert_int_equal((int)rec[FR_AUG_R_INTERP], FR_AUG_NEAREST); /* exact maps stay nearest */
    const double want[9] = {-1, 0, 5, 0, -1, 3, 0, 0, 1};
    double m[9];
    fr_aug_rec_matrix(rec, m);
    assert_memory_equal(m, want, sizeof m);
    /* and the pixels are the 180° rotation */
    uint8_t in[24], out[24];
    for (int i = 0; i < 24; i++)
        in[i] = (uint8_t)i;
    struct fr_aug_images a = {in, FR_U8, FR_AUG_NHWC, 1, 4, 6, 1}, b = {out, FR_U8, FR_AUG_NHWC, 1, 4, 6, 1};
    assert_int_equal(fr_aug_apply_host(&a, &b, rec, 1, NULL), FR_STATUS_OK);
    for (int i = 0; i < 24; i++)
        assert_int_equal(out[i], 23 - i);
    fr_aug_policy_free(p);
}

static void test_crop_and_pad(void **state)
{
    (void)state;
    /* centre crop 2x2 of a 4x4 ramp, then pad 1 with fill 9 -> 4x4 frame around the centre */
    struct fr_aug_policy *p = parse_ok("crop(size=2);pad(amount=1,fill=9)");
    float rec[FR_AUG_REC];
    fr_aug_policy_draw(p, 1, 0, 0, 4, 4, rec);
    uint8_t in[16], out[16];
    for (int i = 0; i < 16; i++)
        in[i] = (uint8_t)i;
    struct fr_aug_images a = {in, FR_U8, FR_AUG_NHWC, 1, 4, 4, 1}, b = {out, FR_U8, FR_AUG_NHWC, 1, 4, 4, 1};
    assert_int_equal(fr_aug_apply_host(&a, &b, rec, 1, NULL), FR_STATUS_OK);
    tu_assert_bytes_equal(out, (const uint8_t[]){9, 9, 9, 9, 9, 5, 6, 9, 9, 9, 10, 9, 9, 9, 9, 9}, 16);
    fr_aug_policy_free(p);
}

static void test_draw_pure_function(void **state)
{
    (void)state;
    struct fr_aug_policy *p = parse_ok("rrc(size=16);hflip;rotate(degrees=40);brightness;randaugment(n=2,m=9)");
    int k = fr_aug_policy_max_ops(p);
    float a[8 * FR_AUG_REC], b[8 * FR_AUG_REC], c[8 * FR_AUG_REC], d[8 * FR_AUG_REC];
    assert_true(k <= 8);
    fr_aug_policy_draw(p, 11, 3, 5, 40, 50, a);
    fr_aug_policy_draw(p, 11, 3, 5, 40, 50, b);
    fr_aug_policy_draw(p, 11, 3, 6, 40, 50, c); /* another sample */
    fr_aug_policy_draw(p, 11, 4, 5, 40, 50, d); /* another step */
    assert_memory_equal(a, b, sizeof(float) * FR_AUG_REC * k);
    assert_true(memcmp(a, c, sizeof(float) * FR_AUG_REC * k) != 0);
    assert_true(memcmp(a, d, sizeof(float) * FR_AUG_REC * k) != 0);
    fr_aug_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_specs),   cmocka_unit_test(test_errors_list_valid_names),
        cmocka_unit_test(test_sizes_and_counts), cmocka_unit_test(test_fused_flips),
        cmocka_unit_test(test_crop_and_pad),  cmocka_unit_test(test_draw_pure_function),
        cmocka_unit_test(test_findings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
