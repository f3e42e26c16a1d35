/* libFuzzer target: IDX images (+ labels) from memory, plain or gzip. Input: 2 bytes split point, then the bytes. */
#include <stddef.h>
#include <stdint.h>

#include "frugal/data.h"

/* results go here so the reads are not optimised away */
static volatile unsigned sink;

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
    size_t split = (size_t)(data[0] | data[1] << 8);
    data += 2, size -= 2;
    struct fr_dataset *ds = NULL;
    if (split == 0 || split >= size) {
        if (fr_dataset_idx_from_memory(data, size, NULL, 0, "fuzz", &ds) == FR_STATUS_OK)
            fr_dataset_free(ds);
        return 0;
    }
    if (fr_dataset_idx_from_memory(data, split, data + split, size - split, "fuzz", &ds) == FR_STATUS_OK) {
        /* touch every label and pixel so a wrong size shows up under ASan */
        for (int64_t i = 0; i < ds->n; i++)
            sink += (unsigned)ds->labels[i] + ds->pixels[i * ds->c * ds->h * ds->w];
        fr_dataset_free(ds);
    }
    return 0;
}
