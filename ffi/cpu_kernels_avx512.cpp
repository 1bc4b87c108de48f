// cpu_kernels_avx512.cpp — the CPU kernels for AVX-512 (built with -mavx512f -mfma; see cpu_kernels.h):
// up to 12 input rows x 2 accumulators of 16 lanes in a tile: 24 of the 32 vector registers, beside the
// panel row's two weight vectors.
#define ET_TILE_C 12
#define ET_KERNELS_NAME avx512_kernels
#define ET_KERNELS_ISA "avx512"
#include "cpu_kernels_impl.h"
