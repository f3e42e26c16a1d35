/* Per-sample programs on the host: record constructors, image planes, and the program runner behind
 * fr_aug_apply_host and the CPU kernel of FR_OP_AUG_APPLY (ping-pong between the output and a work image). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "core/threadpool.h"

const char *fr_aug_code_name(enum fr_aug_code c)
{
    static const char *names[FR_AUG_CODE_COUNT] = {
        "identity", "warp",     "brightness",   "color",    "contrast",  "sharpness", "posterize", "solarize",
        "solarize_add", "invert", "autocontrast", "equalize", "grayscale", "noise", "cutout", "contrast_tf"};
    return (unsigned)c < FR_AUG_CODE_COUNT ? names[c] : "?";
}

/* --- records --- */

void fr_aug_make_simple(float *rec, enum fr_aug_code code, float arg, float arg2)
{
    memset(rec, 0, FR_AUG_REC * sizeof(float));
    rec[FR_AUG_R_CODE] = (float)code;
    rec[FR_AUG_R_ARG] = arg;
    rec[FR_AUG_R_ARG + 1] = arg2;
}

void fr_aug_make_warp(float *rec, const double minv[9], int interp, int border, float fill)
{
    memset(rec, 0, FR_AUG_REC * sizeof(float));
    rec[FR_AUG_R_CODE] = FR_AUG_CODE_WARP;
    rec[FR_AUG_R_INTERP] = (float)interp;
    rec[FR_AUG_R_BORDER] = (float)border;
    rec[FR_AUG_R_FILL] = fill;
    memcpy(rec + FR_AUG_R_M, minv, 9 * sizeof(double)); /* bit for bit: see FR_AUG_R_M */
}

void fr_aug_make_warp_window(float *rec, const double minv[9], int interp, int border, float fill, const int win[4])
{
    fr_aug_make_warp(rec, minv, interp, border, fill);
    for (int i = 0; i < 4; i++)
        rec[FR_AUG_R_BOX + i] = (float)win[i];
}

void fr_aug_set_box(float *rec, int x0, int y0, int x1, int y1)
{
    rec[FR_AUG_R_BOX] = (float)x0, rec[FR_AUG_R_BOX + 1] = (float)y0;
    rec[FR_AUG_R_BOX + 2] = (float)x1, rec[FR_AUG_R_BOX + 3] = (float)y1;
}

void fr_aug_record_map(const float *rec, int sw, int sh, double m[9], int win[4])
{
    int missed = fr_aug_rec_window(rec, sw, sh, win);
    fr_aug_rec_matrix(rec, m);
    fr_aug_window_map(m, win, missed, (int)rec[FR_AUG_R_BORDER]);
}

/* --- planes --- */

struct fr_aug_plane fr_aug_plane_of(const struct fr_aug_images *b, int i)
{
    struct fr_aug_plane p;
    size_t es = b->type == FR_U8 ? 1 : sizeof(float);
    size_t img = (size_t)b->h * b->w * b->c;
    p.data = (char *)b->data + (size_t)i * img * es;
    p.type = b->type;
    p.h = b->h, p.w = b->w, p.c = b->c;
    if (b->layout == FR_AUG_NHWC)
        p.sc = 1, p.sx = b->c, p.sy = (ptrdiff_t)b->w * b->c;
    else
        p.sx = 1, p.sy = b->w, p.sc = (ptrdiff_t)b->w * b->h;
    return p;
}

void fr_aug_copy_plane(const struct fr_aug_plane *s, const struct fr_aug_plane *d)
{
    size_t es = s->type == FR_U8 ? 1 : sizeof(float);
    if (s->data == d->data)
        return;
    if (s->sx == d->sx && s->sy == d->sy && s->sc == d->sc) {
        memcpy(d->data, s->data, (size_t)s->h * s->w * s->c * es);
        return;
    }
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int k = 0; k < s->c; k++)
                memcpy((char *)d->data + (y * d->sy + x * d->sx + k * d->sc) * es,
                       (const char *)s->data + (y * s->sy + x * s->sx + k * s->sc) * es, es);
}

struct fr_aug_images fr_aug_images_of(const struct fr_tensor *t, enum fr_aug_layout layout)
{
    struct fr_aug_images b = {fr_tensor_data(t), t->type, layout, (int)t->ne[0], 0, 0, 0};
    b.h = (int)(layout == FR_AUG_NHWC ? t->ne[1] : t->ne[2]);
    b.w = (int)(layout == FR_AUG_NHWC ? t->ne[2] : t->ne[3]);
    b.c = (int)(layout == FR_AUG_NHWC ? t->ne[3] : t->ne[1]);
    return b;
}

/* --- the runner --- */
#define MAX_SCRATCH_THREADS 256
struct apply_job {
    const struct fr_aug_images *in, *out, *work;
    const float *prog;
    int k;
    void *scratch[MAX_SCRATCH_THREADS]; /* without a work batch: one image per pool thread, reused across samples */
    size_t scratch_size[MAX_SCRATCH_THREADS];
    atomic_int failed;
    pthread_mutex_t lock;
    enum fr_status status;
    char msg[256];
};

/* a WARP record: the source cut to the record's window (pixels outside it are outside the image for the border
 * rule), resampled through the window's map */
static enum fr_status warp_record(const struct fr_aug_plane *src, const struct fr_aug_plane *dst, const float *rec)
{
    double m[9];
    int win[4];
    fr_aug_record_map(rec, src->w, src->h, m, win);
    struct fr_aug_plane s = *src;
    size_t es = src->type == FR_U8 ? 1 : sizeof(float);
    s.data = (char *)src->data + (win[1] * src->sy + win[0] * src->sx) * (ptrdiff_t)es;
    s.w = win[2] - win[0], s.h = win[3] - win[1];
    return fr_aug_warp_plane(&s, dst, m, (enum fr_aug_interp)(int)rec[FR_AUG_R_INTERP],
                             (enum fr_aug_border)(int)rec[FR_AUG_R_BORDER], rec[FR_AUG_R_FILL]);
}

/* The other image of the sample's ping-pong pair (work batch, or the thread's scratch). */
static enum fr_status other_plane(struct apply_job *j, int i, int thread, const struct fr_aug_plane *dst,
                                  struct fr_aug_plane *o)
{
    if (j->work) {
        *o = fr_aug_plane_of(j->work, i);
        return FR_STATUS_OK;
    }
    size_t bytes = (size_t)dst->h * dst->w * dst->c * (dst->type == FR_U8 ? 1 : sizeof(float));
    if (thread >= MAX_SCRATCH_THREADS)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: more than %d threads", MAX_SCRATCH_THREADS);
    if (j->scratch_size[thread] < bytes) {
        free(j->scratch[thread]);
        j->scratch_size[thread] = 0;
        if (!(j->scratch[thread] = malloc(bytes)))
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "augment: out of memory");
        j->scratch_size[thread] = bytes;
    }
    *o = *dst;
    o->data = j->scratch[thread];
    return FR_STATUS_OK;
}

static enum fr_status run_sample(struct apply_job *j, int i, int thread)
{
    const struct fr_aug_plane src = fr_aug_plane_of(j->in, i), dst = fr_aug_plane_of(j->out, i);
    struct fr_aug_plane a = dst, b = dst;
    const struct fr_aug_plane *cur = NULL; /* the image so far: NULL = still the source */
    bool have_b = false;
    enum fr_status st = FR_STATUS_OK;
    for (int r = 0; r < j->k && st == FR_STATUS_OK; r++) {
        const float *rec = j->prog + ((size_t)i * j->k + r) * FR_AUG_REC;
        int code = (int)rec[FR_AUG_R_CODE];
        if (code == FR_AUG_CODE_IDENTITY)
            continue;
        bool into_other = cur && (code == FR_AUG_CODE_WARP || code == FR_AUG_CODE_SHARPNESS);
        if (into_other && !have_b) {
            if ((st = other_plane(j, i, thread, &dst, &b)) != FR_STATUS_OK)
                break;
            have_b = true;
        }
        const struct fr_aug_plane *from = cur ? cur : &src;
        const struct fr_aug_plane *to = !cur ? &a : into_other ? (cur == &a ? &b : &a) : cur;
        if (code == FR_AUG_CODE_WARP)
            st = warp_record(from, to, rec);
        else if (from->h != to->h || from->w != to->w)
            st = fr_error(FR_STATUS_SHAPE, "augment: sample %d: size changes need a warp as the first op", i);
        else
            st = fr_aug_color_op(from, to, rec);
        cur = to;
    }
    if (st != FR_STATUS_OK)
        return st;
    if (!cur) {
        if (src.h != dst.h || src.w != dst.w)
            return fr_error(FR_STATUS_SHAPE, "augment: sample %d: output size differs and no warp resizes it", i);
        fr_aug_copy_plane(&src, &dst);
    } else if (cur != &a)
        fr_aug_copy_plane(cur, &dst);
    return FR_STATUS_OK;
}

static void apply_task(void *ctx, int64_t task, int thread)
{
    struct apply_job *j = ctx;
    if (atomic_load(&j->failed))
        return;
    enum fr_status st = run_sample(j, (int)task, thread);
    if (st != FR_STATUS_OK && !atomic_exchange(&j->failed, 1)) {
        /* fr_last_error() is per thread: carry the worker's message to the caller */
        pthread_mutex_lock(&j->lock);
        j->status = st;
        snprintf(j->msg, sizeof j->msg, "%s", fr_last_error());
        pthread_mutex_unlock(&j->lock);
    }
}

enum fr_status fr_aug_apply_run(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *prog,
                                int k, const struct fr_aug_images *work, struct fr_threadpool *pool)
{
    if (!in || !out || !in->data || !out->data || (!prog && k > 0) || k < 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: apply: missing images or program");
    if (in->n != out->n || in->c != out->c || in->type != out->type || in->layout != out->layout)
        return fr_error(FR_STATUS_SHAPE, "augment: apply: input and output batches differ in n, channels, type or layout");
    if (in->c < 1 || in->c > 4 || (in->type != FR_U8 && in->type != FR_F32) || in->h < 1 || in->w < 1 || out->h < 1 ||
        out->w < 1)
        return fr_error(FR_STATUS_SHAPE, "augment: apply: images must be u8/f32 with 1-4 channels and a positive size");
    if (work && (work->n != out->n || work->h != out->h || work->w != out->w || work->c != out->c ||
                 work->type != out->type || work->layout != out->layout))
        return fr_error(FR_STATUS_SHAPE, "augment: apply: the work batch differs from the output batch");
    static const struct apply_job zero;
    struct apply_job j = zero;
    j.in = in, j.out = out, j.work = work, j.prog = prog, j.k = k, j.status = FR_STATUS_OK;
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.lock, NULL);
    if (pool)
        fr_threadpool_run(pool, in->n, apply_task, &j);
    else
        for (int i = 0; i < in->n; i++)
            apply_task(&j, i, 0);
    pthread_mutex_destroy(&j.lock);
    for (int t = 0; t < MAX_SCRATCH_THREADS; t++)
        free(j.scratch[t]);
    if (atomic_load(&j.failed))
        return fr_error(j.status, "%s", j.msg);
    return FR_STATUS_OK;
}

enum fr_status fr_aug_apply_host(const struct fr_aug_images *in, const struct fr_aug_images *out, const float *prog,
                                 int k, struct fr_threadpool *pool)
{
    return fr_aug_apply_run(in, out, prog, k, NULL, pool);
}
