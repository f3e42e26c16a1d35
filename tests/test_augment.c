/* RandAugment/TrivialAugment per-sample programs (torchvision table, reproducible, different per sample, the
 * same whatever the thread count) and the augmentation graph ops on the CPU backend against the host functions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "augment/augment_internal.h"
#include "core/threadpool.h"
#include "frugal/augment.h"

enum { N = 12, H = 24, W = 32, C = 3 };

static uint8_t *make_batch(int n, int h, int w, int c)
{
    uint8_t *b = malloc((size_t)n * h * w * c);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < c; k++) /* the same smooth picture in every sample */
                    b[(((size_t)i * h + y) * w + x) * c + k] = (uint8_t)(x * 6 + y * 3 + k * 40 + ((x / 4 + y / 4) % 2) * 50);
    return b;
}

static void test_torchvision_magnitudes(void **state)
{
    (void)state;
    /* torch.linspace(0, max, 31)[9] in float32 */
    assert_true(fr_aug_linspace31(0.0f, 30.0f, 9) == 9.0f);
    assert_true(fabsf(fr_aug_linspace31(0.0f, 0.3f, 9) - 0.09f) < 1e-7f);
    assert_true(fabsf(fr_aug_linspace31(255.0f, 0.0f, 9) - 178.5f) < 1e-4f);
    assert_true(fr_aug_linspace31(0.0f, 0.9f, 30) == 0.9f);
    /* Rotate at M=9 turns by ±9° about the centre: the record's inverse matrix has cos 9° on the diagonal */
    float rec[FR_AUG_REC];
    fr_aug_tv_record(FR_TV_ROTATE, 9.0, H, W, FR_AUG_NEAREST, 0, rec);
    double m[9];
    assert_int_equal((int)rec[FR_AUG_R_CODE], FR_AUG_OP_WARP);
    fr_aug_rec_matrix(rec, m);
    assert_true(fabs(m[0] - cos(9.0 * M_PI / 180)) < 1e-12);
    assert_true(fabs(m[1] + sin(9.0 * M_PI / 180)) < 1e-12); /* inverse of counter-clockwise */
    /* ShearX m: PIL (1, m, 0, 0, 1, 0) about the corner -> centre frame [1, m, m/2] */
    fr_aug_tv_record(FR_TV_SHEAR_X, 0.09, H, W, FR_AUG_NEAREST, 0, rec);
    fr_aug_rec_matrix(rec, m);
    assert_true(m[1] == 0.09 && m[2] == 0.045);
    /* TranslateX truncates the magnitude like int() */
    fr_aug_tv_record(FR_TV_TRANSLATE_X, -4.9, H, W, FR_AUG_NEAREST, 0, rec);
    fr_aug_rec_matrix(rec, m);
    assert_true(m[2] == 4.0);
    fr_aug_tv_record(FR_TV_BRIGHTNESS, -0.27, H, W, FR_AUG_NEAREST, 0, rec);
    assert_true((int)rec[FR_AUG_R_CODE] == FR_AUG_OP_BRIGHTNESS && fabsf(rec[FR_AUG_R_ARG] - 0.73f) < 1e-6f);
}

static void test_randaugment_reproducible_and_per_sample(void **state)
{
    (void)state;
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse("randaugment(n=2,m=9)", &pol), FR_STATUS_OK);
    int k = fr_aug_policy_max_ops(pol);
    assert_int_equal(k, 2);
    float *a = calloc((size_t)N * k * FR_AUG_REC, sizeof(float)), *b = calloc((size_t)N * k * FR_AUG_REC, sizeof(float));
    for (int i = 0; i < N; i++) {
        fr_aug_policy_draw(pol, 1234, 7, (uint32_t)i, H, W, a + (size_t)i * k * FR_AUG_REC);
        fr_aug_policy_draw(pol, 1234, 7, (uint32_t)i, H, W, b + (size_t)i * k * FR_AUG_REC);
    }
    assert_memory_equal(a, b, sizeof(float) * N * k * FR_AUG_REC);
    uint8_t *in = make_batch(N, H, W, C);
    uint8_t *o1 = malloc((size_t)N * H * W * C), *o2 = malloc((size_t)N * H * W * C);
    struct fr_aug_images ai = {in, FR_U8, FR_AUG_NHWC, N, H, W, C}, b1 = {o1, FR_U8, FR_AUG_NHWC, N, H, W, C};
    struct fr_aug_images b2 = {o2, FR_U8, FR_AUG_NHWC, N, H, W, C};
    assert_int_equal(fr_aug_apply_host(&ai, &b1, a, k, NULL), FR_STATUS_OK);
    struct fr_threadpool *pool = fr_threadpool_new(3);
    assert_non_null(pool);
    assert_int_equal(fr_aug_apply_host(&ai, &b2, a, k, pool), FR_STATUS_OK);
    fr_threadpool_free(pool);
    tu_assert_bytes_equal(o1, o2, (size_t)N * H * W * C); /* same bytes whatever the thread count */
    /* the same input picture comes out different for most samples */
    int distinct = 0;
    for (int i = 1; i < N; i++)
        distinct += memcmp(o1, o1 + (size_t)i * H * W * C, (size_t)H * W * C) != 0;
    assert_true(distinct >= N / 2);
    free(in), free(o1), free(o2), free(a), free(b);
    fr_aug_policy_free(pol);
}

static void test_randaugment_op_frequencies(void **state)
{
    (void)state;
    /* 14 ops drawn uniformly with replacement: 5 geometric (warp), Identity 1/14 */
    struct fr_aug_ra_cfg cfg = {.n = 2, .m = 9, .interp = FR_AUG_NEAREST};
    int warps = 0, ident = 0, total = 0;
    float rec[2 * FR_AUG_REC];
    for (uint32_t s = 0; s < 4000; s++) {
        fr_aug_randaugment_draw(&cfg, 99, 0, s, 0, H, W, rec);
        for (int j = 0; j < 2; j++, total++) {
            warps += (int)rec[j * FR_AUG_REC] == FR_AUG_OP_WARP;
            ident += (int)rec[j * FR_AUG_REC] == FR_AUG_OP_IDENTITY;
        }
    }
    assert_true(fabs((double)warps / total - 5.0 / 14) < 0.02);
    assert_true(fabs((double)ident / total - 1.0 / 14) < 0.015);
    /* TF scale: geometric ops fill with 128 */
    cfg.tf = 1, cfg.fill = 128, cfg.m = 10;
    int tf_warps = 0;
    for (uint32_t s = 0; s < 200; s++) {
        fr_aug_randaugment_draw(&cfg, 99, 0, s, 0, H, W, rec);
        for (int j = 0; j < 2; j++)
            if ((int)rec[j * FR_AUG_REC] == FR_AUG_OP_WARP) {
                assert_true(rec[j * FR_AUG_REC + 3] == 128.0f);
                tf_warps++;
            }
    }
    assert_true(tf_warps > 0);
}

static void test_trivialaugment(void **state)
{
    (void)state;
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse("trivialaugment", &pol), FR_STATUS_OK);
    assert_int_equal(fr_aug_policy_max_ops(pol), 1);
    int codes[FR_AUG_OP_COUNT] = {0};
    for (uint32_t s = 0; s < 500; s++) {
        float rec[FR_AUG_REC];
        fr_aug_policy_draw(pol, 5, 0, s, H, W, rec);
        codes[(int)rec[FR_AUG_R_CODE]]++;
    }
    assert_true(codes[FR_AUG_OP_WARP] > 100 && codes[FR_AUG_OP_EQUALIZE] > 10 && codes[FR_AUG_OP_IDENTITY] > 10);
    fr_aug_policy_free(pol);
}

static void run_graph(struct fr_ctx *ctx, struct fr_tensor *out, struct fr_tensor **in, const void **data,
                      const size_t *sizes, int n_in, void *res, size_t res_size)
{
    struct fr_backend *be = fr_backend_cpu_new(2);
    assert_non_null(be);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    for (int i = 0; i < n_in; i++)
        assert_int_equal(fr_tensor_set(in[i], data[i], sizes[i]), FR_STATUS_OK);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    assert_int_equal(fr_tensor_get(out, res, res_size), FR_STATUS_OK);
    fr_graph_free(g);
    fr_backend_free(be);
}

static void test_graph_apply_matches_host(void **state)
{
    (void)state;
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse("rrc(size=(16,20));hflip;randaugment(n=2,m=15)", &pol), FR_STATUS_OK);
    int k = fr_aug_policy_max_ops(pol), oh, ow;
    fr_aug_policy_out_size(pol, H, W, &oh, &ow);
    float *prog = malloc(sizeof(float) * N * k * FR_AUG_REC);
    for (int i = 0; i < N; i++)
        fr_aug_policy_draw(pol, 3, 1, (uint32_t)i, H, W, prog + (size_t)i * k * FR_AUG_REC);
    uint8_t *in = make_batch(N, H, W, C);
    size_t osz = (size_t)N * oh * ow * C;
    uint8_t *want = malloc(osz), *got = malloc(osz);
    struct fr_aug_images ai = {in, FR_U8, FR_AUG_NHWC, N, H, W, C}, bo = {want, FR_U8, FR_AUG_NHWC, N, oh, ow, C};
    assert_int_equal(fr_aug_apply_host(&ai, &bo, prog, k, NULL), FR_STATUS_OK);

    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new_4d(ctx, FR_U8, N, H, W, C), FR_FLAG_INPUT);
    struct fr_tensor *p = fr_tensor_set_flags(fr_tensor_new(ctx, FR_F32, 3, (int64_t[]){N, k, FR_AUG_REC}), FR_FLAG_INPUT);
    struct fr_tensor *y = fr_aug_apply(ctx, x, p, oh, ow, FR_AUG_NHWC);
    assert_non_null(y);
    run_graph(ctx, y, (struct fr_tensor *[]){x, p}, (const void *[]){in, prog},
              (size_t[]){(size_t)N * H * W * C, sizeof(float) * N * k * FR_AUG_REC}, 2, got, osz);
    tu_assert_bytes_equal(got, want, osz);
    fr_ctx_free(ctx);
    free(in), free(want), free(got), free(prog);
    fr_aug_policy_free(pol);
}

static void test_graph_warp_and_shapes(void **state)
{
    (void)state;
    /* per-sample matrices in one launch: sample 0 identity, sample 1 horizontal flip (NCHW f32) */
    enum { n = 2, h = 2, w = 3, c = 2 };
    float in[n * c * h * w], out[n * c * h * w];
    for (int i = 0; i < n * c * h * w; i++)
        in[i] = (float)i;
    const float mats[2 * 9] = {1, 0, 0, 0, 1, 0, 0, 0, 1, -1, 0, 2, 0, 1, 0, 0, 0, 1};
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new_4d(ctx, FR_F32, n, c, h, w), FR_FLAG_INPUT);
    struct fr_tensor *m = fr_tensor_set_flags(fr_tensor_new_2d(ctx, FR_F32, n, 9), FR_FLAG_INPUT);
    struct fr_tensor *y = fr_aug_warp(ctx, x, m, h, w, FR_AUG_NCHW, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0);
    assert_non_null(y);
    run_graph(ctx, y, (struct fr_tensor *[]){x, m}, (const void *[]){in, mats}, (size_t[]){sizeof in, sizeof mats}, 2,
              out, sizeof out);
    assert_memory_equal(out, in, sizeof(float) * c * h * w);
    for (int k = 0; k < c; k++)
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < w; xx++)
                assert_true(out[((1 * c + k) * h + yy) * w + xx] == in[((1 * c + k) * h + yy) * w + (w - 1 - xx)]);
    /* bad shapes are construction errors, not crashes */
    assert_null(fr_aug_warp(ctx, x, x, h, w, FR_AUG_NCHW, FR_AUG_BILINEAR, FR_AUG_CONSTANT, 0));
    assert_null(fr_aug_apply(ctx, x, m, h, w, FR_AUG_NCHW));
    struct fr_tensor *five = fr_tensor_new_4d(ctx, FR_U8, 1, 4, 4, 5);
    assert_null(fr_aug_mix(ctx, five, m, FR_AUG_NHWC));
    fr_ctx_free(ctx);
}

static void test_graph_mix_labels_and_normalize(void **state)
{
    (void)state;
    enum { n = 4, h = 4, w = 4, c = 3, nc = 5 };
    uint8_t img[n * h * w * c];
    for (int i = 0; i < n * h * w * c; i++)
        img[i] = (uint8_t)(i * 13);
    int32_t labels[n] = {0, 1, 2, 4};
    float rec[n * FR_AUG_MIX_REC];
    struct fr_aug_mix_cfg cfg = {FR_AUG_MIX_CUTMIX, 1.0, 1.0, 0, 0};
    fr_aug_mix_draw(&cfg, 8, 0, n, h, w, rec);
    float want[n * nc], got[n * nc];
    fr_aug_mix_labels_host(labels, n, nc, rec, want);
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *l = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_I32, n), FR_FLAG_INPUT);
    struct fr_tensor *r = fr_tensor_set_flags(fr_tensor_new_2d(ctx, FR_F32, n, FR_AUG_MIX_REC), FR_FLAG_INPUT);
    struct fr_tensor *soft = fr_aug_mix_labels(ctx, l, r, nc);
    run_graph(ctx, soft, (struct fr_tensor *[]){l, r}, (const void *[]){labels, rec}, (size_t[]){sizeof labels, sizeof rec},
              2, got, sizeof got);
    assert_memory_equal(got, want, sizeof got);
    fr_ctx_free(ctx);

    /* u8 NHWC -> f32 NCHW with per-channel mean/std */
    const float mean[3] = {0.5f, 0.25f, 0.0f}, sd[3] = {0.5f, 0.25f, 2.0f};
    float out[n * c * h * w];
    ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new_4d(ctx, FR_U8, n, h, w, c), FR_FLAG_INPUT);
    struct fr_tensor *y = fr_aug_to_nchw(ctx, x, mean, sd);
    assert_non_null(y);
    assert_true(y->ne[0] == n && y->ne[1] == c && y->ne[2] == h && y->ne[3] == w);
    run_graph(ctx, y, (struct fr_tensor *[]){x}, (const void *[]){img}, (size_t[]){sizeof img}, 1, out, sizeof out);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            for (int p = 0; p < h * w; p++) {
                float v = img[(i * h * w + p) * c + k] / 255.0f;
                assert_true(fabsf(out[(i * c + k) * h * w + p] - (v - mean[k]) / sd[k]) < 1e-5f);
            }
    fr_ctx_free(ctx);
}

/* runs one AUG_WARP graph on `be`; returns the number of nodes that fell back to the CPU path */
static int warp_on(struct fr_backend *be, const void *img, size_t img_bytes, enum fr_dtype type, int layout,
                   const float *mats, int n, int h, int w, int c, int interp, int border, void *out, size_t out_bytes)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = layout == FR_AUG_NHWC ? fr_tensor_new_4d(ctx, type, n, h, w, c)
                                                : fr_tensor_new_4d(ctx, type, n, c, h, w);
    fr_tensor_set_flags(x, FR_FLAG_INPUT);
    struct fr_tensor *m = fr_tensor_set_flags(fr_tensor_new_2d(ctx, FR_F32, n, 9), FR_FLAG_INPUT);
    struct fr_tensor *y = fr_aug_warp(ctx, x, m, h, w, layout, interp, border, 17);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, y), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(x, img, img_bytes), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(m, mats, sizeof(float) * 9 * n), FR_STATUS_OK);
    if (fr_graph_compute(g) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    assert_int_equal(fr_tensor_get(y, out, out_bytes), FR_STATUS_OK);
    struct fr_graph_stats st;
    fr_graph_get_stats(g, &st);
    fr_graph_free(g);
    fr_ctx_free(ctx);
    return st.fallback_ops;
}

static void warp_parity(void)
{
    struct fr_backend *cl = NULL;
    if (fr_backend_open("cl:0:0", &cl) != FR_STATUS_OK || !cl) {
        print_message("no OpenCL device: parity not checked\n");
        skip();
    }
    struct fr_backend *cpu = fr_backend_cpu_new(1);
    enum { n = 4, h = 13, w = 17, c = 3 };
    static uint8_t img[n * h * w * c], a[n * h * w * c], b[n * h * w * c];
    static float fimg[n * h * w * c], fa[n * h * w * c], fb[n * h * w * c];
    for (int i = 0; i < n * h * w * c; i++) {
        img[i] = (uint8_t)((i * 2654435761u) >> 24);
        fimg[i] = img[i] / 255.0f;
    }
    /* per sample: a 30° rotation, a perspective, a flip, a shear with scale — one launch */
    float mats[n * 9];
    double f[9], inv[9];
    fr_geom_rotate(f, 30, (w - 1) / 2.0, (h - 1) / 2.0);
    fr_geom_invert(f, inv);
    for (int q = 0; q < 9; q++)
        mats[q] = (float)inv[q];
    const double src[8] = {0, 0, w - 1, 0, w - 1, h - 1, 0, h - 1}, dst[8] = {2, 1, w - 3, 0, w - 1, h - 2, 1, h - 1};
    fr_geom_perspective_from_points(dst, src, f);
    for (int q = 0; q < 9; q++)
        mats[9 + q] = (float)f[q];
    const float flip[9] = {-1, 0, w - 1, 0, 1, 0, 0, 0, 1}, shear[9] = {0.9f, 0.31f, -1.7f, 0.12f, 1.1f, 0.4f, 0, 0, 1};
    memcpy(mats + 18, flip, sizeof flip);
    memcpy(mats + 27, shear, sizeof shear);
    for (int layout = 0; layout < 2; layout++)
        for (int interp = 0; interp < 3; interp++)
            for (int border = 0; border < 3; border++) {
                warp_on(cpu, img, sizeof img, FR_U8, layout, mats, n, h, w, c, interp, border, a, sizeof a);
                /* on the device with doubles; else on the CPU path (one fallback) */
                assert_int_equal(warp_on(cl, img, sizeof img, FR_U8, layout, mats, n, h, w, c, interp, border, b, sizeof b),
                                 cl->no_fp64 ? 1 : 0);
                tu_assert_bytes_equal(b, a, sizeof a); /* bit-identical u8, nearest, bilinear and bicubic */
                warp_on(cpu, fimg, sizeof fimg, FR_F32, layout, mats, n, h, w, c, interp, border, fa, sizeof fa);
                warp_on(cl, fimg, sizeof fimg, FR_F32, layout, mats, n, h, w, c, interp, border, fb, sizeof fb);
                tu_assert_close(fb, fa, n * h * w * c, 1e-6f, 0);
            }
    fr_backend_free(cpu);
    fr_backend_free(cl);
}

static void test_opencl_warp_parity(void **state)
{
    (void)state;
    warp_parity();
}

/* noise_tol: grey levels the noise policy may differ by (0: bit-identical like every other policy) */
static void apply_parity(int noise_tol)
{
    struct fr_backend *cl = NULL;
    if (fr_backend_open("cl:0:0", &cl) != FR_STATUS_OK || !cl) {
        print_message("no OpenCL device: parity not checked\n");
        skip();
    }
    struct fr_backend *cpu = fr_backend_cpu_new(2);
    const char *policies[] = {
        "randaugment(n=2,m=9)",
        "randaugment(n=3,m=7,scale=tf)",
        "trivialaugment",
        "rrc(size=(20,24),scale=(0.3,1));hflip;rotate(degrees=40,interp=bicubic,border=reflect101);sharpness(p=1);"
        "equalize(p=1);autocontrast(p=1);color(p=1);contrast(p=1);posterize(p=0.5);solarize(p=0.5);solarize_add(p=0.5);"
        "invert(p=0.3);grayscale(p=0.3);cutout(size=9);erase(p=1);perspective(p=1,interp=bilinear);brightness(p=1)",
        "noise(std=6)",
    };
    enum { N = 24, H = 27, W = 31 };
    for (int c = 1; c <= 4; c += 2)
        for (int layout = 0; layout < 2; layout++)
            for (size_t pi = 0; pi < sizeof policies / sizeof *policies; pi++) {
                struct fr_aug_policy *pol;
                assert_int_equal(fr_aug_policy_parse(policies[pi], &pol), FR_STATUS_OK);
                int k = fr_aug_policy_max_ops(pol), oh, ow;
                fr_aug_policy_out_size(pol, H, W, &oh, &ow);
                float *prog = malloc(sizeof(float) * N * k * FR_AUG_REC);
                for (int i = 0; i < N; i++)
                    fr_aug_policy_draw(pol, 77, 5, (uint32_t)i, H, W, prog + (size_t)i * k * FR_AUG_REC);
                uint8_t *img = make_batch(N, H, W, c), *a = malloc((size_t)N * oh * ow * c),
                        *b = malloc((size_t)N * oh * ow * c);
                tu_aug_apply(cpu, img, layout, prog, N, k, H, W, c, oh, ow, a);
                assert_int_equal(tu_aug_apply(cl, img, layout, prog, N, k, H, W, c, oh, ow, b), 0);
                size_t diff = 0;
                int tol = strncmp(policies[pi], "noise", 5) ? 0 : noise_tol;
                for (size_t i = 0; i < (size_t)N * oh * ow * c; i++)
                    diff += abs((int)a[i] - (int)b[i]) > tol;
                if (diff)
                    fail_msg("%s (c=%d, layout %d): %zu of %zu bytes differ between the CPU path and OpenCL",
                             policies[pi], c, layout, diff, (size_t)N * oh * ow * c);
                free(img), free(a), free(b), free(prog);
                fr_aug_policy_free(pol);
            }
    fr_backend_free(cpu);
    fr_backend_free(cl);
}

static void test_opencl_apply_parity(void **state)
{
    (void)state;
    apply_parity(0);
}

/* The no-fp64 device path (int coordinate tables from the host, integer contrast mean and auto-contrast, float
 * noise) forced on a device that has doubles: the same bytes as the CPU path, except gaussian noise within 1 grey
 * level. Also PIL's auto-contrast quirk: lo = 0, hi = 25 maps 25 to 254, since 25 * (255.0 / 25) is
 * 254.99999999999997 in double. */
static void test_opencl_parity_no_fp64(void **state)
{
    (void)state;
    struct fr_backend *cl = NULL;
    if (fr_backend_open("cl:0:0", &cl) != FR_STATUS_OK || !cl) {
        print_message("no OpenCL device: parity not checked\n");
        skip();
    }
    assert_int_equal(setenv("FRUGAL_CL_FP64", "none", 1), 0);
    warp_parity();
    apply_parity(1);
    enum { N = 3, H = 4, W = 13 };
    uint8_t img[N * H * W], a[N * H * W], b[N * H * W];
    const int his[N] = {25, 29, 100}; /* all have quirk values (PIL: 25 -> 254, 29 -> 254, 100 -> 254) */
    for (int s = 0; s < N; s++)
        for (int i = 0; i < H * W; i++)
            img[s * H * W + i] = (uint8_t)(i * his[s] / (H * W - 1));
    float prog[N * FR_AUG_REC] = {0};
    for (int s = 0; s < N; s++)
        prog[s * FR_AUG_REC + FR_AUG_R_CODE] = FR_AUG_OP_AUTOCONTRAST;
    tu_aug_apply(cl, img, FR_AUG_NHWC, prog, N, 1, H, W, 1, H, W, b);
    struct fr_backend *cpu = fr_backend_cpu_new(1);
    tu_aug_apply(cpu, img, FR_AUG_NHWC, prog, N, 1, H, W, 1, H, W, a);
    for (int s = 0; s < N; s++) {
        assert_int_equal(a[s * H * W + H * W - 1], 254);
        assert_int_equal(a[s * H * W], 0);
    }
    tu_assert_bytes_equal(b, a, sizeof a);
    unsetenv("FRUGAL_CL_FP64");
    fr_backend_free(cpu);
    fr_backend_free(cl);
}

static void test_apply_errors(void **state)
{
    (void)state;
    uint8_t in[16], out[4];
    struct fr_aug_images a = {in, FR_U8, FR_AUG_NHWC, 1, 4, 4, 1}, b = {out, FR_U8, FR_AUG_NHWC, 1, 2, 2, 1};
    float rec[FR_AUG_REC] = {FR_AUG_OP_INVERT};
    /* a size change needs a warp first */
    assert_int_equal(fr_aug_apply_host(&a, &b, rec, 1, NULL), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "warp"));
    struct fr_aug_images c5 = {in, FR_U8, FR_AUG_NHWC, 1, 2, 2, 5};
    assert_int_equal(fr_aug_apply_host(&c5, &c5, rec, 1, NULL), FR_STATUS_SHAPE);
    float bad[FR_AUG_REC] = {FR_AUG_OP_WARP, 7};
    struct fr_aug_images s = {in, FR_U8, FR_AUG_NHWC, 1, 2, 2, 1};
    assert_int_equal(fr_aug_apply_host(&s, &b, bad, 1, NULL), FR_STATUS_INVALID_ARGUMENT);
}

/* The batch augmenter against the host functions on the same programs and mix records (drawn per global sample):
 * images, soft labels, a partial batch, an offset first sample, normalize(), CPU vs OpenCL bytes. */
static void augmenter_run(struct fr_backend *be, const char *policy, int batch, uint32_t step, uint32_t first, int n,
                          const uint8_t *in, void *out, const int32_t *lab, float *soft, int *fallbacks)
{
    struct fr_augmenter_opts ao = {.policy = policy, .seed = 99, .batch = batch, .h = H, .w = W, .c = C,
                                   .n_classes = 5};
    struct fr_augmenter *a;
    if (fr_augmenter_new(be, &ao, &a) != FR_STATUS_OK)
        fail_msg("augmenter '%s': %s", policy, fr_last_error());
    if (fr_augmenter_run(a, step, first, n, in, out, lab, soft) != FR_STATUS_OK)
        fail_msg("augmenter '%s': %s", policy, fr_last_error());
    if (fallbacks) {
        struct fr_graph_stats st;
        fr_graph_get_stats(fr_augmenter_graph(a), &st);
        *fallbacks = st.fallback_ops;
    }
    fr_augmenter_free(a);
}

static void test_augmenter(void **state)
{
    (void)state;
    struct fr_backend *cpu = fr_backend_cpu_new(2);
    const char *spec = "randaugment(n=2,m=9);cutmix(alpha=1)";
    uint8_t *in = make_batch(N, H, W, C);
    for (int i = 0; i < N * H * W * C; i++) /* samples differ, so mixing shows */
        in[i] = (uint8_t)(in[i] + (i / (H * W * C)) * 17);
    int32_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = (i * 3) % 5;
    enum { SZ = H * W * C };
    static uint8_t got[N * SZ], want[N * SZ], tmp[N * SZ];
    static float soft[N * 5], want_soft[N * 5];
    augmenter_run(cpu, spec, N, 4, 0, N, in, got, lab, soft, NULL);
    /* reference: host program runner and mixing on fr_aug_policy_draw / fr_aug_mix_draw_at */
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse(spec, &pol), FR_STATUS_OK);
    int k = fr_aug_policy_max_ops(pol);
    float *prog = malloc(sizeof(float) * N * k * FR_AUG_REC), mix[N * FR_AUG_MIX_REC];
    for (int i = 0; i < N; i++)
        assert_int_equal(fr_aug_policy_draw(pol, 99, 4, (uint32_t)i, H, W, prog + (size_t)i * k * FR_AUG_REC), FR_STATUS_OK);
    assert_int_equal(fr_aug_mix_draw_at(fr_aug_policy_mix(pol), 99, 4, 0, N, H, W, mix), FR_STATUS_OK);
    struct fr_aug_images ai = {in, FR_U8, FR_AUG_NHWC, N, H, W, C}, at = {tmp, FR_U8, FR_AUG_NHWC, N, H, W, C};
    struct fr_aug_images aw = {want, FR_U8, FR_AUG_NHWC, N, H, W, C};
    assert_int_equal(fr_aug_apply_host(&ai, &at, prog, k, NULL), FR_STATUS_OK);
    assert_int_equal(fr_aug_mix_host(&at, &aw, mix), FR_STATUS_OK);
    assert_int_equal(fr_aug_mix_labels_host(lab, N, 5, mix, want_soft), FR_STATUS_OK);
    tu_assert_bytes_equal(got, want, sizeof got);
    tu_assert_bytes_equal(soft, want_soft, sizeof soft);
    int mixed = 0;
    for (int i = 0; i < N; i++)
        mixed += (int)mix[i * FR_AUG_MIX_REC] == FR_AUG_MIX_CUTMIX;
    assert_true(mixed >= N / 2);
    free(prog);
    fr_aug_policy_free(pol);

    /* the same bytes on one thread */
    struct fr_backend *cpu1 = fr_backend_cpu_new(1);
    static uint8_t got1[N * SZ];
    static float soft1[N * 5];
    augmenter_run(cpu1, spec, N, 4, 0, N, in, got1, lab, soft1, NULL);
    tu_assert_bytes_equal(got1, got, sizeof got);
    tu_assert_bytes_equal(soft1, soft, sizeof soft);
    fr_backend_free(cpu1);

    /* without mixing, a sample's result depends only on (seed, step, its global index): samples 5..8 of a batch
     * equal a 4-image call at first_sample 5 with a batch of 6 (a partial batch) */
    static uint8_t part[4 * SZ];
    augmenter_run(cpu, "randaugment(n=2,m=9)", N, 4, 0, N, in, got, NULL, NULL, NULL);
    augmenter_run(cpu, "randaugment(n=2,m=9)", 6, 4, 5, 4, in + 5 * SZ, part, NULL, NULL, NULL);
    tu_assert_bytes_equal(part, got + 5 * SZ, sizeof part);

    /* normalize(): f32 NCHW (x/255 - mean)/std of the u8 result */
    static float f[N * SZ];
    augmenter_run(cpu, "randaugment(n=2,m=9);normalize(mean=(0.5,0.25,0),std=(0.5,2,1))", N, 4, 0, N, in, f, NULL,
                  NULL, NULL);
    const float mean[3] = {0.5f, 0.25f, 0}, sd[3] = {0.5f, 2, 1};
    for (int i = 0; i < N; i++)
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < H * W; p++) {
                float v = ((float)got[(size_t)i * SZ + p * C + ch] * (1.0f / 255.0f) - mean[ch]) / sd[ch];
                assert_true(f[((size_t)i * C + ch) * H * W + p] == v);
            }

    /* bad calls */
    struct fr_augmenter_opts ao = {.policy = spec, .seed = 1, .batch = 4, .h = H, .w = W, .c = C, .n_classes = 5};
    struct fr_augmenter *a;
    assert_int_equal(fr_augmenter_new(cpu, &ao, &a), FR_STATUS_OK);
    int32_t bad[4] = {0, 1, 5, 2};
    assert_int_equal(fr_augmenter_run(a, 0, 0, 4, in, got, bad, soft), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "label 5"));
    assert_int_equal(fr_augmenter_run(a, 0, 0, 5, in, got, NULL, NULL), FR_STATUS_INVALID_ARGUMENT);
    fr_augmenter_free(a);
    ao.policy = "cutmix(alpha=0)";
    assert_int_equal(fr_augmenter_new(cpu, &ao, &a), FR_STATUS_INVALID_ARGUMENT);
    /* finding 19: the message names the output size, not the input's */
    ao.policy = "resize(size=65536)";
    assert_int_equal(fr_augmenter_new(cpu, &ao, &a), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "4 images of 65536x65536x3"));

    /* the same bytes on an OpenCL device */
    struct fr_backend *cl = NULL;
    if (fr_backend_open("cl:0:0", &cl) == FR_STATUS_OK && cl) {
        static uint8_t got_cl[N * SZ];
        static float soft_cl[N * 5];
        augmenter_run(cpu, spec, N, 4, 0, N, in, got, lab, soft, NULL);
        augmenter_run(cl, spec, N, 4, 0, N, in, got_cl, lab, soft_cl, NULL);
        tu_assert_bytes_equal(got_cl, got, sizeof got);
        tu_assert_bytes_equal(soft_cl, soft, sizeof soft);
        fr_backend_free(cl);
    } else
        print_message("no OpenCL device: augmenter parity not checked\n");
    free(in);
    fr_backend_free(cpu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torchvision_magnitudes),
        cmocka_unit_test(test_randaugment_reproducible_and_per_sample),
        cmocka_unit_test(test_randaugment_op_frequencies),
        cmocka_unit_test(test_trivialaugment),
        cmocka_unit_test(test_graph_apply_matches_host),
        cmocka_unit_test(test_graph_warp_and_shapes),
        cmocka_unit_test(test_graph_mix_labels_and_normalize),
        cmocka_unit_test(test_apply_errors),
        cmocka_unit_test(test_augmenter),
        cmocka_unit_test(test_opencl_warp_parity),
        cmocka_unit_test(test_opencl_apply_parity),
        cmocka_unit_test(test_opencl_parity_no_fp64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
