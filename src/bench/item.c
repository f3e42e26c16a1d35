/* One benchmark workload as a frugal graph: build, fill the leaves deterministically, check the output
 * against the CPU path, time fr_graph_compute, add the figures. */
#include <math.h>

#include "bench/bench_internal.h"
#include "frugal/profile.h"

static uint32_t mix32(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((x ^ (x >> 31)) >> 32);
}

/* Same values on every backend: a function of the leaf's position in the context and the element. */
static enum fr_status fill_leaf(const struct fr_bench_item *it, struct fr_tensor *t, int id)
{
    int64_t n = fr_nelements(t);
    size_t es = fr_dtype_size(t->type);
    void *data = malloc((size_t)n * es + 1);
    if (!data)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    if (!it->fill || !it->fill(it, t, data, n)) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t h = mix32(((uint64_t)id << 40) ^ (uint64_t)i);
            if (t->type == FR_U8)
                ((uint8_t *)data)[i] = (uint8_t)h;
            else if (t->type == FR_I32)
                ((int32_t *)data)[i] = (int32_t)(h % (uint32_t)(it->p[9] > 0 ? it->p[9] : 1));
            else if (strncmp(t->name, "zeros", 5) == 0)
                ((float *)data)[i] = 0.0f;
            else if (strncmp(t->name, "lr", 2) == 0)
                ((float *)data)[i] = 1e-3f;
            else if (strncmp(t->name, "ones", 4) == 0)
                ((float *)data)[i] = 1.0f;
            else
                ((float *)data)[i] = (float)h * (2.0f / 4294967296.0f) - 1.0f;
        }
    }
    enum fr_status st = fr_tensor_set(t, data, (size_t)n * es);
    free(data);
    return st;
}

struct work {
    struct fr_ctx *ctx;
    struct fr_graph *g;
    struct fr_tensor *check;
};

static void work_free(struct work *w)
{
    fr_graph_free(w->g);
    fr_ctx_free(w->ctx);
    memset(w, 0, sizeof *w);
}

/* Builds and plans the workload on `be`, fills it, runs it once; *out gets the checked output as floats. */
static enum fr_status work_setup(struct work *w, struct fr_backend *be, const struct fr_bench_item *it, float **out,
                                 int64_t *n_out)
{
    memset(w, 0, sizeof *w);
    *out = NULL;
    w->ctx = fr_ctx_new();
    w->g = w->ctx ? fr_graph_new(w->ctx) : NULL;
    if (!w->g)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    fr_clear_error();
    w->check = it->build(w->ctx, w->g, it);
    if (!w->check) {
        enum fr_status st = fr_ctx_status(w->ctx);
        return st ? st : fr_error(FR_STATUS_UNSUPPORTED, "bench: %s: cannot build (%s)", it->name, fr_last_error());
    }
    fr_graph_set_training(w->g, it->training);
    fr_graph_set_seed(w->g, 1234);
    enum fr_status st = fr_graph_plan(w->g, be);
    int n = fr_ctx_count(w->ctx);
    for (int i = 0; i < n && st == FR_STATUS_OK; i++) {
        struct fr_tensor *t = fr_ctx_tensor(w->ctx, i);
        if (t->op == FR_OP_NONE && t->buffer && !t->view_src)
            st = fill_leaf(it, t, i);
    }
    if (st == FR_STATUS_OK)
        st = fr_graph_compute(w->g);
    if (st != FR_STATUS_OK)
        return st;
    int64_t m = fr_nelements(w->check);
    size_t es = fr_dtype_size(w->check->type);
    void *raw = malloc((size_t)m * es);
    float *f = malloc((size_t)m * sizeof(float));
    if (!raw || !f) {
        free(raw);
        free(f);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    }
    st = fr_tensor_get(w->check, raw, (size_t)m * es);
    for (int64_t i = 0; i < m; i++)
        f[i] = w->check->type == FR_U8    ? (float)((uint8_t *)raw)[i]
               : w->check->type == FR_I32 ? (float)((int32_t *)raw)[i]
                                          : ((float *)raw)[i];
    free(raw);
    if (st != FR_STATUS_OK) {
        free(f);
        return st;
    }
    *out = f;
    *n_out = m;
    return FR_STATUS_OK;
}

static enum fr_status work_run(void *vctx, double *dev)
{
    (void)dev;
    return fr_graph_compute(((struct work *)vctx)->g);
}

/* Per-op time of `runs` more runs of the item (OpenCL profiling events on a device, the wall clock per node on
 * the CPU path): the item's whole device time, and each op's that takes a twentieth of it or more when the
 * item has several ops. */
static enum fr_status profile_item(struct fr_bench_run *run, const char *suite, const struct fr_bench_item *it,
                                   struct fr_graph *g)
{
    enum fr_status st = fr_profile_start(run->be);
    int runs = run->repeat > 0 ? run->repeat : 1;
    for (int r = 0; r < runs && st == FR_STATUS_OK; r++)
        st = fr_graph_compute(g);
    struct fr_profile p;
    enum fr_status st2 = fr_profile_stop(run->be, &p);
    if (st == FR_STATUS_OK)
        st = st2;
    if (st != FR_STATUS_OK) {
        fr_profile_free(&p);
        return st;
    }
    double total = p.step_ms + p.other_ms;
    char name[160], method[96];
    snprintf(method, sizeof method, "%s", strncmp(p.method, "OpenCL", 6) == 0 ? "cl-events (sum of kernel times)" : "wall per node");
    snprintf(name, sizeof name, "%s device time", it->name);
    fr_bench_add(run, suite, name, total / runs, "ms", method);
    for (int i = 0; i < p.n_rows && p.n_rows > 1; i++)
        if (p.rows[i].ms >= 0.05 * total) {
            snprintf(name, sizeof name, "%s | %s", it->name, p.rows[i].op);
            fr_bench_add(run, suite, name, p.rows[i].ms / runs, "ms", method);
        }
    fr_profile_free(&p);
    return FR_STATUS_OK;
}

enum fr_status fr_bench_item_run(struct fr_bench_run *run, const char *suite, const struct fr_bench_item *it)
{
    fr_bench_progress(run, suite, "%s", it->name);
    struct work w;
    float *got = NULL, *want = NULL;
    int64_t n_got = 0, n_want = 0;
    enum fr_status st = work_setup(&w, run->be, it, &got, &n_got);
    if (st == FR_STATUS_SHAPE || st == FR_STATUS_UNSUPPORTED || st == FR_STATUS_INVALID_ARGUMENT) {
        /* a workload this build cannot express (an op family not there yet): skip it, say why */
        fr_bench_note(run->r, "%s %s: %s skipped: %s", run->spec, suite, it->name, fr_last_error());
        run->r->n_skipped++;
        work_free(&w);
        free(got);
        return FR_STATUS_OK;
    }
    if (st != FR_STATUS_OK)
        goto out;
    struct fr_graph_stats gs;
    fr_graph_get_stats(w.g, &gs);

    /* reference: the CPU path on the same inputs (the CPU device is its own reference) */
    if (run->be->kind != FR_BACKEND_CPU) {
        struct work rw;
        st = work_setup(&rw, run->ref, it, &want, &n_want);
        work_free(&rw);
        if (st != FR_STATUS_OK)
            goto out;
    } else {
        want = malloc((size_t)n_got * sizeof(float));
        if (!want) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
            goto out;
        }
        memcpy(want, got, (size_t)n_got * sizeof(float));
        n_want = n_got;
    }
    double max_abs = INFINITY, max_rel = INFINITY;
    if (n_want == n_got) {
        if (fr_bench_perturb(it->name)) {
            double mw = 0;
            for (int64_t i = 0; i < n_want; i++)
                mw = fmax(mw, fabs(want[i]));
            got[0] = (float)(want[0] + 0.5 * mw + 1.0);
        }
        fr_bench_errors(got, want, (size_t)n_got, &max_abs, &max_rel);
    }

    double t = fr_bench_time(run, work_run, &w, &st);
    if (t <= 0)
        goto out;
    const char *method = gs.fallback_ops ? "wall (fr_graph_compute, with CPU fallbacks)" : "wall (fr_graph_compute)";
    char name[128];
    snprintf(name, sizeof name, "%s time", it->name);
    fr_bench_add(run, suite, name, t * 1e3, "ms", method);
    struct fr_bench_figure *f;
    double pct = -1;
    if (it->images > 0) {
        f = fr_bench_add(run, suite, it->name, it->images / t, "img/s", method);
    } else if (it->flops > 0) {
        f = fr_bench_add(run, suite, it->name, it->flops / t * 1e-9, "GFLOP/s", method);
        if (run->peak_gflops > 0)
            pct = 100.0 * it->flops / t * 1e-9 / run->peak_gflops;
    } else {
        f = fr_bench_add(run, suite, it->name, it->bytes / t * 1e-9, "GB/s", method);
        if (run->peak_gbs > 0)
            pct = 100.0 * it->bytes / t * 1e-9 / run->peak_gbs;
    }
    if (f) {
        f->checked = true;
        f->max_abs_err = max_abs;
        f->max_rel_err = max_rel;
        f->tol = it->tol;
        f->flagged = !(max_rel <= it->tol);
    }
    if (pct > 100.0) {
        /* faster than the measured limit: its data stayed in a cache the limit's working set does not fit */
        fr_bench_note(run->r, "%s %s: %s runs at %.0f%% of the measured %s (data in cache); no %% of peak figure",
                      run->spec, suite, it->name, pct, it->flops > 0 ? "peak fp32" : "bandwidth");
    } else if (pct >= 0) {
        snprintf(name, sizeof name, "%s %% of peak", it->name);
        fr_bench_add(run, suite, name, pct, "%", it->flops > 0 ? "vs measured peak fp32" : "vs measured bandwidth");
    }
    if (gs.fallback_ops)
        fr_bench_note(run->r, "%s %s: %s ran %d op(s) on the CPU path (no device kernel)", run->spec, suite, it->name,
                      gs.fallback_ops);
    st = profile_item(run, suite, it, w.g);
out:
    work_free(&w);
    free(got);
    free(want);
    return st == FR_STATUS_OK ? st : fr_bench_failed(run, suite, it->name, st);
}
