/* Parameter groups: which learning-rate multiplier, weight decay and frozen flag a parameter gets,
 * chosen by name prefix (first match wins); 1-D tensors (biases, batch-norm) get no decay by default. */
#include "train/train_internal.h"

struct fr_param_settings fr_param_groups_resolve(const struct fr_param_group *groups, int n_groups,
                                                 float default_wd, const struct fr_tensor *p)
{
    struct fr_param_settings s = {1.0f, default_wd, false};
    bool decay_1d = false;
    for (int i = 0; i < n_groups; i++) {
        const struct fr_param_group *g = &groups[i];
        if (strncmp(p->name, g->prefix, strnlen(g->prefix, sizeof g->prefix)) != 0)
            continue;
        s.lr_mult = g->lr_mult > 0.0f ? g->lr_mult : 1.0f;
        if (g->weight_decay >= 0.0f)
            s.weight_decay = g->weight_decay;
        s.frozen = g->frozen;
        decay_1d = g->decay_1d;
        break;
    }
    if (p->ndim <= 1 && !decay_1d)
        s.weight_decay = 0.0f;
    return s;
}
