/* CSV label lists: `path,label` or `path,p0,p1,...` (soft labels), optional header, quoted fields, `#` comments
 * and a `#classes,...` line naming the classes of hard labels. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "data/data_internal.h"

void fr_csv_rows_free(struct fr_csv_rows *r)
{
    if (!r)
        return;
    if (r->paths)
        for (int64_t i = 0; i < r->n; i++)
            free(r->paths[i]);
    free(r->paths);
    free(r->labels);
    free(r->soft);
    if (r->header)
        for (int i = 0; i < r->n_header; i++)
            free(r->header[i]);
    free(r->header);
    if (r->classes)
        for (int i = 0; i < r->n_classes; i++)
            free(r->classes[i]);
    free(r->classes);
    memset(r, 0, sizeof *r);
}

/* Splits one line (NUL-terminated, modified in place) into fields; returns the count or -1 on a quote error. */
static int split_fields(char *line, char ***fields, int *cap)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == *cap) {
            int nc = *cap ? *cap * 2 : 16;
            char **nf = realloc(*fields, sizeof(char *) * (size_t)nc);
            if (!nf)
                return -2;
            *fields = nf;
            *cap = nc;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        char *start = p, *w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == 0)
                    return -1; /* unterminated quote */
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ',' && *p != 0)
                return -1; /* text after the closing quote */
        } else {
            while (*p != ',' && *p != 0)
                *w++ = *p++;
            while (w > start && (w[-1] == ' ' || w[-1] == '\t'))
                w--;
        }
        char sep = *p;
        *w = 0;
        (*fields)[n++] = start;
        if (sep == 0)
            return n;
        p++;
    }
}

static bool parse_int(const char *s, long *v)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return *end == 0 && errno == 0;
}

static bool parse_float(const char *s, float *v)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    *v = strtof(s, &end);
    return *end == 0 && errno == 0;
}

static bool is_number(const char *s)
{
    float v;
    return parse_float(s, &v);
}

static bool is_path_title(const char *s)
{
    return !strcasecmp(s, "path") || !strcasecmp(s, "file") || !strcasecmp(s, "filename") || !strcasecmp(s, "image");
}

/* copies fields[from..n) into *names; false on out of memory */
static bool copy_names(char **fields, int from, int n, char ***names, int *count)
{
    int k = n - from;
    *names = calloc((size_t)(k > 0 ? k : 1), sizeof(char *));
    if (!*names)
        return false;
    *count = k;
    for (int i = 0; i < k; i++)
        if (!((*names)[i] = fr_strdup(fields[from + i])))
            return false;
    return true;
}

enum fr_status fr_csv_parse(const char *text, size_t size, const char *name, struct fr_csv_rows *out)
{
    memset(out, 0, sizeof *out);
    if (memchr(text, 0, size))
        return fr_error(FR_STATUS_FORMAT, "%s: contains a NUL byte (not a text file)", name);
    char *buf = malloc(size + 1);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
    memcpy(buf, text, size);
    buf[size] = 0;
    char **fields = NULL;
    int fcap = 0;
    int64_t cap = 0;
    int ncols = 0; /* columns of the first data row, fixed after it */
    enum fr_status st = FR_STATUS_OK;
    long lineno = 0;
    bool first = true;
    char *line = buf;
    if (size >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        line += 3; /* UTF-8 byte order mark written by some spreadsheet exports */
    while (line && *line && st == FR_STATUS_OK) {
        lineno++;
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = 0;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        char *q = line;
        while (*q == ' ' || *q == '\t')
            q++;
        bool directive = first && !strncmp(q, "#classes", 8) && (q[8] == ',' || q[8] == 0);
        if (*q == 0 || (*q == '#' && !directive)) { /* blank line or comment */
            line = next;
            continue;
        }
        int nf = split_fields(line, &fields, &fcap);
        if (nf == -2) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
            break;
        }
        if (nf < 0) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%ld: bad quoting", name, lineno);
            break;
        }
        if (directive) { /* #classes,NAME,...: names and count of the hard labels */
            if (out->classes) {
                st = fr_error(FR_STATUS_FORMAT, "%s:%ld: a second #classes line", name, lineno);
                break;
            }
            if (nf < 2) {
                st = fr_error(FR_STATUS_FORMAT, "%s:%ld: #classes lists no class", name, lineno);
                break;
            }
            if (!copy_names(fields, 1, nf, &out->classes, &out->n_classes)) {
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
                break;
            }
            line = next;
            continue;
        }
        if (nf == 1 && (strchr(fields[0], ';') || strchr(fields[0], '\t'))) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%ld: expected comma-separated columns (path,label); this line uses '%c'",
                          name, lineno, strchr(fields[0], ';') ? ';' : '\t');
            break;
        }
        if (first) {
            first = false;
            /* a header: its first field names the path column, or its label column is not a number (class names
             * that are numbers, e.g. folders 0/ 1/ 2/, still make a header after "path") */
            bool header = is_path_title(fields[0]) || (nf >= 2 && fields[1][0] && !is_number(fields[1]));
            if (header) {
                int nh = nf > 1 ? nf - 1 : 0;
                out->header = calloc((size_t)(nh ? nh : 1), sizeof(char *));
                if (!out->header) {
                    st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
                    break;
                }
                out->n_header = nh;
                for (int i = 0; i < nh; i++)
                    if (!(out->header[i] = fr_strdup(fields[i + 1])))
                        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
                ncols = nf; /* a header fixes the column count too */
                line = next;
                continue;
            }
        }
        first = false;
        if (ncols == 0)
            ncols = nf;
        if (nf != ncols && !(ncols == 2 && nf == 1)) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%ld: %d columns, expected %d", name, lineno, nf, ncols);
            break;
        }
        if (ncols > 100001) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%ld: %d columns is too many classes", name, lineno, ncols);
            break;
        }
        if (!fields[0][0]) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%ld: empty path", name, lineno);
            break;
        }
        out->n_soft = ncols > 2 ? ncols - 1 : 0;
        if (out->n == cap) {
            int64_t nc = cap ? cap * 2 : 256;
            char **np = realloc(out->paths, sizeof(char *) * (size_t)nc);
            if (np)
                out->paths = np;
            int32_t *nlb = np ? realloc(out->labels, sizeof(int32_t) * (size_t)nc) : NULL;
            if (nlb)
                out->labels = nlb;
            float *ns = NULL;
            if (nlb && out->n_soft) {
                ns = realloc(out->soft, sizeof(float) * (size_t)nc * out->n_soft);
                if (ns)
                    out->soft = ns;
            }
            if (!np || !nlb || (out->n_soft && !ns)) {
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
                break;
            }
            cap = nc;
        }
        int64_t i = out->n;
        int32_t label = -1;
        if (out->n_soft) {
            float *row = out->soft + (size_t)i * out->n_soft, best = -1, sum = 0;
            for (int k = 0; k < out->n_soft && st == FR_STATUS_OK; k++) {
                if (!parse_float(fields[k + 1], &row[k]) || !isfinite(row[k]) || row[k] < 0)
                    st = fr_error(FR_STATUS_FORMAT, "%s:%ld: bad probability '%.40s' in column %d", name, lineno,
                                  fields[k + 1], k + 2);
                else if (row[k] > best) {
                    best = row[k];
                    label = k;
                }
                sum += row[k];
            }
            if (st == FR_STATUS_OK && !(sum > 0))
                st = fr_error(FR_STATUS_FORMAT, "%s:%ld: soft labels sum to 0", name, lineno);
        } else if (nf == 2 && fields[1][0]) {
            long v;
            if (!parse_int(fields[1], &v) || v < -1 || v > 1000000)
                st = fr_error(FR_STATUS_FORMAT, "%s:%ld: bad label '%.40s' (want an integer class index)", name,
                              lineno, fields[1]);
            else if (out->classes && v >= out->n_classes)
                st = fr_error(FR_STATUS_FORMAT, "%s:%ld: label %ld, but #classes names %d classes", name, lineno, v,
                              out->n_classes);
            label = (int32_t)v;
        }
        if (st != FR_STATUS_OK)
            break;
        out->labels[i] = label;
        if (!(out->paths[i] = fr_strdup(fields[0]))) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
            break;
        }
        out->n++;
        line = next;
    }
    free(fields);
    free(buf);
    if (st == FR_STATUS_OK && out->n == 0)
        st = fr_error(FR_STATUS_FORMAT, "%s: no rows", name);
    if (st == FR_STATUS_OK && out->classes && out->n_soft && out->n_classes != out->n_soft)
        st = fr_error(FR_STATUS_FORMAT, "%s: #classes names %d classes, the rows have %d probabilities", name,
                      out->n_classes, out->n_soft);
    if (st != FR_STATUS_OK)
        fr_csv_rows_free(out);
    return st;
}

enum fr_status fr_dataset_csv_from_memory(const char *text, size_t size, const char *base_dir, const char *name,
                                          const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    struct fr_csv_rows rows;
    enum fr_status st = fr_csv_parse(text, size, name, &rows);
    if (st != FR_STATUS_OK)
        return st;
    char source[1024];
    snprintf(source, sizeof source, "csv:%s", name);
    struct fr_dataset *ds = fr_ds_alloc(source);
    char **full = calloc((size_t)rows.n, sizeof(char *));
    if (!ds || !full) {
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
        goto done;
    }
    for (int64_t i = 0; i < rows.n; i++)
        if (!(full[i] = fr_path_join(base_dir ? base_dir : ".", rows.paths[i]))) {
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
            goto done;
        }
    int maxl = -1;
    for (int64_t i = 0; i < rows.n; i++)
        if (rows.labels[i] > maxl)
            maxl = rows.labels[i];
    ds->n_classes = rows.n_soft ? rows.n_soft : rows.classes ? rows.n_classes : maxl + 1;
    if (rows.n_soft && rows.header && rows.n_header == rows.n_soft) {
        ds->class_names = rows.header; /* soft-label header columns are the class names */
        rows.header = NULL;
    } else if (rows.classes) {
        ds->class_names = rows.classes;
        rows.classes = NULL;
    }
    st = fr_ds_load_images(ds, full, rows.n, rows.labels, rows.soft, rows.n_soft, opts);
    if (st == FR_STATUS_OK)
        st = fr_ds_default_class_names(ds);
done:
    if (full)
        for (int64_t i = 0; i < rows.n; i++)
            free(full[i]);
    free(full);
    fr_csv_rows_free(&rows);
    if (st != FR_STATUS_OK) {
        fr_dataset_free(ds);
        return st;
    }
    *out = ds;
    return FR_STATUS_OK;
}

enum fr_status fr_dataset_csv_open(const char *path, const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    uint8_t *data;
    size_t size;
    enum fr_status st = fr_read_file(path, &data, &size);
    if (st != FR_STATUS_OK)
        return st;
    char *dir = fr_path_dir(path);
    if (!dir) {
        free(data);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    st = fr_dataset_csv_from_memory((const char *)data, size, dir, path, opts, out);
    free(dir);
    free(data);
    return st;
}
