/* Exact coordinate tables for devices without (fast) doubles: OpenCV's double-precision source positions of every
 * warp record, computed on the host next to the programs and given to AUG_APPLY as a graph input. */
#include <string.h>

#include "augment/augment_internal.h"

size_t fr_aug_coord_table_len(const double minv[9], int out_h, int out_w)
{
    if (fr_aug_is_affine(minv))
        return 2 * ((size_t)out_w + (size_t)out_h);
    return 2 * (size_t)out_w * (size_t)out_h;
}

int fr_aug_coord_table(const double minv[9], int interp, int out_h, int out_w, int32_t *t)
{
    if (fr_aug_is_affine(minv)) { /* OpenCV's column and row terms, combined on the device by fr_aug_affine_pos */
        for (int x = 0; x < out_w; x++) {
            t[x] = fr_aug_affine_col(minv, x, 0);
            t[out_w + x] = fr_aug_affine_col(minv, x, 1);
        }
        for (int y = 0; y < out_h; y++) {
            t[2 * out_w + y] = fr_aug_affine_row(minv, y, 0);
            t[2 * out_w + out_h + y] = fr_aug_affine_row(minv, y, 1);
        }
        return FR_AUG_TAB_AFFINE;
    }
    /* perspective: OpenCV divides per pixel in double, so the table holds every pixel's position */
    for (int y = 0; y < out_h; y++)
        fr_aug_warp_row_pos(minv, y, out_w, out_h, (enum fr_aug_interp)interp, t + (size_t)2 * y * out_w,
                            t + (size_t)2 * y * out_w + out_w);
    return FR_AUG_TAB_PERSPECTIVE;
}

enum fr_status fr_aug_tables_fill(const float *prog, int n, int k, int in_h, int in_w, int out_h, int out_w,
                                  int32_t *tab, size_t cap, size_t *used)
{
    size_t at = (size_t)n * k;
    if (at > cap)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "augment: coordinate tables: %zu slots for %d×%d records", cap, n, k);
    memset(tab, 0, at * sizeof *tab);
    for (int i = 0; i < n; i++) {
        int have = 0; /* the first op reads the input (in_h×in_w), later ones the output size, as the kernel walks */
        for (int r = 0; r < k; r++) {
            const float *rec = prog + ((size_t)i * k + r) * FR_AUG_REC;
            int code = (int)rec[FR_AUG_R_CODE];
            if (code == FR_AUG_CODE_IDENTITY)
                continue;
            if (code == FR_AUG_CODE_WARP) {
                double m[9];
                int win[4];
                fr_aug_record_map(rec, have ? out_w : in_w, have ? out_h : in_h, m, win);
                size_t len = fr_aug_coord_table_len(m, out_h, out_w);
                if (at + 1 + len > cap || at > INT32_MAX)
                    return fr_error(FR_STATUS_INVALID_ARGUMENT,
                                    "augment: coordinate tables: sample %d needs more than the %zu ints reserved", i, cap);
                tab[(size_t)i * k + r] = (int32_t)at;
                tab[at] = fr_aug_coord_table(m, (int)rec[FR_AUG_R_INTERP], out_h, out_w, tab + at + 1);
                at += 1 + len;
            }
            have = 1;
        }
    }
    *used = at;
    return FR_STATUS_OK;
}
