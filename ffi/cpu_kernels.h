// cpu_kernels.h — the float32 CPU kernels (products may read bfloat16, float16 or int8 weights) behind the fast forward (cpu_forward.cpp), one table per
// instruction set. cpu_kernels_impl.h holds the code; it is compiled once per instruction set in its own
// translation unit (cpu_kernels_avx512.cpp, _avx2.cpp, _generic.cpp) that includes no torch header and no
// standard-library template, since an inline function compiled there with AVX-512 could otherwise be the
// copy the linker keeps for every caller, and crash a machine without it.
//
// Every output element is computed in one fixed order that depends on neither the number of rows in the
// call nor the tile it lands in nor the thread that computes it, so a token's logits are the same bits
// whether it is decoded alone or verified inside a tree.
#pragma once
#include <stdint.h>

namespace et::cpu {

// A product's weight w (out x in, row-major) packed for `linear`: panel p holds outputs [32p, 32p + 32)
// as `in` rows of 32 floats (the k-th input of each output), zero past `out`: a panel streams in order.
// (cpu_forward.cpp packs.)
constexpr int64_t PANEL = 32;
static inline int64_t panels(int64_t out) { return (out + PANEL - 1) / PANEL; }

// The kernels' key/value cache of a layer: per key/value head, its slots in blocks of SLOT_BLOCK, each
// block (D, SLOT_BLOCK): the layer is (Hkv, blocks, D, 16), slot s of head j, dimension k at
// ((j * blocks + s / 16) * D + k) * 16 + s % 16. A token's reads of a head's slots are one contiguous run,
// and a block's 16 slots of one dimension one vector.
constexpr int64_t SLOT_BLOCK = 16;
static inline int64_t slot_blocks(int64_t capacity) { return (capacity + SLOT_BLOCK - 1) / SLOT_BLOCK; }
static inline int64_t slot_index(int64_t s, int64_t j, int64_t k, int64_t blocks, int64_t d) {
  return ((j * blocks + s / SLOT_BLOCK) * d + k) * SLOT_BLOCK + s % SLOT_BLOCK;
}
// `attend`'s scratch floats: the scores and their sums, and a copy of the keys (then the values) of the
// slots after the last whole block of consecutive ones
static inline int64_t attend_scratch(int64_t nq, int64_t d, int64_t m) { return nq * (m + 1) + d * (m + 16); }

struct Kernels {
  const char* isa;
  // y[i*ldy + j] = x[i*ldx ..] . w[j] + bias[j] (bias may be null) for rows i < n and the outputs j of
  // panels [p0, p1) of the packed w (out x in; see pack_weight)
  void (*linear)(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const float* packed,
                 const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1);
  // the same with the packed weights in bfloat16 (the top 16 bits of a float32, as libtorch stores
  // them): each weight widens exactly, so the bits equal `linear`'s on those weights held as float32
  void (*linear_bf16)(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                      const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1);
  // and in float16 (IEEE half), widened exactly likewise
  void (*linear_f16)(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                     const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1);
  // and in int8 with one scale per output (scale[j], j < panels * PANEL): y = (x . q[j]) * scale[j] + bias[j],
  // the sum over the int8 weights as `linear`'s over the same values held as float32, then scaled once
  void (*linear_i8)(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const int8_t* packed,
                    const float* scale, const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1);
  // y = x * rsqrt(mean(x^2) + eps) * w, row by row (rows of width h); y may be x
  void (*rms_norm)(const float* x, int64_t ldx, int64_t n, int64_t h, const float* w, float eps, float* y,
                   int64_t ldy);
  // rotate-half RoPE in place on `heads` heads of width d at x (head after head), with this position's
  // cos/sin of the d/2 frequencies
  void (*rope)(float* x, int64_t heads, int64_t d, const float* cos, const float* sin);
  // attention of one token's query heads over the m cache slots keys[0..m) (increasing), for nkv key/value
  // heads side by side in a cache, each shared by nq query heads: q holds nkv * nq rows of d (key/value head
  // j's nq first), out gets as many; kb and vb point at the group's first key/value head in a cache (see
  // SLOT_BLOCK; head j at + j * hstride, the block of slot s at + (s / 16) * d * 16); `scratch` holds room
  // for attend_scratch(nkv * nq, d, m) floats. A head's results do not depend on nkv (the heads' softmax rows
  // go side by side, each its own steps).
  void (*attend)(const float* q, int64_t nkv, int64_t nq, const float* kb, const float* vb, int64_t hstride, int64_t d,
                 const int32_t* keys, int64_t m, float scale, float* scratch, float* out);
  // y[i] = silu(gate[i]) * up[i]
  void (*silu_mul)(const float* gate, const float* up, float* y, int64_t count);
  // x[i] += y[i]
  void (*add)(float* x, const float* y, int64_t count);
  // index of the largest of x[0..n) (the lowest on ties), or -1 if any is NaN
  int64_t (*argmax)(const float* x, int64_t n);
  // log sum_i exp(x[i]) over n > 0 finite-or--inf values (max-shifted); NaN in, NaN out
  float (*logsumexp)(const float* x, int64_t n);
  // linear_i8 over weights in groups of four inputs (i8_group_inputs), by the byte dot product, its inputs
  // quantized per block of 32 (cpu_kernels_i8dot.h); null where the table has none
  void (*linear_i8_groups)(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const int8_t* packed,
                           const float* scale, const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1);
};
// int8 weights in groups: per panel, per group of four inputs (zeros past `in`), its 32 outputs' four bytes,
// each weight plus 128 as an unsigned byte
static inline int64_t i8_group_inputs(int64_t in) { return (in + 3) / 4 * 4; }

// Denormal floats flushed to zero, in and out, while it lives (on x86: MXCSR's FTZ and DAZ, restored after).
// A forward runs under it, on the caller's thread and on every pool worker: a softmax weight near e^-87
// times a value is denormal, and each such product cost a microcode assist (attention ran 30x slower on
// them). The same mode everywhere keeps every output's bits independent of the thread computing it.
struct FlushDenormals {
  FlushDenormals();
  ~FlushDenormals();
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
  unsigned saved = 0;
};

// the best table this CPU runs (ET_CPU_ISA=generic|avx2|avx512|avx512bf16 asks for one), chosen once
const Kernels& kernels();

extern const Kernels generic_kernels;
#if defined(__x86_64__)
extern const Kernels avx2_kernels;
extern const Kernels avx512_kernels;
extern const Kernels avx512bf16_kernels;  // bfloat16 and int8 products by dot-product instructions (inputs rounded)
#endif

}  // namespace et::cpu
