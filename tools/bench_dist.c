/* Sum across ranks, timed: frugal's fixed-order sum (fr_dist_sum: direct reduce-scatter, rank-order sums in double,
 * allgather) beside MPI_Allreduce (the library's own algorithm choice) for message sizes from 1 KiB to 64 MiB.
 * Run under mpirun: `mpirun -np N build/tools/bench_dist [-r REPEATS] [MAX_MIB]`; rank 0 prints one line per size
 * (median of the repeats, microseconds) and the bus bandwidth 2·(N-1)/N·bytes/time. docs/scaling.md uses it. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frugal/dist.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int reps = 20;
    double max_mib = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else
            max_mib = atof(argv[i]);
    }
    if (reps < 1)
        reps = 1;
    struct fr_dist *d;
    if (fr_dist_init(&d) != FR_STATUS_OK) {
        fprintf(stderr, "bench_dist: %s\n", fr_last_error());
        return 2;
    }
    const int n_ranks = fr_dist_size(d), me = fr_dist_rank(d);
    size_t max_n = (size_t)(max_mib * 1048576.0 / sizeof(float));
    float *x = malloc(max_n * sizeof *x), *y = malloc(max_n * sizeof *y);
    double *t_fr = malloc((size_t)reps * sizeof *t_fr), *t_mpi = malloc((size_t)reps * sizeof *t_mpi);
    if (!x || !y || !t_fr || !t_mpi) {
        fprintf(stderr, "bench_dist: out of memory\n");
        return fr_dist_finalize(d, 1);
    }
    if (me == 0)
        printf("ranks %d; median of %d runs\n%10s %14s %14s %12s %12s\n", n_ranks, reps, "bytes", "fr_dist_sum_us",
               "MPI_Allreduce", "fr_busbw_GBs", "mpi_busbw_GBs");
    for (size_t n = 256; n <= max_n; n *= 4) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(i % 1000) * 0.001f + (float)me;
        for (int r = -2; r < reps; r++) { /* two warm-up rounds */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now_us();
            if (fr_dist_sum(d, x, (int64_t)n, NULL) != FR_STATUS_OK) {
                fprintf(stderr, "bench_dist: %s\n", fr_last_error());
                return fr_dist_finalize(d, 1);
            }
            double t1 = now_us();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = now_us();
            MPI_Allreduce(x, y, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t3 = now_us();
            if (r >= 0)
                t_fr[r] = t1 - t0, t_mpi[r] = t3 - t2;
        }
        qsort(t_fr, (size_t)reps, sizeof *t_fr, cmp);
        qsort(t_mpi, (size_t)reps, sizeof *t_mpi, cmp);
        double bytes = (double)n * sizeof(float), f = 2.0 * (n_ranks - 1) / n_ranks;
        if (me == 0)
            printf("%10.0f %14.1f %14.1f %12.3f %12.3f\n", bytes, t_fr[reps / 2], t_mpi[reps / 2],
                   f * bytes / t_fr[reps / 2] * 1e-3, f * bytes / t_mpi[reps / 2] * 1e-3);
        fflush(stdout);
    }
    free(x);
    free(y);
    free(t_fr);
    free(t_mpi);
    return fr_dist_finalize(d, 0);
}
