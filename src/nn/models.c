/* The built-in models: t (tiny student), c (compact CNN with batch-norm), s (the reference CNN
 * of docs/reference.md §8) and m (a small ResNet with batch-norm, stochastic depth and dropout). */
#include "nn/nn_internal.h"

#define TRY(x)                            \
    do {                                  \
        enum fr_status st_ = (x);         \
        if (st_ != FR_STATUS_OK)          \
            return st_;                   \
    } while (0)

/* conv 8 -> pool -> conv 16 -> pool -> linear */
static enum fr_status build_t(struct fr_model *m, int k, float dropout, float survival)
{
    TRY(fr_model_conv2d(m, "conv1", 8, 3, 1, 1, true));
    TRY(fr_model_relu(m));
    TRY(fr_model_maxpool(m, 2, 2));
    TRY(fr_model_conv2d(m, "conv2", 16, 3, 1, 1, true));
    TRY(fr_model_relu(m));
    TRY(fr_model_maxpool(m, 2, 2));
    TRY(fr_model_flatten(m));
    (void)dropout;
    (void)survival;
    return fr_model_linear(m, "fc", k);
}

/* conv 16 + bn -> pool -> conv 32 + bn -> pool -> dropout -> linear: t's shape, twice as wide, with batch-norm */
static enum fr_status build_c(struct fr_model *m, int k, float dropout, float survival)
{
    TRY(fr_model_conv2d(m, "conv1", 16, 3, 1, 1, false));
    TRY(fr_model_batchnorm(m, "bn1"));
    TRY(fr_model_relu(m));
    TRY(fr_model_maxpool(m, 2, 2));
    TRY(fr_model_conv2d(m, "conv2", 32, 3, 1, 1, false));
    TRY(fr_model_batchnorm(m, "bn2"));
    TRY(fr_model_relu(m));
    TRY(fr_model_maxpool(m, 2, 2));
    TRY(fr_model_flatten(m));
    TRY(fr_model_dropout(m, dropout));
    (void)survival;
    return fr_model_linear(m, "fc", k);
}

/* docs/reference.md §8: conv1 3x3 ->32, pool, conv2 3x3 ->64, pool, fc1 ->128, dropout 0.5, fc2 */
static enum fr_status build_s(struct fr_model *m, int k, float dropout, float survival)
{
    TRY(fr_model_conv2d(m, "conv1", 32, 3, 1, 1, true));
    TRY(fr_model_relu(m));
    TRY(fr_model_maxpool(m, 2, 2));
    TRY(fr_model_conv2d(m, "conv2", 64, 3, 1, 1, true));
    TRY(fr_model_relu(m));
    TRY(fr_model_maxpool(m, 2, 2));
    TRY(fr_model_flatten(m));
    TRY(fr_model_linear(m, "fc1", 128));
    TRY(fr_model_relu(m));
    TRY(fr_model_dropout(m, dropout));
    (void)survival;
    return fr_model_linear(m, "fc2", k);
}

/* torchvision BasicBlock: conv-bn-relu-conv-bn, (+ downsample), add, relu; the branch goes through
 * drop-path with the given survival probability */
static enum fr_status basic_block(struct fr_model *m, const char *name, int ch, int stride, float survival)
{
    char n[48];
    TRY(fr_model_residual_begin(m, name));
    snprintf(n, sizeof n, "%s.conv1", name);
    TRY(fr_model_conv2d(m, n, ch, 3, stride, 1, false));
    snprintf(n, sizeof n, "%s.bn1", name);
    TRY(fr_model_batchnorm(m, n));
    TRY(fr_model_relu(m));
    snprintf(n, sizeof n, "%s.conv2", name);
    TRY(fr_model_conv2d(m, n, ch, 3, 1, 1, false));
    snprintf(n, sizeof n, "%s.bn2", name);
    TRY(fr_model_batchnorm(m, n));
    TRY(fr_model_residual_end(m, survival));
    return fr_model_relu(m);
}

/* stem conv 32 + bn; three stages of two blocks (32, 64 /2, 128 /2); survival decays linearly to 0.8 at the
 * last block (Noisy Student); global pooling, dropout 0.5, fc. About 0.7 M parameters. */
static enum fr_status build_m(struct fr_model *m, int k, float dropout, float survival)
{
    TRY(fr_model_conv2d(m, "conv1", 32, 3, 1, 1, false));
    TRY(fr_model_batchnorm(m, "bn1"));
    TRY(fr_model_relu(m));
    const int widths[3] = {32, 64, 128};
    const int n_blocks = 6;
    int b = 0;
    for (int s = 0; s < 3; s++)
        for (int j = 0; j < 2; j++, b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", s + 1, j);
            float sv = 1.0f - (1.0f - survival) * (float)(b + 1) / (float)n_blocks;
            TRY(basic_block(m, name, widths[s], s > 0 && j == 0 ? 2 : 1, sv));
        }
    TRY(fr_model_global_avgpool(m));
    TRY(fr_model_dropout(m, dropout));
    return fr_model_linear(m, "fc", k);
}

enum fr_status fr_model_builtin(struct fr_ctx *ctx, const char *name, int c, int h, int w, int n_classes,
                                struct fr_model **out)
{
    return fr_model_builtin_ex(ctx, name, c, h, w, n_classes, NULL, out);
}

enum fr_status fr_model_builtin_ex(struct fr_ctx *ctx, const char *name, int c, int h, int w, int n_classes,
                                   const struct fr_model_opts *o, struct fr_model **out)
{
    *out = NULL;
    if (!name || n_classes <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model: need a name and at least one class");
    enum fr_status (*build)(struct fr_model *, int, float, float) = NULL;
    if (strcmp(name, "t") == 0)
        build = build_t;
    else if (strcmp(name, "c") == 0)
        build = build_c;
    else if (strcmp(name, "s") == 0)
        build = build_s;
    else if (strcmp(name, "m") == 0)
        build = build_m;
    else
        return fr_error(FR_STATUS_NOT_FOUND, "model: unknown built-in model '%s' (t, c, s, m)", name);
    struct fr_model *m = fr_model_new(ctx, c, h, w);
    if (!m)
        return fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
    float dropout = o && o->dropout >= 0.0f ? o->dropout : 0.5f;
    float survival = o && o->survival >= 0.0f ? o->survival : 0.8f;
    enum fr_status st = build(m, n_classes, dropout, survival);
    if (st != FR_STATUS_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", fr_last_error());
        fr_model_free(m);
        return fr_error(st, "model '%s' on %dx%dx%d input: %s", name, c, h, w, why);
    }
    *out = m;
    return FR_STATUS_OK;
}
