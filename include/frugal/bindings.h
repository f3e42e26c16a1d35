/* Flat calls for language bindings (the Python package in python/ loads them with ctypes): opaque handles,
 * plain C types and JSON text, so a binding never has to mirror a struct's layout. Text these calls hand
 * back is malloc'd; release it (and the pixels of fr_image_load) with fr_free.
 *
 *   char *js;
 *   if (fr_devices_json(&js) == FR_STATUS_OK) { puts(js); fr_free(js); }
 *   struct fr_backend *cpu1;  fr_backend_open_threads("cpu", 1, &cpu1);
 *   struct fr_net *net;       fr_net_load(cpu1, "model.safetensors", &net);
 *   int c, h, w, k;           fr_net_info(net, &c, &h, &w, &k);
 *   double acc, loss;         fr_net_evaluate_u8(net, images_u8, labels_i32, N, &acc, &loss, NULL, NULL, NULL);
 */
#ifndef FRUGAL_BINDINGS_H
#define FRUGAL_BINDINGS_H

#include <stdint.h>

#include "frugal/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fr_backend;
struct fr_net;
struct fr_dataset;

/* free() of the library's allocator, for text and pixel buffers frugal returns. */
void fr_free(void *p);

/* fr_backend_open, then, when the spec resolved to the CPU path and threads > 0, a CPU backend with its
 * own pool of `threads` threads (the global default of fr_set_threads is left alone). */
enum fr_status fr_backend_open_threads(const char *spec, int threads, struct fr_backend **out);

/* The CPU path and every OpenCL device as JSON, the same object as `frugal devices --json`:
 * {"devices": [{"spec": "cpu", ...}, {"spec": "cl:0:0", "usable": true, ...}], "frugal_version": ...}. */
enum fr_status fr_devices_json(char **json);

/* Runs `frugal bench` through the library and returns its JSON report (FR_BENCH_FMT_JSON). devices: "all"
 * (NULL), "cpu", "cl:P:D" or a comma list; suite: quick (NULL), full, limits, ops, augment, train; seconds,
 * repeat and threads <= 0 keep the defaults; progress (may be NULL) gets one line per item. */
enum fr_status fr_bench_json(const char *devices, const char *suite, double seconds, int repeat, int threads,
                             void (*progress)(const char *line, void *user), void *user, char **json);

/* Input shape (channels, height, width) and class count of a network; any pointer may be NULL. */
void fr_net_info(const struct fr_net *net, int *c, int *h, int *w, int *n_classes);
/* Class i's name ("" when i is out of range) and the architecture (built-in name or model-file basename). */
const char *fr_net_class_name(const struct fr_net *net, int i);
const char *fr_net_arch_name(const struct fr_net *net);

/* fr_net_evaluate on n u8 NHWC images of the network's shape with labels (-1 = skipped) in memory.
 * class_accuracy [n_classes] (NaN for a class without images), confusion [n_classes²] (row = true class)
 * and n_used may be NULL. */
enum fr_status fr_net_evaluate_u8(struct fr_net *net, const uint8_t *images, const int32_t *labels, int64_t n,
                                  double *accuracy, double *loss, int64_t *n_used, double *class_accuracy,
                                  int64_t *confusion);

/* fr_dataset_open(spec) with images decoded to `channels` (0 = native) and resized (bilinear) to
 * height x width (0 = native); skip_bad: undecodable images are skipped with a warning instead of failing. */
enum fr_status fr_dataset_open_size(const char *spec, int channels, int height, int width, int skip_bad,
                                    struct fr_dataset **out);
/* Size of a dataset; any pointer may be NULL. */
void fr_dataset_info(const struct fr_dataset *ds, int64_t *n, int *c, int *h, int *w, int *n_classes);
/* Copies its pixels (n·h·w·c u8, NHWC; folders and CSV lists are decoded: fr_dataset_read) and labels (n, -1 =
 * unlabeled; a skipped unreadable image's slot has the label of the image that replaced it); either may be NULL. */
enum fr_status fr_dataset_copy(const struct fr_dataset *ds, uint8_t *pixels, int32_t *labels);
/* Class i's name ("" when i is out of range). */
const char *fr_dataset_class_name(const struct fr_dataset *ds, int i);

#ifdef __cplusplus
}
#endif
#endif
