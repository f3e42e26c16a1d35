/* safetensors: validating reader (cJSON header), dtype conversion to f32/i32, serializer and atomic writer. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frugal/io.h"

/* The reference implementation's limit; a larger header is a corrupt length field, not a real model. */
#define FR_ST_MAX_HEADER 100000000ull

static const struct {
    const char *name;
    size_t size;
} dtypes[FR_ST_DTYPE_COUNT] = {
    [FR_ST_BOOL] = {"BOOL", 1}, [FR_ST_U8] = {"U8", 1},     [FR_ST_I8] = {"I8", 1},    [FR_ST_I16] = {"I16", 2},
    [FR_ST_U16] = {"U16", 2},   [FR_ST_F16] = {"F16", 2},   [FR_ST_BF16] = {"BF16", 2}, [FR_ST_I32] = {"I32", 4},
    [FR_ST_U32] = {"U32", 4},   [FR_ST_F32] = {"F32", 4},   [FR_ST_I64] = {"I64", 8},  [FR_ST_U64] = {"U64", 8},
    [FR_ST_F64] = {"F64", 8},
};

const char *fr_st_dtype_name(enum fr_st_dtype t) { return (unsigned)t < FR_ST_DTYPE_COUNT ? dtypes[t].name : "?"; }
size_t fr_st_dtype_size(enum fr_st_dtype t) { return (unsigned)t < FR_ST_DTYPE_COUNT ? dtypes[t].size : 0; }

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < FR_ST_DTYPE_COUNT; i++)
        if (!strcmp(s, dtypes[i].name))
            return i;
    return -1;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void fr_st_free(struct fr_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->buf);
    free(st->name);
    free(st);
}

int64_t fr_st_numel(const struct fr_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* A JSON number that is a non-negative integer exactly representable (< 2^53). */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct fr_st_tensor *)a)->name, ((const struct fr_st_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const struct fr_st_tensor *x = *(const struct fr_st_tensor *const *)a, *y = *(const struct fr_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Parses one tensor entry; errors name the file and the tensor. */
static enum fr_status parse_entry(const char *file, const cJSON *e, size_t data_size, struct fr_st_tensor *t)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': header entry is not an object", file, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': missing or non-string dtype", file, name);
    int d = dtype_from_name(dt->valuestring);
    if (d < 0)
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': unknown dtype '%.20s'", file, name, dt->valuestring);
    t->dtype = (enum fr_st_dtype)d;
    if (!cJSON_IsArray(shape))
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': missing or non-array shape", file, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > FR_ST_MAX_DIMS)
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", file, name, nd,
                        FR_ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    bool overflow = false;
    int i = 0;
    for (const cJSON *v = shape->child; v; v = v->next, i++) {
        uint64_t x;
        if (!json_uint(v, &x))
            return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': shape entry %d is not a non-negative integer", file,
                            name, i);
        t->shape[i] = (int64_t)x;
        if (__builtin_mul_overflow(numel, (size_t)x, &numel))
            overflow = true;
    }
    size_t nbytes;
    if (overflow || __builtin_mul_overflow(numel, dtypes[d].size, &nbytes))
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': shape too large", file, name);
    uint64_t b, en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &b) ||
        !json_uint(offs->child->next, &en))
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': data_offsets is not [begin, end]", file, name);
    if (en < b)
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", file, name,
                        (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %zu data bytes",
                        file, name, (unsigned long long)b, (unsigned long long)en, data_size);
    if (en - b != nbytes)
        return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': %llu data bytes, shape and %s need %zu", file, name,
                        (unsigned long long)(en - b), dtypes[d].name, nbytes);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    return FR_STATUS_OK;
}

static enum fr_status parse_metadata(struct fr_safetensors *st, const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return fr_error(FR_STATUS_FORMAT, "%s: __metadata__ is not an object", st->name);
    int n = cJSON_GetArraySize(m);
    st->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    st->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", st->name);
    for (const cJSON *v = m->child; v; v = v->next) {
        if (!cJSON_IsString(v))
            return fr_error(FR_STATUS_FORMAT, "%s: __metadata__ value of '%s' is not a string", st->name, v->string);
        for (int i = 0; i < st->n_meta; i++)
            if (!strcmp(st->meta_keys[i], v->string))
                return fr_error(FR_STATUS_FORMAT, "%s: duplicate __metadata__ key '%s'", st->name, v->string);
        st->meta_keys[st->n_meta] = dupstr(v->string);
        st->meta_values[st->n_meta] = dupstr(v->valuestring);
        if (!st->meta_keys[st->n_meta] || !st->meta_values[st->n_meta]) {
            st->n_meta++;
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", st->name);
        }
        st->n_meta++;
    }
    return FR_STATUS_OK;
}

/* Validates st->buf[0..size) and fills the tensor table. */
static enum fr_status parse(struct fr_safetensors *st)
{
    const char *file = st->name;
    if (st->size < 8)
        return fr_error(FR_STATUS_FORMAT, "%s: %zu bytes, too short for the 8-byte header length", file, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | st->buf[i];
    /* a header length in the upper bytes means the file starts with something else, e.g. text */
    bool text = true;
    char start[9];
    for (size_t i = 0; i < 8; i++) {
        uint8_t b = st->buf[i];
        text &= b == '\t' || b == '\n' || b == '\r' || (b >= 32 && b < 127);
        start[i] = b < 32 ? ' ' : (char)b;
    }
    start[8] = 0;
    if (hlen > st->size - 8 && text)
        return fr_error(FR_STATUS_FORMAT, "%s: not a safetensors file (it starts with the text \"%s\": a model file "
                        "or a CSV?)", file, start);
    if (hlen > st->size - 8)
        return fr_error(FR_STATUS_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", file,
                        (unsigned long long)hlen, st->size);
    if (hlen > FR_ST_MAX_HEADER)
        return fr_error(FR_STATUS_FORMAT, "%s: header length %llu is over the %llu limit", file,
                        (unsigned long long)hlen, FR_ST_MAX_HEADER);
    const char *h = (const char *)st->buf + 8;
    if (hlen < 2 || h[0] != '{')
        return fr_error(FR_STATUS_FORMAT, "%s: header does not start with '{'", file);
    if (memchr(h, 0, (size_t)hlen))
        return fr_error(FR_STATUS_FORMAT, "%s: header contains a NUL byte", file);
    size_t data_size = st->size - 8 - (size_t)hlen;
    const uint8_t *data = st->buf + 8 + hlen;
    /* cJSON checks the terminator only when it is inside the given length, so parse a terminated copy */
    char *hj = malloc((size_t)hlen + 1);
    if (!hj)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory for a %llu-byte header", file,
                        (unsigned long long)hlen);
    memcpy(hj, h, (size_t)hlen);
    hj[hlen] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hj, (size_t)hlen + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= hj ? (size_t)(end - hj) : 0;
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= hj && ep <= hj + hlen)
            at = (size_t)(ep - hj);
        free(hj);
        return fr_error(FR_STATUS_FORMAT, "%s: header is not valid JSON (error near byte %zu of %llu)", file, at,
                        (unsigned long long)hlen);
    }
    enum fr_status s = FR_STATUS_OK;
    struct fr_st_tensor **order = NULL;
    if (!cJSON_IsObject(root)) {
        s = fr_error(FR_STATUS_FORMAT, "%s: header is not a JSON object", file);
        goto out;
    }
    int n = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    if (!st->tensors) {
        s = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", file);
        goto out;
    }
    bool seen_meta = false;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (seen_meta) {
                s = fr_error(FR_STATUS_FORMAT, "%s: duplicate __metadata__", file);
                goto out;
            }
            seen_meta = true;
            if ((s = parse_metadata(st, e)) != FR_STATUS_OK)
                goto out;
            continue;
        }
        struct fr_st_tensor *t = &st->tensors[st->n_tensors];
        if (!(t->name = dupstr(e->string))) {
            s = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", file);
            goto out;
        }
        st->n_tensors++;
        if ((s = parse_entry(file, e, data_size, t)) != FR_STATUS_OK)
            goto out;
        t->data = data + t->begin;
    }
    /* duplicate names: JSON allows them syntactically, a tensor table cannot */
    order = malloc(sizeof *order * ((size_t)st->n_tensors + 1));
    struct fr_st_tensor *byname = malloc(sizeof *byname * ((size_t)st->n_tensors + 1));
    if (!order || !byname) {
        free(byname);
        s = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", file);
        goto out;
    }
    memcpy(byname, st->tensors, sizeof *byname * (size_t)st->n_tensors);
    qsort(byname, (size_t)st->n_tensors, sizeof *byname, cmp_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (!strcmp(byname[i - 1].name, byname[i].name)) {
            s = fr_error(FR_STATUS_FORMAT, "%s: duplicate tensor name '%s'", file, byname[i].name);
            break;
        }
    free(byname);
    if (s != FR_STATUS_OK)
        goto out;
    /* tensors must tile the data exactly, as the reference reader demands: no overlap, no hole, no tail */
    for (int i = 0; i < st->n_tensors; i++)
        order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n_tensors, sizeof *order, cmp_offset);
    size_t pos = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        if (order[i]->begin < pos) {
            s = fr_error(FR_STATUS_FORMAT, "%s: tensors '%s' and '%s' overlap (data_offsets [%zu, %zu] and [%zu, %zu])",
                         file, order[i - 1]->name, order[i]->name, order[i - 1]->begin, order[i - 1]->end,
                         order[i]->begin, order[i]->end);
            goto out;
        }
        if (order[i]->begin > pos) {
            s = fr_error(FR_STATUS_FORMAT, "%s: data bytes [%zu, %zu) belong to no tensor (before '%s')", file, pos,
                         order[i]->begin, order[i]->name);
            goto out;
        }
        pos = order[i]->end;
    }
    if (pos != data_size)
        s = fr_error(FR_STATUS_FORMAT, "%s: %zu trailing data bytes after the last tensor", file, data_size - pos);
out:
    free(order);
    cJSON_Delete(root);
    free(hj);
    return s;
}

static enum fr_status open_buf(uint8_t *buf, size_t size, const char *name, struct fr_safetensors **out)
{
    struct fr_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->name = dupstr(name))) {
        free(st);
        free(buf);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
    }
    st->buf = buf;
    st->size = size;
    enum fr_status s = parse(st);
    if (s != FR_STATUS_OK) {
        fr_st_free(st);
        return s;
    }
    *out = st;
    return FR_STATUS_OK;
}

enum fr_status fr_st_from_memory(const void *data, size_t size, const char *name, struct fr_safetensors **out)
{
    *out = NULL;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", name, size);
    if (size)
        memcpy(buf, data, size);
    return open_buf(buf, size, name, out);
}

enum fr_status fr_st_open(const char *path, struct fr_safetensors **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fr_error(FR_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) { /* ftello on a directory gives nonsense */
        fclose(f);
        return fr_error(FR_STATUS_IO, "%s: %s, not a safetensors file", path,
                        S_ISDIR(sb.st_mode) ? "is a directory" : "is not a regular file");
    }
    if (fseeko(f, 0, SEEK_END) != 0) {
        fclose(f);
        return fr_error(FR_STATUS_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    off_t sz = ftello(f);
    rewind(f);
    if (sz < 0) {
        fclose(f);
        return fr_error(FR_STATUS_IO, "%s: cannot size the file", path);
    }
    uint8_t *buf = malloc((size_t)sz + 1);
    if (!buf) {
        fclose(f);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory (%lld bytes)", path, (long long)sz);
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)sz) {
        free(buf);
        return fr_error(FR_STATUS_IO, "%s: short read (%zu of %lld bytes)", path, got, (long long)sz);
    }
    return open_buf(buf, (size_t)sz, path, out);
}

const struct fr_st_tensor *fr_st_find(const struct fr_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *fr_st_meta(const struct fr_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key))
            return st->meta_values[i];
    return NULL;
}

/* IEEE half → float, including subnormals, infinities and NaN. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float v = (float)man * (1.0f / 16777216.0f);
            return sign ? -v : v;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

enum fr_status fr_st_read_f32(const struct fr_safetensors *st, const struct fr_st_tensor *t, float *out, size_t n)
{
    size_t numel = (size_t)fr_st_numel(t);
    if (n != numel)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has %zu elements, %zu asked", st->name, t->name,
                        numel, n);
    const uint8_t *p = t->data;
    size_t es = dtypes[t->dtype].size;
    for (size_t i = 0; i < n; i++, p += es) {
        /* memcpy: tensor data need not be aligned in the file */
        switch (t->dtype) {
        case FR_ST_BOOL: out[i] = p[0] ? 1.0f : 0.0f; break;
        case FR_ST_U8: out[i] = p[0]; break;
        case FR_ST_I8: out[i] = (int8_t)p[0]; break;
        case FR_ST_I16: { int16_t v; memcpy(&v, p, 2); out[i] = v; break; }
        case FR_ST_U16: { uint16_t v; memcpy(&v, p, 2); out[i] = v; break; }
        case FR_ST_F16: { uint16_t v; memcpy(&v, p, 2); out[i] = half_to_float(v); break; }
        case FR_ST_BF16: { uint16_t v; memcpy(&v, p, 2); uint32_t b = (uint32_t)v << 16; memcpy(&out[i], &b, 4); break; }
        case FR_ST_I32: { int32_t v; memcpy(&v, p, 4); out[i] = (float)v; break; }
        case FR_ST_U32: { uint32_t v; memcpy(&v, p, 4); out[i] = (float)v; break; }
        case FR_ST_F32: memcpy(&out[i], p, 4); break;
        case FR_ST_I64: { int64_t v; memcpy(&v, p, 8); out[i] = (float)v; break; }
        case FR_ST_U64: { uint64_t v; memcpy(&v, p, 8); out[i] = (float)v; break; }
        case FR_ST_F64: { double v; memcpy(&v, p, 8); out[i] = (float)v; break; }
        default: return fr_error(FR_STATUS_UNSUPPORTED, "%s: tensor '%s': dtype not convertible", st->name, t->name);
        }
    }
    return FR_STATUS_OK;
}

enum fr_status fr_st_read_i32(const struct fr_safetensors *st, const struct fr_st_tensor *t, int32_t *out, size_t n)
{
    size_t numel = (size_t)fr_st_numel(t);
    if (n != numel)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has %zu elements, %zu asked", st->name, t->name,
                        numel, n);
    const uint8_t *p = t->data;
    size_t es = dtypes[t->dtype].size;
    for (size_t i = 0; i < n; i++, p += es) {
        int64_t v;
        uint64_t u = 0;
        switch (t->dtype) {
        case FR_ST_BOOL: v = p[0] != 0; break;
        case FR_ST_U8: v = p[0]; break;
        case FR_ST_I8: v = (int8_t)p[0]; break;
        case FR_ST_I16: { int16_t x; memcpy(&x, p, 2); v = x; break; }
        case FR_ST_U16: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
        case FR_ST_I32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
        case FR_ST_U32: { uint32_t x; memcpy(&x, p, 4); v = x; break; }
        case FR_ST_I64: memcpy(&v, p, 8); break;
        case FR_ST_U64:
            memcpy(&u, p, 8);
            v = u > INT32_MAX ? (int64_t)INT32_MAX + 1 : (int64_t)u;
            break;
        default:
            return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s' is %s, not an integer dtype", st->name, t->name,
                            dtypes[t->dtype].name);
        }
        if (v < INT32_MIN || v > INT32_MAX)
            return fr_error(FR_STATUS_FORMAT, "%s: tensor '%s': element %zu does not fit in i32", st->name, t->name,
                            i);
        out[i] = (int32_t)v;
    }
    return FR_STATUS_OK;
}

/* --- writing --- */

struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(struct sbuf *b, const char *fmt, unsigned long long v)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(b, tmp, (size_t)k);
}

/* JSON string literal; bytes >= 0x80 pass through (names are UTF-8). */
static void sb_json(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Position of each dtype in the reference implementation's Dtype enum, which orders the tensors of a file. */
static int ref_rank(enum fr_st_dtype t)
{
    static const int rank[FR_ST_DTYPE_COUNT] = {
        [FR_ST_BOOL] = 0, [FR_ST_U8] = 1,   [FR_ST_I8] = 2,   [FR_ST_I16] = 5,  [FR_ST_U16] = 6,
        [FR_ST_F16] = 7,  [FR_ST_BF16] = 8, [FR_ST_I32] = 9,  [FR_ST_U32] = 10, [FR_ST_F32] = 11,
        [FR_ST_F64] = 12, [FR_ST_I64] = 13, [FR_ST_U64] = 14,
    };
    return rank[t];
}

static int cmp_entry(const void *a, const void *b)
{
    const struct fr_st_entry *x = *(const struct fr_st_entry *const *)a, *y = *(const struct fr_st_entry *const *)b;
    int rx = ref_rank(x->dtype), ry = ref_rank(y->dtype);
    if (rx != ry)
        return ry - rx;
    return strcmp(x->name, y->name);
}

enum fr_status fr_st_serialize(const struct fr_st_entry *e_in, int n, const struct fr_kv *meta, int n_meta,
                               uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    size_t data_size = 0;
    const struct fr_st_entry *e = e_in;
    for (int i = 0; i < n; i++) {
        if (!e[i].name || !strcmp(e[i].name, "__metadata__") || (unsigned)e[i].dtype >= FR_ST_DTYPE_COUNT ||
            e[i].ndim < 0 || e[i].ndim > FR_ST_MAX_DIMS)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "safetensors: bad entry %d ('%s')", i,
                            e[i].name ? e[i].name : "(null)");
        for (int j = 0; j < i; j++)
            if (!strcmp(e[i].name, e[j].name))
                return fr_error(FR_STATUS_INVALID_ARGUMENT, "safetensors: tensor name '%s' given twice", e[i].name);
        size_t nb = dtypes[e[i].dtype].size;
        for (int d = 0; d < e[i].ndim; d++)
            if (e[i].shape[d] < 0 || __builtin_mul_overflow(nb, (size_t)e[i].shape[d], &nb))
                return fr_error(FR_STATUS_INVALID_ARGUMENT, "safetensors: tensor '%s': bad shape", e[i].name);
        data_size += nb;
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value)
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "safetensors: metadata entry %d is NULL", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta[i].key, meta[j].key))
                return fr_error(FR_STATUS_INVALID_ARGUMENT, "safetensors: metadata key '%s' given twice", meta[i].key);
    }
    /* the reference writer's order: dtype (descending, as in its enum: wide types first keeps data aligned), then
     * name; the files are then byte-identical to the ones PyTorch's save_file writes */
    const struct fr_st_entry **ord = malloc(sizeof *ord * ((size_t)n + 1));
    if (!ord)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "safetensors: out of memory");
    for (int i = 0; i < n; i++)
        ord[i] = &e_in[i];
    qsort(ord, (size_t)n, sizeof *ord, cmp_entry);
    struct sbuf h = {0};
    sb_str(&h, "{");
    if (n_meta > 0) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                sb_str(&h, ",");
            sb_json(&h, meta[i].key);
            sb_str(&h, ":");
            sb_json(&h, meta[i].value);
        }
        sb_str(&h, "}");
    }
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t nb = dtypes[ord[i]->dtype].size;
        for (int d = 0; d < ord[i]->ndim; d++)
            nb *= (size_t)ord[i]->shape[d];
        if (i || n_meta > 0)
            sb_str(&h, ",");
        sb_json(&h, ord[i]->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, dtypes[ord[i]->dtype].name);
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < ord[i]->ndim; d++)
            sb_printf(&h, d ? ",%llu" : "%llu", (unsigned long long)ord[i]->shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%llu,", pos);
        sb_printf(&h, "%llu]}", pos + nb);
        pos += nb;
    }
    sb_str(&h, "}");
    while (!h.oom && h.n % 8) /* the reference writer pads with spaces so the data starts 8-byte aligned */
        sb_str(&h, " ");
    if (h.oom) {
        free(h.p);
        free(ord);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "safetensors: out of memory");
    }
    size_t total = 8 + h.n + data_size;
    uint8_t *buf = malloc(total);
    if (!buf) {
        free(h.p);
        free(ord);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "safetensors: out of memory (%zu bytes)", total);
    }
    uint64_t hl = h.n;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hl >> (8 * i));
    memcpy(buf + 8, h.p, h.n);
    free(h.p);
    uint8_t *d = buf + 8 + hl;
    for (int i = 0; i < n; i++) {
        size_t nb = dtypes[ord[i]->dtype].size;
        for (int k = 0; k < ord[i]->ndim; k++)
            nb *= (size_t)ord[i]->shape[k];
        if (nb)
            memcpy(d, ord[i]->data, nb);
        d += nb;
    }
    free(ord);
    *out = buf;
    *size = total;
    return FR_STATUS_OK;
}

enum fr_status fr_st_write(const char *path, const struct fr_st_entry *e, int n, const struct fr_kv *meta, int n_meta)
{
    uint8_t *buf;
    size_t size;
    enum fr_status s = fr_st_serialize(e, n, meta, n_meta, &buf, &size);
    if (s != FR_STATUS_OK)
        return s;
    s = fr_write_file_atomic(path, buf, size);
    free(buf);
    return s;
}
