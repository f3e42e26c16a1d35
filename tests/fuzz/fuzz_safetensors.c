/* libFuzzer target: safetensors parsing, conversion of every tensor, and re-serialisation of accepted files. */
#include <stdlib.h>
#include <string.h>

#include "frugal/io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fr_log_set_callback(NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fr_safetensors *st;
    if (fr_st_from_memory(data, size, "fuzz", &st) != FR_STATUS_OK)
        return 0;
    struct fr_st_entry *e = calloc((size_t)st->n_tensors + 1, sizeof *e);
    struct fr_kv *kv = calloc((size_t)st->n_meta + 1, sizeof *kv);
    for (int i = 0; i < st->n_tensors; i++) {
        const struct fr_st_tensor *t = &st->tensors[i];
        size_t n = (size_t)fr_st_numel(t);
        if (n <= (1u << 20)) {
            float *f = malloc(n * sizeof(float) + 1);
            int32_t *v = malloc(n * sizeof(int32_t) + 1);
            if (f && fr_st_read_f32(st, t, f, n) != FR_STATUS_OK)
                abort(); /* a validated tensor always converts */
            if (v)
                (void)fr_st_read_i32(st, t, v, n);
            free(f);
            free(v);
        }
        e[i] = (struct fr_st_entry){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    for (int i = 0; i < st->n_meta; i++)
        kv[i] = (struct fr_kv){st->meta_keys[i], st->meta_values[i]};
    /* what we accepted, we can write, and what we write, we accept with the same content */
    uint8_t *buf;
    size_t n;
    if (fr_st_serialize(e, st->n_tensors, kv, st->n_meta, &buf, &n) == FR_STATUS_OK) {
        struct fr_safetensors *back;
        if (fr_st_from_memory(buf, n, "fuzz-rt", &back) != FR_STATUS_OK || back->n_tensors != st->n_tensors)
            abort();
        for (int i = 0; i < st->n_tensors; i++) {
            const struct fr_st_tensor *a = &st->tensors[i], *b = fr_st_find(back, a->name);
            if (!b || b->end - b->begin != a->end - a->begin || memcmp(a->data, b->data, a->end - a->begin))
                abort();
        }
        fr_st_free(back);
        free(buf);
    }
    free(e);
    free(kv);
    fr_st_free(st);
    return 0;
}
