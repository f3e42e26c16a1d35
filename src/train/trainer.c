/* The training-step builder: one graph with forward, loss, backward and optimizer updates, planned once;
 * predictors (eval graphs over the same parameters, u8 or f32 input); label checks and the NaN/Inf loss check. */
#include <math.h>

#include "augment/augment_internal.h"
#include "frugal/augment.h"
#include "frugal/model.h"
#include "train/train_internal.h"

/* --- predictors --- */
struct fr_predictor {
    struct fr_predictor_opts o;
    struct fr_model *m;
    struct fr_backend *be;
    struct fr_tensor *x, *logits;
    struct fr_graph *g;
    int64_t k, sample; /* classes, bytes per input image */
    void *pad;         /* one batch of inputs for the last partial chunk */
    struct fr_predictor *tail[24]; /* [j]: a predictor of batch 2^j < o.batch for a short last chunk, made on demand
                                      (a few images are not run as a whole padded batch) */
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
    for (int j = 0; j < 24; j++)
        fr_predictor_free(p->tail[j]);
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

/* An input tensor for `b` rows of the input of `layer`: images u8 [b,H,W,C] or f32 [b,C,H,W], features f32 [b,C]
 * (flat) or [b,C,H,W] */
static struct fr_tensor *layer_input(struct fr_ctx *ctx, const struct fr_model *m, int layer, enum fr_dtype type,
                                     int64_t b, const char *name)
{
    int c, h, w;
    fr_model_layer_input(m, layer, &c, &h, &w);
    if (type == FR_U8)
        return input(ctx, FR_U8, 4, (int64_t[]){b, h, w, c}, name);
    return h ? input(ctx, FR_F32, 4, (int64_t[]){b, c, h, w}, name) : input(ctx, FR_F32, 2, (int64_t[]){b, c}, name);
}

/* values per row of the input of `layer` */
static int64_t layer_size(const struct fr_model *m, int layer)
{
    int c, h, w;
    fr_model_layer_input(m, layer, &c, &h, &w);
    return h ? (int64_t)c * h * w : c;
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
    const int n_layers = fr_model_n_layers(m), first = o->first_layer, last = o->last_layer ? o->last_layer : n_layers;
    if (first < 0 || last > n_layers || first >= last || (first > 0 && o->input != FR_F32))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "predictor: layers [%d, %d) of %d (f32 input from a layer > 0)", first,
                        last, n_layers);
    if (last == n_layers && fr_model_n_classes(m) <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "predictor: the model does not end in class logits [N,K]");
    struct fr_predictor *p = calloc(1, sizeof *p);
    if (!p)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "predictor: out of memory");
    p->o = *o;
    p->m = m;
    p->be = backend;
    p->k = layer_size(m, last);
    p->sample = layer_size(m, first) * (int64_t)fr_dtype_size(o->input);
    struct fr_ctx *ctx = fr_model_ctx(m);
    enum fr_status st = FR_STATUS_OK;
    p->x = layer_input(ctx, m, first, o->input, o->batch, first ? "eval.features" : "eval.images");
    p->logits = fr_model_forward_layers(m, ctx, model_input(ctx, p->x, o->mean, o->std), false, first, last);
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
        int j = 0;
        while (j < 23 && ((int64_t)1 << j) < cnt)
            j++;
        if (((int64_t)1 << j) < eb) { /* a short chunk: a predictor of the next power of two */
            if (!p->tail[j]) {
                struct fr_predictor_opts to = p->o;
                to.batch = 1 << j;
                if ((st = fr_predictor_new(p->m, p->be, &to, &p->tail[j])) != FR_STATUS_OK)
                    break;
            }
            st = fr_predictor_run(p->tail[j], src, cnt, logits + i * p->k);
            continue;
        }
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
int64_t fr_predictor_width(const struct fr_predictor *p) { return p->k; }

/* --- trainers --- */

/* One step's inputs in host memory: the trainer's own copy when the backend uploads asynchronously (the caller's
 * buffers are free when fr_trainer_submit returns), and the loss read back one step late. */
struct slot {
    char *buf;
    float loss;
    void *ticket;
    bool pending;
    int64_t step;
};

/* an input tensor, the caller's data for it and its bytes (0 = absent this step) */
struct upload {
    struct fr_tensor *t;
    const void *src;
    size_t bytes;
};

struct fr_trainer {
    struct fr_model *m;
    struct fr_backend *be;
    struct fr_trainer_opts o;
    struct fr_ctx *ctx;
    struct fr_aug_stage st;                  /* u8 input: images, programs, tables, mix records */
    struct fr_aug_stage strong;              /* FixMatch: the unlabeled rows' strong view */
    struct fr_tensor *x;                     /* f32 input */
    struct fr_tensor *y, *teacher, *w, *logits, *loss;
    struct fr_graph *g;
    struct fr_optim *opt;
    struct fr_predictor *pred; /* built on the first fr_trainer_predict */
    int64_t step, k;           /* steps submitted, classes */
    int n_bwd;                 /* graph nodes up to the end of the backward pass */
    bool async;                /* the backend has asynchronous transfers */
    size_t stage_bytes;        /* bytes of one slot */
    size_t uploaded;           /* by the last step */
    struct slot slot[2];
    int32_t *tab;              /* coordinate tables when the caller gives none */
    int32_t *tab_strong;       /* the same for the strong view */
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
    o->input = FR_F32;
    for (int c = 0; c < 4; c++)
        o->std[c] = o->teacher_std[c] = 1.0f;
}

void fr_trainer_free(struct fr_trainer *tr)
{
    if (!tr)
        return;
    for (int i = 0; i < 2; i++) {
        if (tr->slot[i].pending && tr->be->iface->wait)
            tr->be->iface->wait(tr->be, tr->slot[i].ticket);
        free(tr->slot[i].buf);
    }
    fr_graph_free(tr->g);
    fr_predictor_free(tr->pred);
    fr_optim_free(tr->opt);
    free(tr->tab);
    free(tr->tab_strong);
    free(tr);
}

static struct fr_tensor *input(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne, const char *name)
{
    struct fr_tensor *t = fr_tensor_new(ctx, type, ndim, ne);
    if (t)
        fr_tensor_set_name(fr_tensor_set_flags(t, FR_FLAG_INPUT), "%s", name);
    return t;
}

static enum fr_status ctx_status(struct fr_ctx *ctx)
{
    return fr_ctx_status(ctx) != FR_STATUS_OK ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
}

/* The model's input: f32 NCHW images, or u8 NHWC images through the policy's stage (AUG_APPLY -> AUG_MIX) and the
 * normalisation on the device. */
static enum fr_status build_input(struct fr_trainer *tr, struct fr_tensor **xin)
{
    struct fr_ctx *ctx = tr->ctx;
    const struct fr_trainer_opts *o = &tr->o;
    int c, h, w;
    fr_model_input_shape(tr->m, &c, &h, &w);
    if (o->first_layer < 0 || o->first_layer >= fr_model_n_layers(tr->m) ||
        (o->first_layer > 0 && (o->input != FR_F32 || o->augment || o->mix || o->teacher)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: first layer %d of %d (from a layer > 0: f32 features, no "
                        "augmentation, mixing or teacher model)", o->first_layer, fr_model_n_layers(tr->m));
    if (o->input == FR_F32) {
        *xin = tr->x = layer_input(ctx, tr->m, o->first_layer, FR_F32, o->batch,
                                   o->first_layer ? "train.features" : "train.images");
        return *xin ? FR_STATUS_OK : ctx_status(ctx);
    }
    if (o->input != FR_U8)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: input type %d (u8 or f32)", (int)o->input);
    if (o->augment) {
        int oh, ow;
        fr_aug_policy_out_size(o->augment, h, w, &oh, &ow);
        if (oh != h || ow != w)
            return fr_error(FR_STATUS_SHAPE,
                            "trainer: the augmentation's %s makes %dx%d images, the model takes %dx%d: training keeps "
                            "the input size",
                            fr_aug_policy_resizing_op(o->augment, h, w), ow, oh, w, h);
    }
    unsigned flags = (o->mix ? FR_AUG_STAGE_MIX : 0) | (tr->be->no_fp64 ? FR_AUG_STAGE_TABLES : 0);
    enum fr_status st = fr_aug_stage_build(ctx, o->augment, o->batch, h, w, c, flags, &tr->st);
    if (st != FR_STATUS_OK)
        return st;
    fr_tensor_set_name(tr->st.images, "train.images");
    float nm[4], ns[4];
    if (o->unlabeled > 0) { /* FixMatch: the strong view of the last rows, from the same uploaded images */
        if (o->loss != FR_LOSS_CE || tr->st.mix || o->unlabeled >= o->batch || !o->strong ||
            fr_aug_policy_mix(o->strong) || fr_aug_policy_normalize(o->strong, nm, ns))
            return fr_error(FR_STATUS_INVALID_ARGUMENT,
                            "trainer: FixMatch needs the CE loss, labeled rows, a strong policy and no CutMix/MixUp or "
                            "normalize stage");
        int oh, ow;
        fr_aug_policy_out_size(o->strong, h, w, &oh, &ow);
        if (oh != h || ow != w)
            return fr_error(FR_STATUS_SHAPE, "trainer: the strong augmentation's %s makes %dx%d images, the model takes %dx%d",
                            fr_aug_policy_resizing_op(o->strong, h, w), ow, oh, w, h);
        struct fr_tensor *u = fr_slice(ctx, tr->st.images, 0, o->batch - o->unlabeled, o->unlabeled);
        if (!u || (st = fr_aug_stage_build_on(ctx, u, o->strong, flags & FR_AUG_STAGE_TABLES, &tr->strong)) != FR_STATUS_OK)
            return u ? st : ctx_status(ctx);
        if (tr->strong.prog)
            fr_tensor_set_name(tr->strong.prog, "train.strong_programs");
        if (tr->strong.tab)
            fr_tensor_set_name(tr->strong.tab, "train.strong_tables");
    }
    *xin = fr_aug_to_nchw(ctx, tr->st.out, o->mean, o->std);
    return *xin ? FR_STATUS_OK : ctx_status(ctx);
}

/* FixMatch's loss: CE of the labeled rows + lambda_u * masked CE of the strong view against the weak view's
 * confident predictions; three forwards over slices of the augmented images (slices of images need no gradient) */
static enum fr_status build_fixmatch(struct fr_trainer *tr)
{
    struct fr_ctx *ctx = tr->ctx;
    const struct fr_trainer_opts *o = &tr->o;
    int64_t u = o->unlabeled, l = o->batch - u;
    /* split across ranks: this rank holds l of the global batch's gl labeled rows and u of its gu unlabeled ones */
    const bool split = o->global_batch > 0 && o->global_batch != o->batch;
    const int64_t gu = split ? o->global_unlabeled : u, gl = split ? o->global_batch - gu : l;
    if (gu < u || gl < l)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: %lld labeled and %lld unlabeled rows of a global batch of "
                        "%lld and %lld", (long long)l, (long long)u, (long long)gl, (long long)gu);
    struct fr_tensor *xl = fr_aug_to_nchw(ctx, fr_slice(ctx, tr->st.out, 0, 0, l), o->mean, o->std);
    struct fr_tensor *xw = fr_aug_to_nchw(ctx, fr_slice(ctx, tr->st.out, 0, l, u), o->mean, o->std);
    struct fr_tensor *xs = fr_aug_to_nchw(ctx, tr->strong.out, o->mean, o->std);
    if (o->sync_bn) /* each forward's batch-norm over its part of the global batch */
        fr_model_set_sync_bn(tr->m, gl);
    struct fr_tensor *zl = fr_model_forward(tr->m, ctx, xl, true);
    /* the unlabeled forwards' dropout rows: this rank's first unlabeled row (first_sample: its first labeled one) */
    fr_model_set_first_row(tr->m, (int64_t)o->first_unlabeled - (int64_t)o->first_sample);
    if (o->sync_bn)
        fr_model_set_sync_bn(tr->m, gu);
    struct fr_tensor *zw = fr_model_forward(tr->m, ctx, xw, true);
    struct fr_tensor *zs = fr_model_forward(tr->m, ctx, xs, true);
    fr_model_set_first_row(tr->m, 0);
    tr->logits = zl;
    tr->y = input(ctx, FR_I32, 1, (int64_t[]){l}, "train.labels");
    struct fr_tensor *ls = fr_cross_entropy(ctx, zl, tr->y, NULL, o->label_smoothing);
    struct fr_tensor *lu = fr_soft_cross_entropy(ctx, zs, fr_pseudo_targets(ctx, zw, o->threshold, 0.0f), NULL);
    if (split) /* each part's mean over the global batch's rows of it: the ranks' gradients add up to the global ones */
        ls = fr_scale(ctx, ls, (float)((double)l / (double)gl)), lu = fr_scale(ctx, lu, (float)((double)u / (double)gu));
    tr->loss = fr_add(ctx, ls, fr_scale(ctx, lu, o->lambda_u));
    return tr->loss ? FR_STATUS_OK : ctx_status(ctx);
}

static enum fr_status build(struct fr_trainer *tr)
{
    struct fr_ctx *ctx = tr->ctx;
    const struct fr_trainer_opts *o = &tr->o;
    int64_t b = o->batch, k = tr->k;
    struct fr_tensor *xin = NULL;
    /* frozen groups are marked first: the forward runs the frozen backbone in eval mode */
    int n = fr_model_n_tensors(tr->m);
    struct fr_tensor **params = malloc((size_t)n * sizeof *params);
    if (!params)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory");
    for (int i = 0; i < n; i++)
        params[i] = fr_model_tensor(tr->m, i).t;
    enum fr_status st = (tr->opt = fr_optim_new(ctx, &o->optim)) ? FR_STATUS_OK : FR_STATUS_INVALID_ARGUMENT;
    for (int i = 0; i < o->n_groups && st == FR_STATUS_OK; i++)
        st = fr_optim_add_group(tr->opt, &o->groups[i]);
    if (st == FR_STATUS_OK)
        st = fr_optim_apply_groups(tr->opt, params, n);
    if (st == FR_STATUS_OK)
        st = build_input(tr, &xin);
    if (o->sync_bn) /* batch-norm over every rank's rows */
        fr_model_set_sync_bn(tr->m, o->global_batch > 0 ? o->global_batch : o->batch);
    if (st == FR_STATUS_OK && o->unlabeled > 0) /* FixMatch: its own forwards and loss */
        st = build_fixmatch(tr);
    else if (st == FR_STATUS_OK &&
             !(tr->logits = fr_model_forward_layers(tr->m, ctx, xin, true, o->first_layer, fr_model_n_layers(tr->m))))
        st = ctx_status(ctx);
    fr_model_set_sync_bn(tr->m, 0);
    if (st != FR_STATUS_OK) {
        free(params);
        return st;
    }
    if (o->unlabeled > 0)
        goto graph;
    if (o->sample_weights)
        tr->w = input(ctx, FR_F32, 1, (int64_t[]){b}, "train.weights");
    const bool mixed = tr->st.mix; /* targets mixed like the images, by AUG_MIX_LABELS on the device */
    switch (o->loss) {
    case FR_LOSS_CE:
        tr->y = input(ctx, FR_I32, 1, (int64_t[]){b}, "train.labels");
        tr->loss = mixed ? fr_soft_cross_entropy(ctx, tr->logits, fr_aug_mix_labels(ctx, tr->y, tr->st.mixrec, (int)k), tr->w)
                         : fr_cross_entropy(ctx, tr->logits, tr->y, tr->w, o->label_smoothing);
        break;
    case FR_LOSS_SOFT_CE:
        tr->y = input(ctx, FR_F32, 2, (int64_t[]){b, k}, "train.targets");
        tr->loss = fr_soft_cross_entropy(ctx, tr->logits, mixed ? fr_aug_mix_labels(ctx, tr->y, tr->st.mixrec, (int)k) : tr->y,
                                         tr->w);
        break;
    case FR_LOSS_DISTILL: {
        if (mixed && !o->teacher) { /* consistent teaching: the teacher must see the mixed images */
            st = fr_error(FR_STATUS_UNSUPPORTED, "trainer: CutMix/MixUp with distillation needs the teacher model");
            break;
        }
        if (o->alpha < 1.0f)
            tr->y = input(ctx, FR_I32, 1, (int64_t[]){b}, "train.labels");
        struct fr_tensor *tl;
        if (o->teacher) { /* the teacher sees the same augmented batch, on the device */
            int tc, th, tw, c, h, w;
            fr_model_input_shape(o->teacher, &tc, &th, &tw);
            fr_model_input_shape(tr->m, &c, &h, &w);
            if (o->input != FR_U8 || fr_model_ctx(o->teacher) != ctx || fr_model_n_classes(o->teacher) != k ||
                tc != c || th != h || tw != w) {
                st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                              "trainer: a teacher model needs u8 input, the student's context, %lld classes and "
                              "%dx%dx%d inputs",
                              (long long)k, c, h, w);
                break;
            }
            bool same = !memcmp(o->teacher_mean, o->mean, sizeof o->mean) && !memcmp(o->teacher_std, o->std, sizeof o->std);
            struct fr_tensor *tx = same ? xin : fr_aug_to_nchw(ctx, tr->st.out, o->teacher_mean, o->teacher_std);
            tl = fr_model_forward(o->teacher, ctx, tx, false);
        } else
            tl = tr->teacher = input(ctx, FR_F32, 2, (int64_t[]){b, k}, "train.teacher_logits");
        if (mixed) /* alpha x (the teacher's term on the mixed images) + (1 - alpha) x CE with the mixed labels */
            tr->loss = o->alpha >= 1.0f
                           ? fr_distill_loss(ctx, tr->logits, tl, NULL, tr->w, 1.0f, o->temperature)
                           : fr_add(ctx, fr_scale(ctx, fr_distill_loss(ctx, tr->logits, tl, NULL, tr->w, 1.0f, o->temperature),
                                                  o->alpha),
                                    fr_scale(ctx, fr_soft_cross_entropy(ctx, tr->logits,
                                                                        fr_aug_mix_labels(ctx, tr->y, tr->st.mixrec, (int)k),
                                                                        tr->w),
                                             1.0f - o->alpha));
        else
            tr->loss = fr_distill_loss(ctx, tr->logits, tl, tr->y, tr->w, o->alpha, o->temperature);
        break;
    }
    default:
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: unknown loss %d", (int)o->loss);
    }
    if (st == FR_STATUS_OK && tr->loss && o->global_batch > 0 && o->global_batch != o->batch) /* a rank's share */
        tr->loss = fr_scale(ctx, tr->loss, (float)((double)o->batch / (double)o->global_batch));
    if (st == FR_STATUS_OK && !tr->loss)
        st = ctx_status(ctx);
graph:
    if (st == FR_STATUS_OK)
        fr_tensor_set_name(tr->loss, "train.loss");
    tr->g = st == FR_STATUS_OK ? fr_graph_new(ctx) : NULL;
    if (st == FR_STATUS_OK && !tr->g)
        st = FR_STATUS_OUT_OF_MEMORY;
    if (st == FR_STATUS_OK)
        st = fr_graph_backward(tr->g, tr->loss);
    tr->n_bwd = tr->g ? fr_graph_n_nodes(tr->g) : 0; /* the optimizer's nodes come after: fr_trainer_set_hook */
    if (st == FR_STATUS_OK)
        st = fr_optim_build(tr->opt, tr->g, params, n);
    /* nothing reads the gradients after the step: they live in the arena, from the backward node that
     * makes each to the update that consumes it, instead of static storage the size of the model (not with a
     * step hook: the host reads and writes them between the backward and the updates) */
    for (int i = 0; i < n && st == FR_STATUS_OK && !o->optim.after_backward; i++)
        if (fr_needs_grad(params[i]) && params[i]->grad) /* in this graph */
            params[i]->grad->flags &= ~(uint32_t)(FR_FLAG_GRAD | FR_FLAG_OUTPUT);
    free(params);
    if (st != FR_STATUS_OK)
        return st;
    /* optimizer state gets storage of its own, once, next to the parameters */
    if ((st = fr_ctx_alloc(ctx, tr->be, FR_FLAG_STATE)) != FR_STATUS_OK || (st = fr_graph_plan(tr->g, tr->be)) != FR_STATUS_OK ||
        (st = fr_optim_reset(tr->opt)) != FR_STATUS_OK)
        return st;
    fr_graph_set_training(tr->g, true);
    fr_graph_set_seed(tr->g, o->seed);
    fr_graph_set_first_sample(tr->g, o->first_sample);

    /* host copies of one step's inputs (asynchronous uploads), two slots */
    tr->async = tr->be->iface->buffer_set_async && tr->be->iface->buffer_get_async && tr->be->iface->wait;
    struct fr_tensor *ins[] = {tr->x,       tr->st.images, tr->st.prog, tr->st.tab,  tr->st.mixrec, tr->strong.prog,
                               tr->strong.tab, tr->y,      tr->teacher, tr->w,       fr_optim_lr_tensor(tr->opt)};
    for (size_t i = 0; i < sizeof ins / sizeof *ins; i++)
        if (ins[i])
            tr->stage_bytes += (fr_nbytes(ins[i]) + 63) & ~(size_t)63;
    for (int i = 0; i < 2 && tr->async; i++)
        if (!(tr->slot[i].buf = malloc(tr->stage_bytes)))
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory for %zu bytes of staging", tr->stage_bytes);
    if ((tr->st.tab && !(tr->tab = malloc(tr->st.tab_cap * sizeof(int32_t)))) ||
        (tr->strong.tab && !(tr->tab_strong = malloc(tr->strong.tab_cap * sizeof(int32_t)))))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainer: out of memory for coordinate tables");
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
    tr->o.augment = NULL; /* used by build only: the caller may free them */
    tr->o.teacher = NULL;
    tr->o.strong = NULL;
    *out = tr;
    return FR_STATUS_OK;
}

size_t fr_trainer_tables_len(const struct fr_trainer *tr) { return tr->st.tab ? tr->st.tab_cap : 0; }

enum fr_status fr_trainer_tables(const struct fr_trainer *tr, const float *prog, int32_t *tab, size_t *len)
{
    int c, h, w;
    fr_model_input_shape(tr->m, &c, &h, &w);
    *len = 0;
    if (!tr->st.tab)
        return FR_STATUS_OK;
    return fr_aug_tables_fill(prog, tr->o.batch, tr->st.k, h, w, tr->st.oh, tr->st.ow, tab, tr->st.tab_cap, len);
}

/* waits for a slot's loss and checks it */
static enum fr_status collect(struct fr_trainer *tr, struct slot *s, float *loss)
{
    enum fr_status st = FR_STATUS_OK;
    if (s->ticket)
        st = tr->be->iface->wait(tr->be, s->ticket);
    s->ticket = NULL;
    s->pending = false;
    if (st != FR_STATUS_OK)
        return st;
    if (loss)
        *loss = s->loss;
    char what[48];
    snprintf(what, sizeof what, "training step %lld", (long long)s->step);
    return fr_loss_check(s->loss, what);
}

/* one step; async: copies, non-blocking uploads, the graph enqueued and the loss read started (else all blocking) */
static enum fr_status submit(struct fr_trainer *tr, const struct fr_batch_in *b, float lr, float *prev_loss, bool async)
{
    const struct fr_trainer_opts *o = &tr->o;
    int64_t n = o->batch;
    if (prev_loss)
        *prev_loss = NAN;
    char what[48];
    snprintf(what, sizeof what, "training step %lld", (long long)tr->step);
    enum fr_status st;
    if (!b || !b->images || (tr->y && !b->targets) || (tr->teacher && !b->teacher) || (tr->w && !b->weights) ||
        (tr->st.prog && !b->prog) || (tr->st.mix && !b->mix) || (tr->strong.prog && !b->strong))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: missing images, programs, mix records, targets, teacher "
                                                    "logits or weights",
                        what);
    if (tr->y && tr->y->type == FR_I32 &&
        (st = fr_labels_check_ex(b->targets, n - o->unlabeled, tr->k, o->loss == FR_LOSS_DISTILL, what)) != FR_STATUS_OK)
        return st;
    if (!(lr >= 0.0f) || !isfinite(lr))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: learning rate %g", what, (double)lr);
    const int32_t *tab = b->tab;
    size_t tab_len = b->tab_len;
    if (tr->st.tab && !tab) { /* the caller did not prepare the coordinate tables: compute them here */
        if ((st = fr_trainer_tables(tr, b->prog, tr->tab, &tab_len)) != FR_STATUS_OK)
            return st;
        tab = tr->tab;
    }
    size_t tab_strong_len = 0;
    if (tr->strong.tab) {
        int c, h, w;
        fr_model_input_shape(tr->m, &c, &h, &w);
        if ((st = fr_aug_tables_fill(b->strong, o->unlabeled, tr->strong.k, h, w, tr->strong.oh, tr->strong.ow,
                                     tr->tab_strong, tr->strong.tab_cap, &tab_strong_len)) != FR_STATUS_OK)
            return st;
    }
    struct upload up[] = {
        {tr->x, b->images, tr->x ? fr_nbytes(tr->x) : 0},
        {tr->st.images, b->images, tr->st.images ? fr_nbytes(tr->st.images) : 0},
        {tr->st.prog, b->prog, tr->st.prog ? fr_nbytes(tr->st.prog) : 0},
        {tr->st.tab, tab, tab_len * sizeof(int32_t)},
        {tr->st.mixrec, b->mix, tr->st.mixrec && b->mix ? fr_nbytes(tr->st.mixrec) : 0},
        {tr->strong.prog, b->strong, tr->strong.prog ? fr_nbytes(tr->strong.prog) : 0},
        {tr->strong.tab, tr->tab_strong, tab_strong_len * sizeof(int32_t)},
        {tr->y, b->targets, tr->y ? fr_nbytes(tr->y) : 0},
        {tr->teacher, b->teacher, tr->teacher ? fr_nbytes(tr->teacher) : 0},
        {tr->w, b->weights, tr->w ? fr_nbytes(tr->w) : 0},
        {fr_optim_lr_tensor(tr->opt), &lr, sizeof lr},
    };
    struct slot *s = &tr->slot[tr->step & 1];
    if (s->pending && (st = collect(tr, s, NULL)) != FR_STATUS_OK) /* normally collected by the previous call */
        return st;
    size_t at = 0;
    tr->uploaded = 0;
    for (size_t i = 0; i < sizeof up / sizeof *up && st == FR_STATUS_OK; i++) {
        struct fr_tensor *t = up[i].t;
        if (!t || !up[i].bytes)
            continue;
        tr->uploaded += up[i].bytes;
        if (async) { /* a copy of our own, so the write can run while the caller refills its buffers */
            memcpy(s->buf + at, up[i].src, up[i].bytes);
            st = t->buffer->backend->iface->buffer_set_async(t->buffer, t->offset, s->buf + at, up[i].bytes);
            at += (fr_nbytes(t) + 63) & ~(size_t)63;
        } else
            st = fr_tensor_set(t, up[i].src, up[i].bytes);
    }
    if (st == FR_STATUS_OK)
        st = async ? fr_graph_enqueue(tr->g) : fr_graph_compute(tr->g);
    if (st != FR_STATUS_OK)
        return st;
    s->step = tr->step++;
    s->pending = true;
    s->ticket = NULL;
    if (async)
        st = tr->loss->buffer->backend->iface->buffer_get_async(tr->loss->buffer, tr->loss->offset, &s->loss,
                                                                sizeof s->loss, &s->ticket);
    else
        st = fr_tensor_get(tr->loss, &s->loss, sizeof s->loss);
    if (st != FR_STATUS_OK)
        return st;
    struct slot *prev = &tr->slot[tr->step & 1]; /* the step before this one, still running or done */
    return prev->pending ? collect(tr, prev, prev_loss) : FR_STATUS_OK;
}

enum fr_status fr_trainer_submit(struct fr_trainer *tr, const struct fr_batch_in *b, float lr, float *prev_loss)
{
    return submit(tr, b, lr, prev_loss, tr->async);
}

enum fr_status fr_trainer_finish(struct fr_trainer *tr, float *last_loss)
{
    if (last_loss)
        *last_loss = NAN;
    enum fr_status st = FR_STATUS_OK;
    for (int64_t i = tr->step - 2; i < tr->step; i++) { /* oldest first */
        struct slot *s = &tr->slot[i & 1];
        if (i >= 0 && s->pending && s->step == i) {
            enum fr_status r = collect(tr, s, last_loss);
            st = st == FR_STATUS_OK ? r : st;
        }
    }
    return st;
}

enum fr_status fr_trainer_step(struct fr_trainer *tr, const void *images, const void *labels, const float *teacher,
                               const float *weights, float lr, float *loss)
{
    if (tr->st.prog || tr->st.mix)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: augmented input needs fr_trainer_submit with programs");
    struct fr_batch_in b = {.images = images, .targets = labels, .teacher = teacher, .weights = weights};
    enum fr_status st = submit(tr, &b, lr, NULL, false); /* synchronous: every transfer blocks, then clFinish */
    enum fr_status fin = fr_trainer_finish(tr, loss);
    return st != FR_STATUS_OK ? st : fin;
}

enum fr_status fr_trainer_predict(struct fr_trainer *tr, const void *images, int64_t n, float *logits)
{
    if (!tr->pred) {
        struct fr_predictor_opts po;
        fr_predictor_opts_init(&po);
        po.batch = tr->o.eval_batch > 0 ? tr->o.eval_batch : tr->o.batch;
        po.input = tr->o.input;
        po.first_layer = tr->o.first_layer;
        memcpy(po.mean, tr->o.mean, sizeof po.mean);
        memcpy(po.std, tr->o.std, sizeof po.std);
        enum fr_status st = fr_predictor_new(tr->m, tr->be, &po, &tr->pred);
        if (st != FR_STATUS_OK)
            return st;
    }
    return fr_predictor_run(tr->pred, images, n, logits);
}

enum fr_status fr_trainer_set_hook(struct fr_trainer *tr, enum fr_status (*fn)(void *user), void *user)
{
    if (fn && !tr->o.optim.after_backward)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainer: a step hook needs opts.optim.after_backward (the "
                                                    "updates run during the backward otherwise)");
    fr_graph_set_hook(tr->g, tr->n_bwd, fn, user);
    return FR_STATUS_OK;
}

int64_t fr_trainer_steps(const struct fr_trainer *tr) { return tr->step; }
size_t fr_trainer_upload_bytes(const struct fr_trainer *tr) { return tr->uploaded; }
struct fr_graph *fr_trainer_graph(const struct fr_trainer *tr, bool eval) { return eval ? fr_predictor_graph(tr->pred) : tr->g; }
struct fr_optim *fr_trainer_optim(const struct fr_trainer *tr) { return tr->opt; }
