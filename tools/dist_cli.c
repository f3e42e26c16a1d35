/* The CLI under mpirun: joins the job, keeps the output of ranks other than 0 back (shown when they fail), agrees
 * on the outcome of the steps where ranks can differ, and lists every rank's devices. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist_cli.h"
#include "frugal/backend.h"
#include "frugal/dist.h"
#include "frugal/recipes.h"

#define LINE_MAX_ 400

static struct fr_dist *g_d;
static int g_real_err = -1; /* ranks > 0: the real stderr (their own is a temporary file) */
static FILE *g_captured;    /* that file */
static bool g_agreed;       /* this rank's failure was made known to rank 0 */

int dcli_size(void) { return fr_dist_size(g_d); }
int dcli_rank(void) { return fr_dist_rank(g_d); }

/* The last line this rank wrote to stderr (rank 0: none kept), without "frugal CMD: ". */
static void last_line(char *out, size_t size)
{
    out[0] = 0;
    if (!g_captured)
        return;
    fflush(stderr);
    int fd = fileno(g_captured);
    off_t end = lseek(fd, 0, SEEK_END);
    char buf[2048];
    off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = end > 0 ? pread(fd, buf, (size_t)(end - from), from) : 0;
    if (n <= 0)
        return;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    char *cr = strrchr(line, '\r'); /* progress lines rewrite themselves */
    line = cr ? cr + 1 : line;
    if (!strncmp(line, "frugal ", 7)) {
        char *colon = strstr(line, ": ");
        if (colon)
            line = colon + 2;
    }
    size_t len = strlen(line) < size - 1 ? strlen(line) : size - 1;
    memcpy(out, line, len);
    out[len] = 0;
}

int dcli_init(void)
{
    enum fr_status st = fr_dist_init(&g_d);
    if (st != FR_STATUS_OK) {
        if (fr_dist_launch_rank() == 0)
            fprintf(stderr, "frugal: %s\n", fr_last_error());
        return CLI_USAGE;
    }
    if (fr_dist_size(g_d) == 1)
        return CLI_OK;
    /* ranks sharing a machine share its cores */
    if (!getenv("FRUGAL_THREADS")) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long t = cores / fr_dist_local_size(g_d);
        fr_set_threads((int)(t > 0 ? t : 1));
    }
    const char *show = getenv("FRUGAL_RANK_OUTPUT");
    if (fr_dist_rank(g_d) > 0 && !(show && !strcmp(show, "all"))) {
        fflush(stdout);
        fflush(stderr);
        int null = open("/dev/null", O_WRONLY);
        g_captured = tmpfile();
        g_real_err = dup(2);
        if (null >= 0 && g_captured && g_real_err >= 0) {
            dup2(null, 1);
            dup2(fileno(g_captured), 2);
        }
        if (null >= 0)
            close(null);
    }
    return CLI_OK;
}

int dcli_finish(int rc)
{
    if (!g_d)
        return rc;
    int n = fr_dist_size(g_d);
    bool tell = rc != 0 && g_real_err >= 0 && !g_agreed && !fr_dist_agreed(g_d);
    if (n > 1 && !fr_dist_broken(g_d)) {
        /* every rank's code: a failure rank 0 shares (the same code) was reported by rank 0; a failing rank waits
         * only briefly for ranks still at work (they are ended by the abort that follows) */
        int32_t mine = rc, *all = calloc((size_t)n, sizeof *all);
        if (rc != 0 && fr_dist_timeout(g_d) > 10)
            fr_dist_set_timeout(g_d, 10);
        if (all && fr_dist_allgather(g_d, &mine, sizeof mine, all) == FR_STATUS_OK && all[0] == rc)
            tell = false;
        free(all);
    }
    if (tell) { /* a failure rank 0 knows nothing of: this rank says it itself */
        char line[LINE_MAX_];
        last_line(line, sizeof line);
        dprintf(g_real_err, "frugal: rank %d (%s): %s\n", fr_dist_rank(g_d), fr_dist_host(g_d, fr_dist_rank(g_d)),
                line[0] ? line : "failed");
    }
    int job = fr_dist_finalize(g_d, rc);
    g_d = NULL;
    return job;
}

struct agree_rec {
    int32_t rc;
    char line[LINE_MAX_];
};

int dcli_agree(const char *cmd, int rc)
{
    if (fr_dist_size(g_d) == 1)
        return rc;
    int n = fr_dist_size(g_d), me = fr_dist_rank(g_d);
    struct agree_rec mine = {rc, ""}, *all = calloc((size_t)n, sizeof *all);
    if (rc != CLI_OK)
        last_line(mine.line, sizeof mine.line);
    if (!all)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    if (fr_dist_allgather(g_d, &mine, sizeof mine, all) != FR_STATUS_OK) {
        free(all);
        return cli_error(cmd, CLI_FAIL, "%s", fr_last_error());
    }
    int first = -1;
    for (int r = 0; r < n && first < 0; r++)
        if (all[r].rc != CLI_OK)
            first = r;
    int out = first < 0 ? CLI_OK : all[first].rc;
    if (first > 0 && me == 0 && rc == CLI_OK)
        fprintf(stderr, "frugal %s: rank %d (%s): %s\n", cmd, first, fr_dist_host(g_d, first),
                all[first].line[0] ? all[first].line : "failed");
    g_agreed = first >= 0;
    free(all);
    return out;
}

struct device_rec {
    char name[128];
    int32_t threads;
};

int dcli_device(const char *cmd, int rc, struct fr_backend *be)
{
    rc = dcli_agree(cmd, rc);
    int n = fr_dist_size(g_d);
    if (rc != CLI_OK || n == 1)
        return rc;
    struct device_rec mine = {"", 0}, *all = calloc((size_t)n, sizeof *all);
    snprintf(mine.name, sizeof mine.name, "%s", fr_backend_name(be));
    mine.threads = be->kind == FR_BACKEND_CPU ? fr_backend_cpu_threads(be) : 0;
    if (!all)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    if (fr_dist_allgather(g_d, &mine, sizeof mine, all) != FR_STATUS_OK) {
        free(all);
        return cli_error(cmd, CLI_FAIL, "%s", fr_last_error());
    }
    fprintf(stderr, "frugal %s: %d ranks:", cmd, n);
    for (int r = 0; r < n; r++) {
        fprintf(stderr, "%s rank %d on %s: %s", r ? ";" : "", r, fr_dist_host(g_d, r), all[r].name);
        if (all[r].threads)
            fprintf(stderr, " (%d thread%s)", all[r].threads, all[r].threads == 1 ? "" : "s");
    }
    fprintf(stderr, "\n");
    free(all);
    return CLI_OK;
}

int dcli_devices(cJSON *root, bool json)
{
    int n = fr_dist_size(g_d), me = fr_dist_rank(g_d);
    cJSON_AddNumberToObject(root, "rank", me);
    cJSON_AddStringToObject(root, "host", fr_dist_host(g_d, me));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return cli_error("devices", CLI_FAIL, "out of memory");
    /* lengths first, then the texts, padded to the longest */
    uint64_t len = strlen(text) + 1, *lens = calloc((size_t)n, sizeof *lens);
    char *all = NULL;
    enum fr_status st = lens ? fr_dist_allgather(g_d, &len, sizeof len, lens) : FR_STATUS_OUT_OF_MEMORY;
    uint64_t max = 0;
    for (int r = 0; st == FR_STATUS_OK && r < n; r++)
        max = lens[r] > max ? lens[r] : max;
    char *mine = st == FR_STATUS_OK ? calloc(1, (size_t)max) : NULL;
    all = mine ? calloc((size_t)n, (size_t)max) : NULL;
    if (st == FR_STATUS_OK && !all)
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "out of memory");
    if (st == FR_STATUS_OK) {
        memcpy(mine, text, (size_t)len);
        st = fr_dist_allgather(g_d, mine, (size_t)max, all);
    }
    free(text);
    free(mine);
    free(lens);
    if (st != FR_STATUS_OK) {
        free(all);
        return cli_error("devices", CLI_FAIL, "%s", fr_last_error());
    }
    cJSON *out = cJSON_CreateObject(), *ranks = cJSON_AddArrayToObject(out, "ranks");
    cJSON_AddStringToObject(out, "command", "devices");
    for (int r = 0; r < n; r++)
        cJSON_AddItemToArray(ranks, cJSON_Parse(all + (size_t)r * (size_t)max));
    free(all);
    if (me == 0 && json) {
        char *s = cJSON_PrintUnformatted(out);
        if (s)
            puts(s);
        free(s);
    } else if (me == 0) {
        cJSON *rk;
        cJSON_ArrayForEach(rk, ranks)
        {
            printf("rank %d on %s:\n", cJSON_GetObjectItem(rk, "rank")->valueint,
                   cJSON_GetObjectItem(rk, "host")->valuestring);
            cJSON *dv;
            cJSON_ArrayForEach(dv, cJSON_GetObjectItem(rk, "devices"))
            {
                cJSON *name = cJSON_GetObjectItem(dv, "name"), *usable = cJSON_GetObjectItem(dv, "usable");
                cJSON *threads = cJSON_GetObjectItem(dv, "threads");
                printf("  %-8s %s", cJSON_GetObjectItem(dv, "spec")->valuestring, name ? name->valuestring : "");
                if (threads)
                    printf(", %d thread%s", threads->valueint, threads->valueint == 1 ? "" : "s");
                printf("%s\n", cJSON_IsTrue(usable) ? "" : " (not usable)");
            }
        }
    }
    cJSON_Delete(out);
    return CLI_OK;
}

void dcli_fit_report(const char *cmd, cJSON *o, const struct fr_fit_result *fit)
{
    int n = fr_dist_size(g_d);
    if (n == 1 || !fit)
        return;
    int32_t mine = fit->local_batch, *all = calloc((size_t)n, sizeof *all);
    if (!all || fr_dist_allgather(g_d, &mine, sizeof mine, all) != FR_STATUS_OK) {
        free(all);
        return;
    }
    cJSON_AddNumberToObject(o, "ranks", n);
    cJSON *arr = cJSON_AddArrayToObject(o, "batch_shares");
    cJSON_AddNumberToObject(o, "rebalanced", fit->rebalanced); /* the same count on every rank */
    bool equal = true;
    for (int r = 0; r < n; r++) {
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(all[r]));
        equal &= abs(all[r] - all[0]) <= 1;
    }
    if (!equal || fit->rebalanced) {
        fprintf(stderr, "frugal %s: each batch split by speed:", cmd);
        for (int r = 0; r < n; r++)
            fprintf(stderr, "%s rank %d %d", r ? "," : "", r, all[r]);
        if (fit->rebalanced)
            fprintf(stderr, " images (at the end: the rows moved %d times during training)\n", fit->rebalanced);
        else
            fprintf(stderr, " images\n");
    }
    free(all);
}
