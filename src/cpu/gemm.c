/* fr_sgemm: the BLIS-style driver (blocking, shared packed B or B in place, per-thread packed A, thread
 * split, small-shape paths) and the runtime choice of micro-kernel family; kernels: gemm_kernel_<width>.c. */
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
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int64_t csc)
{
    int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1, brs = tb ? 1 : ldb, bcs = tb ? ldb : 1;
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++)
            ci[j * csc] = beta == 0.0f ? 0.0f : ci[j * csc] * beta;
        for (int64_t p = 0; p < k; p++) {
            float av = alpha * a[i * ars + p * acs];
            const float *bp = b + p * brs;
            for (int64_t j = 0; j < n; j++)
                ci[j * csc] += av * bp[j * bcs];
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
    int64_t lda, ldb, ldc, csc; /* C element (i,j) at c[i*ldc + j*csc] */
    float *c;
    /* current round: columns [jc, jc+nc), k blocks of kc_max rows starting at pc0 .. pc1 (exclusive) */
    int64_t jc, nc, pc0, pc1, kc_max;
    float *pb;            /* packed B of the round, shared: k block q at pb + q·kc_max·(panels·nr) */
    int64_t panels;       /* nr-column panels in [jc, jc+nc) */
    int64_t mc;           /* rows per A block (multiple of mr) */
    int64_t m_blocks;     /* A blocks per column */
    int64_t n_chunk;      /* columns per task (multiple of nr) */
    int64_t n_chunks;     /* tasks per A block */
    int64_t b_panels_per_task, b_tasks_per_k;
    /* B read in place (not transposed, one A block: packing it would not pay); only a partial last panel
     * is packed, one per k block, at pb + q·kc_max·nr */
    bool b_direct;
    int64_t nc_full; /* columns of [jc, jc+nc) in full panels */
};

static void pack_b_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    struct gemm_job *g = ctx;
    const struct fr_gemm_kernel *kern = g->kern;
    int64_t q = task / g->b_tasks_per_k, pc = g->pc0 + q * g->kc_max;
    int64_t kc = g->k - pc < g->kc_max ? g->k - pc : g->kc_max;
    int64_t j0 = task % g->b_tasks_per_k * g->b_panels_per_task * kern->nr;
    int64_t nc = g->nc - j0;
    if (nc > g->b_panels_per_task * kern->nr)
        nc = g->b_panels_per_task * kern->nr;
    int64_t rs = g->tb ? 1 : g->ldb, cs = g->tb ? g->ldb : 1;
    float *dst = g->pb + q * g->kc_max * g->panels * kern->nr + j0 * kc;
    if (g->b_direct) {
        j0 = g->nc_full, nc = g->nc - g->nc_full;
        dst = g->pb + q * g->kc_max * kern->nr;
    }
    kern->pack_b(kc, nc, g->b + pc * rs + (g->jc + j0) * cs, rs, cs, dst);
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
    float *c = g->c + i0 * g->ldc + (g->jc + j0) * g->csc;
    int64_t mc_pad = (mc + kern->mr - 1) / kern->mr * kern->mr;
    int64_t ars = g->ta ? 1 : g->lda, acs = g->ta ? g->lda : 1;
    float *pa = scratch_get(0, (size_t)(mc_pad * g->kc_max));
    int64_t nr = kern->nr;
    for (int64_t pc = g->pc0, q = 0; pc < g->pc1; pc += g->kc_max, q++) {
        int64_t kc = g->k - pc < g->kc_max ? g->k - pc : g->kc_max;
        float beta = pc == 0 ? g->beta : 1.0f;
        if (!pa) {
            int64_t brs = g->tb ? 1 : g->ldb, bcs = g->tb ? g->ldb : 1;
            gemm_simple(g->ta, g->tb, mc, nc, kc, g->alpha, g->a + i0 * ars + pc * acs, g->lda,
                        g->b + pc * brs + (g->jc + j0) * bcs, g->ldb, beta, c, g->ldc, g->csc);
            continue;
        }
        kern->pack_a(mc, kc, g->a + i0 * ars + pc * acs, ars, acs, pa);
        if (!g->b_direct) {
            kern->block(mc, nc, kc, pa, g->pb + q * g->kc_max * g->panels * nr + j0 * kc, nr * kc, nr, c, g->ldc,
                        g->csc, g->alpha, beta);
            continue;
        }
        int64_t nfull = g->nc_full - j0 < nc ? g->nc_full - j0 : nc;
        if (nfull > 0)
            kern->block(mc, nfull, kc, pa, g->b + pc * g->ldb + g->jc + j0, nr, g->ldb, c, g->ldc, g->csc, g->alpha,
                        beta);
        if (nc > nfull)
            kern->block(mc, nc - nfull, kc, pa, g->pb + q * g->kc_max * nr, nr * kc, nr, c + nfull * g->csc, g->ldc,
                        g->csc, g->alpha, beta);
    }
}

/* Picks the A block height and the number of column chunks per A block so that the tasks spread evenly
 * over the threads: estimated makespan = rounds of tasks × (kernel time + A packing time) of one task. */
static void choose_split(const struct fr_gemm_kernel *kern, int64_t m, int64_t n_panels, int64_t kc, int threads,
                         int64_t *mc_out, int64_t *m_blocks_out, int64_t *n_chunks_out)
{
    int64_t mr = kern->mr;
    int64_t mb0 = (m + kern->mc - 1) / kern->mc;
    int64_t m_panels = (m + mr - 1) / mr;
    double best = -1.0;
    for (int64_t mb = mb0; mb <= mb0 + 4 * threads && mb <= m_panels; mb++) {
        int64_t mc = ((m + mb - 1) / mb + mr - 1) / mr * mr;
        int64_t mbx = (m + mc - 1) / mc;
        for (int64_t nch = 1; nch <= 4 * threads && nch <= n_panels; nch++) {
            int64_t w = (n_panels + nch - 1) / nch; /* panels per chunk */
            int64_t nchx = (n_panels + w - 1) / w;
            int64_t tasks = mbx * nchx;
            int64_t rounds = (tasks + threads - 1) / threads;
            /* unit: one MR×NR rank-1 step of the micro-kernel (~mr·nr/32 cycles with 2 FMA pipes); packing
             * an A element costs ~1/24 of that, a task hand-off a few hundred */
            double task = (double)(mc / mr) * (double)w * (double)kc + (double)mc * (double)kc / 24.0;
            double cost = (double)rounds * task + (double)tasks * 300.0;
            if (best < 0.0 || cost < best) {
                best = cost;
                *mc_out = mc;
                *m_blocks_out = mbx;
                *n_chunks_out = nchx;
            }
            if (threads == 1)
                break;
        }
        if (threads == 1)
            break;
    }
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
    if ((double)m * (double)n * (double)k <= FR_GEMM_TINY_MACS) {
        gemm_simple(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1);
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
        .a = a, .b = b, .lda = lda, .ldb = ldb, .ldc = ldc, .csc = 1, .c = c,
    };
    if (n < kern->nr / 2 && m > n) {
        /* Few columns (fc2's n = 10): tiles of nr columns would be mostly padding, so compute
         * Cᵀ = op(B)ᵀ·op(A)ᵀ, whose rows are the short side; C is then written with strides (1, ldc). */
        g.ta = !trans_b, g.tb = !trans_a, g.m = n, g.n = m, g.a = b, g.lda = ldb, g.b = a, g.ldb = lda;
        g.ldc = 1, g.csc = ldc;
        m = g.m, n = g.n;
    }
    int64_t nr = kern->nr;
    /* Even k blocks no larger than the kernel's kc (a short last block wastes a pass over C). */
    int64_t k_blocks = (k + kern->kc - 1) / kern->kc;
    int64_t kc_max = (k + k_blocks - 1) / k_blocks;
    kc_max = (kc_max + 7) / 8 * 8 < kern->kc ? (kc_max + 7) / 8 * 8 : kern->kc;
    /* Short k: widen the B block (same buffer size) so there are fewer pack/compute rounds. */
    int64_t nc_lim = kern->kc * kern->nc / kc_max / nr * nr;
    nc_lim = nc_lim > kern->nc ? nc_lim : kern->nc;
    int64_t nc_max = n < nc_lim ? n : nc_lim;
    int64_t n_panels_max = (nc_max + nr - 1) / nr;
    choose_split(kern, m, n_panels_max, kc_max, threads, &g.mc, &g.m_blocks, &g.n_chunks);
    int64_t n_chunks = g.n_chunks;

    /* With several threads every round costs two hand-offs: pack as many k blocks of B per round as the
     * buffer allows (all of them for the model's shapes), so a small-m product is not barrier-bound. */
    int64_t k_per_round = 1;
    if (threads > 1) {
        k_per_round = kern->kc * kern->nc / (kc_max * n_panels_max * nr);
        k_per_round = k_per_round < 1 ? 1 : k_per_round > k_blocks ? k_blocks : k_per_round;
    }
    size_t pb_floats = (size_t)(k_per_round * kc_max) * (size_t)(n_panels_max * nr);
    g.pb = scratch_get(1, pb_floats);
    if (!g.pb) {
        gemm_simple(g.ta, g.tb, g.m, g.n, k, alpha, g.a, g.lda, g.b, g.ldb, beta, g.c, g.ldc, g.csc);
        return;
    }
    g.kc_max = kc_max;
    /* B read in place only when it is small (the per-image im2col GEMMs): measured, a large B read with
     * its own row stride (TLB misses, 4 KiB aliasing) is slower than packing it. */
    g.b_direct = !g.tb && g.m_blocks == 1 && (double)k * (double)n * sizeof(float) <= 512.0 * 1024.0;
    for (g.jc = 0; g.jc < n; g.jc += nc_max) {
        g.nc = n - g.jc < nc_max ? n - g.jc : nc_max;
        g.panels = (g.nc + nr - 1) / nr;
        int64_t chunks = n_chunks < g.panels ? n_chunks : g.panels;
        g.n_chunk = (g.panels + chunks - 1) / chunks * nr;
        g.n_chunks = (g.nc + g.n_chunk - 1) / g.n_chunk;
        int64_t b_tasks = threads > 1 ? 2 * threads : 1;
        if (b_tasks > g.panels)
            b_tasks = g.panels;
        g.b_panels_per_task = (g.panels + b_tasks - 1) / b_tasks;
        g.b_tasks_per_k = (g.panels + g.b_panels_per_task - 1) / g.b_panels_per_task;
        g.nc_full = g.nc / nr * nr;
        if (g.b_direct)
            g.b_tasks_per_k = g.nc_full < g.nc ? 1 : 0;
        for (g.pc0 = 0; g.pc0 < k; g.pc0 = g.pc1) {
            g.pc1 = g.pc0 + k_per_round * kc_max < k ? g.pc0 + k_per_round * kc_max : k;
            int64_t kb = (g.pc1 - g.pc0 + kc_max - 1) / kc_max;
            if (g.b_tasks_per_k > 0)
                fr_threadpool_run(pool, kb * g.b_tasks_per_k, pack_b_task, &g);
            fr_threadpool_run(pool, g.m_blocks * g.n_chunks, compute_task, &g);
        }
    }
}
