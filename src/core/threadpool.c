/* A persistent pthread pool: workers claim tasks with a CAS on a generation+index word, spin briefly, then
 * sleep on a condvar. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 20000

/* The job word packs a generation (which run) and the next task index, so a worker claims a task with one
 * compare-and-swap that also proves the run is still the one it looked at. The caller waits only for tasks
 * that were claimed, never for a worker to wake up: on a loaded machine a descheduled worker just takes no
 * part, instead of stalling every run (and every op) until the scheduler gets round to it. */
#define IDX_BITS 44
#define IDX_MASK ((UINT64_C(1) << IDX_BITS) - 1)

struct fr_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    atomic_int stop;
    _Atomic uint64_t job;     /* generation << IDX_BITS | next task index */
    atomic_llong n_tasks[2];  /* per generation parity: a late reader of an old run's count fails its CAS */
    fr_task_fn fn;            /* stable while any task of the run is claimed but not done */
    void *ctx;
    atomic_llong done;        /* tasks of the current run finished */
    pthread_mutex_t run_mu;   /* one run at a time */
};

struct worker_arg {
    struct fr_threadpool *pool;
    int index;
};

/* Claims and runs tasks of the run in `job` until none is left; returns the generation it looked at. */
static uint64_t work(struct fr_threadpool *p, int thread)
{
    uint64_t j = atomic_load_explicit(&p->job, memory_order_acquire);
    for (;;) {
        uint64_t gen = j >> IDX_BITS, i = j & IDX_MASK;
        if ((long long)i >= atomic_load_explicit(&p->n_tasks[gen & 1], memory_order_relaxed))
            return gen;
        if (!atomic_compare_exchange_weak_explicit(&p->job, &j, j + 1, memory_order_acq_rel, memory_order_acquire))
            continue; /* j now holds the current word */
        /* the claim holds the run open: its count, fn and ctx cannot change until this task is counted done */
        long long n = atomic_load_explicit(&p->n_tasks[gen & 1], memory_order_relaxed);
        p->fn(p->ctx, (int64_t)i, thread);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == n) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
        j = atomic_load_explicit(&p->job, memory_order_acquire);
    }
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct fr_threadpool *p = wa->pool;
    int index = wa->index;
    free(wa);
    for (;;) {
        uint64_t seen = work(p, index);
        int spins = 0;
        while ((atomic_load(&p->job) >> IDX_BITS) == seen && !atomic_load(&p->stop) && spins < SPIN_ITERS)
            spins++;
        if ((atomic_load(&p->job) >> IDX_BITS) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((atomic_load(&p->job) >> IDX_BITS) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
    }
}

static int default_threads(void)
{
    const char *e = getenv("FRUGAL_THREADS");
    if (e && atoi(e) > 0)
        return atoi(e);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

struct fr_threadpool *fr_threadpool_new(int n_threads)
{
    if (n_threads <= 0)
        n_threads = default_threads();
    struct fr_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->pool = p, wa->index = i, pthread_create(&p->threads[i], NULL, worker_main, wa) != 0)) {
            free(wa);
            p->n_threads = i; /* run with what started */
            break;
        }
    }
    return p;
}

void fr_threadpool_free(struct fr_threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

int fr_threadpool_size(const struct fr_threadpool *p) { return p ? p->n_threads : 1; }

void fr_threadpool_run(struct fr_threadpool *p, int64_t n_tasks, fr_task_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int64_t i = 0; i < n_tasks; i++)
            fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    /* every task of the previous run is done, so nobody reads fn, ctx or this parity's count now */
    uint64_t gen = (atomic_load(&p->job) >> IDX_BITS) + 1;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->n_tasks[gen & 1], n_tasks, memory_order_relaxed);
    atomic_store(&p->done, 0);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->job, (gen & ((UINT64_C(1) << (64 - IDX_BITS)) - 1)) << IDX_BITS, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    work(p, 0);
    int spins = 0;
    while (atomic_load(&p->done) < n_tasks && spins < SPIN_ITERS)
        spins++;
    if (atomic_load(&p->done) < n_tasks) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->done) < n_tasks)
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->run_mu);
}

static struct fr_threadpool *default_pool;
static int default_pool_threads;
static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child (e.g. a Python DataLoader worker) has none of the parent's worker threads and may have
 * inherited a lock held by one of them: it forgets the parent's default pool (leaked, not freed) and
 * starts its own on first use. */
static void atfork_prepare(void) { pthread_mutex_lock(&default_mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&default_mu); }
static void atfork_child(void)
{
    default_pool = NULL;
    pthread_mutex_init(&default_mu, NULL);
}
static void atfork_register(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

struct fr_threadpool *fr_threadpool_default(void)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&default_mu);
    if (!default_pool)
        default_pool = fr_threadpool_new(default_pool_threads);
    pthread_mutex_unlock(&default_mu);
    return default_pool;
}

void fr_threadpool_set_default_threads(int n_threads)
{
    pthread_mutex_lock(&default_mu);
    default_pool_threads = n_threads;
    if (default_pool && (n_threads <= 0 ? default_threads() : n_threads) != default_pool->n_threads) {
        fr_threadpool_free(default_pool);
        default_pool = NULL;
    }
    pthread_mutex_unlock(&default_mu);
}
