/* PNG writing for augmentation previews and pseudo-labels: the library's one STB_IMAGE_WRITE_IMPLEMENTATION.
 * The PNG is encoded in memory and written with checked writes and an atomic rename, so a full disk is an error
 * and never leaves an empty or torn file under the final name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "frugal/augment.h"
#include "frugal/io.h"

enum fr_status fr_aug_write_png(const char *path, const uint8_t *pix, int h, int w, int c)
{
    if (!path || !pix || h < 1 || w < 1 || c < 1 || c > 4 || (int64_t)w * c > INT32_MAX)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: cannot write a %dx%dx%d image", path ? path : "(null)", w, h, c);
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(pix, w * c, w, h, c, &len);
    if (!png || len <= 0) {
        free(png);
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "%s: out of memory encoding a %dx%dx%d PNG", path, w, h, c);
    }
    enum fr_status st = fr_write_file_replace(path, png, (size_t)len, false);
    STBIW_FREE(png);
    return st;
}
