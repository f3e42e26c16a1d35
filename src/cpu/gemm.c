/* fr_sgemm: the BLIS-style driver (blocking, shared packed B, per-thread packed A, thread split) and the
 * runtime choice of micro-kernel family; the kernels themselves are in gemm_kernel_<width>.c. */
#include "cpu/gemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu_features.h"

/* Below this many flops a thread hand-off costs more than it saves. */
#define FR_GEMM_MIN_FLOPS_PER_THREAD (1 << 20)
/* Below this many multiply-adds packing costs more than it saves. */
#define FR_GEMM_TINY_MACS 2048

/* ---- kernel choice ---- */

static const struct fr_gemm_kernel *kernel_for(const char *name)
{
#if defined(__x86_64__) || defined(__i386__)
    if (!strcmp(name, "avx512f"))
        return &fr_gemm_kernel_avx512;
    if (!strcmp(name, "avx2+fma"))
        return &fr_gemm_kernel_avx2;
#endif
    if (!strcmp(name, fr_gemm_kernel_generic.name) || !strcmp(name, "generic"))
        return &fr_gemm_kernel_generic;
    return NULL;
}

static _Atomic(const struct fr_gemm_kernel *) g_kernel;

static const struct fr_gemm_kernel *auto_kernel(void)
{
    const struct fr_gemm_kernel *kern = kernel_for(fr_cpu_simd_name());
    return kern ? kern : &fr_gemm_kernel_generic;
}

static const struct fr_gemm_kernel *current_kernel(void)
{
    const struct fr_gemm_kernel *kern = atomic_load_explicit(&g_kernel, memory_order_acquire);
    if (!kern) {
        kern = auto_kernel(); /* racing first calls pick the same one */
        atomic_store_explicit(&g_kernel, kern, memory_order_release);
    }
    return kern;
}

const char *fr_sgemm_kernel_name(void) { return current_kernel()->name; }

bool fr_sgemm_set_kernel(const char *name)
{
    if (!name || !*name) {
        atomic_store(&g_kernel, auto_kernel());
        return true;
    }
    const struct fr_gemm_kernel *kern = kernel_for(name);
    if (!kern || !fr_cpu_has_simd(strcmp(name, kern->name) ? "generic" : kern->name))
        return false;
    atomic_store(&g_kernel, kern);
    return true;
}

/* ---- per-thread packing buffers: grow only, freed at thread exit ---- */

struct scratch {
    float *p[2];
    size_t cap[2]; /* floats */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *v)
{
    struct scratch *s = v;
    if (s) {
        free(s->p[0]);
        free(s->p[1]);
        free(s);
    }
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

/* A 64-byte aligned buffer of at least `floats` for slot 0 (packed A) or 1 (packed B), or NULL. */
static float *scratch_get(int slot, size_t floats)
{
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok)
        return NULL;
    struct scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->cap[slot] < floats) {
        size_t want = floats + floats / 4;
        void *p = NULL;
        if (posix_memalign(&p, 64, want * sizeof(float)) != 0)
            return NULL;
        free(s->p[slot]);
        s->p[slot] = p;
        s->cap[slot] = want;
    }
    return s->p[slot];
}

/* ---- reference path: tiny shapes, and the fallback when a packing buffer cannot be had ---- */

static void gemm_simple(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1, brs = tb ? 1 : ldb, bcs = tb ? ldb : 1;
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++)
            ci[j] = beta == 0.0f ? 0.0f : ci[j] * beta;
        for (int64_t p = 0; p < k; p++) {
            float av = alpha * a[i * ars + p * acs];
            const float *bp = b + p * brs;
            for (int64_t j = 0; j < n; j++)
                ci[j] += av * bp[j * bcs];
        }
    }
}

/* ---- the blocked driver ---- */

struct gemm_job {
    const struct fr_gemm_kernel *kern;
    bool ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
    /* current (jc, pc) block */
    int64_t jc, nc, pc, kc;
    float *pb;            /* packed B block, shared */
    int64_t mc;           /* rows per A block (multiple of mr) */
    int64_t m_blocks;     /* A blocks per column */
    int64_t n_chunk;      /* columns per task (multiple of nr) */
    int64_t n_chunks;     /* tasks per A block */
    int64_t b_panels_per_task;
    bool failed;          /* an A buffer could not be had: that block was done by gemm_simple */
};

static void pack_b_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    struct gemm_job *g = ctx;
    const struct fr_gemm_kernel *kern = g->kern;
    int64_t j0 = task * g->b_panels_per_task * kern->nr;
    int64_t nc = g->nc - j0;
    if (nc > g->b_panels_per_task * kern->nr)
        nc = g->b_panels_per_task * kern->nr;
    int64_t rs = g->tb ? 1 : g->ldb, cs = g->tb ? g->ldb : 1;
    kern->pack_b(g->kc, nc, g->b + g->pc * rs + (g->jc + j0) * cs, rs, cs, g->pb + j0 * g->kc);
}

static void compute_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    struct gemm_job *g = ctx;
    const struct fr_gemm_kernel *kern = g->kern;
    int64_t ib = task / g->n_chunks, jb = task % g->n_chunks;
    int64_t i0 = ib * g->mc, mc = g->m - i0 < g->mc ? g->m - i0 : g->mc;
    int64_t j0 = jb * g->n_chunk, nc = g->nc - j0 < g->n_chunk ? g->nc - j0 : g->n_chunk;
    if (mc <= 0 || nc <= 0)
        return;
    float beta = g->pc == 0 ? g->beta : 1.0f;
    float *c = g->c + i0 * g->ldc + g->jc + j0;
    int64_t mc_pad = (mc + kern->mr - 1) / kern->mr * kern->mr;
    float *pa = scratch_get(0, (size_t)(mc_pad * g->kc));
    if (!pa) {
        int64_t ars = g->ta ? 1 : g->lda, acs = g->ta ? g->lda : 1;
        int64_t brs = g->tb ? 1 : g->ldb, bcs = g->tb ? g->ldb : 1;
        gemm_simple(g->ta, g->tb, mc, nc, g->kc, g->alpha, g->a + i0 * ars + g->pc * acs, g->lda,
                    g->b + g->pc * brs + (g->jc + j0) * bcs, g->ldb, beta, c, g->ldc);
        return;
    }
    int64_t ars = g->ta ? 1 : g->lda, acs = g->ta ? g->lda : 1;
    kern->pack_a(mc, g->kc, g->a + i0 * ars + g->pc * acs, ars, acs, pa);
    kern->block(mc, nc, g->kc, pa, g->pb + j0 * g->kc, c, g->ldc, g->alpha, beta);
}

void fr_sgemm(struct fr_threadpool *pool, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : c[i * ldc + j] * beta;
        return;
    }
    if (m * n * k <= FR_GEMM_TINY_MACS) {
        gemm_simple(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const struct fr_gemm_kernel *kern = current_kernel();
    int threads = pool ? fr_threadpool_size(pool) : 1;
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (flops < (double)FR_GEMM_MIN_FLOPS_PER_THREAD * threads) {
        int t = (int)(flops / FR_GEMM_MIN_FLOPS_PER_THREAD);
        threads = t < 1 ? 1 : t;
    }
    if (threads == 1)
        pool = NULL;

    struct gemm_job g = {
        .kern = kern, .ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
        .a = a, .b = b, .lda = lda, .ldb = ldb, .ldc = ldc, .c = c,
    };
    int64_t mr = kern->mr, nr = kern->nr;
    /* Even A blocks no larger than the kernel's mc. */
    g.m_blocks = (m + kern->mc - 1) / kern->mc;
    int64_t nc_max = n < kern->nc ? n : kern->nc;
    int64_t n_panels_max = (nc_max + nr - 1) / nr;
    /* Split columns too when there are fewer A blocks than threads (or they divide unevenly). */
    int64_t n_chunks = 1;
    if (threads > 1 && g.m_blocks < 4 * threads && g.m_blocks % threads != 0) {
        if (g.m_blocks < threads && m >= threads * mr * 2) {
            g.m_blocks = threads; /* enough rows: split them rather than repack A per column chunk */
        } else {
            n_chunks = (threads + g.m_blocks - 1) / g.m_blocks;
            while ((g.m_blocks * n_chunks) % threads != 0 && n_chunks < threads)
                n_chunks++;
            if (n_chunks > n_panels_max)
                n_chunks = n_panels_max;
        }
    }
    g.mc = (m + g.m_blocks - 1) / g.m_blocks;
    g.mc = (g.mc + mr - 1) / mr * mr;
    g.m_blocks = (m + g.mc - 1) / g.mc;

    size_t pb_floats = (size_t)kern->kc * (size_t)(n_panels_max * nr);
    g.pb = scratch_get(1, pb_floats);
    if (!g.pb) {
        gemm_simple(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    for (g.jc = 0; g.jc < n; g.jc += kern->nc) {
        g.nc = n - g.jc < kern->nc ? n - g.jc : kern->nc;
        int64_t panels = (g.nc + nr - 1) / nr;
        int64_t chunks = n_chunks < panels ? n_chunks : panels;
        g.n_chunk = (panels + chunks - 1) / chunks * nr;
        g.n_chunks = (g.nc + g.n_chunk - 1) / g.n_chunk;
        for (g.pc = 0; g.pc < k; g.pc += kern->kc) {
            g.kc = k - g.pc < kern->kc ? k - g.pc : kern->kc;
            int64_t b_tasks = threads > 1 ? 2 * threads : 1;
            if (b_tasks > panels)
                b_tasks = panels;
            g.b_panels_per_task = (panels + b_tasks - 1) / b_tasks;
            b_tasks = (panels + g.b_panels_per_task - 1) / g.b_panels_per_task;
            fr_threadpool_run(pool, b_tasks, pack_b_task, &g);
            fr_threadpool_run(pool, g.m_blocks * g.n_chunks, compute_task, &g);
        }
    }
}
