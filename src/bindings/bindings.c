/* Flat calls for language bindings (include/frugal/bindings.h): thin wrappers that hide struct layouts. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu_features.h"
#include "frugal/backend.h"
#include "frugal/bench.h"
#include "frugal/bindings.h"
#include "frugal/device.h"
#include "frugal/frugal.h"
#include "frugal/recipes.h"
#include "frugal_config.h"

void fr_free(void *p) { free(p); }

enum fr_status fr_backend_open_threads(const char *spec, int threads, struct fr_backend **out)
{
    enum fr_status st = fr_backend_open(spec, out);
    if (st != FR_STATUS_OK || threads <= 0 || (*out)->kind != FR_BACKEND_CPU)
        return st;
    fr_backend_free(*out);
    *out = fr_backend_cpu_new(threads);
    return *out ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "cannot start the CPU backend with %d threads", threads);
}

static enum fr_status json_out(cJSON *root, char **json)
{
    *json = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return *json ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "out of memory for JSON text");
}

enum fr_status fr_devices_json(char **json)
{
    *json = NULL;
    struct fr_backend *cpu = fr_backend_cpu_new(0);
    if (!cpu)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "cannot start the CPU backend");
    int cpu_threads = fr_backend_cpu_threads(cpu);
    fr_backend_free(cpu);
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "devices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "spec", "cpu");
    cJSON_AddStringToObject(c, "kind", "cpu");
    cJSON_AddStringToObject(c, "name", "pure-C CPU path");
    cJSON_AddNumberToObject(c, "threads", cpu_threads);
    cJSON_AddNumberToObject(c, "online_cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddStringToObject(c, "simd", fr_cpu_simd_name());
    cJSON_AddStringToObject(c, "features", fr_cpu_features());
    cJSON_AddBoolToObject(c, "usable", true);
    cJSON_AddItemToArray(list, c);
    struct fr_device_info *d = NULL;
    int n = 0;
    enum fr_status st = fr_opencl_list_devices(&d, &n);
    if (st != FR_STATUS_OK) {
        cJSON_Delete(root);
        return st;
    }
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "spec", d[i].spec);
        cJSON_AddStringToObject(o, "kind", "opencl");
        cJSON_AddStringToObject(o, "name", d[i].name);
        cJSON_AddStringToObject(o, "type", d[i].type);
        cJSON_AddStringToObject(o, "platform", d[i].platform_name);
        cJSON_AddStringToObject(o, "vendor", d[i].vendor);
        cJSON_AddStringToObject(o, "driver_version", d[i].driver_version);
        cJSON_AddStringToObject(o, "device_version", d[i].device_version);
        cJSON_AddStringToObject(o, "opencl_c_version", d[i].opencl_c_version);
        cJSON_AddNumberToObject(o, "compute_units", d[i].compute_units);
        cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d[i].global_mem);
        cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d[i].max_alloc);
        cJSON_AddNumberToObject(o, "max_parameter_bytes", (double)d[i].max_parameter_size);
        cJSON_AddStringToObject(o, "fp64", d[i].fp64);
        cJSON_AddBoolToObject(o, "usable", d[i].usable);
        if (!d[i].usable)
            cJSON_AddStringToObject(o, "why_not", d[i].why_not);
        cJSON_AddItemToArray(list, o);
    }
    fr_opencl_free_devices(d);
    cJSON_AddStringToObject(root, "frugal_version", fr_version());
    cJSON_AddBoolToObject(root, "opencl_build", FRUGAL_HAVE_OPENCL);
    return json_out(root, json);
}

enum fr_status fr_bench_json(const char *devices, const char *suite, double seconds, int repeat, int threads,
                             void (*progress)(const char *line, void *user), void *user, char **json)
{
    *json = NULL;
    struct fr_bench_opts o;
    fr_bench_opts_init(&o);
    if (!fr_bench_suite_parse(suite ? suite : "quick", &o.suites))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "bench: unknown suite '%s' (valid: quick, full, limits, ops, augment, train)",
                        suite);
    o.seconds = seconds > 0 ? seconds : 0;
    o.repeat = repeat > 0 ? repeat : 0;
    o.threads = threads > 0 ? threads : 0;
    o.progress = progress;
    o.user = user;
    char **specs = NULL;
    int n = 0;
    enum fr_status st = fr_bench_device_list(devices, &specs, &n);
    if (st != FR_STATUS_OK)
        return st;
    struct fr_bench_report *r = NULL;
    st = fr_bench_run((const char *const *)specs, n, &o, &r);
    for (int i = 0; i < n; i++)
        free(specs[i]);
    free(specs);
    if (st != FR_STATUS_OK)
        return st;
    *json = fr_bench_format(r, FR_BENCH_FMT_JSON);
    fr_bench_report_free(r);
    return *json ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory for the report");
}

void fr_net_info(const struct fr_net *net, int *c, int *h, int *w, int *n_classes)
{
    if (c)
        *c = net->c;
    if (h)
        *h = net->h;
    if (w)
        *w = net->w;
    if (n_classes)
        *n_classes = net->n_classes;
}

const char *fr_net_class_name(const struct fr_net *net, int i)
{
    return i >= 0 && i < net->n_classes && net->class_names && net->class_names[i] ? net->class_names[i] : "";
}

const char *fr_net_arch_name(const struct fr_net *net) { return net->arch; }

enum fr_status fr_net_evaluate_u8(struct fr_net *net, const uint8_t *images, const int32_t *labels, int64_t n,
                                  double *accuracy, double *loss, int64_t *n_used, double *class_accuracy,
                                  int64_t *confusion)
{
    if (n < 0 || (n > 0 && (!images || !labels)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "evaluate: %lld images without pixels or labels", (long long)n);
    /* a dataset view of the caller's arrays (nothing is copied or freed) */
    struct fr_dataset ds = {.n = n, .c = net->c, .h = net->h, .w = net->w, .pixels = (uint8_t *)images,
                            .labels = (int32_t *)labels, .n_classes = net->n_classes, .source = "images in memory"};
    struct fr_eval ev;
    enum fr_status st = fr_net_evaluate(net, &ds, NULL, n, &ev);
    if (st != FR_STATUS_OK)
        return st;
    if (accuracy)
        *accuracy = ev.accuracy;
    if (loss)
        *loss = ev.loss;
    if (n_used)
        *n_used = ev.n;
    if (class_accuracy)
        memcpy(class_accuracy, ev.class_accuracy, sizeof(double) * (size_t)ev.n_classes);
    if (confusion)
        memcpy(confusion, ev.confusion, sizeof(int64_t) * (size_t)ev.n_classes * (size_t)ev.n_classes);
    fr_eval_free(&ev);
    return FR_STATUS_OK;
}

enum fr_status fr_dataset_open_size(const char *spec, int channels, int height, int width, int skip_bad,
                                    struct fr_dataset **out)
{
    struct fr_dataset_opts o;
    fr_dataset_opts_init(&o);
    o.channels = channels, o.height = height, o.width = width;
    o.on_bad_image = skip_bad ? FR_BAD_IMAGE_SKIP : FR_BAD_IMAGE_FAIL;
    return fr_dataset_open(spec, &o, out);
}

void fr_dataset_info(const struct fr_dataset *ds, int64_t *n, int *c, int *h, int *w, int *n_classes)
{
    if (n)
        *n = ds->n;
    if (c)
        *c = ds->c;
    if (h)
        *h = ds->h;
    if (w)
        *w = ds->w;
    if (n_classes)
        *n_classes = ds->n_classes;
}

enum fr_status fr_dataset_copy(const struct fr_dataset *ds, uint8_t *pixels, int32_t *labels)
{
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(ds->n > 0 ? ds->n : 1));
    if (!idx)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", ds->source);
    for (int64_t i = 0; i < ds->n; i++)
        idx[i] = i;
    /* folders and CSV lists are decoded here; a skipped unreadable image's slot holds the image that replaced it */
    enum fr_status st = pixels ? fr_dataset_read(ds, idx, ds->n, NULL, pixels) : FR_STATUS_OK;
    if (st == FR_STATUS_OK && labels)
        for (int64_t i = 0; i < ds->n; i++)
            labels[i] = ds->labels && idx[i] >= 0 ? ds->labels[idx[i]] : -1;
    free(idx);
    return st;
}

const char *fr_dataset_class_name(const struct fr_dataset *ds, int i)
{
    return i >= 0 && i < ds->n_classes && ds->class_names && ds->class_names[i] ? ds->class_names[i] : "";
}
