/* libFuzzer target: augmentation policy strings (src/augment/policy.c): parsed, then the output size and one
 * program per sample drawn for an input size picked by the first two bytes (and CutMix/MixUp records). */
#include <stdlib.h>
#include <string.h>

#include "frugal/frugal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fr_log_set_callback(NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int h = 1 + data[0] % 64, w = 1 + data[1] % 64;
    char *spec = malloc(size - 1);
    if (!spec)
        return 0;
    memcpy(spec, data + 2, size - 2);
    spec[size - 2] = 0;
    struct fr_aug_policy *pol = NULL;
    if (fr_aug_policy_parse(spec, &pol) == FR_STATUS_OK) {
        int oh, ow, k = fr_aug_policy_max_ops(pol);
        fr_aug_policy_out_size(pol, h, w, &oh, &ow);
        float *prog = k > 0 && k < 1024 ? malloc(sizeof(float) * FR_AUG_REC * (size_t)k) : NULL;
        for (uint32_t s = 0; prog && s < 4; s++)
            fr_aug_policy_draw(pol, 7, s, s, h, w, prog);
        free(prog);
        const struct fr_aug_mix_cfg *mix = fr_aug_policy_mix(pol);
        float rec[4 * FR_AUG_MIX_REC];
        if (mix && oh > 0 && ow > 0)
            fr_aug_mix_draw(mix, 7, 0, 4, oh, ow, rec);
        fr_aug_policy_free(pol);
    }
    free(spec);
    return 0;
}
