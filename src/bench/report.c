/* Bench reports as text: terminal table (devices as columns, ratios to the first), Markdown, CSV, JSON
 * (cJSON); reading a JSON report back and comparing two of them figure by figure. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>

#include "bench/bench_internal.h"
#include "core/sbuf.h"

static void fmt_value(char *buf, size_t size, double v)
{
    double a = fabs(v);
    if (!isfinite(v))
        snprintf(buf, size, "%g", v);
    else if (a >= 1000)
        snprintf(buf, size, "%.0f", v);
    else if (a >= 100)
        snprintf(buf, size, "%.1f", v);
    else if (a >= 1)
        snprintf(buf, size, "%.2f", v);
    else
        snprintf(buf, size, "%.3g", v);
}

static const struct fr_bench_figure *find(const struct fr_bench_report *r, const char *suite, const char *name,
                                          const char *unit, const char *device)
{
    for (int i = 0; i < r->n_figures; i++) {
        const struct fr_bench_figure *f = &r->figures[i];
        if (strcmp(f->suite, suite) == 0 && strcmp(f->name, name) == 0 && strcmp(f->unit, unit) == 0 &&
            strcmp(f->device, device) == 0)
            return f;
    }
    return NULL;
}

/* first figure with this (suite, name, unit): the row is printed once */
static bool first_of_row(const struct fr_bench_report *r, int i)
{
    const struct fr_bench_figure *f = &r->figures[i];
    for (int j = 0; j < i; j++) {
        const struct fr_bench_figure *g = &r->figures[j];
        if (strcmp(f->suite, g->suite) == 0 && strcmp(f->name, g->name) == 0 && strcmp(f->unit, g->unit) == 0)
            return false;
    }
    return true;
}

/* +1 when more is better (rates), -1 when less is (times), 0 when neither (shares, counts) */
static int direction(const char *unit)
{
    static const char *const more[] = {"GB/s", "GFLOP/s", "img/s"}, *const less[] = {"ms", "us", "s"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (strcmp(unit, more[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof less / sizeof less[0]; i++)
        if (strcmp(unit, less[i]) == 0)
            return -1;
    return 0;
}

/* value, then how many times faster or slower than the first device for rates and times */
static void cell(const struct fr_bench_report *r, const struct fr_bench_figure *f, int d, char *buf, size_t size)
{
    const struct fr_bench_figure *c = find(r, f->suite, f->name, f->unit, r->devices[d].spec);
    if (!c) {
        snprintf(buf, size, "-");
        return;
    }
    char v[32];
    fmt_value(v, sizeof v, c->value);
    const struct fr_bench_figure *base = find(r, f->suite, f->name, f->unit, r->devices[0].spec);
    int dir = direction(c->unit);
    if (d > 0 && base && base->value > 0 && c->value > 0 && dir != 0) {
        double speed = dir > 0 ? c->value / base->value : base->value / c->value;
        double x = speed >= 1 ? speed : 1 / speed;
        snprintf(buf, size, "%s (%.*fx %s)%s", v, x >= 100 ? 0 : x >= 10 ? 1 : 2, x, speed >= 1 ? "faster" : "slower",
                 c->flagged ? " WRONG" : "");
    } else {
        snprintf(buf, size, "%s%s", v, c->flagged ? " WRONG" : "");
    }
}

static const char *const suites[] = {"limits", "ops", "augment", "train"};

static void table(const struct fr_bench_report *r, struct fr_sbuf *b, bool markdown)
{
    int wname = 24;
    for (int i = 0; i < r->n_figures; i++) {
        int l = (int)(strlen(r->figures[i].name) + strlen(r->figures[i].unit) + 3);
        if (l > wname)
            wname = l;
    }
    if (!markdown) {
        fr_sbuf_printf(b, "frugal %s bench, %s (%s)\n", r->version, r->date, r->build_options);
        for (int d = 0; d < r->n_devices; d++)
            fr_sbuf_printf(b, "  %-8s %s; %s\n", r->devices[d].spec, r->devices[d].name, r->devices[d].driver);
        if (r->n_devices > 1)
            fr_sbuf_printf(b, "  (x faster / x slower: against %s, for rates and times)\n", r->devices[0].spec);
    } else {
        fr_sbuf_printf(b, "# frugal bench\n\nfrugal %s, %s, `%s`\n\n", r->version, r->date, r->build_options);
        for (int d = 0; d < r->n_devices; d++)
            fr_sbuf_printf(b, "- `%s`: %s; %s\n", r->devices[d].spec, r->devices[d].name, r->devices[d].driver);
    }
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        bool any = false;
        for (int i = 0; i < r->n_figures; i++)
            any |= strcmp(r->figures[i].suite, suites[s]) == 0;
        if (!any)
            continue;
        if (markdown) {
            fr_sbuf_printf(b, "\n## %s\n\n| figure |", suites[s]);
            for (int d = 0; d < r->n_devices; d++)
                fr_sbuf_printf(b, " %s |", r->devices[d].spec);
            fr_sbuf_printf(b, "\n|---|");
            for (int d = 0; d < r->n_devices; d++)
                fr_sbuf_printf(b, "---:|");
            fr_sbuf_printf(b, "\n");
        } else {
            fr_sbuf_printf(b, "\n== %s ==\n%-*s", suites[s], wname, "figure");
            for (int d = 0; d < r->n_devices; d++)
                fr_sbuf_printf(b, " %24s", r->devices[d].spec);
            fr_sbuf_printf(b, "\n");
        }
        for (int i = 0; i < r->n_figures; i++) {
            const struct fr_bench_figure *f = &r->figures[i];
            if (strcmp(f->suite, suites[s]) != 0 || !first_of_row(r, i))
                continue;
            char label[160];
            snprintf(label, sizeof label, "%s [%s]", f->name, f->unit);
            if (markdown)
                fr_sbuf_printf(b, "| %s |", label);
            else
                fr_sbuf_printf(b, "%-*s", wname, label);
            for (int d = 0; d < r->n_devices; d++) {
                char c[64];
                cell(r, f, d, c, sizeof c);
                if (markdown)
                    fr_sbuf_printf(b, " %s |", c);
                else
                    fr_sbuf_printf(b, " %24s", c);
            }
            fr_sbuf_printf(b, "\n");
        }
    }
    /* the CPU path is the reference: only other devices' figures are checked against it */
    int checked = 0;
    for (int i = 0; i < r->n_figures; i++)
        checked += r->figures[i].checked && strcmp(r->figures[i].device, "cpu") != 0;
    if (checked)
        fr_sbuf_printf(b, "\n%scorrectness vs the CPU path: %d figures checked, %d flagged%s\n", markdown ? "**" : "",
                  checked, r->n_flagged, markdown ? "**" : "");
    else
        fr_sbuf_printf(b, "\n%scorrectness: only the CPU path ran, nothing to compare with it (%d flagged)%s\n",
                  markdown ? "**" : "", r->n_flagged, markdown ? "**" : "");
    if (r->n_failed)
        fr_sbuf_printf(b, "%s%d item(s) FAILED, see the notes%s\n", markdown ? "**" : "", r->n_failed, markdown ? "**" : "");
    for (int i = 0; i < r->n_figures; i++) {
        const struct fr_bench_figure *f = &r->figures[i];
        if (f->flagged)
            fr_sbuf_printf(b, "%s WRONG %s %s: max abs error %.3g, max rel error %.3g > tolerance %.3g\n",
                      markdown ? "-" : " ", f->device, f->name, f->max_abs_err, f->max_rel_err, f->tol);
    }
    if (r->notes[0]) {
        fr_sbuf_printf(b, "\n%snotes:\n", markdown ? "" : "");
        const char *p = r->notes;
        while (*p) {
            const char *e = strchr(p, '\n');
            int len = e ? (int)(e - p) : (int)strlen(p);
            fr_sbuf_printf(b, "%s %.*s\n", markdown ? "-" : " ", len, p);
            p += len + (e ? 1 : 0);
        }
    }
}

static void csv_field(struct fr_sbuf *b, const char *s)
{
    fr_sbuf_printf(b, "\"");
    for (; *s; s++)
        fr_sbuf_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    fr_sbuf_printf(b, "\"");
}

static char *to_json(const struct fr_bench_report *r)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "frugal_version", r->version);
    cJSON_AddStringToObject(root, "build_options", r->build_options);
    cJSON_AddStringToObject(root, "date", r->date);
    cJSON *devs = cJSON_AddArrayToObject(root, "devices");
    for (int d = 0; d < r->n_devices; d++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "spec", r->devices[d].spec);
        cJSON_AddStringToObject(o, "name", r->devices[d].name);
        cJSON_AddStringToObject(o, "driver", r->devices[d].driver);
        cJSON_AddItemToArray(devs, o);
    }
    cJSON *figs = cJSON_AddArrayToObject(root, "figures");
    for (int i = 0; i < r->n_figures; i++) {
        const struct fr_bench_figure *f = &r->figures[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "suite", f->suite);
        cJSON_AddStringToObject(o, "name", f->name);
        cJSON_AddNumberToObject(o, "value", f->value);
        cJSON_AddStringToObject(o, "unit", f->unit);
        cJSON_AddStringToObject(o, "device", f->device);
        cJSON_AddStringToObject(o, "method", f->method);
        if (f->checked) {
            /* an infinite error (NaN output, size mismatch) has no JSON number: null */
            if (isfinite(f->max_abs_err))
                cJSON_AddNumberToObject(o, "max_abs_err", f->max_abs_err);
            else
                cJSON_AddNullToObject(o, "max_abs_err");
            if (isfinite(f->max_rel_err))
                cJSON_AddNumberToObject(o, "max_rel_err", f->max_rel_err);
            else
                cJSON_AddNullToObject(o, "max_rel_err");
            cJSON_AddNumberToObject(o, "tolerance", f->tol);
            cJSON_AddBoolToObject(o, "flagged", f->flagged);
        }
        cJSON_AddItemToArray(figs, o);
    }
    cJSON_AddNumberToObject(root, "flagged", r->n_flagged);
    cJSON_AddNumberToObject(root, "failed", r->n_failed);
    cJSON *notes = cJSON_AddArrayToObject(root, "notes");
    const char *p = r->notes;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        cJSON_AddItemToArray(notes, cJSON_CreateString(line));
        p += len + (e ? 1 : 0);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

char *fr_bench_format(const struct fr_bench_report *r, enum fr_bench_format fmt)
{
    if (fmt == FR_BENCH_FMT_JSON) {
        char *s = to_json(r);
        if (!s)
            return NULL;
        /* cJSON's allocator is malloc here, but hand back a string the caller frees with free() for sure */
        char *out = strdup(s);
        cJSON_free(s);
        return out;
    }
    struct fr_sbuf b = {0};
    if (fmt == FR_BENCH_FMT_CSV) {
        fr_sbuf_printf(&b, "suite,name,device,value,unit,method,max_abs_err,max_rel_err,tolerance,flagged\n");
        for (int i = 0; i < r->n_figures; i++) {
            const struct fr_bench_figure *f = &r->figures[i];
            csv_field(&b, f->suite);
            fr_sbuf_printf(&b, ",");
            csv_field(&b, f->name);
            fr_sbuf_printf(&b, ",");
            csv_field(&b, f->device);
            fr_sbuf_printf(&b, ",%.6g,", f->value);
            csv_field(&b, f->unit);
            fr_sbuf_printf(&b, ",");
            csv_field(&b, f->method);
            if (f->checked)
                fr_sbuf_printf(&b, ",%.6g,%.6g,%.3g,%d\n", f->max_abs_err, f->max_rel_err, f->tol, f->flagged);
            else
                fr_sbuf_printf(&b, ",,,,\n");
        }
    } else {
        table(r, &b, fmt == FR_BENCH_FMT_MARKDOWN);
    }
    return fr_sbuf_finish(&b);
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

enum fr_status fr_bench_load_json(const char *path, struct fr_bench_report **out)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fr_error(FR_STATUS_IO, "%s: cannot open", path);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = len >= 0 && len < (64L << 20) ? malloc((size_t)len + 1) : NULL;
    if (!text || fread(text, 1, (size_t)len, fp) != (size_t)len) {
        fclose(fp);
        free(text);
        return fr_error(FR_STATUS_IO, "%s: cannot read (or larger than 64 MiB)", path);
    }
    fclose(fp);
    text[len] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        return fr_error(FR_STATUS_FORMAT, "%s: not valid JSON", path);
    enum fr_status st = FR_STATUS_OK;
    struct fr_bench_report *r = calloc(1, sizeof *r);
    const cJSON *figs = cJSON_GetObjectItemCaseSensitive(root, "figures");
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(root, "devices");
    int nf = cJSON_GetArraySize(figs), nd = cJSON_GetArraySize(devs);
    if (!r || !cJSON_IsArray(figs)) {
        st = r ? fr_error(FR_STATUS_FORMAT, "%s: no \"figures\" array (not a frugal bench report)", path)
               : fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
        goto out;
    }
    r->figures = calloc((size_t)nf + 1, sizeof *r->figures);
    r->devices = calloc((size_t)nd + 1, sizeof *r->devices);
    if (!r->figures || !r->devices) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
        goto out;
    }
    r->cap_figures = nf + 1;
    snprintf(r->version, sizeof r->version, "%s", jstr(root, "frugal_version") ? jstr(root, "frugal_version") : "?");
    snprintf(r->date, sizeof r->date, "%s", jstr(root, "date") ? jstr(root, "date") : "?");
    snprintf(r->build_options, sizeof r->build_options, "%s",
             jstr(root, "build_options") ? jstr(root, "build_options") : "?");
    for (int d = 0; d < nd; d++) {
        const cJSON *o = cJSON_GetArrayItem(devs, d);
        if (!jstr(o, "spec"))
            continue;
        struct fr_bench_device *dv = &r->devices[r->n_devices++];
        snprintf(dv->spec, sizeof dv->spec, "%s", jstr(o, "spec"));
        snprintf(dv->name, sizeof dv->name, "%s", jstr(o, "name") ? jstr(o, "name") : "");
        snprintf(dv->driver, sizeof dv->driver, "%s", jstr(o, "driver") ? jstr(o, "driver") : "");
    }
    for (int i = 0; i < nf; i++) {
        const cJSON *o = cJSON_GetArrayItem(figs, i);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        if (!jstr(o, "name") || !jstr(o, "unit") || !jstr(o, "device") || !cJSON_IsNumber(v)) {
            st = fr_error(FR_STATUS_FORMAT, "%s: figure %d lacks a name, unit, device or numeric value", path, i);
            goto out;
        }
        struct fr_bench_figure *f = &r->figures[r->n_figures++];
        snprintf(f->suite, sizeof f->suite, "%s", jstr(o, "suite") ? jstr(o, "suite") : "");
        snprintf(f->name, sizeof f->name, "%s", jstr(o, "name"));
        snprintf(f->unit, sizeof f->unit, "%s", jstr(o, "unit"));
        snprintf(f->device, sizeof f->device, "%s", jstr(o, "device"));
        snprintf(f->method, sizeof f->method, "%s", jstr(o, "method") ? jstr(o, "method") : "");
        f->value = v->valuedouble;
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(o, "flagged");
        if (cJSON_IsBool(fl)) {
            f->checked = true;
            f->flagged = cJSON_IsTrue(fl);
            r->n_flagged += f->flagged;
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "max_rel_err");
            f->max_rel_err = cJSON_IsNumber(e) ? e->valuedouble : INFINITY;
            e = cJSON_GetObjectItemCaseSensitive(o, "max_abs_err");
            f->max_abs_err = cJSON_IsNumber(e) ? e->valuedouble : INFINITY;
            e = cJSON_GetObjectItemCaseSensitive(o, "tolerance");
            f->tol = cJSON_IsNumber(e) ? e->valuedouble : 0;
        }
    }
out:
    cJSON_Delete(root);
    if (st != FR_STATUS_OK) {
        fr_bench_report_free(r);
        return st;
    }
    *out = r;
    return FR_STATUS_OK;
}

enum fr_status fr_bench_compare(const char *old_path, const char *new_path, char **text, int *n_matched)
{
    *text = NULL;
    if (n_matched)
        *n_matched = 0;
    struct fr_bench_report *a = NULL, *b = NULL;
    enum fr_status st = fr_bench_load_json(old_path, &a);
    if (st == FR_STATUS_OK)
        st = fr_bench_load_json(new_path, &b);
    if (st != FR_STATUS_OK) {
        fr_bench_report_free(a);
        return st;
    }
    struct fr_sbuf s = {0};
    int w = 24, matched = 0;
    for (int i = 0; i < b->n_figures; i++) {
        int l = (int)(strlen(b->figures[i].name) + strlen(b->figures[i].unit) + 3);
        w = l > w ? l : w;
    }
    fr_sbuf_printf(&s, "old: %s (frugal %s, %s)\nnew: %s (frugal %s, %s)\n\n", old_path, a->version, a->date, new_path,
              b->version, b->date);
    fr_sbuf_printf(&s, "%-8s %-10s %-*s %12s %12s %9s\n", "suite", "device", w, "figure", "old", "new", "new/old");
    for (int i = 0; i < b->n_figures; i++) {
        const struct fr_bench_figure *f = &b->figures[i];
        const struct fr_bench_figure *o = find(a, f->suite, f->name, f->unit, f->device);
        char label[160], vo[32] = "-", vn[32], ratio[32] = "new";
        snprintf(label, sizeof label, "%s [%s]", f->name, f->unit);
        fmt_value(vn, sizeof vn, f->value);
        if (o) {
            matched++;
            fmt_value(vo, sizeof vo, o->value);
            if (o->value != 0)
                snprintf(ratio, sizeof ratio, "%.3fx", f->value / o->value);
            else
                snprintf(ratio, sizeof ratio, "n/a");
        }
        fr_sbuf_printf(&s, "%-8s %-10s %-*s %12s %12s %9s%s\n", f->suite, f->device, w, label, vo, vn, ratio,
                  f->flagged ? " WRONG" : "");
    }
    for (int i = 0; i < a->n_figures; i++) {
        const struct fr_bench_figure *f = &a->figures[i];
        if (!find(b, f->suite, f->name, f->unit, f->device))
            fr_sbuf_printf(&s, "%-8s %-10s %s [%s]: only in the old report\n", f->suite, f->device, f->name, f->unit);
    }
    fr_sbuf_printf(&s, "\n%d figures in both reports\n", matched);
    fr_bench_report_free(a);
    fr_bench_report_free(b);
    *text = fr_sbuf_finish(&s);
    if (n_matched)
        *n_matched = matched;
    return *text ? FR_STATUS_OK : fr_error(FR_STATUS_OUT_OF_MEMORY, "bench: out of memory");
}
