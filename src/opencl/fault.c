/* Fault injection for tests (FRUGAL_CL_FAULT): the Nth OpenCL call of a kind fails with a chosen error.
 *
 *   FRUGAL_CL_FAULT=KIND:N[+][=ERROR][,KIND:N...]
 *     KIND   build (a program build, from source or cache), alloc (a buffer), write / read (a host<->device
 *            copy), enqueue (a kernel launch), finish (waiting for the queue)
 *     N      the Nth call of that kind in this process fails (1 = the first); N+ = the Nth and every later one
 *     ERROR  an OpenCL error name (CL_OUT_OF_RESOURCES, CL_INVALID_COMMAND_QUEUE, ...); default per kind:
 *            build CL_BUILD_PROGRAM_FAILURE, alloc/write/read CL_MEM_OBJECT_ALLOCATION_FAILURE,
 *            enqueue/finish CL_OUT_OF_RESOURCES
 *   e.g. FRUGAL_CL_FAULT=build:1  FRUGAL_CL_FAULT=alloc:3  FRUGAL_CL_FAULT=enqueue:10+,finish:2=CL_INVALID_COMMAND_QUEUE
 * The failing call is not made; the caller sees the error as if the driver had returned it. */
#include <stdatomic.h>

#include "opencl/opencl_internal.h"

static const char *const kind_names[FR_CL_N_CALLS] = {"build", "alloc", "write", "read", "enqueue", "finish"};
static const cl_int kind_default[FR_CL_N_CALLS] = {CL_BUILD_PROGRAM_FAILURE, CL_MEM_OBJECT_ALLOCATION_FAILURE,
                                                   CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_MEM_OBJECT_ALLOCATION_FAILURE,
                                                   CL_OUT_OF_RESOURCES, CL_OUT_OF_RESOURCES};

#define MAX_RULES 8
struct rule {
    enum fr_cl_call kind;
    long n;
    bool onwards;
    cl_int err;
};
static struct rule rules[MAX_RULES];
static int n_rules;
static atomic_long counters[FR_CL_N_CALLS];
static atomic_bool armed; /* any rule: the fast path skips everything otherwise */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char active[128];

const char *fr_cl_call_name(enum fr_cl_call call) { return (unsigned)call < FR_CL_N_CALLS ? kind_names[call] : "?"; }

static cl_int error_by_name(const char *s, size_t len)
{
    for (cl_int e = 0; e >= -72; e--) {
        const char *n = fr_cl_error_name(e);
        if (strlen(n) == len && strncmp(n, s, len) == 0)
            return e;
    }
    return 1; /* not an OpenCL error */
}

/* false (and nothing armed) on a malformed spec */
static bool parse(const char *spec)
{
    n_rules = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec ? spec : "");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon || n_rules == MAX_RULES)
            return n_rules = 0, false;
        *colon = 0;
        struct rule r = {.kind = FR_CL_N_CALLS};
        for (int k = 0; k < FR_CL_N_CALLS; k++)
            if (strcmp(tok, kind_names[k]) == 0)
                r.kind = (enum fr_cl_call)k;
        char *end;
        r.n = strtol(colon + 1, &end, 10);
        if (r.kind == FR_CL_N_CALLS || end == colon + 1 || r.n < 1)
            return n_rules = 0, false;
        if (*end == '+') {
            r.onwards = true;
            end++;
        }
        r.err = kind_default[r.kind];
        if (*end == '=') {
            r.err = error_by_name(end + 1, strlen(end + 1));
            if (r.err > 0 || r.err == CL_SUCCESS)
                return n_rules = 0, false;
        } else if (*end) {
            return n_rules = 0, false;
        }
        rules[n_rules++] = r;
    }
    return true;
}

static void apply(const char *spec)
{
    pthread_mutex_lock(&lock);
    for (int k = 0; k < FR_CL_N_CALLS; k++)
        atomic_store(&counters[k], 0);
    bool ok = parse(spec);
    snprintf(active, sizeof active, "%s", ok && n_rules ? spec : "");
    atomic_store(&armed, n_rules > 0);
    pthread_mutex_unlock(&lock);
    if (!ok)
        fr_log(FR_LOG_WARN,
               "FRUGAL_CL_FAULT=%s: expected KIND:N[+][=CL_ERROR],... with KIND build, alloc, write, read, enqueue or "
               "finish; ignored",
               spec);
}

static void from_env(void)
{
    const char *e = getenv("FRUGAL_CL_FAULT");
    if (e && *e)
        apply(e);
}

void fr_cl_fault_set(const char *spec)
{
    pthread_once(&env_once, from_env); /* the environment never overrides a later test setting */
    apply(spec);
}

long fr_cl_fault_calls(enum fr_cl_call call)
{
    return (unsigned)call < FR_CL_N_CALLS ? atomic_load(&counters[call]) : 0;
}

cl_int fr_cl_fault(enum fr_cl_call call)
{
    pthread_once(&env_once, from_env);
    if (!atomic_load(&armed) || (unsigned)call >= FR_CL_N_CALLS)
        return CL_SUCCESS;
    long n = atomic_fetch_add(&counters[call], 1) + 1;
    cl_int err = CL_SUCCESS;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_rules && err == CL_SUCCESS; i++)
        if (rules[i].kind == call && (n == rules[i].n || (rules[i].onwards && n > rules[i].n)))
            err = rules[i].err;
    pthread_mutex_unlock(&lock);
    if (err != CL_SUCCESS && fr_debug_enabled("fault"))
        fr_log(FR_LOG_WARN, "FRUGAL_CL_FAULT=%s: %s call %ld fails with %s", active, kind_names[call], n,
               fr_cl_error_name(err));
    return err;
}
