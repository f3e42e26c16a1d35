/* libFuzzer target: image decoding (PNG/JPEG/BMP via stb_image) with channel conversion and resizing.
 * Input: 1 byte of options (channels, size), then the image file. */
#include <stdlib.h>

#include "frugal/data.h"

/* results go here so the reads are not optimised away */
static volatile unsigned sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fr_log_set_callback(NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int channels = data[0] % 5, side = (data[0] >> 3) % 8; /* 0 = native size */
    enum fr_resize mode = (data[0] & 0x80) ? FR_RESIZE_NEAREST : FR_RESIZE_BILINEAR;
    uint8_t *px;
    int c, h, w;
    if (fr_image_decode(data + 1, size - 1, "fuzz", channels, side * 3, side * 5, mode, &px, &c, &h, &w) ==
        FR_STATUS_OK) {
        size_t n = (size_t)c * h * w;
        sink += px[0] + px[n - 1];
        free(px);
    }
    return 0;
}
