/* PNG writing for augmentation previews: the library's one STB_IMAGE_WRITE_IMPLEMENTATION. */
#include <errno.h>
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

enum fr_status fr_aug_write_png(const char *path, const uint8_t *pix, int h, int w, int c)
{
    if (!path || !pix || h < 1 || w < 1 || c < 1 || c > 4 || (int64_t)w * c > INT32_MAX)
        return fr_error(FR_STATUS_INVALID_ARGUMENT, "%s: cannot write a %dx%dx%d image", path ? path : "(null)", w, h, c);
    errno = 0;
    if (!stbi_write_png(path, w, h, c, pix, w * c))
        return fr_error(FR_STATUS_IO, "%s: cannot write PNG%s%s", path, errno ? ": " : "", errno ? strerror(errno) : "");
    return FR_STATUS_OK;
}
