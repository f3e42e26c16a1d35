/* The training loop of every recipe: shuffled fixed-size batches from a training set, host augmentation and
 * CutMix/MixUp drawn from (seed, step), hard/soft/distillation losses, per-epoch validation, metrics.jsonl,
 * checkpoints each epoch, bit-identical resume and a clean stop on request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "frugal/augment.h"
#include "frugal/recipes.h"
#include "rng.h"

/* u8 NHWC -> f32 NCHW in [0, 1] */
static void u8_nhwc_to_f32_nchw(const uint8_t *src, int64_t n, int c, int h, int w, float *out)
{
    const float sc = 1.0f / 255.0f;
    int64_t hw = (int64_t)h * w;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < hw; j++)
            for (int ch = 0; ch < c; ch++)
                out[i * hw * c + ch * hw + j] = (float)src[(i * hw + j) * c + ch] * sc;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void fr_fit_opts_init(struct fr_fit_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 64;
    fr_optim_params_init(&o->optim, FR_OPTIM_ADAMW);
    o->optim.weight_decay = 5e-4f;
    o->sched.kind = FR_SCHED_COSINE;
    o->sched.base_lr = 2e-3f;
    o->sched.gamma = 0.1f;
    o->alpha = 0.9f;
    o->temperature = 4.0f;
    o->seed = 1;
}

/* --- training sets --- */

static enum fr_status ts_reserve(struct fr_trainset *ts, int64_t need)
{
    if (need <= ts->cap)
        return FR_STATUS_OK;
    int64_t cap = ts->cap ? ts->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *src = realloc(ts->src, (size_t)cap);
    if (src)
        ts->src = src;
    int64_t *idx = src ? realloc(ts->idx, (size_t)cap * sizeof *idx) : NULL;
    if (idx)
        ts->idx = idx;
    int32_t *lab = idx ? realloc(ts->label, (size_t)cap * sizeof *lab) : NULL;
    if (lab)
        ts->label = lab;
    bool ok = lab != NULL;
    if (ok && ts->soft) {
        float *s = realloc(ts->soft, (size_t)(cap * ts->n_classes) * sizeof(float));
        ok = s != NULL;
        if (s)
            ts->soft = s;
    }
    if (ok && ts->teacher) {
        float *s = realloc(ts->teacher, (size_t)(cap * ts->n_classes) * sizeof(float));
        ok = s != NULL;
        if (s)
            ts->teacher = s;
    }
    if (!ok)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainset: out of memory");
    ts->cap = cap;
    return FR_STATUS_OK;
}

enum fr_status fr_trainset_add(struct fr_trainset *ts, int which, const struct fr_dataset *ds, const int64_t *idx,
                               int64_t n, const int32_t *labels, const float *soft)
{
    if (which < 0 || which > 1 || !ds)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: bad dataset slot");
    if (ts->ds[which] && ts->ds[which] != ds)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: slot %d holds another dataset", which);
    if (ts->n_classes <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: set n_classes first");
    ts->ds[which] = ds;
    int k = ts->n_classes;
    if (soft && !ts->soft) { /* switch the whole set to soft targets: one-hot rows for what is there */
        ts->soft = calloc((size_t)((ts->cap > 0 ? ts->cap : 1) * k), sizeof(float));
        if (!ts->soft)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "trainset: out of memory");
        for (int64_t i = 0; i < ts->n; i++)
            if (ts->label[i] >= 0)
                ts->soft[i * k + ts->label[i]] = 1.0f;
    }
    enum fr_status st = ts_reserve(ts, ts->n + n);
    if (st != FR_STATUS_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = idx ? idx[i] : i, e = ts->n + i;
        if (j < 0 || j >= ds->n)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "trainset: index %lld out of range", (long long)j);
        int32_t y = labels ? labels[i] : (ds->labels ? ds->labels[j] : -1);
        if (y >= k)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: image %lld has label %d but the model has %d classes",
                            ds->source, (long long)j, y, k);
        ts->src[e] = (uint8_t)which;
        ts->idx[e] = j;
        ts->label[e] = y;
        if (ts->soft) {
            float *row = ts->soft + e * k;
            if (soft)
                memcpy(row, soft + i * k, (size_t)k * sizeof(float));
            else {
                memset(row, 0, (size_t)k * sizeof(float));
                if (y >= 0)
                    row[y] = 1.0f;
            }
        }
    }
    ts->n += n;
    return FR_STATUS_OK;
}

void fr_trainset_free(struct fr_trainset *ts)
{
    free(ts->src);
    free(ts->idx);
    free(ts->label);
    free(ts->soft);
    free(ts->teacher);
    memset(ts, 0, sizeof *ts);
}

/* --- the loop --- */

struct fit_bufs {
    uint8_t *u8a, *u8b;
    float *x, *soft, *soft2, *teacher, *prog, *mixrec;
    int32_t *labels;
    int64_t *perm, *entry, *ids;
    int *pos;
};

static void bufs_free(struct fit_bufs *b)
{
    free(b->u8a);
    free(b->u8b);
    free(b->x);
    free(b->soft);
    free(b->soft2);
    free(b->teacher);
    free(b->prog);
    free(b->mixrec);
    free(b->labels);
    free(b->perm);
    free(b->entry);
    free(b->ids);
    free(b->pos);
}

/* Reads the images of trainset entries e[0..B) into u8 (a call per source dataset, through `stage`); an entry whose
 * image was skipped as unreadable becomes the entry of the image that replaced it. */
static enum fr_status read_entries(const struct fr_trainset *ts, int64_t *e, int B, int64_t sz, uint8_t *u8,
                                   int64_t *ids, int *pos, uint8_t *stage)
{
    for (int src = 0; src < 2; src++) {
        int m = 0;
        for (int i = 0; i < B; i++)
            if (ts->src[e[i]] == src)
                pos[m] = i, ids[m++] = ts->idx[e[i]];
        if (m == 0)
            continue;
        uint8_t *dst = m == B ? u8 : stage;
        enum fr_status st = fr_dataset_read(ts->ds[src], ids, m, NULL, dst);
        if (st != FR_STATUS_OK)
            return st;
        for (int q = 0; q < m; q++) {
            if (ids[q] != ts->idx[e[pos[q]]]) {
                if (ids[q] < 0)
                    return fr_error(FR_STATUS_FORMAT, "%s: no readable image in a training batch", ts->ds[src]->source);
                for (int r = 0; r < m; r++)
                    if (ts->idx[e[pos[r]]] == ids[q] && ids[r] == ids[q]) {
                        e[pos[q]] = e[pos[r]];
                        break;
                    }
            }
            if (dst != u8)
                memcpy(u8 + pos[q] * sz, dst + (int64_t)q * sz, (size_t)sz);
        }
    }
    return FR_STATUS_OK;
}

static void metrics_line(const char *out_dir, const char *tag, const struct fr_epoch_stats *e, int64_t step)
{
    if (!out_dir)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "{");
    if (tag)
        fprintf(f, "\"stage\": \"%s\", ", tag);
    fprintf(f, "\"epoch\": %lld, \"epochs\": %lld, \"global_step\": %lld, \"train_loss\": %.6f, ", (long long)e->epoch,
            (long long)e->epochs, (long long)step, e->train_loss);
    if (isnan(e->val_accuracy))
        fprintf(f, "\"val_accuracy\": null, \"val_loss\": null, ");
    else
        fprintf(f, "\"val_accuracy\": %.6f, \"val_loss\": %.6f, ", e->val_accuracy, e->val_loss);
    fprintf(f, "\"lr\": %.8g, \"seconds\": %.3f, \"train_images_per_second\": %.1f}\n", (double)e->lr, e->seconds,
            e->images_per_second);
    fclose(f);
}

/* reload every parameter and state tensor (optimizer included) from the checkpoint the net came from */
static enum fr_status reload_state(struct fr_net *net)
{
    int cnt = fr_ctx_count(net->ctx), k = 0;
    struct fr_named_tensor *ts = calloc((size_t)cnt + 1, sizeof *ts);
    if (!ts)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    for (int i = 0; i < cnt; i++) {
        struct fr_tensor *t = fr_ctx_tensor(net->ctx, i);
        if ((t->flags & (FR_FLAG_PARAM | FR_FLAG_STATE)) && t->buffer && t->name[0] && !t->view_src)
            ts[k++] = (struct fr_named_tensor){t->name, t};
    }
    struct fr_st_load_opts lo = {.allow_missing = false, .ignore_unexpected = true};
    enum fr_status st = fr_checkpoint_load(net->ck_path, ts, k, &lo, NULL);
    free(ts);
    return st;
}

static enum fr_status save_ckpt(struct fr_net *net, const struct fr_fit_opts *o, int64_t epoch, int64_t sie,
                                int64_t gstep)
{
    if (!o->out_dir)
        return FR_STATUS_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", o->out_dir, o->ckpt_name ? o->ckpt_name : "model");
    return fr_net_save(net, path, epoch, sie, gstep, o->meta, o->n_meta);
}

enum fr_status fr_fit(struct fr_net *net, struct fr_trainset *ts, const struct fr_fit_opts *o,
                      struct fr_fit_result *r)
{
    memset(r, 0, sizeof *r);
    r->val_accuracy = NAN;
    const int k = net->n_classes;
    if (ts->n <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: the training set is empty");
    if (ts->n_classes != k)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: training set has %d classes, the model %d", ts->n_classes, k);
    for (int s = 0; s < 2; s++)
        if (ts->ds[s] && (ts->ds[s]->c != net->c || ts->ds[s]->h != net->h || ts->ds[s]->w != net->w))
            return fr_error(FR_STATUS_SHAPE, "%s: images are %dx%dx%d, the model expects %dx%dx%d", ts->ds[s]->source,
                            ts->ds[s]->c, ts->ds[s]->h, ts->ds[s]->w, net->c, net->h, net->w);
    if (o->epochs <= 0 || o->batch <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: epochs and batch must be positive");
    bool mixing = o->cutmix > 0 || o->mixup > 0;
    if (o->distill && mixing)
        return fr_error(FR_STATUS_UNSUPPORTED, "fit: CutMix/MixUp with distillation is not supported");
    if (o->distill && !ts->teacher && !o->teacher)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: distillation needs teacher logits or a teacher");
    if (o->distill && o->teacher && o->teacher->n_classes != k)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: the teacher has %d classes, the student %d",
                        o->teacher->n_classes, k);
    enum fr_loss_kind lk = o->distill ? FR_LOSS_DISTILL : (ts->soft || mixing) ? FR_LOSS_SOFT_CE : FR_LOSS_CE;
    if (lk == FR_LOSS_CE)
        for (int64_t i = 0; i < ts->n; i++)
            if (ts->label[i] < 0)
                return fr_error(FR_STATUS_INVALID_ARGUMENT, "fit: training image %lld has no label",
                                (long long)ts->idx[i]);
    if (lk == FR_LOSS_SOFT_CE && !ts->soft) { /* mixing needs per-sample target rows */
        float *s = calloc((size_t)(ts->cap * k), sizeof(float));
        if (!s)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
        for (int64_t i = 0; i < ts->n; i++)
            if (ts->label[i] >= 0)
                s[i * k + ts->label[i]] = 1.0f;
        ts->soft = s;
    }
    int B = o->batch;
    if (B > ts->n)
        B = (int)ts->n; /* a tiny set still trains: one batch per epoch */
    int64_t spe = ts->n / B;
    int c = net->c, h = net->h, w = net->w;
    int64_t sz = (int64_t)c * h * w;

    struct fr_aug_policy *pol = NULL;
    enum fr_status st = FR_STATUS_OK;
    int kops = 0;
    if (o->augment && o->augment[0]) {
        if ((st = fr_aug_policy_parse(o->augment, &pol)) != FR_STATUS_OK)
            return st;
        int oh, ow;
        fr_aug_policy_out_size(pol, h, w, &oh, &ow);
        if (oh != h || ow != w) {
            fr_aug_policy_free(pol);
            return fr_error(FR_STATUS_UNSUPPORTED, "fit: augmentation '%s' changes the image size to %dx%d (model %dx%d)",
                            o->augment, oh, ow, h, w);
        }
        kops = fr_aug_policy_max_ops(pol);
    }

    if (!net->trainer) {
        struct fr_trainer_opts to;
        fr_trainer_opts_init(&to);
        to.batch = B;
        to.eval_batch = net->eval_batch;
        to.loss = lk;
        to.label_smoothing = o->label_smoothing;
        to.alpha = o->alpha;
        to.temperature = o->temperature;
        to.optim = o->optim;
        to.groups = o->groups;
        to.n_groups = o->n_groups;
        to.seed = o->seed;
        if ((st = fr_trainer_new(net->model, net->be, &to, &net->trainer)) != FR_STATUS_OK) {
            fr_aug_policy_free(pol);
            return st;
        }
    }
    struct fr_graph *g = fr_trainer_graph(net->trainer, false);
    int64_t start_epoch = 0, start_step = 0, gstep = 0;
    if (o->resume && net->ck_path) {
        if ((st = reload_state(net)) != FR_STATUS_OK) {
            fr_aug_policy_free(pol);
            return st;
        }
        start_epoch = net->ck_epoch;
        start_step = net->ck_step_in_epoch;
        gstep = net->ck_global_step;
        fr_graph_set_step(g, net->ck_graph_step);
        if (start_step >= spe) {
            start_epoch++;
            start_step = 0;
        }
    }
    struct fr_schedule sched = o->sched;
    sched.total_steps = (int64_t)o->epochs * spe;

    struct fit_bufs b = {0};
    b.u8a = malloc((size_t)(B * sz));
    b.u8b = malloc((size_t)(B * sz));
    b.x = malloc((size_t)(B * sz) * sizeof(float));
    b.soft = malloc((size_t)B * k * sizeof(float));
    b.soft2 = malloc((size_t)B * k * sizeof(float));
    b.teacher = malloc((size_t)B * k * sizeof(float));
    b.prog = malloc((size_t)B * (kops > 0 ? kops : 1) * FR_AUG_REC * sizeof(float));
    b.mixrec = malloc((size_t)B * FR_AUG_MIX_REC * sizeof(float));
    b.labels = malloc((size_t)B * sizeof(int32_t));
    b.perm = malloc((size_t)ts->n * sizeof(int64_t));
    b.entry = malloc((size_t)B * sizeof(int64_t));
    b.ids = malloc((size_t)B * sizeof(int64_t));
    b.pos = malloc((size_t)B * sizeof(int));
    if (!b.u8a || !b.u8b || !b.x || !b.soft || !b.soft2 || !b.teacher || !b.prog || !b.mixrec || !b.labels ||
        !b.perm || !b.entry || !b.ids || !b.pos) {
        bufs_free(&b);
        fr_aug_policy_free(pol);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fit: out of memory");
    }
    double t_start = now_s();
    int64_t images_done = 0;
    for (int64_t e = start_epoch; e < o->epochs && st == FR_STATUS_OK; e++) {
        double te = now_s();
        double loss_sum = 0;
        int64_t loss_n = 0;
        for (int64_t i = 0; i < ts->n; i++)
            b.perm[i] = i;
        fr_shuffle_indices(b.perm, ts->n, o->seed, FR_RNG_SHUFFLE, (uint32_t)e);
        float lr = 0;
        for (int64_t s = e == start_epoch ? start_step : 0; s < spe && st == FR_STATUS_OK; s++) {
            memcpy(b.entry, b.perm + s * B, (size_t)B * sizeof(int64_t));
            if ((st = read_entries(ts, b.entry, B, sz, b.u8a, b.ids, b.pos, b.u8b)) != FR_STATUS_OK)
                break;
            for (int i = 0; i < B; i++) {
                int64_t j = b.entry[i];
                b.labels[i] = ts->label[j];
                if (ts->soft)
                    memcpy(b.soft + (int64_t)i * k, ts->soft + j * k, (size_t)k * sizeof(float));
                if (ts->teacher)
                    memcpy(b.teacher + (int64_t)i * k, ts->teacher + j * k, (size_t)k * sizeof(float));
            }
            uint8_t *cur = b.u8a, *other = b.u8b;
            if (pol) {
                for (int i = 0; i < B && st == FR_STATUS_OK; i++)
                    st = fr_aug_policy_draw(pol, o->seed, (uint32_t)gstep, (uint32_t)i, h, w,
                                            b.prog + (int64_t)i * kops * FR_AUG_REC);
                struct fr_aug_images in = {cur, FR_U8, FR_AUG_NHWC, B, h, w, c};
                struct fr_aug_images out = {other, FR_U8, FR_AUG_NHWC, B, h, w, c};
                if (st == FR_STATUS_OK)
                    st = fr_aug_apply_host(&in, &out, b.prog, kops, NULL);
                cur = b.u8b;
                other = b.u8a;
            }
            if (mixing && st == FR_STATUS_OK) {
                struct fr_aug_mix_cfg cfg = {0};
                bool cut = o->cutmix > 0 && (o->mixup <= 0 || (gstep & 1) == 0);
                cfg.mode = cut ? FR_AUG_MIX_CUTMIX : FR_AUG_MIX_MIXUP;
                cfg.alpha = cut ? o->cutmix : o->mixup;
                cfg.p = 1.0;
                st = fr_aug_mix_draw(&cfg, o->seed, (uint32_t)gstep, B, h, w, b.mixrec);
                struct fr_aug_images in = {cur, FR_U8, FR_AUG_NHWC, B, h, w, c};
                struct fr_aug_images out = {other, FR_U8, FR_AUG_NHWC, B, h, w, c};
                if (st == FR_STATUS_OK)
                    st = fr_aug_mix_host(&in, &out, b.mixrec);
                cur = other;
                for (int i = 0; i < B; i++) {
                    const float *rec = b.mixrec + (int64_t)i * FR_AUG_MIX_REC;
                    int pj = (int)rec[1];
                    float lam = (int)rec[0] == FR_AUG_MIX_NONE ? 1.0f : rec[2];
                    if (pj < 0 || pj >= B)
                        pj = i;
                    for (int q = 0; q < k; q++)
                        b.soft2[(int64_t)i * k + q] =
                            lam * b.soft[(int64_t)i * k + q] + (1.0f - lam) * b.soft[(int64_t)pj * k + q];
                }
                memcpy(b.soft, b.soft2, (size_t)B * k * sizeof(float));
            }
            if (st != FR_STATUS_OK)
                break;
            u8_nhwc_to_f32_nchw(cur, B, c, h, w, b.x);
            if (o->distill && !ts->teacher && (st = fr_net_predict_u8(o->teacher, cur, B, b.teacher)) != FR_STATUS_OK)
                break;
            /* unlabeled transfer images keep label -1: the distillation loss gives them teacher targets only */
            lr = fr_schedule_lr(&sched, gstep);
            float loss = 0;
            const void *lab = lk == FR_LOSS_SOFT_CE ? (const void *)b.soft : (const void *)b.labels;
            st = fr_trainer_step(net->trainer, b.x, lab, o->distill ? b.teacher : NULL, NULL, lr, &loss);
            if (st != FR_STATUS_OK)
                break;
            gstep++;
            images_done += B;
            loss_sum += loss;
            loss_n++;
            r->steps++;
            if (o->on_progress) {
                struct fr_fit_progress p = {0};
                p.epoch = e;
                p.epochs = o->epochs;
                p.step = s + 1;
                p.steps_per_epoch = spe;
                p.global_step = gstep;
                p.loss = loss;
                p.lr = lr;
                p.elapsed = now_s() - t_start;
                p.images_per_second = p.elapsed > 0 ? (double)images_done / p.elapsed : 0;
                int64_t left = (o->epochs - e) * spe - (s + 1);
                p.eta = images_done > 0 ? p.elapsed / (double)r->steps * (double)left : 0;
                o->on_progress(o->user, &p);
            }
            if (o->stop && *o->stop) {
                st = save_ckpt(net, o, e, s + 1, gstep);
                if (st == FR_STATUS_OK)
                    st = fr_error(FR_STATUS_INTERRUPTED, "fit: interrupted at epoch %lld step %lld; checkpoint saved",
                                  (long long)e + 1, (long long)s + 1);
                r->interrupted = true;
            }
        }
        if (st != FR_STATUS_OK)
            break;
        struct fr_epoch_stats es = {0};
        es.epoch = e + 1;
        es.epochs = o->epochs;
        es.train_loss = loss_n ? loss_sum / (double)loss_n : NAN;
        es.val_accuracy = es.val_loss = NAN;
        es.lr = lr;
        if (o->val_ds && o->n_val > 0) {
            struct fr_eval ev;
            if ((st = fr_net_evaluate(net, o->val_ds, o->val_idx, o->n_val, &ev)) != FR_STATUS_OK)
                break;
            es.val_accuracy = ev.accuracy;
            es.val_loss = ev.loss;
            fr_eval_free(&ev);
        }
        es.seconds = now_s() - te;
        es.images_per_second = es.seconds > 0 ? (double)(loss_n * B) / es.seconds : 0;
        r->epochs_done = e + 1;
        r->train_loss = es.train_loss;
        r->val_accuracy = es.val_accuracy;
        metrics_line(o->out_dir, o->metrics_tag, &es, gstep);
        if ((st = save_ckpt(net, o, e + 1, 0, gstep)) != FR_STATUS_OK)
            break;
        if (o->on_epoch)
            o->on_epoch(o->user, &es);
    }
    r->seconds = now_s() - t_start;
    r->images_per_second = r->seconds > 0 ? (double)images_done / r->seconds : 0;
    r->fallback_ops = fr_net_fallback_ops(net);
    bufs_free(&b);
    fr_aug_policy_free(pol);
    return st;
}
