/* The job over MPI ranks: init/finalize, hosts, and collectives built from point-to-point messages with a
 * deadline (a rank that died or hangs is named, never waited for forever); sums are added in rank order, so
 * the result does not depend on timing or on the MPI library's algorithms. One process without MPI. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "frugal/dist.h"
#include "frugal_config.h"

#if FRUGAL_HAVE_MPI
#include <mpi.h>
#endif

#define HOST_MAX 64
#define MSG_MAX 480
#define DEFAULT_TIMEOUT 300.0
#define EXIT_TIMEOUT 10.0 /* a failing rank waits this long for the others to reach the end too */

struct fr_dist {
    int rank, size, local_rank, local_size;
    bool mpi;            /* MPI_Init ran (a launcher started this process) */
    bool broken;         /* a collective failed: the ranks are out of step */
    bool agreed_failure; /* fr_dist_agree/fr_dist_same returned a failure on every rank */
    double timeout;
    double slowdown;     /* FRUGAL_SLOWDOWN: this rank's compute steps made that many times as long (benchmarks) */
    int64_t slow_from;   /* ... from its slow_from-th timed step on (FRUGAL_SLOWDOWN=F@N; 0: from the first) */
    int64_t timed;       /* timed steps so far */
    uint32_t seq;        /* collectives so far (the same on every rank): message tags */
    float *other;        /* the two-rank sum's receive buffer, kept: a new one every step costs a page fault per 4 KB */
    int64_t other_n;
    char (*hosts)[HOST_MAX];
#if FRUGAL_HAVE_MPI
    MPI_Comm comm;
#endif
};

static struct fr_dist *g_world;

bool fr_dist_built(void) { return FRUGAL_HAVE_MPI; }
struct fr_dist *fr_dist_world(void) { return g_world; }
int fr_dist_rank(const struct fr_dist *d) { return d ? d->rank : 0; }
int fr_dist_size(const struct fr_dist *d) { return d ? d->size : 1; }
int fr_dist_local_size(const struct fr_dist *d) { return d ? d->local_size : 1; }
int fr_dist_local_rank(const struct fr_dist *d) { return d ? d->local_rank : 0; }
bool fr_dist_broken(const struct fr_dist *d) { return d && d->broken; }
bool fr_dist_agreed(const struct fr_dist *d) { return d && d->agreed_failure; }
double fr_dist_timeout(const struct fr_dist *d) { return d ? d->timeout : DEFAULT_TIMEOUT; }
double fr_dist_slowdown(const struct fr_dist *d) { return d ? d->slowdown : 1.0; }

void fr_dist_slow_down(struct fr_dist *d, double seconds)
{
    if (d && d->timed++ < d->slow_from)
        return;
    double s = (fr_dist_slowdown(d) - 1) * seconds;
    if (s > 0 && isfinite(s)) {
        struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&t, &t) != 0 && errno == EINTR) /* a signal (SIGINT: stop after the step): the rest */
            ;
    }
}

void fr_dist_set_timeout(struct fr_dist *d, double seconds)
{
    if (d && seconds > 0)
        d->timeout = seconds;
}

const char *fr_dist_host(const struct fr_dist *d, int rank)
{
    static char self[HOST_MAX];
    if (d && d->hosts && rank >= 0 && rank < d->size)
        return d->hosts[rank];
    if (!self[0] && gethostname(self, sizeof self - 1) != 0)
        snprintf(self, sizeof self, "localhost");
    return self;
}


/* the rank and size a launcher (Open MPI's mpirun, a PMI launcher) gave this process through the environment */
static int env_int(const char *const *names, int dflt)
{
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long x = v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && x >= 0 && x < INT_MAX)
            return (int)x;
    }
    return dflt;
}
static int launch_size(void) { return env_int((const char *const[]){"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL}, 0); }
int fr_dist_launch_rank(void)
{
    return env_int((const char *const[]){"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL}, 0);
}

uint64_t fr_dist_hash(uint64_t h, const void *data, size_t n)
{
    /* zlib's CRC-32 and Adler-32, each chained from its half of h */
    uLong c = (uLong)(h >> 32), a = (uLong)(h & 0xffffffffu);
    const Bytef *p = data;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        a = adler32(a, p, k);
        p += k;
        n -= k;
    }
    return ((uint64_t)(c & 0xffffffffu) << 32) | (uint64_t)(a & 0xffffffffu);
}

static void share_of(int rank, int size, int64_t n, int64_t granule, int64_t *start, int64_t *count)
{
    if (granule < 1)
        granule = 1;
    int64_t g = (n + granule - 1) / granule;
    int64_t a = g * rank / size * granule, b = g * (rank + 1) / size * granule;
    a = a < n ? a : n;
    b = b < n ? b : n;
    *start = a;
    *count = b - a;
}

void fr_dist_share(const struct fr_dist *d, int64_t n, int64_t granule, int64_t *start, int64_t *count)
{
    share_of(fr_dist_rank(d), fr_dist_size(d), n, granule, start, count);
}

/* --- point-to-point exchanges with a deadline --- */

/* what a collective does: part of its messages' tags, so ranks at different collectives never exchange data */
enum kind { K_HOSTS = 1, K_GATHER, K_BCAST, K_ROWS, K_REDUCE, K_AGREE, K_SAME, K_END };

/* one message of a collective: to or from `peer` */
struct xfer {
    int peer;
    bool send;
    void *buf;
    size_t bytes;
};

#if FRUGAL_HAVE_MPI
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define PIECE ((size_t)1 << 30) /* MPI counts are ints: longer messages go in pieces (same tag, kept in order) */

static enum fr_status mpi_fail(struct fr_dist *d, int err, const char *what)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, s, &len);
    d->broken = true;
    return fr_error(FR_STATUS_IO, "rank %d (%s): %s: MPI error: %s", d->rank, fr_dist_host(d, d->rank), what, s);
}

/* Posts every message of the collective, then polls them until all are done or the deadline passes (the
 * ranks that did not answer are named). Busy-polls for a moment, then sleeps between polls. */
static enum fr_status exchange(struct fr_dist *d, enum kind kind, struct xfer *x, int n, const char *what)
{
    int tag = ((int)kind << 16) | (int)(d->seq++ & 0xffffu);
    if (n == 0)
        return FR_STATUS_OK;
    int n_req = 0;
    for (int i = 0; i < n; i++)
        n_req += x[i].bytes ? (int)((x[i].bytes + PIECE - 1) / PIECE) : 1;
    MPI_Request *req = malloc((size_t)n_req * sizeof *req);
    int *owner = malloc((size_t)n_req * sizeof *owner);
    if (!req || !owner) {
        free(req);
        free(owner);
        d->broken = true;
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", what);
    }
    int k = 0, err = MPI_SUCCESS;
    for (int i = 0; i < n && err == MPI_SUCCESS; i++) {
        size_t off = 0;
        do {
            size_t len = x[i].bytes - off < PIECE ? x[i].bytes - off : PIECE;
            char *p = (char *)x[i].buf + off;
            err = x[i].send ? MPI_Isend(p, (int)len, MPI_BYTE, x[i].peer, tag, d->comm, &req[k])
                            : MPI_Irecv(p, (int)len, MPI_BYTE, x[i].peer, tag, d->comm, &req[k]);
            owner[k++] = i;
            off += len;
        } while (off < x[i].bytes && err == MPI_SUCCESS);
    }
    enum fr_status st = FR_STATUS_OK;
    if (err != MPI_SUCCESS)
        st = mpi_fail(d, err, what);
    double deadline = now_s() + d->timeout;
    long polls = 0;
    for (int left = k; st == FR_STATUS_OK && left > 0; polls++) {
        left = 0;
        for (int i = 0; i < k && err == MPI_SUCCESS; i++) {
            int done = 1;
            if (req[i] != MPI_REQUEST_NULL)
                err = MPI_Test(&req[i], &done, MPI_STATUS_IGNORE);
            left += !done;
        }
        if (err != MPI_SUCCESS) {
            st = mpi_fail(d, err, what);
            break;
        }
        if (left == 0)
            break;
        if (now_s() > deadline) {
            char peers[256] = "";
            size_t at = 0;
            int last = -1;
            for (int i = 0; i < k; i++) {
                int p = x[owner[i]].peer;
                if (req[i] != MPI_REQUEST_NULL && p != last && at < sizeof peers - 40) {
                    at += (size_t)snprintf(peers + at, sizeof peers - at, "%s%d (%s)", at ? ", " : "", p,
                                           fr_dist_host(d, p));
                    last = p;
                }
            }
            d->broken = true;
            st = fr_error(FR_STATUS_IO,
                          "rank %d (%s): %s: no answer from rank %s within %.0f s (the rank died, hangs, or runs "
                          "different steps; FRUGAL_RANK_TIMEOUT sets the limit)",
                          d->rank, fr_dist_host(d, d->rank), what, peers, d->timeout);
            break;
        }
        if (polls > 2000) { /* sleep 20 us doubling to 1 ms: a waiting rank leaves its core to others (waking it
                               more often, every 160 us, made a 2-rank job 25-40 % slower on a shared 2-core machine:
                               each wake-up takes the core from a computing process) */
            long ns = 20000L << (polls - 2000 < 6 ? polls - 2000 : 6);
            nanosleep(&(struct timespec){0, ns > 1000000L ? 1000000L : ns}, NULL);
        }
    }
    free(req);
    free(owner);
    return st;
}
#else
static enum fr_status exchange(struct fr_dist *d, enum kind kind, struct xfer *x, int n, const char *what)
{
    (void)x, (void)kind;
    if (n == 0)
        return FR_STATUS_OK;
    d->broken = true;
    return fr_error(FR_STATUS_UNSUPPORTED, "%s: this build has no MPI", what);
}
#endif

/* every rank's `bytes` bytes into all[r * bytes] */
static enum fr_status allgather(struct fr_dist *d, enum kind kind, const void *mine, size_t bytes, void *all,
                                const char *what)
{
    if ((char *)all + (size_t)d->rank * bytes != mine)
        memmove((char *)all + (size_t)d->rank * bytes, mine, bytes);
    if (d->size == 1)
        return FR_STATUS_OK;
    struct xfer *x = malloc(2 * (size_t)d->size * sizeof *x);
    if (!x)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", what);
    int n = 0;
    for (int r = 0; r < d->size; r++)
        if (r != d->rank) {
            x[n++] = (struct xfer){r, false, (char *)all + (size_t)r * bytes, bytes};
            x[n++] = (struct xfer){r, true, (char *)all + (size_t)d->rank * bytes, bytes};
        }
    enum fr_status st = exchange(d, kind, x, n, what);
    free(x);
    return st;
}

enum fr_status fr_dist_allgather(struct fr_dist *d, const void *mine, size_t bytes, void *all)
{
    if (!d) {
        memmove(all, mine, bytes);
        return FR_STATUS_OK;
    }
    return allgather(d, K_GATHER, mine, bytes, all, "allgather");
}

enum fr_status fr_dist_bcast(struct fr_dist *d, void *buf, size_t bytes, int root)
{
    if (!d || d->size == 1)
        return FR_STATUS_OK;
    if (root < 0 || root >= d->size)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "bcast: no rank %d in a job of %d", root, d->size);
    struct xfer *x = malloc((size_t)d->size * sizeof *x);
    if (!x)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "bcast: out of memory");
    int n = 0;
    if (d->rank == root) {
        for (int r = 0; r < d->size; r++)
            if (r != root)
                x[n++] = (struct xfer){r, true, buf, bytes};
    } else
        x[n++] = (struct xfer){root, false, buf, bytes};
    enum fr_status st = exchange(d, K_BCAST, x, n, "bcast");
    free(x);
    return st;
}

enum fr_status fr_dist_gather_rows(struct fr_dist *d, void *buf, int64_t n, size_t row_bytes, int64_t granule)
{
    if (!d || d->size == 1)
        return FR_STATUS_OK;
    struct xfer *x = malloc(2 * (size_t)d->size * sizeof *x);
    if (!x)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "gather: out of memory");
    int64_t s0, c0;
    share_of(d->rank, d->size, n, granule, &s0, &c0);
    int m = 0;
    for (int r = 0; r < d->size; r++) {
        if (r == d->rank)
            continue;
        int64_t s, c;
        share_of(r, d->size, n, granule, &s, &c);
        if (c > 0)
            x[m++] = (struct xfer){r, false, (char *)buf + (size_t)s * row_bytes, (size_t)c * row_bytes};
        if (c0 > 0)
            x[m++] = (struct xfer){r, true, (char *)buf + (size_t)s0 * row_bytes, (size_t)c0 * row_bytes};
    }
    enum fr_status st = exchange(d, K_ROWS, x, m, "gathering results");
    free(x);
    return st;
}

/* the two-rank sum's receive buffer, at least n values */
static enum fr_status other_buffer(struct fr_dist *d, int64_t n)
{
    if (n <= d->other_n)
        return FR_STATUS_OK;
    free(d->other);
    d->other_n = 0;
    if (!(d->other = malloc((size_t)n * sizeof *d->other)))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "gradient sum: out of memory for %lld values", (long long)n);
    d->other_n = n;
    return FR_STATUS_OK;
}

enum fr_status fr_dist_sum_parts(struct fr_dist *d, float *const *part, const int64_t *count, int n_parts)
{
    const int size = fr_dist_size(d), me = fr_dist_rank(d);
    int64_t n = 0;
    for (int i = 0; i < n_parts; i++)
        n += count[i];
    if (size == 1)
        return FR_STATUS_OK;
    if (size == 2) { /* two ranks: each sends all its values and adds both in rank order (one exchange instead of two,
                        the same bytes on the wire; the same sum in the same order on both: the same bits), straight
                        from and into the parts */
        enum fr_status st = other_buffer(d, n);
        struct xfer *x = st == FR_STATUS_OK ? malloc(2 * (size_t)n_parts * sizeof *x) : NULL;
        if (st == FR_STATUS_OK && !x)
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "gradient sum: out of memory");
        int64_t off = 0;
        for (int i = 0; st == FR_STATUS_OK && i < n_parts; off += count[i], i++) {
            x[2 * i] = (struct xfer){1 - me, true, part[i], (size_t)count[i] * sizeof(float)};
            x[2 * i + 1] = (struct xfer){1 - me, false, d->other + off, (size_t)count[i] * sizeof(float)};
        }
        if (st == FR_STATUS_OK)
            st = exchange(d, K_REDUCE, x, 2 * n_parts, "sum");
        free(x);
        off = 0;
        for (int i = 0; st == FR_STATUS_OK && i < n_parts; off += count[i], i++) {
            float *v = part[i];
            const float *o = d->other + off;
            /* two floats added in float: the same bits as in double, rounded once (53 bits hold the exact sum of two
               24-bit ones to round), twice as fast; a + b = b + a, so both ranks get the same bits */
            for (int64_t j = 0; j < count[i]; j++)
                v[j] = v[j] + o[j];
        }
        return st;
    }
    if (n_parts == 1)
        return fr_dist_sum(d, part[0], n, NULL);
    float *flat = malloc((size_t)(n > 0 ? n : 1) * sizeof *flat); /* more ranks: the parts as one array */
    if (!flat)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "gradient sum: out of memory for %lld values", (long long)n);
    int64_t off = 0;
    for (int i = 0; i < n_parts; off += count[i], i++)
        memcpy(flat + off, part[i], (size_t)count[i] * sizeof *flat);
    enum fr_status st = fr_dist_sum(d, flat, n, NULL);
    off = 0;
    for (int i = 0; st == FR_STATUS_OK && i < n_parts; off += count[i], i++)
        memcpy(part[i], flat + off, (size_t)count[i] * sizeof *flat);
    free(flat);
    return st;
}

enum fr_status fr_dist_sum(struct fr_dist *d, float *v, int64_t n, const double *weight)
{
    const int size = fr_dist_size(d), me = fr_dist_rank(d);
    if (size == 1) {
        if (weight && weight[0] != 1.0)
            for (int64_t i = 0; i < n; i++)
                v[i] = (float)(weight[0] * (double)v[i]);
        return FR_STATUS_OK;
    }
    if (size == 2 && !weight)
        return fr_dist_sum_parts(d, &v, &n, 1);
    if (size == 2) { /* two ranks, weighted: each sends all its values and adds both in rank order */
        enum fr_status st = other_buffer(d, n);
        float *other = d->other;
        struct xfer x[2] = {{1 - me, true, v, (size_t)n * sizeof(float)}, {1 - me, false, other, (size_t)n * sizeof(float)}};
        if (st == FR_STATUS_OK)
            st = exchange(d, K_REDUCE, x, 2, "sum");
        const float *r0 = me == 0 ? v : other, *r1 = me == 0 ? other : v;
        for (int64_t i = 0; st == FR_STATUS_OK && i < n; i++)
            v[i] = (float)(weight[0] * (double)r0[i] + weight[1] * (double)r1[i]);
        return st;
    }
    /* owner r adds chunk r of every rank in rank order, then every rank gathers the owners' chunks */
    int64_t s0, c0;
    share_of(me, size, n, 1, &s0, &c0);
    float *in = malloc(((size_t)(c0 > 0 ? c0 : 1)) * (size_t)size * sizeof *in);
    struct xfer *x = malloc(2 * (size_t)size * sizeof *x);
    if (!in || !x) {
        free(in);
        free(x);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "gradient sum: out of memory for %lld values", (long long)n);
    }
    int m = 0;
    for (int r = 0; r < size; r++) {
        if (r == me)
            continue;
        int64_t s, c;
        share_of(r, size, n, 1, &s, &c);
        if (c > 0)
            x[m++] = (struct xfer){r, true, v + s, (size_t)c * sizeof(float)};
        if (c0 > 0)
            x[m++] = (struct xfer){r, false, in + (size_t)r * (size_t)c0, (size_t)c0 * sizeof(float)};
    }
    memcpy(in + (size_t)me * (size_t)c0, v + s0, (size_t)c0 * sizeof(float));
    enum fr_status st = exchange(d, K_REDUCE, x, m, "sum (reduce)");
    for (int64_t i = 0; st == FR_STATUS_OK && i < c0; i++) {
        double acc = 0;
        for (int r = 0; r < size; r++)
            acc += (weight ? weight[r] : 1.0) * (double)in[(size_t)r * (size_t)c0 + (size_t)i];
        v[s0 + i] = (float)acc;
    }
    free(in);
    free(x);
    return st == FR_STATUS_OK ? fr_dist_gather_rows(d, v, n, sizeof(float), 1) : st;
}

/* --- agreement --- */

struct agree_rec {
    int32_t status;
    char msg[MSG_MAX];
};

enum fr_status fr_dist_agree(struct fr_dist *d, enum fr_status st)
{
    if (!d || d->size == 1)
        return st;
    struct agree_rec mine = {(int32_t)st, ""};
    if (st != FR_STATUS_OK)
        snprintf(mine.msg, sizeof mine.msg, "%s", fr_last_error());
    struct agree_rec *all = calloc((size_t)d->size, sizeof *all);
    if (!all)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "agree: out of memory");
    enum fr_status r = allgather(d, K_AGREE, &mine, sizeof mine, all, "agreeing on the outcome");
    if (r != FR_STATUS_OK) {
        free(all);
        return r;
    }
    for (int i = 0; i < d->size; i++)
        if (all[i].status != FR_STATUS_OK) {
            enum fr_status s = (enum fr_status)all[i].status;
            if (s <= FR_STATUS_OK || s >= FR_STATUS_COUNT)
                s = FR_STATUS_IO;
            if (i == d->rank)
                fr_error(s, "%s", mine.msg);
            else
                fr_error(s, "rank %d (%s): %s", i, fr_dist_host(d, i), all[i].msg);
            d->agreed_failure = true;
            free(all);
            return s;
        }
    free(all);
    return FR_STATUS_OK;
}

struct same_rec {
    uint64_t fp;
    char detail[200];
};

enum fr_status fr_dist_same(struct fr_dist *d, const char *what, uint64_t fingerprint, const char *detail)
{
    if (!d || d->size == 1)
        return FR_STATUS_OK;
    struct same_rec mine = {fingerprint, ""};
    snprintf(mine.detail, sizeof mine.detail, "%s", detail ? detail : "");
    struct same_rec *all = calloc((size_t)d->size, sizeof *all);
    if (!all)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", what);
    char w[128];
    snprintf(w, sizeof w, "comparing %s", what);
    enum fr_status st = allgather(d, K_SAME, &mine, sizeof mine, all, w);
    for (int r = 1; st == FR_STATUS_OK && r < d->size; r++)
        if (all[r].fp != all[0].fp) {
            st = fr_error(FR_STATUS_INVALID_ARGUMENT,
                          "%s: not the same on rank %d (%s) as on rank 0 (%s) (rank 0: %s; rank %d: %s): every rank "
                          "needs the same files",
                          what, r, fr_dist_host(d, r), fr_dist_host(d, 0), all[0].detail, r, all[r].detail);
            d->agreed_failure = true;
        }
    free(all);
    return st;
}

/* --- the job --- */

enum fr_status fr_dist_init(struct fr_dist **out)
{
    *out = NULL;
    if (g_world) {
        *out = g_world;
        return FR_STATUS_OK;
    }
    int lsize = launch_size();
#if !FRUGAL_HAVE_MPI
    if (lsize > 1)
        return fr_error(FR_STATUS_UNSUPPORTED,
                        "started by mpirun as rank %d of %d, but this frugal was built without MPI: install Open MPI "
                        "(libopenmpi-dev) and rebuild (meson feature mpi), or run one process without mpirun",
                        fr_dist_launch_rank(), lsize);
#endif
    struct fr_dist *d = calloc(1, sizeof *d);
    if (!d)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "dist: out of memory");
    d->size = d->local_size = 1;
    d->timeout = DEFAULT_TIMEOUT;
    const char *t = getenv("FRUGAL_RANK_TIMEOUT");
    if (t && *t) {
        char *end;
        double v = strtod(t, &end);
        if (*end || !(v > 0) || !isfinite(v)) {
            free(d);
            return fr_error(FR_STATUS_INVALID_ARGUMENT, "FRUGAL_RANK_TIMEOUT=%s: expected seconds > 0", t);
        }
        d->timeout = v;
    }
    d->slowdown = 1;
    const char *sd = getenv("FRUGAL_SLOWDOWN");
    if (sd && *sd) {
        char *end;
        double v = strtod(sd, &end);
        long long from = 0;
        if (*end == '@') { /* F@N: a device that slows down later (another job starts on it) */
            char *e2;
            from = strtoll(end + 1, &e2, 10);
            end = from >= 0 && e2 != end + 1 ? e2 : end;
        }
        if (*end || !(v >= 1) || !(v <= 1000)) {
            free(d);
            return fr_error(FR_STATUS_INVALID_ARGUMENT,
                            "FRUGAL_SLOWDOWN=%s: expected a factor from 1 to 1000, optionally @ the timed step it starts "
                            "at", sd);
        }
        d->slowdown = v;
        d->slow_from = from;
    }
#if FRUGAL_HAVE_MPI
    if (lsize >= 1) { /* started by a launcher (mpirun -np 1 included): join its job */
        int provided = 0, err = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (err != MPI_SUCCESS) {
            free(d);
            return fr_error(FR_STATUS_IO, "MPI_Init_thread failed (error %d)", err);
        }
        d->mpi = true;
        MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
        MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(d->comm, &d->rank);
        MPI_Comm_size(d->comm, &d->size);
        MPI_Comm local;
        if (MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
            MPI_Comm_rank(local, &d->local_rank);
            MPI_Comm_size(local, &d->local_size);
            MPI_Comm_free(&local);
        }
    }
#endif
    d->hosts = calloc((size_t)d->size, sizeof *d->hosts);
    if (!d->hosts) {
        d->broken = true;
        fr_dist_finalize(d, 1);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "dist: out of memory");
    }
    char me[HOST_MAX] = "";
    if (gethostname(me, sizeof me - 1) != 0)
        snprintf(me, sizeof me, "localhost");
    enum fr_status st = allgather(d, K_HOSTS, me, HOST_MAX, d->hosts, "gathering host names");
    if (st != FR_STATUS_OK) {
        fr_dist_finalize(d, 1);
        return st;
    }
    g_world = d;
    *out = d;
    return FR_STATUS_OK;
}

int fr_dist_finalize(struct fr_dist *d, int exit_code)
{
    if (!d)
        return exit_code;
#if FRUGAL_HAVE_MPI
    if (d->mpi) {
        if (d->size > 1 && !d->broken) {
            /* every rank at the end? a failing rank that the others do not know of waits only briefly */
            if (exit_code != 0 && !d->agreed_failure && d->timeout > EXIT_TIMEOUT)
                d->timeout = EXIT_TIMEOUT;
            int32_t *codes = calloc((size_t)d->size, sizeof *codes);
            int32_t mine = exit_code;
            if (!codes || allgather(d, K_END, &mine, sizeof mine, codes, "ending the job") != FR_STATUS_OK)
                d->broken = true;
            for (int r = 0; codes && !d->broken && r < d->size && !exit_code; r++)
                exit_code = codes[r]; /* the job's code: the lowest rank's failure */
            free(codes);
        }
        if (d->broken) /* some rank is out of step: end them all rather than wait in MPI_Finalize */
            MPI_Abort(d->comm, exit_code ? exit_code : 1);
        MPI_Comm_free(&d->comm);
        MPI_Finalize();
    }
#else
    (void)exit_code;
#endif
    if (g_world == d)
        g_world = NULL;
    free(d->hosts);
    free(d->other);
    free(d);
    return exit_code;
}
