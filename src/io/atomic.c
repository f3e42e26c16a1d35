/* Atomic file replacement: write a temp file in the same directory, fsync it, rename over the target, fsync the
 * directory. A crash at any point leaves either the old file or the new one, never a torn one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frugal/io.h"

enum fr_status fr_write_file_atomic(const char *path, const void *data, size_t size)
{
    if (!path || !path[0])
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "atomic write: empty path");
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    const char *base = slash ? slash + 1 : path;
    if (!base[0])
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: is a directory name", path);
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
    /* same directory (so rename is atomic), hidden, unique */
    sprintf(tmp, "%.*s%s.%s.tmp.XXXXXX", (int)dlen, path, slash ? "/" : "", base);
    enum fr_status st = FR_STATUS_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = fr_error(FR_STATUS_IO, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
        goto out;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; checkpoints are ordinary files */
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
    if (st == FR_STATUS_OK && fsync(fd) != 0)
        st = fr_error(FR_STATUS_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == FR_STATUS_OK)
        st = fr_error(FR_STATUS_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == FR_STATUS_OK && rename(tmp, path) != 0)
        st = fr_error(FR_STATUS_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
    if (st != FR_STATUS_OK) {
        unlink(tmp);
        goto out;
    }
    /* the rename itself is only durable once the directory entry is on disk */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
            st = fr_error(FR_STATUS_IO, "%s: fsync of directory %s failed: %s", path, dir, strerror(errno));
        close(dfd);
    }
out:
    free(dir);
    free(tmp);
    return st;
}
