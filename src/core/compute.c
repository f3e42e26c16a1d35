/* Running a planned graph: each node goes to the backend, which may queue it without waiting; a node the
 * backend cannot run executes on the CPU path with copies (counted in fallback_ops, FRUGAL_DEBUG=sched);
 * per-node timing when the backend is profiled. */
#include <time.h>

#include "core/graph_internal.h"
#include "core/profile_internal.h"

enum fr_status fr_graph_check_guard(struct fr_graph *g, int k);

/* Copies of a node's sources and storage into host memory, the CPU kernel, and the result back. */
static enum fr_status run_fallback(struct fr_graph *g, struct fr_tensor *node)
{
    if (!g->cpu && !(g->cpu = fr_backend_cpu_new(0)))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "fallback: cannot create the CPU backend");
    struct fr_tensor shadow[FR_MAX_SRC + 1];
    struct fr_buffer *bufs[FR_MAX_SRC + 1] = {0};
    enum fr_status st = FR_STATUS_OK;
    struct fr_tensor *dst = &shadow[FR_MAX_SRC];
    *dst = *node;
    for (int s = 0; s <= FR_MAX_SRC && st == FR_STATUS_OK; s++) {
        struct fr_tensor *orig = s < FR_MAX_SRC ? node->src[s] : node;
        if (!orig)
            continue;
        struct fr_tensor *sh = &shadow[s];
        if (s < FR_MAX_SRC) {
            *sh = *orig;
            dst->src[s] = sh;
        }
        size_t bytes = fr_nbytes(orig);
        if ((st = fr_buffer_alloc(g->cpu, bytes, &bufs[s])) != FR_STATUS_OK)
            break;
        /* sources always, the destination when it is written in place */
        if (s < FR_MAX_SRC || node->view_src)
            st = orig->buffer->backend->iface->buffer_get(orig->buffer, orig->offset, bufs[s]->host, bytes);
        sh->buffer = bufs[s];
        sh->offset = 0;
        sh->view_src = NULL;
    }
    if (st == FR_STATUS_OK)
        st = g->cpu->iface->graph_compute(g->cpu, &dst, 1, &g->ex);
    if (st == FR_STATUS_OK)
        st = node->buffer->backend->iface->buffer_set(node->buffer, node->offset, bufs[FR_MAX_SRC]->host,
                                                      fr_nbytes(node));
    /* STATE sources that kernels update as a side effect (optimizer moments, running statistics) go back too */
    for (int s = 0; s < FR_MAX_SRC && st == FR_STATUS_OK; s++) {
        struct fr_tensor *orig = node->src[s];
        if (orig && bufs[s] && (orig->flags & FR_FLAG_STATE) && orig != node->view_src)
            st = orig->buffer->backend->iface->buffer_set(orig->buffer, orig->offset, bufs[s]->host, fr_nbytes(orig));
    }
    for (int s = 0; s <= FR_MAX_SRC; s++)
        fr_buffer_free(bufs[s]);
    return st;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Node i on the CPU path with copies: the device's queue is drained first. */
static enum fr_status fallback_node(struct fr_graph *g, int i)
{
    struct fr_backend *b = g->backend;
    struct fr_tensor *t = g->nodes[i];
    enum fr_status st = b->iface->synchronize ? b->iface->synchronize(b) : FR_STATUS_OK;
    double t0 = b->prof ? now_ms() : 0;
    if (st == FR_STATUS_OK)
        st = run_fallback(g, t);
    if (st == FR_STATUS_OK && b->prof) {
        char name[48];
        snprintf(name, sizeof name, "%s (CPU fallback)", fr_op_name(t->op));
        fr_prof_add(b, fr_prof_phase(b), name, NULL, now_ms() - t0, -1, fr_nelements(t));
    }
    return st;
}

/* Node i on the graph's backend. A device that turns out unable to run it (FR_STATUS_UNSUPPORTED: a kernel
 * program that does not build there, an operand beyond its indices) has it on the CPU path from now on,
 * counted as a fallback. The CPU path is timed here when profiled (device backends time themselves). */
static enum fr_status run_node(struct fr_graph *g, int i)
{
    struct fr_backend *b = g->backend;
    struct fr_tensor *t = g->nodes[i];
    if (g->fallback[i])
        return fallback_node(g, i);
    bool timed = b->prof && b->kind == FR_BACKEND_CPU;
    double t0 = timed ? now_ms() : 0;
    enum fr_status st = b->iface->graph_compute(b, &t, 1, &g->ex);
    if (st == FR_STATUS_OK && timed)
        fr_prof_add(b, fr_prof_phase(b), fr_op_name(t->op), NULL, now_ms() - t0, -1, fr_nelements(t));
    if (st != FR_STATUS_UNSUPPORTED || b->kind == FR_BACKEND_CPU)
        return st;
    if (fr_debug_enabled("sched"))
        fr_log(FR_LOG_WARN, "sched: %s (%s) moves to the CPU path on %s: %s", t->name[0] ? t->name : fr_op_name(t->op),
               fr_op_name(t->op), b->name, fr_last_error());
    fr_clear_error();
    g->fallback[i] = 1;
    g->stats.fallback_ops++;
    return fallback_node(g, i);
}

/* Consecutive in-place updates of one op (every optimizer update of a step) go to a device backend in one
 * call, which may launch them as one kernel: the span [i, *end) of nodes of node i's op with view_src set,
 * none on the CPU path, no-ops in between; its length in nodes of that op. */
static int update_run(const struct fr_graph *g, int i, int *end)
{
    const struct fr_tensor *t = g->nodes[i];
    int k = 1, j = i + 1, last = i;
    if (t->view_src && g->backend->kind != FR_BACKEND_CPU && !g->fallback[i])
        for (; j < g->n_nodes; j++) {
            const struct fr_tensor *u = g->nodes[j];
            if (fr_node_is_noop(u))
                continue;
            if (u->op != t->op || !u->view_src || g->fallback[j])
                break;
            k++;
            last = j;
        }
    *end = last + 1;
    return k;
}

/* Nodes [i, end) in one backend call; if the device cannot run their op, all of them take the CPU path
 * (the op's program is built before anything of the run is enqueued). */
static enum fr_status run_updates(struct fr_graph *g, int i, int end)
{
    struct fr_backend *b = g->backend;
    enum fr_status st = b->iface->graph_compute(b, g->nodes + i, end - i, &g->ex);
    if (st != FR_STATUS_UNSUPPORTED)
        return st;
    fr_clear_error();
    st = FR_STATUS_OK;
    for (int j = i; j < end && st == FR_STATUS_OK; j++)
        if (!fr_node_is_noop(g->nodes[j])) {
            g->fallback[j] = 1;
            g->stats.fallback_ops++;
            st = fallback_node(g, j);
        }
    return st;
}

/* Guard mode runs node by node: the guard after a node's output is rewritten just before the node runs
 * and checked just after, since arena blocks are legitimately reused once their tensor is dead. */
static enum fr_status guarded_node(struct fr_graph *g, int i)
{
    enum fr_status st;
    struct fr_tensor *t = g->nodes[i];
    int k = -1;
    for (int j = 0; j < g->n_guards; j++)
        if (g->guards[j].t == t)
            k = j;
    uint8_t pat[FR_GUARD_BYTES];
    memset(pat, FR_GUARD_VALUE, sizeof pat);
    if (k >= 0 && g->guards[k].arena &&
        (st = t->buffer->backend->iface->buffer_set(g->guards[k].buf, g->guards[k].offset, pat, sizeof pat)) !=
            FR_STATUS_OK)
        return st;
    st = run_node(g, i);
    if (st == FR_STATUS_OK && g->backend->iface->synchronize)
        st = g->backend->iface->synchronize(g->backend);
    if (st == FR_STATUS_OK && k >= 0)
        st = fr_graph_check_guard(g, k);
    return st;
}

void fr_graph_set_hook(struct fr_graph *g, int before, enum fr_status (*fn)(void *user), void *user)
{
    g->hook_at = fn && before > 0 && before < g->n_nodes ? before : -1;
    g->hook = g->hook_at >= 0 ? fn : NULL;
    g->hook_user = user;
}

static enum fr_status run(struct fr_graph *g, bool sync);
enum fr_status fr_graph_compute(struct fr_graph *g) { return run(g, true); }
enum fr_status fr_graph_enqueue(struct fr_graph *g) { return run(g, false); }

static enum fr_status run(struct fr_graph *g, bool sync)
{
    if (!g->planned)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "graph: not planned (call fr_graph_plan after adding nodes)");
    struct fr_backend *b = g->backend;
    enum fr_status st = FR_STATUS_OK;
    fr_prof_run_begin(b, g->ex.training);
    memcpy(b->oom_hint, g->oom_hint, sizeof b->oom_hint); /* out of memory from here on: this graph */
    for (int i = 0; i < g->n_nodes && st == FR_STATUS_OK; i++) {
        if (i == g->hook_at && g->hook) { /* fr_graph_set_hook: the nodes before it done, then the host's turn */
            if (b->iface->synchronize)
                st = b->iface->synchronize(b);
            if (st == FR_STATUS_OK)
                st = g->hook(g->hook_user);
            if (st != FR_STATUS_OK)
                break;
        }
        if (fr_node_is_noop(g->nodes[i]))
            continue;
        int end;
        if (g->guard || update_run(g, i, &end) == 1) {
            st = g->guard ? guarded_node(g, i) : run_node(g, i);
            continue;
        }
        if (g->hook && i < g->hook_at && end > g->hook_at)
            end = g->hook_at; /* a run of updates never crosses the hook */
        st = run_updates(g, i, end);
        i = end - 1;
    }
    /* static tensors (inputs, params, outputs) are never reused: their guards must still be intact */
    for (int k = 0; k < g->n_guards && st == FR_STATUS_OK; k++)
        if (!g->guards[k].arena)
            st = fr_graph_check_guard(g, k);
    if (st == FR_STATUS_OK && sync && b->iface->synchronize)
        st = b->iface->synchronize(b);
    fr_prof_run_end(b);
    g->ex.step++;
    return st;
}
