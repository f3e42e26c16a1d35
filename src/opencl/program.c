/* Kernel sources and programs: source lookup (FRUGAL_CL_PATH, data dir, build tree, embedded copy;
 * never the working directory), quoted-#include inlining, build through the disk cache (a failed build is
 * remembered and reported once), kernel lookup. */
#include <errno.h>
#include <unistd.h>

#include "core/sbuf.h"
#include "opencl/embedded.h"
#include "opencl/opencl_internal.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            char *g = realloc(buf, cap);
            if (!g) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = g;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* One file, no include expansion. Absolute directories only: a relative FRUGAL_CL_PATH entry would
 * make the working directory part of the lookup. */
static char *load_raw(const char *name, size_t *len, char *origin, size_t osize)
{
    char path[1024];
    const char *env = getenv("FRUGAL_CL_PATH");
    if (env && *env) {
        char dirs[2048];
        snprintf(dirs, sizeof dirs, "%s", env);
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            if (d[0] != '/')
                continue;
            snprintf(path, sizeof path, "%s/%s", d, name);
            char *s = read_file(path, len);
            if (s) {
                snprintf(origin, osize, "%s", path);
                return s;
            }
        }
    }
    const char *dirs[] = {FRUGAL_CL_DATADIR, FRUGAL_CL_BUILDDIR};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        char *s = read_file(path, len);
        if (s) {
            snprintf(origin, osize, "%s", path);
            return s;
        }
    }
    for (const struct fr_cl_embedded *e = fr_cl_embedded_files; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            char *s = malloc((size_t)e->size + 1);
            if (!s)
                return NULL;
            memcpy(s, e->data, (size_t)e->size);
            s[e->size] = 0;
            *len = (size_t)e->size;
            snprintf(origin, osize, "embedded:%s", name);
            return s;
        }
    }
    return NULL;
}

/* Inlines `#include "x"` lines (each file once; the headers have guards anyway) so the compiler
 * never searches directories and the hashed text is exactly what gets compiled. */
static enum fr_status expand(const char *name, struct fr_sbuf *out, char seen[][64], int *n_seen, int depth,
                             char *origin, size_t osize)
{
    for (int i = 0; i < *n_seen; i++)
        if (strcmp(seen[i], name) == 0)
            return FR_STATUS_OK;
    if (*n_seen >= 32 || depth > 8)
        return fr_error(FR_STATUS_FORMAT, "%s: too many nested #include files", name);
    snprintf(seen[(*n_seen)++], 64, "%s", name);
    size_t len = 0;
    char org[1024];
    char *src = load_raw(name, &len, org, sizeof org);
    if (!src)
        return fr_error(FR_STATUS_NOT_FOUND, "%s: kernel source not found (FRUGAL_CL_PATH, %s, %s, embedded)", name,
                        FRUGAL_CL_DATADIR, FRUGAL_CL_BUILDDIR);
    if (origin)
        snprintf(origin, osize, "%s", org);
    enum fr_status st = FR_STATUS_OK;
    const char *p = src, *end = src + len;
    while (p < end && st == FR_STATUS_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl + 1 : end;
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        char inc[64];
        if (le - q > 9 && strncmp(q, "#include", 8) == 0 && sscanf(q + 8, " \"%63[^\"]\"", inc) == 1) {
            char line[96];
            int n = snprintf(line, sizeof line, "/* begin %s */\n", inc);
            fr_sbuf_add(out, line, (size_t)n);
            st = expand(inc, out, seen, n_seen, depth + 1, NULL, 0);
            n = snprintf(line, sizeof line, "\n/* end %s */\n", inc);
            fr_sbuf_add(out, line, (size_t)n);
        } else {
            fr_sbuf_add(out, p, (size_t)(le - p));
        }
        p = le;
    }
    free(src);
    if (st == FR_STATUS_OK && out->oom)
        st = fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
    return st;
}

enum fr_status fr_cl_source_load(const char *name, char **src, size_t *len, char *origin, size_t origin_size)
{
    struct fr_sbuf b = {0};
    char seen[32][64];
    int n_seen = 0;
    char org[1024] = "";
    enum fr_status st = expand(name, &b, seen, &n_seen, 0, org, sizeof org);
    if (origin)
        snprintf(origin, origin_size, "%s", org);
    if (st != FR_STATUS_OK) {
        free(b.s);
        return st;
    }
    size_t n = b.len;
    if (!(*src = fr_sbuf_finish(&b)))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", name);
    *len = n;
    return FR_STATUS_OK;
}

int fr_cl_source_list(const char **names, int max)
{
    int n = 0;
    for (const struct fr_cl_embedded *e = fr_cl_embedded_files; e->name && n < max; e++) {
        size_t l = strlen(e->name);
        if (l > 3 && strcmp(e->name + l - 3, ".cl") == 0)
            names[n++] = e->name;
    }
    if (n < max)
        names[n] = NULL;
    return n;
}

/* Build log excerpt of the device, compacted to fit an error message. */
static void build_log(struct fr_cl *cl, cl_program prog, char *buf, size_t size)
{
    buf[0] = 0;
    size_t n = 0;
    if (clGetProgramBuildInfo(prog, cl->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return;
    char *log = malloc(n + 1);
    if (!log)
        return;
    if (clGetProgramBuildInfo(prog, cl->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
        log[n] = 0;
        snprintf(buf, size, "%s", log);
    }
    free(log);
}

static cl_program build_from_binary(struct fr_cl *cl, const unsigned char *bin, size_t len)
{
    cl_int status = CL_SUCCESS, err = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(cl->context, 1, &cl->device, &len, &bin, &status, &err);
    if (err != CL_SUCCESS || status != CL_SUCCESS) {
        if (p)
            clReleaseProgram(p);
        return NULL;
    }
    if (clBuildProgram(p, 1, &cl->device, cl->build_options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static void save_binary(struct fr_cl *cl, cl_program p, const unsigned char key[16])
{
    size_t size = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || size == 0)
        return;
    unsigned char *bin = malloc(size);
    if (!bin)
        return;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
        fr_cl_cache_store(key, bin, size);
    free(bin);
    (void)cl;
}

/* A build failure: FR_STATUS_UNSUPPORTED (the device cannot run these kernels) with the log. */
static enum fr_status build_failed(struct fr_cl *cl, const char *origin, cl_int err, const char *log)
{
    return fr_error(FR_STATUS_UNSUPPORTED, "%s: build failed on %s (%s): %s; build log:\n%s", origin, cl->info.spec,
                    cl->info.name, fr_cl_error_name(err), log);
}

static enum fr_status build_program(struct fr_cl *cl, const char *file, cl_program *out)
{
    char *src = NULL;
    size_t len = 0;
    char origin[1024];
    enum fr_status st = fr_cl_source_load(file, &src, &len, origin, sizeof origin);
    if (st != FR_STATUS_OK)
        return st;
    cl_int fault = fr_cl_fault(FR_CL_BUILD);
    if (fault != CL_SUCCESS) {
        free(src);
        return build_failed(cl, origin, fault, "failure injected by FRUGAL_CL_FAULT");
    }
    unsigned char key[16];
    fr_cl_cache_key(cl, src, len, cl->build_options, key);

    unsigned char *bin = NULL;
    size_t blen = 0;
    double t0 = fr_cl_now_ms();
    if (fr_cl_cache_load(key, &bin, &blen)) {
        cl_program p = build_from_binary(cl, bin, blen);
        free(bin);
        if (p) {
            double ms = fr_cl_now_ms() - t0;
            fr_cl_cache_count(0, ms);
            cl->n_cache_hits++;
            if (fr_debug_enabled("cache"))
                fr_log(FR_LOG_DEBUG, "opencl cache: hit %s for %s (%.1f ms)", file, cl->info.spec, ms);
            free(src);
            *out = p;
            return FR_STATUS_OK;
        }
        /* A binary the driver refuses (updated driver with the same version string, truncated by
         * something outside our checks) is treated as corrupt. */
        char path[1024];
        if (fr_cl_cache_path(key, path, sizeof path))
            unlink(path);
        fr_cl_cache_count(2, 0);
    }

    t0 = fr_cl_now_ms();
    cl_int err;
    const char *s = src;
    cl_program p = clCreateProgramWithSource(cl->context, 1, &s, &len, &err);
    if (!p || err != CL_SUCCESS) {
        free(src);
        return build_failed(cl, origin, err, "(clCreateProgramWithSource failed)");
    }
    err = clBuildProgram(p, 1, &cl->device, cl->build_options, NULL, NULL);
    free(src);
    if (err != CL_SUCCESS) {
        char log[3000];
        build_log(cl, p, log, sizeof log);
        clReleaseProgram(p);
        return build_failed(cl, origin, err, log);
    }
    double ms = fr_cl_now_ms() - t0;
    fr_cl_cache_count(1, ms);
    cl->n_compiled++;
    cl->compile_ms += ms;
    if (fr_debug_enabled("cache"))
        fr_log(FR_LOG_DEBUG, "opencl cache: miss %s for %s, compiled in %.1f ms", file, cl->info.spec, ms);
    save_binary(cl, p, key);
    *out = p;
    return FR_STATUS_OK;
}

/* The first line of a build failure's log, for the one warning per program and device. */
static void first_log_line(const char *msg, char *buf, size_t size)
{
    const char *log = strstr(msg, "build log:\n");
    log = log ? log + 11 : msg;
    while (*log == '\n' || *log == ' ')
        log++;
    size_t n = strcspn(log, "\n");
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), log);
}

enum fr_status fr_cl_program(struct fr_cl *cl, const char *file, cl_program *out)
{
    for (int i = 0; i < cl->n_programs; i++)
        if (strcmp(cl->programs[i].file, file) == 0) {
            if (!cl->programs[i].program) { /* failed before: never rebuilt */
                cl->build_failed = true;
                return fr_error(FR_STATUS_UNSUPPORTED, "%s", cl->programs[i].error);
            }
            *out = cl->programs[i].program;
            return FR_STATUS_OK;
        }
    if (strlen(file) >= sizeof cl->programs[0].file)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: kernel file name too long", file);
    if (cl->n_programs == cl->cap_programs) {
        int cap = cl->cap_programs ? 2 * cl->cap_programs : 16;
        struct fr_cl_program_entry *g = realloc(cl->programs, (size_t)cap * sizeof *g);
        if (!g)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
        cl->programs = g;
        cl->cap_programs = cap;
    }
    cl_program p = NULL;
    enum fr_status st = build_program(cl, file, &p);
    if (st != FR_STATUS_OK && st != FR_STATUS_UNSUPPORTED)
        return st; /* no source, out of host memory: nothing to remember */
    struct fr_cl_program_entry *e = &cl->programs[cl->n_programs++];
    snprintf(e->file, sizeof e->file, "%s", file);
    e->program = p;
    e->error = NULL;
    if (st != FR_STATUS_OK) {
        cl->build_failed = true;
        char *msg = strdup(fr_last_error());
        if (!msg) {
            cl->n_programs--;
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
        }
        e->error = msg;
        if (!cl->quiet_build_failures) {
            char line[200];
            first_log_line(msg, line, sizeof line);
            fr_log(FR_LOG_WARN, "opencl: %s (%s): %s does not build; its ops run on the CPU path (%s)", cl->info.spec,
                   cl->info.name, file, line);
        }
        fr_error(FR_STATUS_UNSUPPORTED, "%s", msg);
        return FR_STATUS_UNSUPPORTED;
    }
    *out = p;
    return FR_STATUS_OK;
}

enum fr_status fr_cl_kernel(struct fr_cl *cl, const char *file, const char *name, cl_kernel *k, size_t *wg)
{
    for (int i = 0; i < cl->n_kernels; i++) {
        struct fr_cl_kernel_entry *e = &cl->kernels[i];
        if (strcmp(e->name, name) == 0 && strcmp(e->file, file) == 0) {
            *k = e->kernel;
            *wg = e->wg_size;
            return FR_STATUS_OK;
        }
    }
    cl_program p;
    enum fr_status st = fr_cl_program(cl, file, &p);
    if (st != FR_STATUS_OK)
        return st;
    if (strlen(name) >= sizeof cl->kernels[0].name)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: kernel name '%s' too long", file, name);
    if (cl->n_kernels == cl->cap_kernels) {
        int cap = cl->cap_kernels ? 2 * cl->cap_kernels : 64;
        struct fr_cl_kernel_entry *g = realloc(cl->kernels, (size_t)cap * sizeof *g);
        if (!g)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "opencl: out of memory");
        cl->kernels = g;
        cl->cap_kernels = cap;
    }
    cl_int err;
    cl_kernel kern = clCreateKernel(p, name, &err);
    if (!kern || err != CL_SUCCESS)
        return fr_error(FR_STATUS_DEVICE, "%s: no kernel '%s' on %s: %s", file, name, cl->info.spec,
                        fr_cl_error_name(err));
    size_t w = 1, mult = 1;
    if (clGetKernelWorkGroupInfo(kern, cl->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof w, &w, NULL) != CL_SUCCESS ||
        w == 0)
        w = 1;
    if (clGetKernelWorkGroupInfo(kern, cl->device, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE, sizeof mult, &mult,
                                 NULL) != CL_SUCCESS ||
        mult == 0)
        mult = 1;
    cl->wg_multiple = FR_MAX(cl->wg_multiple, mult);
    struct fr_cl_kernel_entry *e = &cl->kernels[cl->n_kernels++];
    snprintf(e->file, sizeof e->file, "%s", file);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->kernel = kern;
    e->wg_size = w;
    e->wg_multiple = mult;
    *k = kern;
    *wg = w;
    return FR_STATUS_OK;
}
