/* The training-step builder: one graph with forward, loss, backward and optimizer updates, planned once;
 * predictors (eval graphs over the same parameters, u8 or f32 input); label checks and the NaN/Inf loss check. */
#include <math.h>

#include "frugal/augment.h"
#include "frugal/model.h"
#include "train/train_internal.h"

/* --- predictors --- */
struct fr_predictor {
    struct fr_predictor_opts o;
    struct fr_tensor *x, *logits;
    struct fr_graph *g;
    int64_t k, sample; /* classes, bytes per input image */
    void *pad;         /* one batch of inputs for the last partial chunk */
};

void fr_predictor_opts_init(struct fr_predictor_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 256;
    o->input = FR_U8;
    for (int c = 0; c < 4; c++)
        o->std[c] = 1.0f;
}

void fr_predictor_free(struct fr_predictor *p)
{
    if (!p)
        return;
    fr_graph_free(p->g);
    free(p->pad);
    free(p);
}

/* The model's input from an input tensor: f32 NCHW as it is, u8 NHWC normalised into f32 NCHW. */
static struct fr_tensor *model_input(struct fr_ctx *ctx, struct fr_tensor *x, const float *mean, const float *std)
{
    return x && x->type == FR_U8 ? fr_aug_to_nchw(ctx, x, mean, std) : x;
}

static struct fr_tensor *input(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne, const char *name);

/* An input tensor for `b` images of the model: u8 [b,H,W,C] or f32 [b,C,H,W] */
static struct fr_tensor *image_input(struct fr_ctx *ctx, const struct fr_model *m, enum fr_dtype type, int64_t b,
                                     const char *name)
{
    int c, h, w;
    fr_model_input_shape(m, &c, &h, &w);
    if (type == FR_U8)
        return input(ctx, FR_U8, 4, (int64_t[]){b, h, w, c}, name);
    return input(ctx, FR_F32, 4, (int64_t[]){b, c, h, w}, name);
}

enum fr_status fr_predictor_new(struct fr_model *m, struct fr_backend *backend, const struct fr_predictor_opts *o,
                                struct fr_predictor **out)
{
    *out = NULL;
    struct fr_predictor_opts def;
    if (!o) {
        fr_predictor_opts_init(&def);
        o = &def;
    }
    if (!m || !backend || o->batch <= 0 || (o->input != FR_U8 && o->input != FR_F32))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "predictor: needs a model, a backend, a batch > 0 and u8/f32 input");
    if (fr_model_n_classes(m) <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "predictor: the model does not end in class logits [N,K]");
    struct fr_predictor *p = calloc(1, sizeof *p);
    if (!p)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "predictor: out of memory");
    p->o = *o;
    int c, h, w;
    fr_model_input_shape(m, &c, &h, &w);
    p->k = fr_model_n_classes(m);
    p->sample = (int64_t)c * h * w * (int64_t)fr_dtype_size(o->input);
    struct fr_ctx *ctx = fr_model_ctx(m);
    enum fr_status st = FR_STATUS_OK;
    p->x = image_input(ctx, m, o->input, o->batch, "eval.images");
    p->logits = fr_model_forward(m, ctx, model_input(ctx, p->x, o->mean, o->std), false);
    if (!p->logits)
        st = fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
    if (st == FR_STATUS_OK && !(p->g = fr_graph_new(ctx)))
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "predictor: out of memory");
    if (st == FR_STATUS_OK && (st = fr_graph_add(p->g, p->logits)) == FR_STATUS_OK)
        st = fr_graph_plan(p->g, backend);
    if (st == FR_STATUS_OK) {
        fr_graph_set_training(p->g, false);
        if (!(p->pad = calloc((size_t)(o->batch * p->sample), 1)))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "predictor: out of memory");
    }
    if (st != FR_STATUS_OK) {
        fr_predictor_free(p);
        return st;
    }
    *out = p;
    return FR_STATUS_OK;
}

enum fr_status fr_predictor_run(struct fr_predictor *p, const void *images, int64_t n, float *logits)
{
    if (n < 0 || (n > 0 && (!images || !logits)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "predictor: %lld images, no buffer", (long long)n);
    int64_t eb = p->o.batch;
    enum fr_status st = FR_STATUS_OK;
    for (int64_t i = 0; i < n && st == FR_STATUS_OK; i += eb) {
        int64_t cnt = FR_MIN(eb, n - i);
        const char *src = (const char *)images + i * p->sample;
        if (cnt < eb) {
            memcpy(p->pad, src, (size_t)(cnt * p->sample));
            src = p->pad;
        }
        if ((st = fr_tensor_set(p->x, src, fr_nbytes(p->x))) != FR_STATUS_OK || (st = fr_graph_compute(p->g)) != FR_STATUS_OK)
            break;
        st = fr_tensor_get(p->logits, logits + i * p->k, (size_t)(cnt * p->k) * sizeof(float));
    }
    return st;
}

struct fr_graph *fr_predictor_graph(const struct fr_predictor *p) { return p ? p->g : NULL; }

/* --- trainers --- */

struct fr_trainer {
    struct fr_model *m;
    struct fr_backend *be;
    struct fr_trainer_opts o;
    struct fr_ctx *ctx;
    struct fr_tensor *x, *y, *teacher, *w, *logits, *loss;
    struct fr_graph *g;
    struct fr_optim *opt;
    struct fr_predictor *pred; /* built on the first fr_trainer_predict */
    int64_t step, k;           /* classes */
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
    fr_predictor_free(tr->pred);
    fr_optim_free(tr->opt);
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
    int64_t b = o->batch, k = tr->k;
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

    return FR_STATUS_OK;
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
    if (!tr->pred) {
        struct fr_predictor_opts po;
        fr_predictor_opts_init(&po);
        po.batch = tr->o.eval_batch > 0 ? tr->o.eval_batch : tr->o.batch;
        po.input = FR_F32;
        enum fr_status st = fr_predictor_new(tr->m, tr->be, &po, &tr->pred);
        if (st != FR_STATUS_OK)
            return st;
    }
    return fr_predictor_run(tr->pred, images, n, logits);
}

struct fr_graph *fr_trainer_graph(const struct fr_trainer *tr, bool eval) { return eval ? fr_predictor_graph(tr->pred) : tr->g; }
struct fr_optim *fr_trainer_optim(const struct fr_trainer *tr) { return tr->opt; }
