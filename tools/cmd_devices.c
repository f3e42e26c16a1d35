/* `frugal devices`: the CPU path (threads, SIMD) and every OpenCL device, as a table or JSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dist_cli.h"
#include "frugal/bindings.h"
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
    /* the JSON object comes from the library (the Python package's frugal.devices() prints the same) */
    char *text = NULL;
    if (fr_devices_json(&text) != FR_STATUS_OK)
        return cli_error("devices", CLI_FAIL, "%s", fr_last_error());
    cJSON *root = cJSON_Parse(text);
    fr_free(text);
    if (!root)
        return cli_error("devices", CLI_FAIL, "out of memory");
    cJSON *list = cJSON_GetObjectItem(root, "devices"), *c = cJSON_GetArrayItem(list, 0);
    int cpu_threads = cJSON_GetObjectItem(c, "threads")->valueint;
    long cores = (long)cJSON_GetObjectItem(c, "online_cores")->valuedouble;

    /* OpenCL devices (none without an ICD/platform or in a build without OpenCL), in the JSON's order */
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
        cJSON *o = cJSON_GetArrayItem(list, i + 1);
        bool want = precompile && d->usable && (pc_p < 0 || (d->platform == pc_p && d->device == pc_d));
        if (want && o) {
            struct fr_precompile_report rep;
            enum fr_status st = fr_opencl_precompile(d->platform, d->device, &rep);
            cJSON_AddNumberToObject(o, "programs", rep.n_programs);
            cJSON_AddNumberToObject(o, "programs_ready", rep.n_ready);
            cJSON_AddNumberToObject(o, "programs_compiled", rep.n_compiled);
            cJSON_AddNumberToObject(o, "programs_failed", rep.n_failed);
            cJSON *fails = cJSON_AddArrayToObject(o, "failed_programs");
            for (int k = 0; k < rep.n_failed; k++) {
                cJSON *fo = cJSON_CreateObject();
                cJSON_AddStringToObject(fo, "file", rep.failures[k].file);
                cJSON_AddStringToObject(fo, "error", rep.failures[k].error ? rep.failures[k].error : "");
                cJSON_AddItemToArray(fails, fo);
            }
            if (st != FR_STATUS_OK) {
                cJSON_AddStringToObject(o, "precompile_error", fr_last_error());
                /* every failing program with its log, then the one-line summary */
                for (int k = 0; k < rep.n_failed; k++)
                    fprintf(stderr, "frugal devices: %s: %s\n", d->spec, rep.failures[k].error);
                fprintf(stderr, "frugal devices: %s: %s\n", d->spec, fr_last_error());
                pc_fail++;
            }
            fr_opencl_precompile_free(&rep);
        }
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

    if (dcli_size() > 1) { /* mpirun: every rank's host and devices, printed by rank 0 */
        fr_opencl_free_devices(cl_devs);
        int r = dcli_devices(root, json);
        return pc_fail ? CLI_FAIL : r;
    }
    if (json) {
        cJSON_AddStringToObject(root, "command", "devices");
        char *s = cJSON_PrintUnformatted(root); /* one line, as every command's --json */
        puts(s);
        free(s);
    } else {
        printf("cpu      pure-C CPU path: %d thread%s of %ld online cores, SIMD %s\n", cpu_threads,
               cpu_threads == 1 ? "" : "s", cores, cJSON_GetObjectItem(c, "simd")->valuestring);
        printf("         features: %s\n", cJSON_GetObjectItem(c, "features")->valuestring);
        if (!cJSON_IsTrue(cJSON_GetObjectItem(root, "opencl_build")))
            printf("(this build has no OpenCL support)\n");
        else if (n_cl == 0)
            printf("(no OpenCL platform or device found)\n");
        for (int i = 0; i < n_cl; i++) {
            const struct fr_device_info *d = &cl_devs[i];
            printf("%-8s %s (%s) on %s\n", d->spec, d->name, d->type, d->platform_name);
            printf("         vendor %s, driver %s, %s, %s\n", d->vendor, d->driver_version, d->device_version,
                   d->opencl_c_version);
            printf("         %u compute units, %.1f GiB global memory, %.1f GiB max allocation, fp64 %s\n",
                   d->compute_units, (double)d->global_mem / (1 << 30), (double)d->max_alloc / (1 << 30), d->fp64);
            printf("         usable: %s\n", d->usable ? "yes" : d->why_not);
            cJSON *o = cJSON_GetArrayItem(list, i + 1);
            cJSON *ready = cJSON_GetObjectItem(o, "programs_ready");
            if (ready) {
                int comp = cJSON_GetObjectItem(o, "programs_compiled")->valueint;
                int failed = cJSON_GetObjectItem(o, "programs_failed")->valueint;
                printf("         precompiled: %d programs ready, %d compiled, %d from the cache", ready->valueint, comp,
                       ready->valueint - comp);
                if (failed) {
                    printf("; %d FAILED (their ops run on the CPU path):", failed);
                    cJSON *f;
                    cJSON_ArrayForEach(f, cJSON_GetObjectItem(o, "failed_programs"))
                        printf(" %s", cJSON_GetObjectItem(f, "file")->valuestring);
                }
                printf("\n");
            }
        }
    }
    fr_opencl_free_devices(cl_devs);
    cJSON_Delete(root);
    return pc_fail ? CLI_FAIL : CLI_OK;
}
