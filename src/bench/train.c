/* The train suite: images/s of a whole training step (RandAugment on the device + forward + backward +
 * SGD update) of the built-in models t, s, m at batch 64 and 256, and of inference; the first step's
 * loss and the inference logits are checked against the CPU path. */
#include <math.h>

#include "bench/bench_internal.h"

#include "frugal/augment.h"
#include "frugal/model.h"

#define TR_H 28
#define TR_SPEC "randaugment(n=2,m=9)"

struct trainer_run {
    struct fr_ctx *mctx, *actx;
    struct fr_model *m;
    struct fr_trainer *tr;
    struct fr_graph *ag;
    struct fr_tensor *img, *prog, *out;
    struct fr_aug_policy *pol;
    int k, batch;
    uint32_t step;
    uint8_t *u8;
    float *x, *x0, *progbuf, *logits;
    int32_t *labels;
    float loss;
};

static void tr_free(struct trainer_run *t)
{
    fr_trainer_free(t->tr);
    fr_model_free(t->m);
    fr_ctx_free(t->mctx);
    fr_graph_free(t->ag);
    fr_ctx_free(t->actx);
    fr_aug_policy_free(t->pol);
    free(t->u8);
    free(t->x);
    free(t->x0);
    free(t->progbuf);
    free(t->logits);
    free(t->labels);
    memset(t, 0, sizeof *t);
}

static enum fr_status tr_setup(struct trainer_run *t, struct fr_backend *be, const char *model, int batch)
{
    memset(t, 0, sizeof *t);
    t->batch = batch;
    size_t px = (size_t)batch * TR_H * TR_H;
    t->u8 = malloc(px);
    t->x = malloc(px * sizeof(float));
    t->x0 = malloc(px * sizeof(float));
    t->logits = malloc((size_t)batch * 10 * sizeof(float));
    t->labels = malloc((size_t)batch * sizeof(int32_t));
    t->mctx = fr_ctx_new();
    t->actx = fr_ctx_new();
    if (!t->u8 || !t->x || !t->x0 || !t->logits || !t->labels || !t->mctx || !t->actx)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    for (size_t i = 0; i < px; i++) {
        t->u8[i] = (uint8_t)((i * 2654435761u) >> 13);
        t->x0[i] = (float)t->u8[i] / 255.0f;
    }
    for (int i = 0; i < batch; i++)
        t->labels[i] = (i * 7) % 10;
    enum fr_status st = fr_model_builtin(t->mctx, model, 1, TR_H, TR_H, 10, &t->m);
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
    if (st == FR_STATUS_OK)
        st = fr_trainer_new(t->m, be, &o, &t->tr);
    /* augmentation on the same device: u8 NHWC -> RandAugment -> f32 NCHW in [0,1] */
    if (st == FR_STATUS_OK)
        st = fr_aug_policy_parse(TR_SPEC, &t->pol);
    if (st != FR_STATUS_OK)
        return st;
    t->k = fr_aug_policy_max_ops(t->pol);
    t->progbuf = malloc(sizeof(float) * (size_t)batch * (size_t)t->k * FR_AUG_REC);
    if (!t->progbuf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    t->img = fr_tensor_set_flags(fr_tensor_new_4d(t->actx, FR_U8, batch, TR_H, TR_H, 1), FR_FLAG_INPUT);
    t->prog = fr_tensor_set_flags(fr_tensor_new(t->actx, FR_F32, 3, (int64_t[]){batch, t->k, FR_AUG_REC}), FR_FLAG_INPUT);
    const float mean[1] = {0.0f}, sd[1] = {1.0f};
    t->out = fr_aug_to_nchw(t->actx, fr_aug_apply(t->actx, t->img, t->prog, TR_H, TR_H, FR_AUG_NHWC), mean, sd);
    t->ag = fr_graph_new(t->actx);
    if (!t->out || !t->ag)
        return fr_ctx_status(t->actx) ? fr_ctx_status(t->actx) : FR_STATUS_OUT_OF_MEMORY;
    st = fr_graph_add(t->ag, t->out);
    if (st == FR_STATUS_OK)
        st = fr_graph_plan(t->ag, be);
    if (st == FR_STATUS_OK)
        st = fr_tensor_set(t->img, t->u8, px);
    return st;
}

static enum fr_status tr_step(void *vctx, double *dev)
{
    (void)dev;
    struct trainer_run *t = vctx;
    for (int i = 0; i < t->batch; i++)
        fr_aug_policy_draw(t->pol, 7, t->step, (uint32_t)i, TR_H, TR_H, t->progbuf + (size_t)i * t->k * FR_AUG_REC);
    enum fr_status st = fr_tensor_set(t->prog, t->progbuf, sizeof(float) * (size_t)t->batch * t->k * FR_AUG_REC);
    if (st == FR_STATUS_OK)
        st = fr_graph_compute(t->ag);
    if (st == FR_STATUS_OK)
        st = fr_tensor_get(t->out, t->x, sizeof(float) * (size_t)t->batch * TR_H * TR_H);
    if (st == FR_STATUS_OK)
        st = fr_trainer_step(t->tr, t->x, t->labels, NULL, NULL, 0.01f, &t->loss);
    t->step++;
    return st;
}

static enum fr_status tr_infer(void *vctx, double *dev)
{
    (void)dev;
    struct trainer_run *t = vctx;
    return fr_trainer_predict(t->tr, t->x0, t->batch, t->logits);
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

static enum fr_status train_one(struct fr_bench_run *run, const char *model, int batch, bool infer)
{
    char name[96];
    snprintf(name, sizeof name, "train step model %s batch %d", model, batch);
    fr_bench_progress(run, "train", "%s", name);
    struct trainer_run t, r;
    float ref_loss = 0, *ref_logits = NULL;
    enum fr_status st = FR_STATUS_OK;
    if (run->be->kind != FR_BACKEND_CPU) {
        st = tr_setup(&r, run->ref, model, batch);
        if (st == FR_STATUS_OK && infer)
            st = tr_infer(&r, NULL);
        if (st == FR_STATUS_OK)
            st = tr_step(&r, NULL);
        ref_loss = r.loss;
        ref_logits = r.logits;
        r.logits = NULL;
        tr_free(&r);
        if (st != FR_STATUS_OK) {
            free(ref_logits);
            return st;
        }
    }
    st = tr_setup(&t, run->be, model, batch);
    float loss0 = 0;
    if (st == FR_STATUS_OK && infer)
        st = tr_infer(&t, NULL); /* before any update, as the reference */
    if (st == FR_STATUS_OK)
        st = tr_step(&t, NULL);
    loss0 = t.loss;
    double sec = st == FR_STATUS_OK ? fr_bench_time(run, tr_step, &t, &st) : -1;
    if (sec > 0) {
        struct fr_bench_figure *f =
            fr_bench_add(run, "train", name, batch / sec, "img/s", "wall (augment graph + trainer step, data in memory)");
        check(f, &loss0, run->be->kind != FR_BACKEND_CPU ? &ref_loss : &loss0, 1, 1e-3, name);
    }
    if (st == FR_STATUS_OK && infer) {
        snprintf(name, sizeof name, "inference model %s batch %d", model, batch);
        fr_bench_progress(run, "train", "%s", name);
        float *got = malloc((size_t)batch * 10 * sizeof(float));
        if (got)
            memcpy(got, t.logits, (size_t)batch * 10 * sizeof(float));
        sec = fr_bench_time(run, tr_infer, &t, &st);
        if (sec > 0 && got) {
            struct fr_bench_figure *f =
                fr_bench_add(run, "train", name, batch / sec, "img/s", "wall (fr_trainer_predict)");
            check(f, got, ref_logits ? ref_logits : got, (size_t)batch * 10, 1e-4, name);
        }
        free(got);
    }
    tr_free(&t);
    free(ref_logits);
    return st;
}

enum fr_status fr_bench_train(struct fr_bench_run *run)
{
    static const struct {
        const char *model;
        int batch;
        bool quick, infer;
    } w[] = {
        {"t", 64, true, false}, {"s", 64, true, true},   {"m", 64, false, true},
        {"t", 256, false, true}, {"s", 256, false, true}, {"m", 256, false, true},
    };
    enum fr_status st = FR_STATUS_OK;
    for (size_t i = 0; i < sizeof w / sizeof w[0] && st == FR_STATUS_OK; i++) {
        if (run->quick && !w[i].quick)
            continue;
        /* quick: inference of model s only; full: every model and batch */
        st = train_one(run, w[i].model, w[i].batch, w[i].infer || !run->quick);
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
    return st;
}

