// cpu_kernels_avx2.cpp — the CPU kernels for AVX2 with FMA (built with -mavx2 -mfma; see cpu_kernels.h):
// a 16-lane vector is two of the 16 registers, so a tile holds 2 input rows.
#define ET_TILE_C 3
#define ET_KERNELS_NAME avx2_kernels
#define ET_KERNELS_ISA "avx2"
#include "cpu_kernels_impl.h"
