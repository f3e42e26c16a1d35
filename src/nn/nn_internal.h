/* The model struct shared by the layer stack (model.c), the built-in models (models.c) and init (init.c). */
#ifndef FRUGAL_NN_INTERNAL_H
#define FRUGAL_NN_INTERNAL_H

#include "core/internal.h"
#include "frugal/model.h"

enum layer_kind {
    L_CONV, L_LINEAR, L_BN, L_ACT, L_MAXPOOL, L_AVGPOOL, L_ADAPTIVE, L_GAP, L_FLATTEN, L_DROPOUT, L_RES_BEGIN,
    L_RES_END, L_SE
};

struct shape {
    int c, h, w;
    bool flat; /* [N, c] */
};

struct layer {
    enum layer_kind kind;
    char name[48];
    int k, stride, pad;       /* conv / pool; adaptive: k = output height, pad = output width */
    int groups, dil;          /* conv */
    bool ceil_mode, exclude_pad; /* pool */
    enum fr_act act, gate;    /* activation; squeeze-excitation: act after fc1, gate after fc2 */
    float f;                  /* dropout p, drop-path survival, leaky-relu slope, batch-norm eps */
    float momentum;           /* batch-norm */
    int fan_in;               /* conv / linear / SE fc1: for init */
    int fan_in2;              /* SE fc2 */
    struct fr_tensor *w, *b, *rm, *rv;
    struct fr_tensor *w2, *b2; /* SE fc2 */
    /* residual end with a projection: conv 1x1 (pw) + batch-norm (bn_w, bn_b, bn_rm, bn_rv) */
    struct fr_tensor *pw, *bn_w, *bn_b, *bn_rm, *bn_rv;
    int proj_fan_in;
    struct shape in;          /* of the layer's input */
};

#define FR_MODEL_MAX_DEPTH 8

struct fr_model {
    struct fr_ctx *ctx;
    struct shape in, cur;
    struct layer *layers;
    int n_layers, cap_layers;
    struct fr_tensor **tensors; /* state_dict order */
    int n_tensors, cap_tensors;
    struct shape res_stack[FR_MODEL_MAX_DEPTH];
    int res_layer[FR_MODEL_MAX_DEPTH];
    int res_depth;
    int norm_ch;                /* > 0: inputs are normalised (x - mean) / std per channel first */
    float norm_mean[4], norm_std[4];
    int64_t sync_bn_batch;      /* > 0: training forwards use fr_batchnorm_sync over a batch of this many rows */
    int64_t first_row;          /* training forwards' dropout/drop-path rows start this far after the graph's first
                                   sample (fr_model_set_first_row) */
};

#endif
