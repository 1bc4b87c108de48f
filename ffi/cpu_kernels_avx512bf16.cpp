// cpu_kernels_avx512bf16.cpp — the CPU kernels for AVX-512 with its BF16 and VNNI extensions (built with
// -mavx512f -mavx512bf16 -mavx512bw -mavx512vnni -mfma; see cpu_kernels.h): the avx512 table, but bfloat16
// products by the dot-product instruction, their inputs rounded to bfloat16 (cpu_kernels_bf16dot.h), and int8
// products by the byte dot product, their inputs quantized to int8 (cpu_kernels_i8dot.h).
#define ET_TILE_C 12
#define ET_BF16_DOT 1
#define ET_I8_DOT 1
#define ET_KERNELS_NAME avx512bf16_kernels
#define ET_KERNELS_ISA "avx512bf16"
#include "cpu_kernels_impl.h"
