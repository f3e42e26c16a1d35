/* The CPU backend's persistent thread pool: run a function over task indices, no thread start per call. */
#ifndef FRUGAL_THREADPOOL_H
#define FRUGAL_THREADPOOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fr_threadpool;

/* Called once for each task index in [0, n_tasks) across the pool; `thread` is 0..n_threads-1
 * and is stable for the duration of one fr_threadpool_run call (use it to index scratch). */
typedef void (*fr_task_fn)(void *ctx, int64_t task, int thread);

/* n_threads <= 0: FRUGAL_THREADS, else the number of online cores. Returns NULL on failure. */
struct fr_threadpool *fr_threadpool_new(int n_threads);
void fr_threadpool_free(struct fr_threadpool *pool);
int fr_threadpool_size(const struct fr_threadpool *pool);

/* Runs fn(ctx, i, thread) for i in [0, n_tasks), the calling thread taking part; returns when all
 * are done. Tasks are handed out dynamically in order. Workers spin briefly, then sleep. */
void fr_threadpool_run(struct fr_threadpool *pool, int64_t n_tasks, fr_task_fn fn, void *ctx);

/* The process-wide default pool (created on first use). */
struct fr_threadpool *fr_threadpool_default(void);
/* Replace the default pool's size (0 = default rule). Not safe while a run is in flight. */
void fr_threadpool_set_default_threads(int n_threads);

#ifdef __cplusplus
}
#endif
#endif
