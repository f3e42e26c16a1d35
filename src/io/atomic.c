/* Atomic file replacement: write a temp file in the same directory, (fsync it,) rename over the target, (fsync the
 * directory). A crash at any point leaves either the old file or the new one, never a torn one; every write is
 * checked, so a full disk is an error, never an empty file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frugal/io.h"

struct fr_atomic_file {
    char *path, *tmp, *dir;
    FILE *f;
    int fd;
    int err; /* errno of the first failed write: stdio keeps only "an error happened" */
};

/* the FILE's write and close: every write checked, its errno kept for the message */
static ssize_t cookie_write(void *c, const char *buf, size_t size)
{
    struct fr_atomic_file *af = c;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(af->fd, buf + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!af->err)
                af->err = w < 0 ? errno : EIO;
            return done > 0 ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static int cookie_close(void *c)
{
    struct fr_atomic_file *af = c;
    int r = af->fd >= 0 ? close(af->fd) : 0;
    if (r != 0 && !af->err)
        af->err = errno;
    af->fd = -1;
    return r;
}

/* temp file "DIR/.NAME.tmp.XXXXXX" next to path (so rename is atomic); fills tmp and dir (malloc'd) */
static enum fr_status make_temp(const char *path, char **tmp_out, char **dir_out, int *fd_out)
{
    *tmp_out = *dir_out = NULL;
    *fd_out = -1;
    if (!path || !path[0])
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "atomic write: empty path");
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    const char *base = slash ? slash + 1 : path;
    if (!base[0])
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: is a directory name", path);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return fr_error(FR_STATUS_IO, "%s: is a directory", path);
    char *dir = malloc(dlen + 2);
    char *tmp = malloc(strlen(path) + 32);
    if (!dir || !tmp) {
        free(dir);
        free(tmp);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    if (slash) {
        memcpy(dir, path, dlen ? dlen : 1); /* "/name" → "/" */
        dir[dlen ? dlen : 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    sprintf(tmp, "%.*s%s.%s.tmp.XXXXXX", (int)dlen, path, slash ? "/" : "", base);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        enum fr_status st = fr_error(FR_STATUS_IO, "%s: cannot create a temporary file in %s: %s", path, dir,
                                     strerror(errno));
        free(dir);
        free(tmp);
        return st;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; outputs are ordinary files */
    *tmp_out = tmp;
    *dir_out = dir;
    *fd_out = fd;
    return FR_STATUS_OK;
}

/* after the data is written and fd closed: rename into place, then make the directory entry durable */
static enum fr_status put_in_place(const char *path, const char *tmp, const char *dir, bool durable)
{
    if (rename(tmp, path) != 0) {
        enum fr_status st = fr_error(FR_STATUS_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    if (!durable)
        return FR_STATUS_OK;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    enum fr_status st = FR_STATUS_OK;
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
            st = fr_error(FR_STATUS_IO, "%s: fsync of directory %s failed: %s", path, dir, strerror(errno));
        close(dfd);
    }
    return st;
}

enum fr_status fr_write_file_replace(const char *path, const void *data, size_t size, bool durable)
{
    char *tmp, *dir;
    int fd;
    enum fr_status st = make_temp(path, &tmp, &dir, &fd);
    if (st != FR_STATUS_OK)
        return st;
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = fr_error(FR_STATUS_IO, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "no progress");
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (st == FR_STATUS_OK && durable && fsync(fd) != 0)
        st = fr_error(FR_STATUS_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == FR_STATUS_OK)
        st = fr_error(FR_STATUS_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == FR_STATUS_OK)
        st = put_in_place(path, tmp, dir, durable);
    else
        unlink(tmp);
    free(dir);
    free(tmp);
    return st;
}

enum fr_status fr_write_file_atomic(const char *path, const void *data, size_t size)
{
    return fr_write_file_replace(path, data, size, true);
}

enum fr_status fr_atomic_open(const char *path, struct fr_atomic_file **out, FILE **f)
{
    *out = NULL;
    *f = NULL;
    struct fr_atomic_file *af = calloc(1, sizeof *af);
    if (!af || !(af->path = strdup(path))) {
        free(af);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    af->fd = -1;
    enum fr_status st = make_temp(path, &af->tmp, &af->dir, &af->fd);
    cookie_io_functions_t io = {.write = cookie_write, .close = cookie_close};
    if (st == FR_STATUS_OK && !(af->f = fopencookie(af, "w", io))) {
        st = fr_error(FR_STATUS_IO, "%s: %s", path, strerror(errno));
        close(af->fd);
        af->fd = -1;
    }
    if (st != FR_STATUS_OK) {
        fr_atomic_abort(af);
        return st;
    }
    *out = af;
    *f = af->f;
    return FR_STATUS_OK;
}

enum fr_status fr_atomic_commit(struct fr_atomic_file *af)
{
    if (!af)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "atomic commit: no file");
    enum fr_status st = FR_STATUS_OK;
    /* a failed earlier fprintf shows in ferror and af->err (ENOSPC may surface only at fflush) */
    if (fflush(af->f) != 0 || ferror(af->f) || af->err)
        st = fr_error(FR_STATUS_IO, "%s: write failed: %s", af->path, strerror(af->err ? af->err : EIO));
    else if (fsync(af->fd) != 0)
        st = fr_error(FR_STATUS_IO, "%s: fsync failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && st == FR_STATUS_OK)
        st = fr_error(FR_STATUS_IO, "%s: close failed: %s", af->path, strerror(af->err ? af->err : errno));
    af->f = NULL;
    if (st == FR_STATUS_OK)
        st = put_in_place(af->path, af->tmp, af->dir, true);
    else
        unlink(af->tmp);
    free(af->tmp);
    af->tmp = NULL;
    fr_atomic_abort(af);
    return st;
}

void fr_atomic_abort(struct fr_atomic_file *af)
{
    if (!af)
        return;
    if (af->f)
        fclose(af->f);
    else if (af->fd >= 0)
        close(af->fd);
    if (af->tmp)
        unlink(af->tmp);
    free(af->tmp);
    free(af->dir);
    free(af->path);
    free(af);
}
