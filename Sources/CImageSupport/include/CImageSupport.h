// Thin C wrappers over libjpeg-turbo and libpng. Both libraries report errors by longjmp,
// which Swift cannot catch; these functions own the setjmp and turn errors into a status
// code plus a message. Everything beyond "bytes <-> RGB8 buffer" lives in Swift.
#ifndef VGGTL_CIMAGESUPPORT_H
#define VGGTL_CIMAGESUPPORT_H

#include <stddef.h>
#include <stdint.h>

enum {
    VGG_IMAGE_OK = 0,
    VGG_IMAGE_ERROR = 1,      // message says what libjpeg/libpng objected to
    VGG_IMAGE_TOO_LARGE = 2,  // width/height are set; nothing was allocated
    VGG_IMAGE_NO_MEMORY = 3,
};

/// Decodes a JPEG to interleaved RGB8. Grayscale is replicated; CMYK/YCCK are taken as Adobe
/// (inverted) and converted as Pillow converts CMYK to RGB. Default ISLOW IDCT and fancy
/// upsampling, as Pillow. A truncated file is an error. On success *pixels is malloc'd
/// (width*height*3 bytes); free it with vgg_image_free. components: as stored (1, 3 or 4).
int vgg_jpeg_decode(const uint8_t *data, size_t size, int64_t max_pixels,
                    int *width, int *height, int *components, uint8_t **pixels,
                    char *message, size_t message_size);

/// Decodes a PNG (any bit depth, palette, gray, alpha, interlaced) to RGB8: 16-bit samples
/// keep their high byte, alpha is dropped. Same conventions as vgg_jpeg_decode.
int vgg_png_decode(const uint8_t *data, size_t size, int64_t max_pixels,
                   int *width, int *height, int *components, uint8_t **pixels,
                   char *message, size_t message_size);

/// Encodes width*height*components bytes (components 1 = gray, 3 = RGB) as a JPEG.
/// On success *out is malloc'd; free it with vgg_image_free.
int vgg_jpeg_encode(const uint8_t *pixels, int width, int height, int components,
                    int quality, int progressive, uint8_t **out, size_t *out_size,
                    char *message, size_t message_size);

/// Encodes an RGB8 image as an 8-bit RGB PNG.
int vgg_png_encode(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *out_size,
                   char *message, size_t message_size);

void vgg_image_free(void *p);

#endif
