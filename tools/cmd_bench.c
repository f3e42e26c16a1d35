/* `frugal bench`: every device side by side (limits, ops, augmentation, training, correctness vs the CPU
 * path) as a table, JSON, Markdown or CSV; --compare prints per-figure ratios of two JSON reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "frugal/bench.h"

static double t_start;

static void progress(const char *line, void *user)
{
    (void)user;
    double now = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    if (t_start == 0)
        t_start = now;
    fprintf(stderr, "[bench %6.1fs] %s\n", now - t_start, line);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f)
        return cli_error("bench", CLI_FAIL, "%s: cannot open for writing", path);
    bool ok = fputs(text, f) >= 0;
    if (f != stdout)
        ok &= fclose(f) == 0;
    return ok ? CLI_OK : cli_error("bench", CLI_FAIL, "%s: write failed", path);
}

static bool seen(const struct cli_opt *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts->seen;
    return false;
}

int cmd_bench(int argc, char **argv)
{
    const char *device = "all", *suite = "quick", *json = NULL, *markdown = NULL, *csv = NULL, *compare = NULL;
    int64_t repeat = 0, threads = 0;
    double seconds = 0;
    struct cli_opt opts[] = {
        {"device", CLI_STR, &device, "D", "all (default), cpu, cl:P:D, or a comma list", false},
        {"suite", CLI_STR, &suite, "S", "quick (default), full, limits, ops, augment, train; a comma list (quick,ops,train) picks suites", false},
        {"json", CLI_STR, &json, "FILE", "write the report as JSON ('-' = stdout)", false},
        {"markdown", CLI_STR, &markdown, "FILE", "write the report as Markdown", false},
        {"csv", CLI_STR, &csv, "FILE", "write every figure as a CSV line", false},
        {"compare", CLI_STR, &compare, "OLD.json NEW.json", "print per-figure ratios NEW/OLD of two reports", false},
        {"repeat", CLI_INT, &repeat, "N", "timed batches per figure, the median is kept (quick 3, else 5)", false},
        {"seconds", CLI_FLOAT, &seconds, "S", "target seconds of one timed batch (quick 0.05, else 0.2)", false},
        {"threads", CLI_INT, &threads, "N", "CPU threads (default: FRUGAL_THREADS or all cores)", false},
        {0},
    };
    struct cli_list pos = {0};
    int rc = cli_parse("bench",
                       "[--device all|cpu|cl:P:D[,...]] [--suite quick|full|limits|ops|augment|train[,...]] [--json FILE] "
                       "[--markdown FILE] [--csv FILE] [--compare OLD.json NEW.json] [--repeat N] [--seconds S] "
                       "[--threads N]",
                       argc, argv, opts, &pos);
    if (rc) {
        free(pos.items);
        return rc < 0 ? CLI_OK : rc;
    }
    if (compare) {
        if (pos.n != 1) {
            free(pos.items);
            return cli_error("bench", CLI_USAGE, "--compare needs two files: --compare OLD.json NEW.json");
        }
        char *text = NULL;
        int matched = 0;
        enum fr_status st = fr_bench_compare(compare, pos.items[0], &text, &matched);
        free(pos.items);
        if (st != FR_STATUS_OK)
            return cli_error("bench", cli_input_code(st), "%s", fr_last_error());
        fputs(text, stdout);
        free(text);
        return CLI_OK;
    }
    if (pos.n > 0) {
        int n = pos.n;
        free(pos.items);
        return cli_error("bench", CLI_USAGE, "%d unexpected argument(s) (see --help)", n);
    }
    free(pos.items);
    struct fr_bench_opts o;
    fr_bench_opts_init(&o);
    if (!fr_bench_suite_parse(suite, &o.suites))
        return cli_error("bench", CLI_USAGE, "--suite %s: expected quick, full, limits, ops, augment, train or a comma list of them", suite);
    if (seen(opts, "repeat") && (repeat < 1 || repeat > 64))
        return cli_error("bench", CLI_USAGE, "--repeat %lld: expected 1..64 timed batches", (long long)repeat);
    if (seen(opts, "seconds") && !(seconds > 0 && seconds <= 60)) /* NaN fails too */
        return cli_error("bench", CLI_USAGE, "--seconds %g: expected a time above 0 and at most 60", seconds);
    if (threads < 0 || threads > 1024)
        return cli_error("bench", CLI_USAGE, "--threads %lld: expected 1..1024 (0 = the default)", (long long)threads);
    o.repeat = (int)repeat;
    o.seconds = seconds;
    o.threads = (int)threads;
    o.progress = progress;

    char **specs = NULL;
    int n_specs = 0;
    if (fr_bench_device_list(device, &specs, &n_specs) != FR_STATUS_OK)
        return cli_error("bench", CLI_USAGE, "--device %s: %s", device, fr_last_error());
    struct fr_bench_report *r = NULL;
    enum fr_status st = fr_bench_run((const char *const *)specs, n_specs, &o, &r);
    for (int i = 0; i < n_specs; i++)
        free(specs[i]);
    free(specs);
    if (st != FR_STATUS_OK)
        return cli_error("bench", cli_exit_code(st), "%s", fr_last_error());

    rc = CLI_OK;
    char *table = fr_bench_format(r, FR_BENCH_FMT_TABLE);
    if (table)
        fputs(table, json && strcmp(json, "-") == 0 ? stderr : stdout);
    free(table);
    const struct {
        const char *path;
        enum fr_bench_format fmt;
    } outs[] = {{json, FR_BENCH_FMT_JSON}, {markdown, FR_BENCH_FMT_MARKDOWN}, {csv, FR_BENCH_FMT_CSV}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        if (!outs[i].path)
            continue;
        char *text = fr_bench_format(r, outs[i].fmt);
        int w = text ? write_file(outs[i].path, text) : cli_error("bench", CLI_FAIL, "out of memory");
        free(text);
        if (w != CLI_OK)
            rc = w;
    }
    if (r->n_failed > 0 && rc == CLI_OK)
        rc = cli_error("bench", CLI_FAIL, "%d item(s) failed (see the notes)", r->n_failed);
    /* a device that is fast and wrong must be visible, also to scripts */
    if (r->n_flagged > 0 && rc == CLI_OK)
        rc = cli_error("bench", CLI_FAIL, "%d figure(s) differ from the CPU path beyond their tolerance", r->n_flagged);
    fr_bench_report_free(r);
    return rc;
}
