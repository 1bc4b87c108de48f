// cpu_kernels_impl.h — the code of the CPU kernels, included once by each cpu_kernels_<isa>.cpp after it
// defines ET_TILE_C (input rows per register tile of `linear`), ET_KERNELS_NAME and ET_KERNELS_ISA.
// GCC vector types: the ISA's own register width (vn, LN lanes) over a panel's outputs and in dot16, 8 lanes
// over everything else. A vector wider than the target's registers is never built from a scalar: GCC lowers
// that through the stack (AVX2 ran 10x slower than AVX-512 with 16-lane vectors).
// Internal linkage only, and no torch or standard-library headers (see cpu_kernels.h).
#pragma once
#include <math.h>
#if defined(__AVX512F__) || defined(__F16C__)
#include <immintrin.h>  // the float16 conversions (compiler builtins, no library code)
#endif

#include "cpu_kernels.h"

namespace et::cpu {
namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

#if defined(__AVX512F__)
constexpr int LN = 16;
#elif defined(__AVX__)
constexpr int LN = 8;
#else
constexpr int LN = 4;
#endif
typedef float vn __attribute__((vector_size(LN * 4)));

inline vn loadn(const float* p) {
  vn v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline v8 load8(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, v8 v) { __builtin_memcpy(p, &v, sizeof v); }

// the first `count` (< 8) floats at p in a vector, the rest zero; and back
inline v8 load_part(const float* p, int64_t count) {
  float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < count; i++) t[i] = p[i];
  return load8(t);
}
inline void store_part(float* p, v8 v, int64_t count) {
  float t[8];
  store8(t, v);
  for (int64_t i = 0; i < count; i++) p[i] = t[i];
}

// lanes added by halving (lane i += lane i + w for w = N/2, N/4, .., 1), always in this order, in registers
typedef float v4 __attribute__((vector_size(16)));
typedef float v2 __attribute__((vector_size(8)));

inline float hsum2(v2 v) { return v[0] + v[1]; }
inline float hsum4(v4 v) { return hsum2(__builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3)); }
inline float hsum8(v8 v) {
  return hsum4(__builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7));
}
// 16 lanes held as 16 / LN registers (part i = lanes i*LN ..), added as hsum8(lanes 0-7 + lanes 8-15)
inline float hsum16(const vn* parts) {
  float lanes[16];
  for (int i = 0; i < 16 / LN; i++) __builtin_memcpy(lanes + i * LN, &parts[i], sizeof(vn));
  v8 lo, hi;
  __builtin_memcpy(&lo, lanes, sizeof lo);
  __builtin_memcpy(&hi, lanes + 8, sizeof hi);
  return hsum8(lo + hi);
}

// a . b over n floats: 8-lane partial sums over whole chunks, then the rest in order
inline float dot8(const float* a, const float* b, int64_t n) {
  const int64_t whole = n & ~int64_t(7);
  v8 acc = {};
  for (int64_t k = 0; k < whole; k += 8) acc += load8(a + k) * load8(b + k);
  float s = hsum8(acc);
  for (int64_t k = whole; k < n; k++) s += a[k] * b[k];
  return s;
}

// 16-lane partial sums (lane l sums elements l, l + 16, ..; one chain each), then the rest in order
inline float dot16(const float* a, const float* b, int64_t n) {
  const int64_t whole = n & ~int64_t(15);
  vn acc[16 / LN] = {};
  for (int64_t k = 0; k < whole; k += 16)
    for (int i = 0; i < 16 / LN; i++) acc[i] += loadn(a + k + i * LN) * loadn(b + k + i * LN);
  float s = hsum16(acc);
  for (int64_t k = whole; k < n; k++) s += a[k] * b[k];
  return s;
}

// e^x for x <= 0 (softmax and SiLU arguments are clamped first), Cephes-style: x = n ln2 + r with
// |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n by building the exponent bits. Relative error ~2e-7.
inline v8 exp8(v8 x) {
  const v8 lo = v8{} - 87.0f;
  x = x < lo ? lo : x;
  x = x > 0.0f ? v8{} : x;
  const v8 magic = v8{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  v8 t = x * 1.44269504088896341f + magic;
  v8 n = t - magic;
  vi8 ni = reinterpret_cast<vi8>(t) - reinterpret_cast<vi8>(magic);
  v8 r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  v8 p = v8{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  vi8 scale = (ni + 127) << 23;
  return p * reinterpret_cast<v8>(scale);
}

// ---- products: y = x w^T + b, with w packed in panels of 32 outputs (see cpu_kernels.h)

constexpr int64_t PREFETCH_ROWS = 32;  // 4 KiB ahead

// a panel row's LN weights as floats: float32 as stored, or bfloat16 widened (its bits are a float32's top half)
inline vn weights_at(const float* p) { return loadn(p); }
inline vn weights_at(const uint16_t* p) {
  typedef uint16_t hn __attribute__((vector_size(LN * 2)));
  typedef uint32_t un __attribute__((vector_size(LN * 4)));
  hn h;
  __builtin_memcpy(&h, p, sizeof h);
  const un wide = __builtin_convertvector(h, un) << 16;
  vn v;
  __builtin_memcpy(&v, &wide, sizeof v);
  return v;
}

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
    for (int r = 0; r < R; r++) w[r] = weights_at(panel + k * PANEL + r * LN);
    for (int c = 0; c < C; c++) {
      const vn xk = vn{} + x[c * ldx + k];  // a broadcast
      for (int r = 0; r < R; r++) acc[c][r] += xk * w[r];
    }
  }
  for (int c = 0; c < C; c++) {
    float o[PANEL];
    __builtin_memcpy(o, acc[c], sizeof acc[c]);
    float* yc = y + c * ldy + j;
    if (bias) for (int64_t l = 0; l < width; l++) yc[l] = o[l] + bias[j + l];
    else for (int64_t l = 0; l < width; l++) yc[l] = o[l];
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
    const vn xk = vn{} + x[k];
    for (int q = 0; q < P; q++) {
      const W* row = first + q * stride + k * PANEL;
      for (int64_t l = 0; l < PANEL; l += LINE) __builtin_prefetch(row + PREFETCH_ROWS * PANEL + l);
      for (int r = 0; r < R; r++) acc[q][r] += xk * weights_at(row + r * LN);
    }
  }
  for (int q = 0; q < P; q++) {
    float o[PANEL];
    __builtin_memcpy(o, acc[q], sizeof acc[q]);
    const int64_t j = j0 + q * PANEL, width = out - j < PANEL ? out - j : PANEL;
    for (int64_t l = 0; l < width; l++) y[j + l] = bias ? o[l] + bias[j + l] : o[l];
  }
}

constexpr int ROW_PANELS = 4;  // weight streams a one-token product reads at once

// C input rows against P panels at once (a verification's few rows on a memory-bound model: P weight
// streams in flight); each output the same single fused multiply-add chain over k as in panel_tile
template <int C, int P, typename W>
inline void tile_panels(const float* x, int64_t ldx, int64_t in, const W* first, const float* bias, float* y,
                        int64_t ldy, int64_t j0, int64_t out) {
  constexpr int R = PANEL / LN;
  constexpr int64_t LINE = 64 / sizeof(W);
  const int64_t stride = in * PANEL;
  vn acc[C][P][R];
  for (int c = 0; c < C; c++)
    for (int q = 0; q < P; q++)
      for (int r = 0; r < R; r++) acc[c][q][r] = vn{};
  for (int64_t k = 0; k < in; k++) {
    vn w[P][R];
    for (int q = 0; q < P; q++) {
      const W* row = first + q * stride + k * PANEL;
      for (int64_t l = 0; l < PANEL; l += LINE) __builtin_prefetch(row + PREFETCH_ROWS * PANEL + l);
      for (int r = 0; r < R; r++) w[q][r] = weights_at(row + r * LN);
    }
    for (int c = 0; c < C; c++) {
      const vn xk = vn{} + x[c * ldx + k];
      for (int q = 0; q < P; q++)
        for (int r = 0; r < R; r++) acc[c][q][r] += xk * w[q][r];
    }
  }
  for (int c = 0; c < C; c++)
    for (int q = 0; q < P; q++) {
      float o[PANEL];
      __builtin_memcpy(o, acc[c][q], sizeof acc[c][q]);
      const int64_t j = j0 + q * PANEL, width = out - j < PANEL ? out - j : PANEL;
      float* yc = y + c * ldy;
      for (int64_t l = 0; l < width; l++) yc[j + l] = bias ? o[l] + bias[j + l] : o[l];
    }
}

constexpr int64_t FEW_ROWS = 8;  // up to this many rows, AVX-512 reads two panels at once (its 32 registers hold them)

template <typename W>
void linear_of(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const W* packed, const float* bias,
               float* y, int64_t ldy, int64_t p0, int64_t p1) {
  if (n == 1) {
    int64_t p = p0;
    for (; p + ROW_PANELS <= p1; p += ROW_PANELS) row_panels<ROW_PANELS>(x, in, packed + p * in * PANEL, bias, y, p * PANEL, out);
    for (; p < p1; p++) row_panels<1>(x, in, packed + p * in * PANEL, bias, y, p * PANEL, out);
    return;
  }
  if (LN == 16 && n <= FEW_ROWS) {
    int64_t p = p0;
    for (; p + 2 <= p1; p += 2) {
      const W* first = packed + p * in * PANEL;
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) tile_panels<4, 2>(x + i * ldx, ldx, in, first, bias, y + i * ldy, ldy, p * PANEL, out);
      if (i + 2 <= n) tile_panels<2, 2>(x + i * ldx, ldx, in, first, bias, y + i * ldy, ldy, p * PANEL, out), i += 2;
      if (i < n) tile_panels<1, 2>(x + i * ldx, ldx, in, first, bias, y + i * ldy, ldy, p * PANEL, out);
    }
    p0 = p;  // an odd last panel: below
  }
  for (int64_t p = p0; p < p1; p++) {
    const W* panel = packed + p * in * PANEL;
    const int64_t j = p * PANEL, width = out - j < PANEL ? out - j : PANEL;
    int64_t i = 0;
    for (; i + ET_TILE_C <= n; i += ET_TILE_C)
      panel_tile<ET_TILE_C>(x + i * ldx, ldx, in, panel, bias, y + i * ldy, ldy, j, width);
    // the rest in halving tiles, so a few rows still share each weight load
    if constexpr (ET_TILE_C > 4) {
      if (i + 4 <= n) panel_tile<4>(x + i * ldx, ldx, in, panel, bias, y + i * ldy, ldy, j, width), i += 4;
    }
    if constexpr (ET_TILE_C > 2) {
      if (i + 2 <= n) panel_tile<2>(x + i * ldx, ldx, in, panel, bias, y + i * ldy, ldy, j, width), i += 2;
    }
    for (; i < n; i++) panel_tile<1>(x + i * ldx, ldx, in, panel, bias, y + i * ldy, ldy, j, width);
  }
}

void linear(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const float* packed, const float* bias,
            float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, packed, bias, y, ldy, p0, p1);
}

void linear_bf16(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                 const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, packed, bias, y, ldy, p0, p1);
}

void linear_f16(const float* x, int64_t ldx, int64_t n, int64_t in, int64_t out, const uint16_t* packed,
                const float* bias, float* y, int64_t ldy, int64_t p0, int64_t p1) {
  linear_of(x, ldx, n, in, out, reinterpret_cast<const f16*>(packed), bias, y, ldy, p0, p1);
}

// ---- element-wise and per-row kernels

void rms_norm(const float* x, int64_t ldx, int64_t n, int64_t h, const float* w, float eps, float* y, int64_t ldy) {
  for (int64_t i = 0; i < n; i++) {
    const float* xi = x + i * ldx;
    float* yi = y + i * ldy;
    const float inv = 1.0f / sqrtf(dot16(xi, xi, h) / float(h) + eps);
    for (int64_t k = 0; k < h; k++) yi[k] = (xi[k] * inv) * w[k];
  }
}

void rope(float* x, int64_t heads, int64_t d, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  for (int64_t h = 0; h < heads; h++) {
    float* a = x + h * d;
    float* b = a + half;
    for (int64_t i = 0; i < half; i++) {
      const float ai = a[i], bi = b[i];
      a[i] = ai * cos[i] - bi * sin[i];
      b[i] = bi * cos[i] + ai * sin[i];
    }
  }
}

// the largest of x[0..n) (8 lanes at a time: a maximum is exact in any order); *nan tells whether any is NaN
inline float max_of(const float* x, int64_t n, bool* nan) {
  const int64_t whole = n & ~int64_t(7);
  v8 best8 = v8{} - INFINITY;
  vi8 odd = {};
  for (int64_t i = 0; i < whole; i += 8) {
    const v8 v = load8(x + i);
    best8 = v > best8 ? v : best8;
    odd |= v != v;
  }
  float best = -INFINITY;
  bool any = false;
  for (int l = 0; l < 8; l++) {
    best = best8[l] > best ? best8[l] : best;
    any |= odd[l] != 0;
  }
  for (int64_t i = whole; i < n; i++) {
    any |= x[i] != x[i];
    best = x[i] > best ? x[i] : best;
  }
  *nan = any;
  return best;
}

// scores[c*m + t] = (q_c . key keys[t]) * scale for the nq query heads q_c (rows of d floats) and the m
// keys (increasing slots), with the keys transposed (kt: d rows of `cap` floats, so 16 consecutive slots
// are two loads). Each score is one fused multiply-add chain over d from 0, in a vector lane or alone.
template <int DIM>
void attend_scores(const float* q, int64_t nq, const float* kt, int64_t cap, int64_t d_runtime,
                   const int32_t* keys, int64_t m, float scale, float* scores) {
  const int64_t d = DIM ? DIM : d_runtime;
  for (int64_t t = 0; t < m;) {
    const int64_t j = keys[t];
    if (t + 16 <= m && keys[t + 15] == j + 15) {  // 16 consecutive slots
      for (int64_t c = 0; c < nq; c++) {
        const float* qc = q + c * d;
        v8 a = {}, b = {};
        for (int64_t k = 0; k < d; k++) {
          a += qc[k] * load8(kt + k * cap + j);
          b += qc[k] * load8(kt + k * cap + j + 8);
        }
        store8(scores + c * m + t, a * scale);
        store8(scores + c * m + t + 8, b * scale);
      }
      t += 16;
      continue;
    }
    for (int64_t c = 0; c < nq; c++) {
      const float* qc = q + c * d;
      float s = 0.0f;
      for (int64_t k = 0; k < d; k++) s += qc[k] * kt[k * cap + j];
      scores[c * m + t] = s * scale;
    }
    t++;
  }
}

// scores in place -> exp(score - max); returns their sum (8-lane partial sums, then the padded rest)
inline float softmax_weights(float* sc, int64_t m) {
  bool nan = false;
  const float best = max_of(sc, m, &nan);
  const int64_t whole = m & ~int64_t(7);
  v8 sum8 = {};
  for (int64_t t = 0; t < whole; t += 8) {
    const v8 e = exp8(load8(sc + t) - best);
    store8(sc + t, e);
    sum8 += e;
  }
  float sum = hsum8(sum8);
  if (whole < m) {
    float e[8];
    store8(e, exp8(load_part(sc + whole, m - whole) - best));
    for (int64_t t = whole; t < m; t++) sum += (sc[t] = e[t - whole]);
  }
  return sum;
}

// out = sum_t p_t vals[keys[t]] / sum, 8 lanes of d at a time. Short heads spread the keys over W
// accumulator sets (key t into set t mod W, so the assignment depends on t alone), added in order at the end.
template <int DIM, int W>
void attend_values_fixed(const float* p, float sum, const float* vals, const int32_t* keys, int64_t m, float* out) {
  constexpr int64_t C = DIM / 8;
  v8 acc[W][C];
  for (int w = 0; w < W; w++)
    for (int64_t c = 0; c < C; c++) acc[w][c] = v8{};
  int64_t t = 0;
  for (; t + W <= m; t += W)
    for (int w = 0; w < W; w++) {
      const float* v = vals + int64_t(keys[t + w]) * DIM;
      for (int64_t c = 0; c < C; c++) acc[w][c] += p[t + w] * load8(v + c * 8);
    }
  for (int w = 0; t < m; t++, w++) {
    const float* v = vals + int64_t(keys[t]) * DIM;
    for (int64_t c = 0; c < C; c++) acc[w][c] += p[t] * load8(v + c * 8);
  }
  const float inv = 1.0f / sum;
  for (int64_t c = 0; c < C; c++) {
    v8 total = acc[0][c];
    for (int w = 1; w < W; w++) total += acc[w][c];
    store8(out + c * 8, total * inv);
  }
}

// any d: the same sums one lane at a time, in key order
inline void attend_values_any(const float* p, float sum, const float* vals, int64_t d, const int32_t* keys,
                              int64_t m, float* out) {
  for (int64_t k = 0; k < d; k++) out[k] = 0.0f;
  for (int64_t t = 0; t < m; t++) {
    const float* v = vals + int64_t(keys[t]) * d;
    for (int64_t k = 0; k < d; k++) out[k] += p[t] * v[k];
  }
  const float inv = 1.0f / sum;
  for (int64_t k = 0; k < d; k++) out[k] *= inv;
}

template <int DIM>
void attend_dim(const float* q, int64_t nq, const float* kt, int64_t cap, const float* vals, int64_t d,
                const int32_t* keys, int64_t m, float scale, float* scores, float* out) {
  attend_scores<DIM>(q, nq, kt, cap, d, keys, m, scale, scores);
  for (int64_t c = 0; c < nq; c++) {
    float* p = scores + c * m;
    const float sum = softmax_weights(p, m);
    if constexpr (DIM == 8) attend_values_fixed<8, 4>(p, sum, vals, keys, m, out + c * d);
    else if constexpr (DIM == 16) attend_values_fixed<16, 2>(p, sum, vals, keys, m, out + c * d);
    else if constexpr (DIM >= 32) attend_values_fixed<DIM, 1>(p, sum, vals, keys, m, out + c * d);
    else attend_values_any(p, sum, vals, d, keys, m, out + c * d);
  }
}

void attend(const float* q, int64_t nq, const float* kt, int64_t cap, const float* vals, int64_t d,
            const int32_t* keys, int64_t m, float scale, float* scores, float* out) {
  switch (d) {
    case 8: return attend_dim<8>(q, nq, kt, cap, vals, d, keys, m, scale, scores, out);
    case 16: return attend_dim<16>(q, nq, kt, cap, vals, d, keys, m, scale, scores, out);
    case 32: return attend_dim<32>(q, nq, kt, cap, vals, d, keys, m, scale, scores, out);
    case 64: return attend_dim<64>(q, nq, kt, cap, vals, d, keys, m, scale, scores, out);
    case 128: return attend_dim<128>(q, nq, kt, cap, vals, d, keys, m, scale, scores, out);
    default: return attend_dim<0>(q, nq, kt, cap, vals, d, keys, m, scale, scores, out);
  }
}

inline v8 silu8(v8 g, v8 u) {
  // silu(g) = g / (1 + e^-g); e^-|g| keeps the exponential's argument <= 0
  const v8 zero = {};
  const v8 e = exp8(g > zero ? zero - g : g);
  const v8 sig = g > zero ? 1.0f / (1.0f + e) : e / (1.0f + e);
  return g * sig * u;
}

void silu_mul(const float* gate, const float* up, float* y, int64_t count) {
  const int64_t whole = count & ~int64_t(7);
  for (int64_t i = 0; i < whole; i += 8) store8(y + i, silu8(load8(gate + i), load8(up + i)));
  if (whole < count) {
    const int64_t rest = count - whole;
    store_part(y + whole, silu8(load_part(gate + whole, rest), load_part(up + whole, rest)), rest);
  }
}

void add(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; i++) x[i] += y[i];
}

int64_t argmax(const float* x, int64_t n) {
  bool nan = false;
  const float best = max_of(x, n, &nan);
  if (nan) return -1;
  for (int64_t i = 0; i < n; i++)
    if (x[i] == best) return i;  // the first that holds it
  return 0;                      // every value is -inf
}

float logsumexp(const float* x, int64_t n) {
  bool nan = false;
  const float best = max_of(x, n, &nan);
  if (nan) return NAN;
  if (best == -INFINITY) return -INFINITY;
  const int64_t whole = n & ~int64_t(7);
  v8 sum8 = {};
  for (int64_t i = 0; i < whole; i += 8) sum8 += exp8(load8(x + i) - best);
  float sum = hsum8(sum8);
  if (whole < n) {
    float e[8];
    store8(e, exp8(load_part(x + whole, n - whole) - best));
    for (int64_t i = 0; i < n - whole; i++) sum += e[i];
  }
  return best + logf(sum);
}

}  // namespace

extern const Kernels ET_KERNELS_NAME;
const Kernels ET_KERNELS_NAME = {ET_KERNELS_ISA, linear, linear_bf16, linear_f16, rms_norm, rope, attend, silu_mul, add, argmax, logsumexp};

}  // namespace et::cpu
