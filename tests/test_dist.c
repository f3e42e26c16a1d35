/* One job over MPI ranks: the collectives (sums in rank order against a hand-made double sum, the same bits on
 * every rank, gathers, agreement, fingerprints, a deadline naming the silent rank, a killed rank) run as
 * `mpirun -np 2 test_dist --rank NAME`; the CLI under mpirun (every rank's devices, sharded evaluation, prediction
 * and pseudo-labels equal to one process byte for byte, one error for a bad device or different files). In a
 * build without MPI: mpirun's environment gives one clear error and exit 2 on every rank. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frugal/dist.h"
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
    if (!strcmp(name, "silent"))
        return rank_silent(d);
    if (!strcmp(name, "killed"))
        return rank_killed(d);
    fprintf(stderr, "unknown rank test %s\n", name);
    return fr_dist_finalize(d, 2);
}

/* --- noise of a split batch: dropout and drop-path rows of a share equal the whole batch's rows --- */

/* y = drop(x) for rows [first, first + n) of a batch, the graph told its first sample */
static void run_drop(struct fr_backend *be, bool path, int64_t first, int64_t n, int64_t f, const float *x,
                     float *y)
{
    struct fr_ctx *ctx = fr_ctx_new();
    struct fr_tensor *in = fr_tensor_set_flags(fr_tensor_new_2d(ctx, FR_F32, n, f), FR_FLAG_INPUT);
    struct fr_tensor *out = path ? fr_drop_path_salted(ctx, in, 0.7f, 5) : fr_dropout_salted(ctx, in, 0.3f, 5);
    struct fr_graph *g = fr_graph_new(ctx);
    assert_int_equal(fr_graph_add(g, out), FR_STATUS_OK);
    assert_int_equal(fr_graph_plan(g, be), FR_STATUS_OK);
    fr_graph_set_training(g, true);
    fr_graph_set_seed(g, 11);
    fr_graph_set_step(g, 3);
    fr_graph_set_first_sample(g, (uint32_t)first);
    assert_int_equal(fr_tensor_set(in, x + first * f, (size_t)(n * f) * sizeof(float)), FR_STATUS_OK);
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
            run_drop(bes[b], path, 0, n, f, x, whole);
            int dropped = 0;
            for (int64_t i = 0; i < n * f; i++)
                dropped += whole[i] == 0.0f;
            assert_true(dropped > 0 && dropped < n * f); /* some units of each kind */
            const int64_t cuts[][2] = {{0, 5}, {5, 3}, {8, 5}, {1, 12}};
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
                run_drop(bes[b], path, cuts[c][0], cuts[c][1], f, x, part);
                tu_assert_bytes_equal(part, whole + cuts[c][0] * f, (size_t)(cuts[c][1] * f) * sizeof(float));
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
    snprintf(cmd, sizeof cmd, "FRUGAL_DEVICE=cpu %s 2>%s/stderr.txt", line, g_dir);
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
        int rc = sh("%s train --data fmnist --train-limit 1000 --labels 300 --test none --model t --batch 32 --epochs 1 "
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
        cmocka_unit_test(test_silent_rank_times_out),
        cmocka_unit_test(test_killed_rank_ends_job),
        cmocka_unit_test(test_devices_every_rank),
        cmocka_unit_test(test_eval_sharded_equals_one_process),
        cmocka_unit_test(test_bad_device_on_one_rank),
        cmocka_unit_test(test_different_files_on_one_rank),
        cmocka_unit_test(test_no_mpi_build),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
