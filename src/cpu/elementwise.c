/* CPU kernels of the elementwise ops: broadcasting binary ops, scale, relu and relu's gradient. */
#include "cpu/cpu.h"

enum ew_kind { EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_SCALE, EW_RELU, EW_RELU_BWD };

struct ew_job {
    enum ew_kind kind;
    const struct fr_tensor *dst;
    const char *a, *b;
    int64_t nba[FR_MAX_DIMS], nbb[FR_MAX_DIMS];
    float s, t;
};

static inline float ew_apply(enum ew_kind kind, float x, float y, float s, float t)
{
    switch (kind) {
    case EW_ADD: return x + y;
    case EW_SUB: return x - y;
    case EW_MUL: return x * y;
    case EW_DIV: return x / y;
    case EW_SCALE: return s * x + t;
    case EW_RELU: return x > 0.0f ? x : 0.0f;
    case EW_RELU_BWD: return x > 0.0f ? y : 0.0f;
    }
    return 0.0f;
}

/* The switch is hoisted out of the inner loop by instantiating it per kind. */
#define EW_ROW(KIND)                                                                  \
    static void row_##KIND(float *d, const char *a, int64_t sa, const char *b,        \
                           int64_t sb, int64_t n, float s, float t)                   \
    {                                                                                 \
        if (sa == 4 && sb == 4) {                                                     \
            const float *x = (const float *)a, *y = (const float *)b;                 \
            for (int64_t i = 0; i < n; i++)                                           \
                d[i] = ew_apply(KIND, x[i], y[i], s, t);                              \
        } else if (sa == 4 && sb == 0) {                                              \
            const float *x = (const float *)a, y = b ? *(const float *)b : 0.0f;      \
            for (int64_t i = 0; i < n; i++)                                           \
                d[i] = ew_apply(KIND, x[i], y, s, t);                                 \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++)                                           \
                d[i] = ew_apply(KIND, *(const float *)(a + i * sa),                   \
                                b ? *(const float *)(b + i * sb) : 0.0f, s, t);       \
        }                                                                             \
    }
EW_ROW(EW_ADD)
EW_ROW(EW_SUB)
EW_ROW(EW_MUL)
EW_ROW(EW_DIV)
EW_ROW(EW_SCALE)
EW_ROW(EW_RELU)
EW_ROW(EW_RELU_BWD)

typedef void (*row_fn)(float *, const char *, int64_t, const char *, int64_t, int64_t, float, float);
static const row_fn rows[] = {row_EW_ADD, row_EW_SUB, row_EW_MUL, row_EW_DIV, row_EW_SCALE, row_EW_RELU, row_EW_RELU_BWD};

static void ew_rows(void *p, int64_t begin, int64_t end)
{
    struct ew_job *j = p;
    const struct fr_tensor *d = j->dst;
    float *db = fr_tensor_data(d);
    row_fn fn = rows[j->kind];
    for (int64_t r = begin; r < end; r++) {
        int64_t i2 = r % d->ne[2], i1 = (r / d->ne[2]) % d->ne[1], i0 = r / (d->ne[2] * d->ne[1]);
        const char *a = j->a + i0 * j->nba[0] + i1 * j->nba[1] + i2 * j->nba[2];
        const char *b = j->b ? j->b + i0 * j->nbb[0] + i1 * j->nbb[1] + i2 * j->nbb[2] : NULL;
        fn(db + r * d->ne[3], a, j->nba[3], b, j->nbb[3], d->ne[3], j->s, j->t);
    }
}

static void ew_flat(void *p, int64_t begin, int64_t end)
{
    struct ew_job *j = p;
    rows[j->kind]((float *)fr_tensor_data(j->dst) + begin, j->a + begin * 4, 4, j->b ? j->b + begin * 4 : NULL,
                  j->b ? 4 : 0, end - begin, j->s, j->t);
}

static enum fr_status run(struct fr_cpu_kctx *k, struct fr_tensor *dst, enum ew_kind kind)
{
    struct ew_job j = {.kind = kind, .dst = dst};
    const struct fr_tensor *a = dst->src[0], *b = dst->src[1];
    j.a = fr_tensor_data(a);
    fr_broadcast_strides(a, dst->ndim, dst->ne, j.nba);
    if (b) {
        j.b = fr_tensor_data(b);
        fr_broadcast_strides(b, dst->ndim, dst->ne, j.nbb);
    }
    j.s = dst->params[0].f;
    j.t = dst->params[1].f;
    /* everything contiguous and unbroadcast: one flat array split across threads */
    if (fr_is_contiguous(a) && fr_same_shape(a, dst) && (!b || (fr_is_contiguous(b) && fr_same_shape(b, dst)))) {
        fr_cpu_parallel_for(k, fr_nelements(dst), 16384, ew_flat, &j);
        return FR_STATUS_OK;
    }
    int64_t nrows = dst->ne[0] * dst->ne[1] * dst->ne[2];
    fr_cpu_parallel_for(k, nrows, FR_MAX(1, 16384 / dst->ne[3]), ew_rows, &j);
    return FR_STATUS_OK;
}

enum fr_status fr_cpu_add(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_ADD); }
enum fr_status fr_cpu_sub(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_SUB); }
enum fr_status fr_cpu_mul(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_MUL); }
enum fr_status fr_cpu_div(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_DIV); }
enum fr_status fr_cpu_scale(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_SCALE); }
enum fr_status fr_cpu_relu(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_RELU); }
enum fr_status fr_cpu_relu_bwd(struct fr_cpu_kctx *k, struct fr_tensor *dst) { return run(k, dst, EW_RELU_BWD); }
