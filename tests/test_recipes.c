/* Semi-supervised recipes on a small synthetic dataset (CPU path): FixMatch (a threshold of 1 equals an unlabeled
 * loss weight of 0, a threshold of 0 changes training, range checks and an empty unlabeled set fail before
 * training), the weights' moving average (validated, saved beside the checkpoint, absent without a decay),
 * pseudo-label reports against predictions computed here, test-time flips and teacher ensembles, distillation with
 * MixUp (a step's loss against the teacher and student run on the same view made on the host), out-of-fold and
 * ensemble teacher logits, self-training rounds (students fresh or from their teacher) and the demo's checks
 * (teacher classes, thresholds, no unlabeled images). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frugal/recipes.h"
#include "testutil.h"

enum { H = 28, K = 10, N = 400 };

/* images whose brightness pattern depends on the class, plus per-image noise: learnable in a few steps */
static void make_ds(struct fr_dataset *ds, int n, int k)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->c = 1, ds->h = ds->w = H, ds->n_classes = k;
    ds->source = (char *)"synthetic";
    ds->pixels = malloc((size_t)n * H * H);
    ds->labels = malloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        int y = i % k;
        ds->labels[i] = y;
        for (int p = 0; p < H * H; p++) {
            int band = (p / H) * k / H == y; /* the class's band of rows is bright */
            ds->pixels[(size_t)i * H * H + p] = (uint8_t)((band ? 200 : 30) + (((unsigned)(i * 131 + p * 7) * 2654435761u) >> 28));
        }
    }
}

static void free_ds(struct fr_dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
}

struct fx {
    struct fr_dataset ds;
    struct fr_split sp;
};

static void fx_init(struct fx *f)
{
    make_ds(&f->ds, N, K);
    assert_int_equal(fr_split_make(&f->ds, 100, 20, 3, &f->sp), FR_STATUS_OK); /* 80 labeled, 20 val, 300 unlabeled */
}

static void fx_free(struct fx *f)
{
    fr_split_free(&f->sp);
    free_ds(&f->ds);
}

static void fixmatch_opts(struct fr_fixmatch_opts *o, const struct fx *f)
{
    fr_fixmatch_opts_init(o);
    o->fit.epochs = 1;
    o->fit.batch = 8;
    o->fit.mu = 3;
    o->fit.seed = 4;
    o->fit.val_ds = &f->ds;
    o->fit.val_idx = f->sp.val;
    o->fit.n_val = f->sp.n_val;
}

static enum fr_status fixmatch_run(const struct fx *f, const struct fr_fixmatch_opts *o, struct fr_fit_result *r,
                                   struct fr_net **keep)
{
    struct fr_net *net;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 4, &net), FR_STATUS_OK);
    enum fr_status st = fr_fixmatch(net, &f->ds, &f->sp, o, r);
    if (keep && st == FR_STATUS_OK)
        *keep = net;
    else
        fr_net_free(net);
    return st;
}

static void test_fixmatch_threshold(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_fixmatch_opts o;
    fixmatch_opts(&o, &f);
    struct fr_fit_result none, never, all;
    o.fit.lambda_u = 0.0f; /* the unlabeled loss weighs nothing */
    assert_int_equal(fixmatch_run(&f, &o, &none, NULL), FR_STATUS_OK);
    o.fit.lambda_u = 1.0f;
    o.fit.threshold = 1.0f; /* no softmax of finite logits reaches 1 (over 10 classes in float): no target is kept */
    assert_int_equal(fixmatch_run(&f, &o, &never, NULL), FR_STATUS_OK);
    o.fit.threshold = 0.0f; /* every weak prediction is a target */
    assert_int_equal(fixmatch_run(&f, &o, &all, NULL), FR_STATUS_OK);
    /* an epoch is one pass over the 300 unlabeled images, 24 of them per step */
    assert_int_equal((int)none.steps, 300 / 24);
    assert_true(isfinite(none.train_loss) && none.train_loss > 0);
    assert_true(never.train_loss == none.train_loss && never.val_accuracy == none.val_accuracy);
    assert_true(all.train_loss != none.train_loss);
    fx_free(&f);
}

static void test_fixmatch_bad_input(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_fixmatch_opts o;
    fixmatch_opts(&o, &f);
    struct fr_fit_result r;
    const float bad[] = {-0.1f, 1.5f, NAN};
    for (int i = 0; i < 3; i++) {
        o.fit.threshold = bad[i];
        assert_int_equal(fixmatch_run(&f, &o, &r, NULL), FR_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(fr_last_error(), "threshold"));
        assert_int_equal((int)r.steps, 0); /* before any training */
    }
    o.fit.threshold = 0.95f;
    o.fit.mu = 0;
    assert_int_equal(fixmatch_run(&f, &o, &r, NULL), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "mu"));
    o.fit.mu = 3;
    /* every image labeled: nothing left to learn from without labels */
    struct fr_split all;
    assert_int_equal(fr_split_make(&f.ds, 0, 20, 3, &all), FR_STATUS_OK);
    assert_int_equal(all.n_unlabeled, 0);
    struct fr_net *net;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 4, &net), FR_STATUS_OK);
    assert_int_equal(fr_fixmatch(net, &f.ds, &all, &o, &r), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "no unlabeled images"));
    fr_split_free(&all);
    /* a network for other classes */
    fr_net_free(net);
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, 5, NULL, 4, &net), FR_STATUS_OK);
    assert_int_equal(fr_fixmatch(net, &f.ds, &f.sp, &o, &r), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "10 classes, the network 5"));
    fr_net_free(net);
    fx_free(&f);
}

/* --ema: the average validates, is saved as <name>_ema.safetensors and loads back with the same predictions */
static void test_ema_checkpoint(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char dir[256];
    assert_int_equal(tu_tmpdir_create(dir, sizeof dir, "ema"), 0);
    struct fr_fixmatch_opts o;
    fixmatch_opts(&o, &f);
    o.fit.optim.ema = 0.9f;
    o.fit.out_dir = dir;
    o.fit.ckpt_name = "fm";
    struct fr_fit_result r;
    struct fr_net *net = NULL, *avg = NULL, *back = NULL;
    assert_int_equal(fixmatch_run(&f, &o, &r, &net), FR_STATUS_OK);
    assert_true(r.val_accuracy_ema >= 0 && r.val_accuracy_ema <= 1);
    assert_int_equal(fr_net_ema(net, &avg), FR_STATUS_OK);
    assert_int_equal(fr_net_load(tu_cpu, tu_path(dir, "fm_ema.safetensors"), &back), FR_STATUS_OK);
    static float la[N * K], lb[N * K], lr[N * K];
    assert_int_equal(fr_net_predict_u8(avg, f.ds.pixels, N, la), FR_STATUS_OK);
    assert_int_equal(fr_net_predict_u8(back, f.ds.pixels, N, lb), FR_STATUS_OK);
    assert_int_equal(fr_net_predict_u8(net, f.ds.pixels, N, lr), FR_STATUS_OK);
    tu_assert_bytes_equal(la, lb, sizeof la);
    assert_true(memcmp(la, lr, sizeof la) != 0); /* the average is not the raw weights */
    fr_net_free(back);
    fr_net_free(avg);
    fr_net_free(net);
    /* without a decay there is no average */
    o.fit.optim.ema = 0.0f;
    o.fit.out_dir = NULL;
    assert_int_equal(fixmatch_run(&f, &o, &r, &net), FR_STATUS_OK);
    assert_true(isnan(r.val_accuracy_ema));
    assert_int_equal(fr_net_ema(net, &avg), FR_STATUS_NOT_FOUND);
    fr_net_free(net);
    tu_tmpdir_remove(dir);
    fx_free(&f);
}

/* a teacher trained a little on the labeled images */
static struct fr_net *teacher_of(const struct fx *f)
{
    struct fr_net *t;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 2, &t), FR_STATUS_OK);
    struct fr_trainset ts = {.n_classes = K};
    assert_int_equal(fr_trainset_add(&ts, 0, &f->ds, f->sp.labeled, f->sp.n_labeled, NULL, NULL), FR_STATUS_OK);
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    fo.epochs = 4;
    fo.batch = 16;
    fo.sched.base_lr = 0.01f;
    struct fr_fit_result r;
    assert_int_equal(fr_fit(t, &ts, &fo, &r), FR_STATUS_OK);
    fr_trainset_free(&ts);
    return t;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* the report: confident images, their accuracy against the hidden labels and the class histogram, recomputed here
 * from the teacher's logits */
static void test_pseudo_report(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_net *t = teacher_of(&f);
    const int64_t n = f.sp.n_unlabeled;
    float *logits = malloc((size_t)n * K * sizeof *logits);
    assert_int_equal(fr_net_predict(t, &f.ds, f.sp.unlabeled, n, logits), FR_STATUS_OK);
    /* top probabilities; the threshold is their median, so that it splits the set */
    float *top = malloc((size_t)n * sizeof *top), *sorted = malloc((size_t)n * sizeof *sorted);
    int *arg = malloc((size_t)n * sizeof *arg);
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * K;
        int best = 0;
        double s = 0;
        for (int c = 1; c < K; c++)
            best = z[c] > z[best] ? c : best;
        for (int c = 0; c < K; c++)
            s += exp((double)z[c] - z[best]);
        top[i] = sorted[i] = (float)(1.0 / s);
        arg[i] = best;
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_float);
    const float thr = sorted[n / 2];
    int64_t conf = 0, right = 0, hist[K] = {0};
    for (int64_t i = 0; i < n; i++)
        if (top[i] >= thr) {
            conf++;
            hist[arg[i]]++;
            right += arg[i] == f.ds.labels[f.sp.unlabeled[i]];
        }
    free(top);
    free(sorted);
    free(arg);
    struct fr_pseudo ps;
    assert_int_equal(fr_pseudo_label(t, &f.ds, f.sp.unlabeled, n, &(struct fr_pseudo_opts){.threshold = thr}, &ps),
                     FR_STATUS_OK);
    assert_true(conf > 0 && conf < n); /* the threshold splits the set: the check means something */
    assert_int_equal(ps.report.unlabeled, n);
    assert_int_equal(ps.report.confident, conf);
    assert_int_equal(ps.report.rows, conf);
    assert_true(fabs(ps.report.accuracy - (double)right / (double)conf) < 1e-12);
    for (int c = 0; c < K; c++)
        assert_int_equal(ps.report.class_confident[c], hist[c]);
    fr_pseudo_free(&ps);
    free(logits);
    fr_net_free(t);
    fx_free(&f);
}

/* softmax of a row in double */
static void softmax_row(const float *z, double *p)
{
    double m = z[0], s = 0;
    for (int c = 1; c < K; c++)
        m = z[c] > m ? z[c] : m;
    for (int c = 0; c < K; c++)
        s += p[c] = exp((double)z[c] - m);
    for (int c = 0; c < K; c++)
        p[c] /= s;
}

/* test-time flips and a second teacher: the kept probabilities are the mean of softmax over each teacher and each
 * image and its mirror image, recomputed here from logits of mirrored pixels */
static void test_pseudo_flip_ensemble(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_net *t1 = teacher_of(&f), *t2;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 11, &t2), FR_STATUS_OK);
    enum { M = 12 };
    const int64_t *idx = f.sp.unlabeled;
    static uint8_t img[M * H * H], mir[M * H * H];
    for (int i = 0; i < M; i++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++) {
                uint8_t v = f.ds.pixels[(size_t)idx[i] * H * H + y * H + x];
                img[i * H * H + y * H + x] = v;
                mir[i * H * H + y * H + (H - 1 - x)] = v;
            }
    struct fr_net *nets[2] = {t1, t2};
    double want[M * K] = {0};
    for (int t = 0; t < 2; t++)
        for (int v = 0; v < 2; v++) {
            static float z[M * K];
            assert_int_equal(fr_net_predict_u8(nets[t], v ? mir : img, M, z), FR_STATUS_OK);
            for (int i = 0; i < M; i++) {
                double p[K];
                softmax_row(z + i * K, p);
                for (int c = 0; c < K; c++)
                    want[i * K + c] += p[c] / 4;
            }
        }
    struct fr_pseudo ps;
    struct fr_pseudo_opts po = {.threshold = 0.0f, .flip = true, .teachers = &t2, .n_teachers = 1};
    assert_int_equal(fr_pseudo_label(t1, &f.ds, idx, M, &po, &ps), FR_STATUS_OK);
    assert_int_equal(ps.n, M);
    for (int64_t r = 0; r < ps.n; r++) {
        int i = -1;
        for (int j = 0; j < M; j++)
            i = idx[j] == ps.idx[r] ? j : i;
        assert_true(i >= 0);
        for (int c = 0; c < K; c++)
            if (fabs(ps.prob[r * K + c] - want[i * K + c]) > 1e-5)
                fail_msg("image %d class %d: %g, want %g", i, c, ps.prob[r * K + c], want[i * K + c]);
    }
    fr_pseudo_free(&ps);
    /* a second teacher of other classes is refused */
    struct fr_net *t5;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, 5, NULL, 11, &t5), FR_STATUS_OK);
    po.teachers = &t5;
    assert_int_equal(fr_pseudo_label(t1, &f.ds, idx, M, &po, &ps), FR_STATUS_INVALID_ARGUMENT);
    fr_net_free(t5);
    fr_net_free(t2);
    fr_net_free(t1);
    fx_free(&f);
}

/* distillation with MixUp (consistent teaching: the teacher in the graph sees the same mixed images); a mixing stage
 * that never fires equals distillation without one, for the pure teacher term and with a share of mixed labels */
/* cached: the teacher's logits computed once, of the images as they are (CACHED), of them and their mirror images
 * (CACHED_MIRRORED; CACHED_SWAPPED: the two views' logits exchanged, the wrong ones), or the teacher in the graph */
enum { IN_GRAPH, CACHED, CACHED_MIRRORED, CACHED_SWAPPED };
static double distill_loss(const struct fx *f, struct fr_net *teacher, const char *augment, float alpha, int cached,
                           enum fr_status want)
{
    struct fr_net *net;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 6, &net), FR_STATUS_OK);
    struct fr_trainset ts = {.n_classes = K};
    assert_int_equal(fr_trainset_add(&ts, 0, &f->ds, f->sp.labeled, f->sp.n_labeled, NULL, NULL), FR_STATUS_OK);
    if (cached == CACHED) {
        ts.teacher = malloc((size_t)ts.cap * K * sizeof(float));
        assert_int_equal(fr_net_predict(teacher, &f->ds, ts.idx, ts.n, ts.teacher), FR_STATUS_OK);
    } else if (cached != IN_GRAPH) {
        assert_int_equal(fr_trainset_cache_teachers(&ts, &teacher, 1, false, true), FR_STATUS_OK);
        assert_int_equal(ts.teacher_views, 2);
        for (int64_t i = 0; cached == CACHED_SWAPPED && i < ts.n; i++)
            for (int c = 0; c < K; c++) {
                float *row = ts.teacher + i * 2 * K, z = row[c];
                row[c] = row[K + c];
                row[K + c] = z;
            }
    }
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    fo.epochs = 1;
    fo.batch = 16;
    fo.seed = 8;
    fo.augment = augment;
    fo.distill = true;
    fo.alpha = alpha;
    fo.teacher = teacher;
    struct fr_fit_result r;
    assert_int_equal(fr_fit(net, &ts, &fo, &r), want);
    fr_trainset_free(&ts);
    fr_net_free(net);
    return want == FR_STATUS_OK ? r.train_loss : NAN;
}

static void test_distill_mixup(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_net *t = teacher_of(&f);
    const float alphas[2] = {1.0f, 0.7f};
    for (int i = 0; i < 2; i++) {
        double plain = distill_loss(&f, t, "hflip(p=0)", alphas[i], IN_GRAPH, FR_STATUS_OK);
        double never = distill_loss(&f, t, "hflip(p=0);mixup(alpha=1,p=0)", alphas[i], IN_GRAPH, FR_STATUS_OK);
        double mixed = distill_loss(&f, t, "hflip(p=0);mixup(alpha=1)", alphas[i], IN_GRAPH, FR_STATUS_OK);
        assert_true(isfinite(plain) && plain > 0 && isfinite(mixed) && mixed > 0);
        if (fabs(never - plain) > 1e-5 * plain)
            fail_msg("alpha %g: a mixup stage that never fires gives loss %.9g, without it %.9g", alphas[i], never, plain);
        assert_true(fabs(mixed - plain) > 1e-4 * plain);
    }
    /* cached logits belong to the un-mixed images */
    distill_loss(&f, t, "mixup(alpha=1)", 1.0f, CACHED, FR_STATUS_UNSUPPORTED);
    assert_non_null(strstr(fr_last_error(), "training graph"));
    fr_net_free(t);
    fx_free(&f);
}

/* the teacher's logits cached for each image and its mirror image (fr_trainset_cache_teachers, mirrored) teach as the
 * teacher in the training graph does on flipped batches: each step takes the logits of the view the student sees */
static void test_distill_cached_mirror(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_net *t = teacher_of(&f);
    for (int i = 0; i < 2; i++) {
        const float alpha = i ? 0.6f : 1.0f;
        double graph = distill_loss(&f, t, "hflip", alpha, IN_GRAPH, FR_STATUS_OK);
        double cached = distill_loss(&f, t, "hflip", alpha, CACHED_MIRRORED, FR_STATUS_OK);
        double swapped = distill_loss(&f, t, "hflip", alpha, CACHED_SWAPPED, FR_STATUS_OK);
        double unflipped = distill_loss(&f, t, "hflip(p=0)", alpha, CACHED_MIRRORED, FR_STATUS_OK);
        double plain = distill_loss(&f, t, NULL, alpha, CACHED, FR_STATUS_OK);
        assert_true(isfinite(graph) && graph > 0);
        /* equal but for the rounding of the teacher's batches; the images (bands of rows) are nearly symmetric, so the
           wrong view's logits move the loss by about 1e-4 of it */
        if (fabs(cached - graph) > 1e-6 * graph)
            fail_msg("alpha %g: cached mirror views give loss %.9g, the teacher in the graph %.9g", alpha, cached, graph);
        if (fabs(swapped - graph) < 2e-5 * graph)
            fail_msg("alpha %g: the wrong view's logits give the same loss %.9g (%.9g)", alpha, swapped, graph);
        if (fabs(unflipped - plain) > 1e-6 * plain) /* never flipped: the first view, as logits of the plain images */
            fail_msg("alpha %g: no flip with mirror views %.9g, plain cached logits %.9g", alpha, unflipped, plain);
    }
    /* other views than the mirror image need the teacher in the graph */
    distill_loss(&f, t, "hflip;translate(x=0.1,y=0.1)", 1.0f, CACHED_MIRRORED, FR_STATUS_UNSUPPORTED);
    assert_non_null(strstr(fr_last_error(), "training graph"));
    distill_loss(&f, t, "hflip", 1.0f, CACHED, FR_STATUS_UNSUPPORTED);
    assert_non_null(strstr(fr_last_error(), "as they are"));
    /* which cached views a run's options allow */
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    assert_int_equal(fr_fit_teacher_views(&fo), 1);
    const char *aug[] = {"hflip", "hflip(p=0.3);normalize(mean=0.5,std=0.25)", "hflip;hflip", "none", "vflip",
                         "hflip;translate(x=0.1,y=0.1)", "hflip;mixup(alpha=1)", "hflip(p=0.5", NULL};
    const int want[] = {2, 2, 2, 1, 0, 0, 0, 0};
    for (int i = 0; aug[i]; i++) {
        fo.augment = aug[i];
        if (fr_fit_teacher_views(&fo) != want[i])
            fail_msg("'%s': %d cached views, want %d", aug[i], fr_fit_teacher_views(&fo), want[i]);
    }
    fo.augment = "hflip";
    fo.mixup = 0.2;
    assert_int_equal(fr_fit_teacher_views(&fo), 0);
    fr_net_free(t);
    fx_free(&f);
}

/* function matching (Beyer et al. 2022, tools/configs/kd_distill_funmatch.ini): the teacher in the training graph
 * sees exactly the student's augmented view. One step on a flipped, shifted and MixUp-mixed batch gives the loss
 * computed here from the two models run on the same view made on the host (fr_aug_apply_host + fr_aug_mix_host):
 * mean over the batch of alpha T^2 KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) CE(mixed labels). */
static void test_distill_same_view(void **state)
{
    (void)state;
    enum { B = 16 };
    const float T = 2.0f, alphas[2] = {1.0f, 0.6f};
    struct fx f;
    fx_init(&f);
    struct fr_aug_policy *pol;
    assert_int_equal(fr_aug_policy_parse("hflip;translate(x=0.0714,y=0.0714);mixup(alpha=1)", &pol), FR_STATUS_OK);
    const int nk = fr_aug_policy_max_ops(pol);
    static uint8_t x[B * H * H], warped[B * H * H], view[B * H * H];
    static float prog[B * 8 * FR_AUG_REC], mix[B * FR_AUG_MIX_REC], tl[B * K], sl[B * K], soft[B * K];
    int32_t y[B];
    assert_true(nk <= 8);
    memcpy(x, f.ds.pixels, sizeof x);
    memcpy(y, f.ds.labels, sizeof y);
    assert_int_equal(fr_aug_policy_draw_batch(pol, 5, 0, 0, B, B, H, H, prog, mix), FR_STATUS_OK);
    struct fr_aug_images in = {x, FR_U8, FR_AUG_NHWC, B, H, H, 1}, mid = {warped, FR_U8, FR_AUG_NHWC, B, H, H, 1},
                         out = {view, FR_U8, FR_AUG_NHWC, B, H, H, 1};
    assert_int_equal(fr_aug_apply_host(&in, &mid, prog, nk, NULL), FR_STATUS_OK);
    assert_int_equal(fr_aug_mix_host(&mid, &out, mix), FR_STATUS_OK);
    assert_true(memcmp(view, x, sizeof x) != 0);
    assert_int_equal(fr_aug_mix_labels_host(y, B, K, mix, soft), FR_STATUS_OK);
    for (int a = 0; a < 2; a++) {
        struct fr_ctx *ctx = fr_ctx_new();
        struct fr_model *m, *t;
        assert_int_equal(fr_model_builtin(ctx, "t", 1, H, H, K, &m), FR_STATUS_OK);
        assert_int_equal(fr_model_alloc(m, tu_cpu), FR_STATUS_OK);
        assert_int_equal(fr_model_init(m, 3, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
        assert_int_equal(fr_model_builtin(ctx, "t", 1, H, H, K, &t), FR_STATUS_OK);
        assert_int_equal(fr_model_alloc(t, tu_cpu), FR_STATUS_OK);
        assert_int_equal(fr_model_init(t, 4, FR_INIT_DEFAULT, NULL), FR_STATUS_OK);
        /* the teacher's logits on the host-made view, from a predictor of its own */
        struct fr_predictor_opts po;
        fr_predictor_opts_init(&po);
        struct fr_predictor *p;
        assert_int_equal(fr_predictor_new(t, tu_cpu, &po, &p), FR_STATUS_OK);
        assert_int_equal(fr_predictor_run(p, view, B, tl), FR_STATUS_OK);
        fr_predictor_free(p);
        for (int i = 0; i < fr_model_n_tensors(t); i++) { /* frozen, named apart from the student's */
            struct fr_tensor *w = fr_model_tensor(t, i).t;
            char name[FR_NAME_MAX];
            memcpy(name, w->name, sizeof name);
            fr_tensor_set_name(w, "teacher.%s", name);
        }
        fr_model_freeze(t, "", true);
        struct fr_trainer_opts o;
        fr_trainer_opts_init(&o);
        o.batch = B;
        fr_optim_params_init(&o.optim, FR_OPTIM_ADAMW);
        o.loss = FR_LOSS_DISTILL;
        o.alpha = alphas[a];
        o.temperature = T;
        o.input = FR_U8;
        o.augment = pol;
        o.teacher = t;
        struct fr_trainer *tr;
        if (fr_trainer_new(m, tu_cpu, &o, &tr) != FR_STATUS_OK)
            fail_msg("trainer: %s", fr_last_error());
        assert_int_equal(fr_trainer_predict(tr, view, B, sl), FR_STATUS_OK); /* the student before its step */
        float prev = 0, loss = 0;
        struct fr_batch_in b = {.images = x, .prog = prog, .mix = mix, .targets = y};
        assert_int_equal(fr_trainer_submit(tr, &b, 1e-3f, &prev), FR_STATUS_OK);
        assert_int_equal(fr_trainer_finish(tr, &loss), FR_STATUS_OK);
        double ref = 0;
        for (int i = 0; i < B; i++) {
            const float *zt = tl + i * K, *zs = sl + i * K;
            double mt = -INFINITY, ms = -INFINITY, st = 0, ss = 0, s1 = 0, kl = 0, ce = 0;
            for (int c = 0; c < K; c++)
                mt = fmax(mt, zt[c] / T), ms = fmax(ms, zs[c] / T);
            for (int c = 0; c < K; c++)
                st += exp(zt[c] / T - mt), ss += exp(zs[c] / T - ms), s1 += exp(zs[c] - ms * T);
            for (int c = 0; c < K; c++) {
                double lpt = zt[c] / T - mt - log(st), lps = zs[c] / T - ms - log(ss);
                kl += exp(lpt) * (lpt - lps);
                ce -= soft[i * K + c] * (zs[c] - ms * T - log(s1));
            }
            ref += (alphas[a] * T * T * kl + (1 - alphas[a]) * ce) / B;
        }
        if (!(fabs(loss - ref) <= 1e-4 * fabs(ref)))
            fail_msg("alpha %g: the step's loss %.8g, from the two models on the host-made view %.8g", alphas[a], loss,
                     ref);
        fr_trainer_free(tr);
        fr_model_free(t);
        fr_model_free(m);
        fr_ctx_free(ctx);
    }
    fr_aug_policy_free(pol);
    fx_free(&f);
}

/* several teachers' logits: a fold teacher's split holds out exactly its fold; out of fold, each cached row is the
 * logits of the teacher of the image's fold (index mod 2), transfer images get the mean of both; an ensemble gives
 * every image the mean; a teacher with other classes or a fold outside the folds is refused */
static void test_fold_teachers(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    for (int fold = 0; fold < 2; fold++) {
        struct fr_split sp;
        assert_int_equal(fr_split_make(&f.ds, 100, 20, 3, &sp), FR_STATUS_OK);
        assert_int_equal(fr_split_hold_out_fold(&sp, fold, 2), FR_STATUS_OK);
        int64_t held = 0;
        for (int64_t i = 0; i < f.sp.n_labeled; i++)
            held += f.sp.labeled[i] % 2 == fold;
        assert_true(held > 0 && held < f.sp.n_labeled);
        assert_int_equal(sp.n_labeled, f.sp.n_labeled - held);
        assert_int_equal(sp.n_unlabeled, f.sp.n_unlabeled + held);
        assert_int_equal(sp.n_val, f.sp.n_val);
        for (int64_t i = 0; i < sp.n_labeled; i++)
            assert_int_not_equal(sp.labeled[i] % 2, fold);
        fr_split_free(&sp);
    }
    assert_int_equal(fr_split_hold_out_fold(&f.sp, 2, 2), FR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(fr_split_hold_out_fold(&f.sp, 0, 1), FR_STATUS_INVALID_ARGUMENT);

    struct fr_net *t[2];
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 2, &t[0]), FR_STATUS_OK);
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 9, &t[1]), FR_STATUS_OK);
    struct fr_trainset ts = {.n_classes = K};
    int32_t none[10];
    for (int i = 0; i < 10; i++)
        none[i] = -1;
    assert_int_equal(fr_trainset_add(&ts, 0, &f.ds, f.sp.labeled, f.sp.n_labeled, NULL, NULL), FR_STATUS_OK);
    assert_int_equal(fr_trainset_add(&ts, 1, &f.ds, f.sp.unlabeled, 10, none, NULL), FR_STATUS_OK);
    assert_int_equal(fr_trainset_cache_teachers(&ts, t, 2, true, false), FR_STATUS_OK);
    float *want[2];
    for (int k = 0; k < 2; k++) {
        want[k] = malloc((size_t)ts.n * K * sizeof(float));
        assert_int_equal(fr_net_predict(t[k], &f.ds, ts.idx, ts.n, want[k]), FR_STATUS_OK);
    }
    int64_t from[2] = {0};
    for (int64_t i = 0; i < ts.n; i++) {
        float mean[K];
        const float *w = mean;
        if (ts.src[i] == 0) {
            w = want[ts.idx[i] % 2] + i * K;
            from[ts.idx[i] % 2]++;
        } else
            for (int c = 0; c < K; c++)
                mean[c] = 0.5f * (want[0][i * K + c] + want[1][i * K + c]);
        tu_assert_close(ts.teacher + i * K, w, K, 1e-5f, 1e-5f);
        /* the two teachers differ, so the row says which one labelled it */
        assert_true(fabsf(want[0][i * K] - want[1][i * K]) > 1e-4f);
    }
    assert_true(from[0] > 0 && from[1] > 0);
    /* an ensemble: every image gets the mean of both */
    assert_int_equal(fr_trainset_cache_teachers(&ts, t, 2, false, false), FR_STATUS_OK);
    for (int64_t i = 0; i < ts.n; i++)
        for (int c = 0; c < K; c++)
            if (fabsf(ts.teacher[i * K + c] - 0.5f * (want[0][i * K + c] + want[1][i * K + c])) > 1e-5f)
                fail_msg("ensemble logits, image %lld class %d: %g", (long long)i, c, ts.teacher[i * K + c]);
    /* one teacher: every image gets its logits */
    assert_int_equal(fr_trainset_cache_teacher(&ts, t[1]), FR_STATUS_OK);
    tu_assert_close(ts.teacher, want[1], (size_t)ts.n * K, 1e-5f, 1e-5f);
    struct fr_net *t5;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, 5, NULL, 2, &t5), FR_STATUS_OK);
    struct fr_net *bad[2] = {t[0], t5};
    assert_int_equal(fr_trainset_cache_teachers(&ts, bad, 2, true, false), FR_STATUS_SHAPE);
    assert_non_null(strstr(fr_last_error(), "fold teacher 1 has 5 classes, the training set 10"));
    assert_int_equal(fr_trainset_cache_teachers(&ts, t, 0, true, false), FR_STATUS_INVALID_ARGUMENT);
    /* the teachers' test accuracy: one, the ensemble's mean logits, the mean of each alone (from their logits here) */
    float *lg[2];
    double right[3] = {0, 0, 0}, acc;
    for (int k = 0; k < 2; k++) {
        lg[k] = malloc((size_t)f.ds.n * K * sizeof *lg[k]);
        assert_int_equal(fr_net_predict(t[k], &f.ds, NULL, f.ds.n, lg[k]), FR_STATUS_OK);
    }
    for (int64_t i = 0; i < f.ds.n; i++) {
        int best[3] = {0, 0, 0};
        for (int c = 1; c < K; c++) {
            best[0] = lg[0][i * K + c] > lg[0][i * K + best[0]] ? c : best[0];
            best[1] = lg[1][i * K + c] > lg[1][i * K + best[1]] ? c : best[1];
            best[2] = lg[0][i * K + c] + lg[1][i * K + c] > lg[0][i * K + best[2]] + lg[1][i * K + best[2]] ? c : best[2];
        }
        for (int k = 0; k < 3; k++)
            right[k] += best[k] == f.ds.labels[i];
    }
    assert_int_equal(fr_teachers_accuracy(t, 1, false, &f.ds, &acc), FR_STATUS_OK);
    assert_true(fabs(acc - right[0] / (double)f.ds.n) < 1e-12);
    assert_int_equal(fr_teachers_accuracy(t, 2, false, &f.ds, &acc), FR_STATUS_OK);
    assert_true(fabs(acc - right[2] / (double)f.ds.n) < 1e-12);
    assert_int_equal(fr_teachers_accuracy(t, 2, true, &f.ds, &acc), FR_STATUS_OK);
    assert_true(fabs(acc - 0.5 * (right[0] + right[1]) / (double)f.ds.n) < 1e-12);
    free(lg[0]);
    free(lg[1]);
    fr_net_free(t5);
    for (int k = 0; k < 2; k++) {
        free(want[k]);
        fr_net_free(t[k]);
    }
    fr_trainset_free(&ts);
    fx_free(&f);
}

/* a teacher whose classes or input differ from the data, a threshold outside [0, 1], no unlabeled images: errors
 * before any training */
static void test_round_bad_input(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_net *t5;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, 5, NULL, 2, &t5), FR_STATUS_OK);
    struct fr_round_opts ro;
    fr_round_opts_init(&ro);
    ro.fit.epochs = 1;
    struct fr_round r;
    assert_int_equal(fr_self_train_round(t5, &f.ds, &f.sp, 1, &ro, &r), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "10 classes, the teacher 5"));
    assert_null(r.student);
    fr_net_free(t5);
    struct fr_net *t;
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 2, &t), FR_STATUS_OK);
    ro.pseudo.threshold = 1.01f;
    assert_int_equal(fr_self_train_round(t, &f.ds, &f.sp, 1, &ro, &r), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "threshold"));
    ro.pseudo.threshold = 0.3f;
    struct fr_split all;
    assert_int_equal(fr_split_make(&f.ds, 0, 20, 3, &all), FR_STATUS_OK);
    assert_int_equal(fr_self_train_round(t, &f.ds, &all, 1, &ro, &r), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "no unlabeled images"));
    fr_split_free(&all);
    fr_net_free(t);
    fx_free(&f);
}

/* a student that starts from its teacher: at a learning rate too small to move it, it predicts the teacher's logits
 * (a fresh student does not); a student of another architecture is an error */
static void test_round_from_teacher(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct fr_net *t;
    /* seed 7: a fresh student's initialisation (seed 1 + round 1) differs */
    assert_int_equal(fr_net_new(tu_cpu, "t", 1, H, H, K, NULL, 7, &t), FR_STATUS_OK);
    float *want = malloc((size_t)N * K * sizeof *want), *got = malloc((size_t)N * K * sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(fr_net_predict(t, &f.ds, NULL, N, want), FR_STATUS_OK);
    struct fr_round_opts ro;
    fr_round_opts_init(&ro);
    ro.pseudo.threshold = 0.0f;
    ro.fit.epochs = 1;
    ro.fit.batch = 16;
    ro.fit.sched.base_lr = 1e-9f;
    double diff[2] = {0, 0};
    for (int from = 0; from < 2; from++) {
        ro.from_teacher = from == 1;
        struct fr_round r;
        enum fr_status st = fr_self_train_round(t, &f.ds, &f.sp, 1, &ro, &r);
        if (st != FR_STATUS_OK)
            print_message("%s\n", fr_last_error());
        assert_int_equal(st, FR_STATUS_OK);
        assert_int_equal(fr_net_predict(r.student, &f.ds, NULL, N, got), FR_STATUS_OK);
        for (int64_t i = 0; i < (int64_t)N * K; i++)
            diff[from] = fmax(diff[from], fabs((double)got[i] - want[i]));
        fr_round_free(&r);
    }
    assert_true(diff[1] < 1e-4); /* ~30 Adam steps of at most 1e-9 each */
    assert_true(diff[0] > 1e-2); /* another initialisation */
    ro.arch = "c";
    ro.from_teacher = true;
    struct fr_round r;
    assert_int_equal(fr_self_train_round(t, &f.ds, &f.sp, 1, &ro, &r), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "teacher's architecture (t, not c)"));
    assert_null(r.student);
    fr_round_free(&r); /* the pseudo-label report, as every caller frees it */
    free(want);
    free(got);
    fr_net_free(t);
    fx_free(&f);
}

static void test_demo_checks(void **state)
{
    (void)state;
    struct fr_demo_opts o;
    fr_demo_opts_init(&o, true);
    assert_int_equal(fr_demo_check(&o), FR_STATUS_OK);
    o.pl_threshold = 1.2f;
    assert_int_equal(fr_demo_check(&o), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "thresholds"));
    fr_demo_opts_init(&o, true);
    o.ns_threshold = -0.5f;
    assert_int_equal(fr_demo_check(&o), FR_STATUS_INVALID_ARGUMENT);
    fr_demo_opts_init(&o, true);
    o.fixmatch.fit.threshold = 2.0f;
    assert_int_equal(fr_demo_check(&o), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "threshold 2"));
    fr_demo_opts_init(&o, true);
    o.ns_epochs = 0;
    assert_int_equal(fr_demo_check(&o), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "Noisy Student 0"));
    fr_demo_opts_init(&o, true);
    o.ensemble = 11; /* at most 10 earlier models join a teacher */
    assert_int_equal(fr_demo_check(&o), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "ensemble (11)"));
    /* no unlabeled images: an error before the first row */
    fr_demo_opts_init(&o, true);
    struct fx f;
    fx_init(&f);
    struct fr_split all;
    assert_int_equal(fr_split_make(&f.ds, 0, 20, 3, &all), FR_STATUS_OK);
    int rows_seen = 0;
    o.user = &rows_seen;
    struct fr_demo_row *rows;
    int n;
    assert_int_equal(fr_demo_run(tu_cpu, &f.ds, NULL, &all, &o, &rows, &n), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "no unlabeled images"));
    assert_null(rows);
    fr_split_free(&all);
    /* a test set of other classes */
    struct fr_dataset t5;
    make_ds(&t5, 50, 5);
    assert_int_equal(fr_demo_run(tu_cpu, &f.ds, &t5, &f.sp, &o, &rows, &n), FR_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fr_last_error(), "5 classes"));
    free_ds(&t5);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixmatch_threshold),
        cmocka_unit_test(test_fixmatch_bad_input),
        cmocka_unit_test(test_ema_checkpoint),
        cmocka_unit_test(test_pseudo_report),
        cmocka_unit_test(test_pseudo_flip_ensemble),
        cmocka_unit_test(test_distill_mixup),
        cmocka_unit_test(test_distill_cached_mirror),
        cmocka_unit_test(test_distill_same_view),
        cmocka_unit_test(test_fold_teachers),
        cmocka_unit_test(test_round_bad_input),
        cmocka_unit_test(test_round_from_teacher),
        cmocka_unit_test(test_demo_checks),
    };
    return cmocka_run_group_tests(tests, tu_cpu_setup, tu_cpu_teardown);
}
