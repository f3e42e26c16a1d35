/* The layer stack: adding layers with shape checks and PyTorch-named parameters, the forward pass,
 * freezing by prefix, replacing the head, storage and safetensors save/load by name. */
#include <math.h>

#include "nn/nn_internal.h"
#include "frugal/io.h"
#include "frugal/nn.h"
#include "nn_math.h"

struct fr_model *fr_model_new(struct fr_ctx *ctx, int c, int h, int w)
{
    if (!ctx || c <= 0 || h <= 0 || w <= 0) {
        fr_error(FR_STATUS_INVALID_ARGUMENT, "model: input shape [%d,%d,%d] is not valid", c, h, w);
        return NULL;
    }
    struct fr_model *m = calloc(1, sizeof *m);
    if (!m) {
        fr_error(FR_STATUS_OUT_OF_MEMORY, "model: out of memory");
        return NULL;
    }
    m->ctx = ctx;
    m->in = m->cur = (struct shape){c, h, w, false};
    return m;
}

void fr_model_free(struct fr_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->tensors);
    free(m);
}

static struct layer *add_layer(struct fr_model *m, enum layer_kind kind, const char *name)
{
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 16;
        struct layer *l = realloc(m->layers, (size_t)cap * sizeof *l);
        if (!l) {
            fr_error(FR_STATUS_OUT_OF_MEMORY, "model: out of memory");
            return NULL;
        }
        m->layers = l;
        m->cap_layers = cap;
    }
    struct layer *l = &m->layers[m->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in = m->cur;
    snprintf(l->name, sizeof l->name, "%s", name ? name : "");
    return l;
}

static struct fr_tensor *add_tensor(struct fr_model *m, const char *prefix, const char *suffix, uint32_t flags, int ndim,
                                    const int64_t *ne)
{
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 16;
        struct fr_tensor **t = realloc(m->tensors, (size_t)cap * sizeof *t);
        if (!t) {
            fr_error(FR_STATUS_OUT_OF_MEMORY, "model: out of memory");
            return NULL;
        }
        m->tensors = t;
        m->cap_tensors = cap;
    }
    char name[sizeof m->tensors[0]->name];
    snprintf(name, sizeof name, "%.48s.%s", prefix, suffix);
    if (fr_model_find(m, name)) {
        fr_error(FR_STATUS_INVALID_ARGUMENT,
                 "model: tensor '%s' exists already: layer name '%s' used twice (or named like an automatic "
                 "projection '<block>.downsample.N')",
                 name, prefix);
        return NULL;
    }
    struct fr_tensor *t = fr_tensor_new(m->ctx, FR_F32, ndim, ne);
    if (!t)
        return NULL;
    fr_tensor_set_flags(t, flags);
    fr_tensor_set_name(t, "%s", name);
    m->tensors[m->n_tensors++] = t;
    return t;
}

/* the status of a failed add_tensor: the context's, or the duplicate-name error */
static enum fr_status fail_status(const struct fr_model *m)
{
    enum fr_status st = fr_ctx_status(m->ctx);
    return st != FR_STATUS_OK ? st : FR_STATUS_INVALID_ARGUMENT;
}

static enum fr_status need_name(const char *name, const char *what)
{
    if (!name || !*name || strlen(name) >= 40)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: a %s layer needs a name (under 40 characters)", what);
    return FR_STATUS_OK;
}

static enum fr_status need_spatial(struct fr_model *m, const char *name, const char *what)
{
    if (m->cur.flat)
        return fr_error(FR_STATUS_SHAPE, "model: layer %d '%s' (%s) needs [N,C,H,W] input, got flat features [N,%d]",
                        m->n_layers, name ? name : what, what, m->cur.c);
    return FR_STATUS_OK;
}

static enum fr_status bn_tensors(struct fr_model *m, const char *prefix, int c, struct fr_tensor **w, struct fr_tensor **b,
                                 struct fr_tensor **rm, struct fr_tensor **rv)
{
    int64_t ne[1] = {c};
    *w = add_tensor(m, prefix, "weight", FR_FLAG_PARAM, 1, ne);
    *b = add_tensor(m, prefix, "bias", FR_FLAG_PARAM, 1, ne);
    *rm = add_tensor(m, prefix, "running_mean", FR_FLAG_STATE, 1, ne);
    *rv = add_tensor(m, prefix, "running_var", FR_FLAG_STATE, 1, ne);
    return *w && *b && *rm && *rv ? FR_STATUS_OK : fail_status(m);
}

enum fr_status fr_model_conv2d_ex(struct fr_model *m, const char *name, const struct fr_model_conv *c)
{
    enum fr_status st;
    if ((st = need_name(name, "conv2d")) != FR_STATUS_OK || (st = need_spatial(m, name, "conv2d")) != FR_STATUS_OK)
        return st;
    int kernel = c->kernel, stride = c->stride, pad = c->pad, out_ch = c->out_ch;
    int groups = c->groups ? c->groups : 1, dil = c->dilation ? c->dilation : 1;
    if (out_ch <= 0 || kernel <= 0 || stride <= 0 || pad < 0 || groups < 0 || dil < 0 || kernel > 1024 ||
        stride > 1024 || pad > 1024 || dil > 1024)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer '%s' (conv2d): bad settings", name);
    if (m->cur.c % groups || out_ch % groups)
        return fr_error(FR_STATUS_SHAPE, "model: layer '%s' (conv2d): %d input and %d output channels are not divisible "
                        "by groups=%d", name, m->cur.c, out_ch, groups);
    int ext = dil * (kernel - 1) + 1; /* the dilated kernel's extent */
    if (m->cur.h + 2 * pad < ext || m->cur.w + 2 * pad < ext)
        return fr_error(FR_STATUS_SHAPE, "model: layer '%s' (conv2d): %dx%d kernel larger than its %dx%d "
                        "input (dilation %d, pad %d)", name, kernel, kernel, m->cur.h, m->cur.w, dil, pad);
    int oh = (m->cur.h + 2 * pad - ext) / stride + 1, ow = (m->cur.w + 2 * pad - ext) / stride + 1;
    struct layer *l = add_layer(m, L_CONV, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->k = kernel;
    l->stride = stride;
    l->pad = pad;
    l->groups = groups;
    l->dil = dil;
    l->fan_in = m->cur.c / groups * kernel * kernel;
    l->w = add_tensor(m, name, "weight", FR_FLAG_PARAM, 4, (int64_t[]){out_ch, m->cur.c / groups, kernel, kernel});
    if (l->w && c->bias)
        l->b = add_tensor(m, name, "bias", FR_FLAG_PARAM, 1, (int64_t[]){out_ch});
    if (!l->w || (c->bias && !l->b))
        return fail_status(m);
    m->cur = (struct shape){out_ch, oh, ow, false};
    return FR_STATUS_OK;
}

enum fr_status fr_model_conv2d(struct fr_model *m, const char *name, int out_ch, int kernel, int stride, int pad, bool bias)
{
    return fr_model_conv2d_ex(m, name, &(struct fr_model_conv){out_ch, kernel, stride, pad, 1, 1, bias});
}

enum fr_status fr_model_linear(struct fr_model *m, const char *name, int out_features)
{
    enum fr_status st;
    if ((st = need_name(name, "linear")) != FR_STATUS_OK)
        return st;
    if (!m->cur.flat)
        return fr_error(FR_STATUS_SHAPE,
                        "model: layer '%s' (linear) needs flat features, got [N,%d,%d,%d]: add flatten or global pooling first",
                        name, m->cur.c, m->cur.h, m->cur.w);
    if (out_features <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer '%s' (linear): %d outputs", name, out_features);
    struct layer *l = add_layer(m, L_LINEAR, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->fan_in = m->cur.c;
    l->w = add_tensor(m, name, "weight", FR_FLAG_PARAM, 2, (int64_t[]){out_features, m->cur.c});
    l->b = l->w ? add_tensor(m, name, "bias", FR_FLAG_PARAM, 1, (int64_t[]){out_features}) : NULL;
    if (!l->w || !l->b)
        return fail_status(m);
    m->cur.c = out_features;
    return FR_STATUS_OK;
}

enum fr_status fr_model_batchnorm_ex(struct fr_model *m, const char *name, float eps, float momentum)
{
    enum fr_status st;
    if ((st = need_name(name, "batchnorm")) != FR_STATUS_OK)
        return st;
    if (!(eps > 0.0f && eps < 1.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer '%s' (batchnorm): eps %g must be in (0,1), momentum %g "
                        "in [0,1]", name, (double)eps, (double)momentum);
    struct layer *l = add_layer(m, L_BN, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->f = eps;
    l->momentum = momentum;
    return bn_tensors(m, name, m->cur.c, &l->w, &l->b, &l->rm, &l->rv);
}

enum fr_status fr_model_batchnorm(struct fr_model *m, const char *name)
{
    return fr_model_batchnorm_ex(m, name, 1e-5f, 0.1f);
}

static const char *const ACT_NAMES[FR_ACT_COUNT] = {"relu", "relu6", "hardswish", "hardsigmoid", "silu", "sigmoid",
                                                     "tanh", "gelu"};

const char *fr_act_name(enum fr_act a) { return (unsigned)a < FR_ACT_COUNT ? ACT_NAMES[a] : "?"; }

enum fr_status fr_model_activation(struct fr_model *m, enum fr_act act)
{
    if ((unsigned)act >= FR_ACT_COUNT)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: unknown activation %d", (int)act);
    struct layer *l = add_layer(m, L_ACT, NULL);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->act = act;
    return FR_STATUS_OK;
}

enum fr_status fr_model_relu(struct fr_model *m) { return fr_model_activation(m, FR_ACT_RELU); }

static struct fr_tensor *activate(struct fr_ctx *ctx, struct fr_tensor *h, enum fr_act act)
{
    switch (act) {
    case FR_ACT_RELU: return fr_relu(ctx, h);
    case FR_ACT_RELU6: return fr_relu6(ctx, h);
    case FR_ACT_HARDSWISH: return fr_hardswish(ctx, h);
    case FR_ACT_HARDSIGMOID: return fr_hardsigmoid(ctx, h);
    case FR_ACT_SILU: return fr_silu(ctx, h);
    case FR_ACT_SIGMOID: return fr_sigmoid(ctx, h);
    case FR_ACT_TANH: return fr_tanh(ctx, h);
    case FR_ACT_GELU: return fr_gelu(ctx, h);
    case FR_ACT_COUNT: break;
    }
    return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "model: unknown activation %d", (int)act);
}

enum fr_status fr_model_pool(struct fr_model *m, bool max, const struct fr_pool2d_params *p)
{
    const char *what = max ? "maxpool" : "avgpool";
    enum fr_status st = need_spatial(m, NULL, what);
    if (st != FR_STATUS_OK)
        return st;
    int kernel = p->kernel, stride = p->stride > 0 ? p->stride : p->kernel, pad = p->pad;
    if (kernel <= 0 || kernel > 1024 || stride > 1024 || pad < 0 || 2 * pad > kernel)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer %d (%s): kernel %d, padding %d (need 0 <= padding <= "
                        "kernel/2)", m->n_layers, what, kernel, pad);
    int oh = fr_pool_out(m->cur.h, kernel, stride, pad, p->ceil_mode);
    int ow = fr_pool_out(m->cur.w, kernel, stride, pad, p->ceil_mode);
    if (oh < 1 || ow < 1)
        return fr_error(FR_STATUS_SHAPE, "model: layer %d (%s): window %d does not fit a %dx%d input (padding %d)",
                        m->n_layers, what, kernel, m->cur.h, m->cur.w, pad);
    struct layer *l = add_layer(m, max ? L_MAXPOOL : L_AVGPOOL, NULL);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->k = kernel;
    l->stride = stride;
    l->pad = pad;
    l->ceil_mode = p->ceil_mode;
    l->exclude_pad = !max && p->exclude_pad;
    m->cur.h = oh;
    m->cur.w = ow;
    return FR_STATUS_OK;
}

enum fr_status fr_model_maxpool(struct fr_model *m, int kernel, int stride)
{
    return fr_model_pool(m, true, &(struct fr_pool2d_params){.kernel = kernel, .stride = stride});
}
enum fr_status fr_model_avgpool(struct fr_model *m, int kernel, int stride)
{
    return fr_model_pool(m, false, &(struct fr_pool2d_params){.kernel = kernel, .stride = stride});
}

enum fr_status fr_model_adaptive_avgpool(struct fr_model *m, int out_h, int out_w)
{
    enum fr_status st = need_spatial(m, NULL, "adaptive_avgpool");
    if (st != FR_STATUS_OK)
        return st;
    if (out_h < 1 || out_w < 1 || out_h > 65536 || out_w > 65536)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer %d (adaptive_avgpool): output %dx%d", m->n_layers,
                        out_h, out_w);
    struct layer *l = add_layer(m, L_ADAPTIVE, NULL);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->k = out_h;
    l->pad = out_w;
    m->cur.h = out_h;
    m->cur.w = out_w;
    return FR_STATUS_OK;
}

enum fr_status fr_model_squeeze_excite(struct fr_model *m, const char *name, int squeeze_ch, enum fr_act act,
                                       enum fr_act gate)
{
    enum fr_status st;
    if ((st = need_name(name, "se")) != FR_STATUS_OK || (st = need_spatial(m, name, "se")) != FR_STATUS_OK)
        return st;
    if (squeeze_ch <= 0 || squeeze_ch > 1000000 || (unsigned)act >= FR_ACT_COUNT || (unsigned)gate >= FR_ACT_COUNT)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer '%s' (se): bad settings", name);
    struct layer *l = add_layer(m, L_SE, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    char pfx[64];
    int c = m->cur.c;
    l->act = act;
    l->gate = gate;
    l->fan_in = c;
    l->fan_in2 = squeeze_ch;
    snprintf(pfx, sizeof pfx, "%.40s.fc1", name);
    l->w = add_tensor(m, pfx, "weight", FR_FLAG_PARAM, 4, (int64_t[]){squeeze_ch, c, 1, 1});
    l->b = l->w ? add_tensor(m, pfx, "bias", FR_FLAG_PARAM, 1, (int64_t[]){squeeze_ch}) : NULL;
    snprintf(pfx, sizeof pfx, "%.40s.fc2", name);
    l->w2 = l->b ? add_tensor(m, pfx, "weight", FR_FLAG_PARAM, 4, (int64_t[]){c, squeeze_ch, 1, 1}) : NULL;
    l->b2 = l->w2 ? add_tensor(m, pfx, "bias", FR_FLAG_PARAM, 1, (int64_t[]){c}) : NULL;
    return l->b2 ? FR_STATUS_OK : fail_status(m);
}

enum fr_status fr_model_set_normalization(struct fr_model *m, int n, const float *mean, const float *std)
{
    if (n == 0) {
        m->norm_ch = 0;
        return FR_STATUS_OK;
    }
    if (n != m->in.c || n > 4)
        return fr_error(FR_STATUS_SHAPE, "model: normalisation for %d channels, the input has %d", n, m->in.c);
    for (int i = 0; i < n; i++) {
        if (!(std[i] > 0.0f) || !isfinite(mean[i]) || !isfinite(std[i]))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: normalisation channel %d: mean %g, std %g (std must be "
                            "> 0)", i, (double)mean[i], (double)std[i]);
        m->norm_mean[i] = mean[i];
        m->norm_std[i] = std[i];
    }
    m->norm_ch = n;
    return FR_STATUS_OK;
}

int fr_model_normalization(const struct fr_model *m, float mean[4], float std[4])
{
    for (int i = 0; i < m->norm_ch; i++) {
        if (mean)
            mean[i] = m->norm_mean[i];
        if (std)
            std[i] = m->norm_std[i];
    }
    return m->norm_ch;
}

enum fr_status fr_model_global_avgpool(struct fr_model *m)
{
    enum fr_status st = need_spatial(m, NULL, "global_avgpool");
    if (st != FR_STATUS_OK)
        return st;
    if (!add_layer(m, L_GAP, NULL))
        return FR_STATUS_OUT_OF_MEMORY;
    m->cur = (struct shape){m->cur.c, 1, 1, true};
    return FR_STATUS_OK;
}

enum fr_status fr_model_flatten(struct fr_model *m)
{
    if (m->cur.flat)
        return FR_STATUS_OK;
    int64_t n = (int64_t)m->cur.c * m->cur.h * m->cur.w;
    if (n > INT32_MAX)
        return fr_error(FR_STATUS_SHAPE, "model: layer %d (flatten): [%d,%d,%d] features are %lld values, more than "
                        "2^31 - 1", m->n_layers, m->cur.c, m->cur.h, m->cur.w, (long long)n);
    if (!add_layer(m, L_FLATTEN, NULL))
        return FR_STATUS_OUT_OF_MEMORY;
    m->cur = (struct shape){(int)n, 1, 1, true};
    return FR_STATUS_OK;
}

enum fr_status fr_model_dropout(struct fr_model *m, float p)
{
    if (!(p >= 0.0f && p < 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: dropout probability %g outside [0,1)", (double)p);
    struct layer *l = add_layer(m, L_DROPOUT, NULL);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->f = p;
    return FR_STATUS_OK;
}

enum fr_status fr_model_residual_begin(struct fr_model *m, const char *name)
{
    enum fr_status st;
    if ((st = need_name(name, "residual")) != FR_STATUS_OK || (st = need_spatial(m, name, "residual")) != FR_STATUS_OK)
        return st;
    if (m->res_depth == FR_MODEL_MAX_DEPTH)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: residual blocks nested deeper than %d", FR_MODEL_MAX_DEPTH);
    struct layer *l = add_layer(m, L_RES_BEGIN, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    m->res_stack[m->res_depth] = m->cur;
    m->res_layer[m->res_depth++] = m->n_layers - 1;
    return FR_STATUS_OK;
}

enum fr_status fr_model_residual_end(struct fr_model *m, float survival)
{
    if (m->res_depth == 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: residual_end without residual_begin");
    if (!(survival > 0.0f && survival <= 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: survival probability %g outside (0,1]", (double)survival);
    struct shape in = m->res_stack[m->res_depth - 1];
    const char *name = m->layers[m->res_layer[m->res_depth - 1]].name;
    if (m->cur.flat)
        return fr_error(FR_STATUS_SHAPE, "model: residual block '%s' must end on [N,C,H,W] features", name);
    int stride = (in.h + m->cur.h - 1) / m->cur.h; /* of the 1x1 projection */
    bool proj = in.c != m->cur.c || in.h != m->cur.h || in.w != m->cur.w;
    if (proj && ((in.h - 1) / stride + 1 != m->cur.h || (in.w - 1) / stride + 1 != m->cur.w))
        return fr_error(FR_STATUS_SHAPE, "model: residual block '%s': input [%d,%d,%d] cannot be projected to [%d,%d,%d]",
                        name, in.c, in.h, in.w, m->cur.c, m->cur.h, m->cur.w);
    char block[48];
    snprintf(block, sizeof block, "%s", name);
    struct layer *l = add_layer(m, L_RES_END, block);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->f = survival;
    l->stride = stride;
    m->res_depth--;
    if (proj) {
        char pfx[64];
        snprintf(pfx, sizeof pfx, "%.40s.downsample.0", block);
        l->pw = add_tensor(m, pfx, "weight", FR_FLAG_PARAM, 4, (int64_t[]){m->cur.c, in.c, 1, 1});
        l->proj_fan_in = in.c;
        snprintf(pfx, sizeof pfx, "%.40s.downsample.1", block);
        if (!l->pw)
            return fail_status(m);
        return bn_tensors(m, pfx, m->cur.c, &l->bn_w, &l->bn_b, &l->bn_rm, &l->bn_rv);
    }
    return FR_STATUS_OK;
}

/* dropout and drop-path salts: LAYER_SALT + the layer's index (node ids, the default salts, stay far below) */
#define LAYER_SALT 0x40000000u

/* Eval: conv(x, w, b) then batch-norm as one conv with w·scale and b·scale + shift (running statistics). */
static void fold_bn(struct fr_ctx *ctx, struct fr_tensor **w, struct fr_tensor **b, struct fr_tensor *bw,
                    struct fr_tensor *bb, struct fr_tensor *rm, struct fr_tensor *rv, float eps)
{
    int64_t o = (*w)->ne[0];
    struct fr_tensor *ab = fr_batchnorm_fold(ctx, bw, bb, rm, rv, eps);
    struct fr_tensor *a = fr_reshape(ctx, fr_slice(ctx, ab, 0, 0, 1), 1, &o);
    struct fr_tensor *shift = fr_reshape(ctx, fr_slice(ctx, ab, 0, 1, 1), 1, &o);
    *w = fr_mul(ctx, *w, fr_reshape(ctx, a, 4, (int64_t[]){o, 1, 1, 1}));
    *b = *b ? fr_add(ctx, fr_mul(ctx, *b, a), shift) : shift;
}

/* a 1x1 conv with bias on [N,C,1,1] (squeeze-excitation) */
static struct fr_tensor *conv1x1(struct fr_ctx *ctx, struct fr_tensor *h, struct fr_tensor *w, struct fr_tensor *b)
{
    return fr_conv2d_ex(ctx, h, w, b, &(struct fr_conv2d_params){0});
}

void fr_model_set_sync_bn(struct fr_model *m, int64_t global_batch) { m->sync_bn_batch = global_batch > 0 ? global_batch : 0; }
void fr_model_set_first_row(struct fr_model *m, int64_t rows) { m->first_row = rows; }

/* a dropout or drop-path node's rows start m->first_row after the graph's first sample (params[2]: the kernels') */
static struct fr_tensor *at_first_row(const struct fr_model *m, struct fr_tensor *t)
{
    if (t)
        t->params[2].i = (int32_t)m->first_row;
    return t;
}

int fr_model_n_layers(const struct fr_model *m) { return m->n_layers; }

void fr_model_layer_input(const struct fr_model *m, int layer, int *c, int *h, int *w)
{
    struct shape s = layer >= 0 && layer < m->n_layers ? m->layers[layer].in : layer < 0 ? m->in : m->cur;
    *c = s.c;
    *h = s.flat ? 0 : s.h;
    *w = s.flat ? 0 : s.w;
}

/* whether a parameter of the layer trains */
static bool layer_trains(const struct layer *l)
{
    const struct fr_tensor *p[] = {l->w, l->b, l->w2, l->b2, l->pw, l->bn_w, l->bn_b};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        if (p[i] && (p[i]->flags & FR_FLAG_PARAM) && !(p[i]->flags & FR_FLAG_FROZEN))
            return true;
    return false;
}

int fr_model_frozen_layers(const struct fr_model *m)
{
    int cut = 0, depth = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const struct layer *l = &m->layers[i];
        if (layer_trains(l))
            return cut;
        depth += l->kind == L_RES_BEGIN ? 1 : l->kind == L_RES_END ? -1 : 0;
        if (depth == 0 && l->kind != L_DROPOUT) /* a dropout right before the trained layers belongs to them */
            cut = i + 1;
    }
    return 0; /* nothing trains */
}

/* A pooling layer's parameters. Training stores the argmax of overlapping max-pool windows (ResNet's 3/2): the
 * backward would search each several times; disjoint ones (2/2) are searched once, faster than a stored index. */
static struct fr_pool2d_params pool_params(const struct layer *l, bool training)
{
    bool keep = training && l->kind == L_MAXPOOL && (l->k > l->stride || l->pad > 0);
    return (struct fr_pool2d_params){l->k, l->stride, l->pad, l->ceil_mode, l->exclude_pad, keep};
}

struct fr_tensor *fr_model_forward(struct fr_model *m, struct fr_ctx *ctx, struct fr_tensor *x, bool training)
{
    return m ? fr_model_forward_layers(m, ctx, x, training, 0, m->n_layers) : NULL;
}

struct fr_tensor *fr_model_forward_layers(struct fr_model *m, struct fr_ctx *ctx, struct fr_tensor *x, bool train,
                                          int first, int last)
{
    if (!m || !x)
        return NULL;
    if (m->res_depth)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "model: residual block left open");
    if (first < 0 || last > m->n_layers || first > last)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "model: layers [%d, %d) of %d", first, last, m->n_layers);
    struct shape in = first < m->n_layers ? m->layers[first].in : m->cur;
    bool fits = x->type == FR_F32 && (in.flat ? x->ndim == 2 && x->ne[1] == in.c
                                              : x->ndim == 4 && x->ne[1] == in.c && x->ne[2] == in.h && x->ne[3] == in.w);
    if (!fits) {
        char sh[64], want[64];
        if (in.flat)
            snprintf(want, sizeof want, "f32[N,%d]", in.c);
        else
            snprintf(want, sizeof want, "f32[N,%d,%d,%d]", in.c, in.h, in.w);
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "model: input '%s' is %s, %s %d wants %s", x->name,
                           fr_tensor_shape_str(x, sh, sizeof sh), first ? "layer" : "the model's layer", first, want);
    }
    struct fr_tensor *h = x, *stack[FR_MODEL_MAX_DEPTH];
    int depth = 0;
    /* training: the frozen backbone runs in eval mode (its batch-norms folded, no dropout or drop-path); nothing
     * before the first trained layer needs a gradient, so the backward pass leaves it out */
    const int frozen = train ? fr_model_frozen_layers(m) : 0;
    for (int i = first; i < last && h; i++) {
        struct layer *l = &m->layers[i];
        const bool training = train && i >= frozen;
        switch (l->kind) {
        case L_CONV: {
            /* eval: a following batch-norm is folded into the weights and bias (no tensor of its own); a
             * following ReLU runs inside the conv kernel */
            struct fr_tensor *w = l->w, *b = l->b;
            if (!(train && i + 1 >= frozen) && i + 1 < last && m->layers[i + 1].kind == L_BN) { /* both in eval mode */
                const struct layer *bn = &m->layers[++i];
                fold_bn(ctx, &w, &b, bn->w, bn->b, bn->rm, bn->rv, bn->f);
            }
            bool relu = i + 1 < last && m->layers[i + 1].kind == L_ACT && m->layers[i + 1].act == FR_ACT_RELU;
            struct fr_conv2d_params p = {.stride_h = l->stride, .stride_w = l->stride, .pad_h = l->pad, .pad_w = l->pad,
                                         .dil_h = l->dil, .dil_w = l->dil, .groups = l->groups, .relu = relu};
            h = fr_conv2d_ex(ctx, h, w, b, &p);
            i += relu;
            break;
        }
        case L_LINEAR:
            h = fr_add(ctx, fr_matmul(ctx, h, l->w, false, true), l->b);
            break;
        case L_BN: {
            h = training && m->sync_bn_batch > 0
                    ? fr_batchnorm_sync(ctx, h, l->w, l->b, l->rm, l->rv, l->f, l->momentum, m->sync_bn_batch)
                    : fr_batchnorm(ctx, h, l->w, l->b, l->rm, l->rv, l->f, l->momentum);
            /* a following ReLU runs inside the batch-norm kernel (one pass, no tensor of its own), unless a
             * max-pool follows it (see L_ACT) */
            bool relu = i + 1 < last && m->layers[i + 1].kind == L_ACT && m->layers[i + 1].act == FR_ACT_RELU &&
                        !(i + 2 < last && m->layers[i + 2].kind == L_MAXPOOL);
            if (relu) {
                h = fr_batchnorm_fuse_relu(h);
                i++;
            }
            break;
        }
        case L_ACT:
            /* training: ReLU then max-pool runs as max-pool then ReLU (the same values and gradients: max
             * commutes with a non-decreasing function, and a window whose maximum is <= 0 passes no gradient
             * either way), so the backward keeps the pooled map, not the 4x larger full one (ResNet's stem) */
            if (training && l->act == FR_ACT_RELU && i + 1 < last && m->layers[i + 1].kind == L_MAXPOOL) {
                struct fr_pool2d_params p = pool_params(&m->layers[++i], training);
                h = fr_relu(ctx, fr_maxpool2d_ex(ctx, h, &p));
                break;
            }
            h = activate(ctx, h, l->act);
            break;
        case L_MAXPOOL:
        case L_AVGPOOL: {
            struct fr_pool2d_params p = pool_params(l, training);
            h = l->kind == L_MAXPOOL ? fr_maxpool2d_ex(ctx, h, &p) : fr_avgpool2d_ex(ctx, h, &p);
            break;
        }
        case L_ADAPTIVE:
            h = h->ne[2] == l->k && h->ne[3] == l->pad ? h : fr_adaptive_avgpool2d(ctx, h, l->k, l->pad);
            break;
        case L_GAP:
            h = fr_flatten(ctx, fr_global_avgpool2d(ctx, h));
            break;
        case L_FLATTEN:
            h = fr_flatten(ctx, h);
            break;
        case L_DROPOUT:
            if (training && l->f > 0.0f) /* masks keyed by the layer: the same in every graph of the model */
                h = at_first_row(m, fr_dropout_salted(ctx, h, l->f, LAYER_SALT + (uint32_t)i));
            break;
        case L_SE: {
            struct fr_tensor *s = activate(ctx, conv1x1(ctx, fr_global_avgpool2d(ctx, h), l->w, l->b), l->act);
            s = activate(ctx, conv1x1(ctx, s, l->w2, l->b2), l->gate);
            h = fr_mul(ctx, h, s);
            break;
        }
        case L_RES_BEGIN:
            stack[depth++] = h;
            break;
        case L_RES_END: {
            if (depth == 0)
                return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "model: layers [%d, %d) split residual block '%s'",
                                   first, last, l->name);
            struct fr_tensor *sc = stack[--depth];
            if (l->pw && !training) {
                struct fr_conv2d_params p = {.stride_h = l->stride, .stride_w = l->stride};
                struct fr_tensor *w = l->pw, *b = NULL;
                fold_bn(ctx, &w, &b, l->bn_w, l->bn_b, l->bn_rm, l->bn_rv, 1e-5f);
                sc = fr_conv2d_ex(ctx, sc, w, b, &p);
            } else if (l->pw) {
                struct fr_conv2d_params p = {.stride_h = l->stride, .stride_w = l->stride};
                sc = fr_conv2d_ex(ctx, sc, l->pw, NULL, &p);
                sc = m->sync_bn_batch > 0
                         ? fr_batchnorm_sync(ctx, sc, l->bn_w, l->bn_b, l->bn_rm, l->bn_rv, 1e-5f, 0.1f, m->sync_bn_batch)
                         : fr_batchnorm(ctx, sc, l->bn_w, l->bn_b, l->bn_rm, l->bn_rv, 1e-5f, 0.1f);
            }
            if (training && l->f < 1.0f)
                h = at_first_row(m, fr_drop_path_salted(ctx, h, l->f, LAYER_SALT + (uint32_t)i));
            h = fr_add(ctx, h, sc);
            break;
        }
        }
        if (!h) {
            char why[512];
            snprintf(why, sizeof why, "%s", fr_last_error());
            fr_error(fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_SHAPE, "model: layer %d%s%s%s: %s", i,
                     l->name[0] ? " '" : "", l->name, l->name[0] ? "'" : "", why);
        }
    }
    if (h && depth)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "model: layers [%d, %d) end inside a residual block", first,
                           last);
    return h;
}

int fr_model_n_tensors(const struct fr_model *m) { return m->n_tensors; }

struct fr_model_entry fr_model_tensor(const struct fr_model *m, int i)
{
    if (i < 0 || i >= m->n_tensors)
        return (struct fr_model_entry){NULL, NULL};
    return (struct fr_model_entry){m->tensors[i]->name, m->tensors[i]};
}

struct fr_tensor *fr_model_find(const struct fr_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i]->name, name) == 0)
            return m->tensors[i];
    return NULL;
}

int64_t fr_model_n_params(const struct fr_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i]->flags & FR_FLAG_PARAM)
            n += fr_nelements(m->tensors[i]);
    return n;
}

int fr_model_n_classes(const struct fr_model *m) { return m->cur.flat ? m->cur.c : 0; }

struct fr_ctx *fr_model_ctx(const struct fr_model *m) { return m->ctx; }

void fr_model_input_shape(const struct fr_model *m, int *c, int *h, int *w)
{
    *c = m->in.c;
    *h = m->in.h;
    *w = m->in.w;
}

int fr_model_freeze(struct fr_model *m, const char *prefix, bool frozen)
{
    int n = 0;
    size_t len = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < m->n_tensors; i++) {
        struct fr_tensor *t = m->tensors[i];
        if (!(t->flags & FR_FLAG_PARAM) || strncmp(t->name, prefix ? prefix : "", len) != 0)
            continue;
        if (frozen)
            t->flags |= FR_FLAG_FROZEN;
        else
            t->flags &= ~(uint32_t)FR_FLAG_FROZEN;
        n++;
    }
    return n;
}

static void replace_tensor(struct fr_model *m, struct fr_tensor *old, struct fr_tensor *new_t)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i] == old)
            m->tensors[i] = new_t;
    old->flags &= ~(uint32_t)(FR_FLAG_PARAM | FR_FLAG_STATE); /* no storage for the old head from fr_model_alloc */
}

enum fr_status fr_model_replace_head(struct fr_model *m, int n_classes)
{
    if (m->n_layers == 0 || m->layers[m->n_layers - 1].kind != L_LINEAR)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: the last layer is not linear, no head to replace");
    if (n_classes <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: %d classes", n_classes);
    struct layer *l = &m->layers[m->n_layers - 1];
    struct fr_tensor *w = fr_tensor_new(m->ctx, FR_F32, 2, (int64_t[]){n_classes, l->fan_in});
    struct fr_tensor *b = fr_tensor_new(m->ctx, FR_F32, 1, (int64_t[]){n_classes});
    if (!w || !b)
        return fr_ctx_status(m->ctx);
    fr_tensor_set_name(fr_tensor_set_flags(w, FR_FLAG_PARAM), "%s", l->w->name);
    fr_tensor_set_name(fr_tensor_set_flags(b, FR_FLAG_PARAM), "%s", l->b->name);
    replace_tensor(m, l->w, w);
    replace_tensor(m, l->b, b);
    l->w = w;
    l->b = b;
    m->cur.c = n_classes;
    return FR_STATUS_OK;
}

enum fr_status fr_model_alloc(struct fr_model *m, struct fr_backend *backend)
{
    return fr_ctx_alloc(m->ctx, backend, FR_FLAG_PARAM | FR_FLAG_STATE);
}

static struct fr_named_tensor *named(const struct fr_model *m)
{
    struct fr_named_tensor *ts = calloc((size_t)m->n_tensors + 1, sizeof *ts);
    if (!ts) {
        fr_error(FR_STATUS_OUT_OF_MEMORY, "model: out of memory");
        return NULL;
    }
    for (int i = 0; i < m->n_tensors; i++)
        ts[i] = (struct fr_named_tensor){m->tensors[i]->name, m->tensors[i]};
    return ts;
}

enum fr_status fr_model_save(const struct fr_model *m, const char *path)
{
    struct fr_named_tensor *ts = named(m);
    if (!ts)
        return FR_STATUS_OUT_OF_MEMORY;
    enum fr_status st = fr_st_save_tensors(path, ts, m->n_tensors, NULL, 0);
    free(ts);
    return st;
}

/* PyTorch's batch-norm step counters: frugal has no use for them */
static bool ignored_name(const char *name)
{
    static const char suffix[] = ".num_batches_tracked";
    size_t n = strlen(name), k = sizeof suffix - 1;
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

/* A mismatch list grouped by layer: "a.b.{weight,bias}, c.weight". */
struct mlist {
    char *s;
    size_t n, cap;
    int count;
    char last_prefix[128];
    bool open_brace;
};

static void ml_puts(struct mlist *l, const char *t)
{
    size_t k = strlen(t);
    if (l->n + k + 1 > l->cap) {
        size_t cap = (l->cap + k + 1) * 2;
        char *s = realloc(l->s, cap);
        if (!s)
            return; /* the message is cut short; the status still says it failed */
        l->s = s;
        l->cap = cap;
    }
    memcpy(l->s + l->n, t, k + 1);
    l->n += k;
}

static void ml_close(struct mlist *l)
{
    if (l->open_brace)
        ml_puts(l, "}");
    l->open_brace = false;
}

/* adds a name (names of one layer come in a row); extra = a note after it, e.g. its shapes */
static void ml_add(struct mlist *l, const char *name, const char *extra)
{
    const char *dot = strrchr(name, '.');
    size_t plen = dot ? (size_t)(dot - name) : 0;
    l->count++;
    if (!extra && dot && plen < sizeof l->last_prefix && l->n && strlen(l->last_prefix) == plen &&
        strncmp(l->last_prefix, name, plen) == 0) {
        /* same layer as the previous name: "prefix.{a,b}" */
        if (!l->open_brace) {
            /* reopen the previous entry "prefix.a" as "prefix.{a" */
            const char *prev = l->s + l->n;
            while (prev > l->s && prev[-1] != ' ')
                prev--;
            char tail[128];
            snprintf(tail, sizeof tail, "%s", prev + plen + 1);
            l->n = (size_t)(prev - l->s) + plen + 1;
            l->s[l->n] = 0;
            ml_puts(l, "{");
            ml_puts(l, tail);
            l->open_brace = true;
        }
        ml_puts(l, ",");
        ml_puts(l, dot + 1);
        return;
    }
    ml_close(l);
    if (l->n)
        ml_puts(l, ", ");
    ml_puts(l, name);
    if (extra) {
        ml_puts(l, " ");
        ml_puts(l, extra);
        l->last_prefix[0] = 0;
    } else {
        snprintf(l->last_prefix, sizeof l->last_prefix, "%.*s", (int)(plen < sizeof l->last_prefix ? plen : 0), name);
    }
}

static void shape_of(char *buf, size_t size, int ndim, const int64_t *ne)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? "," : "", (long long)ne[i]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

enum fr_status fr_model_load_st(struct fr_model *m, const struct fr_safetensors *st, bool allow_missing,
                                bool ignore_unexpected)
{
    struct mlist miss = {0}, unexp = {0}, shape = {0};
    for (int i = 0; i < m->n_tensors; i++) {
        const struct fr_tensor *t = m->tensors[i];
        const struct fr_st_tensor *f = fr_st_find(st, t->name);
        if (!f) {
            if (!allow_missing)
                ml_add(&miss, t->name, NULL);
            continue;
        }
        bool same = f->ndim == t->ndim || (f->ndim == 0 && fr_nelements(t) == 1);
        for (int d = 0; same && d < f->ndim; d++)
            same = f->shape[d] == t->ne[d];
        if (!same) {
            char a[96], b[96], note[220];
            shape_of(a, sizeof a, f->ndim, f->shape);
            shape_of(b, sizeof b, t->ndim, t->ne);
            snprintf(note, sizeof note, "(file %s, model %s)", a, b);
            ml_add(&shape, t->name, note);
        }
    }
    if (!ignore_unexpected)
        for (int j = 0; j < st->n_tensors; j++)
            if (!ignored_name(st->tensors[j].name) && !fr_model_find(m, st->tensors[j].name))
                ml_add(&unexp, st->tensors[j].name, NULL);
    ml_close(&miss);
    ml_close(&unexp);
    ml_close(&shape);
    enum fr_status s = FR_STATUS_OK;
    if (miss.count + unexp.count + shape.count) {
        char *msg = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&msg, &len);
        if (f) {
            const char *sep = "";
            if (shape.count)
                fprintf(f, "%d mis-shaped: %s", shape.count, shape.s), sep = "; ";
            if (miss.count)
                fprintf(f, "%s%d missing: %s", sep, miss.count, miss.s), sep = "; ";
            if (unexp.count)
                fprintf(f, "%s%d unexpected: %s", sep, unexp.count, unexp.s);
            fclose(f);
        }
        s = fr_error(FR_STATUS_SHAPE, "%s: the weights do not fit the model: %s", st->name, msg ? msg : "out of memory");
        free(msg);
    }
    free(miss.s);
    free(unexp.s);
    free(shape.s);
    if (s != FR_STATUS_OK)
        return s;
    struct fr_named_tensor *ts = named(m);
    if (!ts)
        return FR_STATUS_OUT_OF_MEMORY;
    struct fr_st_load_opts o = {.allow_missing = allow_missing, .ignore_unexpected = true};
    s = fr_st_load_tensors(st, ts, m->n_tensors, &o);
    free(ts);
    return s;
}

enum fr_status fr_model_load(struct fr_model *m, const char *path, bool allow_missing, bool ignore_unexpected)
{
    struct fr_safetensors *st;
    enum fr_status s = fr_st_open(path, &st);
    if (s != FR_STATUS_OK)
        return s;
    s = fr_model_load_st(m, st, allow_missing, ignore_unexpected);
    fr_st_free(st);
    return s;
}
