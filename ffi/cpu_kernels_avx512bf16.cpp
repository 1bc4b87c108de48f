// cpu_kernels_avx512bf16.cpp — the CPU kernels for AVX-512 with its BF16 extension (built with -mavx512f
// -mavx512bf16 -mavx512bw -mfma; see cpu_kernels.h): the avx512 table, but bfloat16 products by the
// dot-product instruction, their inputs rounded to bfloat16 (cpu_kernels_bf16dot.h).
#define ET_TILE_C 12
#define ET_BF16_DOT 1
#define ET_KERNELS_NAME avx512bf16_kernels
#define ET_KERNELS_ISA "avx512bf16"
#include "cpu_kernels_impl.h"
