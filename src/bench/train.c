/* The train suite, the real input pipeline side by side: images/s of the trainer's step on u8 batches (the engine),
 * of the same step with randaugment+cutmix in its graph (programs drawn on the host per step, nothing downloaded in
 * between), of fr_fit (the CLI's loop: loader thread, programs, late loss reads) with and without that policy, and
 * of inference; the ratios the targets speak of are noted. The first step's loss and the logits are checked
 * against the CPU path. Images are Fashion-MNIST-shaped (28x28x1) synthetic bytes. */
#include <math.h>
#include <time.h>

#include "bench/bench_internal.h"

#include "frugal/augment.h"
#include "frugal/model.h"
#include "frugal/recipes.h"

#define TR_H 28
#define TR_K 10
#define TR_SPEC "randaugment(n=2,m=9);cutmix(alpha=1)"

struct trainer_run {
    struct fr_ctx *mctx;
    struct fr_model *m;
    struct fr_trainer *tr;
    struct fr_aug_policy *pol;
    int batch;
    uint32_t step;
    uint8_t *u8;
    float *prog, *mix, *logits;
    int32_t *labels, *tab;
    size_t tab_len;
    float loss;
};

static void tr_free(struct trainer_run *t)
{
    fr_trainer_free(t->tr);
    fr_model_free(t->m);
    fr_ctx_free(t->mctx);
    fr_aug_policy_free(t->pol);
    free(t->u8);
    free(t->prog);
    free(t->mix);
    free(t->logits);
    free(t->labels);
    free(t->tab);
    memset(t, 0, sizeof *t);
}

/* process CPU seconds: images per CPU-second are the steadier figure on a loaded, shared machine */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void synthetic(uint8_t *u8, size_t n, int32_t *labels, int n_labels)
{
    for (size_t i = 0; i < n; i++)
        u8[i] = (uint8_t)((i * 2654435761u) >> 13);
    for (int i = 0; i < n_labels; i++)
        labels[i] = (i * 7) % TR_K;
}

/* a trainer on u8 batches, with the policy's stage in its graph when spec != NULL */
static enum fr_status tr_setup(struct trainer_run *t, struct fr_backend *be, const char *model, int batch, const char *spec)
{
    memset(t, 0, sizeof *t);
    t->batch = batch;
    size_t px = (size_t)batch * TR_H * TR_H;
    t->u8 = malloc(px);
    t->logits = malloc((size_t)batch * TR_K * sizeof(float));
    t->labels = malloc((size_t)batch * sizeof(int32_t));
    t->mix = malloc((size_t)batch * FR_AUG_MIX_REC * sizeof(float));
    t->mctx = fr_ctx_new();
    if (!t->u8 || !t->logits || !t->labels || !t->mix || !t->mctx)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    synthetic(t->u8, px, t->labels, batch);
    enum fr_status st = spec ? fr_aug_policy_parse(spec, &t->pol) : FR_STATUS_OK;
    if (st == FR_STATUS_OK && !(t->prog = malloc(sizeof(float) * (size_t)batch * FR_AUG_REC *
                                                 (size_t)(t->pol ? fr_aug_policy_max_ops(t->pol) : 1))))
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    if (st == FR_STATUS_OK)
        st = fr_model_builtin(t->mctx, model, 1, TR_H, TR_H, TR_K, &t->m);
    if (st == FR_STATUS_OK)
        st = fr_model_alloc(t->m, be);
    if (st == FR_STATUS_OK)
        st = fr_model_init(t->m, 42, FR_INIT_DEFAULT, NULL);
    struct fr_trainer_opts o;
    fr_trainer_opts_init(&o);
    o.batch = batch;
    fr_optim_params_init(&o.optim, FR_OPTIM_SGD);
    o.optim.momentum = 0.9f;
    o.seed = 5;
    o.input = FR_U8;
    o.augment = t->pol;
    if (st == FR_STATUS_OK)
        st = fr_trainer_new(t->m, be, &o, &t->tr);
    size_t tl = st == FR_STATUS_OK ? fr_trainer_tables_len(t->tr) : 0;
    if (tl && !(t->tab = malloc(tl * sizeof(int32_t))))
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    return st;
}

/* one step as the fit loop runs it: the batch's programs and mix records drawn on the host, then submitted */
static enum fr_status tr_step(void *vctx, double *dev)
{
    (void)dev;
    struct trainer_run *t = vctx;
    enum fr_status st = FR_STATUS_OK;
    if (t->pol)
        st = fr_aug_policy_draw_batch(t->pol, 7, t->step, 0, t->batch, t->batch, TR_H, TR_H, t->prog, t->mix);
    if (st == FR_STATUS_OK && t->tab)
        st = fr_trainer_tables(t->tr, t->prog, t->tab, &t->tab_len);
    struct fr_batch_in b = {.images = t->u8, .prog = t->prog, .mix = t->mix, .tab = t->tab, .tab_len = t->tab_len,
                            .targets = t->labels};
    if (st == FR_STATUS_OK)
        st = fr_trainer_submit(t->tr, &b, 0.01f, NULL);
    t->step++;
    return st;
}

static enum fr_status tr_infer(void *vctx, double *dev)
{
    (void)dev;
    struct trainer_run *t = vctx;
    return fr_trainer_predict(t->tr, t->u8, t->batch, t->logits);
}

/* the first step's loss and, before it, the logits */
static enum fr_status tr_first(struct trainer_run *t, bool infer)
{
    enum fr_status st = infer ? tr_infer(t, NULL) : FR_STATUS_OK;
    if (st == FR_STATUS_OK)
        st = tr_step(t, NULL);
    if (st == FR_STATUS_OK)
        st = fr_trainer_finish(t->tr, &t->loss);
    return st;
}

static void check(struct fr_bench_figure *f, const float *got, const float *want, size_t n, double tol, const char *item)
{
    if (!f)
        return;
    float tmp[1];
    if (fr_bench_perturb(item) && n > 0) {
        tmp[0] = got[0] + 1.0f + 0.5f * fabsf(want[0]);
        got = tmp;
        n = 1;
    }
    f->checked = true;
    fr_bench_errors(got, want, n, &f->max_abs_err, &f->max_rel_err);
    f->tol = tol;
    f->flagged = !(f->max_rel_err <= tol);
}

/* images/s of the trainer's step (spec: with that policy); *ips gets it and *ipc images per CPU-second (0 on failure) */
static enum fr_status step_figure(struct fr_bench_run *run, const char *model, int batch, const char *spec, bool infer,
                                  double *ips, double *ipc)
{
    char name[128];
    snprintf(name, sizeof name, "train step model %s batch %d%s%s", model, batch, spec ? " " : "", spec ? spec : "");
    fr_bench_progress(run, "train", "%s", name);
    *ips = *ipc = 0;
    struct trainer_run t, r;
    float ref_loss = 0, *ref_logits = NULL;
    enum fr_status st = FR_STATUS_OK;
    if (run->be->kind != FR_BACKEND_CPU) { /* the CPU path's first loss and logits, for the check */
        st = tr_setup(&r, run->ref, model, batch, spec);
        if (st == FR_STATUS_OK)
            st = tr_first(&r, infer);
        ref_loss = r.loss;
        ref_logits = r.logits;
        r.logits = NULL;
        tr_free(&r);
        if (st != FR_STATUS_OK) {
            free(ref_logits);
            return st;
        }
    }
    st = tr_setup(&t, run->be, model, batch, spec);
    if (st == FR_STATUS_OK)
        st = tr_first(&t, infer);
    float loss0 = t.loss;
    double sec = st == FR_STATUS_OK ? fr_bench_time(run, tr_step, &t, &st) : -1;
    if (st == FR_STATUS_OK)
        st = fr_trainer_finish(t.tr, NULL);
    if (sec > 0 && st == FR_STATUS_OK) { /* the same steps again for their CPU time */
        int n = (int)fmax(3, fmin(100000, run->seconds * run->repeat / sec));
        double c0 = cpu_now();
        for (int i = 0; i < n && st == FR_STATUS_OK; i++)
            st = tr_step(&t, NULL);
        if (st == FR_STATUS_OK && (st = fr_trainer_finish(t.tr, NULL)) == FR_STATUS_OK)
            *ipc = (double)n * batch / fmax(1e-9, cpu_now() - c0);
    }
    if (sec > 0 && st == FR_STATUS_OK) {
        *ips = batch / sec;
        snprintf(name + strlen(name), sizeof name - strlen(name), ", per CPU-second");
        fr_bench_add(run, "train", name, *ipc, "img/s", "process CPU time of the same steps (all threads)");
        name[strlen(name) - strlen(", per CPU-second")] = 0;
        struct fr_bench_figure *f = fr_bench_add(run, "train", name, *ips, "img/s",
                                                 spec ? "wall, fastest batch (u8 batch + programs -> augment, mix, step)"
                                                      : "wall, fastest batch (u8 batch -> normalise, step)");
        check(f, &loss0, run->be->kind != FR_BACKEND_CPU ? &ref_loss : &loss0, 1, 1e-3, name);
    }
    if (st == FR_STATUS_OK && infer) {
        snprintf(name, sizeof name, "inference model %s batch %d", model, batch);
        fr_bench_progress(run, "train", "%s", name);
        float *got = malloc((size_t)batch * TR_K * sizeof(float));
        if (got)
            memcpy(got, t.logits, (size_t)batch * TR_K * sizeof(float));
        sec = fr_bench_time(run, tr_infer, &t, &st);
        if (sec > 0 && got) {
            struct fr_bench_figure *f =
                fr_bench_add(run, "train", name, batch / sec, "img/s", "wall (fr_trainer_predict of u8 images)");
            check(f, got, ref_logits ? ref_logits : got, (size_t)batch * TR_K, 1e-4, name);
        }
        free(got);
    }
    tr_free(&t);
    free(ref_logits);
    return st;
}

/* images/s of fr_fit on an in-memory set (no validation, no checkpoints): the CLI's training loop; *ipc images per
 * CPU-second (the run with the least CPU time per image) */
static enum fr_status fit_figure(struct fr_bench_run *run, const char *model, int batch, const char *spec, double *ips,
                                 double *ipc)
{
    char name[128];
    snprintf(name, sizeof name, "fit model %s batch %d%s%s", model, batch, spec ? " " : "", spec ? spec : "");
    fr_bench_progress(run, "train", "%s", name);
    *ips = *ipc = 0;
    const int steps = run->quick ? 4 : 16;
    struct fr_dataset ds = {0};
    ds.n = (int64_t)batch * steps, ds.c = 1, ds.h = ds.w = TR_H, ds.n_classes = TR_K;
    ds.source = (char *)"synthetic";
    ds.pixels = malloc((size_t)ds.n * TR_H * TR_H);
    ds.labels = malloc((size_t)ds.n * sizeof(int32_t));
    struct fr_net *net = NULL;
    struct fr_trainset ts = {0};
    ts.n_classes = TR_K;
    enum fr_status st = ds.pixels && ds.labels ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    if (st == FR_STATUS_OK) {
        synthetic(ds.pixels, (size_t)ds.n * TR_H * TR_H, ds.labels, (int)ds.n);
        st = fr_trainset_add(&ts, 0, &ds, NULL, ds.n, NULL, NULL);
    }
    if (st == FR_STATUS_OK)
        st = fr_net_new(run->be, model, 1, TR_H, TR_H, TR_K, NULL, 42, &net);
    struct fr_fit_opts fo;
    fr_fit_opts_init(&fo);
    fo.batch = batch;
    fo.augment = spec;
    fo.epochs = 1;
    struct fr_fit_result fr;
    double c0 = cpu_now(), c1 = 0; /* the CPU time of a one-epoch fit: setup (trainer, loader) + one epoch */
    if (st == FR_STATUS_OK && (st = fr_fit(net, &ts, &fo, &fr)) == FR_STATUS_OK) /* also the warm-up */
        c1 = cpu_now() - c0;
    double best = 0, per_epoch = fr.seconds > 0 ? fr.seconds : 1;
    for (int rep = 0; rep < run->repeat && st == FR_STATUS_OK; rep++) {
        fo.epochs = (int)fmax(2, fmin(1000, run->seconds * 4 / per_epoch));
        c0 = cpu_now();
        if ((st = fr_fit(net, &ts, &fo, &fr)) == FR_STATUS_OK && fr.images_per_second > best)
            best = fr.images_per_second; /* the fastest of the repeats: the least disturbed by other load */
        double c = cpu_now() - c0 - c1; /* the epochs beyond the first: setup cancels out */
        if (st == FR_STATUS_OK && c > 0)
            *ipc = fmax(*ipc, (double)(fo.epochs - 1) * (double)ds.n / c);
    }
    if (st == FR_STATUS_OK && best > 0) {
        *ips = best;
        fr_bench_add(run, "train", name, best, "img/s",
                     "fr_fit's own images/s (loader thread, programs, late loss reads), the fastest run");
        snprintf(name + strlen(name), sizeof name - strlen(name), ", per CPU-second");
        fr_bench_add(run, "train", name, *ipc, "img/s",
                     "process CPU time of fr_fit's epochs (all threads; a one-epoch run's time subtracted: setup)");
    }
    fr_net_free(net);
    fr_trainset_free(&ts);
    free(ds.pixels);
    free(ds.labels);
    return st;
}

static enum fr_status train_one(struct fr_bench_run *run, const char *model, int batch, bool infer, bool fit)
{
    double plain, aug, fit_plain = 0, fit_aug = 0, c_plain, c_aug, c_fit_plain = 0, c_fit_aug = 0;
    enum fr_status st = step_figure(run, model, batch, NULL, infer, &plain, &c_plain);
    if (st == FR_STATUS_OK)
        st = step_figure(run, model, batch, TR_SPEC, false, &aug, &c_aug);
    if (st == FR_STATUS_OK && fit)
        st = fit_figure(run, model, batch, NULL, &fit_plain, &c_fit_plain);
    if (st == FR_STATUS_OK && fit)
        st = fit_figure(run, model, batch, TR_SPEC, &fit_aug, &c_fit_aug);
    if (st == FR_STATUS_OK && plain > 0 && aug > 0)
        fr_bench_note(run->r,
                      "%s train: model %s batch %d: with %s in the step: %.1f%% of the images/s, %.1f%% per CPU-second",
                      run->spec, model, batch, TR_SPEC, 100 * aug / plain, 100 * c_aug / c_plain);
    if (st == FR_STATUS_OK && fit_plain > 0 && fit_aug > 0)
        fr_bench_note(run->r,
                      "%s train: model %s batch %d: fr_fit reaches %.1f%% of the engine's step rate (%.1f%% per "
                      "CPU-second); with %s it keeps %.1f%% of fr_fit's images/s (%.1f%% per CPU-second)",
                      run->spec, model, batch, 100 * fit_plain / plain, 100 * c_fit_plain / c_plain, TR_SPEC,
                      100 * fit_aug / fit_plain, 100 * c_fit_aug / c_fit_plain);
    return st;
}

enum fr_status fr_bench_train(struct fr_bench_run *run)
{
    /* the fastest timed batch (as fit_figure keeps the fastest run): the figures and their ratios are the least
     * disturbed by other load on a shared machine */
    bool best = run->best;
    run->best = true;
    static const struct {
        const char *model;
        int batch;
        bool quick, infer, fit;
    } w[] = {
        {"t", 64, true, false, false}, {"s", 64, true, true, true},    {"m", 64, false, true, true},
        {"t", 256, false, true, false}, {"s", 256, false, true, false}, {"m", 256, false, true, false},
    };
    enum fr_status st = FR_STATUS_OK;
    for (size_t i = 0; i < sizeof w / sizeof w[0] && st == FR_STATUS_OK; i++) {
        if (run->quick && !w[i].quick)
            continue;
        /* quick: inference and fr_fit of model s only; full: every model and batch */
        st = train_one(run, w[i].model, w[i].batch, w[i].infer || !run->quick, w[i].fit);
        if (st == FR_STATUS_UNSUPPORTED || st == FR_STATUS_SHAPE || st == FR_STATUS_NOT_FOUND) {
            fr_bench_note(run->r, "%s train: model %s batch %d skipped: %s", run->spec, w[i].model, w[i].batch,
                          fr_last_error());
            run->r->n_skipped++;
            st = FR_STATUS_OK;
        } else if (st != FR_STATUS_OK) {
            char what[64];
            snprintf(what, sizeof what, "model %s batch %d", w[i].model, w[i].batch);
            st = fr_bench_failed(run, "train", what, st);
        }
    }
    run->best = best;
    return st;
}
