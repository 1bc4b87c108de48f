// cpu_kernels_avx2.cpp — the CPU kernels for AVX2 with FMA (built with -mavx2 -mfma; see cpu_kernels.h):
// a 32-output panel row is four of the 16 registers, so a tile holds 3 input rows (12 accumulators).
#define ET_TILE_C 3
#define ET_KERNELS_NAME avx2_kernels
#define ET_KERNELS_ISA "avx2"
#include "cpu_kernels_impl.h"
