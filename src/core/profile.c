/* Per-op profiles: counters per (phase, op) while a backend is profiled, the summary and its table. */
#include <math.h>

#include "core/profile_internal.h"
#include "core/sbuf.h"
#include "frugal_config.h"
#if FRUGAL_HAVE_OPENCL
#include "opencl/opencl.h"
#endif

struct prof_row {
    enum fr_prof_phase phase;
    struct fr_profile_row r;
};

struct fr_prof {
    enum fr_prof_phase phase;
    int runs[2];
    struct prof_row *rows;
    int n_rows, cap_rows;
    char method[64];
    int64_t target;
    int64_t min_items, min_out;
    char min_kernel[48], min_op[48];
    long below;
    int64_t below_items, below_out;
    char below_kernel[48], below_op[48];
};

enum fr_status fr_profile_start(struct fr_backend *b)
{
    if (!b)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "profile: no backend");
    struct fr_prof *p = b->prof ? b->prof : calloc(1, sizeof *p);
    if (!p)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "profile: out of memory");
    free(p->rows);
    memset(p, 0, sizeof *p);
    p->phase = FR_PROF_OUTSIDE;
    p->min_items = p->below_items = -1;
    snprintf(p->method, sizeof p->method, "wall clock per node");
    b->prof = p;
#if FRUGAL_HAVE_OPENCL
    if (b->kind == FR_BACKEND_OPENCL) {
        enum fr_status st = fr_opencl_profiling(b, true);
        if (st != FR_STATUS_OK) {
            free(p);
            b->prof = NULL;
            return st;
        }
    }
#endif
    return FR_STATUS_OK;
}

void fr_prof_free(struct fr_prof *p)
{
    if (p)
        free(p->rows);
    free(p);
}

void fr_prof_describe(struct fr_backend *b, const char *method, int64_t parallel_target)
{
    if (!b->prof)
        return;
    snprintf(b->prof->method, sizeof b->prof->method, "%s", method);
    b->prof->target = parallel_target;
}

void fr_prof_run_begin(struct fr_backend *b, bool training)
{
    if (!b->prof)
        return;
    b->prof->phase = training ? FR_PROF_STEP : FR_PROF_OTHER_RUN;
    b->prof->runs[training ? 0 : 1]++;
}

void fr_prof_run_end(struct fr_backend *b)
{
    if (b->prof)
        b->prof->phase = FR_PROF_OUTSIDE;
}

enum fr_prof_phase fr_prof_phase(const struct fr_backend *b) { return b->prof ? b->prof->phase : FR_PROF_OUTSIDE; }

static struct prof_row *row(struct fr_prof *p, enum fr_prof_phase phase, const char *op)
{
    /* copies outside runs and other runs share the non-step group */
    bool step = phase == FR_PROF_STEP;
    for (int i = 0; i < p->n_rows; i++)
        if ((p->rows[i].phase == FR_PROF_STEP) == step && strcmp(p->rows[i].r.op, op) == 0)
            return &p->rows[i];
    if (p->n_rows == p->cap_rows) {
        int cap = p->cap_rows ? 2 * p->cap_rows : 32;
        struct prof_row *g = realloc(p->rows, (size_t)cap * sizeof *g);
        if (!g)
            return NULL;
        p->rows = g;
        p->cap_rows = cap;
    }
    struct prof_row *r = &p->rows[p->n_rows++];
    memset(r, 0, sizeof *r);
    r->phase = step ? FR_PROF_STEP : FR_PROF_OTHER_RUN;
    snprintf(r->r.op, sizeof r->r.op, "%s", op);
    r->r.training = step;
    r->r.min_work_items = -1;
    return r;
}

void fr_prof_add(struct fr_backend *b, enum fr_prof_phase phase, const char *op, const char *kernel, double ms,
                 int64_t items, int64_t out)
{
    struct fr_prof *p = b->prof;
    struct prof_row *r = p ? row(p, phase, op) : NULL;
    if (!r)
        return;
    r->r.ms += ms;
    r->r.launches++;
    if (items < 0)
        return;
    r->r.work_items += (double)items;
    if (r->r.min_work_items < 0 || items < r->r.min_work_items) {
        r->r.min_work_items = items;
        snprintf(r->r.min_kernel, sizeof r->r.min_kernel, "%s", kernel ? kernel : op);
    }
    if (phase != FR_PROF_STEP)
        return;
    if (p->min_items < 0 || items < p->min_items) {
        p->min_items = items;
        p->min_out = out;
        snprintf(p->min_kernel, sizeof p->min_kernel, "%s", kernel ? kernel : op);
        snprintf(p->min_op, sizeof p->min_op, "%s", op);
    }
    /* below the target although the output would allow more work-items */
    if (p->target > 0 && items < p->target && out >= p->target) {
        p->below++;
        if (p->below_items < 0 || items < p->below_items) {
            p->below_items = items;
            p->below_out = out;
            snprintf(p->below_kernel, sizeof p->below_kernel, "%s", kernel ? kernel : op);
            snprintf(p->below_op, sizeof p->below_op, "%s", op);
        }
    }
}

static int cmp_rows(const void *a, const void *b)
{
    const struct fr_profile_row *x = a, *y = b;
    if (x->training != y->training)
        return x->training ? -1 : 1;
    return (x->ms < y->ms) - (x->ms > y->ms);
}

enum fr_status fr_profile_stop(struct fr_backend *b, struct fr_profile *out)
{
    memset(out, 0, sizeof *out);
    out->min_work_items = out->below_items = -1;
    if (!b || !b->prof)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "profile: not started on %s", fr_backend_name(b));
    enum fr_status st = FR_STATUS_OK;
#if FRUGAL_HAVE_OPENCL
    if (b->kind == FR_BACKEND_OPENCL)
        st = fr_opencl_profiling(b, false); /* waits and reads the last events */
#endif
    struct fr_prof *p = b->prof;
    b->prof = NULL;
    snprintf(out->device, sizeof out->device, "%s", b->name);
    snprintf(out->method, sizeof out->method, "%s", p->method);
    out->steps = p->runs[0];
    out->other_runs = p->runs[1];
    out->rows = calloc((size_t)p->n_rows + 1, sizeof *out->rows);
    if (!out->rows) {
        free(p->rows);
        free(p);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "profile: out of memory");
    }
    for (int i = 0; i < p->n_rows; i++) {
        out->rows[i] = p->rows[i].r;
        if (p->rows[i].phase == FR_PROF_STEP)
            out->step_ms += p->rows[i].r.ms;
        else
            out->other_ms += p->rows[i].r.ms;
    }
    out->n_rows = p->n_rows;
    qsort(out->rows, (size_t)out->n_rows, sizeof *out->rows, cmp_rows);
    out->min_work_items = p->min_items;
    out->min_output = p->min_out;
    snprintf(out->min_kernel, sizeof out->min_kernel, "%s", p->min_kernel);
    snprintf(out->min_op, sizeof out->min_op, "%s", p->min_op);
    out->parallel_target = p->target;
    out->below_target = p->below;
    out->below_items = p->below_items;
    out->below_output = p->below_out;
    snprintf(out->below_kernel, sizeof out->below_kernel, "%s", p->below_kernel);
    snprintf(out->below_op, sizeof out->below_op, "%s", p->below_op);
    free(p->rows);
    free(p);
    return st;
}

void fr_profile_free(struct fr_profile *p)
{
    if (!p)
        return;
    free(p->rows);
    p->rows = NULL;
    p->n_rows = 0;
}

char *fr_profile_format(const struct fr_profile *p)
{
    struct fr_sbuf b = {0};
    int steps = p->steps > 0 ? p->steps : 1;
    fr_sbuf_printf(&b, "profile of %s: %d training step%s, %s\n", p->device, p->steps, p->steps == 1 ? "" : "s", p->method);
    if (p->steps > 0) {
        fr_sbuf_printf(&b, "%-34s %7s %10s %14s %22s\n", "op (training step)", "share", "ms/step", "launches/step",
                  "work-items/launch, min");
        for (int i = 0; i < p->n_rows; i++) {
            const struct fr_profile_row *r = &p->rows[i];
            if (!r->training)
                continue;
            char items[48] = "-";
            long known = r->launches; /* launches with a known size approximate the mean's denominator */
            if (r->min_work_items >= 0 && known > 0)
                snprintf(items, sizeof items, "%.0f, %lld", r->work_items / (double)known,
                         (long long)r->min_work_items);
            fr_sbuf_printf(&b, "%-34.34s %6.1f%% %10.3f %14.1f %22s\n", r->op, p->step_ms > 0 ? 100.0 * r->ms / p->step_ms : 0,
                      r->ms / steps, (double)r->launches / steps, items);
        }
        fr_sbuf_printf(&b, "%-34s %6.1f%% %10.3f\n", "all ops of a step", 100.0, p->step_ms / steps);
    }
    if (p->min_work_items >= 0)
        fr_sbuf_printf(&b, "smallest kernel launch in a step: %lld work-items (%s, op %s, output %lld elements)\n",
                  (long long)p->min_work_items, p->min_kernel, p->min_op, (long long)p->min_output);
    if (p->parallel_target > 0) {
        if (p->below_target > 0)
            fr_sbuf_printf(&b,
                      "parallelism target %lld work-items: %.1f launches per step below it with larger outputs "
                      "(smallest: %s, op %s, %lld work-items for %lld outputs)\n",
                      (long long)p->parallel_target, (double)p->below_target / steps, p->below_kernel, p->below_op,
                      (long long)p->below_items, (long long)p->below_output);
        else
            fr_sbuf_printf(&b, "parallelism target %lld work-items: every launch in a step reaches it or covers its whole output\n",
                      (long long)p->parallel_target);
    }
    bool other = false;
    for (int i = 0; i < p->n_rows; i++)
        other |= !p->rows[i].training;
    if (other) {
        fr_sbuf_printf(&b, "outside the steps (%d other graph run%s, copies of inputs and results): %.1f ms in all\n",
                  p->other_runs, p->other_runs == 1 ? "" : "s", p->other_ms);
        for (int i = 0; i < p->n_rows; i++) {
            const struct fr_profile_row *r = &p->rows[i];
            if (!r->training && r->ms >= 0.05 * p->other_ms)
                fr_sbuf_printf(&b, "  %-32.32s %10.1f ms %8ld launches\n", r->op, r->ms, r->launches);
        }
    }
    return fr_sbuf_finish(&b);
}
