/* libFuzzer target: model files (src/nn/modelfile.c): the text is parsed and the model built for an input shape and
 * class count picked by the first byte, then freed. */
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
    if (size < 1)
        return 0;
    static const int sizes[4] = {1, 8, 28, 32};
    int c = 1 + (data[0] & 3), hw = sizes[(data[0] >> 2) & 3], k = 1 + (data[0] >> 4);
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_model *m = NULL;
    if (ctx && fr_model_from_text(ctx, text, "fuzz.txt", c, hw, hw, k, &m) == FR_STATUS_OK) {
        volatile int64_t n = fr_model_n_params(m) + fr_model_n_tensors(m); /* walks what was built */
        (void)n;
    }
    fr_model_free(m);
    fr_ctx_free(ctx);
    free(text);
    return 0;
}
