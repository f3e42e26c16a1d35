/* The layer stack: adding layers with shape checks and PyTorch-named parameters, the forward pass,
 * freezing by prefix, replacing the head, storage and safetensors save/load by name. */
#include "nn/nn_internal.h"
#include "frugal/io.h"
#include "frugal/nn.h"

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
    struct fr_tensor *t = fr_tensor_new(m->ctx, FR_F32, ndim, ne);
    if (!t)
        return NULL;
    fr_tensor_set_flags(t, flags);
    fr_tensor_set_name(t, "%.48s.%s", prefix, suffix);
    m->tensors[m->n_tensors++] = t;
    return t;
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
    return *w && *b && *rm && *rv ? FR_STATUS_OK : fr_ctx_status(m->ctx);
}

enum fr_status fr_model_conv2d(struct fr_model *m, const char *name, int out_ch, int kernel, int stride, int pad, bool bias)
{
    enum fr_status st;
    if ((st = need_name(name, "conv2d")) != FR_STATUS_OK || (st = need_spatial(m, name, "conv2d")) != FR_STATUS_OK)
        return st;
    if (out_ch <= 0 || kernel <= 0 || stride <= 0 || pad < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: layer '%s' (conv2d): bad settings", name);
    int oh = (m->cur.h + 2 * pad - kernel) / stride + 1, ow = (m->cur.w + 2 * pad - kernel) / stride + 1;
    if (m->cur.h + 2 * pad < kernel || m->cur.w + 2 * pad < kernel)
        return fr_error(FR_STATUS_SHAPE, "model: layer '%s' (conv2d): %dx%d kernel larger than its %dx%d input (pad %d)",
                        name, kernel, kernel, m->cur.h, m->cur.w, pad);
    struct layer *l = add_layer(m, L_CONV, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->k = kernel;
    l->stride = stride;
    l->pad = pad;
    l->fan_in = m->cur.c * kernel * kernel;
    l->w = add_tensor(m, name, "weight", FR_FLAG_PARAM, 4, (int64_t[]){out_ch, m->cur.c, kernel, kernel});
    if (bias)
        l->b = add_tensor(m, name, "bias", FR_FLAG_PARAM, 1, (int64_t[]){out_ch});
    if (!l->w || (bias && !l->b))
        return fr_ctx_status(m->ctx);
    m->cur = (struct shape){out_ch, oh, ow, false};
    return FR_STATUS_OK;
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
    l->b = add_tensor(m, name, "bias", FR_FLAG_PARAM, 1, (int64_t[]){out_features});
    if (!l->w || !l->b)
        return fr_ctx_status(m->ctx);
    m->cur.c = out_features;
    return FR_STATUS_OK;
}

enum fr_status fr_model_batchnorm(struct fr_model *m, const char *name)
{
    enum fr_status st;
    if ((st = need_name(name, "batchnorm")) != FR_STATUS_OK)
        return st;
    struct layer *l = add_layer(m, L_BN, name);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    return bn_tensors(m, name, m->cur.c, &l->w, &l->b, &l->rm, &l->rv);
}

enum fr_status fr_model_relu(struct fr_model *m) { return add_layer(m, L_RELU, NULL) ? FR_STATUS_OK : FR_STATUS_OUT_OF_MEMORY; }

static enum fr_status pool(struct fr_model *m, enum layer_kind kind, int kernel, int stride)
{
    const char *what = kind == L_MAXPOOL ? "maxpool" : "avgpool";
    enum fr_status st = need_spatial(m, NULL, what);
    if (st != FR_STATUS_OK)
        return st;
    if (stride <= 0)
        stride = kernel;
    if (kernel <= 0 || kernel > m->cur.h || kernel > m->cur.w)
        return fr_error(FR_STATUS_SHAPE, "model: layer %d (%s): window %d does not fit a %dx%d input", m->n_layers, what,
                        kernel, m->cur.h, m->cur.w);
    struct layer *l = add_layer(m, kind, NULL);
    if (!l)
        return FR_STATUS_OUT_OF_MEMORY;
    l->k = kernel;
    l->stride = stride;
    m->cur.h = (m->cur.h - kernel) / stride + 1;
    m->cur.w = (m->cur.w - kernel) / stride + 1;
    return FR_STATUS_OK;
}

enum fr_status fr_model_maxpool(struct fr_model *m, int kernel, int stride) { return pool(m, L_MAXPOOL, kernel, stride); }
enum fr_status fr_model_avgpool(struct fr_model *m, int kernel, int stride) { return pool(m, L_AVGPOOL, kernel, stride); }

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
    if (!add_layer(m, L_FLATTEN, NULL))
        return FR_STATUS_OUT_OF_MEMORY;
    m->cur = (struct shape){m->cur.c * m->cur.h * m->cur.w, 1, 1, true};
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
            return fr_ctx_status(m->ctx);
        return bn_tensors(m, pfx, m->cur.c, &l->bn_w, &l->bn_b, &l->bn_rm, &l->bn_rv);
    }
    return FR_STATUS_OK;
}

struct fr_tensor *fr_model_forward(struct fr_model *m, struct fr_ctx *ctx, struct fr_tensor *x, bool training)
{
    if (!m || !x)
        return NULL;
    if (m->res_depth)
        return fr_ctx_fail(ctx, FR_STATUS_INVALID_ARGUMENT, "model: residual block left open");
    if (x->ndim != 4 || x->ne[1] != m->in.c || x->ne[2] != m->in.h || x->ne[3] != m->in.w || x->type != FR_F32) {
        char sh[64];
        return fr_ctx_fail(ctx, FR_STATUS_SHAPE, "model: input '%s' is %s, the model wants f32[N,%d,%d,%d]", x->name,
                           fr_tensor_shape_str(x, sh, sizeof sh), m->in.c, m->in.h, m->in.w);
    }
    struct fr_tensor *h = x, *stack[FR_MODEL_MAX_DEPTH];
    int depth = 0;
    for (int i = 0; i < m->n_layers && h; i++) {
        struct layer *l = &m->layers[i];
        switch (l->kind) {
        case L_CONV: {
            /* a following ReLU runs inside the conv kernel */
            bool relu = i + 1 < m->n_layers && m->layers[i + 1].kind == L_RELU;
            struct fr_conv2d_params p = {.stride_h = l->stride, .stride_w = l->stride, .pad_h = l->pad, .pad_w = l->pad,
                                         .relu = relu};
            h = fr_conv2d_ex(ctx, h, l->w, l->b, &p);
            i += relu;
            break;
        }
        case L_LINEAR:
            h = fr_add(ctx, fr_matmul(ctx, h, l->w, false, true), l->b);
            break;
        case L_BN:
            h = fr_batchnorm(ctx, h, l->w, l->b, l->rm, l->rv, 1e-5f, 0.1f);
            break;
        case L_RELU:
            h = fr_relu(ctx, h);
            break;
        case L_MAXPOOL:
            h = fr_maxpool2d(ctx, h, l->k, l->stride, 0);
            break;
        case L_AVGPOOL:
            h = fr_avgpool2d(ctx, h, l->k, l->stride, 0);
            break;
        case L_GAP:
            h = fr_flatten(ctx, fr_global_avgpool2d(ctx, h));
            break;
        case L_FLATTEN:
            h = fr_flatten(ctx, h);
            break;
        case L_DROPOUT:
            if (training && l->f > 0.0f)
                h = fr_dropout(ctx, h, l->f);
            break;
        case L_RES_BEGIN:
            stack[depth++] = h;
            break;
        case L_RES_END: {
            struct fr_tensor *sc = stack[--depth];
            if (l->pw) {
                struct fr_conv2d_params p = {.stride_h = l->stride, .stride_w = l->stride};
                sc = fr_batchnorm(ctx, fr_conv2d_ex(ctx, sc, l->pw, NULL, &p), l->bn_w, l->bn_b, l->bn_rm, l->bn_rv,
                                  1e-5f, 0.1f);
            }
            if (training && l->f < 1.0f)
                h = fr_drop_path(ctx, h, l->f);
            h = fr_add(ctx, h, sc);
            break;
        }
        }
        if (!h) {
            char why[256];
            snprintf(why, sizeof why, "%s", fr_last_error());
            fr_error(fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_SHAPE, "model: layer %d%s%s%s: %s", i,
                     l->name[0] ? " '" : "", l->name, l->name[0] ? "'" : "", why);
        }
    }
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

enum fr_status fr_model_load(struct fr_model *m, const char *path, bool allow_missing, bool ignore_unexpected)
{
    struct fr_named_tensor *ts = named(m);
    if (!ts)
        return FR_STATUS_OUT_OF_MEMORY;
    struct fr_st_load_opts o = {.allow_missing = allow_missing, .ignore_unexpected = ignore_unexpected};
    enum fr_status st = fr_st_load_file(path, ts, m->n_tensors, &o);
    free(ts);
    return st;
}
