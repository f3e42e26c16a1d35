/* Graphs: the nodes reachable from chosen outputs in topological order, planned once, run many times.
 *
 *   struct fr_graph *g = fr_graph_new(ctx);
 *   fr_graph_add(g, loss);                       // forward nodes
 *   fr_graph_backward(g, loss);                  // gradient nodes for every non-frozen PARAM
 *   fr_optim_build(opt, g, params, n_params);    // optimizer update nodes, appended last (optim.h)
 *   fr_graph_plan(g, backend);                   // storage: leaves static, intermediates by liveness
 *   float l;
 *   for (int64_t step = 0; step < steps; step++) {
 *       fr_tensor_set(x, images_f32, bytes);  fr_graph_compute(g);  fr_tensor_get(loss, &l, sizeof l);
 *   }
 */
#ifndef FRUGAL_GRAPH_H
#define FRUGAL_GRAPH_H

#include "frugal/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_graph;
struct fr_backend;

struct fr_graph *fr_graph_new(struct fr_ctx *ctx);
void fr_graph_free(struct fr_graph *g);

/* Adds `t` and every ancestor not yet in the graph, in topological order; marks `t` as OUTPUT. */
enum fr_status fr_graph_add(struct fr_graph *g, struct fr_tensor *t);

/* Reverse-mode autodiff: appends the nodes computing d(loss)/d(p) for every PARAM p that is not
 * FROZEN and that `loss` depends on; p->grad is set and flagged GRAD. Gradients of tensors used
 * several times are summed. `loss` must hold a single element. */
enum fr_status fr_graph_backward(struct fr_graph *g, struct fr_tensor *loss);

int fr_graph_n_nodes(const struct fr_graph *g);
struct fr_tensor *fr_graph_node(const struct fr_graph *g, int i);

/* Assigns storage on `backend`: leaves without storage and INPUT/OUTPUT/PARAM/STATE/GRAD tensors get
 * static storage; other intermediates share one arena by liveness. Call again after adding nodes. */
enum fr_status fr_graph_plan(struct fr_graph *g, struct fr_backend *backend);

/* Runs every node once; blocks until results can be read. Increments the step counter afterwards. */
enum fr_status fr_graph_compute(struct fr_graph *g);
/* The same without waiting for the device at the end (nodes that fall back to the CPU path still wait for their
 * inputs): a later read, synchronize or fr_graph_compute waits for it. */
enum fr_status fr_graph_enqueue(struct fr_graph *g);

/* Calls fn(user) in every run after nodes [0, before) and before the others, with the device synchronised (e.g.
 * between a training graph's backward pass and its optimizer update, to combine the gradients of several
 * processes); an error from fn ends the run with it. fn NULL (or before outside the nodes) removes it. */
void fr_graph_set_hook(struct fr_graph *g, int before, enum fr_status (*fn)(void *user), void *user);

/* Run-time settings read by the kernels, changed without rebuilding the graph. */
void fr_graph_set_training(struct fr_graph *g, bool training); /* dropout on, batch-norm batch stats */
bool fr_graph_training(const struct fr_graph *g);
void fr_graph_set_seed(struct fr_graph *g, uint64_t seed);
void fr_graph_set_step(struct fr_graph *g, uint32_t step); /* RNG counter for dropout/noise */
uint32_t fr_graph_step(const struct fr_graph *g);
/* The batch's first sample within a larger batch split across processes (0): dropout and drop-path draw for sample
 * i what sample first + i would draw, so the noise does not depend on how the batch is split. */
void fr_graph_set_first_sample(struct fr_graph *g, uint32_t first);

struct fr_graph_stats {
    size_t static_bytes; /* leaves, outputs, params, state, grads */
    size_t arena_bytes;  /* shared intermediates after liveness planning */
    size_t naive_bytes;  /* what the intermediates would take without sharing */
    int n_nodes;
    int fallback_ops;    /* nodes the backend could not run, executed on the CPU path with copies */
};
void fr_graph_get_stats(const struct fr_graph *g, struct fr_graph_stats *stats);

/* Debug aid (tests use it): when on at plan time, every planned tensor is followed by guard bytes that
 * fr_graph_compute checks after each run (FR_STATUS_INVALID_ARGUMENT naming the tensor if damaged).
 * Also switched on by FRUGAL_GUARD=1. */
void fr_graph_set_guard(struct fr_graph *g, bool on);

#ifdef __cplusplus
}
#endif
#endif
