/* The training-step builder: one graph with forward, loss, backward and optimizer updates, planned once;
 * an eval graph over the same parameters; host-side label checks and the NaN/Inf loss check per step. */
#include <math.h>

#include "frugal/model.h"
#include "train/train_internal.h"

struct fr_trainer {
    struct fr_model *m;
    struct fr_backend *be;
    struct fr_trainer_opts o;
    struct fr_ctx *ctx;
    struct fr_tensor *x, *y, *teacher, *w, *logits, *loss;
    struct fr_graph *g;
    struct fr_optim *opt;
    struct fr_tensor *xe, *logits_e;
    struct fr_graph *ge;
    int64_t step, k, sample; /* classes, elements per image */
    float *pad_x;            /* one eval batch of inputs for the last partial chunk */
};

void fr_trainer_opts_init(struct fr_trainer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 64;
    o->loss = FR_LOSS_CE;
    o->alpha = 0.9f;
    o->temperature = 4.0f;
    fr_optim_params_init(&o->optim, FR_OPTIM_SGD);
    o->seed = 1;
}

void fr_trainer_free(struct fr_trainer *tr)
{
    if (!tr)
        return;
    fr_graph_free(tr->g);
    fr_graph_free(tr->ge);
    fr_optim_free(tr->opt);
    free(tr->pad_x);
    free(tr);
}

static struct fr_tensor *input(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne, const char *name)
{
    struct fr_tensor *t = fr_tensor_new(ctx, type, ndim, ne);
    if (t)
        fr_tensor_set_name(fr_tensor_set_flags(t, FR_FLAG_INPUT), "%s", name);
    return t;
}

static enum fr_status build(struct fr_trainer *tr)
{
    struct fr_ctx *ctx = tr->ctx;
    const struct fr_trainer_opts *o = &tr->o;
    int c, h, w;
    fr_model_input_shape(tr->m, &c, &h, &w);
    int64_t b = o->batch, eb = o->eval_batch > 0 ? o->eval_batch : o->batch, k = tr->k;
    tr->x = input(ctx, FR_F32, 4, (int64_t[]){b, c, h, w}, "train.images");
    tr->logits = fr_model_forward(tr->m, ctx, tr->x, true);
    if (!tr->logits)
        return fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
    if (o->sample_weights)
        tr->w = input(ctx, FR_F32, 1, (int64_t[]){b}, "train.weights");
    switch (o->loss) {
    case FR_LOSS_CE:
        tr->y = input(ctx, FR_I32, 1, (int64_t[]){b}, "train.labels");
        tr->loss = fr_cross_entropy(ctx, tr->logits, tr->y, tr->w, o->label_smoothing);
        break;
    case FR_LOSS_SOFT_CE:
        tr->y = input(ctx, FR_F32, 2, (int64_t[]){b, k}, "train.targets");
        tr->loss = fr_soft_cross_entropy(ctx, tr->logits, tr->y, tr->w);
        break;
    case FR_LOSS_DISTILL:
        if (o->alpha < 1.0f)
            tr->y = input(ctx, FR_I32, 1, (int64_t[]){b}, "train.labels");
        tr->teacher = input(ctx, FR_F32, 2, (int64_t[]){b, k}, "train.teacher_logits");
        tr->loss = fr_distill_loss(ctx, tr->logits, tr->teacher, tr->y, tr->w, o->alpha, o->temperature);
        break;
    default:
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: unknown loss %d", (int)o->loss);
    }
    if (!tr->loss)
        return fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
    fr_tensor_set_name(tr->loss, "train.loss");

    int n = fr_model_n_tensors(tr->m);
    struct fr_tensor **params = malloc((size_t)n * sizeof *params);
    if (!params)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
    for (int i = 0; i < n; i++)
        params[i] = fr_model_tensor(tr->m, i).t;
    enum fr_status st = FR_STATUS_OK;
    tr->opt = fr_optim_new(ctx, &o->optim);
    if (!tr->opt)
        st = FR_STATUS_INVALID_ARGUMENT;
    for (int i = 0; i < o->n_groups && st == FR_STATUS_OK; i++)
        st = fr_optim_add_group(tr->opt, &o->groups[i]);
    if (st == FR_STATUS_OK)
        st = fr_optim_apply_groups(tr->opt, params, n);
    tr->g = fr_graph_new(ctx);
    if (st == FR_STATUS_OK && !tr->g)
        st = FR_STATUS_OUT_OF_MEMORY;
    if (st == FR_STATUS_OK)
        st = fr_graph_backward(tr->g, tr->loss);
    if (st == FR_STATUS_OK)
        st = fr_optim_build(tr->opt, tr->g, params, n);
    free(params);
    if (st != FR_STATUS_OK)
        return st;
    /* optimizer state gets storage of its own, once, next to the parameters */
    if ((st = fr_ctx_alloc(ctx, tr->be, FR_FLAG_STATE)) != FR_STATUS_OK || (st = fr_graph_plan(tr->g, tr->be)) != FR_STATUS_OK ||
        (st = fr_optim_reset(tr->opt)) != FR_STATUS_OK)
        return st;
    fr_graph_set_training(tr->g, true);
    fr_graph_set_seed(tr->g, o->seed);

    tr->xe = input(ctx, FR_F32, 4, (int64_t[]){eb, c, h, w}, "eval.images");
    tr->logits_e = fr_model_forward(tr->m, ctx, tr->xe, false);
    if (!tr->logits_e)
        return fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
    tr->ge = fr_graph_new(ctx);
    if (!tr->ge)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
    if ((st = fr_graph_add(tr->ge, tr->logits_e)) != FR_STATUS_OK || (st = fr_graph_plan(tr->ge, tr->be)) != FR_STATUS_OK)
        return st;
    fr_graph_set_training(tr->ge, false);
    tr->pad_x = calloc((size_t)(eb * tr->sample), sizeof(float));
    return tr->pad_x ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
}

enum fr_status fr_trainer_new(struct fr_model *m, struct fr_backend *backend, const struct fr_trainer_opts *o,
                              struct fr_trainer **out)
{
    *out = NULL;
    if (!m || !backend || !o || o->batch <= 0 || o->eval_batch < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: needs a model, a backend and a batch size > 0");
    if (fr_model_n_classes(m) <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: the model does not end in class logits [N,K]");
    for (int i = 0; i < fr_model_n_tensors(m); i++)
        if (!fr_model_tensor(m, i).t->buffer)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: '%s' has no storage: fr_model_alloc and fr_model_init first",
                            fr_model_tensor(m, i).name);
    struct fr_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
    tr->m = m;
    tr->be = backend;
    tr->o = *o;
    int c, h, w;
    fr_model_input_shape(m, &c, &h, &w);
    tr->sample = (int64_t)c * h * w;
    tr->k = fr_model_n_classes(m);
    tr->ctx = fr_model_ctx(m);
    enum fr_status st = build(tr);
    if (st != FR_STATUS_OK) {
        fr_trainer_free(tr);
        return st;
    }
    *out = tr;
    return FR_STATUS_OK;
}

enum fr_status fr_trainer_step(struct fr_trainer *tr, const float *images, const void *labels, const float *teacher,
                               const float *weights, float lr, float *loss)
{
    int64_t b = tr->o.batch;
    char what[48];
    snprintf(what, sizeof what, "training step %lld", (long long)tr->step);
    enum fr_status st;
    if (tr->y && tr->y->type == FR_I32 &&
        (st = fr_labels_check_ex(labels, b, tr->k, tr->o.loss == FR_LOSS_DISTILL, what)) != FR_STATUS_OK)
        return st;
    if ((tr->y && !labels) || (tr->teacher && !teacher) || (tr->w && !weights))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: missing labels, teacher logits or weights", what);
    if ((st = fr_tensor_set(tr->x, images, fr_nbytes(tr->x))) != FR_STATUS_OK ||
        (tr->y && (st = fr_tensor_set(tr->y, labels, fr_nbytes(tr->y))) != FR_STATUS_OK) ||
        (tr->teacher && (st = fr_tensor_set(tr->teacher, teacher, fr_nbytes(tr->teacher))) != FR_STATUS_OK) ||
        (tr->w && (st = fr_tensor_set(tr->w, weights, fr_nbytes(tr->w))) != FR_STATUS_OK) ||
        (st = fr_optim_set_lr(tr->opt, lr)) != FR_STATUS_OK || (st = fr_graph_compute(tr->g)) != FR_STATUS_OK)
        return st;
    float l;
    if ((st = fr_tensor_get(tr->loss, &l, sizeof l)) != FR_STATUS_OK)
        return st;
    tr->step++;
    if (loss)
        *loss = l;
    return fr_loss_check(l, what);
}

enum fr_status fr_trainer_predict(struct fr_trainer *tr, const float *images, int64_t n, float *logits)
{
    int64_t eb = tr->xe->ne[0];
    enum fr_status st = FR_STATUS_OK;
    for (int64_t i = 0; i < n && st == FR_STATUS_OK; i += eb) {
        int64_t cnt = FR_MIN(eb, n - i);
        const float *src = images + i * tr->sample;
        if (cnt < eb) {
            memcpy(tr->pad_x, src, (size_t)(cnt * tr->sample) * sizeof(float));
            src = tr->pad_x;
        }
        if ((st = fr_tensor_set(tr->xe, src, fr_nbytes(tr->xe))) != FR_STATUS_OK || (st = fr_graph_compute(tr->ge)) != FR_STATUS_OK)
            break;
        st = fr_tensor_get(tr->logits_e, logits + i * tr->k, (size_t)(cnt * tr->k) * sizeof(float));
    }
    return st;
}

struct fr_graph *fr_trainer_graph(const struct fr_trainer *tr, bool eval) { return eval ? tr->ge : tr->g; }
struct fr_optim *fr_trainer_optim(const struct fr_trainer *tr) { return tr->opt; }
