/* libFuzzer target: CSV label lists (row parsing, then dataset building with every image skipped or loaded). */
#include <stdlib.h>

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
    struct fr_csv_rows r;
    if (fr_csv_parse((const char *)data, size, "fuzz.csv", &r) == FR_STATUS_OK) {
        for (int64_t i = 0; i < r.n; i++)
            sink += r.paths[i][0] + r.labels[i];
        fr_csv_rows_free(&r);
    }
    /* paths resolve under a directory that does not exist, so every image is a (skipped) bad image */
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.on_bad_image = FR_BAD_IMAGE_SKIP;
    struct fr_dataset *ds;
    if (size < 4096 && fr_dataset_csv_from_memory((const char *)data, size, "/nonexistent-frugal-fuzz", "fuzz.csv", &o,
                                                  &ds) == FR_STATUS_OK)
        fr_dataset_free(ds);
    return 0;
}
