/* Finite-difference gradient check for any graph op: loss = Σ op(inputs)·r with a fixed random r, analytic
 * gradients from fr_graph_backward against central differences taken in double around the f32 forward.
 * Header-only so any test suite can include it after testutil.h.
 *
 *   static struct fr_tensor *build(struct gc *g, void *arg) {
 *       struct fr_tensor *a = gc_param(g, 2, (int64_t[]){3, 4}, GC_UNIFORM);
 *       return fr_tanh(g->ctx, a);
 *   }
 *   gc_check("tanh", build, NULL, NULL);
 */
#ifndef FRUGAL_TEST_GRADCHECK_H
#define FRUGAL_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define GC_MAX_LEAVES 8

/* how a leaf is filled: uniform in [-1, 1); |x| in [0.2, 1) (away from kinks at 0); distinct values at least
 * 0.05 apart (no ties for max and max-pool) */
enum gc_fill { GC_UNIFORM, GC_AWAY_FROM_ZERO, GC_DISTINCT, GC_POSITIVE };

struct gc {
    struct fr_ctx *ctx;
    int n;
    struct fr_tensor *t[GC_MAX_LEAVES];
    float *data[GC_MAX_LEAVES];
    bool param[GC_MAX_LEAVES];
    uint32_t seed;
};

struct gc_opts {
    double h;          /* finite-difference step (default 1e-2) */
    double rtol, atol; /* |analytic − numeric| <= atol + rtol·max(|analytic|, |numeric|) (1e-2, 2e-3) */
    bool training;     /* graph mode during the check */
    int threads;       /* CPU threads (default 2) */
};

static void gc_fill_data(float *d, int64_t n, enum gc_fill fill, uint32_t seed)
{
    tu_fill_uniform(d, (size_t)n, seed, -1.0f, 1.0f);
    if (fill == GC_AWAY_FROM_ZERO)
        for (int64_t i = 0; i < n; i++)
            d[i] = d[i] < 0 ? -0.2f + 0.8f * d[i] : 0.2f + 0.8f * d[i];
    else if (fill == GC_POSITIVE)
        for (int64_t i = 0; i < n; i++)
            d[i] = 0.5f + 0.5f * (d[i] + 1.0f);
    else if (fill == GC_DISTINCT) {
        /* a shuffled ramp: every pair differs by >= 0.05, far more than 2h */
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)(0.05 * (double)i - 0.025 * (double)n);
        for (int64_t i = n - 1; i > 0; i--) {
            float u[1];
            tu_fill_uniform(u, 1, seed + 7919u * (uint32_t)i, 0.0f, 1.0f);
            int64_t k = (int64_t)(u[0] * (float)(i + 1));
            k = k > i ? i : k;
            float tmp = d[i];
            d[i] = d[k];
            d[k] = tmp;
        }
    }
}

static struct fr_tensor *gc_leaf(struct gc *g, int ndim, const int64_t *ne, enum gc_fill fill, bool param)
{
    assert_true(g->n < GC_MAX_LEAVES);
    struct fr_tensor *t = fr_tensor_new(g->ctx, FR_F32, ndim, ne);
    assert_non_null(t);
    fr_tensor_set_flags(t, param ? FR_FLAG_PARAM : FR_FLAG_INPUT);
    fr_tensor_set_name(t, "%s%d", param ? "p" : "c", g->n);
    int64_t n = fr_nelements(t);
    g->data[g->n] = malloc((size_t)n * sizeof(float));
    gc_fill_data(g->data[g->n], n, fill, g->seed + 101u * (uint32_t)g->n);
    g->t[g->n] = t;
    g->param[g->n] = param;
    g->n++;
    return t;
}

/* a leaf whose gradient is checked */
static inline struct fr_tensor *gc_param(struct gc *g, int ndim, const int64_t *ne, enum gc_fill fill)
{
    return gc_leaf(g, ndim, ne, fill, true);
}
/* a leaf with fixed random data and no gradient */
static inline struct fr_tensor *gc_const(struct gc *g, int ndim, const int64_t *ne, enum gc_fill fill)
{
    return gc_leaf(g, ndim, ne, fill, false);
}

typedef struct fr_tensor *(*gc_build_fn)(struct gc *g, void *arg);

static double gc_loss(struct fr_graph *graph, struct fr_tensor *y, const float *r, float *ybuf, int64_t ny)
{
    fr_graph_set_step(graph, 5); /* dropout-style masks stay the same across the probes */
    if (fr_graph_compute(graph) != FR_STATUS_OK)
        fail_msg("compute: %s", fr_last_error());
    assert_int_equal(fr_tensor_get(y, ybuf, (size_t)ny * sizeof(float)), FR_STATUS_OK);
    double s = 0.0;
    for (int64_t i = 0; i < ny; i++)
        s += (double)ybuf[i] * (double)r[i];
    return s;
}

/* one built check: the op's graph with y, the loss and the backward nodes, planned on `be` */
struct gc_run {
    struct gc g;
    struct fr_tensor *y;
    float *rd, *ybuf;
    int64_t ny;
    struct fr_graph *graph;
};

static void gc_setup(struct gc_run *R, const char *name, gc_build_fn build, void *arg, const struct gc_opts *o,
                     struct fr_backend *be)
{
    memset(R, 0, sizeof *R);
    R->g = (struct gc){.ctx = fr_ctx_new(), .seed = 1234};
    struct fr_tensor *y = build(&R->g, arg);
    if (!y)
        fail_msg("%s: build failed: %s", name, fr_last_error());
    /* the planner keeps an OUTPUT's own storage, not a view's root: read a contiguous copy of a view */
    if (y->view_src)
        y = fr_cont(R->g.ctx, y);
    R->y = y;
    R->ny = fr_nelements(y);
    struct fr_tensor *r = fr_tensor_new(R->g.ctx, FR_F32, y->ndim, y->ne);
    fr_tensor_set_flags(r, FR_FLAG_INPUT);
    R->rd = malloc((size_t)R->ny * sizeof(float));
    R->ybuf = malloc((size_t)R->ny * sizeof(float));
    tu_fill_uniform(R->rd, (size_t)R->ny, 77, -1.0f, 1.0f);
    struct fr_tensor *loss = fr_sum(R->g.ctx, fr_reshape(R->g.ctx, fr_mul(R->g.ctx, y, r), 1, &R->ny), 0);
    assert_non_null(loss);
    R->graph = fr_graph_new(R->g.ctx);
    if (fr_graph_add(R->graph, y) != FR_STATUS_OK)
        fail_msg("%s: graph: %s", name, fr_last_error());
    if (fr_graph_backward(R->graph, loss) != FR_STATUS_OK)
        fail_msg("%s: backward: %s", name, fr_last_error());
    /* guard bytes: off here until the core planner keeps arena guards intact (see report) */
    if (fr_graph_plan(R->graph, be) != FR_STATUS_OK)
        fail_msg("%s: plan: %s", name, fr_last_error());
    fr_graph_set_training(R->graph, o->training);
    fr_graph_set_seed(R->graph, 31);
    assert_int_equal(fr_tensor_set(r, R->rd, (size_t)R->ny * sizeof(float)), FR_STATUS_OK);
    for (int i = 0; i < R->g.n; i++)
        assert_int_equal(fr_tensor_set(R->g.t[i], R->g.data[i], (size_t)fr_nelements(R->g.t[i]) * sizeof(float)),
                         FR_STATUS_OK);
}

/* analytic gradients of every param leaf (NULL for the others), at the current data */
static void gc_grads(struct gc_run *R, const char *name, float **grads)
{
    for (int i = 0; i < R->g.n; i++) {
        grads[i] = NULL;
        if (!R->g.param[i])
            continue;
        if (!R->g.t[i]->grad)
            fail_msg("%s: input %d has no gradient", name, i);
        size_t bytes = (size_t)fr_nelements(R->g.t[i]) * sizeof(float);
        grads[i] = malloc(bytes);
        assert_int_equal(fr_tensor_get(R->g.t[i]->grad, grads[i], bytes), FR_STATUS_OK);
    }
}

static void gc_teardown(struct gc_run *R, float **grads)
{
    fr_graph_free(R->graph);
    for (int i = 0; i < R->g.n; i++) {
        free(R->g.data[i]);
        if (grads)
            free(grads[i]);
    }
    fr_ctx_free(R->g.ctx);
    free(R->rd);
    free(R->ybuf);
}

static void gc_check(const char *name, gc_build_fn build, void *arg, const struct gc_opts *opts)
{
    struct gc_opts o = opts ? *opts : (struct gc_opts){0};
    double h = o.h > 0 ? o.h : 1e-2, rtol = o.rtol > 0 ? o.rtol : 1e-2, atol = o.atol > 0 ? o.atol : 2e-3;
    struct fr_backend *be = fr_backend_cpu_new(o.threads > 0 ? o.threads : 2);
    struct gc_run R;
    gc_setup(&R, name, build, arg, &o, be);
    gc_loss(R.graph, R.y, R.rd, R.ybuf, R.ny);
    /* every analytic gradient at the unperturbed point, before any probe */
    float *grads[GC_MAX_LEAVES];
    gc_grads(&R, name, grads);
    for (int i = 0; i < R.g.n; i++) {
        if (!R.g.param[i])
            continue;
        struct fr_tensor *p = R.g.t[i];
        int64_t np = fr_nelements(p);
        float *x = R.g.data[i];
        for (int64_t e = 0; e < np; e++) {
            float x0 = x[e], xp = (float)(x0 + h), xm = (float)(x0 - h);
            x[e] = xp;
            assert_int_equal(fr_tensor_set(p, x, (size_t)np * sizeof(float)), FR_STATUS_OK);
            double lp = gc_loss(R.graph, R.y, R.rd, R.ybuf, R.ny);
            x[e] = xm;
            assert_int_equal(fr_tensor_set(p, x, (size_t)np * sizeof(float)), FR_STATUS_OK);
            double lm = gc_loss(R.graph, R.y, R.rd, R.ybuf, R.ny);
            x[e] = x0;
            double num = (lp - lm) / ((double)xp - (double)xm), an = grads[i][e];
            double tol = atol + rtol * fmax(fabs(num), fabs(an));
            if (!(fabs(num - an) <= tol))
                fail_msg("%s: d/d input %d [%lld]: analytic %.6g, finite difference %.6g (tol %.3g)", name, i,
                         (long long)e, an, num, tol);
        }
        assert_int_equal(fr_tensor_set(p, x, (size_t)np * sizeof(float)), FR_STATUS_OK);
    }
    gc_teardown(&R, grads);
    fr_backend_free(be);
}

/* The op's output and every gradient on backend `other` (an OpenCL device) against the CPU path, with no
 * CPU fallback; |got − want| <= tol·(1 + |want|). */
static void gc_parity(struct fr_backend *other, const char *name, gc_build_fn build, void *arg,
                      const struct gc_opts *opts, float tol)
{
    struct gc_opts o = opts ? *opts : (struct gc_opts){0};
    struct fr_backend *cpu = fr_backend_cpu_new(2);
    struct gc_run A, B;
    gc_setup(&A, name, build, arg, &o, cpu);
    gc_setup(&B, name, build, arg, &o, other);
    gc_loss(A.graph, A.y, A.rd, A.ybuf, A.ny);
    gc_loss(B.graph, B.y, B.rd, B.ybuf, B.ny);
    struct fr_graph_stats st;
    fr_graph_get_stats(B.graph, &st);
    if (st.fallback_ops)
        fail_msg("%s on %s: %d ops fell back to the CPU path", name, fr_backend_name(other), st.fallback_ops);
    float *ga[GC_MAX_LEAVES], *gb[GC_MAX_LEAVES];
    gc_grads(&A, name, ga);
    gc_grads(&B, name, gb);
    for (int64_t e = 0; e < A.ny; e++)
        if (!(fabsf(A.ybuf[e] - B.ybuf[e]) <= tol * (1.0f + fabsf(A.ybuf[e]))))
            fail_msg("%s on %s: output [%lld] %.7g, CPU %.7g", name, fr_backend_name(other), (long long)e,
                     B.ybuf[e], A.ybuf[e]);
    for (int i = 0; i < A.g.n; i++)
        for (int64_t e = 0; ga[i] && e < fr_nelements(A.g.t[i]); e++)
            if (!(fabsf(ga[i][e] - gb[i][e]) <= tol * (1.0f + fabsf(ga[i][e]))))
                fail_msg("%s on %s: gradient of input %d [%lld] %.7g, CPU %.7g", name, fr_backend_name(other), i,
                         (long long)e, gb[i][e], ga[i][e]);
    gc_teardown(&A, ga);
    gc_teardown(&B, gb);
    fr_backend_free(cpu);
}

#endif
