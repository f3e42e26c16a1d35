/* Test helpers: guarded host buffers (overrun detection), tolerant comparisons, backends under test. */
#ifndef FRUGAL_TESTUTIL_H
#define FRUGAL_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frugal/frugal.h"

/* malloc with 64 guard bytes of a known pattern on each side; tu_guard_free() fails the test if
 * either guard was overwritten. */
void *tu_guard_alloc(size_t size);
void tu_guard_free(void *p);
void tu_guard_check(const void *p); /* fails the test if a guard was touched */

/* (Planned tensors get guard bytes from the planner itself when FRUGAL_GUARD=1: src/core/plan.c checks them
 * after every graph run.) */

/* max |a-b| over n; fails with the index and values when above atol + rtol*|b|. */
void tu_assert_close(const float *got, const float *want, size_t n, float atol, float rtol);
void tu_assert_bytes_equal(const void *got, const void *want, size_t n);

/* deterministic pseudo-random fill in [lo, hi) */
void tu_fill_uniform(float *x, size_t n, uint32_t seed, float lo, float hi);

/* A tensor leaf with data copied in; the context must later be planned/allocated. */
struct fr_tensor *tu_tensor_f32(struct fr_ctx *ctx, int ndim, const int64_t *ne);

/* Runs a graph holding `out` on `backend` after setting the inputs; copies the result into `res`
 * (fr_nelements(out) floats). Fails the test on any error. */
void tu_run(struct fr_ctx *ctx, struct fr_backend *backend, struct fr_tensor *out, struct fr_tensor **inputs,
            const float **input_data, int n_inputs, float *res);

/* Temporary directories: creates /tmp/frugal-test-<tag>-XXXXXX into dir (size bytes); removes it and
 * everything below it. Return 0 on success (cmocka setup/teardown convention). */
int tu_tmpdir_create(char *dir, size_t size, const char *tag);
int tu_tmpdir_remove(const char *dir);
/* "<dir>/<name>" in one of 4 rotating static buffers */
const char *tu_path(const char *dir, const char *name);

/* Runs AUG_APPLY on `be` over n images (u8, layout) with programs of k records, h×w -> oh×ow; a device without
 * doubles gets the host's coordinate tables. Returns the nodes that fell back to the CPU path; fails on errors. */
int tu_aug_apply(struct fr_backend *be, const uint8_t *img, int layout, const float *prog, int n, int k, int h, int w,
                 int c, int oh, int ow, uint8_t *out);

/* A 2-thread CPU backend shared by a suite: cmocka group setup/teardown that open/close tu_cpu. */
extern struct fr_backend *tu_cpu;
int tu_cpu_setup(void **state);
int tu_cpu_teardown(void **state);

/* Every image of a dataset (fr_dataset_read, centre crop), n*h*w*c bytes; free() it. Fails the test on error. */
uint8_t *tu_read_all(const struct fr_dataset *ds);

#endif
