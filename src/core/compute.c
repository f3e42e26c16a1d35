/* Running a planned graph: runs of supported nodes go to the backend in one call; a node the backend
 * cannot run executes on the CPU path with copies (counted in fallback_ops, FRUGAL_DEBUG=sched). */
#include "core/graph_internal.h"

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
    if (k >= 0 && g->guards[k].buf == g->arena_buf &&
        (st = t->buffer->backend->iface->buffer_set(g->guards[k].buf, g->guards[k].offset, pat,
                                                                sizeof pat)) != FR_STATUS_OK)
        return st;
    st = g->fallback[i] ? run_fallback(g, t) : g->backend->iface->graph_compute(g->backend, &t, 1, &g->ex);
    if (st == FR_STATUS_OK && g->backend->iface->synchronize)
        st = g->backend->iface->synchronize(g->backend);
    if (st == FR_STATUS_OK && k >= 0)
        st = fr_graph_check_guard(g, k);
    return st;
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
    if (g->guard) {
        for (int i = 0; i < g->n_nodes && st == FR_STATUS_OK; i++)
            if (!fr_node_is_noop(g->nodes[i]))
                st = guarded_node(g, i);
        /* static tensors (inputs, params, outputs) are never reused: their guards must still be intact */
        for (int k = 0; k < g->n_guards && st == FR_STATUS_OK; k++)
            if (g->guards[k].buf == g->static_buf)
                st = fr_graph_check_guard(g, k);
        g->ex.step++;
        return st;
    }
    int i = 0;
    while (i < g->n_nodes && st == FR_STATUS_OK) {
        if (fr_node_is_noop(g->nodes[i])) {
            i++;
            continue;
        }
        if (g->fallback[i]) {
            if (b->iface->synchronize && (st = b->iface->synchronize(b)) != FR_STATUS_OK)
                break;
            st = run_fallback(g, g->nodes[i]);
            i++;
            continue;
        }
        int j = i;
        while (j < g->n_nodes && !g->fallback[j])
            j++;
        st = b->iface->graph_compute(b, g->nodes + i, j - i, &g->ex);
        i = j;
    }
    if (st == FR_STATUS_OK && sync && b->iface->synchronize)
        st = b->iface->synchronize(b);
    g->ex.step++;
    return st;
}
