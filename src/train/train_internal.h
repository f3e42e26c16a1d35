/* Private pieces of src/train shared by the optimizer builder and the parameter groups. */
#ifndef FRUGAL_TRAIN_INTERNAL_H
#define FRUGAL_TRAIN_INTERNAL_H

#include "core/internal.h"
#include "frugal/optim.h"

struct fr_param_settings {
    float lr_mult, weight_decay;
    bool frozen;
};

/* Effective settings of a parameter under the groups (first prefix match wins), the default weight
 * decay applying to tensors of 2+ dims only unless the group sets decay_1d. */
struct fr_param_settings fr_param_groups_resolve(const struct fr_param_group *groups, int n_groups,
                                                 float default_wd, const struct fr_tensor *p);

#endif
