// cpu_kernels_products.h — the products y = x w^T + b over panel-packed float32, bfloat16, float16 or int8 weights.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
#pragma once
#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>  // the float16 and int8 conversions (compiler builtins, no library code)
#endif

#include <type_traits>

#include "cpu_kernels.h"
#include "cpu_kernels_vec.h"

namespace et::cpu {
namespace {

// ---- products: y = x w^T + b, with w packed in panels of 32 outputs (see cpu_kernels.h)

constexpr int64_t PREFETCH_ROWS = 32;  // 4 KiB ahead

// a panel row's LN weights as floats: float32 as stored (bfloat16: panel_row, two vectors at once)
inline vn weights_at(const float* p) { return loadn(p); }

// a panel row's LN weights from float16 bits, widened exactly (F16C / AVX-512 convert in registers)
struct f16 {
  uint16_t bits;
};
inline vn weights_at(const f16* p) {
#if defined(__AVX512F__)
  // (the masked form: GCC 12's unmasked one warns about its own undefined operand)
  const __m512 v = _mm512_mask_cvtph_ps(_mm512_setzero_ps(), __mmask16(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__F16C__)
  const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
  float v[LN];
  for (int i = 0; i < LN; i++) {
    _Float16 h;
    __builtin_memcpy(&h, &p[i].bits, sizeof h);
    v[i] = float(h);
  }
#endif
  vn out;
  __builtin_memcpy(&out, &v, sizeof out);
  return out;
}

// a panel row's LN weights from int8, widened exactly (linear_i8 scales each output's sum once, at the end)
struct q8 {
  int8_t v;
};
inline vn weights_at(const q8* p) {
#if defined(__AVX512F__)
  // (the zero-masked forms: GCC 12's unmasked ones warn about their own undefined operand)
  const __m512i wide = _mm512_maskz_cvtepi8_epi32(__mmask16(0xffff), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512 v = _mm512_maskz_cvtepi32_ps(__mmask16(0xffff), wide);
#elif defined(__AVX2__)
  const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#else
  float v[LN];  // (GCC widens a vector of int8 element by element: a loop it can see whole is no worse)
  for (int i = 0; i < LN; i++) v[i] = float(p[i].v);
#endif
  vn out;
  __builtin_memcpy(&out, &v, sizeof out);
  return out;
}

// a panel's PANEL / LN accumulators (+ its bias) as outputs y[j .. j + width): whole vectors when the panel
// is full, else one by one
inline void store_panel(const vn* acc, const float* bias, float* y, int64_t j, int64_t width) {
  constexpr int R = PANEL / LN;
  if (width == PANEL) {
    for (int r = 0; r < R; r++) storen(y + j + r * LN, bias ? acc[r] + loadn(bias + j + r * LN) : acc[r]);
    return;
  }
  float o[PANEL];
  __builtin_memcpy(o, acc, sizeof o);
  for (int64_t l = 0; l < width; l++) y[j + l] = bias ? o[l] + bias[j + l] : o[l];
}

// One panel row of weights as PANEL / LN vectors. float32 and float16 come in output order. bfloat16 comes
// two vectors per 2 LN weights: read as LN 32-bit words, each holding two bfloat16s, a shift gives the even
// outputs and a mask the odd ones as float32 (a bfloat16 is a float32's top half). That is two instructions
// per 2 LN weights where widening in order takes four. The accumulators then hold the outputs in that order,
// and in_order puts them back before they are stored. Each output keeps its own chain, so the bits do not
// change.
template <typename W>
constexpr bool paired = std::is_same_v<W, uint16_t>;  // bfloat16 bits

template <int R, typename W>
inline void panel_row(const W* row, vn (&w)[R]) {
  if constexpr (paired<W>) {
    typedef uint32_t un __attribute__((vector_size(LN * 4)));
    for (int g = 0; g < R / 2; g++) {
      un words;
      __builtin_memcpy(&words, row + g * 2 * LN, sizeof words);
      const un even = words << 16, odd = words & 0xffff0000u;
      __builtin_memcpy(&w[2 * g], &even, sizeof(vn));
      __builtin_memcpy(&w[2 * g + 1], &odd, sizeof(vn));
    }
  } else {
    for (int r = 0; r < R; r++) w[r] = weights_at(row + r * LN);
  }
}

// a panel's accumulators (panel_row's order) in output order
template <typename W, int R>
inline void in_order(vn (&acc)[R]) {
  if constexpr (paired<W>) {
    float lanes[R * LN], o[R * LN];
    __builtin_memcpy(lanes, acc, sizeof lanes);
    for (int g = 0; g < R / 2; g++)
      for (int i = 0; i < LN; i++) {
        o[g * 2 * LN + 2 * i] = lanes[(2 * g) * LN + i];
        o[g * 2 * LN + 2 * i + 1] = lanes[(2 * g + 1) * LN + i];
      }
    __builtin_memcpy(acc, o, sizeof o);
  }
}

// C input rows against one panel (of float32, bfloat16 or float16 weights W): PANEL / LN accumulators per row, one
// fused multiply-add chain per output over k from 0 (so an output's bits depend on neither C, nor the panel's
// position, nor the register width, nor whether its weights were stored as bfloat16 or as the same float32)
template <int C, typename W>
inline void panel_tile(const float* x, int64_t ldx, int64_t in, const W* panel, const float* bias, float* y,
                       int64_t ldy, int64_t j, int64_t width) {
  constexpr int R = PANEL / LN;
  constexpr int64_t LINE = 64 / sizeof(W);  // weights per cache line
  vn acc[C][R];
  for (int c = 0; c < C; c++)
    for (int r = 0; r < R; r++) acc[c][r] = vn{};
  for (int64_t k = 0; k < in; k++) {
    // a panel streams from memory: ask for its bytes a few rows ahead, as the wider tiles leave the hardware
    // prefetcher behind (reading past the panel's end only prefetches)
    for (int64_t l = 0; l < PANEL; l += LINE) __builtin_prefetch(panel + (k + PREFETCH_ROWS) * PANEL + l);
    vn w[R];
    panel_row(panel + k * PANEL, w);
    for (int c = 0; c < C; c++) {
      const vn xk = splat(x[c * ldx + k]);
      for (int r = 0; r < R; r++) acc[c][r] += xk * w[r];
    }
  }
  for (int c = 0; c < C; c++) {
    in_order<W>(acc[c]);
    store_panel(acc[c], bias, y + c * ldy, j, width);
  }
}

// One input row against P panels at once: P weight streams in flight instead of one, for the memory-bound
// one-token step. Each output is the same single fused multiply-add chain over k as in panel_tile<1>.
template <int P, typename W>
inline void row_panels(const float* x, int64_t in, const W* first, const float* bias, float* y, int64_t j0,
                       int64_t out) {
  constexpr int R = PANEL / LN;
  constexpr int64_t LINE = 64 / sizeof(W);
  const int64_t stride = in * PANEL;  // from one panel to the next
  vn acc[P][R];
  for (int q = 0; q < P; q++)
    for (int r = 0; r < R; r++) acc[q][r] = vn{};
  for (int64_t k = 0; k < in; k++) {
    const vn xk = splat(x[k]);
    for (int q = 0; q < P; q++) {
      const W* row = first + q * stride + k * PANEL;
      for (int64_t l = 0; l < PANEL; l += LINE) __builtin_prefetch(row + PREFETCH_ROWS * PANEL + l);
      vn w[R];
      panel_row(row, w);
      for (int r = 0; r < R; r++) acc[q][r] += xk * w[r];
    }
  }
  for (int q = 0; q < P; q++) {
    in_order<W>(acc[q]);
    const int64_t j = j0 + q * PANEL;
    store_panel(acc[q], bias, y, j, out - j < PANEL ? out - j : PANEL);
  }
}

constexpr int ROW_PANELS = 4;  // weight streams a one-token product reads at once

// C input rows against P panels over the inputs [k0, k1), continuing the accumulators `acc`: each output the
// same single fused multiply-add chain over k as in panel_tile, however the inputs are split. Weights are
// asked for PREFETCH_ROWS rows ahead in the panels read; or, given `ahead` (per panel, where the next block
// of rows starts), the same rows of that next block, into L2, while this pass reads a block already near.
template <int C, int P, typename W>
inline void tile_span(const float* x, int64_t ldx, int64_t k0, int64_t k1, const W* first, int64_t stride,
                      vn (*acc)[P][PANEL / LN], const W* const* ahead) {
  constexpr int R = PANEL / LN;
  constexpr int64_t LINE = 64 / sizeof(W);
  vn a[C][P][R];
  for (int c = 0; c < C; c++)
    for (int q = 0; q < P; q++)
      for (int r = 0; r < R; r++) a[c][q][r] = acc[c][q][r];
  for (int64_t k = k0; k < k1; k++) {
    vn w[P][R];
    for (int q = 0; q < P; q++) {
      const W* row = first + q * stride + k * PANEL;
      for (int64_t l = 0; l < PANEL; l += LINE) {
        if (ahead) __builtin_prefetch(ahead[q] + (k - k0) * PANEL + l, 0, 1);
        else __builtin_prefetch(row + PREFETCH_ROWS * PANEL + l);
      }
      panel_row(row, w[q]);
    }
    for (int c = 0; c < C; c++) {
      const vn xk = splat(x[c * ldx + k]);
      for (int q = 0; q < P; q++)
        for (int r = 0; r < R; r++) a[c][q][r] += xk * w[q][r];
    }
  }
  for (int c = 0; c < C; c++)
    for (int q = 0; q < P; q++)
      for (int r = 0; r < R; r++) acc[c][q][r] = a[c][q][r];
}

// row c's accumulators for P panels from j0 on (+ bias) as its outputs
template <typename W, int P>
inline void store_panels(vn (*acc)[P][PANEL / LN], int64_t c, const float* bias, float* y, int64_t j0, int64_t out) {
  for (int q = 0; q < P; q++) {
    in_order<W>(acc[c][q]);
    const int64_t j = j0 + q * PANEL;
    store_panel(acc[c][q], bias, y, j, out - j < PANEL ? out - j : PANEL);
  }
}

constexpr int64_t FEW_ROWS = 8;  // up to this many rows, a product reads two panels at once (see few_row_pairs)
// AVX2 does so only for a product whose weights stream from memory (more than its L2 holds): there two streams
// in flight outrun the wider tile of one (a 140M model's 3-row verification took 42 ms against 35), though
// the accumulators spill; weights that stay in cache favour the tile that spills nothing. AVX-512's 32
// registers hold a pair's accumulators for up to six rows, so it always does.
constexpr int64_t STREAMED_BYTES = int64_t(1) << 20;
// Inputs of a panel pair that every group of rows passes over before the next block: 64 rows, 16 KiB of
// float32 weights, which stay in L1 while the later groups read them and ask for the next block from memory,
// so the weights stream while every group computes, not only while the first does (a 140M model's
// verification of 4 tokens went from 1.57x a one-token step to 1.35x, of 6 from 1.83x to 1.56x, on AVX2).
constexpr int64_t STREAM_BLOCK = 64;
// Rows of a group that a later group block reads with both panels' accumulators at once: AVX-512 up to six
// (24 of its 32 registers, 4 more for the pair's weights); AVX2 two, whose 16 accumulators spill but measured
// faster than one panel at a time, while a three reads one panel at a time (12 accumulators, none spilled).
constexpr int PAIR_ROWS = LN == 16 ? 6 : 2;

// The next group's rows among the `left` still to do: AVX-512 all of them up to six, else four (7 = 4 + 3,
// 8 = 4 + 4); AVX2 threes, and twos for what they leave (4 = 2 + 2). n >= 2, so no row runs alone: a lone
// row's tile waits on its own few chains.
inline int64_t group_rows(int64_t left) {
  if (LN == 16) return left <= PAIR_ROWS ? left : 4;
  return (left == 3 || left > 4) ? 3 : 2;
}

// One group of C rows over the inputs [k0, k1) of a panel pair. The first group streams the block, both
// panels at once; a later one reads it near and asks for `next` (null: none), both panels at once up to
// PAIR_ROWS rows, else one panel at a time.
template <int C, typename W>
inline void group_block(const float* x, int64_t ldx, int64_t k0, int64_t k1, const W* first, int64_t stride,
                        vn (*acc)[2][PANEL / LN], bool streams, const W* const* next) {
  if (streams || C <= PAIR_ROWS) {
    tile_span<C, 2>(x, ldx, k0, k1, first, stride, acc, streams ? nullptr : next);
    return;
  }
  for (int q = 0; q < 2; q++) {
    vn one[C][1][PANEL / LN];
    for (int c = 0; c < C; c++) __builtin_memcpy(one[c][0], acc[c][q], sizeof one[c][0]);
    tile_span<C, 1>(x, ldx, k0, k1, first + q * stride, stride, one, next ? next + q : nullptr);
    for (int c = 0; c < C; c++) __builtin_memcpy(acc[c][q], one[c][0], sizeof one[c][0]);
  }
}

template <typename W>
inline void group_block_of(int64_t rows, const float* x, int64_t ldx, int64_t k0, int64_t k1, const W* first,
                           int64_t stride, vn (*acc)[2][PANEL / LN], bool streams, const W* const* next) {
  switch (rows) {
    case 2: return group_block<2>(x, ldx, k0, k1, first, stride, acc, streams, next);
    case 3: return group_block<3>(x, ldx, k0, k1, first, stride, acc, streams, next);
    case 4: return group_block<4>(x, ldx, k0, k1, first, stride, acc, streams, next);
    case 5: return group_block<5>(x, ldx, k0, k1, first, stride, acc, streams, next);
    default: return group_block<6>(x, ldx, k0, k1, first, stride, acc, streams, next);
  }
}

// Few rows (2 <= n <= FEW_ROWS) against panel pairs [p0, p1 - (p1 - p0) % 2), in groups (group_rows). One
// group passes over all the inputs at once; several go block by block of STREAM_BLOCK inputs, the first
// streaming the block and the later ones reading it from L1 while asking for the next. Returns the first
// panel not done.
template <typename W>
int64_t few_row_pairs(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const W* packed,
                      const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  int64_t group[FEW_ROWS + 1], groups = 0;  // each group's first row, then n
  for (int64_t i = 0; i < n; i += group_rows(n - i)) group[groups++] = i;
  group[groups] = n;
  const int64_t stride = in * PANEL, last = p0 + (p1 - p0) / 2 * 2, block = groups == 1 ? in : STREAM_BLOCK;
  for (int64_t p = p0; p < last; p += 2) {
    const W* first = packed + p * stride;
    vn acc[FEW_ROWS][2][PANEL / LN] = {};
    for (int64_t k0 = 0; k0 < in; k0 += block) {
      const int64_t k1 = in - k0 < block ? in : k0 + block;
      // the next block: this pair's, or the next pair's first; none after the last
      const W* ahead[2] = {first + k1 * PANEL, first + stride + k1 * PANEL};
      if (k1 == in) ahead[0] = first + 2 * stride, ahead[1] = first + 3 * stride;
      const W* const* next = k1 < in || p + 2 < last ? ahead : nullptr;
      for (int64_t g = 0; g < groups; g++) {
        const int64_t i = group[g];
        group_block_of(group[g + 1] - i, x + i * ldx, ldx, k0, k1, first, stride, acc + i, g == 0, next);
      }
    }
    for (int64_t i = 0; i < n; i++) store_panels<W, 2>(acc, i, bias, y + i * ldy, p * PANEL, out);
  }
  return last;
}

// The widest register tile of rows (ET_TILE_C, from the ISA's file)
constexpr int64_t TILE_ROWS = ET_TILE_C;

// Rows in tiles of at most `widest`: as few passes over a panel as that allows (tile_passes), the rows
// shared evenly among them (pass_rows: the next tile's, of `left` rows for `passes` passes; 11 rows in tiles
// of at most 8: 6 + 5, where tiles of 8, 2 and 1 read the panel three times)
inline int64_t tile_passes(int64_t n, int64_t widest) { return (n + widest - 1) / widest; }
inline int64_t pass_rows(int64_t left, int64_t passes) { return (left + passes - 1) / passes; }

template <typename W>
inline void panel_tile_of(int64_t rows, const float* x, int64_t ldx, int64_t in, const W* panel, const float* bias,
                          float* y, int64_t ldy, int64_t j, int64_t width) {
#define ET_TILE(C) \
  case C: \
    if constexpr (C <= TILE_ROWS) return panel_tile<C>(x, ldx, in, panel, bias, y, ldy, j, width); \
    break;
  switch (rows) {
    ET_TILE(1) ET_TILE(2) ET_TILE(3) ET_TILE(4) ET_TILE(5) ET_TILE(6)
    ET_TILE(7) ET_TILE(8) ET_TILE(9) ET_TILE(10) ET_TILE(11) ET_TILE(12)
  }
#undef ET_TILE
}

template <typename W>
void linear_of(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const W* packed, const float* bias,
               float* y, int64_t ldy, int64_t p0, int64_t p1) {
  if (n == 1) {
    int64_t p = p0;
    for (; p + ROW_PANELS <= p1; p += ROW_PANELS) row_panels<ROW_PANELS>(x, in, packed + p * in * PANEL, bias, y, p * PANEL, out);
    // the last few together too
    const W* rest = packed + p * in * PANEL;
    if (p1 - p == 3) row_panels<3>(x, in, rest, bias, y, p * PANEL, out);
    else if (p1 - p == 2) row_panels<2>(x, in, rest, bias, y, p * PANEL, out);
    else if (p1 - p == 1) row_panels<1>(x, in, rest, bias, y, p * PANEL, out);
    return;
  }
  if (n <= FEW_ROWS && (LN == 16 || in * out * int64_t(sizeof(W)) >= STREAMED_BYTES)) {
    p0 = few_row_pairs(x, ldx, n, in, out, packed, bias, y, ldy, p0, p1);  // an odd last panel: below
  }
  for (int64_t p = p0; p < p1; p++) {
    const W* panel = packed + p * in * PANEL;
    const int64_t j = p * PANEL, width = out - j < PANEL ? out - j : PANEL;
    const int64_t passes = tile_passes(n, TILE_ROWS);
    for (int64_t i = 0, q = 0; q < passes; q++) {
      const int64_t rows = pass_rows(n - i, passes - q);
      panel_tile_of(rows, x + i * ldx, ldx, in, panel, bias, y + i * ldy, ldy, j, width);
      i += rows;
    }
  }
}

void linear(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const float* packed, const float* bias,
            float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, packed, bias, y, ldy, p0, p1);
}

#if !defined(ET_BF16_DOT)  // (that table's are cpu_kernels_bf16dot.h's)
void linear_bf16(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                 const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, packed, bias, y, ldy, p0, p1);
}
#endif

void linear_f16(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, reinterpret_cast<const f16*>(packed), bias, y, ldy, p0, p1);
}

void linear_i8(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const int8_t* packed, const float* scale,
               const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, reinterpret_cast<const q8*>(packed), nullptr, y, ldy, p0, p1);
  const int64_t j0 = p0 * PANEL, j1 = p1 * PANEL < out ? p1 * PANEL : out;
  for (int64_t i = 0; i < n; i++) {
    float* yi = y + i * ldy;
    if (bias) {
      for (int64_t j = j0; j < j1; j++) yi[j] = yi[j] * scale[j] + bias[j];
    } else {
      for (int64_t j = j0; j < j1; j++) yi[j] *= scale[j];
    }
  }
}

}  // namespace
}  // namespace et::cpu
