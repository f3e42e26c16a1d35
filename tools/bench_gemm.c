/* bench_gemm: times fr_sgemm on given shapes and prints GFLOP/s (median, min, max over runs), one line per shape. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "cpu/gemm.h"

static int use_cpu_clock; /* -c: process CPU time / threads (robust to other load on a shared machine) */
static int n_threads = 1;

static double now(void)
{
    struct timespec ts;
    clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec) / (use_cpu_clock ? n_threads : 1);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_gemm [-t threads] [-r runs] [-k kernel] [-c 0|1] MxNxK[:TT] ...\n"
                    "  TT = nn, nt, tn or tt (transpose A, B); threads 0 = FRUGAL_THREADS or all cores\n"
                    "  -c 1: time by process CPU time / threads instead of wall time\n");
}

int main(int argc, char **argv)
{
    int threads = 0, runs = 7, first = 1;
    const char *kernel = NULL;
    for (; first < argc && argv[first][0] == '-'; first += 2) {
        if (first + 1 >= argc) {
            usage();
            return 2;
        }
        if (!strcmp(argv[first], "-t"))
            threads = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "-r"))
            runs = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "-k"))
            kernel = argv[first + 1];
        else if (!strcmp(argv[first], "-c"))
            use_cpu_clock = atoi(argv[first + 1]) != 0;
        else {
            usage();
            return 2;
        }
    }
    if (first >= argc || runs < 1 || runs > 1000) {
        usage();
        return 2;
    }
    if (kernel && !fr_sgemm_set_kernel(kernel)) {
        fprintf(stderr, "bench_gemm: kernel '%s' is not available here\n", kernel);
        return 2;
    }
    struct fr_threadpool *pool = fr_threadpool_new(threads);
    if (!pool) {
        fprintf(stderr, "bench_gemm: cannot start the thread pool\n");
        return 1;
    }
    n_threads = fr_threadpool_size(pool);
    int status = 0;
    for (int s = first; s < argc; s++) {
        long long m, n, k;
        char ta = 'n', tb = 'n';
        int got = sscanf(argv[s], "%lldx%lldx%lld:%c%c", &m, &n, &k, &ta, &tb);
        if ((got != 3 && got != 5) || m < 1 || n < 1 || k < 1 || m * n > (1LL << 28) || m * k > (1LL << 28) ||
            k * n > (1LL << 28)) {
            fprintf(stderr, "bench_gemm: bad shape '%s'\n", argv[s]);
            status = 2;
            continue;
        }
        bool tra = ta == 't', trb = tb == 't';
        float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n)),
              *c = malloc(sizeof(float) * (size_t)(m * n));
        double *gf = malloc(sizeof(double) * (size_t)runs);
        if (!a || !b || !c || !gf) {
            fprintf(stderr, "bench_gemm: out of memory for '%s'\n", argv[s]);
            free(a), free(b), free(c), free(gf);
            status = 1;
            continue;
        }
        uint32_t x = 12345;
        for (long long i = 0; i < m * k; i++)
            a[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        for (long long i = 0; i < k * n; i++)
            b[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        memset(c, 0, sizeof(float) * (size_t)(m * n));
        int64_t lda = tra ? m : k, ldb = trb ? k : n;
        double flop = 2.0 * (double)m * (double)n * (double)k;
        /* warm-up sizes the packing buffers and wakes the pool; each run repeats to last >= 20 ms */
        fr_sgemm(pool, tra, trb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        double t0 = now();
        fr_sgemm(pool, tra, trb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        double once = now() - t0;
        int reps = once > 0.02 ? 1 : (int)(0.02 / (once > 1e-7 ? once : 1e-7)) + 1;
        for (int r = 0; r < runs; r++) {
            t0 = now();
            for (int i = 0; i < reps; i++)
                fr_sgemm(pool, tra, trb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
            gf[r] = flop * reps / (now() - t0) / 1e9;
        }
        qsort(gf, (size_t)runs, sizeof(double), cmp_double);
        printf("shape=%lldx%lldx%lld:%c%c threads=%d kernel=%s gflops_median=%.2f gflops_min=%.2f gflops_max=%.2f "
               "runs=%d reps=%d clock=%s\n",
               m, n, k, tra ? 't' : 'n', trb ? 't' : 'n', fr_threadpool_size(pool), fr_sgemm_kernel_name(),
               gf[runs / 2], gf[0], gf[runs - 1], runs, reps, use_cpu_clock ? "cpu" : "wall");
        fflush(stdout);
        free(a), free(b), free(c), free(gf);
    }
    fr_threadpool_free(pool);
    return status;
}
