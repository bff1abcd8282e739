#include "CImageSupport.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg's default error_exit calls exit(); ours records the message and jumps back.
struct error_manager {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    size_t message_size;
};

static void error_exit(j_common_ptr cinfo) {
    struct error_manager *err = (struct error_manager *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    if (err->message_size > 0) snprintf(err->message, err->message_size, "%s", buffer);
    longjmp(err->jump, 1);
}

// Warnings are ignored as Pillow ignores them (e.g. extraneous bytes before a marker), except
// running out of data: Pillow raises "image file is truncated", so do we, rather than hand
// back an image whose bottom is grey.
static void emit_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) error_exit(cinfo);
}

static inline uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

// State that changes after setjmp lives behind a pointer so its values survive longjmp.
struct decode_state {
    uint8_t *pixels;
    uint8_t *row;
};

int vgg_jpeg_decode(const uint8_t *data, size_t size, int64_t max_pixels,
                    int *width, int *height, int *components, uint8_t **pixels,
                    char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    struct error_manager err;
    struct decode_state *state = calloc(1, sizeof *state);
    if (!state) return VGG_IMAGE_NO_MEMORY;
    *pixels = NULL;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = error_exit;
    err.pub.emit_message = emit_message;
    err.message = message;
    err.message_size = message_size;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(state->pixels);
        free(state->row);
        free(state);
        return VGG_IMAGE_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    *components = cinfo.num_components;
    if ((int64_t)cinfo.image_width * (int64_t)cinfo.image_height > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        free(state);
        return VGG_IMAGE_TOO_LARGE;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // libjpeg-turbo expands gray to RGB
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    state->pixels = malloc(w * h * 3 + 1);
    if (cmyk) state->row = malloc(w * 4);
    if (!state->pixels || (cmyk && !state->row)) {
        jpeg_destroy_decompress(&cinfo);
        free(state->pixels);
        free(state->row);
        free(state);
        return VGG_IMAGE_NO_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *out = state->pixels + (size_t)cinfo.output_scanline * w * 3;
        JSAMPROW row = cmyk ? state->row : out;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (cmyk) {
            // Pillow reads CMYK JPEGs as Adobe-inverted ("CMYK;I"), then converts with
            // c' = 255 - stored, nk = 255 - k': R = nk - c'*nk/255 (same rounding).
            for (size_t x = 0; x < w; x++) {
                const uint8_t *p = state->row + 4 * x;
                int nk = p[3];
                for (int c = 0; c < 3; c++) {
                    int v = nk - muldiv255(255 - p[c], nk);
                    out[3 * x + c] = (uint8_t)(v < 0 ? 0 : v);
                }
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *pixels = state->pixels;
    free(state->row);
    free(state);
    return VGG_IMAGE_OK;
}

struct encode_state {
    unsigned char *buffer;
    unsigned long size;
};

int vgg_jpeg_encode(const uint8_t *pixels, int width, int height, int components,
                    int quality, int progressive, uint8_t **out, size_t *out_size,
                    char *message, size_t message_size) {
    struct jpeg_compress_struct cinfo;
    struct error_manager err;
    struct encode_state *state = calloc(1, sizeof *state);
    if (!state) return VGG_IMAGE_NO_MEMORY;
    *out = NULL;
    *out_size = 0;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = error_exit;
    err.message = message;
    err.message_size = message_size;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(state->buffer);
        free(state);
        return VGG_IMAGE_ERROR;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &state->buffer, &state->size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = state->buffer;
    *out_size = state->size;
    free(state);
    return VGG_IMAGE_OK;
}

void vgg_image_free(void *p) { free(p); }
