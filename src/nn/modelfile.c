/* Model files: a text description of a layer stack (one layer per line, '#' comments) parsed into the
 * fr_model_* layer calls, with errors that name the file and line. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/model.h"
#include "frugal/status.h"

#define MF_MAX_TOK 8
#define MF_VALID "conv, linear, batchnorm, relu, maxpool, avgpool, gap, flatten, dropout, residual, end"

/* Splits a line (modified in place) into at most MF_MAX_TOK+1 tokens; '#' starts a comment. */
static int tokenize(char *line, char **tok)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n == MF_MAX_TOK + 1)
            return n; /* too many: the caller reports it */
        tok[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = 0;
    }
    return n;
}

static bool parse_int(const char *s, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < 0 || x > 1000000)
        return false;
    *v = (int)x;
    return true;
}

static bool parse_float(const char *s, float *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || x != x)
        return false;
    *v = (float)x;
    return true;
}

struct mf_layer_syntax {
    const char *kw;
    int min_args, max_args; /* after the keyword */
    const char *usage;
};

static const struct mf_layer_syntax SYNTAX[] = {
    {"conv", 5, 6, "conv NAME OUT_CH KERNEL STRIDE PAD [nobias]"},
    {"linear", 2, 2, "linear NAME OUT_FEATURES"},
    {"batchnorm", 1, 1, "batchnorm NAME"},
    {"relu", 0, 0, "relu"},
    {"maxpool", 1, 2, "maxpool KERNEL [STRIDE]"},
    {"avgpool", 1, 2, "avgpool KERNEL [STRIDE]"},
    {"gap", 0, 0, "gap"},
    {"flatten", 0, 0, "flatten"},
    {"dropout", 1, 1, "dropout P"},
    {"residual", 1, 1, "residual NAME"},
    {"end", 0, 1, "end [SURVIVAL]"},
};

static const struct mf_layer_syntax *find_syntax(const char *kw)
{
    for (size_t i = 0; i < sizeof SYNTAX / sizeof SYNTAX[0]; i++)
        if (strcmp(SYNTAX[i].kw, kw) == 0)
            return &SYNTAX[i];
    return NULL;
}

/* One line's layer; returns FR_STATUS_OK or an error whose message the caller prefixes with file:line. */
static enum fr_status add_line(struct fr_model *m, char **tok, int n, bool is_head, int n_classes, int *open)
{
    const struct mf_layer_syntax *sx = find_syntax(tok[0]);
    if (!sx)
        return fr_error(FR_STATUS_FORMAT, "unknown layer '%s' (valid: " MF_VALID ")", tok[0]);
    int na = n - 1;
    if (na < sx->min_args || na > sx->max_args)
        return fr_error(FR_STATUS_FORMAT, "'%s' takes %s", tok[0], sx->usage);
    const char *kw = tok[0];
    int a[4] = {0, 0, 0, 0};
    float f = 1.0f;
    if (!strcmp(kw, "conv")) {
        for (int i = 0; i < 4; i++)
            if (!parse_int(tok[2 + i], &a[i]))
                return fr_error(FR_STATUS_FORMAT, "conv: '%s' is not a non-negative integer (%s)", tok[2 + i],
                                sx->usage);
        if (na == 6 && strcmp(tok[6], "nobias") != 0)
            return fr_error(FR_STATUS_FORMAT, "conv: unexpected '%s' (%s)", tok[6], sx->usage);
        return fr_model_conv2d(m, tok[1], a[0], a[1], a[2], a[3], na != 6);
    }
    if (!strcmp(kw, "linear")) {
        if (!parse_int(tok[2], &a[0]))
            return fr_error(FR_STATUS_FORMAT, "linear: '%s' is not a non-negative integer (%s)", tok[2], sx->usage);
        return fr_model_linear(m, tok[1], is_head ? n_classes : a[0]);
    }
    if (!strcmp(kw, "batchnorm"))
        return fr_model_batchnorm(m, tok[1]);
    if (!strcmp(kw, "relu"))
        return fr_model_relu(m);
    if (!strcmp(kw, "maxpool") || !strcmp(kw, "avgpool")) {
        for (int i = 0; i < na; i++)
            if (!parse_int(tok[1 + i], &a[i]))
                return fr_error(FR_STATUS_FORMAT, "%s: '%s' is not a non-negative integer (%s)", kw, tok[1 + i],
                                sx->usage);
        if (na == 1)
            a[1] = a[0];
        return kw[0] == 'm' ? fr_model_maxpool(m, a[0], a[1]) : fr_model_avgpool(m, a[0], a[1]);
    }
    if (!strcmp(kw, "gap"))
        return fr_model_global_avgpool(m);
    if (!strcmp(kw, "flatten"))
        return fr_model_flatten(m);
    if (!strcmp(kw, "dropout")) {
        if (!parse_float(tok[1], &f))
            return fr_error(FR_STATUS_FORMAT, "dropout: '%s' is not a number", tok[1]);
        return fr_model_dropout(m, f);
    }
    if (!strcmp(kw, "residual")) {
        enum fr_status st = fr_model_residual_begin(m, tok[1]);
        *open += st == FR_STATUS_OK;
        return st;
    }
    /* end */
    if (na == 1 && !parse_float(tok[1], &f))
        return fr_error(FR_STATUS_FORMAT, "end: '%s' is not a survival probability", tok[1]);
    if (*open == 0)
        return fr_error(FR_STATUS_FORMAT, "'end' without an open 'residual'");
    enum fr_status st = fr_model_residual_end(m, f);
    *open -= st == FR_STATUS_OK;
    return st;
}

/* Strips the "model: " prefix of layer-call errors: the file:line prefix says where already. */
static const char *reason(void)
{
    const char *e = fr_last_error();
    return strncmp(e, "model: ", 7) == 0 ? e + 7 : e;
}

enum fr_status fr_model_from_text(struct fr_ctx *ctx, const char *text, const char *src, int c, int h, int w,
                                  int n_classes, struct fr_model **out)
{
    *out = NULL;
    if (!src)
        src = "model";
    if (!text || n_classes <= 0)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: need a model text and at least one class", src);
    char *buf = strdup(text);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", src);
    /* the head is the last layer, which must be linear: find its line first */
    int last_line = 0, last_is_linear = 0, line_no = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[512], *tok[MF_MAX_TOK + 1];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 1 ? len : sizeof line - 1), p);
        line_no++;
        if (tokenize(line, tok) > 0) {
            last_line = line_no;
            last_is_linear = strcmp(tok[0], "linear") == 0;
        }
        p = e ? e + 1 : p + len;
    }
    if (!last_line || !last_is_linear) {
        free(buf);
        return last_line ? fr_error(FR_STATUS_FORMAT, "%s:%d: the last layer must be 'linear NAME N' (the classifier head)",
                                    src, last_line)
                         : fr_error(FR_STATUS_FORMAT, "%s: no layers", src);
    }
    struct fr_model *m = fr_model_new(ctx, c, h, w);
    if (!m) {
        free(buf);
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: %s", src, fr_last_error());
    }
    enum fr_status st = FR_STATUS_OK;
    int open = 0, open_line = 0;
    line_no = 0;
    for (char *p = buf; *p && st == FR_STATUS_OK;) {
        char *e = strchr(p, '\n');
        if (e)
            *e = 0;
        line_no++;
        char *tok[MF_MAX_TOK + 1];
        if (strlen(p) > 500) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%d: line too long", src, line_no);
            break;
        }
        int n = tokenize(p, tok);
        if (n > MF_MAX_TOK) {
            st = fr_error(FR_STATUS_FORMAT, "%s:%d: too many fields", src, line_no);
        } else if (n > 0) {
            int was_open = open;
            st = add_line(m, tok, n, line_no == last_line, n_classes, &open);
            if (st != FR_STATUS_OK) {
                char why[256];
                snprintf(why, sizeof why, "%s", reason());
                st = fr_error(st, "%s:%d: %s", src, line_no, why);
            } else if (open > was_open) {
                open_line = line_no;
            }
        }
        p = e ? e + 1 : p + strlen(p);
    }
    free(buf);
    if (st == FR_STATUS_OK && open)
        st = fr_error(FR_STATUS_FORMAT, "%s:%d: 'residual' block is never closed by 'end'", src, open_line);
    if (st != FR_STATUS_OK) {
        fr_model_free(m);
        return st;
    }
    *out = m;
    return FR_STATUS_OK;
}

enum fr_status fr_model_read_text(const char *path, char **text)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fr_error(FR_STATUS_IO, "%s: cannot open model file: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (n < cap - 1)
            break;
        if (cap >= (1u << 20)) {
            fclose(f);
            free(buf);
            return fr_error(FR_STATUS_FORMAT, "%s: model file larger than 1 MiB", path);
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    if (err) {
        free(buf);
        return fr_error(FR_STATUS_IO, "%s: read error", path);
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        return fr_error(FR_STATUS_FORMAT, "%s: not a text model file (contains NUL bytes)", path);
    }
    *text = buf;
    return FR_STATUS_OK;
}

enum fr_status fr_model_from_file(struct fr_ctx *ctx, const char *path, int c, int h, int w, int n_classes,
                                  struct fr_model **out)
{
    *out = NULL;
    char *text;
    enum fr_status st = fr_model_read_text(path, &text);
    if (st != FR_STATUS_OK)
        return st;
    st = fr_model_from_text(ctx, text, path, c, h, w, n_classes, out);
    free(text);
    return st;
}
