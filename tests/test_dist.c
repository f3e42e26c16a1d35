/* One job over MPI ranks: the collectives (sums in rank order against a hand-made double sum, the same bits on
 * every rank, gathers, agreement, fingerprints, a deadline naming the silent rank, a killed rank) run as
 * `mpirun -np 2 test_dist --rank NAME`; the CLI under mpirun (every rank's devices, sharded evaluation, prediction
 * and pseudo-labels equal to one process byte for byte, one error for a bad device or different files with nothing
 * overwritten); training on 2 ranks within float rounding of one process (not bit for bit: one process sums a
 * weight's gradient over the whole batch in float, 2 ranks sum halves added in double) and bit-identical run to
 * run, FixMatch likewise, a rank slowed by FRUGAL_SLOWDOWN changing no numbers, --resume on another number of ranks,
 * SIGINT/SIGTERM, a killed or hung rank. In a build without MPI:
 * mpirun's environment gives one clear error and exit 2 on every rank. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dist/dist_internal.h"
#include "frugal/dist.h"
#include "frugal/io.h"
#include "frugal/recipes.h"
#include "testutil.h"

static char g_dir[512];
static char g_exe[1024], g_self[1024], g_mpirun[1024];
static bool g_have_data;
static char g_out[1 << 17];

/* --- the ranks' side: `test_dist --rank NAME` under mpirun; exit 0 when every check holds --- */

#define CHECK(cond, ...)                                                                                 \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "rank %d: check failed at line %d: %s: ", fr_dist_rank(d), __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                                \
            fprintf(stderr, "\n");                                                                       \
            return fr_dist_finalize(d, 1);                                                               \
        }                                                                                                \
    } while (0)

static float value(int rank, int64_t i) { return (float)(sin(0.37 * (double)i + rank) * 1000.0 / (1.0 + (double)(i % 7))); }

static int rank_collectives(struct fr_dist *d)
{
    const int me = fr_dist_rank(d), size = fr_dist_size(d);
    CHECK(size == 2, "expected 2 ranks, got %d", size);
    CHECK(fr_dist_host(d, 1 - me)[0] != 0, "no host name for the other rank");
    /* sums of lengths below, at and above the number of ranks, odd lengths: against Σ_r w_r·x_r in double */
    const int64_t lens[] = {1, 2, 3, 1001, 100003};
    const double w[2] = {0.375, 0.625};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        int64_t n = lens[li];
        float *x = malloc((size_t)n * sizeof *x), *all = malloc(2 * (size_t)n * sizeof *all);
        CHECK(x && all, "out of memory");
        for (int weighted = 0; weighted < 2; weighted++) {
            for (int64_t i = 0; i < n; i++)
                x[i] = value(me, i);
            CHECK(fr_dist_sum(d, x, n, weighted ? w : NULL) == FR_STATUS_OK, "%s", fr_last_error());
            for (int64_t i = 0; i < n; i++) {
                double want = 0;
                for (int r = 0; r < size; r++)
                    want += (weighted ? w[r] : 1.0) * (double)value(r, i);
                CHECK(x[i] == (float)want, "n %lld, element %lld: %.9g, want %.9g", (long long)n, (long long)i,
                      (double)x[i], want);
            }
            /* the same bits on every rank */
            CHECK(fr_dist_allgather(d, x, (size_t)n * sizeof *x, all) == FR_STATUS_OK, "%s", fr_last_error());
            CHECK(!memcmp(all, all + n, (size_t)n * sizeof *x), "ranks hold different sums");
        }
        free(x);
        free(all);
    }
    /* the same sum over parts apart in memory (an empty one too), each added in place: the bits of fr_dist_sum of
     * the parts laid end to end */
    {
        const int64_t cnt[4] = {3, 0, 1001, 1};
        float *buf = malloc(2000 * sizeof *buf), *flat = malloc(1005 * sizeof *flat);
        CHECK(buf && flat, "out of memory");
        float *part[4] = {buf + 1500, buf + 10, buf + 20, buf + 1200}; /* out of order, gaps between them */
        int64_t at = 0;
        for (int k = 0; k < 4; k++)
            for (int64_t i = 0; i < cnt[k]; i++, at++)
                part[k][i] = flat[at] = value(me, at);
        CHECK(fr_dist_sum_parts(d, part, cnt, 4) == FR_STATUS_OK, "%s", fr_last_error());
        CHECK(fr_dist_sum(d, flat, at, NULL) == FR_STATUS_OK, "%s", fr_last_error());
        at = 0;
        for (int k = 0; k < 4; k++)
            for (int64_t i = 0; i < cnt[k]; i++, at++)
                CHECK(part[k][i] == flat[at] && flat[at] == (float)((double)value(0, at) + (double)value(1, at)),
                      "part %d, element %lld: %.9g, want %.9g", k, (long long)i, (double)part[k][i], (double)flat[at]);
        free(buf);
        free(flat);
    }
    /* rows split in granules of 4 and gathered in order */
    int64_t n = 37, s, c;
    int32_t rows[37 * 3];
    memset(rows, 0xff, sizeof rows);
    fr_dist_share(d, n, 4, &s, &c);
    CHECK(s % 4 == 0 && (me == 0 ? s == 0 : s + c == n), "share [%lld, +%lld)", (long long)s, (long long)c);
    for (int64_t i = s; i < s + c; i++)
        for (int j = 0; j < 3; j++)
            rows[i * 3 + j] = (int32_t)(i * 10 + j);
    CHECK(fr_dist_gather_rows(d, rows, n, 3 * sizeof(int32_t), 4) == FR_STATUS_OK, "%s", fr_last_error());
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
            CHECK(rows[i * 3 + j] == i * 10 + j, "row %lld column %d: %d", (long long)i, j, rows[i * 3 + j]);
    /* broadcast from rank 1 */
    char text[32];
    snprintf(text, sizeof text, "from rank %d", me);
    CHECK(fr_dist_bcast(d, text, sizeof text, 1) == FR_STATUS_OK, "%s", fr_last_error());
    CHECK(!strcmp(text, "from rank 1"), "bcast gave '%s'", text);
    /* agreement: all OK, then rank 1's failure with its message on both ranks */
    CHECK(fr_dist_agree(d, FR_STATUS_OK) == FR_STATUS_OK, "%s", fr_last_error());
    enum fr_status mine = me == 1 ? fr_error(FR_STATUS_FORMAT, "bad.csv: line 3: no label") : FR_STATUS_OK;
    enum fr_status got = fr_dist_agree(d, mine);
    CHECK(got == FR_STATUS_FORMAT, "agreed status %d", (int)got);
    CHECK(strstr(fr_last_error(), "bad.csv: line 3: no label") != NULL, "message '%s'", fr_last_error());
    CHECK(me == 1 || strstr(fr_last_error(), "rank 1 (") == fr_last_error(), "message '%s'", fr_last_error());
    /* fingerprints: equal, then rank 1's differs */
    uint64_t fp = fr_dist_hash(0, "same", 4);
    CHECK(fr_dist_same(d, "the data", fp, "x") == FR_STATUS_OK, "%s", fr_last_error());
    fp = fr_dist_hash(fp, me ? "b" : "a", 1);
    CHECK(fr_dist_same(d, "the data", fp, me ? "copy B" : "copy A") == FR_STATUS_INVALID_ARGUMENT, "no mismatch");
    CHECK(strstr(fr_last_error(), "rank 1") && strstr(fr_last_error(), "the data: not the same on rank 1") &&
              strstr(fr_last_error(), "copy A") && strstr(fr_last_error(), "copy B"),
          "message '%s'", fr_last_error());
    CHECK(fr_dist_hash(0, "abc", 3) != fr_dist_hash(0, "abd", 3), "hash collision");
    /* --balance speed, a batch of 128 measured at 64 rows each (hand-computed shares):
     * proportional: 1 ms and 3 ms per row -> 96 + 32 rows;
     * rank 1 with a fixed cost, 192 ms at 64 rows and 128 ms at 32 (64 ms + 2 ms per row), rank 0 64 ms at 64 and
     * 96 ms at 96 (1 ms per row): T = 1000 T + 500 (T - 0.064) = 128 -> T = 0.10667 s, 106.67 + 21.33 -> 107 + 21;
     * rank 1 10 s at 64 and at 32 rows (no growth: proportional to the newer time): at least one row -> 127 + 1 */
    struct {
        double t[2];      /* each rank's step time ... */
        int64_t n[2];     /* ... at this many rows */
        double prev_t[2]; /* an earlier time (0: none) ... */
        int64_t prev_n[2];
        int64_t want0; /* rank 0's rows; rank 1 gets the rest */
    } cases[] = {{{0.064, 0.192}, {64, 64}, {0, 0}, {0, 0}, 96},
                 {{0.096, 0.128}, {96, 32}, {0.064, 0.192}, {64, 64}, 107},
                 {{0.064, 10.0}, {64, 64}, {0.096, 10.0}, {96, 32}, 127}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int64_t count = cases[k].n[me], first = me ? cases[k].n[0] : 0;
        CHECK(fr_dp_balance(d, cases[k].t[me], cases[k].prev_t[me], cases[k].prev_n[me], &first, &count) ==
                  FR_STATUS_OK,
              "%s", fr_last_error());
        int64_t want = me ? 128 - cases[k].want0 : cases[k].want0;
        CHECK(count == want && first == (me ? cases[k].want0 : 0), "case %zu: rows [%lld, +%lld), want %lld", k,
              (long long)first, (long long)count, (long long)want);
    }
    return fr_dist_finalize(d, 0);
}

/* One training step of a batch-norm layer, rows [first, first + n) of a batch of N: y = BN(x), loss = mean over the
 * batch of (y - t)^2 scaled by n/N (the rank's share). sync: fr_batchnorm_sync over the job's ranks, else fr_batchnorm
 * on the rows. Gives y, dx of the rows, dw, db and the running statistics after the step. */
static void bn_step(struct fr_backend *be, bool sync, int64_t first, int64_t n, int64_t N, const float *xs,
                    const float *ts, float *y, float *dx, float *dw, float *db, float *rm, float *rv)
{
    enum { C = 3, HW = 5 };
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *x = fr_tensor_set_flags(fr_tensor_new_4d(ctx, FR_F32, n, C, HW, HW), FR_FLAG_PARAM);
    struct fr_tensor *t = fr_tensor_set_flags(fr_tensor_new_4d(ctx, FR_F32, n, C, HW, HW), FR_FLAG_INPUT);
    struct fr_tensor *w = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_F32, C), FR_FLAG_PARAM);
    struct fr_tensor *b = fr_tensor_set_flags(fr_tensor_new_1d(ctx, FR_F32, C), FR_FLAG_PARAM);
    struct fr_tensor *m = fr_tensor_new_1d(ctx, FR_F32, C), *v = fr_tensor_new_1d(ctx, FR_F32, C);
    struct fr_tensor *out = sync ? fr_batchnorm_sync(ctx, x, w, b, m, v, 1e-5f, 0.1f, N)
                                 : fr_batchnorm(ctx, x, w, b, m, v, 1e-5f, 0.1f);
    struct fr_tensor *loss = fr_scale(ctx, fr_mse_loss(ctx, out, t, NULL), (float)n / (float)N);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_backward(g, loss), FR_STATUS_OK);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    fr_graph_set_training(g, true);
    const float wv[C] = {1.5f, -0.5f, 2.0f}, bv[C] = {0.1f, 0.2f, -0.3f}, mv[C] = {0.5f, 0, 0}, vv[C] = {1, 2, 3};
    size_t rows = (size_t)(n * C * HW * HW) * sizeof(float);
    assert_int_equal(fr_tensor_set(x, xs + first * C * HW * HW, rows), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(t, ts + first * C * HW * HW, rows), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(w, wv, sizeof wv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(b, bv, sizeof bv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(m, mv, sizeof mv), FR_STATUS_OK);
    assert_int_equal(fr_tensor_set(v, vv, sizeof vv), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(out, y, rows), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(x->grad, dx, rows), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(w->grad, dw, C * sizeof(float)), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(b->grad, db, C * sizeof(float)), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(m, rm, C * sizeof(float)), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(v, rv, C * sizeof(float)), FR_STATUS_OK);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

/* sync batch-norm on 2 ranks (3 + 4 rows) against batch-norm of the whole batch of 7 in one process: outputs, input
 * gradients, the parameter gradients once summed over the ranks, the running statistics (CPU path and OpenCL) */
static int rank_sync_bn(struct fr_dist *d)
{
    enum { N = 7, C = 3, HW = 5, ROW = C * HW * HW };
    float xs[N * ROW], ts[N * ROW];
    tu_fill_uniform(xs, N * ROW, 21, -1.0f, 3.0f);
    tu_fill_uniform(ts, N * ROW, 22, -1.0f, 1.0f);
    int64_t first = fr_dist_rank(d) == 0 ? 0 : 3, n = fr_dist_rank(d) == 0 ? 3 : 4;
    struct fr_backend *bes[2] = {fr_backend_cpu_new(1), NULL};
    if (fr_backend_open("cl:0:0", &bes[1]) != FR_STATUS_OK)
        bes[1] = NULL;
    int have_cl = bes[1] != NULL, all_cl[2];
    CHECK(fr_dist_allgather(d, &have_cl, sizeof have_cl, all_cl) == FR_STATUS_OK, "%s", fr_last_error());
    for (int k = 0; k < 2; k++) {
        if (!all_cl[0] || !all_cl[1]) /* every rank runs the same collectives */
            if (k == 1)
                break;
        float y[N * ROW], dx[N * ROW], dw[C], db[C], rm[C], rv[C];
        float ry[N * ROW], rdx[N * ROW], rdw[C], rdb[C], rrm[C], rrv[C];
        bn_step(bes[k], false, 0, N, N, xs, ts, ry, rdx, rdw, rdb, rrm, rrv); /* the whole batch, here */
        bn_step(bes[k], true, first, n, N, xs, ts, y, dx, dw, db, rm, rv);
        CHECK(fr_dist_sum(d, dw, C, NULL) == FR_STATUS_OK && fr_dist_sum(d, db, C, NULL) == FR_STATUS_OK, "%s",
              fr_last_error());
        for (int64_t i = 0; i < n * ROW; i++) {
            CHECK(fabsf(y[i] - ry[first * ROW + i]) <= 1e-5f * (1 + fabsf(ry[first * ROW + i])), "%s y[%lld] %g vs %g",
                  k ? "OpenCL" : "CPU", (long long)i, (double)y[i], (double)ry[first * ROW + i]);
            CHECK(fabsf(dx[i] - rdx[first * ROW + i]) <= 1e-5f * (1e-3f + fabsf(rdx[first * ROW + i])),
                  "%s dx[%lld] %g vs %g", k ? "OpenCL" : "CPU", (long long)i, (double)dx[i], (double)rdx[first * ROW + i]);
        }
        for (int c = 0; c < C; c++) {
            CHECK(fabsf(dw[c] - rdw[c]) <= 1e-5f * (1e-3f + fabsf(rdw[c])), "dw[%d] %g vs %g", c, (double)dw[c],
                  (double)rdw[c]);
            CHECK(fabsf(db[c] - rdb[c]) <= 1e-5f * (1e-3f + fabsf(rdb[c])), "db[%d] %g vs %g", c, (double)db[c],
                  (double)rdb[c]);
            CHECK(fabsf(rm[c] - rrm[c]) <= 1e-6f && fabsf(rv[c] - rrv[c]) <= 1e-5f * rrv[c], "running statistics %d",
                  c);
        }
    }
    fr_backend_free(bes[0]);
    fr_backend_free(bes[1]);
    return fr_dist_finalize(d, 0);
}

/* rank 1 stays away from a collective for longer than rank 0's deadline */
static int rank_silent(struct fr_dist *d)
{
    fr_dist_set_timeout(d, 1.0);
    if (fr_dist_rank(d) == 1)
        sleep(30); /* ended by rank 0's abort long before */
    float x[4] = {1, 2, 3, 4};
    enum fr_status st = fr_dist_sum(d, x, 4, NULL);
    printf("rank %d: status %d: %s\n", fr_dist_rank(d), (int)st, fr_last_error());
    fflush(stdout);
    return fr_dist_finalize(d, st == FR_STATUS_IO && fr_dist_broken(d) ? 3 : 1);
}

/* rank 1 dies in the middle of the job */
static int rank_killed(struct fr_dist *d)
{
    if (fr_dist_rank(d) == 1)
        raise(SIGKILL);
    float x[4] = {1, 2, 3, 4};
    enum fr_status st = fr_dist_sum(d, x, 4, NULL);
    printf("rank %d: status %d: %s\n", fr_dist_rank(d), (int)st, fr_last_error());
    return fr_dist_finalize(d, 1);
}

static int rank_main(const char *name)
{
    struct fr_dist *d;
    if (fr_dist_init(&d) != FR_STATUS_OK) {
        fprintf(stderr, "fr_dist_init: %s\n", fr_last_error());
        return 2;
    }
    if (!strcmp(name, "collectives"))
        return rank_collectives(d);
    if (!strcmp(name, "sync_bn"))
        return rank_sync_bn(d);
    if (!strcmp(name, "silent"))
        return rank_silent(d);
    if (!strcmp(name, "killed"))
        return rank_killed(d);
    fprintf(stderr, "unknown rank test %s\n", name);
    return fr_dist_finalize(d, 2);
}

/* --- noise of a split batch: dropout and drop-path rows of a share equal the whole batch's rows --- */

/* y = drop(x) for rows [first, first + n) of a batch: the graph told first - rows as its first sample, the node its
 * rows after it (params[2], what fr_model_set_first_row gives a forward's masks) */
static void run_drop(struct fr_backend *be, bool path, int64_t first, int64_t rows, int64_t n, int64_t f,
                     const float *x, float *y)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *in = fr_tensor_set_flags(fr_tensor_new_2d(ctx, FR_F32, n, f), FR_FLAG_INPUT);
    struct fr_tensor *out = path ? fr_drop_path_salted(ctx, in, 0.7f, 5) : fr_dropout_salted(ctx, in, 0.3f, 5);
    out->params[2].i = (int32_t)rows;
    first -= rows;
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    fr_graph_set_training(g, true);
    fr_graph_set_seed(g, 11);
    fr_graph_set_step(g, 3);
    fr_graph_set_first_sample(g, (uint32_t)first);
    assert_int_equal(fr_tensor_set(in, x + (first + rows) * f, (size_t)(n * f) * sizeof(float)), FR_STATUS_OK);
    assert_int_equal(fr_graph_compute(g), FR_STATUS_OK);
    assert_int_equal(fr_tensor_get(out, y, (size_t)(n * f) * sizeof(float)), FR_STATUS_OK);
    fr_graph_free(g);
    fr_ctx_free(ctx);
}

static void test_split_batch_noise(void **state)
{
    (void)state;
    struct fr_backend *bes[2] = {fr_backend_cpu_new(2), NULL};
    if (fr_backend_open("cl:0:0", &bes[1]) != FR_STATUS_OK)
        bes[1] = NULL; /* no OpenCL device: the CPU path alone */
    const int64_t n = 13, f = 7; /* 7 elements per sample: shares start inside Philox blocks of 4 */
    float x[13 * 7], whole[13 * 7], part[13 * 7];
    tu_fill_uniform(x, (size_t)(n * f), 9, 0.5f, 2.0f);
    for (int b = 0; b < 2 && bes[b]; b++)
        for (int path = 0; path < 2; path++) {
            run_drop(bes[b], path, 0, 0, n, f, x, whole);
            int dropped = 0;
            for (int64_t i = 0; i < n * f; i++)
                dropped += whole[i] == 0.0f;
            assert_true(dropped > 0 && dropped < n * f); /* some units of each kind */
            /* {first row, rows of it told to the node, rows}: the graph's first sample and the node's rows add up */
            const int64_t cuts[][3] = {{0, 0, 5}, {5, 0, 3}, {8, 0, 5}, {1, 0, 12}, {8, 3, 5}, {5, 5, 3}, {9, 7, 4}};
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
                run_drop(bes[b], path, cuts[c][0], cuts[c][1], cuts[c][2], f, x, part);
                tu_assert_bytes_equal(part, whole + cuts[c][0] * f, (size_t)(cuts[c][2] * f) * sizeof(float));
            }
        }
    fr_backend_free(bes[0]);
    fr_backend_free(bes[1]);
}

/* --- the harness: runs mpirun and the CLI --- */

static const char *stderr_text(void)
{
    static char buf[16384];
    FILE *f = fopen(tu_path(g_dir, "stderr.txt"), "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    return buf;
}

/* Runs a shell command line with stdout into g_out and stderr into <dir>/stderr.txt; returns the exit status. */
static int sh(const char *fmt, ...)
{
    char line[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "export FRUGAL_DEVICE=cpu; %s 2>%s/stderr.txt", line, g_dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(g_out, 1, sizeof g_out - 1, p);
    g_out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

#define MPI2 "%s --oversubscribe --allow-run-as-root -np 2"

#define NEED(cond, why)                      \
    do {                                     \
        if (!(cond)) {                       \
            printf("skipped: %s\n", why);    \
            skip();                          \
        }                                    \
    } while (0)
#define NEED_MPI() NEED(fr_dist_built() && g_mpirun[0], "this build has no MPI or mpirun is missing")

static void test_collectives(void **state)
{
    (void)state;
    NEED_MPI();
    int rc = sh(MPI2 " %s --rank collectives", g_mpirun, g_self);
    if (rc != 0)
        fail_msg("mpirun -np 2 test_dist --rank collectives -> %d\n%s\n%s", rc, g_out, stderr_text());
}

static void test_sync_bn_equals_whole_batch(void **state)
{
    (void)state;
    NEED_MPI();
    int rc = sh(MPI2 " %s --rank sync_bn", g_mpirun, g_self);
    if (rc != 0)
        fail_msg("mpirun -np 2 test_dist --rank sync_bn -> %d\n%s\n%s", rc, g_out, stderr_text());
}

static void test_silent_rank_times_out(void **state)
{
    (void)state;
    NEED_MPI();
    int rc = sh(MPI2 " %s --rank silent", g_mpirun, g_self);
    assert_int_not_equal(rc, 0);
    /* rank 0 names the rank that did not answer, then ends the job */
    if (!strstr(g_out, "rank 0: status 4") || !strstr(g_out, "no answer from rank 1"))
        fail_msg("stdout: %s\nstderr: %s", g_out, stderr_text());
}

static void test_killed_rank_ends_job(void **state)
{
    (void)state;
    NEED_MPI();
    int rc = sh(MPI2 " %s --rank killed", g_mpirun, g_self);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(stderr_text(), "signal 9"));
}

static void test_devices_every_rank(void **state)
{
    (void)state;
    NEED_MPI();
    assert_int_equal(sh(MPI2 " %s devices --json", g_mpirun, g_exe), 0);
    cJSON *o = cJSON_Parse(g_out);
    if (!o)
        fail_msg("not one JSON object: %s", g_out);
    cJSON *ranks = cJSON_GetObjectItem(o, "ranks");
    assert_int_equal(cJSON_GetArraySize(ranks), 2);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    for (int r = 0; r < 2; r++) {
        cJSON *rk = cJSON_GetArrayItem(ranks, r);
        assert_int_equal(cJSON_GetObjectItem(rk, "rank")->valueint, r);
        assert_string_equal(cJSON_GetObjectItem(rk, "host")->valuestring, host);
        cJSON *dev = cJSON_GetArrayItem(cJSON_GetObjectItem(rk, "devices"), 0);
        assert_string_equal(cJSON_GetObjectItem(dev, "spec")->valuestring, "cpu");
        /* two ranks on this machine share its cores */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        assert_int_equal(cJSON_GetObjectItem(dev, "threads")->valueint, cores / 2 > 0 ? cores / 2 : 1);
    }
    cJSON_Delete(o);
}

/* JSON results without the timing keys */
static char *json_stable(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    if (!o)
        fail_msg("not JSON: %.400s\nstderr: %s", text, stderr_text());
    const char *timing[] = {"seconds", "eval_images_per_second", "images_per_second", "train_images_per_second"};
    for (size_t i = 0; i < sizeof timing / sizeof *timing; i++)
        cJSON_DeleteItemFromObject(o, timing[i]);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void test_eval_sharded_equals_one_process(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *ck = tu_path(g_dir, "m/model.safetensors");
    /* 1,001 images: eval batches of 256 split 2 + 2 with a partial last one */
    assert_int_equal(sh("%s eval --model %s --limit 1001 --json --threads 2", g_exe, ck), 0);
    char *one = json_stable(g_out);
    assert_int_equal(sh(MPI2 " %s eval --model %s --limit 1001 --json", g_mpirun, g_exe, ck), 0);
    char *two = json_stable(g_out);
    assert_string_equal(one, two);
    assert_non_null(strstr(stderr_text(), "2 ranks: rank 0 on"));
    free(one);
    free(two);
}

/* pseudo-labels (soft, balanced: duplicates and a threshold) and predictions of 2 ranks: the same files, byte for byte,
 * as one process (the CSV, its confidences, the images written, the predictions printed) */
static void test_pseudo_label_and_predict_sharded(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *ck = tu_path(g_dir, "m/model.safetensors");
    const char *args = "pseudo-label --data fmnist --train-limit 1300 --soft --balance --threshold 0.12";
    assert_int_equal(sh("mkdir -p %s/pl1 %s/pl2 && %s %s --teacher %s --out %s/pl1/pl.csv --threads 2", g_dir, g_dir,
                        g_exe, args, ck, g_dir),
                     0);
    assert_int_equal(sh(MPI2 " %s %s --teacher %s --out %s/pl2/pl.csv", g_mpirun, g_exe, args, ck, g_dir), 0);
    if (sh("diff -r %s/pl1 %s/pl2 && ls %s/pl2/pl_images | wc -l", g_dir, g_dir, g_dir) != 0)
        fail_msg("2 ranks wrote other pseudo-labels than one process: %s", g_out);
    assert_true(atoi(g_out) > 100); /* images were written */
    assert_int_equal(sh("%s predict --model %s --input %s/pl1/pl_images --top-k 3 --threads 2", g_exe, ck, g_dir), 0);
    char *one = strdup(g_out);
    assert_int_equal(sh(MPI2 " %s predict --model %s --input %s/pl1/pl_images --top-k 3", g_mpirun, g_exe, ck, g_dir),
                     0);
    assert_true(strlen(one) > 1000);
    assert_string_equal(one, g_out);
    free(one);
}

static void test_bad_device_on_one_rank(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *ck = tu_path(g_dir, "m/model.safetensors");
    int rc = sh("%s --oversubscribe --allow-run-as-root -np 1 %s eval --model %s --device cpu : -np 1 %s eval "
                "--model %s --device cl:9:0",
                g_mpirun, g_exe, ck, g_exe, ck);
    assert_int_equal(rc, 2);
    const char *err = stderr_text();
    const char *hit = strstr(err, "frugal eval: rank 1 (");
    if (!hit || !strstr(hit, "cl:9:0"))
        fail_msg("stderr: %s", err);
    assert_null(strstr(hit + 1, "frugal eval: rank 1 (")); /* one error, from rank 0 */
}

static void test_different_files_on_one_rank(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    int rc = sh("%s --oversubscribe --allow-run-as-root -np 1 %s eval --model %s --limit 300 : -np 1 %s eval --model "
                "%s --limit 300",
                g_mpirun, g_exe, tu_path(g_dir, "m/model.safetensors"), g_exe, tu_path(g_dir, "m2/model.safetensors"));
    assert_int_equal(rc, 2);
    if (!strstr(stderr_text(), "the network: not the same on rank 1 ("))
        fail_msg("stderr: %s", stderr_text());
    rc = sh("%s --oversubscribe --allow-run-as-root -np 1 %s eval --model %s --limit 300 : -np 1 %s eval --model "
            "%s --limit 299",
            g_mpirun, g_exe, tu_path(g_dir, "m/model.safetensors"), g_exe, tu_path(g_dir, "m/model.safetensors"));
    assert_int_equal(rc, 2);
    if (!strstr(stderr_text(), "the images to predict: not the same on rank 1 ("))
        fail_msg("stderr: %s", stderr_text());
    /* training on other data on rank 1 into a directory with an earlier run's checkpoint: one error, from rank 0,
     * exit 2, the checkpoint untouched */
    assert_int_equal(sh("mkdir -p %s/keep && cp %s %s/keep/model.safetensors", g_dir, tu_path(g_dir, "m/model.safetensors"),
                        g_dir),
                     0);
    const char *args = "train --data fmnist --labels 0 --val 0 --test none --arch t --batch 32 --epochs 1";
    rc = sh("%s --oversubscribe --allow-run-as-root -np 1 %s %s --train-limit 300 --out %s/keep : -np 1 %s %s "
            "--train-limit 299 --out %s/keep",
            g_mpirun, g_exe, args, g_dir, g_exe, args, g_dir);
    assert_int_equal(rc, 2);
    const char *err = stderr_text(), *hit = strstr(err, "the training images: not the same on rank 1 (");
    if (!hit || strstr(hit + 1, "the training images: not the same")) /* once */
        fail_msg("stderr: %s", err);
    assert_int_equal(sh("cmp %s %s/keep/model.safetensors", tu_path(g_dir, "m/model.safetensors"), g_dir), 0);
}

/* Largest |a - b| over every f32 tensor of two checkpoints, relative to the tensor's largest |a| (the optimizer's
 * step counter and other integer tensors compared exactly); -1 when they hold other tensors; 0 when bit-identical. */
static double ckpt_diff(const char *pa, const char *pb)
{
    struct fr_safetensors *a = NULL, *b = NULL;
    assert_int_equal(fr_st_open(pa, &a), FR_STATUS_OK);
    assert_int_equal(fr_st_open(pb, &b), FR_STATUS_OK);
    double worst = a->n_tensors == b->n_tensors ? 0 : -1;
    for (int i = 0; i < a->n_tensors && worst >= 0; i++) {
        const struct fr_st_tensor *ta = &a->tensors[i], *tb = fr_st_find(b, ta->name);
        if (!tb || tb->end - tb->begin != ta->end - ta->begin) {
            worst = -1;
            break;
        }
        if (!memcmp(ta->data, tb->data, ta->end - ta->begin))
            continue;
        if (ta->dtype != FR_ST_F32) {
            worst = 1e9;
            continue;
        }
        size_t n = (size_t)fr_st_numel(ta);
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        assert_int_equal(fr_st_read_f32(a, ta, x, n), FR_STATUS_OK);
        assert_int_equal(fr_st_read_f32(b, tb, y, n), FR_STATUS_OK);
        double mx = 0, d = 0;
        for (size_t j = 0; j < n; j++) {
            mx = fmax(mx, fabs((double)x[j]));
            d = fmax(d, fabs((double)x[j] - (double)y[j]));
        }
        worst = fmax(worst, mx > 0 ? d / mx : d > 0 ? 1e9 : 0);
        free(x);
        free(y);
    }
    fr_st_free(a);
    fr_st_free(b);
    return worst;
}

/* a small batch-norm network with drop-path and dropout: DIR/bn.txt */
static const char *bn_net(void)
{
    FILE *f = fopen(tu_path(g_dir, "bn.txt"), "w");
    assert_non_null(f);
    fputs("conv c1 8 3 1 1 nobias\nbatchnorm b1\nrelu\nresidual r1\nconv r1.c 16 3 2 1 nobias\nbatchnorm r1.b\n"
          "relu\nconv r1.d 16 3 1 1 nobias\nbatchnorm r1.e\nend 0.9\nrelu\ngap\ndropout 0.3\nlinear fc 10\n", f);
    fclose(f);
    return tu_path(g_dir, "bn.txt");
}

/* four SGD steps of a global batch of 128 (model s: dropout by global row) and of a small batch-norm network (--sync-bn:
 * statistics of the whole batch): 2 ranks end within float rounding of one process (the gradient sums are split in
 * two and added in another order), two runs of 2 ranks bit for bit */
static void test_train_two_ranks_equal_one(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *models[] = {"s", bn_net()};
    for (int m = 0; m < 2; m++) {
        char args[1024];
        snprintf(args, sizeof args, "train --data fmnist --train-limit 600 --labels 512 --val 0 --test none --arch %s "
                                    "--batch 128 --epochs 1 --optimizer sgd --lr 0.05%s", models[m], m ? " --sync-bn" : "");
        char one[600], two[600], again[600];
        snprintf(one, sizeof one, "%s/one%d", g_dir, m);
        snprintf(two, sizeof two, "%s/two%d", g_dir, m);
        snprintf(again, sizeof again, "%s/again%d", g_dir, m);
        assert_int_equal(sh("%s %s --threads 2 --out %s", g_exe, args, one), 0);
        assert_int_equal(sh(MPI2 " %s %s --out %s", g_mpirun, g_exe, args, two), 0);
        assert_int_equal(sh(MPI2 " %s %s --out %s", g_mpirun, g_exe, args, again), 0);
        strcat(one, "/model.safetensors"), strcat(two, "/model.safetensors"), strcat(again, "/model.safetensors");
        double d = ckpt_diff(one, two), d2 = ckpt_diff(two, again);
        printf("%s: 2 ranks vs 1 process: largest difference %.3g of a tensor's largest value\n", models[m], d);
        assert_true(d >= 0 && d < (m ? 1e-4 : 1e-5)); /* batch-norm bias gradients cancel: rounding shows more */
        if (d2 != 0)
            fail_msg("%s: two runs of 2 ranks differ by %g", models[m], d2);
    }
    /* --resume with another number of ranks: one process's first epoch continued by 2 ranks (the batch split by
     * --balance speed: trainers built again, the optimizer state reloaded into the last) ends within float rounding
     * of one process running both epochs */
    const char *args = "train --data fmnist --train-limit 600 --labels 512 --val 0 --test none --arch s --batch 128 "
                       "--optimizer sgd --lr 0.05 --schedule constant --threads 2";
    assert_int_equal(sh("%s %s --epochs 1 --out %s/first", g_exe, args, g_dir), 0);
    assert_int_equal(sh("%s %s --epochs 2 --out %s/both", g_exe, args, g_dir), 0);
    assert_int_equal(sh(MPI2 " %s %s --epochs 2 --resume %s/first/model.safetensors --out %s/resumed --json --balance "
                            "speed",
                        g_mpirun, g_exe, args, g_dir, g_dir),
                     0);
    cJSON *o = cJSON_Parse(g_out);
    if (!o)
        fail_msg("not JSON: %s\n%s", g_out, stderr_text());
    assert_int_equal((int)cJSON_GetObjectItem(o, "steps_this_run")->valuedouble, 4); /* the second epoch's steps */
    assert_int_equal(cJSON_GetObjectItem(o, "ranks")->valueint, 2);
    cJSON_Delete(o);
    char both[700], resumed[700];
    snprintf(both, sizeof both, "%s/both/model.safetensors", g_dir);
    snprintf(resumed, sizeof resumed, "%s/resumed/model.safetensors", g_dir);
    double d = ckpt_diff(both, resumed);
    printf("resumed on 2 ranks vs 1 process: largest difference %.3g\n", d);
    assert_true(d >= 0 && d < 1e-5);
}

/* FixMatch on 2 ranks: each takes its share of a step's labeled and unlabeled rows (augmentation programs and dropout
 * masks by global row; each part's loss weighted by the rank's share of it) and ends within float rounding of one
 * process: model s (dropout after fc1, equal shares and --balance speed's), a batch-norm network with drop-path and
 * --sync-bn (each of the three forwards normalised over its part of the global batch) */
static void test_fixmatch_two_ranks_equal_one(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *base = "fixmatch --data fmnist --train-limit 600 --labels 64 --unlabeled-ratio 4 --val 0 --test none "
                       "--batch 16 --mu 2 --epochs 1 --optimizer sgd --lr 0.05 --threshold 0"; /* every unlabeled row a target */
    const char *runs[][2] = {{"--arch s", ""}, {"--arch s", "--balance speed"}, {"--arch ", "--sync-bn"}};
    for (int m = 0; m < 3; m++) {
        char args[1200], one[600], two[600];
        snprintf(args, sizeof args, "%s %s%s %s", base, runs[m][0], m == 2 ? bn_net() : "", runs[m][1]);
        snprintf(one, sizeof one, "%s/fm_one%d", g_dir, m);
        snprintf(two, sizeof two, "%s/fm_two%d", g_dir, m);
        assert_int_equal(sh("%s %s --threads 2 --out %s", g_exe, args, one), 0);
        /* --balance speed with rank 1 slowed 40x (FRUGAL_SLOWDOWN): a split of 15/1 whatever the machine's load (a
         * split that follows the timing would change the rounding from run to run, and with it, where a weak view's
         * two top classes are nearly tied, a pseudo-label) */
        int rc = m == 1 ? sh("%s --oversubscribe --allow-run-as-root -np 1 %s %s --out %s --json : -np 1 env "
                             "FRUGAL_SLOWDOWN=40 %s %s --out %s --json",
                             g_mpirun, g_exe, args, two, g_exe, args, two)
                        : sh(MPI2 " %s %s --out %s --json", g_mpirun, g_exe, args, two);
        if (rc != 0)
            fail_msg("%s\n%s", g_out, stderr_text());
        cJSON *o = cJSON_Parse(g_out);
        if (!o)
            fail_msg("not JSON: %s\n%s", g_out, stderr_text());
        assert_int_equal(cJSON_GetObjectItem(o, "ranks")->valueint, 2);
        cJSON *sh2 = cJSON_GetObjectItem(o, "batch_shares");
        assert_int_equal(cJSON_GetArraySize(sh2), 2);
        assert_int_equal(cJSON_GetArrayItem(sh2, 0)->valueint, m == 1 ? 15 : 8);
        assert_int_equal(cJSON_GetArrayItem(sh2, 1)->valueint, m == 1 ? 1 : 8);
        cJSON_Delete(o);
        strcat(one, "/model.safetensors"), strcat(two, "/model.safetensors");
        double d = ckpt_diff(one, two);
        printf("fixmatch %s%s %s: 2 ranks vs 1 process: largest difference %.3g\n", runs[m][0], m == 2 ? "bn.txt" : "",
               runs[m][1], d);
        /* batch-norm: the momentum of a bias whose gradient cancels to ~1e-3 of its terms shows rounding most (1e-4;
         * per-rank statistics instead of --sync-bn differ by 0.2-0.9) */
        assert_true(d >= 0 && d < (m == 2 ? 1e-3 : 1e-5));
    }
}

/* FRUGAL_SLOWDOWN (a benchmark's slower device) only makes steps longer: one slowed process (from the start or from
 * its third step) ends bit for bit like one that is not, 2 ranks with rank 1 slowed within float rounding of one
 * process; a bad factor is exit 2 */
static void test_slowdown_changes_no_numbers(void **state)
{
    (void)state;
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *args = "train --data fmnist --train-limit 300 --labels 256 --val 0 --test none --arch s --batch 64 "
                       "--epochs 1 --optimizer sgd --lr 0.05";
    assert_int_equal(sh("%s %s --threads 2 --out %s/plain", g_exe, args, g_dir), 0);
    assert_int_equal(sh("FRUGAL_SLOWDOWN=1.5 %s %s --threads 2 --out %s/slowed", g_exe, args, g_dir), 0);
    assert_int_equal(sh("cmp %s/plain/model.safetensors %s/slowed/model.safetensors", g_dir, g_dir), 0);
    assert_int_equal(sh("FRUGAL_SLOWDOWN=0.5 %s %s --out %s/bad", g_exe, args, g_dir), 2);
    if (!strstr(stderr_text(), "FRUGAL_SLOWDOWN=0.5: expected a factor from 1 to 1000"))
        fail_msg("stderr: %s", stderr_text());
    assert_int_equal(sh("FRUGAL_SLOWDOWN=2@x %s %s --out %s/bad", g_exe, args, g_dir), 2);
    if (!strstr(stderr_text(), "FRUGAL_SLOWDOWN=2@x: expected a factor from 1 to 1000, optionally @ the timed step"))
        fail_msg("stderr: %s", stderr_text());
    /* F@N: the first N timed steps at full speed, then slowed; the numbers stay the same bits */
    assert_int_equal(sh("FRUGAL_SLOWDOWN=3@2 %s %s --threads 2 --out %s/slowed_later", g_exe, args, g_dir), 0);
    assert_int_equal(sh("cmp %s/plain/model.safetensors %s/slowed_later/model.safetensors", g_dir, g_dir), 0);
    if (!fr_dist_built() || !g_mpirun[0])
        return;
    assert_int_equal(sh("%s --oversubscribe --allow-run-as-root -np 1 %s %s --out %s/two_slowed : -np 1 env "
                        "FRUGAL_SLOWDOWN=2 %s %s --out %s/two_slowed",
                        g_mpirun, g_exe, args, g_dir, g_exe, args, g_dir),
                     0);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/plain/model.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/two_slowed/model.safetensors", g_dir);
    double d = ckpt_diff(a, b);
    printf("rank 1 slowed 2x, 2 ranks vs 1 process: largest difference %.3g\n", d);
    assert_true(d >= 0 && d < 1e-5);
}

/* --balance speed during training: rank 1 turns 40x slower after the balance (FRUGAL_SLOWDOWN=40@N, as when another
 * job starts on its device); its step times, which travel with the sums, move rows to rank 0 on every rank at the
 * same step (a new trainer, the weights and Adam's state carried over), to 15/1 by the end. The result stays within
 * float rounding of 2 ranks at equal shares: moving rows changes only how the batch is summed, and Adam's moments,
 * lost at the move, would differ by their whole past. */
static void test_balance_during_training(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *args = "train --data fmnist --train-limit 2000 --labels 1600 --val 0 --test none --arch s --batch 16 "
                       "--epochs 1 --optimizer adam --lr 0.001 --threads 1";
    assert_int_equal(sh(MPI2 " %s %s --out %s/refine_equal", g_mpirun, g_exe, args, g_dir), 0);
    /* the balance's 3 rounds time 5 steps each after a warm-up one: 18 timed steps, then 20 training steps at equal
     * speed before the slowdown */
    int rc = sh("%s --oversubscribe --allow-run-as-root -np 1 %s %s --balance speed --out %s/refine_moved --json : -np 1 "
                "env FRUGAL_SLOWDOWN=40@38 %s %s --balance speed --out %s/refine_moved --json",
                g_mpirun, g_exe, args, g_dir, g_exe, args, g_dir);
    if (rc != 0)
        fail_msg("%s\n%s", g_out, stderr_text());
    cJSON *o = cJSON_Parse(g_out);
    if (!o)
        fail_msg("not JSON: %s\n%s", g_out, stderr_text());
    cJSON *shares = cJSON_GetObjectItem(o, "batch_shares");
    assert_int_equal(cJSON_GetArraySize(shares), 2);
    int r0 = cJSON_GetArrayItem(shares, 0)->valueint, r1 = cJSON_GetArrayItem(shares, 1)->valueint;
    int moved = cJSON_GetObjectItem(o, "rebalanced")->valueint;
    cJSON_Delete(o);
    printf("rank 1 slowed 40x during training: rows moved %d times, to %d/%d\n", moved, r0, r1);
    assert_true(moved >= 1);
    assert_int_equal(r0, 15);
    assert_int_equal(r1, 1);
    if (!strstr(stderr_text(), "the rows moved"))
        fail_msg("stderr: %s", stderr_text());
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/refine_equal/model.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/refine_moved/model.safetensors", g_dir);
    double d = ckpt_diff(a, b);
    printf("2 ranks with rows moved vs 2 ranks at equal shares: largest difference %.3g\n", d);
    /* 3e-5 to 2e-2 from run to run: the split before the move follows the timing (8/8, 9/7, ...), and Adam's first
     * moment of a bias whose gradients nearly cancel carries that rounding (1 process against 2 ranks: 2.2e-2 too);
     * Adam's moments lost at the move differ by 1.2 */
    assert_true(d >= 0 && d < 0.1);
}

/* --- a job in the background: a signal to one rank --- */

/* Starts `mpirun -np 2 frugal train ...` (20 epochs of 10 steps) in the background with its output in DIR/log, its
 * exit status in DIR/rc when it ends; waits until its first epoch is done and returns rank `rank`'s process id. */
static int bg_train(const char *dir, const char *env, int rank)
{
    char log[700];
    snprintf(log, sizeof log, "%s/log", dir);
    sh("mkdir -p %s; (%s %s --oversubscribe --allow-run-as-root -np 2 %s train --data fmnist --train-limit 1280 "
       "--labels 0 --val 0 --test none --arch s --batch 128 --epochs 20 --out %s/out >%s 2>&1 & echo $! >%s/pid; "
       "wait $!; echo $? >%s/rc) >/dev/null 2>&1 &",
       dir, env, g_mpirun, g_exe, dir, log, dir, dir);
    for (int i = 0; sh("grep -q 'epoch 1/20' %s", log) != 0; i++) { /* the first epoch's line */
        if (i == 1200 || sh("test -f %s/rc", dir) == 0) {
            sh("cat %s", log);
            fail_msg("the job ended or took 2 minutes before its first epoch: %s", g_out);
        }
        usleep(100000);
    }
    assert_int_equal(sh("pgrep -P $(cat %s/pid) | sed -n %dp", dir, rank + 1), 0);
    int pid = atoi(g_out);
    assert_true(pid > 0);
    return pid;
}

/* the job's exit status once it ends (fails after 2 minutes) and its output in g_out */
static int bg_wait(const char *dir)
{
    for (int i = 0; i < 1200 && sh("test -f %s/rc", dir) != 0; i++)
        usleep(100000);
    if (sh("cat %s/rc", dir) != 0) {
        sh("pkill -KILL -P $(cat %s/pid); kill -KILL $(cat %s/pid)", dir, dir);
        fail_msg("the job did not end within 2 minutes");
    }
    int rc = atoi(g_out);
    sh("cat %s/log", dir);
    return rc;
}

/* SIGINT on rank 1: every rank finishes the step, rank 0 saves, all exit 130; one process resumes the run */
static void test_sigint_on_one_rank(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *dir = tu_path(g_dir, "sigint");
    int pid = bg_train(dir, "", 1);
    kill(pid, SIGINT);
    int rc = bg_wait(dir);
    if (rc != 130 || !strstr(g_out, "interrupted at epoch"))
        fail_msg("exit %d, output: %s", rc, g_out);
    int epoch = 0, step = 0;
    sscanf(strstr(g_out, "interrupted at epoch"), "interrupted at epoch %d step %d", &epoch, &step);
    assert_true(epoch >= 2 && step >= 1);
    assert_null(strstr(g_out, "frugal: rank 1")); /* rank 0 alone reports it */
    char ck[700];
    snprintf(ck, sizeof ck, "%s/out/model.safetensors", dir);
    assert_int_equal(sh("%s train --data fmnist --train-limit 1280 --labels 0 --val 0 --test none --arch s --batch 128 "
                        "--epochs 20 --resume %s --out %s/out --json --threads 2",
                        g_exe, ck, dir),
                     0);
    cJSON *o = cJSON_Parse(g_out);
    assert_non_null(o);
    /* the rest of the 200 steps, counted from where the 2 ranks stopped */
    assert_int_equal((int)cJSON_GetObjectItem(o, "steps_this_run")->valuedouble, 200 - ((epoch - 1) * 10 + step));
    cJSON_Delete(o);
}

/* SIGTERM on rank 0 (kill, a batch scheduler): the same as SIGINT, every rank finishes the step, rank 0 saves, all
 * exit 130 */
static void test_sigterm_on_rank0(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *dir = tu_path(g_dir, "sigterm");
    kill(bg_train(dir, "", 0), SIGTERM);
    int rc = bg_wait(dir);
    if (rc != 130 || !strstr(g_out, "interrupted at epoch"))
        fail_msg("exit %d, output: %s", rc, g_out);
    assert_int_equal(sh("test -s %s/out/model.safetensors", dir), 0);
}

/* a rank killed in the middle of training ends the job with an error */
static void test_killed_rank_in_training(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *dir = tu_path(g_dir, "killed");
    kill(bg_train(dir, "", 1), SIGKILL);
    int rc = bg_wait(dir);
    if (rc == 0 || !strstr(g_out, "signal 9"))
        fail_msg("exit %d, output: %s", rc, g_out);
}

/* a rank that hangs (stopped): the others give up after FRUGAL_RANK_TIMEOUT naming it, and the job ends */
static void test_hung_rank_in_training(void **state)
{
    (void)state;
    NEED_MPI();
    NEED(g_have_data, "Fashion-MNIST is not installed");
    const char *dir = tu_path(g_dir, "hung");
    int pid = bg_train(dir, "FRUGAL_RANK_TIMEOUT=3", 1);
    kill(pid, SIGSTOP);
    int rc = bg_wait(dir);
    kill(pid, SIGKILL); /* in case the launcher left it stopped */
    if (rc == 0 || !strstr(g_out, "no answer from rank 1"))
        fail_msg("exit %d, output: %s", rc, g_out);
}

/* a build without MPI started by mpirun (its environment): rank 0 says so, every rank exits 2 */
static void test_no_mpi_build(void **state)
{
    (void)state;
    NEED(!fr_dist_built(), "this build has MPI (the sanitizer pass builds without it)");
    assert_int_equal(sh("OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 %s devices", g_exe), 2);
    assert_string_equal(g_out, "");
    assert_string_equal(stderr_text(), "");
    assert_int_equal(sh("OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 %s devices", g_exe), 2);
    assert_non_null(strstr(stderr_text(), "built without MPI"));
    assert_int_equal(sh("OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0 %s devices --json", g_exe), 0);
    if (g_mpirun[0]) { /* and with mpirun itself */
        assert_int_not_equal(sh(MPI2 " %s devices", g_mpirun, g_exe), 0);
        const char *e = stderr_text(), *hit = strstr(e, "built without MPI");
        assert_non_null(hit);
        assert_null(strstr(hit + 1, "built without MPI"));
    }
}

static int group_setup(void **state)
{
    (void)state;
    const char *exe = getenv("FRUGAL_EXE"), *mpirun = getenv("FRUGAL_MPIRUN");
    snprintf(g_exe, sizeof g_exe, "%s", exe ? exe : "tools/frugal");
    snprintf(g_mpirun, sizeof g_mpirun, "%s", mpirun ? mpirun : "");
    if (tu_tmpdir_create(g_dir, sizeof g_dir, "dist"))
        return -1;
    g_have_data = fr_dataset_fmnist_dir() != NULL;
    if (!g_have_data || !fr_dist_built() || !g_mpirun[0])
        return 0;
    /* two small models of the same architecture (other seeds) */
    for (int i = 0; i < 2; i++) {
        int rc = sh("%s train --data fmnist --train-limit 1000 --labels 300 --test none --arch t --batch 32 --epochs 1 "
                    "--threads 2 --seed %d --out %s",
                    g_exe, i + 1, tu_path(g_dir, i ? "m2" : "m"));
        if (rc != 0) {
            fprintf(stderr, "training the test model failed (%d): %s\n", rc, stderr_text());
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_tmpdir_remove(g_dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--rank"))
        return rank_main(argv[2]);
    if (!realpath(argv[0], g_self))
        snprintf(g_self, sizeof g_self, "%s", argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_batch_noise),
        cmocka_unit_test(test_collectives),
        cmocka_unit_test(test_sync_bn_equals_whole_batch),
        cmocka_unit_test(test_silent_rank_times_out),
        cmocka_unit_test(test_killed_rank_ends_job),
        cmocka_unit_test(test_devices_every_rank),
        cmocka_unit_test(test_eval_sharded_equals_one_process),
        cmocka_unit_test(test_pseudo_label_and_predict_sharded),
        cmocka_unit_test(test_train_two_ranks_equal_one),
        cmocka_unit_test(test_fixmatch_two_ranks_equal_one),
        cmocka_unit_test(test_slowdown_changes_no_numbers),
        cmocka_unit_test(test_balance_during_training),
        cmocka_unit_test(test_sigint_on_one_rank),
        cmocka_unit_test(test_sigterm_on_rank0),
        cmocka_unit_test(test_killed_rank_in_training),
        cmocka_unit_test(test_hung_rank_in_training),
        cmocka_unit_test(test_bad_device_on_one_rank),
        cmocka_unit_test(test_different_files_on_one_rank),
        cmocka_unit_test(test_no_mpi_build),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
