// cpu_kernels_bf16dot.h — bfloat16 products by AVX-512 BF16's dot-product instruction (VDPBF16PS), for the
// avx512bf16 table only (ET_BF16_DOT; see cpu_kernels_avx512bf16.cpp). Each instruction multiplies 16 pairs
// of bfloat16s and adds both products to 16 float32 sums: two inputs a step where a fused multiply-add on
// widened weights takes one, so rows whose products are compute-bound (a prefill, a tree's verification, a
// batch) run up to twice as fast. The inputs are rounded to bfloat16 for it (to nearest, ties to even), as
// llama.cpp and libtorch's own bfloat16 path do: the logits are no longer the float32 forward's on the
// same weights, but each output is still one chain over the input pairs from the first, so its bits depend
// on neither the rows in the call, nor the tile, nor the thread.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
#pragma once
#if defined(ET_BF16_DOT)
#include <immintrin.h>

#include "cpu_kernels.h"
#include "cpu_kernels_products.h"

namespace et::cpu {
namespace {

// a float32 to bfloat16 bits, to nearest, ties to even (a NaN stays a quiet NaN)
inline uint32_t bf16_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// Rows of inputs as bfloat16 pairs, one 32-bit word per two inputs (input 2p in the low half, 2p + 1 in the
// high one, zero past the last), in this thread's buffer
inline const uint32_t* input_pairs(const float* x, int64_t ldx, int64_t n, int64_t in) {
  static thread_local ThreadBuffer buf;
  const int64_t half = (in + 1) / 2;
  uint32_t* words = static_cast<uint32_t*>(buf.at_least(n * half * int64_t(sizeof(uint32_t))));
  for (int64_t i = 0; i < n; i++) {
    const float* xi = x + i * ldx;
    uint32_t* wi = words + i * half;
    for (int64_t p = 0; p < in / 2; p++) wi[p] = bf16_bits(xi[2 * p]) | (bf16_bits(xi[2 * p + 1]) << 16);
    if (in & 1) wi[half - 1] = bf16_bits(xi[in - 1]);
  }
  return words;
}

// A panel's rows k and k + 1 (32 bfloat16s each, in output order) interleaved into the pairs the dot product
// takes: `lo` holds outputs 0-3, 8-11, 16-19, 24-27 (each as its (k, k + 1) pair), `hi` outputs 4-7, 12-15, ..
inline void panel_pairs(const uint16_t* row, bool second, __m512i* lo, __m512i* hi) {
  const __m512i a = _mm512_loadu_si512(row);
  const __m512i b = second ? _mm512_loadu_si512(row + PANEL) : _mm512_setzero_si512();
  *lo = _mm512_unpacklo_epi16(a, b);
  *hi = _mm512_unpackhi_epi16(a, b);
}

// C rows of input pairs (rows `ldp` words apart) against P panels from `first` (`stride` apart): two
// accumulators a panel, one dot-product chain per output over the pairs in order, then stored in output order.
template <int C, int P>
inline void dot_tile(const uint32_t* xp, int64_t ldp, int64_t in, const uint16_t* first, int64_t stride,
                     const float* bias, float* y, int64_t ldy, int64_t j0, int64_t out) {
  __m512 acc[C][P][2];
  for (int c = 0; c < C; c++)
    for (int q = 0; q < P; q++) acc[c][q][0] = acc[c][q][1] = _mm512_setzero_ps();
  const int64_t pairs = (in + 1) / 2;
  for (int64_t p = 0; p < pairs; p++) {
    const int64_t k = 2 * p;
    __m512i lo[P], hi[P];
    for (int q = 0; q < P; q++) {
      const uint16_t* row = first + q * stride + k * PANEL;
      __builtin_prefetch(row + PREFETCH_ROWS * PANEL);
      __builtin_prefetch(row + (PREFETCH_ROWS + 1) * PANEL);
      panel_pairs(row, k + 1 < in, &lo[q], &hi[q]);
    }
    for (int c = 0; c < C; c++) {
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(int(xp[c * ldp + p]));
      for (int q = 0; q < P; q++) {
        acc[c][q][0] = _mm512_dpbf16_ps(acc[c][q][0], (__m512bh)lo[q], xv);
        acc[c][q][1] = _mm512_dpbf16_ps(acc[c][q][1], (__m512bh)hi[q], xv);
      }
    }
  }
  for (int c = 0; c < C; c++)
    for (int q = 0; q < P; q++) {
      float lo[16], hi[16], o[PANEL];
      _mm512_storeu_ps(lo, acc[c][q][0]);
      _mm512_storeu_ps(hi, acc[c][q][1]);
      for (int l = 0; l < 4; l++)
        for (int i = 0; i < 4; i++) o[8 * l + i] = lo[4 * l + i], o[8 * l + 4 + i] = hi[4 * l + i];
      vn v[PANEL / LN];
      __builtin_memcpy(v, o, sizeof o);
      const int64_t j = j0 + q * PANEL;
      store_panel(v, bias, y + c * ldy, j, out - j < PANEL ? out - j : PANEL);
    }
}

// `rows` (1..6) rows against P panels from panel p
template <int P>
inline void dot_group(int64_t rows, const uint32_t* xp, int64_t ldp, int64_t in, int64_t out, const uint16_t* packed,
                      const float* bias, float* y, int64_t ldy, int64_t p) {
  const int64_t stride = in * PANEL;
  const uint16_t* first = packed + p * stride;
  switch (rows) {
    case 1: return dot_tile<1, P>(xp, ldp, in, first, stride, bias, y, ldy, p * PANEL, out);
    case 2: return dot_tile<2, P>(xp, ldp, in, first, stride, bias, y, ldy, p * PANEL, out);
    case 3: return dot_tile<3, P>(xp, ldp, in, first, stride, bias, y, ldy, p * PANEL, out);
    case 4: return dot_tile<4, P>(xp, ldp, in, first, stride, bias, y, ldy, p * PANEL, out);
    case 5: return dot_tile<5, P>(xp, ldp, in, first, stride, bias, y, ldy, p * PANEL, out);
    default: return dot_tile<6, P>(xp, ldp, in, first, stride, bias, y, ldy, p * PANEL, out);
  }
}

constexpr int64_t DOT_ROWS = 6;  // rows of a tile against two panels: 24 accumulators of the 32 registers

// every row (in tiles of DOT_ROWS and the rest) against P panels from panel p
template <int P>
inline void dot_all_rows(const uint32_t* xp, int64_t ldp, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                         const float* bias, float* y, int64_t ldy, int64_t p) {
  for (int64_t i = 0; i < n; i += DOT_ROWS)
    dot_group<P>(n - i < DOT_ROWS ? n - i : DOT_ROWS, xp + i * ldp, ldp, in, out, packed, bias, y + i * ldy, ldy, p);
}

// The products of the avx512bf16 table: one row against four panels at once (four weight streams for the
// memory-bound one-token step); more rows against two panels at a time, every tile of rows passing over a
// pair before the next (the pair stays in the near caches).
void linear_bf16_dot(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                     const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  const uint32_t* xp = input_pairs(x, ldx, n, in);
  const int64_t ldp = (in + 1) / 2;
  int64_t p = p0;
  if (n == 1) {
    for (; p + 4 <= p1; p += 4) dot_group<4>(1, xp, ldp, in, out, packed, bias, y, ldy, p);
  }
  for (; p + 2 <= p1; p += 2) dot_all_rows<2>(xp, ldp, n, in, out, packed, bias, y, ldy, p);
  for (; p < p1; p++) dot_all_rows<1>(xp, ldp, n, in, out, packed, bias, y, ldy, p);
}

}  // namespace
}  // namespace et::cpu
#endif
