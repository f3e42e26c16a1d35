/* `frugal bench` driver: options, device list, clpeak-style timing, figures, and the suite loop. */
#include <math.h>
#include <stdarg.h>
#include <time.h>

#include "bench/bench_internal.h"
#include "core/cpu_features.h"
#include "frugal/device.h"
#include "frugal_config.h"

void fr_bench_opts_init(struct fr_bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->suites = FR_BENCH_QUICK;
}

bool fr_bench_suite_parse(const char *name, unsigned *mask)
{
    static const struct {
        const char *name;
        unsigned mask;
    } t[] = {{"quick", FR_BENCH_QUICK},   {"full", FR_BENCH_FULL},       {"limits", FR_BENCH_LIMITS},
             {"ops", FR_BENCH_OPS},       {"augment", FR_BENCH_AUGMENT}, {"train", FR_BENCH_TRAIN}};
    if (!name || !*name)
        return false;
    /* a comma list: named suites are ORed; "quick" or "full" next to them only sets the size */
    unsigned suites = 0, size = 0;
    const char *p = name;
    for (;;) {
        size_t len = strcspn(p, ",");
        size_t i = 0;
        while (i < sizeof t / sizeof t[0] && !(strlen(t[i].name) == len && strncmp(p, t[i].name, len) == 0))
            i++;
        if (i == sizeof t / sizeof t[0])
            return false;
        if (i < 2) {
            size |= t[i].mask & FR_BENCH_QUICK_FLAG;
        } else {
            suites |= t[i].mask;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    *mask = (suites ? suites : FR_BENCH_FULL) | size;
    return true;
}

double fr_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double fr_bench_time(struct fr_bench_run *run, fr_bench_fn fn, void *ctx, enum fr_status *st)
{
    double dev = -1;
    *st = fn(ctx, &dev); /* warm-up: first-call costs (kernel builds, packing buffers) stay out */
    if (*st != FR_STATUS_OK)
        return -1;
    double t0 = fr_bench_now();
    dev = -1;
    *st = fn(ctx, &dev);
    if (*st != FR_STATUS_OK)
        return -1;
    double one = dev > 0 ? dev : fr_bench_now() - t0;
    long k = one > 0 ? (long)(run->seconds / one) : 1000;
    k = k < 1 ? 1 : k > 100000 ? 100000 : k;
    double med[64];
    int rep = run->repeat > 64 ? 64 : run->repeat;
    for (int r = 0; r < rep; r++) {
        double sum_dev = 0;
        bool all_dev = true;
        t0 = fr_bench_now();
        for (long i = 0; i < k; i++) {
            dev = -1;
            *st = fn(ctx, &dev);
            if (*st != FR_STATUS_OK)
                return -1;
            if (dev > 0)
                sum_dev += dev;
            else
                all_dev = false;
        }
        double wall = fr_bench_now() - t0;
        med[r] = (all_dev ? sum_dev : wall) / (double)k;
    }
    qsort(med, (size_t)rep, sizeof med[0], cmp_double);
    if (run->best)
        return med[0];
    return rep % 2 ? med[rep / 2] : 0.5 * (med[rep / 2 - 1] + med[rep / 2]);
}

struct fr_bench_figure *fr_bench_add(struct fr_bench_run *run, const char *suite, const char *name, double value,
                                     const char *unit, const char *method)
{
    struct fr_bench_report *r = run->r;
    if (r->n_figures == r->cap_figures) {
        int cap = r->cap_figures ? 2 * r->cap_figures : 64;
        struct fr_bench_figure *f = realloc(r->figures, (size_t)cap * sizeof *f);
        if (!f)
            return NULL;
        r->figures = f;
        r->cap_figures = cap;
    }
    struct fr_bench_figure *f = &r->figures[r->n_figures++];
    memset(f, 0, sizeof *f);
    snprintf(f->suite, sizeof f->suite, "%s", suite);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->device, sizeof f->device, "%s", run->spec);
    f->value = value;
    snprintf(f->unit, sizeof f->unit, "%s", unit);
    snprintf(f->method, sizeof f->method, "%s%s", method, run->best ? ", best batch" : "");
    return f;
}

void fr_bench_progress(struct fr_bench_run *run, const char *suite, const char *fmt, ...)
{
    if (!run->o->progress)
        return;
    char msg[256], line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s %s: %s", run->spec, suite, msg);
    run->o->progress(line, run->o->user);
}

void fr_bench_note(struct fr_bench_report *r, const char *fmt, ...)
{
    size_t len = strlen(r->notes);
    if (len + 2 >= sizeof r->notes)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes + len, sizeof r->notes - len - 1, fmt, ap);
    va_end(ap);
    len = strlen(r->notes);
    r->notes[len] = '\n';
    r->notes[len + 1] = 0;
}

void fr_bench_errors(const float *got, const float *want, size_t n, double *max_abs, double *max_rel)
{
    double ma = 0, mw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= ma)) /* NaN counts as an infinite error */
            ma = isnan(d) ? INFINITY : d;
        double w = fabs((double)want[i]);
        if (w > mw)
            mw = w;
    }
    *max_abs = ma;
    *max_rel = ma / (mw > 1e-30 ? mw : 1e-30);
}

enum fr_status fr_bench_failed(struct fr_bench_run *run, const char *suite, const char *what, enum fr_status st)
{
    fr_bench_note(run->r, "%s %s: %s FAILED (%s): %s", run->spec, suite, what, fr_status_str(st), fr_last_error());
    run->r->n_failed++;
    return st == FR_STATUS_OUT_OF_MEMORY ? st : FR_STATUS_OK;
}

bool fr_bench_perturb(const char *item)
{
    const char *p = getenv("FRUGAL_BENCH_PERTURB");
    return p && *p && strncmp(item, p, strlen(p)) == 0;
}

enum fr_status fr_bench_device_list(const char *spec, char ***specs, int *n)
{
    *specs = NULL;
    *n = 0;
    char **list = NULL;
    int cnt = 0, cap = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec && *spec ? spec : "all");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char *one[64];
        int m = 0;
        struct fr_device_info *d = NULL;
        int nd = 0;
        if (strcmp(tok, "all") == 0) {
            one[m++] = "cpu";
            fr_opencl_list_devices(&d, &nd);
            for (int i = 0; i < nd && m < 64; i++)
                if (d[i].usable)
                    one[m++] = d[i].spec;
        } else {
            one[m++] = tok;
        }
        for (int i = 0; i < m; i++) {
            bool dup = false; /* "cpu,cpu" or "all,cl:0:0": each device once */
            for (int j = 0; j < cnt && !dup; j++)
                dup = strcmp(list[j], one[i]) == 0;
            if (dup)
                continue;
            if (cnt == cap) {
                cap = cap ? 2 * cap : 8;
                char **l = realloc(list, (size_t)cap * sizeof *l);
                if (!l)
                    break;
                list = l;
            }
            if (cnt < cap)
                list[cnt++] = strdup(one[i]);
        }
        fr_opencl_free_devices(d);
    }
    *specs = list;
    *n = cnt;
    return cnt > 0 ? FR_STATUS_OK : fr_error(FR_STATUS_INVALID_ARGUMENT, "bench: no device in '%s'", spec);
}

void fr_bench_report_free(struct fr_bench_report *r)
{
    if (!r)
        return;
    free(r->devices);
    free(r->figures);
    free(r);
}

static void describe(struct fr_backend *be, struct fr_bench_device *d, const char *spec)
{
    snprintf(d->spec, sizeof d->spec, "%s", spec);
    if (be->kind == FR_BACKEND_CPU) {
        int n = fr_backend_cpu_threads(be);
        snprintf(d->name, sizeof d->name, "pure-C CPU path, %d thread%s", n, n == 1 ? "" : "s");
        snprintf(d->driver, sizeof d->driver, "SIMD %s", fr_cpu_simd_name());
    } else {
        fr_bench_cl_driver(be, d->name, sizeof d->name, d->driver, sizeof d->driver);
    }
}

enum fr_status fr_bench_run(const char *const *specs, int n_specs, const struct fr_bench_opts *o,
                            struct fr_bench_report **out)
{
    *out = NULL;
    if (n_specs <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "bench: no device given");
    struct fr_bench_report *r = calloc(1, sizeof *r);
    if (!r || !(r->devices = calloc((size_t)n_specs, sizeof *r->devices))) {
        free(r);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
    }
    snprintf(r->version, sizeof r->version, "%s", fr_version());
    snprintf(r->build_options, sizeof r->build_options, "%s", FRUGAL_BUILD_OPTIONS);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (o->threads > 0)
        fr_set_threads(o->threads);

    struct fr_backend *ref = fr_backend_cpu_new(o->threads);
    if (!ref) {
        fr_bench_report_free(r);
        return fr_error(FR_STATUS_DEVICE, "bench: cannot start the CPU backend");
    }
    bool quick = (o->suites & FR_BENCH_QUICK_FLAG) != 0;
    enum fr_status st = FR_STATUS_OK;
    for (int i = 0; i < n_specs && st == FR_STATUS_OK; i++) {
        struct fr_backend *be = NULL;
        if (strcmp(specs[i], "cpu") == 0)
            be = fr_backend_cpu_new(o->threads);
        else if ((st = fr_backend_open(specs[i], &be)) != FR_STATUS_OK)
            break;
        if (!be) {
            st = fr_error(FR_STATUS_DEVICE, "bench: cannot open %s", specs[i]);
            break;
        }
        describe(be, &r->devices[r->n_devices++], specs[i]);
        struct fr_bench_run run = {
            .o = o,
            .r = r,
            .be = be,
            .ref = ref,
            .spec = specs[i],
            .quick = quick,
            .seconds = o->seconds > 0 ? o->seconds : quick ? 0.05 : 0.2,
            .repeat = o->repeat > 0 ? o->repeat : quick ? 3 : 5,
        };
        /* a limit is the best the device did: on a shared machine the median would measure the neighbours */
        run.best = true;
        if (o->suites & FR_BENCH_LIMITS)
            st = fr_bench_limits(&run, true);
        else if (o->suites & FR_BENCH_OPS)
            st = fr_bench_limits(&run, false); /* peaks for the "% of peak" figures */
        run.best = false;
        if (st != FR_STATUS_OK)
            st = fr_bench_failed(&run, "limits", "suite", st);
        static const struct {
            unsigned bit;
            const char *name;
            enum fr_status (*fn)(struct fr_bench_run *);
        } suites[] = {{FR_BENCH_OPS, "ops", fr_bench_ops},
                      {FR_BENCH_AUGMENT, "augment", fr_bench_augment},
                      {FR_BENCH_TRAIN, "train", fr_bench_train}};
        for (size_t s = 0; s < sizeof suites / sizeof suites[0] && st == FR_STATUS_OK; s++)
            if ((o->suites & suites[s].bit) && (st = suites[s].fn(&run)) != FR_STATUS_OK)
                st = fr_bench_failed(&run, suites[s].name, "suite", st);
        fr_backend_free(be);
    }
    fr_backend_free(ref);
    for (int i = 0; i < r->n_figures; i++)
        r->n_flagged += r->figures[i].flagged;
    if (st != FR_STATUS_OK) {
        fr_bench_report_free(r);
        return st;
    }
    *out = r;
    return FR_STATUS_OK;
}
