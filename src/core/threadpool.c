/* A persistent pthread pool: workers spin briefly on a generation counter, then sleep on a condvar. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 20000

struct fr_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    atomic_uint generation;
    atomic_int stop;
    /* the current job */
    fr_task_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_llong next;
    atomic_int active; /* workers still inside the current job */
    pthread_mutex_t run_mu; /* one job at a time */
};

struct worker_arg {
    struct fr_threadpool *pool;
    int index;
};

static void work(struct fr_threadpool *p, int thread)
{
    for (;;) {
        long long i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks)
            break;
        p->fn(p->ctx, i, thread);
    }
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct fr_threadpool *p = wa->pool;
    int index = wa->index;
    free(wa);
    /* generation 0 is the pool's creation: a job posted before this thread first runs is still seen */
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop) && spins < SPIN_ITERS)
            spins++;
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = atomic_load(&p->generation);
        work(p, index);
        if (atomic_fetch_sub(&p->active, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
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
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->active, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    work(p, 0);
    int spins = 0;
    while (atomic_load(&p->active) > 0 && spins < SPIN_ITERS)
        spins++;
    if (atomic_load(&p->active) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->active) > 0)
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->run_mu);
}

static struct fr_threadpool *default_pool;
static int default_pool_threads;
static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;

struct fr_threadpool *fr_threadpool_default(void)
{
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
