/* frugal: data-efficient learning (augmentation, transfer, distillation, self-training) on any
 * OpenCL device, with a pure-C CPU path. This umbrella header includes the whole public API.
 *
 *   struct fr_backend *be;  fr_backend_open("auto", &be);
 *   struct fr_ctx *ctx = fr_ctx_new();
 *   struct fr_tensor *a = fr_tensor_new_2d(ctx, FR_F32, 2, 3);  fr_tensor_set_flags(a, FR_FLAG_INPUT);
 *   struct fr_tensor *y = fr_softmax(ctx, fr_scale(ctx, a, 2.0f), -1);
 *   struct fr_graph *g = fr_graph_new(ctx);  fr_graph_add(g, y);  fr_graph_plan(g, be);
 *   float data[6] = {1, 2, 3, 4, 5, 6}, out[6];
 *   fr_tensor_set(a, data, sizeof data);  fr_graph_compute(g);  fr_tensor_get(y, out, sizeof out);
 */
#ifndef FRUGAL_H
#define FRUGAL_H

#include "frugal/status.h"
#include "frugal/bindings.h"
#include "frugal/tensor.h"
#include "frugal/ops.h"
#include "frugal/graph.h"
#include "frugal/backend.h"
#include "frugal/device.h"
#include "frugal/profile.h"
#include "frugal/nn.h"
#include "frugal/loss.h"
#include "frugal/optim.h"
#include "frugal/model.h"
#include "frugal/augment.h"
#include "frugal/data.h"
#include "frugal/io.h"
#include "frugal/recipes.h"
#include "frugal/bench.h"
#include "frugal/rng_host.h"
#include "frugal/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0" */
const char *fr_version(void);

#ifdef __cplusplus
}
#endif
#endif
