/* Data-parallel training steps: between the backward pass and the optimizer update every rank's gradients, its
 * batch-norm running statistics (weighted by its share of the global batch), its loss, a stop vote and its step time
 * are summed by fr_dist_sum_parts (the gradients in their own host memory on the CPU path), in place, so every rank
 * applies the same update (and, with --balance speed, makes the same decision to move rows between ranks). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist_internal.h"
#include "frugal/model.h"
#include "frugal/recipes.h"

struct fr_dp {
    struct fr_dist *d;
    double share;
    struct fr_tensor **grads, **stats, *loss;
    int n_grads, n_stats;
    float *flat;
    int64_t n;
    float **part;   /* [n_grads + 1] what the sum adds: the gradients' host memory (CPU) or copies in flat, then */
    int64_t *count; /* flat's tail (statistics, loss, vote, times, rows); neighbours in memory merged */
    bool vote, stop;
    float global_loss;
    double sync_s, last;
    /* FRUGAL_DEBUG=dist: where this rank's steps went (summed over the steps after the first) */
    bool debug, debug_all; /* FRUGAL_DEBUG=dist here; on every rank (then each sum starts with a barrier) */
    int64_t steps;
    double compute_total, sleep_total, wait_total, sum_total;
    /* --balance speed during training: every rank's step times and rows (one slot each in the sum), a window of them */
    bool refine;
    int nr, wn, skip, changes;
    int64_t my_rows;          /* this rank's rows of the global batch */
    double step_s;            /* this rank's last step, the sum and the wait for the others excluded */
    double *t, *prev_t;       /* [nr] the window's median step times; those before the last change of rows */
    double *a, *b;            /* [nr] each rank's step time model a + b·rows */
    int64_t *c, *pending;     /* [nr] new rows; those the window before proposed (0: none) */
    int64_t *rows, *prev_n;   /* [nr] each rank's rows now; before the last change */
    float *win;               /* [REFINE_WINDOW][nr] step times */
};

/* --balance speed during training: every REFINE_WINDOW steps (after REFINE_SKIP steps on new rows) the window's
 * median step times propose rows; they move when two windows in a row propose the same rows and predict a step at
 * least REFINE_GAIN shorter (a rank slowed for a while by other work moves nothing); at most REFINE_MAX times a run */
enum { REFINE_WINDOW = 16, REFINE_SKIP = 2, REFINE_MAX = 4 };
#define REFINE_GAIN 0.03

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void fr_dp_free(struct fr_dp *dp)
{
    if (!dp)
        return;
    if (dp->debug && dp->steps > 0) {
        double k = 1e3 / (double)dp->steps;
        fr_log(FR_LOG_WARN, "dist: rank %d: %lld steps: %.2f ms computing + %.2f ms slowed down (FRUGAL_SLOWDOWN) + "
               "%.2f ms waiting for the other ranks + %.2f ms summing %lld values, per step", fr_dist_rank(dp->d),
               (long long)dp->steps, k * dp->compute_total, k * dp->sleep_total, k * dp->wait_total, k * dp->sum_total,
               (long long)dp->n);
    }
    free(dp->grads);
    free(dp->stats);
    free(dp->flat);
    free(dp->part);
    free(dp->count);
    free(dp->t);
    free(dp->prev_t);
    free(dp->rows);
    free(dp->prev_n);
    free(dp->win);
    free(dp->a);
    free(dp->b);
    free(dp->c);
    free(dp->pending);
    free(dp);
}

void fr_dp_vote_stop(struct fr_dp *dp, bool stop) { dp->vote = stop; }
bool fr_dp_stop(const struct fr_dp *dp) { return dp->stop; }
float fr_dp_loss(const struct fr_dp *dp) { return dp->global_loss; }
double fr_dp_sync_seconds(const struct fr_dp *dp) { return dp->sync_s; }

/* a gradient's host memory when the sum can work in it (the CPU path), else NULL (it goes through flat) */
static float *grad_host(struct fr_tensor *g) { return fr_is_contiguous(g) ? fr_tensor_data(g) : NULL; }

/* one more array for fr_dist_sum_parts, joined to the last when it follows it in memory */
static void add_part(struct fr_dp *dp, int *np, float *at, int64_t n)
{
    if (*np > 0 && dp->part[*np - 1] + dp->count[*np - 1] == at)
        dp->count[*np - 1] += n;
    else
        dp->part[*np] = at, dp->count[(*np)++] = n;
}

/* [grads | share·stats | loss | vote] -> fr_dist_sum_parts -> back into the tensors */
static enum fr_status sync_step(void *user)
{
    struct fr_dp *dp = user;
    double t0 = now_s(), computed = dp->last > 0 ? t0 - dp->last : 0;
    if (dp->last > 0) { /* FRUGAL_SLOWDOWN: the step since the last sum, made longer */
        fr_dist_slow_down(dp->d, computed);
        t0 = now_s();
    }
    dp->step_s = dp->last > 0 ? t0 - dp->last : 0;
    if (dp->debug && dp->last > 0) {
        dp->steps++;
        dp->compute_total += computed, dp->sleep_total += t0 - dp->last - computed;
        if (dp->debug_all) { /* the wait apart from the sum: every rank's arrival first (debugging only) */
            fr_dist_agree(dp->d, FR_STATUS_OK);
            double t1 = now_s();
            dp->wait_total += t1 - t0;
            t0 = t1;
        }
    }
    float *p = dp->flat;
    int np = 0;
    enum fr_status st = FR_STATUS_OK;
    if (fr_dist_size(dp->d) == 1) { /* one process (a slowed-down one): nothing to sum */
        st = fr_tensor_get(dp->loss, &dp->global_loss, sizeof(float));
        dp->stop = dp->vote;
        dp->sync_s = 0;
        dp->last = now_s();
        return st;
    }
    for (int i = 0; i < dp->n_grads && st == FR_STATUS_OK; i++) { /* host memory: summed where it is; else a copy */
        float *host = grad_host(dp->grads[i]);
        if (!host)
            st = fr_tensor_get(dp->grads[i], p, fr_nbytes(dp->grads[i]));
        add_part(dp, &np, host ? host : p, fr_nelements(dp->grads[i]));
        p += fr_nelements(dp->grads[i]);
    }
    float *tail = p;
    for (int i = 0; i < dp->n_stats && st == FR_STATUS_OK; i++) {
        int64_t m = fr_nelements(dp->stats[i]);
        st = fr_tensor_get(dp->stats[i], p, fr_nbytes(dp->stats[i]));
        for (int64_t j = 0; j < m; j++)
            p[j] = (float)(dp->share * (double)p[j]);
        p += m;
    }
    if (st == FR_STATUS_OK)
        st = fr_tensor_get(dp->loss, p++, sizeof(float));
    *p++ = dp->vote ? 1.0f : 0.0f;
    for (int r = 0; r < dp->nr; r++) /* every rank's step time and rows: its own slot, zeros elsewhere */
        p[r] = r == fr_dist_rank(dp->d) ? (float)dp->step_s : 0.0f,
        p[dp->nr + r] = r == fr_dist_rank(dp->d) ? (float)dp->my_rows : 0.0f;
    add_part(dp, &np, tail, dp->flat + dp->n - tail);
    if (st == FR_STATUS_OK)
        st = fr_dist_sum_parts(dp->d, dp->part, dp->count, np);
    p = dp->flat;
    for (int i = 0; i < dp->n_grads && st == FR_STATUS_OK; i++) {
        if (!grad_host(dp->grads[i]))
            st = fr_tensor_set(dp->grads[i], p, fr_nbytes(dp->grads[i]));
        p += fr_nelements(dp->grads[i]);
    }
    for (int i = 0; i < dp->n_stats && st == FR_STATUS_OK; i++) {
        st = fr_tensor_set(dp->stats[i], p, fr_nbytes(dp->stats[i]));
        p += fr_nelements(dp->stats[i]);
    }
    if (st == FR_STATUS_OK) {
        dp->global_loss = p[0];
        dp->stop = p[1] > 0.0f;
        bool timed = true, same = true; /* a step after new rows or a pause (the first one) measures nothing */
        for (int r = 0; r < dp->nr; r++) {
            timed = timed && p[2 + r] > 0.0f;
            same = same && (int64_t)p[2 + dp->nr + r] == dp->rows[r];
            dp->rows[r] = (int64_t)p[2 + dp->nr + r];
        }
        if (!same) /* the first step, or a step on new rows */
            dp->wn = 0, dp->skip = REFINE_SKIP;
        else if (dp->refine && dp->skip > 0)
            dp->skip--;
        else if (dp->refine && timed && dp->wn < REFINE_WINDOW)
            memcpy(dp->win + (size_t)dp->wn++ * (size_t)dp->nr, p + 2, (size_t)dp->nr * sizeof(float));
    }
    dp->sync_s = now_s() - t0;
    if (dp->debug && dp->steps > 0)
        dp->sum_total += dp->sync_s;
    if (dp->debug)
        fr_log(FR_LOG_WARN, "dist: rank %d: %.1f ms since the last sum, %.1f ms in this one (%lld values)",
               fr_dist_rank(dp->d), dp->last > 0 ? 1e3 * (t0 - dp->last) : 0.0, 1e3 * dp->sync_s, (long long)dp->n);
    dp->last = now_s();
    return st;
}

/* The model's gradients and running statistics (the trainer's: a new trainer has new gradient tensors), and the
 * training graph's loss; the trainer's hook between backward pass and update becomes the sum */
static enum fr_status attach(struct fr_dp *dp, struct fr_trainer *tr, struct fr_model *m)
{
    int nt = fr_model_n_tensors(m);
    int64_t n = 2 + 2 * (int64_t)dp->nr; /* loss, stop vote, every rank's step time and rows */
    dp->n_grads = dp->n_stats = 0;
    dp->loss = NULL;
    for (int i = 0; i < nt; i++) {
        struct fr_tensor *t = fr_model_tensor(m, i).t;
        if ((t->flags & FR_FLAG_PARAM) && t->grad && (t->grad->flags & FR_FLAG_GRAD))
            dp->grads[dp->n_grads++] = t->grad, n += fr_nelements(t);
        else if (t->flags & FR_FLAG_STATE)
            dp->stats[dp->n_stats++] = t, n += fr_nelements(t);
    }
    struct fr_graph *g = fr_trainer_graph(tr, false);
    for (int i = 0; i < fr_graph_n_nodes(g) && !dp->loss; i++)
        if (!strcmp(fr_graph_node(g, i)->name, "train.loss"))
            dp->loss = fr_graph_node(g, i);
    if (!dp->loss)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "data-parallel step: no loss node");
    if (dp->flat && n != dp->n)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "data-parallel step: the new trainer has %lld values to sum, not %lld",
                        (long long)n, (long long)dp->n);
    dp->n = n;
    if (!dp->flat && !(dp->flat = malloc((size_t)n * sizeof *dp->flat)))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "data-parallel step: out of memory for %lld values", (long long)n);
    dp->last = 0;
    return fr_trainer_set_hook(tr, sync_step, dp);
}

enum fr_status fr_dp_new(struct fr_dist *d, struct fr_trainer *tr, struct fr_model *m, double share, int64_t rows,
                         bool refine, struct fr_dp **out)
{
    *out = NULL;
    struct fr_dp *dp = calloc(1, sizeof *dp);
    int nt = fr_model_n_tensors(m), nr = fr_dist_size(d);
    if (dp) {
        dp->grads = calloc((size_t)nt + 1, sizeof *dp->grads);
        dp->stats = calloc((size_t)nt + 1, sizeof *dp->stats);
        dp->part = calloc((size_t)nt + 2, sizeof *dp->part);
        dp->count = calloc((size_t)nt + 2, sizeof *dp->count);
        dp->t = calloc((size_t)nr, sizeof *dp->t);
        dp->prev_t = calloc((size_t)nr, sizeof *dp->prev_t);
        dp->rows = calloc((size_t)nr, sizeof *dp->rows);
        dp->prev_n = calloc((size_t)nr, sizeof *dp->prev_n);
        dp->win = calloc((size_t)REFINE_WINDOW * (size_t)nr, sizeof *dp->win);
        dp->a = calloc((size_t)nr, sizeof *dp->a);
        dp->b = calloc((size_t)nr, sizeof *dp->b);
        dp->c = calloc((size_t)nr, sizeof *dp->c);
        dp->pending = calloc((size_t)nr, sizeof *dp->pending);
    }
    if (!dp || !dp->grads || !dp->stats || !dp->part || !dp->count || !dp->t || !dp->prev_t || !dp->rows || !dp->prev_n || !dp->win || !dp->a ||
        !dp->b || !dp->c || !dp->pending) {
        fr_dp_free(dp);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "data-parallel step: out of memory");
    }
    dp->d = d;
    dp->nr = nr;
    dp->share = share;
    dp->my_rows = rows;
    dp->refine = refine && nr > 1;
    dp->debug = fr_debug_enabled("dist");
    enum fr_status st = attach(dp, tr, m);
    /* a collective of its own for debugging only when every rank debugs: one rank's environment cannot hang the job */
    float debugging = dp->debug ? 1.0f : 0.0f;
    if (st == FR_STATUS_OK)
        st = fr_dist_sum(d, &debugging, 1, NULL);
    dp->debug_all = fr_dist_size(d) > 1 && debugging == (float)fr_dist_size(d);
    if (st != FR_STATUS_OK) {
        fr_dp_free(dp);
        return st;
    }
    *out = dp;
    return FR_STATUS_OK;
}

enum fr_status fr_dp_retarget(struct fr_dp *dp, struct fr_trainer *tr, struct fr_model *m, double share, int64_t rows)
{
    dp->share = share;
    dp->my_rows = rows;
    return attach(dp, tr, m);
}

/* A rank's step time as t(n) = a + b·n from the newer measurement t1 at n1 rows alone (a = 0), or with an older one
 * t2 at n2 rows; a slow device's fixed cost per step (launches, transfers) is what a proportional split would miss.
 * Two step times a few rows apart on a busy machine can make any line: the fit is taken only from rows at least an
 * eighth apart and when it leaves at most half the step as fixed cost (the CPU path's is well under a tenth); else
 * the split is proportional at the newer point, whose repetition also converges to equal step times. */
static void step_model(double t1, int64_t n1, double t2, int64_t n2, double *a, double *b)
{
    *a = 0, *b = t1 / (double)n1;
    int64_t gap = n2 > n1 ? n2 - n1 : n1 - n2;
    if (n2 <= 0 || 8 * gap < (n1 > n2 ? n1 : n2) || !(t2 > 0) || !isfinite(t2))
        return;
    double slope = (t2 - t1) / (double)(n2 - n1);
    if (!(slope > 0)) /* no growth: noise (other jobs) decided; the newer time, proportional */
        return;
    double fixed = t1 - slope * (double)n1;
    if (fixed < 0 || fixed > 0.5 * t1) /* at most proportional; a fixed cost that large is noise too */
        return;
    *a = fixed, *b = slope;
}

/* The rows [n] of a global batch of B that end every rank's step at the same time T under t_r(n) = a_r + b_r·n:
 * n_r = (T - a_r)/b_r, Σ n_r = B, at least 1 each; whole rows by largest remainders, ties to the lower rank. */
static enum fr_status split_rows(int n, const double *a, const double *b, int64_t B, int64_t *c)
{
    double *ideal = malloc((size_t)n * sizeof *ideal);
    bool *fixed = calloc((size_t)n, sizeof *fixed);
    if (!ideal || !fixed) {
        free(ideal);
        free(fixed);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "balance: out of memory");
    }
    for (bool again = true; again;) {
        double num = (double)B, den = 0;
        for (int r = 0; r < n; r++)
            if (fixed[r])
                num -= 1;
            else
                num += a[r] / b[r], den += 1 / b[r];
        again = false;
        for (int r = 0; r < n; r++) {
            ideal[r] = fixed[r] ? 1 : (num / den - a[r]) / b[r];
            if (!fixed[r] && ideal[r] < 1)
                fixed[r] = again = true;
        }
    }
    int64_t sum = 0;
    for (int r = 0; r < n; r++) {
        c[r] = (int64_t)ideal[r] < 1 ? 1 : (int64_t)ideal[r];
        sum += c[r];
    }
    while (sum != B) {
        int pick = -1;
        for (int r = 0; r < n; r++) {
            if (sum > B && c[r] <= 1)
                continue;
            double gap = ideal[r] - (double)c[r];
            if (pick < 0 || (sum < B ? gap > ideal[pick] - (double)c[pick] : gap < ideal[pick] - (double)c[pick]))
                pick = r;
        }
        c[pick] += sum < B ? 1 : -1;
        sum += sum < B ? 1 : -1;
    }
    free(ideal);
    free(fixed);
    return FR_STATUS_OK;
}

enum fr_status fr_dp_balance(struct fr_dist *d, double seconds, double prev_seconds, int64_t prev_count,
                             int64_t *first, int64_t *count)
{
    const int n = fr_dist_size(d), me = fr_dist_rank(d);
    struct speed {
        double seconds, prev_seconds;
        int64_t count, prev_count;
    } mine = {seconds, prev_seconds, *count, prev_count}, *all = calloc((size_t)n, sizeof *all);
    double *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    int64_t *c = malloc((size_t)n * sizeof *c);
    enum fr_status st = all && a && b && c
                            ? fr_dist_allgather(d, &mine, sizeof mine, all)
                            : fr_error(FR_STATUS_OUT_OF_MEMORY, "balance: out of memory");
    int64_t B = 0;
    bool ok = st == FR_STATUS_OK;
    for (int r = 0; ok && r < n; r++) {
        B += all[r].count;
        ok = all[r].seconds > 0 && isfinite(all[r].seconds) && all[r].count > 0;
        if (ok)
            step_model(all[r].seconds, all[r].count, all[r].prev_seconds, all[r].prev_count, &a[r], &b[r]);
    }
    if (ok && B >= n && (st = split_rows(n, a, b, B, c)) == FR_STATUS_OK) {
        *first = 0;
        for (int r = 0; r < me; r++)
            *first += c[r];
        *count = c[me];
        for (int r = 0; r < n && me == 0 && fr_debug_enabled("dist"); r++)
            fr_log(FR_LOG_WARN, "dist: balance: rank %d: %.1f ms at %lld rows (before: %.1f ms at %lld): %.2f ms + %.3f ms "
                   "per row -> %lld rows", r, 1e3 * all[r].seconds, (long long)all[r].count, 1e3 * all[r].prev_seconds,
                   (long long)all[r].prev_count, 1e3 * a[r], 1e3 * b[r], (long long)c[r]);
    }
    free(all);
    free(a);
    free(b);
    free(c);
    return st;
}

enum fr_status fr_dist_bn_stats(struct fr_dist *d, const float *local, int64_t C, double n_local, float eps,
                                float momentum, float *rm, float *rv, float *out)
{
    const int n = fr_dist_size(d);
    const size_t rec = 1 + 2 * (size_t)C; /* count, means, variances */
    double *mine = malloc(rec * sizeof *mine), *all = malloc((size_t)n * rec * sizeof *all);
    enum fr_status st = mine && all ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "sync batch-norm: out of memory");
    if (st == FR_STATUS_OK) {
        mine[0] = n_local;
        for (int64_t c = 0; c < C; c++) {
            double is = (double)local[C + c];
            mine[1 + c] = (double)local[c];
            mine[1 + C + c] = is > 0 ? 1.0 / (is * is) - (double)eps : 0.0; /* from 1/sqrt(var + eps) */
            if (mine[1 + C + c] < 0)
                mine[1 + C + c] = 0;
        }
        st = fr_dist_allgather(d, mine, rec * sizeof *mine, all);
    }
    for (int64_t c = 0; st == FR_STATUS_OK && c < C; c++) {
        double m = 0, s = 0, q = 0;
        for (int r = 0; r < n; r++)
            m += all[(size_t)r * rec], s += all[(size_t)r * rec] * all[(size_t)r * rec + 1 + (size_t)c];
        double mean = s / m;
        for (int r = 0; r < n; r++) {
            const double *a = all + (size_t)r * rec, dm = a[1 + c] - mean;
            q += a[0] * (a[1 + C + c] + dm * dm);
        }
        double var = q / m;
        out[c] = (float)mean;
        out[C + c] = (float)(1.0 / sqrt(var + (double)eps));
        if (rm && rv) {
            double unbiased = m > 1 ? var * m / (m - 1) : var;
            rm[c] = (1.0f - momentum) * rm[c] + momentum * (float)mean;
            rv[c] = (1.0f - momentum) * rv[c] + momentum * (float)unbiased;
        }
    }
    free(mine);
    free(all);
    return st;
}

static int cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

bool fr_dp_refine(struct fr_dp *dp, int64_t *first, int64_t *count)
{
    if (!dp->refine || dp->wn < REFINE_WINDOW || dp->changes >= REFINE_MAX)
        return false;
    const int n = dp->nr, me = fr_dist_rank(dp->d);
    float col[REFINE_WINDOW];
    double *a = dp->a, *b = dp->b, now = 0, next = 0;
    int64_t *c = dp->c, B = 0;
    for (int r = 0; r < n; r++) { /* the median: a step that waited for the loader or followed validation is no measure */
        for (int i = 0; i < REFINE_WINDOW; i++)
            col[i] = dp->win[(size_t)i * (size_t)n + (size_t)r];
        qsort(col, REFINE_WINDOW, sizeof *col, cmp_float);
        dp->t[r] = 0.5 * ((double)col[REFINE_WINDOW / 2 - 1] + (double)col[REFINE_WINDOW / 2]);
        step_model(dp->t[r], dp->rows[r], dp->prev_t[r], dp->prev_n[r], &a[r], &b[r]);
        B += dp->rows[r];
        now = dp->t[r] > now ? dp->t[r] : now;
    }
    dp->wn = 0;
    bool change = false;
    if (split_rows(n, a, b, B, c) != FR_STATUS_OK) {
        fr_clear_error();
        return false;
    }
    for (int r = 0; r < n; r++) {
        double t = a[r] + b[r] * (double)c[r];
        next = t > next ? t : next;
        change = change || c[r] != dp->rows[r];
    }
    change = change && next < (1 - REFINE_GAIN) * now;
    bool confirmed = change;
    for (int r = 0; r < n; r++) {
        confirmed = confirmed && dp->pending[r] == c[r];
        dp->pending[r] = change ? c[r] : 0;
    }
    for (int r = 0; r < n && me == 0 && dp->debug; r++)
        fr_log(FR_LOG_WARN, "dist: balance during training: rank %d: %.1f ms at %lld rows (median of %d steps): %.2f ms + "
               "%.3f ms per row -> %lld rows", r, 1e3 * dp->t[r], (long long)dp->rows[r], REFINE_WINDOW, 1e3 * a[r],
               1e3 * b[r], (long long)c[r]);
    if (me == 0 && dp->debug)
        fr_log(FR_LOG_WARN, "dist: balance during training: a step of %.1f ms predicted instead of %.1f: %s", 1e3 * next,
               1e3 * now, confirmed ? "new rows" : change ? "new rows if the next window agrees" : "rows kept");
    if (!confirmed)
        return false;
    dp->changes++;
    for (int r = 0; r < n; r++)
        dp->pending[r] = 0;
    *first = 0;
    for (int r = 0; r < n; r++) {
        dp->prev_t[r] = dp->t[r], dp->prev_n[r] = dp->rows[r];
        if (r < me)
            *first += c[r];
    }
    *count = c[me];
    return true;
}
