#include "CImageSupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

// libpng's errors longjmp back to the setjmp in each function; the message is kept here.
struct png_context {
    const uint8_t *data;
    size_t size, position;
    char *message;
    size_t message_size;
    // Changed after setjmp, so kept behind a pointer to survive longjmp.
    uint8_t *pixels, *scratch, *out;
    png_bytep *rows;
    size_t out_size, out_capacity;
};

static void on_error(png_structp png, png_const_charp text) {
    struct png_context *ctx = png_get_error_ptr(png);
    if (ctx->message_size > 0) snprintf(ctx->message, ctx->message_size, "%s", text);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;  // benign (e.g. a bad ancillary chunk); Pillow ignores these too
}

static void read_bytes(png_structp png, png_bytep out, png_size_t length) {
    struct png_context *ctx = png_get_io_ptr(png);
    if (ctx->size - ctx->position < length) png_error(png, "unexpected end of file");
    memcpy(out, ctx->data + ctx->position, length);
    ctx->position += length;
}

static void free_context(struct png_context *ctx) {
    free(ctx->pixels);
    free(ctx->scratch);
    free(ctx->rows);
    free(ctx->out);
    free(ctx);
}

int vgg_png_decode(const uint8_t *data, size_t size, int64_t max_pixels,
                   int *width, int *height, int *components, uint8_t **pixels,
                   char *message, size_t message_size) {
    struct png_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return VGG_IMAGE_NO_MEMORY;
    *pixels = NULL;
    ctx->data = data;
    ctx->size = size;
    ctx->message = message;
    ctx->message_size = message_size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free_context(ctx);
        return VGG_IMAGE_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free_context(ctx);
        return VGG_IMAGE_ERROR;
    }
    png_set_read_fn(png, ctx, read_bytes);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    *width = (int)w;
    *height = (int)h;
    *components = png_get_channels(png, info);
    if ((int64_t)w * (int64_t)h > max_pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        free_context(ctx);
        return VGG_IMAGE_TOO_LARGE;
    }
    // To 8-bit samples with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels; the
    // channel shuffle to RGB is done below, which is simpler than libpng's transform order.
    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || channels < 1 || channels > 4 || rowbytes != w * channels)
        png_error(png, "unsupported PNG layout after conversion to 8 bits");
    ctx->pixels = malloc((size_t)w * h * 3 + 1);
    ctx->rows = malloc(sizeof(png_bytep) * h);
    uint8_t *target = ctx->pixels;
    if (channels != 3) target = ctx->scratch = malloc((size_t)w * h * channels + 1);
    if (!ctx->pixels || !ctx->rows || !target) {
        png_destroy_read_struct(&png, &info, NULL);
        free_context(ctx);
        return VGG_IMAGE_NO_MEMORY;
    }
    for (size_t y = 0; y < h; y++) ctx->rows[y] = target + y * rowbytes;
    png_read_image(png, ctx->rows);
    // The end chunks are not read: the pixels are complete, and Pillow does not insist on IEND.
    if (channels != 3) {
        size_t n = (size_t)w * h;
        const uint8_t *in = ctx->scratch;
        uint8_t *out = ctx->pixels;
        for (size_t i = 0; i < n; i++, in += channels, out += 3) {
            if (channels <= 2) {
                out[0] = out[1] = out[2] = in[0];
            } else {
                out[0] = in[0];
                out[1] = in[1];
                out[2] = in[2];
            }
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    *pixels = ctx->pixels;
    ctx->pixels = NULL;
    free_context(ctx);
    return VGG_IMAGE_OK;
}

static void write_bytes(png_structp png, png_bytep data, png_size_t length) {
    struct png_context *ctx = png_get_io_ptr(png);
    if (ctx->out_capacity - ctx->out_size < length) {
        size_t capacity = ctx->out_capacity ? ctx->out_capacity : 65536;
        while (capacity - ctx->out_size < length) capacity *= 2;
        uint8_t *grown = realloc(ctx->out, capacity);
        if (!grown) png_error(png, "out of memory");
        ctx->out = grown;
        ctx->out_capacity = capacity;
    }
    memcpy(ctx->out + ctx->out_size, data, length);
    ctx->out_size += length;
}

static void flush_bytes(png_structp png) { (void)png; }

int vgg_png_encode(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *out_size,
                   char *message, size_t message_size) {
    struct png_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return VGG_IMAGE_NO_MEMORY;
    *out = NULL;
    *out_size = 0;
    ctx->message = message;
    ctx->message_size = message_size;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free_context(ctx);
        return VGG_IMAGE_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free_context(ctx);
        return VGG_IMAGE_ERROR;
    }
    png_set_write_fn(png, ctx, write_bytes, flush_bytes);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)width * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out = ctx->out;
    *out_size = ctx->out_size;
    ctx->out = NULL;
    free_context(ctx);
    return VGG_IMAGE_OK;
}
