/* Learning-rate schedules (constant, step, cosine, each with an optional linear warm-up): a pure
 * function of the step, written into the optimizer's lr tensor between steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/optim.h"

float fr_schedule_lr(const struct fr_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return s->base_lr * (float)(step + 1) / (float)s->warmup_steps;
    int64_t t = step - (s->warmup_steps > 0 ? s->warmup_steps : 0);
    switch (s->kind) {
    case FR_SCHED_STEP:
        if (s->step_size <= 0)
            return s->base_lr;
        return s->base_lr * powf(s->gamma, (float)(t / s->step_size));
    case FR_SCHED_COSINE: {
        int64_t span = s->total_steps - (s->warmup_steps > 0 ? s->warmup_steps : 0);
        if (span <= 0 || t >= span)
            return s->min_lr;
        double c = 0.5 * (1.0 + cos(M_PI * (double)t / (double)span));
        return (float)(s->min_lr + (s->base_lr - s->min_lr) * c);
    }
    case FR_SCHED_CONSTANT:
    default:
        return s->base_lr;
    }
}

enum fr_status fr_schedule_parse(const char *spec, struct fr_schedule *s)
{
    char buf[128];
    if (!spec || strlen(spec) >= sizeof buf)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "schedule: missing or too long spec");
    strcpy(buf, spec);
    char *warm = strstr(buf, ",warmup=");
    if (warm) {
        char *end;
        long long w = strtoll(warm + 8, &end, 10);
        if (*end || w < 0)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "schedule '%s': bad warmup", spec);
        s->warmup_steps = w;
        *warm = 0;
    }
    if (strcmp(buf, "constant") == 0) {
        s->kind = FR_SCHED_CONSTANT;
    } else if (strcmp(buf, "cosine") == 0) {
        s->kind = FR_SCHED_COSINE;
    } else if (strncmp(buf, "step:", 5) == 0) {
        char *end;
        long long size = strtoll(buf + 5, &end, 10);
        if (size <= 0 || *end != ':')
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "schedule '%s': want step:SIZE:GAMMA", spec);
        char *end2;
        double gamma = strtod(end + 1, &end2);
        if (*end2 || !(gamma > 0))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "schedule '%s': want step:SIZE:GAMMA", spec);
        s->kind = FR_SCHED_STEP;
        s->step_size = size;
        s->gamma = (float)gamma;
    } else {
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "schedule '%s': unknown (constant, step:SIZE:GAMMA, cosine)", spec);
    }
    return FR_STATUS_OK;
}
