/* IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain, from a path or memory; `fmnist`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/data_internal.h"

/* A byte source: a file through gzread (which also reads plain files), or memory (plain or gzip via inflate). */
struct idx_src {
    const char *name;
    gzFile gz;
    const uint8_t *mem;
    size_t mem_size, mem_pos;
    bool inflating, stream_end;
    z_stream zs;
};

/* Reads up to n bytes; returns the count (short only at the end of the data) or -1 with the error set. */
static int64_t src_read(struct idx_src *s, void *buf, size_t n)
{
    uint8_t *out = buf;
    size_t got = 0;
    if (s->gz) {
        while (got < n) {
            size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
            int r = gzread(s->gz, out + got, (unsigned)chunk);
            if (r < 0) {
                int err;
                const char *msg = gzerror(s->gz, &err);
                fr_error(FR_STATUS_FORMAT, "%s: %s", s->name, err == Z_ERRNO ? strerror(errno) : msg);
                return -1;
            }
            if (r == 0)
                break;
            got += (size_t)r;
        }
        return (int64_t)got;
    }
    if (!s->inflating) {
        size_t left = s->mem_size - s->mem_pos;
        got = n < left ? n : left;
        memcpy(out, s->mem + s->mem_pos, got);
        s->mem_pos += got;
        return (int64_t)got;
    }
    while (got < n && !s->stream_end) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        s->zs.next_out = out + got;
        s->zs.avail_out = (uInt)chunk;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        got += chunk - s->zs.avail_out;
        if (r == Z_STREAM_END) {
            /* another gzip member may follow (gzip files may be concatenated) */
            if (s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b)
                inflateReset(&s->zs);
            else
                s->stream_end = true;
        } else if (r == Z_BUF_ERROR && s->zs.avail_in == 0) {
            fr_error(FR_STATUS_FORMAT, "%s: truncated gzip data", s->name);
            return -1;
        } else if (r != Z_OK) {
            fr_error(FR_STATUS_FORMAT, "%s: corrupt gzip data (%s)", s->name, s->zs.msg ? s->zs.msg : "inflate error");
            return -1;
        }
    }
    return (int64_t)got;
}

static enum fr_status src_open_mem(struct idx_src *s, const void *data, size_t size, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->mem = data;
    s->mem_size = size;
    if (size >= 2 && s->mem[0] == 0x1f && s->mem[1] == 0x8b) {
        if (size > UINT32_MAX)
            return fr_error(FR_STATUS_UNSUPPORTED, "%s: compressed buffer over 4 GiB", name);
        if (inflateInit2(&s->zs, 16 + MAX_WBITS) != Z_OK)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: cannot start zlib", name);
        s->zs.next_in = (Bytef *)(uintptr_t)data;
        s->zs.avail_in = (uInt)size;
        s->inflating = true;
    }
    return FR_STATUS_OK;
}

static enum fr_status src_open_path(struct idx_src *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fr_error(FR_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return fr_error(FR_STATUS_IO, "%s: is a directory", path);
    s->gz = gzopen(path, "rb");
    if (!s->gz)
        return fr_error(FR_STATUS_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(s->gz, 1u << 18);
    return FR_STATUS_OK;
}

static void src_close(struct idx_src *s)
{
    if (s->gz)
        gzclose(s->gz);
    if (s->inflating)
        inflateEnd(&s->zs);
    s->gz = NULL;
    s->inflating = false;
}

/* Reads one IDX array of u8 with ndim in [min_dim, max_dim]: dims and a malloc'd payload. */
static enum fr_status idx_read(struct idx_src *s, const char *what, int min_dim, int max_dim, uint32_t *dims,
                               int *ndim, uint8_t **data, size_t *size)
{
    uint8_t hdr[4];
    *data = NULL;
    int64_t r = src_read(s, hdr, 4);
    if (r < 0)
        return FR_STATUS_FORMAT;
    if (r < 4)
        return fr_error(FR_STATUS_FORMAT, "%s: truncated IDX header (%lld bytes)", s->name, (long long)r);
    if (hdr[0] != 0 || hdr[1] != 0)
        return fr_error(FR_STATUS_FORMAT, "%s: not an IDX file (magic %02x%02x%02x%02x)", s->name, hdr[0], hdr[1],
                        hdr[2], hdr[3]);
    if (hdr[2] != 0x08)
        return fr_error(FR_STATUS_UNSUPPORTED, "%s: IDX data type 0x%02x is not unsigned byte (0x08)", s->name,
                        hdr[2]);
    if (hdr[3] < min_dim || hdr[3] > max_dim)
        return fr_error(FR_STATUS_FORMAT, "%s: IDX %s file with %d dimensions (want %d..%d)", s->name, what, hdr[3],
                        min_dim, max_dim);
    *ndim = hdr[3];
    uint8_t db[16];
    r = src_read(s, db, 4 * (size_t)*ndim);
    if (r < 0)
        return FR_STATUS_FORMAT;
    if (r < 4 * *ndim)
        return fr_error(FR_STATUS_FORMAT, "%s: truncated IDX header (dimensions)", s->name);
    size_t total = 1;
    for (int i = 0; i < *ndim; i++) {
        dims[i] = (uint32_t)db[4 * i] << 24 | (uint32_t)db[4 * i + 1] << 16 | (uint32_t)db[4 * i + 2] << 8 |
                  db[4 * i + 3];
        if (i > 0 && dims[i] == 0)
            return fr_error(FR_STATUS_FORMAT, "%s: IDX dimension %d is 0", s->name, i);
        if (!fr_mul_ok(total, dims[i], &total) || total > ((size_t)1 << 40))
            return fr_error(FR_STATUS_FORMAT, "%s: IDX dimensions overflow", s->name);
    }
    if (!s->gz && !s->inflating && total > s->mem_size - s->mem_pos)
        return fr_error(FR_STATUS_FORMAT, "%s: truncated: header promises %zu data bytes, %zu present", s->name, total,
                        s->mem_size - s->mem_pos);
    /* grow as data arrives: a corrupt header must not make a few bytes of input allocate gigabytes */
    size_t cap = total < (1u << 20) ? total : (1u << 20), got = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", s->name);
    while (got < total) {
        if (got == cap) {
            size_t ncap = cap * 2 < total ? cap * 2 : total;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", s->name, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        r = src_read(s, buf + got, cap - got);
        if (r < 0) {
            free(buf);
            return FR_STATUS_FORMAT;
        }
        if (r == 0) {
            free(buf);
            return fr_error(FR_STATUS_FORMAT, "%s: truncated: header promises %zu data bytes, %zu present", s->name,
                            total, got);
        }
        got += (size_t)r;
    }
    uint8_t extra;
    r = src_read(s, &extra, 1);
    if (r != 0) {
        free(buf);
        return r < 0 ? FR_STATUS_FORMAT : fr_error(FR_STATUS_FORMAT, "%s: trailing bytes after the IDX data", s->name);
    }
    *data = buf;
    *size = total;
    return FR_STATUS_OK;
}

/* Builds the dataset from already opened sources (labels may be NULL). */
static enum fr_status idx_load(struct idx_src *is, struct idx_src *ls, const char *source, struct fr_dataset **out)
{
    uint32_t dims[4] = {0}, ldims[4] = {0};
    int ndim, lndim;
    uint8_t *px = NULL, *lab = NULL;
    size_t psize, lsize;
    enum fr_status st = idx_read(is, "images", 3, 4, dims, &ndim, &px, &psize);
    if (st != FR_STATUS_OK)
        return st;
    if (ndim == 4 && (dims[3] < 1 || dims[3] > 4)) {
        free(px);
        return fr_error(FR_STATUS_FORMAT, "%s: IDX images with %u channels (want 1..4)", is->name, dims[3]);
    }
    if (dims[1] > 65535 || dims[2] > 65535) {
        free(px);
        return fr_error(FR_STATUS_FORMAT, "%s: IDX image size %ux%u too large", is->name, dims[1], dims[2]);
    }
    if (ls) {
        st = idx_read(ls, "labels", 1, 1, ldims, &lndim, &lab, &lsize);
        if (st != FR_STATUS_OK) {
            free(px);
            return st;
        }
        if (ldims[0] != dims[0]) {
            free(px);
            free(lab);
            return fr_error(FR_STATUS_FORMAT, "%s: %u labels for %u images in %s", ls->name, ldims[0], dims[0],
                            is->name);
        }
    }
    struct fr_dataset *ds = fr_ds_alloc(source);
    if (!ds) {
        free(px);
        free(lab);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", source);
    }
    ds->n = dims[0];
    ds->h = (int)dims[1];
    ds->w = (int)dims[2];
    ds->c = ndim == 4 ? (int)dims[3] : 1;
    ds->pixels = px;
    ds->labels = malloc(sizeof(int32_t) * (size_t)ds->n + 1);
    if (!ds->labels) {
        free(lab);
        fr_dataset_free(ds);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", source);
    }
    int maxl = -1;
    for (int64_t i = 0; i < ds->n; i++) {
        ds->labels[i] = lab ? lab[i] : -1;
        if (ds->labels[i] > maxl)
            maxl = ds->labels[i];
    }
    free(lab);
    ds->n_classes = maxl + 1;
    *out = ds;
    return FR_STATUS_OK;
}

enum fr_status fr_dataset_idx_from_memory(const void *images, size_t images_size, const void *labels,
                                          size_t labels_size, const char *name, struct fr_dataset **out)
{
    *out = NULL;
    struct idx_src is, ls;
    char lname[512];
    snprintf(lname, sizeof lname, "%s (labels)", name);
    enum fr_status st = src_open_mem(&is, images, images_size, name);
    if (st != FR_STATUS_OK)
        return st;
    if (labels && (st = src_open_mem(&ls, labels, labels_size, lname)) != FR_STATUS_OK) {
        src_close(&is);
        return st;
    }
    st = idx_load(&is, labels ? &ls : NULL, name, out);
    src_close(&is);
    if (labels)
        src_close(&ls);
    if (st == FR_STATUS_OK && (st = fr_ds_default_class_names(*out)) != FR_STATUS_OK) {
        fr_dataset_free(*out);
        *out = NULL;
    }
    return st;
}

static enum fr_status idx_open_paths(const char *images_path, const char *labels_path, const char *source,
                                     struct fr_dataset **out)
{
    struct idx_src is, ls;
    enum fr_status st = src_open_path(&is, images_path);
    if (st != FR_STATUS_OK)
        return st;
    if (labels_path && (st = src_open_path(&ls, labels_path)) != FR_STATUS_OK) {
        src_close(&is);
        return st;
    }
    st = idx_load(&is, labels_path ? &ls : NULL, source, out);
    src_close(&is);
    if (labels_path)
        src_close(&ls);
    return st;
}

static enum fr_status finish(struct fr_dataset **out, enum fr_status st, const struct fr_dataset_opts *opts)
{
    if (st == FR_STATUS_OK)
        st = fr_ds_default_class_names(*out);
    if (st == FR_STATUS_OK)
        st = fr_ds_apply_opts(*out, opts);
    if (st != FR_STATUS_OK) {
        fr_dataset_free(*out);
        *out = NULL;
    }
    return st;
}

enum fr_status fr_dataset_idx_open(const char *images_path, const char *labels_path,
                                   const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    char source[1024];
    snprintf(source, sizeof source, "idx:%s%s%s", images_path, labels_path ? "," : "", labels_path ? labels_path : "");
    return finish(out, idx_open_paths(images_path, labels_path, source, out), opts);
}

/* --- Fashion-MNIST --- */

static const char *const fmnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/stem.gz or dir/stem into buf; false when neither exists. */
static bool find_file(const char *dir, const char *stem, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.gz", dir, stem);
    if (file_exists(buf))
        return true;
    snprintf(buf, size, "%s/%s", dir, stem);
    return file_exists(buf);
}

const char *fr_dataset_fmnist_dir(void)
{
    static _Thread_local char dir[4096];
    char probe[4200];
    const char *env = getenv("FRUGAL_DATA");
    if (env && env[0]) {
        snprintf(dir, sizeof dir, "%s/fashion-mnist", env);
        if (find_file(dir, "train-images-idx3-ubyte", probe, sizeof probe) ||
            find_file(dir, "t10k-images-idx3-ubyte", probe, sizeof probe))
            return dir;
        snprintf(dir, sizeof dir, "%s", env);
        if (find_file(dir, "train-images-idx3-ubyte", probe, sizeof probe) ||
            find_file(dir, "t10k-images-idx3-ubyte", probe, sizeof probe))
            return dir;
    }
    snprintf(dir, sizeof dir, "/usr/share/datasets/fashion-mnist");
    if (find_file(dir, "train-images-idx3-ubyte", probe, sizeof probe))
        return dir;
    return NULL;
}

enum fr_status fr_dataset_fmnist_open(const char *split, const struct fr_dataset_opts *opts, struct fr_dataset **out)
{
    *out = NULL;
    if (!split || !split[0])
        split = "train";
    const char *prefix;
    if (!strcmp(split, "train"))
        prefix = "train";
    else if (!strcmp(split, "test") || !strcmp(split, "t10k"))
        prefix = "t10k";
    else
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "fmnist: unknown split '%s' (want train or test)", split);
    const char *dir = fr_dataset_fmnist_dir();
    if (!dir)
        return fr_error(FR_STATUS_NOT_FOUND, "fmnist: Fashion-MNIST not found in $FRUGAL_DATA or "
                                             "/usr/share/datasets/fashion-mnist (apt install dataset-fashion-mnist)");
    char stem[64], img[4200], lab[4200];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    if (!find_file(dir, stem, img, sizeof img))
        return fr_error(FR_STATUS_NOT_FOUND, "fmnist: %s/%s[.gz] not found", dir, stem);
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", prefix);
    if (!find_file(dir, stem, lab, sizeof lab))
        return fr_error(FR_STATUS_NOT_FOUND, "fmnist: %s/%s[.gz] not found", dir, stem);
    char source[32];
    snprintf(source, sizeof source, "fmnist:%s", !strcmp(prefix, "t10k") ? "test" : "train");
    enum fr_status st = idx_open_paths(img, lab, source, out);
    if (st == FR_STATUS_OK && (*out)->n_classes <= 10) {
        (*out)->n_classes = 10;
        (*out)->class_names = calloc(10, sizeof(char *));
        if (!(*out)->class_names)
            st = fr_error(FR_STATUS_OUT_OF_MEMORY, "fmnist: out of memory");
        for (int i = 0; st == FR_STATUS_OK && i < 10; i++)
            if (!((*out)->class_names[i] = fr_strdup(fmnist_classes[i])))
                st = fr_error(FR_STATUS_OUT_OF_MEMORY, "fmnist: out of memory");
    }
    return finish(out, st, opts);
}
