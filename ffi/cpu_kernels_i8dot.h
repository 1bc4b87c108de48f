// cpu_kernels_i8dot.h — int8 products by AVX-512 VNNI's byte dot-product instruction (VPDPBUSD), for the
// avx512bf16 table only (ET_I8_DOT; see cpu_kernels_avx512bf16.cpp). One instruction multiplies 16 groups of
// four unsigned bytes by four signed bytes and adds each group's sum to a 32-bit integer: 64 products, where
// widening int8 weights to float32 takes three instructions for 16. So a draft head's one-row pass, which
// spent its time widening weights, reads them at the memory's pace.
// The weights come in groups of four inputs (cpu_pack.cpp's pack_groups, for Kernels::linear_i8_groups:
// per panel, per group of four inputs, 32 outputs of four bytes each), stored plus 128 as unsigned bytes.
// The inputs are quantized for it per block of 32 (a scale max |x| / 127 each, rounded to nearest), as
// llama.cpp's Q8_0 does; a block's sum, exact in integers, less 128 times the sum of its quantized inputs,
// is scaled by its input scale into the output's float32 sum, block after block from the first. So an
// output's bits depend on neither the rows in the call, nor the tile, nor the thread. The outputs are no
// longer those of the float32 products on the rounded weights (a draft only: the target verifies every
// token it proposes).
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
#pragma once
#if defined(ET_I8_DOT)
#include <immintrin.h>

#include "cpu_kernels.h"
#include "cpu_kernels_products.h"

namespace et::cpu {
namespace {

constexpr int64_t QBLOCK = 32;  // inputs per quantization block
constexpr int64_t QGROUP = 4;   // inputs per byte group of the dot product

// Rows of quantized inputs: per row, `bytes` of them (zeros past the inputs), then per block its scale and
// 128 times the sum of its quantized inputs, as floats; in this thread's buffer.
struct QuantizedRows {
  int8_t* q = nullptr;
  float* scale = nullptr;
  float* offset = nullptr;
  int64_t bytes = 0, blocks = 0;
};

inline int64_t quant_groups(int64_t in) { return (in + QGROUP - 1) / QGROUP; }

typedef int32_t vi16 __attribute__((vector_size(64)));

// 16 inputs' largest magnitude (the lanes past the mask: 0)
inline float abs_max16(const float* x, __mmask16 m) {
  return lanes_max(vn(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, x))));
}

// 16 inputs times `inv`, rounded to nearest (ties to even: the default rounding) into bytes (saturated; they
// lie in [-127, 127]) at q; returns their sum
inline int32_t quantize16(const float* x, __mmask16 m, float inv, int8_t* q) {
  const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), _mm512_set1_ps(inv));
  const __m512i r = _mm512_maskz_cvtps_epi32(m, v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_maskz_cvtsepi32_epi8(0xffff, r));
  vi16 a = vi16(r);
  a += __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  a += __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
  a += __builtin_shufflevector(a, a, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
  return a[0] + a[1];
}

inline QuantizedRows quantize_rows(const float* x, int64_t ldx, int64_t n, int64_t in) {
  static thread_local ThreadBuffer buf;
  QuantizedRows r;
  r.blocks = (in + QBLOCK - 1) / QBLOCK;
  r.bytes = r.blocks * QBLOCK;  // whole blocks: quantize16 writes 16 bytes at a time
  r.q = static_cast<int8_t*>(buf.at_least(n * (r.bytes + 2 * r.blocks * int64_t(sizeof(float)))));
  r.scale = reinterpret_cast<float*>(r.q + n * r.bytes);
  r.offset = r.scale + n * r.blocks;
  for (int64_t i = 0; i < n; i++) {
    const float* xi = x + i * ldx;
    for (int64_t b = 0; b < r.blocks; b++) {
      const int64_t k = b * QBLOCK, left = in - k;
      const __mmask16 m0 = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
      const __mmask16 m1 = left >= 32 ? __mmask16(0xffff) : left > 16 ? __mmask16((1u << (left - 16)) - 1) : __mmask16(0);
      float most = abs_max16(xi + k, m0);
      if (m1) most = fmaxf(most, abs_max16(xi + k + 16, m1));
      const float s = most > 0 ? most / 127.0f : 1.0f, inv = most > 0 ? 127.0f / most : 0.0f;
      int8_t* q = r.q + i * r.bytes + k;
      int32_t sum = quantize16(xi + k, m0, inv, q);
      sum += quantize16(xi + k + 16, m1, inv, q + 16);
      r.scale[i * r.blocks + b] = s;
      r.offset[i * r.blocks + b] = 128.0f * float(sum);
    }
  }
  return r;
}

// C rows against P panels (of groups, from `first`, `stride` bytes apart): per row and panel two 16-lane
// integer sums per block and two float sums
template <int C, int P>
inline void dot_i8_tile(const QuantizedRows& xq, int64_t row, int64_t in, const uint8_t* first, int64_t stride,
                        const float* wscale, const float* bias, float* y, int64_t ldy, int64_t j0, int64_t out) {
  const int64_t groups = quant_groups(in);
  __m512 acc[C][P][2];
  for (int c = 0; c < C; c++)
    for (int p = 0; p < P; p++) acc[c][p][0] = acc[c][p][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < xq.blocks; b++) {
    const int64_t g0 = b * (QBLOCK / QGROUP), g1 = groups < g0 + QBLOCK / QGROUP ? groups : g0 + QBLOCK / QGROUP;
    __m512i s[C][P][2];
    for (int c = 0; c < C; c++)
      for (int p = 0; p < P; p++) s[c][p][0] = s[c][p][1] = _mm512_setzero_si512();
    for (int64_t g = g0; g < g1; g++) {
      __m512i w[P][2];
      for (int p = 0; p < P; p++) {
        const uint8_t* at = first + p * stride + g * PANEL * QGROUP;
        __builtin_prefetch(at + 16 * PANEL * QGROUP);
        __builtin_prefetch(at + 16 * PANEL * QGROUP + 64);
        w[p][0] = _mm512_loadu_si512(at);
        w[p][1] = _mm512_loadu_si512(at + 64);
      }
      for (int c = 0; c < C; c++) {
        int32_t four;
        __builtin_memcpy(&four, xq.q + (row + c) * xq.bytes + g * QGROUP, sizeof four);
        const __m512i xb = _mm512_set1_epi32(four);
        for (int p = 0; p < P; p++) {
          s[c][p][0] = _mm512_dpbusd_epi32(s[c][p][0], w[p][0], xb);
          s[c][p][1] = _mm512_dpbusd_epi32(s[c][p][1], w[p][1], xb);
        }
      }
    }
    for (int c = 0; c < C; c++) {
      const __m512 off = _mm512_set1_ps(xq.offset[(row + c) * xq.blocks + b]);
      const __m512 sc = _mm512_set1_ps(xq.scale[(row + c) * xq.blocks + b]);
      for (int p = 0; p < P; p++)
        for (int h = 0; h < 2; h++)
          acc[c][p][h] = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_cvtepi32_ps(0xffff, s[c][p][h]), off), sc, acc[c][p][h]);
    }
  }
  for (int c = 0; c < C; c++)
    for (int p = 0; p < P; p++) {
      const int64_t j = j0 + p * PANEL, width = out - j < PANEL ? out - j : PANEL;
      float o[PANEL];
      for (int h = 0; h < 2; h++) {
        __m512 v = _mm512_mul_ps(acc[c][p][h], _mm512_loadu_ps(wscale + j + 16 * h));
        _mm512_storeu_ps(o + 16 * h, v);
      }
      float* yc = y + (row + c) * ldy;
      for (int64_t l = 0; l < width; l++) yc[j + l] = bias ? o[l] + bias[j + l] : o[l];
    }
}

constexpr int64_t I8_ROWS = 6;  // rows of a tile against one panel: 24 accumulators of the 32 registers

template <int P>
inline void dot_i8_rows(int64_t rows, const QuantizedRows& xq, int64_t row, int64_t in, const uint8_t* first,
                        int64_t stride, const float* wscale, const float* bias, float* y, int64_t ldy, int64_t j0,
                        int64_t out) {
  switch (rows) {
    case 1: return dot_i8_tile<1, P>(xq, row, in, first, stride, wscale, bias, y, ldy, j0, out);
    case 2: return dot_i8_tile<2, P>(xq, row, in, first, stride, wscale, bias, y, ldy, j0, out);
    case 3: return dot_i8_tile<3, P>(xq, row, in, first, stride, wscale, bias, y, ldy, j0, out);
    case 4: return dot_i8_tile<4, P>(xq, row, in, first, stride, wscale, bias, y, ldy, j0, out);
    case 5: return dot_i8_tile<5, P>(xq, row, in, first, stride, wscale, bias, y, ldy, j0, out);
    default: return dot_i8_tile<6, P>(xq, row, in, first, stride, wscale, bias, y, ldy, j0, out);
  }
}

// The int8 products of the avx512bf16 table: the rows quantized once a call; one row against four panels at
// once (four weight streams for the memory-bound one-row pass); more rows panel by panel, in as few tiles
// as I8_ROWS allows, shared evenly.
void linear_i8_dot(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const int8_t* packed,
                   const float* scale, const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  const QuantizedRows xq = quantize_rows(x, ldx, n, in);
  const uint8_t* w = reinterpret_cast<const uint8_t*>(packed);
  const int64_t stride = quant_groups(in) * QGROUP * PANEL;  // bytes of a panel
  int64_t p = p0;
  if (n == 1) {
    for (; p + 4 <= p1; p += 4) dot_i8_tile<1, 4>(xq, 0, in, w + p * stride, stride, scale, bias, y, ldy, p * PANEL, out);
    for (; p < p1; p++) dot_i8_tile<1, 1>(xq, 0, in, w + p * stride, stride, scale, bias, y, ldy, p * PANEL, out);
    return;
  }
  const int64_t passes = tile_passes(n, I8_ROWS);
  for (; p < p1; p++)
    for (int64_t i = 0, t = 0; t < passes; t++) {
      const int64_t rows = pass_rows(n - i, passes - t);
      dot_i8_rows<1>(rows, xq, i, in, w + p * stride, stride, scale, bias, y, ldy, p * PANEL, out);
      i += rows;
    }
}

}  // namespace
}  // namespace et::cpu
#endif
