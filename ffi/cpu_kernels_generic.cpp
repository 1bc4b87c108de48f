// cpu_kernels_generic.cpp — the CPU kernels for the compiler's baseline instruction set (any CPU; see
// cpu_kernels.h).
#define ET_TILE_C 1
#define ET_KERNELS_NAME generic_kernels
#define ET_KERNELS_ISA "generic"
#include "cpu_kernels_impl.h"
