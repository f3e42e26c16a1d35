/* Private pieces of src/recipes shared by the network and training-loop files. */
#ifndef FRUGAL_RECIPES_INTERNAL_H
#define FRUGAL_RECIPES_INTERNAL_H

#include "frugal/recipes.h"

/* src's architecture built in ctx (another net's) with a copy of its weights, for running inside that net's graphs
 * (a teacher in the training graph): every tensor renamed prefix + name, frozen (batch-norm uses its running
 * statistics), not a parameter or state of ctx (never trained, saved or reloaded). Free the model struct when the
 * graphs are built; its tensors belong to ctx. */
enum fr_status fr_net_model_copy(const struct fr_net *src, struct fr_ctx *ctx, struct fr_backend *be,
                                 const char *prefix, struct fr_model **out);

/* Every parameter and state tensor of the net's context that has storage (the model, the optimizer's moments and
 * step count), by name, in creation order; *n of them (NULL: out of memory). A trainer built again for the same
 * model (--balance speed) leaves its predecessor's state tensors in the context under the same names: only the
 * newest of each name is listed, the one the current trainer uses. */
struct fr_named_tensor;
struct fr_named_tensor *fr_net_state_tensors(const struct fr_net *net, int *n);

#endif
