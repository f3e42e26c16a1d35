/* The input stage of a policy as graph ops (AUG_APPLY -> AUG_MIX -> normalise, labels mixed by AUG_MIX_LABELS),
 * shared by the training graph and the batch augmenter behind `frugal augment` and the Python binding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "core/internal.h"
#include "frugal/backend.h"
#include "frugal/graph.h"

static struct fr_tensor *stage_input(struct fr_ctx *ctx, enum fr_dtype type, int ndim, const int64_t *ne,
                                     const char *name)
{
    struct fr_tensor *t = fr_tensor_new(ctx, type, ndim, ne);
    return t ? fr_tensor_set_name(fr_tensor_set_flags(t, FR_FLAG_INPUT), "%s", name) : NULL;
}

enum fr_status fr_aug_stage_build(struct fr_ctx *ctx, const struct fr_aug_policy *pol, int batch, int h, int w, int c,
                                  unsigned flags, struct fr_aug_stage *s)
{
    struct fr_tensor *images = stage_input(ctx, FR_U8, 4, (int64_t[]){batch, h, w, c}, "aug.images");
    if (!images)
        return fr_ctx_status(ctx) != FR_STATUS_OK ? fr_ctx_status(ctx) : FR_STATUS_OUT_OF_MEMORY;
    return fr_aug_stage_build_on(ctx, images, pol, flags, s);
}

enum fr_status fr_aug_stage_build_on(struct fr_ctx *ctx, struct fr_tensor *images, const struct fr_aug_policy *pol,
                                     unsigned flags, struct fr_aug_stage *s)
{
    const bool tables = flags & FR_AUG_STAGE_TABLES;
    memset(s, 0, sizeof *s);
    if (images->type != FR_U8 || images->ndim != 4)
        return fr_error(FR_STATUS_SHAPE, "augment: a stage takes u8 NHWC images");
    const int batch = (int)images->ne[0], h = (int)images->ne[1], w = (int)images->ne[2];
    s->oh = h, s->ow = w;
    s->images = images;
    struct fr_tensor *y = s->images;
    if (pol && fr_aug_policy_has_ops(pol)) {
        s->k = fr_aug_policy_max_ops(pol);
        fr_aug_policy_out_size(pol, h, w, &s->oh, &s->ow);
        s->prog = stage_input(ctx, FR_F32, 3, (int64_t[]){batch, s->k, FR_AUG_REC}, "aug.programs");
        if (tables) {
            s->tab_cap = (size_t)batch * fr_aug_policy_table_len(pol, h, w);
            if (s->tab_cap > INT32_MAX)
                return fr_error(FR_STATUS_UNSUPPORTED,
                                "augment: the coordinate tables of %d samples of %dx%d would exceed 2^31 ints", batch,
                                s->ow, s->oh);
            s->tab = stage_input(ctx, FR_I32, 1, (int64_t[]){(int64_t)s->tab_cap}, "aug.tables");
        }
        y = fr_aug_apply_tab(ctx, y, s->prog, s->tab, s->oh, s->ow, FR_AUG_NHWC);
    }
    s->mix = (pol && fr_aug_policy_mix(pol)) || (flags & FR_AUG_STAGE_MIX);
    if (s->mix || (flags & FR_AUG_STAGE_MIXREC))
        s->mixrec = stage_input(ctx, FR_F32, 2, (int64_t[]){batch, FR_AUG_MIX_REC}, "aug.mix");
    if (s->mix)
        y = fr_aug_mix(ctx, y, s->mixrec, FR_AUG_NHWC);
    s->out = y;
    if (!y)
        return fr_ctx_status(ctx) != FR_STATUS_OK ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
    return FR_STATUS_OK;
}

/* --- the batch augmenter --- */
struct fr_augmenter {
    struct fr_augmenter_opts o;
    struct fr_aug_policy *pol;
    struct fr_ctx *ctx;
    struct fr_graph *g;
    struct fr_aug_stage st;
    struct fr_tensor *y, *labels, *soft;
    bool norm;
    float *prog, *mix; /* one batch of host inputs, drawn per call */
    int32_t *lab;
    int32_t *tab; /* coordinate tables (devices without doubles) */
};

void fr_augmenter_free(struct fr_augmenter *a)
{
    if (!a)
        return;
    fr_graph_free(a->g);
    fr_ctx_free(a->ctx);
    fr_aug_policy_free(a->pol);
    free(a->prog);
    free(a->mix);
    free(a->lab);
    free(a->tab);
    free(a);
}

enum fr_status fr_augmenter_new(struct fr_backend *be, const struct fr_augmenter_opts *o, struct fr_augmenter **out)
{
    *out = NULL;
    if (!be || !o)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augmenter: needs a backend and options");
    if (o->batch < 1 || o->h < 1 || o->w < 1 || o->c < 1 || o->c > 4 || o->n_classes < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "augmenter: batch %d, image %dx%dx%d, %d classes: need batch >= 1, 1..4 channels, classes >= 0",
                        o->batch, o->h, o->w, o->c, o->n_classes);
    if ((int64_t)o->batch * o->h * o->w * o->c > INT32_MAX)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augmenter: a batch of %d images of %dx%dx%d is too large",
                        o->batch, o->h, o->w, o->c);
    struct fr_augmenter *a = calloc(1, sizeof *a);
    if (!a)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "augmenter: out of memory");
    a->o = *o;
    a->o.policy = NULL; /* not kept: the caller's string */
    enum fr_status st = fr_aug_policy_parse(o->policy ? o->policy : "none", &a->pol);
    float mean[4], sd[4];
    a->norm = st == FR_STATUS_OK && !o->no_normalize && fr_aug_policy_normalize(a->pol, mean, sd);
    if (st == FR_STATUS_OK && !(a->ctx = fr_ctx_new()))
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "augmenter: out of memory");
    if (st == FR_STATUS_OK)
        st = fr_aug_stage_build(a->ctx, a->pol, o->batch, o->h, o->w, o->c,
                                (o->n_classes > 0 ? FR_AUG_STAGE_MIXREC : 0) | (be->no_fp64 ? FR_AUG_STAGE_TABLES : 0),
                                &a->st);
    if (st == FR_STATUS_OK && (int64_t)o->batch * a->st.oh * a->st.ow * o->c > INT32_MAX)
        st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                      "augmenter: %d images of %dx%dx%d (the policy's output for %dx%d inputs) exceed 2^31 bytes a batch",
                      o->batch, a->st.ow, a->st.oh, o->c, o->w, o->h);
    if (st == FR_STATUS_OK) {
        a->y = a->norm ? fr_aug_to_nchw(a->ctx, a->st.out, mean, sd) : a->st.out;
        if (o->n_classes > 0) {
            a->labels = stage_input(a->ctx, FR_I32, 1, (int64_t[]){o->batch}, "aug.labels");
            a->soft = fr_aug_mix_labels(a->ctx, a->labels, a->st.mixrec, o->n_classes);
        }
        a->g = fr_graph_new(a->ctx);
        if (!a->y || (o->n_classes > 0 && !a->soft))
            st = fr_ctx_status(a->ctx) != FR_STATUS_OK ? fr_ctx_status(a->ctx) : FR_STATUS_INVALID_ARGUMENT;
        else if (!a->g)
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "augmenter: out of memory");
    }
    if (st == FR_STATUS_OK)
        st = fr_graph_add(a->g, a->y);
    if (st == FR_STATUS_OK && a->soft)
        st = fr_graph_add(a->g, a->soft);
    if (st == FR_STATUS_OK && (st = fr_graph_plan(a->g, be)) == FR_STATUS_OUT_OF_MEMORY) {
        char why[256];
        snprintf(why, sizeof why, "%s", fr_last_error());
        st = fr_error(st, "augmenter: %d images of %dx%dx%d (the policy's output for %dx%d inputs) do not fit: %s",
                      o->batch, a->st.ow, a->st.oh, o->c, o->w, o->h, why);
    }
    if (st == FR_STATUS_OK) {
        size_t k = a->st.k > 0 ? (size_t)a->st.k : 1;
        a->prog = malloc(sizeof(float) * (size_t)o->batch * k * FR_AUG_REC);
        if (a->st.tab && !(a->tab = malloc(sizeof(int32_t) * a->st.tab_cap)))
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "augmenter: out of memory for coordinate tables");
        a->mix = malloc(sizeof(float) * (size_t)o->batch * FR_AUG_MIX_REC);
        a->lab = calloc((size_t)o->batch, sizeof(int32_t));
        if (!a->prog || !a->mix || !a->lab)
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "augmenter: out of memory");
    }
    if (st != FR_STATUS_OK) {
        fr_augmenter_free(a);
        return st;
    }
    *out = a;
    return FR_STATUS_OK;
}

void fr_augmenter_output(const struct fr_augmenter *a, int *out_h, int *out_w, enum fr_dtype *type,
                         enum fr_aug_layout *layout)
{
    if (out_h)
        *out_h = a->st.oh;
    if (out_w)
        *out_w = a->st.ow;
    if (type)
        *type = a->norm ? FR_F32 : FR_U8;
    if (layout)
        *layout = a->norm ? FR_AUG_NCHW : FR_AUG_NHWC;
}

struct fr_graph *fr_augmenter_graph(const struct fr_augmenter *a) { return a ? a->g : NULL; }

enum fr_status fr_augmenter_run(struct fr_augmenter *a, uint32_t step, uint32_t first_sample, int n,
                                const uint8_t *in, void *out, const int32_t *labels, float *soft)
{
    const struct fr_augmenter_opts *o = &a->o;
    if (n < 1 || n > o->batch || !in || !out)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augmenter: %d images (1..%d) and both image buffers needed", n,
                        o->batch);
    if (labels && (o->n_classes <= 0 || !soft))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "augmenter: labels need n_classes > 0 in the options and a soft-label buffer");
    for (int i = 0; labels && i < n; i++)
        if (labels[i] < 0 || labels[i] >= o->n_classes)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "augmenter: label %d of image %d is outside 0..%d", labels[i],
                            i, o->n_classes - 1);
    if ((uint64_t)first_sample + (uint64_t)n > (uint64_t)UINT32_MAX + 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augmenter: samples %u..%u run past 2^32", first_sample,
                        first_sample + (uint32_t)n - 1);
    enum fr_status st = fr_aug_policy_draw_batch(a->pol, o->seed, step, first_sample, n, o->batch, o->h, o->w, a->prog,
                                                 a->st.mixrec ? a->mix : NULL);
    if (st != FR_STATUS_OK)
        return st;
    const size_t in_img = (size_t)o->h * o->w * o->c;
    if ((st = fr_tensor_set(a->st.images, in, in_img * (size_t)n)) != FR_STATUS_OK)
        return st;
    if (a->st.prog && (st = fr_tensor_set(a->st.prog, a->prog, fr_nbytes(a->st.prog))) != FR_STATUS_OK)
        return st;
    if (a->st.tab && (st = fr_aug_stage_set_tables(&a->st, a->prog, o->batch, o->h, o->w, a->tab)) != FR_STATUS_OK)
        return st;
    if (a->st.mixrec && (st = fr_tensor_set(a->st.mixrec, a->mix, fr_nbytes(a->st.mixrec))) != FR_STATUS_OK)
        return st;
    if (a->labels) {
        if (labels)
            memcpy(a->lab, labels, sizeof(int32_t) * (size_t)n);
        else
            memset(a->lab, 0, sizeof(int32_t) * (size_t)n);
        if ((st = fr_tensor_set(a->labels, a->lab, fr_nbytes(a->labels))) != FR_STATUS_OK)
            return st;
    }
    if ((st = fr_graph_compute(a->g)) != FR_STATUS_OK)
        return st;
    if ((st = fr_tensor_get(a->y, out, fr_nbytes(a->y) / (size_t)o->batch * (size_t)n)) != FR_STATUS_OK)
        return st;
    if (labels)
        st = fr_tensor_get(a->soft, soft, sizeof(float) * (size_t)n * (size_t)o->n_classes);
    return st;
}

enum fr_status fr_aug_stage_set_tables(const struct fr_aug_stage *s, const float *prog, int batch, int h, int w,
                                       int32_t *buf)
{
    size_t used = 0;
    enum fr_status st = fr_aug_tables_fill(prog, batch, s->k, h, w, s->oh, s->ow, buf, s->tab_cap, &used);
    return st == FR_STATUS_OK ? fr_tensor_set(s->tab, buf, used * sizeof(int32_t)) : st;
}
