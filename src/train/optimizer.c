/* The optimizer builder: parameter groups applied as flags, gradient clipping by global norm, moment
 * tensors (STATE) and one in-place update node per trainable parameter, appended to a training graph, and
 * optionally an exponential moving average of each updated parameter (STATE "<param>.ema"). */
#include <math.h>

#include "core/graph_internal.h"
#include "train/train_internal.h"

struct opt_entry {
    struct fr_tensor *param, *m, *v, *update, *ema;
    struct fr_param_settings set;
};

struct fr_optim {
    struct fr_ctx *ctx;
    struct fr_optim_params p;
    struct fr_param_group *groups;
    int n_groups;
    struct fr_tensor *lr, *hyper, *prep, *clip;
    struct opt_entry *e;
    int n;
    bool built;
};

void fr_optim_params_init(struct fr_optim_params *p, enum fr_optim_kind kind)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->beta1 = 0.9f;
    p->beta2 = 0.999f;
    p->eps = 1e-8f;
    p->weight_decay = kind == FR_OPTIM_ADAMW ? 0.01f : 0.0f;
}

struct fr_optim *fr_optim_new(struct fr_ctx *ctx, const struct fr_optim_params *p)
{
    if (!ctx || !p || (unsigned)p->kind > FR_OPTIM_ADAMW) {
        fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: bad arguments");
        return NULL;
    }
    struct fr_optim *o = calloc(1, sizeof *o);
    if (!o) {
        fr_error(FR_STATUS_OUT_OF_MEMORY, "optim: out of memory");
        return NULL;
    }
    o->ctx = ctx;
    o->p = *p;
    o->lr = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_F32, 1), FR_FLAG_INPUT);
    o->hyper = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_F32, 4), FR_FLAG_STATE);
    if (!o->lr || !o->hyper) {
        free(o);
        return NULL;
    }
    fr_tensor_set_name(o->lr, "optim.lr");
    fr_tensor_set_name(o->hyper, "optim.step");
    return o;
}

void fr_optim_free(struct fr_optim *o)
{
    if (!o)
        return;
    free(o->groups);
    free(o->e);
    free(o);
}

enum fr_status fr_optim_add_group(struct fr_optim *o, const struct fr_param_group *grp)
{
    if (!o || !grp || !memchr(grp->prefix, 0, sizeof grp->prefix))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: bad parameter group");
    if (o->built)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: groups must be added before fr_optim_build");
    struct fr_param_group *g = realloc(o->groups, (size_t)(o->n_groups + 1) * sizeof *g);
    if (!g)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "optim: out of memory");
    o->groups = g;
    o->groups[o->n_groups++] = *grp;
    return FR_STATUS_OK;
}

enum fr_status fr_optim_apply_groups(struct fr_optim *o, struct fr_tensor *const *params, int n)
{
    for (int i = 0; i < n; i++) {
        struct fr_tensor *p = params[i];
        if (!(p->flags & FR_FLAG_PARAM))
            continue;
        struct fr_param_settings s = fr_param_groups_resolve(o->groups, o->n_groups, o->p.weight_decay, p);
        if (s.frozen) /* never cleared here: freezing done elsewhere (fr_model_freeze) stays */
            p->flags |= FR_FLAG_FROZEN;
    }
    return FR_STATUS_OK;
}

static struct fr_tensor *state_like(struct fr_ctx *ctx, struct fr_tensor *p, const char *suffix)
{
    struct fr_tensor *t = fr_tensor_set_flags(fr_tensor_new(ctx, FR_F32, p->ndim, p->ne), FR_FLAG_STATE);
    if (t)
        fr_tensor_set_name(t, "%.48s.%s", p->name, suffix);
    return t;
}

/* Moves the step node `prep` and the updates (the nodes after it, appended by fr_optim_build) each to just
 * after the last node it depends on and the last other reader of the parameter it overwrites: a layer's update
 * then runs as soon as the backward is done with that layer, and its gradient dies there instead of living to
 * the end of the step (the backward reaches the first layers last, holding every later layer's gradients).
 * Not with clipping, whose norm needs every gradient first, nor with a step hook (after_backward). The same values: nothing reads a parameter after
 * its update. */
static enum fr_status schedule_early(struct fr_graph *g, struct fr_tensor *prep)
{
    int n = g->n_nodes, first = -1;
    for (int i = 0; i < n && first < 0; i++)
        if (g->nodes[i] == prep)
            first = i;
    if (first < 0)
        return FR_STATUS_OK;
    int cap = fr_ctx_count(g->ctx) + 1;
    int *pos = malloc((size_t)cap * sizeof *pos), *key = malloc((size_t)n * sizeof *key);
    int *last_read = calloc((size_t)cap, sizeof *last_read);
    struct fr_tensor **order = malloc((size_t)n * sizeof *order);
    if (!pos || !key || !last_read || !order) {
        free(pos), free(key), free(last_read), free(order);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "optim: out of memory");
    }
    for (int i = 0; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        pos[t->id] = i;
        for (int s = 0; s < FR_MAX_SRC && i < first; s++) /* readers before the optimizer's nodes */
            if (t->src[s])
                last_read[fr_storage_root(t->src[s])->id] = i;
        if (t->view_src && i < first)
            last_read[fr_storage_root(t)->id] = i;
    }
    /* key: the index of the node before `first` after which each moved node runs (sources first) */
    for (int i = first; i < n; i++) {
        struct fr_tensor *t = g->nodes[i];
        int k = 0;
        for (int s = 0; s < FR_MAX_SRC; s++) /* leaves compute nothing: they constrain nothing */
            if (t->src[s] && t->src[s]->op != FR_OP_NONE) {
                int at = pos[t->src[s]->id];
                k = FR_MAX(k, at >= first ? key[at] : at);
            }
        if (t->view_src)
            k = FR_MAX(k, last_read[fr_storage_root(t)->id]);
        key[i] = k;
    }
    /* stable merge: each kept node, then the moved nodes keyed to it in their order */
    int m = 0;
    for (int i = 0; i < first; i++) {
        order[m++] = g->nodes[i];
        for (int j = first; j < n; j++)
            if (key[j] == i)
                order[m++] = g->nodes[j];
    }
    memcpy(g->nodes, order, (size_t)n * sizeof *order);
    g->planned = false;
    free(pos), free(key), free(last_read), free(order);
    return FR_STATUS_OK;
}

enum fr_status fr_optim_build(struct fr_optim *o, struct fr_graph *g, struct fr_tensor *const *params, int n)
{
    if (o->built)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: already built");
    if (!(o->p.ema >= 0.0f && o->p.ema < 1.0f))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: weight average decay %g must be in [0, 1)", (double)o->p.ema);
    struct fr_ctx *ctx = o->ctx;
    o->e = calloc((size_t)(n > 0 ? n : 1), sizeof *o->e);
    if (!o->e)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "optim: out of memory");
    for (int i = 0; i < n; i++) {
        struct fr_tensor *p = params[i];
        if (!(p->flags & FR_FLAG_PARAM) || (p->flags & FR_FLAG_FROZEN) || !p->grad)
            continue;
        o->e[o->n++] = (struct opt_entry){.param = p,
                                          .set = fr_param_groups_resolve(o->groups, o->n_groups, o->p.weight_decay, p)};
    }
    if (o->n == 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: no trainable parameter has a gradient in the graph");
    enum fr_status st;
    if (o->p.clip_norm > 0.0f) {
        struct fr_tensor *acc = NULL;
        for (int i = 0; i < o->n;) {
            struct fr_tensor *gr[FR_MAX_SRC];
            int k = 0, cap = acc ? FR_MAX_SRC - 1 : FR_MAX_SRC;
            while (k < cap && i < o->n)
                gr[k++] = o->e[i++].param->grad;
            acc = fr_opt_sumsq(ctx, acc, gr, k);
            if (!acc)
                return fr_ctx_status(ctx);
        }
        o->clip = fr_opt_clip(ctx, acc, o->p.clip_norm);
        if (!o->clip)
            return fr_ctx_status(ctx);
        fr_tensor_set_name(o->clip, "optim.clip");
        if ((st = fr_graph_add(g, o->clip)) != FR_STATUS_OK)
            return st;
    }
    o->prep = fr_opt_prep(ctx, o->hyper, o->lr, o->clip);
    if (!o->prep)
        return fr_ctx_status(ctx);
    for (int i = 0; i < o->n; i++) {
        struct opt_entry *e = &o->e[i];
        struct fr_tensor *p = e->param;
        if (o->p.kind == FR_OPTIM_SGD) {
            if (o->p.momentum != 0.0f && !(e->m = state_like(ctx, p, "momentum_buffer")))
                return fr_ctx_status(ctx);
            e->update = fr_sgd_step(ctx, p, p->grad, e->m, o->prep, e->set.lr_mult, e->set.weight_decay, o->p.momentum,
                                    o->p.dampening, o->p.nesterov);
        } else {
            if (!(e->m = state_like(ctx, p, "exp_avg")) || !(e->v = state_like(ctx, p, "exp_avg_sq")))
                return fr_ctx_status(ctx);
            e->update = fr_adam_step(ctx, p, p->grad, e->m, e->v, o->prep, e->set.lr_mult, e->set.weight_decay,
                                     o->p.beta1, o->p.beta2, o->p.eps, o->p.kind == FR_OPTIM_ADAMW);
        }
        if (!e->update)
            return fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
        if ((st = fr_graph_add(g, e->update)) != FR_STATUS_OK)
            return st;
        if (o->p.ema > 0.0f) { /* after the update: its node is the source */
            struct fr_tensor *avg = state_like(ctx, p, "ema");
            struct fr_tensor *u = avg ? fr_ema_step(ctx, avg, e->update, o->prep, o->p.ema) : NULL;
            if (!u)
                return fr_ctx_status(ctx) ? fr_ctx_status(ctx) : FR_STATUS_INVALID_ARGUMENT;
            e->ema = avg;
            if ((st = fr_graph_add(g, u)) != FR_STATUS_OK)
                return st;
        }
    }
    if (!o->clip && !o->p.after_backward && (st = schedule_early(g, o->prep)) != FR_STATUS_OK)
        return st;
    o->built = true;
    return FR_STATUS_OK;
}

static enum fr_status zero(struct fr_tensor *t)
{
    return t ? fr_tensor_fill_f32(t, 0.0f) : FR_STATUS_OK;
}

static enum fr_status copy(struct fr_tensor *dst, struct fr_tensor *src)
{
    size_t bytes = fr_nbytes(src);
    float *buf = malloc(bytes ? bytes : 1);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "optim: out of memory");
    enum fr_status st = fr_tensor_get(src, buf, bytes);
    if (st == FR_STATUS_OK)
        st = fr_tensor_set(dst, buf, bytes);
    free(buf);
    return st;
}

enum fr_status fr_optim_reset(struct fr_optim *o)
{
    enum fr_status st = zero(o->hyper);
    for (int i = 0; i < o->n && st == FR_STATUS_OK; i++) {
        st = zero(o->e[i].m);
        if (st == FR_STATUS_OK)
            st = zero(o->e[i].v);
        if (st == FR_STATUS_OK && o->e[i].ema) /* the average starts at the weights */
            st = copy(o->e[i].ema, o->e[i].param);
    }
    return st;
}

enum fr_status fr_optim_set_lr(struct fr_optim *o, float lr)
{
    if (!(lr >= 0.0f) || !isfinite(lr))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "optim: learning rate %g", (double)lr);
    return fr_tensor_set(o->lr, &lr, sizeof lr);
}

struct fr_tensor *fr_optim_lr_tensor(const struct fr_optim *o) { return o->lr; }

float fr_optim_grad_norm(const struct fr_optim *o)
{
    float v[2];
    if (!o->clip || fr_tensor_get(o->clip, v, sizeof v) != FR_STATUS_OK)
        return -1.0f;
    return v[1];
}

int fr_optim_n_updates(const struct fr_optim *o) { return o->n; }

bool fr_optim_param_settings(const struct fr_optim *o, const struct fr_tensor *param, float *lr_mult, float *wd,
                             bool *frozen)
{
    struct fr_param_settings s = fr_param_groups_resolve(o->groups, o->n_groups, o->p.weight_decay, param);
    if (lr_mult)
        *lr_mult = s.lr_mult;
    if (wd)
        *wd = s.weight_decay;
    if (frozen)
        *frozen = s.frozen;
    return true;
}

struct fr_tensor *fr_optim_moment(const struct fr_optim *o, const struct fr_tensor *param, int which)
{
    for (int i = 0; i < o->n; i++)
        if (o->e[i].param == param)
            return which == 0 ? o->e[i].m : which == 1 ? o->e[i].v : which == 2 ? o->e[i].ema : NULL;
    return NULL;
}
