/* Model files: a text description of a layer stack (one layer per line, '#' comments) parsed into the
 * fr_model_* layer calls, with errors that name the file and line (and PyTorch layers frugal lacks). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal/model.h"
#include "frugal/status.h"

#define MF_MAX_TOK 12
#define MF_VALID                                                                                                    \
    "conv, linear, batchnorm, relu, relu6, hardswish, hardsigmoid, silu, sigmoid, tanh, gelu, maxpool, avgpool, "    \
    "adaptive_avgpool, gap, flatten, dropout, se, residual, end, normalize"

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
    {"conv", 5, 8, "conv NAME OUT_CH KERNEL STRIDE PAD [nobias] [groups=G] [dilation=D]"},
    {"linear", 2, 2, "linear NAME OUT_FEATURES"},
    {"batchnorm", 1, 3, "batchnorm NAME [eps=E] [momentum=M]"},
    {"relu", 0, 0, "relu"},
    {"relu6", 0, 0, "relu6"},
    {"hardswish", 0, 0, "hardswish"},
    {"hardsigmoid", 0, 0, "hardsigmoid"},
    {"silu", 0, 0, "silu"},
    {"sigmoid", 0, 0, "sigmoid"},
    {"tanh", 0, 0, "tanh"},
    {"gelu", 0, 0, "gelu"},
    {"maxpool", 1, 4, "maxpool KERNEL [STRIDE [PAD]] [ceil]"},
    {"avgpool", 1, 5, "avgpool KERNEL [STRIDE [PAD]] [ceil] [exclude_pad]"},
    {"adaptive_avgpool", 1, 2, "adaptive_avgpool OUT_H [OUT_W]"},
    {"gap", 0, 0, "gap"},
    {"flatten", 0, 0, "flatten"},
    {"dropout", 1, 1, "dropout P"},
    {"se", 2, 4, "se NAME SQUEEZE_CH [relu|silu|... [sigmoid|hardsigmoid|...]]"},
    {"residual", 1, 1, "residual NAME"},
    {"end", 0, 1, "end [SURVIVAL]"},
    {"normalize", 2, 8, "normalize MEAN... STD... (one of each per input channel)"},
};

/* PyTorch layers a model file may name that frugal has no op for (compared without case, '_' and a
 * trailing "1d"/"2d"), and those it has under another keyword. */
static const struct {
    const char *torch, *frugal, *what;
} TORCH_LAYERS[] = {
    {"conv", "conv", NULL}, {"batchnorm", "batchnorm", NULL}, {"linear", "linear", NULL},
    {"adaptiveavgpool", "adaptive_avgpool", NULL}, {"maxpool", "maxpool", NULL}, {"avgpool", "avgpool", NULL},
    {"squeezeexcitation", "se", NULL}, {"hardswish", "hardswish", NULL}, {"hardsigmoid", "hardsigmoid", NULL},
    {"stochasticdepth", "end SURVIVAL", NULL}, {"identity", "nothing (leave it out)", NULL},
    {"sequential", "its layers, one per line", NULL}, {"relu", "relu", NULL}, {"relu6", "relu6", NULL},
    {"silu", "silu", NULL}, {"sigmoid", "sigmoid", NULL}, {"flatten", "flatten", NULL}, {"dropout", "dropout", NULL},
    {"layernorm", NULL, "layer normalisation"}, {"groupnorm", NULL, "group normalisation"},
    {"instancenorm", NULL, "instance normalisation"}, {"localresponsenorm", NULL, "local response normalisation"},
    {"layernorm2d", NULL, "layer normalisation"}, {"convtranspose", NULL, "transposed convolution"},
    {"adaptivemaxpool", NULL, "adaptive max-pooling"}, {"lppool", NULL, "power-average pooling"},
    {"fractionalmaxpool", NULL, "fractional max-pooling"}, {"upsample", NULL, "upsampling"},
    {"upsamplingbilinear", NULL, "upsampling"}, {"upsamplingnearest", NULL, "upsampling"},
    {"pixelshuffle", NULL, "pixel shuffle"}, {"multiheadattention", NULL, "multi-head attention"},
    {"attention", NULL, "attention"}, {"transformer", NULL, "transformer blocks"},
    {"transformerencoderlayer", NULL, "transformer blocks"}, {"encoderblock", NULL, "transformer blocks"},
    {"lstm", NULL, "recurrent layers"}, {"gru", NULL, "recurrent layers"}, {"rnn", NULL, "recurrent layers"},
    {"embedding", NULL, "embeddings"}, {"prelu", NULL, "PReLU"}, {"elu", NULL, "ELU"}, {"selu", NULL, "SELU"},
    {"celu", NULL, "CELU"}, {"mish", NULL, "Mish"}, {"softplus", NULL, "softplus"}, {"softsign", NULL, "softsign"},
    {"hardtanh", NULL, "hardtanh"}, {"leakyrelu", NULL, "a leaky-ReLU layer keyword"},
    {"logsigmoid", NULL, "log-sigmoid"}, {"channelshuffle", NULL, "channel shuffle (ShuffleNet)"},
    {"permute", NULL, "permute layers (ConvNeXt, Swin)"}, {"cnblock", NULL, "ConvNeXt blocks"},
    {"zeropad", NULL, "explicit padding layers"}, {"constantpad", NULL, "explicit padding layers"},
    {"reflectionpad", NULL, "explicit padding layers"}, {"dropout2d", NULL, "channel dropout"},
    {"alphadropout", NULL, "alpha dropout"},
};

/* "Conv2d" / "layer_norm" / "BatchNorm2d" -> "conv" / "layernorm" / "batchnorm" */
static void torch_key(const char *kw, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = kw; *p && n + 1 < size; p++)
        if (*p != '_' && *p != '-' && *p != '.')
            out[n++] = (char)tolower((unsigned char)*p);
    out[n] = 0;
    if (n > 2 && (strcmp(out + n - 2, "2d") == 0 || strcmp(out + n - 2, "1d") == 0 || strcmp(out + n - 2, "3d") == 0))
        out[n - 2] = 0;
}

static enum fr_status unknown_layer(const char *kw)
{
    char key[64];
    torch_key(kw, key, sizeof key);
    for (size_t i = 0; i < sizeof TORCH_LAYERS / sizeof TORCH_LAYERS[0]; i++) {
        if (strcmp(TORCH_LAYERS[i].torch, key) != 0)
            continue;
        if (TORCH_LAYERS[i].what)
            return fr_error(FR_STATUS_UNSUPPORTED,
                            "'%s' is a PyTorch layer frugal does not have (missing op: %s); valid layers: " MF_VALID, kw,
                            TORCH_LAYERS[i].what);
        return fr_error(FR_STATUS_FORMAT, "unknown layer '%s': write it as '%s' (valid: " MF_VALID ")", kw,
                        TORCH_LAYERS[i].frugal ? TORCH_LAYERS[i].frugal : key);
    }
    return fr_error(FR_STATUS_FORMAT, "unknown layer '%s' (valid: " MF_VALID ")", kw);
}

static const struct mf_layer_syntax *find_syntax(const char *kw)
{
    for (size_t i = 0; i < sizeof SYNTAX / sizeof SYNTAX[0]; i++)
        if (strcmp(SYNTAX[i].kw, kw) == 0)
            return &SYNTAX[i];
    return NULL;
}

static bool parse_act(const char *s, enum fr_act *a)
{
    for (int i = 0; i < FR_ACT_COUNT; i++)
        if (strcmp(s, fr_act_name((enum fr_act)i)) == 0) {
            *a = (enum fr_act)i;
            return true;
        }
    return false;
}

/* "key=VALUE" with an integer (f == NULL) or a number */
static bool parse_kv(const char *tok, const char *key, int *v, float *f)
{
    size_t k = strlen(key);
    if (strncmp(tok, key, k) != 0 || tok[k] != '=')
        return false;
    return f ? parse_float(tok + k + 1, f) : parse_int(tok + k + 1, v);
}

struct mf_state {
    int open;                 /* residual blocks open */
    int open_line[16];        /* line of each open 'residual' */
    char open_name[16][48];
};

static enum fr_status bad_int(const char *kw, const char *tok, const struct mf_layer_syntax *sx)
{
    return fr_error(FR_STATUS_FORMAT, "%s: '%s' is not a non-negative integer (%s)", kw, tok, sx->usage);
}

/* One line's layer; returns FR_STATUS_OK or an error whose message the caller prefixes with file:line. */
static enum fr_status add_line(struct fr_model *m, char **tok, int n, bool is_head, int n_classes, int line_no,
                               struct mf_state *ms)
{
    const struct mf_layer_syntax *sx = find_syntax(tok[0]);
    if (!sx)
        return unknown_layer(tok[0]);
    int na = n - 1;
    if (na < sx->min_args || na > sx->max_args)
        return fr_error(FR_STATUS_FORMAT, "'%s' takes %s", tok[0], sx->usage);
    const char *kw = tok[0];
    int a[4] = {0, 0, 0, 0};
    float f = 1.0f;
    enum fr_act act;
    if (!strcmp(kw, "conv")) {
        for (int i = 0; i < 4; i++)
            if (!parse_int(tok[2 + i], &a[i]))
                return bad_int(kw, tok[2 + i], sx);
        struct fr_model_conv c = {a[0], a[1], a[2], a[3], 1, 1, true};
        for (int i = 6; i < n; i++) {
            if (!strcmp(tok[i], "nobias"))
                c.bias = false;
            else if (!parse_kv(tok[i], "groups", &c.groups, NULL) && !parse_kv(tok[i], "dilation", &c.dilation, NULL))
                return fr_error(FR_STATUS_FORMAT, "conv: unexpected '%s' (%s)", tok[i], sx->usage);
            if (c.groups < 1 || c.dilation < 1)
                return fr_error(FR_STATUS_FORMAT, "conv: '%s' must be at least 1", tok[i]);
        }
        return fr_model_conv2d_ex(m, tok[1], &c);
    }
    if (!strcmp(kw, "linear")) {
        if (!parse_int(tok[2], &a[0]))
            return bad_int(kw, tok[2], sx);
        if (a[0] == 0)
            return fr_error(FR_STATUS_FORMAT, "linear '%s': 0 outputs", tok[1]);
        return fr_model_linear(m, tok[1], is_head ? n_classes : a[0]);
    }
    if (!strcmp(kw, "batchnorm")) {
        float eps = 1e-5f, mom = 0.1f;
        for (int i = 2; i < n; i++)
            if (!parse_kv(tok[i], "eps", NULL, &eps) && !parse_kv(tok[i], "momentum", NULL, &mom))
                return fr_error(FR_STATUS_FORMAT, "batchnorm: unexpected '%s' (%s)", tok[i], sx->usage);
        return fr_model_batchnorm_ex(m, tok[1], eps, mom);
    }
    if (parse_act(kw, &act))
        return fr_model_activation(m, act);
    if (!strcmp(kw, "maxpool") || !strcmp(kw, "avgpool")) {
        bool max = kw[0] == 'm';
        struct fr_pool2d_params p = {0};
        int n_num = 0;
        for (int i = 1; i < n; i++) {
            if (!strcmp(tok[i], "ceil"))
                p.ceil_mode = true;
            else if (!max && !strcmp(tok[i], "exclude_pad"))
                p.exclude_pad = true;
            else if (n_num < 3 && i == n_num + 1 && parse_int(tok[i], &a[n_num]))
                n_num++;
            else
                return fr_error(FR_STATUS_FORMAT, "%s: unexpected '%s' (%s)", kw, tok[i], sx->usage);
        }
        if (n_num == 0)
            return fr_error(FR_STATUS_FORMAT, "%s: no kernel size (%s)", kw, sx->usage);
        p.kernel = a[0];
        p.stride = n_num > 1 ? a[1] : a[0];
        p.pad = a[2];
        if (p.stride == 0)
            return fr_error(FR_STATUS_FORMAT, "%s: stride 0 (%s)", kw, sx->usage);
        return fr_model_pool(m, max, &p);
    }
    if (!strcmp(kw, "adaptive_avgpool")) {
        for (int i = 0; i < na; i++)
            if (!parse_int(tok[1 + i], &a[i]))
                return bad_int(kw, tok[1 + i], sx);
        return fr_model_adaptive_avgpool(m, a[0], na == 2 ? a[1] : a[0]);
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
    if (!strcmp(kw, "se")) {
        enum fr_act sa = FR_ACT_RELU, gate = FR_ACT_SIGMOID;
        if (!parse_int(tok[2], &a[0]) || a[0] == 0)
            return fr_error(FR_STATUS_FORMAT, "se: '%s' is not a positive integer (%s)", tok[2], sx->usage);
        if ((na >= 3 && !parse_act(tok[3], &sa)) || (na >= 4 && !parse_act(tok[4], &gate)))
            return fr_error(FR_STATUS_FORMAT, "se: unknown activation '%s' (%s)", na >= 4 && parse_act(tok[3], &sa) ? tok[4] : tok[3],
                            sx->usage);
        return fr_model_squeeze_excite(m, tok[1], a[0], sa, gate);
    }
    if (!strcmp(kw, "normalize")) {
        float v[8];
        for (int i = 0; i < na; i++)
            if (!parse_float(tok[1 + i], &v[i]))
                return fr_error(FR_STATUS_FORMAT, "normalize: '%s' is not a number", tok[1 + i]);
        int c, h, w;
        fr_model_input_shape(m, &c, &h, &w);
        if (na != 2 * c)
            return fr_error(na % 2 ? FR_STATUS_FORMAT : FR_STATUS_SHAPE, "normalize: %d values for a %d-channel input (%s)",
                            na, c, sx->usage);
        return fr_model_set_normalization(m, c, v, v + c);
    }
    if (!strcmp(kw, "residual")) {
        if (ms->open == 16)
            return fr_error(FR_STATUS_FORMAT, "residual blocks nested too deep");
        enum fr_status st = fr_model_residual_begin(m, tok[1]);
        if (st == FR_STATUS_OK) {
            ms->open_line[ms->open] = line_no;
            snprintf(ms->open_name[ms->open], sizeof ms->open_name[0], "%s", tok[1]);
            ms->open++;
        }
        return st;
    }
    /* end */
    if (na == 1 && !parse_float(tok[1], &f))
        return fr_error(FR_STATUS_FORMAT, "end: '%s' is not a survival probability", tok[1]);
    if (ms->open == 0)
        return fr_error(FR_STATUS_FORMAT, "'end' without an open 'residual'");
    enum fr_status st = fr_model_residual_end(m, f);
    ms->open -= st == FR_STATUS_OK;
    return st;
}

/* How many lines of text start with the keyword 'end'. */
static int ends_after(const char *text)
{
    int n = 0;
    for (const char *p = text; p && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "end", 3) == 0 && (p[3] == 0 || isspace((unsigned char)p[3]) || p[3] == '#'))
            n++;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return n;
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
    struct mf_state ms = {0};
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
            st = add_line(m, tok, n, line_no == last_line, n_classes, line_no, &ms);
            if (st != FR_STATUS_OK) {
                char why[1024];
                snprintf(why, sizeof why, "%s", reason());
                if (strcmp(tok[0], "end") != 0 && ms.open > ends_after(e ? e + 1 : NULL)) /* a block left open */
                    st = fr_error(FR_STATUS_FORMAT, "%s:%d: residual '%s' (line %d) is never closed by 'end'; here: %s",
                                  src, line_no, ms.open_name[ms.open - 1], ms.open_line[ms.open - 1], why);
                else
                    st = fr_error(st, "%s:%d: %s", src, line_no, why);
            }
        }
        p = e ? e + 1 : p + strlen(p);
    }
    free(buf);
    if (st == FR_STATUS_OK && ms.open)
        st = fr_error(FR_STATUS_FORMAT, "%s:%d: residual '%s' is never closed by 'end'", src, ms.open_line[ms.open - 1],
                      ms.open_name[ms.open - 1]);
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
