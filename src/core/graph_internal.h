/* The graph struct, shared by graph building (graph.c), planning (plan.c) and running (compute.c). */
#ifndef FRUGAL_GRAPH_INTERNAL_H
#define FRUGAL_GRAPH_INTERNAL_H

#include "core/internal.h"

struct fr_graph {
    struct fr_ctx *ctx;
    struct fr_tensor **nodes;
    int n_nodes, cap;
    uint8_t *in_graph; /* by tensor id */
    int in_graph_cap;

    struct fr_backend *backend;
    /* storage chunks of at most backend->max_buffer bytes: static ones first, then the arena's */
    struct fr_buffer **bufs;
    int n_bufs, n_static_bufs;
    bool planned;
    bool guard;
    uint8_t *fallback; /* per node: run on the CPU path with copies */
    struct fr_backend *cpu; /* for fallback nodes on a non-CPU backend */
    struct fr_exec ex;
    struct fr_graph_stats stats;
    char oom_hint[200]; /* fr_graph_oom_hint at plan time, handed to the backend at each run */
    /* guard regions to check after a run: (buffer, offset) pairs */
    struct fr_guard { struct fr_buffer *buf; size_t offset; struct fr_tensor *t; bool arena; } *guards;
    int n_guards;
    /* fr_graph_set_hook: called before node hook_at of each run */
    int hook_at;
    enum fr_status (*hook)(void *user);
    void *hook_user;
};

#define FR_GUARD_BYTES 64
#define FR_GUARD_VALUE 0xCB

/* true for nodes that compute nothing (leaves and pure views) */
static inline bool fr_node_is_noop(const struct fr_tensor *t)
{
    return t->op == FR_OP_NONE || t->op == FR_OP_VIEW;
}

/* flags that give a tensor its own static storage */
#define FR_STATIC_FLAGS (FR_FLAG_INPUT | FR_FLAG_OUTPUT | FR_FLAG_PARAM | FR_FLAG_STATE | FR_FLAG_GRAD | \
                         FR_FLAG_CONST | FR_FLAG_LOSS)

void fr_graph_release_storage(struct fr_graph *g);

/* What the graph needs on its device and a batch size to try (the batch: the outer size of the largest INPUT
 * tensor), for out-of-memory messages. */
void fr_graph_oom_hint(const struct fr_graph *g, size_t static_bytes, size_t arena_bytes, char *buf, size_t size);

#endif
