/* Augmentation policies: the grammar `op(key=value,...);op(...)` shared by the CLI and config files, and the
 * per-sample compilation of a policy into program records (consecutive geometric ops fused into one warp). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment_internal.h"
#include "frugal/rng_host.h"

#define MAX_KEYS 8
#define MAX_STAGES 32
#define RNG_PER_STAGE 64u
#define MAX_RA_OPS 16
#define MAX_SHEAR 10.0 /* shear factor: tan of the angle (84 degrees) */

static const char *const interp_names[] = {"nearest", "bilinear", "bicubic", NULL};
static const char *const border_names[] = {"constant", "replicate", "reflect101", NULL};
static const char *const scale_names[] = {"torchvision", "tf", NULL};
static const char *const partner_names[] = {"perm", "roll", NULL};

struct keydef {
    const char *name;
    int n;               /* values: 1 scalar, 2 = (a,b), 3 = (a,b,c) or a scalar broadcast */
    double def[3];
    const char *const *enums;
};

enum op_id {
    OP_RRC, OP_RESIZE, OP_CROP, OP_PAD, OP_HFLIP, OP_VFLIP, OP_ROTATE, OP_SHEAR, OP_TRANSLATE, OP_SCALE,
    OP_PERSPECTIVE, OP_BRIGHTNESS, OP_CONTRAST, OP_COLOR, OP_SATURATION, OP_SHARPNESS, OP_POSTERIZE, OP_SOLARIZE,
    OP_SOLARIZE_ADD, OP_INVERT, OP_AUTOCONTRAST, OP_EQUALIZE, OP_GRAYSCALE, OP_NOISE, OP_CUTOUT, OP_ERASE,
    OP_RANDAUGMENT, OP_TRIVIALAUGMENT, OP_CUTMIX, OP_MIXUP, OP_NORMALIZE, OP_COUNT
};
enum op_kind { K_GEOM, K_SIZE, K_PIXEL, K_POLICY, K_MIX, K_NORM };

struct opdef {
    const char *name;
    enum op_kind kind;
    struct keydef keys[MAX_KEYS];
};

#define KI {"interp", 1, {1}, interp_names}
#define KIN {"interp", 1, {0}, interp_names}
#define KB {"border", 1, {0}, border_names}
#define KF {"fill", 1, {0}, NULL}
#define KP(v) {"p", 1, {v}, NULL}
#define KMAX(v) {"max", 1, {v}, NULL}

static const struct opdef ops[OP_COUNT] = {
    [OP_RRC] = {"rrc", K_SIZE, {{"size", 2, {224, 224}, NULL}, {"scale", 2, {0.08, 1.0}, NULL},
                                {"ratio", 2, {3.0 / 4.0, 4.0 / 3.0}, NULL}, KI}},
    [OP_RESIZE] = {"resize", K_SIZE, {{"size", 2, {224, 224}, NULL}, KI}},
    [OP_CROP] = {"crop", K_SIZE, {{"size", 2, {224, 224}, NULL}, {"random", 1, {0}, NULL}, KB, KF}},
    [OP_PAD] = {"pad", K_SIZE, {{"amount", 1, {4}, NULL}, KB, KF}},
    [OP_HFLIP] = {"hflip", K_GEOM, {KP(0.5)}},
    [OP_VFLIP] = {"vflip", K_GEOM, {KP(0.5)}},
    [OP_ROTATE] = {"rotate", K_GEOM, {{"degrees", 1, {30}, NULL}, KI, KB, KF, KP(1)}},
    [OP_SHEAR] = {"shear", K_GEOM, {{"x", 1, {0.3}, NULL}, {"y", 1, {0}, NULL}, KI, KB, KF, KP(1)}},
    [OP_TRANSLATE] = {"translate", K_GEOM, {{"x", 1, {0.1}, NULL}, {"y", 1, {0.1}, NULL}, KB, KF, KP(1)}},
    [OP_SCALE] = {"scale", K_GEOM, {{"min", 1, {0.9}, NULL}, {"max", 1, {1.1}, NULL}, KI, KB, KF, KP(1)}},
    [OP_PERSPECTIVE] = {"perspective", K_GEOM, {{"distortion", 1, {0.5}, NULL}, KI, KB, KF, KP(0.5)}},
    [OP_BRIGHTNESS] = {"brightness", K_PIXEL, {KMAX(0.4), KP(1)}},
    [OP_CONTRAST] = {"contrast", K_PIXEL, {KMAX(0.4), KP(1)}},
    [OP_COLOR] = {"color", K_PIXEL, {KMAX(0.4), KP(1)}},
    [OP_SATURATION] = {"saturation", K_PIXEL, {KMAX(0.4), KP(1)}},
    [OP_SHARPNESS] = {"sharpness", K_PIXEL, {KMAX(0.4), KP(1)}},
    [OP_POSTERIZE] = {"posterize", K_PIXEL, {{"bits", 1, {4}, NULL}, KP(0.5)}},
    [OP_SOLARIZE] = {"solarize", K_PIXEL, {{"threshold", 1, {128}, NULL}, KP(0.5)}},
    [OP_SOLARIZE_ADD] = {"solarize_add", K_PIXEL, {{"add", 1, {30}, NULL}, {"threshold", 1, {128}, NULL}, KP(0.5)}},
    [OP_INVERT] = {"invert", K_PIXEL, {KP(0.5)}},
    [OP_AUTOCONTRAST] = {"autocontrast", K_PIXEL, {KP(0.5)}},
    [OP_EQUALIZE] = {"equalize", K_PIXEL, {KP(0.5)}},
    [OP_GRAYSCALE] = {"grayscale", K_PIXEL, {KP(0.1)}},
    [OP_NOISE] = {"noise", K_PIXEL, {{"std", 1, {8}, NULL}, KP(1)}},
    [OP_CUTOUT] = {"cutout", K_PIXEL, {{"size", 1, {16}, NULL}, KF, KP(1)}},
    [OP_ERASE] = {"erase", K_PIXEL, {{"scale", 2, {0.02, 0.33}, NULL}, {"ratio", 2, {0.3, 3.3}, NULL}, KF, KP(0.5)}},
    [OP_RANDAUGMENT] = {"randaugment", K_POLICY, {{"n", 1, {2}, NULL}, {"m", 1, {9}, NULL},
                                                  {"scale", 1, {0}, scale_names}, KIN, {"fill", 1, {-1}, NULL}}},
    [OP_TRIVIALAUGMENT] = {"trivialaugment", K_POLICY, {KIN, KF}},
    [OP_CUTMIX] = {"cutmix", K_MIX, {{"alpha", 1, {1.0}, NULL}, KP(1), {"partner", 1, {0}, partner_names},
                                     {"area_fix", 1, {1}, NULL}}},
    [OP_MIXUP] = {"mixup", K_MIX, {{"alpha", 1, {0.2}, NULL}, KP(1), {"partner", 1, {0}, partner_names}}},
    [OP_NORMALIZE] = {"normalize", K_NORM, {{"mean", 3, {0.485, 0.456, 0.406}, NULL},
                                            {"std", 3, {0.229, 0.224, 0.225}, NULL}}},
};

struct stage {
    enum op_id op;
    double v[MAX_KEYS][3];
};

struct fr_aug_policy {
    int n;
    struct stage st[MAX_STAGES];
    int k; /* records per sample */
    int has_mix, has_norm;
    struct fr_aug_mix_cfg mix;
    float mean[4], std[4];
};

static int key_index(const struct opdef *d, const char *name)
{
    for (int i = 0; i < MAX_KEYS && d->keys[i].name; i++)
        if (!strcmp(d->keys[i].name, name))
            return i;
    return -1;
}

static double val(const struct stage *s, const char *key)
{
    int i = key_index(&ops[s->op], key);
    return i < 0 ? 0 : s->v[i][0];
}

static double val2(const struct stage *s, const char *key, int j)
{
    int i = key_index(&ops[s->op], key);
    return i < 0 ? 0 : s->v[i][j];
}

static void list_ops(char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < OP_COUNT && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", ops[i].name);
}

static void list_keys(const struct opdef *d, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < MAX_KEYS && d->keys[i].name && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", d->keys[i].name);
    if (!d->keys[0].name)
        snprintf(buf, size, "none");
}

static const char *skip_ws(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static const char *read_ident(const char *p, char *out, size_t size)
{
    size_t n = 0;
    while ((isalnum((unsigned char)*p) || *p == '_' || *p == '-') && n + 1 < size)
        out[n++] = (char)tolower((unsigned char)*p++);
    out[n] = 0;
    return p;
}

/* one value: number, enum word, or a parenthesised tuple of numbers */
static enum fr_status read_value(const char *op, const struct keydef *k, const char **pp, double *v)
{
    const char *p = skip_ws(*pp);
    int n = 0;
    if (k->enums && isalpha((unsigned char)*p)) {
        char word[32];
        p = read_ident(p, word, sizeof word);
        for (int i = 0; k->enums[i]; i++)
            if (!strcmp(word, k->enums[i]) || (!strcmp(word, "reflect_101") && i == 2 && k->enums == border_names)) {
                v[0] = v[1] = v[2] = i;
                *pp = p;
                return FR_STATUS_OK;
            }
        char valid[128] = "";
        size_t o = 0;
        for (int i = 0; k->enums[i]; i++)
            o += (size_t)snprintf(valid + o, sizeof valid - o, "%s%s", i ? ", " : "", k->enums[i]);
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s=%s is not valid (valid: %s)", op, k->name, word,
                        valid);
    }
    int tuple = *p == '(';
    if (tuple)
        p++;
    for (;;) {
        char *end;
        p = skip_ws(p);
        double x = strtod(p, &end);
        if (end == p || !isfinite(x))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s needs a number at '%.20s'", op, k->name, p);
        if (n >= 3)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s has too many values", op, k->name);
        v[n++] = x;
        p = skip_ws(end);
        if (!tuple || *p != ',')
            break;
        p++;
    }
    if (tuple) {
        if (*p != ')')
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s: missing ')'", op, k->name);
        p++;
    }
    if (n == 1)
        v[1] = v[2] = v[0];
    else if (k->n == 1 || (n != k->n && !(k->n == 3 && n == 1)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s takes %d value%s, got %d", op, k->name, k->n,
                        k->n == 1 ? "" : "s", n);
    *pp = p;
    return FR_STATUS_OK;
}

static enum fr_status check_stage(struct fr_aug_policy *pol, const struct stage *s, int *seen_pixel)
{
    const char *name = ops[s->op].name;
    enum op_kind kind = ops[s->op].kind;
    if ((pol->has_mix || pol->has_norm) &&
        !((kind == K_NORM && !pol->has_norm) || (kind == K_MIX && !pol->has_mix)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "policy: %s after %s: only one cutmix/mixup and one normalize, and they must come last", name,
                        pol->has_norm ? "normalize" : "cutmix/mixup");
    if (kind == K_SIZE && *seen_pixel >= 2)
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "policy: %s changes the image size and must come before rotate, shear and perspective", name);
    if (s->op == OP_ROTATE || s->op == OP_SHEAR || s->op == OP_PERSPECTIVE)
        *seen_pixel = *seen_pixel ? *seen_pixel : 2;
    if (kind == K_SIZE && *seen_pixel == 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "policy: %s changes the image size and must come before pixel ops and randaugment", name);
    if (kind == K_PIXEL || kind == K_POLICY)
        *seen_pixel = 1; /* 1: pixel ops seen; 2: only non-axis-aligned geometry seen */
    double p = val(s, "p");
    if (key_index(&ops[s->op], "p") >= 0 && !(p >= 0 && p <= 1))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: p=%g must be in [0, 1]", name, p);
    if (kind == K_SIZE && s->op != OP_PAD && !(val2(s, "size", 0) >= 1 && val2(s, "size", 1) >= 1 &&
                                               val2(s, "size", 0) <= 65536 && val2(s, "size", 1) <= 65536))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: size must be 1..65536", name);
    if (s->op == OP_PAD && !(val(s, "amount") >= 0 && val(s, "amount") <= 4096))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: pad: amount must be 0..4096");
    if (s->op == OP_SHEAR && !(fabs(val(s, "x")) <= MAX_SHEAR && fabs(val(s, "y")) <= MAX_SHEAR))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "policy: shear: x=%g, y=%g: shear factors must be in [-%g, %g] (1 = 45 degrees)", val(s, "x"),
                        val(s, "y"), (double)MAX_SHEAR, (double)MAX_SHEAR);
    if (s->op == OP_TRANSLATE && !(fabs(val(s, "x")) <= 1 && fabs(val(s, "y")) <= 1))
        return fr_error(FR_STATUS_INVALID_ARGUMENT,
                        "policy: translate: x=%g, y=%g: shifts are fractions of the image size in [-1, 1]", val(s, "x"),
                        val(s, "y"));
    if (s->op == OP_ROTATE && !(fabs(val(s, "degrees")) <= 360))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: rotate: degrees=%g must be in [-360, 360]",
                        val(s, "degrees"));
    if (s->op == OP_PERSPECTIVE && !(val(s, "distortion") >= 0 && val(s, "distortion") <= 1))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: perspective: distortion=%g must be in [0, 1]",
                        val(s, "distortion"));
    if (key_index(&ops[s->op], "max") >= 0 && !(val(s, "max") >= 0 && val(s, "max") <= 100))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: max=%g must be in [0, 100]", name, val(s, "max"));
    if (s->op == OP_POSTERIZE && !(val(s, "bits") >= 0 && val(s, "bits") <= 8))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: posterize: bits=%g must be 0..8", val(s, "bits"));
    if ((s->op == OP_NOISE && !(val(s, "std") >= 0 && val(s, "std") <= 255)) ||
        (s->op == OP_CUTOUT && !(val(s, "size") >= 0 && val(s, "size") <= 65536)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s=%g is out of range", name,
                        s->op == OP_NOISE ? "std" : "size", s->op == OP_NOISE ? val(s, "std") : val(s, "size"));
    if (s->op == OP_RANDAUGMENT) {
        double n = val(s, "n"), m = val(s, "m");
        int tf = (int)val(s, "scale");
        if (!(n >= 0 && n <= MAX_RA_OPS && n == floor(n)))
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: randaugment: n=%g must be an integer 0..%d", n,
                            MAX_RA_OPS);
        if (!(m >= 0 && m <= (tf ? 30 : 30) && m == floor(m)))
            return fr_error(FR_STATUS_INVALID_ARGUMENT,
                            "policy: randaugment: m=%g must be an integer bin 0..30 (TF scale: level 0..30, 10 = max)",
                            m);
    }
    if ((s->op == OP_CUTMIX || s->op == OP_MIXUP) && !(val(s, "alpha") > 0))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: alpha must be > 0", name);
    if (s->op == OP_SCALE && !(val(s, "min") > 0 && val(s, "max") >= val(s, "min")))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: scale: need 0 < min <= max");
    if (s->op == OP_NORMALIZE)
        for (int c = 0; c < 3; c++)
            if (!(s->v[1][c] > 0))
                return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: normalize: std must be > 0");
    if (s->op == OP_RRC && !(val2(s, "scale", 0) > 0 && val2(s, "scale", 1) >= val2(s, "scale", 0) &&
                             val2(s, "ratio", 0) > 0 && val2(s, "ratio", 1) >= val2(s, "ratio", 0)))
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: rrc: need 0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1]");
    return FR_STATUS_OK;
}

/* records per sample: one warp per run of geometric ops, one per pixel op, n per randaugment (at least one) */
static int policy_records(const struct fr_aug_policy *pol)
{
    int k = 0, in_geom = 0;
    for (int i = 0; i < pol->n; i++) {
        const struct stage *s = &pol->st[i];
        if (ops[s->op].kind == K_GEOM || ops[s->op].kind == K_SIZE) {
            k += !in_geom;
            in_geom = 1;
        } else {
            in_geom = 0;
            k += s->op == OP_RANDAUGMENT ? (int)val(s, "n") : 1;
        }
    }
    return k > 0 ? k : 1;
}

enum fr_status fr_aug_policy_parse(const char *spec, struct fr_aug_policy **out)
{
    *out = NULL;
    if (!spec)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: empty spec");
    struct fr_aug_policy *pol = calloc(1, sizeof *pol);
    if (!pol)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "policy: out of memory");
    const char *p = skip_ws(spec);
    char word[8];
    const char *after = skip_ws(read_ident(p, word, sizeof word));
    while (*after == ';')
        after = skip_ws(after + 1);
    if (!strcmp(word, "none") && !*after) { /* no augmentation */
        pol->k = 1;
        *out = pol;
        return FR_STATUS_OK;
    }
    int seen_pixel = 0, n_ops = 0;
    enum fr_status st = FR_STATUS_OK;
    char buf[512];
    for (;;) {
        p = skip_ws(p);
        if (!*p)
            break;
        if (*p == ';') {
            p++;
            continue;
        }
        char name[32];
        const char *start = p;
        p = read_ident(p, name, sizeof name);
        if (p == start) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: expected an op name at '%.20s'", start);
            goto fail;
        }
        int id = -1;
        for (int i = 0; i < OP_COUNT; i++)
            if (!strcmp(name, ops[i].name))
                id = i;
        if (!strcmp(name, "randomresizedcrop"))
            id = OP_RRC;
        if (!strcmp(name, "trivialaugmentwide"))
            id = OP_TRIVIALAUGMENT;
        if (id < 0) {
            list_ops(buf, sizeof buf);
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: unknown op '%s' (valid: %s)", name, buf);
            goto fail;
        }
        n_ops++;
        if (pol->n >= MAX_STAGES) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: more than %d ops", MAX_STAGES);
            goto fail;
        }
        struct stage *s = &pol->st[pol->n];
        const struct opdef *d = &ops[id];
        s->op = (enum op_id)id;
        for (int i = 0; i < MAX_KEYS && d->keys[i].name; i++)
            for (int j = 0; j < 3; j++)
                s->v[i][j] = d->keys[i].def[d->keys[i].n == 1 ? 0 : j];
        p = skip_ws(p);
        if (*p == '(') {
            p = skip_ws(p + 1);
            bool given[MAX_KEYS] = {false};
            while (*p != ')') {
                char key[32];
                const char *ks = p;
                p = read_ident(p, key, sizeof key);
                int ki = key_index(d, key);
                if (p == ks || ki < 0) {
                    list_keys(d, buf, sizeof buf);
                    st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: unknown key '%s' (valid: %s)", d->name,
                                  p == ks ? "" : key, buf);
                    goto fail;
                }
                if (given[ki]) {
                    st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: %s given twice", d->name, key);
                    goto fail;
                }
                given[ki] = true;
                p = skip_ws(p);
                if (*p != '=') {
                    st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: expected '=' after %s", d->name, key);
                    goto fail;
                }
                const char *q = p + 1;
                if ((st = read_value(d->name, &d->keys[ki], &q, s->v[ki])) != FR_STATUS_OK)
                    goto fail;
                p = skip_ws(q);
                if (*p == ',')
                    p = skip_ws(p + 1);
                else if (*p != ')') {
                    st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %s: expected ',' or ')' at '%.20s'", d->name,
                                  *p ? p : "end of spec");
                    goto fail;
                }
            }
            p++;
        }
        p = skip_ws(p);
        if (*p && *p != ';') {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: expected ';' after %s at '%.20s'", d->name, p);
            goto fail;
        }
        if ((st = check_stage(pol, s, &seen_pixel)) != FR_STATUS_OK)
            goto fail;
        enum op_kind kind = d->kind;
        if (kind == K_MIX) {
            pol->has_mix = 1;
            pol->mix.mode = id == OP_CUTMIX ? FR_AUG_MIX_CUTMIX : FR_AUG_MIX_MIXUP;
            pol->mix.alpha = val(s, "alpha");
            pol->mix.p = val(s, "p");
            pol->mix.roll = (int)val(s, "partner");
            pol->mix.no_area_fix = id == OP_CUTMIX && val(s, "area_fix") == 0;
        } else if (kind == K_NORM) {
            pol->has_norm = 1;
            for (int c = 0; c < 4; c++) {
                pol->mean[c] = (float)s->v[0][c < 3 ? c : 2];
                pol->std[c] = (float)s->v[1][c < 3 ? c : 2];
            }
        } else {
            pol->n++;
        }
    }
    if (n_ops == 0) {
        st = fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: '%s' has no op (give ops such as 'hflip', or 'none')", spec);
        goto fail;
    }
    pol->k = policy_records(pol);
    *out = pol;
    return FR_STATUS_OK;
fail:
    free(pol);
    return st;
}

void fr_aug_policy_free(struct fr_aug_policy *pol) { free(pol); }

bool fr_aug_policy_take_rrc(struct fr_aug_policy *pol, int h, int w, float scale[2], float ratio[2])
{
    const struct stage *s = &pol->st[0];
    if (pol->n == 0 || s->op != OP_RRC || val2(s, "size", 0) != h || val2(s, "size", 1) != w ||
        (int)val(s, "interp") != FR_AUG_BILINEAR)
        return false;
    for (int j = 0; j < 2; j++) {
        scale[j] = (float)val2(s, "scale", j);
        ratio[j] = (float)val2(s, "ratio", j);
    }
    memmove(&pol->st[0], &pol->st[1], (size_t)(pol->n - 1) * sizeof pol->st[0]);
    pol->n--;
    pol->k = policy_records(pol);
    return true;
}
bool fr_aug_policy_has_ops(const struct fr_aug_policy *pol) { return pol->n > 0; }
int fr_aug_policy_max_ops(const struct fr_aug_policy *pol) { return pol->k; }
const struct fr_aug_mix_cfg *fr_aug_policy_mix(const struct fr_aug_policy *pol) { return pol->has_mix ? &pol->mix : NULL; }

bool fr_aug_policy_mirror_only(const struct fr_aug_policy *pol)
{
    for (int i = 0; i < pol->n; i++)
        if (pol->st[i].op != OP_HFLIP)
            return false;
    return pol->n > 0 && !pol->has_mix;
}

bool fr_aug_policy_mirrors(const struct fr_aug_policy *pol, const float *rec)
{
    bool mirrored = false; /* hflips make one warp whose map sends x to w - 1 - x (or the identity) */
    for (int r = 0; r < pol->k; r++, rec += FR_AUG_REC)
        if ((int)rec[FR_AUG_R_CODE] == FR_AUG_CODE_WARP) {
            double m[9];
            memcpy(m, rec + FR_AUG_R_M, sizeof m);
            mirrored ^= m[0] < 0;
        }
    return mirrored;
}

int fr_aug_policy_normalize(const struct fr_aug_policy *pol, float mean[4], float std[4])
{
    if (!pol->has_norm)
        return 0;
    memcpy(mean, pol->mean, sizeof pol->mean);
    memcpy(std, pol->std, sizeof pol->std);
    return 1;
}

/* size after a size-changing stage */
static void stage_size(const struct stage *s, int *h, int *w)
{
    if (s->op == OP_PAD) {
        int a = (int)val(s, "amount");
        *h += 2 * a, *w += 2 * a;
    } else if (ops[s->op].kind == K_SIZE) {
        *h = (int)val2(s, "size", 0);
        *w = (int)val2(s, "size", 1);
    }
}

void fr_aug_policy_out_size(const struct fr_aug_policy *pol, int in_h, int in_w, int *out_h, int *out_w)
{
    int h = in_h, w = in_w;
    for (int i = 0; i < pol->n; i++)
        stage_size(&pol->st[i], &h, &w);
    *out_h = h, *out_w = w;
}

struct draw {
    uint64_t seed;
    uint32_t step, sample, base;
};

static double U(const struct draw *d, uint32_t i) { return fr_aug_u01(d->seed, d->step, d->sample, d->base + i); }
/* torch.randint(lo, hi) */
static int randint(const struct draw *d, uint32_t i, int lo, int hi)
{
    return hi <= lo ? lo : lo + (int)(U(d, i) * (hi - lo));
}

/* torchvision RandomResizedCrop.get_params: (top, left, height, width) */
static void rrc_params(const struct stage *s, const struct draw *d, int h, int w, int *ci, int *cj, int *ch, int *cw)
{
    double area = (double)h * w, s0 = val2(s, "scale", 0), s1 = val2(s, "scale", 1);
    double lr0 = log(val2(s, "ratio", 0)), lr1 = log(val2(s, "ratio", 1));
    for (uint32_t t = 0; t < 10; t++) {
        double target = area * (s0 + U(d, 1 + 4 * t) * (s1 - s0));
        double ar = exp(lr0 + U(d, 2 + 4 * t) * (lr1 - lr0));
        int ww = (int)lrint(sqrt(target * ar)), hh = (int)lrint(sqrt(target / ar));
        if (ww > 0 && ww <= w && hh > 0 && hh <= h) {
            *ci = randint(d, 3 + 4 * t, 0, h - hh + 1);
            *cj = randint(d, 4 + 4 * t, 0, w - ww + 1);
            *ch = hh, *cw = ww;
            return;
        }
    }
    /* fallback: central crop with the ratio clamped into range */
    double in_ratio = (double)w / h;
    int ww = w, hh = h;
    if (in_ratio < val2(s, "ratio", 0))
        hh = (int)lrint(ww / val2(s, "ratio", 0));
    else if (in_ratio > val2(s, "ratio", 1))
        ww = (int)lrint(hh * val2(s, "ratio", 1));
    *ch = hh, *cw = ww, *ci = (h - hh) / 2, *cj = (w - ww) / 2;
}

/* maps the crop (top i, left j, ch×cw) onto oh×ow with pixel-area alignment (half-pixel centres) */
static void crop_resize(double m[9], int i, int j, int ch, int cw, int oh, int ow)
{
    double sx = (double)ow / cw, sy = (double)oh / ch;
    double r[9] = {sx, 0, (0.5 - j) * sx - 0.5, 0, sy, (0.5 - i) * sy - 0.5, 0, 0, 1};
    memcpy(m, r, sizeof r);
}

/* forward matrix of one geometric stage on an h×w image; *interp raised when it interpolates */
static enum fr_status geom_stage(const struct stage *s, const struct draw *d, int *h, int *w, double m[9], int *interp,
                                 int *border, float *fill, int win[4])
{
    win[0] = win[1] = win[2] = win[3] = 0;
    fr_geom_identity(m);
    int ki = key_index(&ops[s->op], "border"), kf = key_index(&ops[s->op], "fill");
    int kint = key_index(&ops[s->op], "interp");
    int applied = 1;
    int pk = key_index(&ops[s->op], "p");
    if (pk >= 0 && !(U(d, 0) < s->v[pk][0]))
        applied = 0;
    double cx = (*w - 1) * 0.5, cy = (*h - 1) * 0.5;
    int smooth = 0; /* the map is not a whole-pixel shift */
    switch (s->op) {
    case OP_RRC: {
        int ci, cj, ch, cw, oh = (int)val2(s, "size", 0), ow = (int)val2(s, "size", 1);
        rrc_params(s, d, *h, *w, &ci, &cj, &ch, &cw);
        crop_resize(m, ci, cj, ch, cw, oh, ow);
        win[0] = cj, win[1] = ci, win[2] = cj + cw, win[3] = ci + ch;
        *h = oh, *w = ow;
        smooth = ch != oh || cw != ow;
        break;
    }
    case OP_RESIZE: {
        int oh = (int)val2(s, "size", 0), ow = (int)val2(s, "size", 1);
        crop_resize(m, 0, 0, *h, *w, oh, ow);
        smooth = oh != *h || ow != *w;
        *h = oh, *w = ow;
        break;
    }
    case OP_CROP: {
        int oh = (int)val2(s, "size", 0), ow = (int)val2(s, "size", 1), i, j;
        if (val(s, "random") != 0)
            i = randint(d, 1, 0, *h - oh + 1), j = randint(d, 2, 0, *w - ow + 1);
        else
            i = (int)lrint((*h - oh) / 2.0), j = (int)lrint((*w - ow) / 2.0);
        fr_geom_translate(m, -j, -i);
        win[0] = j, win[1] = i, win[2] = j + ow, win[3] = i + oh;
        *h = oh, *w = ow;
        break;
    }
    case OP_PAD: {
        int a = (int)val(s, "amount");
        fr_geom_translate(m, a, a);
        *h += 2 * a, *w += 2 * a;
        break;
    }
    case OP_HFLIP:
        if (applied)
            m[0] = -1, m[2] = *w - 1;
        break;
    case OP_VFLIP:
        if (applied)
            m[4] = -1, m[5] = *h - 1;
        break;
    case OP_ROTATE:
        if (applied) {
            fr_geom_rotate(m, (2 * U(d, 1) - 1) * val(s, "degrees"), cx, cy);
            smooth = 1;
        }
        break;
    case OP_SHEAR:
        if (applied) {
            fr_geom_shear(m, (2 * U(d, 1) - 1) * val(s, "x"), (2 * U(d, 2) - 1) * val(s, "y"), cx, cy);
            smooth = 1;
        }
        break;
    case OP_TRANSLATE:
        if (applied)
            fr_geom_translate(m, lrint((2 * U(d, 1) - 1) * val(s, "x") * *w), lrint((2 * U(d, 2) - 1) * val(s, "y") * *h));
        break;
    case OP_SCALE:
        if (applied) {
            double sc = val(s, "min") + U(d, 1) * (val(s, "max") - val(s, "min"));
            fr_geom_scale(m, sc, sc, cx, cy);
            smooth = 1;
        }
        break;
    case OP_PERSPECTIVE:
        if (applied) { /* torchvision RandomPerspective.get_params */
            double dist = val(s, "distortion");
            int W = *w, H = *h, hw = (int)(dist * (W / 2)), hh = (int)(dist * (H / 2));
            double src[8] = {0, 0, W - 1, 0, W - 1, H - 1, 0, H - 1};
            double dst[8] = {randint(d, 1, 0, hw + 1),         randint(d, 2, 0, hh + 1),
                             randint(d, 3, W - hw - 1, W),     randint(d, 4, 0, hh + 1),
                             randint(d, 5, W - hw - 1, W),     randint(d, 6, H - hh - 1, H),
                             randint(d, 7, 0, hw + 1),         randint(d, 8, H - hh - 1, H)};
            if (fr_geom_perspective_from_points(src, dst, m) != FR_STATUS_OK)
                fr_geom_identity(m); /* tiny images can collapse corners: leave them unchanged */
            smooth = 1;
        }
        break;
    default:
        break;
    }
    if (applied && ki >= 0)
        *border = (int)s->v[ki][0];
    if (applied && kf >= 0)
        *fill = (float)s->v[kf][0];
    if (smooth && kint >= 0 && (int)s->v[kint][0] > *interp)
        *interp = (int)s->v[kint][0];
    return FR_STATUS_OK;
}

static void pixel_stage(const struct stage *s, const struct draw *d, int h, int w, float *rec)
{
    fr_aug_make_simple(rec, FR_AUG_OP_IDENTITY, 0, 0);
    if (!(U(d, 0) < val(s, "p")))
        return;
    double mx = val(s, "max"), lo = mx < 1 ? 1 - mx : 0, f = lo + U(d, 1) * (1 + mx - lo);
    switch (s->op) {
    case OP_BRIGHTNESS: fr_aug_make_simple(rec, FR_AUG_OP_BRIGHTNESS, (float)f, 0); return;
    case OP_CONTRAST: fr_aug_make_simple(rec, FR_AUG_OP_CONTRAST, (float)f, 0); return;
    case OP_COLOR:
    case OP_SATURATION: fr_aug_make_simple(rec, FR_AUG_OP_COLOR, (float)f, 0); return;
    case OP_SHARPNESS: fr_aug_make_simple(rec, FR_AUG_OP_SHARPNESS, (float)f, 0); return;
    case OP_POSTERIZE: fr_aug_make_simple(rec, FR_AUG_OP_POSTERIZE, (float)val(s, "bits"), 0); return;
    case OP_SOLARIZE: fr_aug_make_simple(rec, FR_AUG_OP_SOLARIZE, (float)val(s, "threshold"), 0); return;
    case OP_SOLARIZE_ADD: fr_aug_make_simple(rec, FR_AUG_OP_SOLARIZE_ADD, (float)val(s, "add"), (float)val(s, "threshold")); return;
    case OP_INVERT: fr_aug_make_simple(rec, FR_AUG_OP_INVERT, 0, 0); return;
    case OP_AUTOCONTRAST: fr_aug_make_simple(rec, FR_AUG_OP_AUTOCONTRAST, 0, 0); return;
    case OP_EQUALIZE: fr_aug_make_simple(rec, FR_AUG_OP_EQUALIZE, 0, 0); return;
    case OP_GRAYSCALE: fr_aug_make_simple(rec, FR_AUG_OP_GRAYSCALE, 0, 0); return;
    case OP_NOISE: {
        fr_philox4 r = fr_rng_block((uint32_t)d->seed, (uint32_t)(d->seed >> 32), FR_RNG_AUGMENT, d->step, d->sample,
                                    d->base + 5);
        fr_aug_make_simple(rec, FR_AUG_OP_NOISE, (float)val(s, "std"), 0);
        rec[FR_AUG_R_KEY] = (float)(r.v[0] & 0xFFFFFF);
        rec[FR_AUG_R_KEY + 1] = (float)(r.v[0] >> 24);
        rec[FR_AUG_R_KEY + 2] = (float)(r.v[1] & 0xFFFFFF);
        return;
    }
    case OP_CUTOUT: {
        int sz = (int)val(s, "size"), cx = randint(d, 2, 0, w), cy = randint(d, 3, 0, h);
        fr_aug_make_simple(rec, FR_AUG_OP_CUTOUT, (float)val(s, "fill"), 0);
        fr_aug_set_box(rec, cx - sz / 2, cy - sz / 2, cx - sz / 2 + sz, cy - sz / 2 + sz);
        return;
    }
    case OP_ERASE: { /* torchvision RandomErasing.get_params */
        double area = (double)h * w, lr0 = log(val2(s, "ratio", 0)), lr1 = log(val2(s, "ratio", 1));
        for (uint32_t t = 0; t < 10; t++) {
            double ea = area * (val2(s, "scale", 0) + U(d, 2 + 4 * t) * (val2(s, "scale", 1) - val2(s, "scale", 0)));
            double ar = exp(lr0 + U(d, 3 + 4 * t) * (lr1 - lr0));
            int eh = (int)lrint(sqrt(ea * ar)), ew = (int)lrint(sqrt(ea / ar));
            if (eh < h && ew < w) {
                int i = randint(d, 4 + 4 * t, 0, h - eh + 1), j = randint(d, 5 + 4 * t, 0, w - ew + 1);
                fr_aug_make_simple(rec, FR_AUG_OP_CUTOUT, (float)val(s, "fill"), 0);
                fr_aug_set_box(rec, j, i, j + ew, i + eh);
                return;
            }
        }
        return;
    }
    default:
        return;
    }
}

enum fr_status fr_aug_policy_draw(const struct fr_aug_policy *pol, uint64_t seed, uint32_t step, uint32_t sample,
                                  int in_h, int in_w, float *rec)
{
    if (in_h < 1 || in_w < 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: image size %dx%d", in_w, in_h);
    int h = in_h, w = in_w, r = 0, pending = 0, interp = 0, border = 0, have_win = 0, win[4] = {0, 0, 0, 0};
    float fill = 0;
    double F[9];
    fr_geom_identity(F);
    for (int i = 0; i <= pol->n; i++) {
        const struct stage *s = i < pol->n ? &pol->st[i] : NULL;
        struct draw d = {seed, step, sample, (uint32_t)i * RNG_PER_STAGE};
        enum op_kind kind = s ? ops[s->op].kind : K_PIXEL;
        if (s && (kind == K_GEOM || kind == K_SIZE)) {
            double G[9];
            int cw[4];
            enum fr_status st = geom_stage(s, &d, &h, &w, G, &interp, &border, &fill, cw);
            if (st != FR_STATUS_OK)
                return st;
            if (cw[2] > cw[0]) { /* a crop: remember its window in the run's source pixels (F is axis-aligned) */
                double inv[9], ax, ay, bx, by;
                if ((st = fr_geom_invert(F, inv)) != FR_STATUS_OK)
                    return st;
                fr_geom_apply(inv, cw[0], cw[1], &ax, &ay);
                fr_geom_apply(inv, cw[2] - 1, cw[3] - 1, &bx, &by);
                int nw[4] = {(int)floor(fmin(ax, bx) + 1e-6), (int)floor(fmin(ay, by) + 1e-6),
                             (int)ceil(fmax(ax, bx) - 1e-6) + 1, (int)ceil(fmax(ay, by) - 1e-6) + 1};
                if (have_win) {
                    nw[0] = nw[0] > win[0] ? nw[0] : win[0], nw[1] = nw[1] > win[1] ? nw[1] : win[1];
                    nw[2] = nw[2] < win[2] ? nw[2] : win[2], nw[3] = nw[3] < win[3] ? nw[3] : win[3];
                }
                memcpy(win, nw, sizeof nw);
                have_win = 1;
            }
            fr_geom_mul(G, F, F);
            pending = 1;
            continue;
        }
        if (pending) { /* one resample for the whole run of geometric ops */
            double inv[9];
            enum fr_status st = fr_geom_invert(F, inv);
            if (st != FR_STATUS_OK)
                return st;
            const int none[4] = {0, 0, 0, 0};
            fr_aug_make_warp_window(rec + (size_t)r++ * FR_AUG_REC, inv, interp, border, fill, have_win ? win : none);
            fr_geom_identity(F);
            pending = 0, interp = 0, border = 0, fill = 0, have_win = 0;
        }
        if (!s)
            break;
        if (kind == K_PIXEL)
            pixel_stage(s, &d, h, w, rec + (size_t)r++ * FR_AUG_REC);
        else if (s->op == OP_RANDAUGMENT || s->op == OP_TRIVIALAUGMENT) {
            struct fr_aug_ra_cfg cfg = {.n = (int)val(s, "n"), .m = (int)val(s, "m"), .tf = (int)val(s, "scale"),
                                        .interp = (int)val(s, "interp"), .fill = (float)val(s, "fill")};
            if (s->op == OP_RANDAUGMENT && cfg.fill < 0)
                cfg.fill = cfg.tf ? 128.0f : 0.0f;
            if (s->op == OP_RANDAUGMENT)
                r += fr_aug_randaugment_draw(&cfg, seed, step, sample, d.base, h, w, rec + (size_t)r * FR_AUG_REC);
            else
                r += fr_aug_trivialaugment_draw(&cfg, seed, step, sample, d.base, h, w, rec + (size_t)r * FR_AUG_REC);
        }
    }
    for (; r < pol->k; r++)
        fr_aug_make_simple(rec + (size_t)r * FR_AUG_REC, FR_AUG_OP_IDENTITY, 0, 0);
    return FR_STATUS_OK;
}

enum fr_status fr_aug_policy_draw_batch(const struct fr_aug_policy *pol, uint64_t seed, uint32_t step,
                                        uint32_t first_sample, int n, int batch, int in_h, int in_w, float *prog,
                                        float *mix)
{
    if (n < 0 || n > batch || batch < 1)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "policy: %d samples in a batch of %d", n, batch);
    const size_t per = (size_t)pol->k * FR_AUG_REC;
    for (int i = 0; i < n; i++) {
        enum fr_status st = fr_aug_policy_draw(pol, seed, step, first_sample + (uint32_t)i, in_h, in_w, prog + i * per);
        if (st != FR_STATUS_OK)
            return st;
    }
    memset(prog + (size_t)n * per, 0, (size_t)(batch - n) * per * sizeof(float)); /* FR_AUG_OP_IDENTITY */
    if (!mix)
        return FR_STATUS_OK;
    memset(mix, 0, sizeof(float) * FR_AUG_MIX_REC * (size_t)batch);
    for (int i = 0; i < batch; i++) /* unmixed: own label with weight 1 */
        mix[i * FR_AUG_MIX_REC + 1] = (float)i, mix[i * FR_AUG_MIX_REC + 2] = 1.0f;
    if (!pol->has_mix || n == 0)
        return FR_STATUS_OK;
    int oh, ow;
    fr_aug_policy_out_size(pol, in_h, in_w, &oh, &ow);
    return fr_aug_mix_draw_at(&pol->mix, seed, step, first_sample, n, oh, ow, mix);
}

size_t fr_aug_policy_table_len(const struct fr_aug_policy *pol, int in_h, int in_w)
{
    int oh, ow, persp = 0;
    fr_aug_policy_out_size(pol, in_h, in_w, &oh, &ow);
    for (int i = 0; i < pol->n; i++)
        persp |= pol->st[i].op == OP_PERSPECTIVE;
    size_t per_warp = 1 + (persp ? 2 * (size_t)oh * ow : 2 * ((size_t)oh + ow));
    return (size_t)pol->k * (1 + per_warp); /* an offset per record, at most K warps */
}

const char *fr_aug_policy_resizing_op(const struct fr_aug_policy *pol, int in_h, int in_w)
{
    int h = in_h, w = in_w;
    for (int i = 0; i < pol->n; i++) {
        stage_size(&pol->st[i], &h, &w);
        if (h != in_h || w != in_w)
            return ops[pol->st[i].op].name;
    }
    return "none";
}
