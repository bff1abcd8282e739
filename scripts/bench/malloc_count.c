// LD_PRELOAD counter of malloc calls, split by the library that called malloc (OpenBLAS or
// anything else), printed at exit. Used by malloc_per_step.sh: the difference between two runs
// with different step counts gives the host allocations of one steady-state training step.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>

static void *(*real_malloc)(size_t);
static atomic_long calls[2], bytes[2];

void *malloc(size_t size) {
    if (!real_malloc) real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    Dl_info info;
    int blas = dladdr(__builtin_return_address(0), &info) && info.dli_fname && strstr(info.dli_fname, "openblas");
    atomic_fetch_add(&calls[blas], 1);
    atomic_fetch_add(&bytes[blas], (long)size);
    return real_malloc(size);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "malloc-count other %ld %ld openblas %ld %ld\n",
            (long)calls[0], (long)bytes[0], (long)calls[1], (long)bytes[1]);
}
