/* Parameter initialisation: PyTorch's Conv2d/Linear defaults (uniform +-1/sqrt(fan_in)), Kaiming-normal,
 * batch-norm ones/zeros; values drawn from Philox (FR_RNG_INIT) so they depend only on the seed, the
 * tensor's position in the model and the element index. */
#include <math.h>

#include "frugal/rng_host.h"
#include "nn/nn_internal.h"

static int position(const struct fr_model *m, const struct fr_tensor *t)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i] == t)
            return i;
    return -1;
}

static bool selected(const struct fr_tensor *t, const char *prefix)
{
    return t && (!prefix || strncmp(t->name, prefix, strlen(prefix)) == 0);
}

enum init_fill { FILL_UNIFORM, FILL_NORMAL, FILL_CONST };

static enum fr_status fill(const struct fr_model *m, struct fr_tensor *t, uint64_t seed, enum init_fill how, float a)
{
    if (!t->buffer)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "model init: '%s' has no storage (fr_model_alloc first)", t->name);
    int64_t n = fr_nelements(t);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "model init: out of memory");
    uint32_t pos = (uint32_t)position(m, t);
    for (int64_t i = 0; i < n; i++) {
        uint32_t blk = (uint32_t)(i / 2), j = (uint32_t)(i % 2);
        if (how == FILL_CONST) {
            v[i] = a;
        } else if (how == FILL_UNIFORM) {
            v[i] = a * (2.0f * fr_rng_uniform(seed, FR_RNG_INIT, pos, 0, (uint32_t)i) - 1.0f);
        } else { /* Box-Muller on a pair of draws; even/odd elements take cos/sin */
            double u1 = fr_rng_uniform_f64(seed, FR_RNG_INIT, pos, 1, 2 * blk);
            double u2 = fr_rng_uniform_f64(seed, FR_RNG_INIT, pos, 1, 2 * blk + 1);
            double r = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
            v[i] = (float)(a * r * (j ? sin(th) : cos(th)));
        }
    }
    enum fr_status st = fr_tensor_set(t, v, (size_t)n * sizeof *v);
    free(v);
    return st;
}

enum fr_status fr_model_init(struct fr_model *m, uint64_t seed, enum fr_init kind, const char *prefix)
{
    enum fr_status st = FR_STATUS_OK;
#define F(t, how, a)                                                         \
    do {                                                                     \
        if (st == FR_STATUS_OK && selected((t), prefix))                     \
            st = fill(m, (t), seed, (how), (a));                             \
    } while (0)
    for (int i = 0; i < m->n_layers && st == FR_STATUS_OK; i++) {
        struct layer *l = &m->layers[i];
        switch (l->kind) {
        case L_CONV:
        case L_LINEAR: {
            float bound = 1.0f / sqrtf((float)l->fan_in);
            if (kind == FR_INIT_KAIMING_NORMAL) {
                F(l->w, FILL_NORMAL, sqrtf(2.0f / (float)l->fan_in));
                F(l->b, FILL_CONST, 0.0f);
            } else {
                F(l->w, FILL_UNIFORM, bound);
                F(l->b, FILL_UNIFORM, bound);
            }
            break;
        }
        case L_SE: /* two 1x1 convs with bias */
            if (kind == FR_INIT_KAIMING_NORMAL) {
                F(l->w, FILL_NORMAL, sqrtf(2.0f / (float)l->fan_in));
                F(l->w2, FILL_NORMAL, sqrtf(2.0f / (float)l->fan_in2));
                F(l->b, FILL_CONST, 0.0f);
                F(l->b2, FILL_CONST, 0.0f);
            } else {
                F(l->w, FILL_UNIFORM, 1.0f / sqrtf((float)l->fan_in));
                F(l->b, FILL_UNIFORM, 1.0f / sqrtf((float)l->fan_in));
                F(l->w2, FILL_UNIFORM, 1.0f / sqrtf((float)l->fan_in2));
                F(l->b2, FILL_UNIFORM, 1.0f / sqrtf((float)l->fan_in2));
            }
            break;
        case L_BN:
            F(l->w, FILL_CONST, 1.0f);
            F(l->b, FILL_CONST, 0.0f);
            F(l->rm, FILL_CONST, 0.0f);
            F(l->rv, FILL_CONST, 1.0f);
            break;
        case L_RES_END:
            if (l->pw) {
                if (kind == FR_INIT_KAIMING_NORMAL)
                    F(l->pw, FILL_NORMAL, sqrtf(2.0f / (float)l->proj_fan_in));
                else
                    F(l->pw, FILL_UNIFORM, 1.0f / sqrtf((float)l->proj_fan_in));
                F(l->bn_w, FILL_CONST, 1.0f);
                F(l->bn_b, FILL_CONST, 0.0f);
                F(l->bn_rm, FILL_CONST, 0.0f);
                F(l->bn_rv, FILL_CONST, 1.0f);
            }
            break;
        default:
            break;
        }
    }
#undef F
    return st;
}
