/* Disk cache of OpenCL program binaries: key = hash of the kernel source (headers inlined), build
 * options, platform/device identity, driver, frugal version and the format version. Each file holds
 * a magic, the key, the size and a CRC of the payload; it is written to a temp file and renamed, and
 * any entry that fails a check is deleted so the caller rebuilds it. An unusable directory only
 * costs speed. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "opencl/opencl_internal.h"

#define CACHE_MAGIC "FRUGALCL"
#define CACHE_FORMAT 1u

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fr_cl_cache_stats stats;
static const char *version_override;

void fr_cl_cache_stats_get(struct fr_cl_cache_stats *s)
{
    pthread_mutex_lock(&stats_lock);
    *s = stats;
    pthread_mutex_unlock(&stats_lock);
}

void fr_cl_cache_stats_reset(void)
{
    pthread_mutex_lock(&stats_lock);
    memset(&stats, 0, sizeof stats);
    pthread_mutex_unlock(&stats_lock);
}

void fr_cl_cache_count(int what, double ms)
{
    pthread_mutex_lock(&stats_lock);
    switch (what) {
    case 0: stats.hits++; stats.load_ms += ms; break;
    case 1: stats.misses++; stats.compile_ms += ms; break;
    case 2: stats.rejected++; break;
    case 3: stats.stored++; break;
    default: stats.store_failed++; break;
    }
    pthread_mutex_unlock(&stats_lock);
}

void fr_cl_cache_set_version(const char *v) { version_override = v; }

/* Two independent 64-bit lanes (FNV-1a and a multiply-rotate lane) with a final avalanche: not
 * cryptographic, but the stored key is compared too, so a collision can only cost a rebuild. */
struct hash128 {
    uint64_t a, b;
};

static void h_bytes(struct hash128 *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ s[i]) * 0x100000001b3ull;
        h->b = (h->b + s[i] + 1) * 0x9E3779B97F4A7C15ull;
        h->b ^= h->b >> 29;
    }
}

/* Length-prefixed, so ("ab","c") and ("a","bc") differ. */
static void h_field(struct hash128 *h, const char *s, size_t n)
{
    uint64_t len = n;
    h_bytes(h, &len, sizeof len);
    h_bytes(h, s, n);
}

static uint64_t avalanche(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

void fr_cl_cache_key(const struct fr_cl *cl, const char *src, size_t len, const char *options, unsigned char key[16])
{
    struct hash128 h = {0xcbf29ce484222325ull, 0x2545F4914F6CDD1Dull};
    const char *ver = version_override ? version_override : FRUGAL_VERSION;
    unsigned fmt = CACHE_FORMAT;
    h_bytes(&h, &fmt, sizeof fmt);
    h_field(&h, src, len);
    h_field(&h, options, strlen(options));
    const struct fr_device_info *i = &cl->info;
    const char *ids[] = {i->platform_name, i->platform_version, i->name, i->vendor, i->device_version,
                         i->driver_version, i->opencl_c_version, ver};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        h_field(&h, ids[k], strlen(ids[k]));
    uint64_t a = avalanche(h.a ^ (h.b << 1)), b = avalanche(h.b + h.a);
    for (int k = 0; k < 8; k++) {
        key[k] = (unsigned char)(a >> (8 * k));
        key[8 + k] = (unsigned char)(b >> (8 * k));
    }
}

static bool mkdir_p(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return false;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return false;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return false;
    struct stat st;
    return stat(tmp, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fr_cl_cache_dir(char *buf, size_t size)
{
    const char *env = getenv("FRUGAL_CACHE_DIR");
    int n;
    if (env && *env) {
        if (strcmp(env, "off") == 0)
            return false;
        n = snprintf(buf, size, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && *env == '/') {
        n = snprintf(buf, size, "%s/frugal", env);
    } else if ((env = getenv("HOME")) && *env) {
        n = snprintf(buf, size, "%s/.cache/frugal", env);
    } else {
        return false;
    }
    if (n < 0 || (size_t)n >= size)
        return false;
    return mkdir_p(buf);
}

bool fr_cl_cache_path(const unsigned char key[16], char *buf, size_t size)
{
    char dir[900];
    if (!fr_cl_cache_dir(dir, sizeof dir))
        return false;
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    int n = snprintf(buf, size, "%s/cl-%s.bin", dir, hex);
    return n > 0 && (size_t)n < size;
}

/* header: magic[8] format(u32 LE) crc(u32 LE) key[16] size(u64 LE) */
#define HDR_SIZE (8 + 4 + 4 + 16 + 8)

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void reject(const char *path, const char *why)
{
    unlink(path);
    fr_cl_cache_count(2, 0);
    if (fr_debug_enabled("cache"))
        fr_log(FR_LOG_DEBUG, "opencl cache: %s: %s, deleted", path, why);
}

bool fr_cl_cache_load(const unsigned char key[16], unsigned char **bin, size_t *len)
{
    char path[1024];
    *bin = NULL;
    *len = 0;
    if (!fr_cl_cache_path(key, path, sizeof path))
        return false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char hdr[HDR_SIZE];
    bool ok = fread(hdr, 1, HDR_SIZE, f) == HDR_SIZE;
    uint64_t size = 0;
    if (ok)
        for (int i = 0; i < 8; i++)
            size |= (uint64_t)hdr[32 + i] << (8 * i);
    if (!ok || memcmp(hdr, CACHE_MAGIC, 8) != 0) {
        fclose(f);
        reject(path, "bad magic or truncated header");
        return false;
    }
    if (get_u32(hdr + 8) != CACHE_FORMAT || memcmp(hdr + 16, key, 16) != 0) {
        fclose(f);
        reject(path, "other format version or key");
        return false;
    }
    if (size == 0 || size > ((uint64_t)1 << 31)) {
        fclose(f);
        reject(path, "implausible size");
        return false;
    }
    unsigned char *data = malloc((size_t)size);
    if (!data) {
        fclose(f);
        return false;
    }
    ok = fread(data, 1, (size_t)size, f) == size && fgetc(f) == EOF;
    fclose(f);
    if (!ok || (uint32_t)crc32(0L, data, (uInt)size) != get_u32(hdr + 12)) {
        free(data);
        reject(path, "truncated or checksum mismatch");
        return false;
    }
    *bin = data;
    *len = (size_t)size;
    return true;
}

void fr_cl_cache_store(const unsigned char key[16], const unsigned char *bin, size_t len)
{
    char path[1024], tmp[1100];
    if (!bin || len == 0)
        return;
    if (!fr_cl_cache_path(key, path, sizeof path)) {
        const char *env = getenv("FRUGAL_CACHE_DIR");
        if (!(env && strcmp(env, "off") == 0)) {
            fr_cl_cache_count(4, 0);
            if (fr_debug_enabled("cache"))
                fr_log(FR_LOG_DEBUG, "opencl cache: no usable cache directory (continuing without)");
        }
        return;
    }
    static unsigned counter;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    unsigned char hdr[HDR_SIZE];
    memcpy(hdr, CACHE_MAGIC, 8);
    put_u32(hdr + 8, CACHE_FORMAT);
    put_u32(hdr + 12, (uint32_t)crc32(0L, bin, (uInt)len));
    memcpy(hdr + 16, key, 16);
    for (int i = 0; i < 8; i++)
        hdr[32 + i] = (unsigned char)((uint64_t)len >> (8 * i));
    FILE *f = fopen(tmp, "wb");
    bool ok = f != NULL;
    if (ok) {
        ok = fwrite(hdr, 1, HDR_SIZE, f) == HDR_SIZE && fwrite(bin, 1, len, f) == len;
        ok = (fclose(f) == 0) && ok;
    }
    /* rename() is atomic: a concurrent reader sees the old entry or the whole new one. */
    if (ok)
        ok = rename(tmp, path) == 0;
    if (!ok) {
        if (f)
            unlink(tmp);
        fr_cl_cache_count(4, 0);
        if (fr_debug_enabled("cache"))
            fr_log(FR_LOG_DEBUG, "opencl cache: cannot write %s: %s (continuing without)", path, strerror(errno));
        return;
    }
    fr_cl_cache_count(3, 0);
    if (fr_debug_enabled("cache"))
        fr_log(FR_LOG_DEBUG, "opencl cache: stored %s (%zu bytes)", path, len);
}
