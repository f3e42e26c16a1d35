/* `frugal devices`: the CPU path (threads, SIMD) and every OpenCL device, as a table or JSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h"
#include "frugal/device.h"

int cmd_devices(int argc, char **argv)
{
    bool json = false, precompile = false;
    const char *device = NULL;
    int64_t threads = 0;
    struct cli_opt opts[] = {
        {"json", CLI_BOOL, &json, NULL, "print JSON instead of a table", false},
        {"threads", CLI_INT, &threads, "N", "CPU threads (default: FRUGAL_THREADS or all cores)", false,
         CLI_RANGE(0, CLI_MAX_THREADS)},
        {"precompile", CLI_BOOL, &precompile, NULL, "build every kernel program into the disk cache", false},
        {"device", CLI_STR, &device, "D", "with --precompile: only this cl:P:D device", false},
        {0},
    };
    int rc = cli_parse("devices", "[--json] [--precompile [--device cl:P:D]]", argc, argv, opts, NULL);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (threads > 0)
        fr_set_threads((int)threads);
    struct fr_backend *cpu = fr_backend_cpu_new(0);
    if (!cpu)
        return cli_error("devices", CLI_FAIL, "cannot start the CPU backend");
    int cpu_threads = fr_backend_cpu_threads(cpu);
    fr_backend_free(cpu);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "command", "devices");
    cJSON *list = cJSON_AddArrayToObject(root, "devices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "spec", "cpu");
    cJSON_AddStringToObject(c, "kind", "cpu");
    cJSON_AddStringToObject(c, "name", "pure-C CPU path");
    cJSON_AddNumberToObject(c, "threads", cpu_threads);
    cJSON_AddNumberToObject(c, "online_cores", (double)cores);
    cJSON_AddStringToObject(c, "simd", fr_cpu_simd_name());
    cJSON_AddStringToObject(c, "features", fr_cpu_features());
    cJSON_AddBoolToObject(c, "usable", true);
    cJSON_AddItemToArray(list, c);

    /* OpenCL devices (none without an ICD/platform or in a build without OpenCL). */
    struct fr_device_info *cl_devs = NULL;
    int n_cl = 0;
    fr_opencl_list_devices(&cl_devs, &n_cl);
    int pc_p = -1, pc_d = -1;
    if (device && precompile) {
        char tail;
        if (sscanf(device, "cl:%d:%d%c", &pc_p, &pc_d, &tail) != 2) {
            fr_opencl_free_devices(cl_devs);
            cJSON_Delete(root);
            return cli_error("devices", CLI_USAGE, "--device %s: expected cl:P:D", device);
        }
    }
    int pc_fail = 0;
    for (int i = 0; i < n_cl; i++) {
        const struct fr_device_info *d = &cl_devs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "spec", d->spec);
        cJSON_AddStringToObject(o, "kind", "opencl");
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "type", d->type);
        cJSON_AddStringToObject(o, "platform", d->platform_name);
        cJSON_AddStringToObject(o, "vendor", d->vendor);
        cJSON_AddStringToObject(o, "driver_version", d->driver_version);
        cJSON_AddStringToObject(o, "device_version", d->device_version);
        cJSON_AddStringToObject(o, "opencl_c_version", d->opencl_c_version);
        cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
        cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d->global_mem);
        cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_alloc);
        cJSON_AddBoolToObject(o, "usable", d->usable);
        if (!d->usable)
            cJSON_AddStringToObject(o, "why_not", d->why_not);
        bool want = precompile && d->usable && (pc_p < 0 || (d->platform == pc_p && d->device == pc_d));
        if (want) {
            int n_prog = 0, n_comp = 0;
            enum fr_status st = fr_opencl_precompile(d->platform, d->device, &n_prog, &n_comp);
            cJSON_AddNumberToObject(o, "programs_ready", n_prog);
            cJSON_AddNumberToObject(o, "programs_compiled", n_comp);
            if (st != FR_STATUS_OK) {
                cJSON_AddStringToObject(o, "precompile_error", fr_last_error());
                fprintf(stderr, "frugal devices: %s: %s\n", d->spec, fr_last_error());
                pc_fail++;
            }
        }
        cJSON_AddItemToArray(list, o);
    }
    if (precompile && pc_p >= 0) {
        bool found = false;
        for (int i = 0; i < n_cl; i++)
            found |= cl_devs[i].platform == pc_p && cl_devs[i].device == pc_d && cl_devs[i].usable;
        if (!found) {
            fr_opencl_free_devices(cl_devs);
            cJSON_Delete(root);
            return cli_error("devices", CLI_USAGE, "--device %s: no such usable OpenCL device", device);
        }
    }

    if (json) {
        cJSON_AddStringToObject(root, "frugal_version", fr_version());
        cJSON_AddBoolToObject(root, "opencl_build", FRUGAL_HAVE_OPENCL);
        char *s = cJSON_PrintUnformatted(root); /* one line, as every command's --json */
        puts(s);
        free(s);
    } else {
        printf("cpu      pure-C CPU path: %d thread%s of %ld online cores, SIMD %s\n", cpu_threads,
               cpu_threads == 1 ? "" : "s", cores, fr_cpu_simd_name());
        printf("         features: %s\n", fr_cpu_features());
        if (!FRUGAL_HAVE_OPENCL)
            printf("(this build has no OpenCL support)\n");
        else if (n_cl == 0)
            printf("(no OpenCL platform or device found)\n");
        for (int i = 0; i < n_cl; i++) {
            const struct fr_device_info *d = &cl_devs[i];
            printf("%-8s %s (%s) on %s\n", d->spec, d->name, d->type, d->platform_name);
            printf("         vendor %s, driver %s, %s, %s\n", d->vendor, d->driver_version, d->device_version,
                   d->opencl_c_version);
            printf("         %u compute units, %.1f GiB global memory, %.1f GiB max allocation\n", d->compute_units,
                   (double)d->global_mem / (1 << 30), (double)d->max_alloc / (1 << 30));
            printf("         usable: %s\n", d->usable ? "yes" : d->why_not);
            cJSON *o = cJSON_GetArrayItem(list, i + 1);
            cJSON *ready = cJSON_GetObjectItem(o, "programs_ready");
            if (ready)
                printf("         precompiled: %d programs ready, %d compiled, %d from the cache\n", ready->valueint,
                       cJSON_GetObjectItem(o, "programs_compiled")->valueint,
                       ready->valueint - cJSON_GetObjectItem(o, "programs_compiled")->valueint);
        }
    }
    fr_opencl_free_devices(cl_devs);
    cJSON_Delete(root);
    return pc_fail ? CLI_FAIL : CLI_OK;
}
