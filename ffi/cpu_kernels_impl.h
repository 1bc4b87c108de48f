// cpu_kernels_impl.h — the code of the CPU kernels, included once by each cpu_kernels_<isa>.cpp after it
// defines ET_TILE_C (input rows of `linear`'s widest register tile), ET_KERNELS_NAME and ET_KERNELS_ISA.
// GCC vector types: the ISA's own register width (vn, LN lanes) over a panel's outputs and in dot16, 8 lanes
// over everything else. A vector wider than the target's registers is never built from a scalar: GCC lowers
// that through the stack (AVX2 ran 10x slower than AVX-512 with 16-lane vectors).
// Internal linkage only, and no torch or standard-library headers (see cpu_kernels.h). The parts:
// cpu_kernels_vec.h (vector types and helpers), cpu_kernels_products.h (the panel products),
// cpu_kernels_attend.h (attention); here the per-row kernels and the table.
#pragma once
#include <math.h>

#include "cpu_kernels.h"
#include "cpu_kernels_vec.h"
#include "cpu_kernels_products.h"
#include "cpu_kernels_attend.h"
#include "cpu_kernels_bf16dot.h"
#include "cpu_kernels_i8dot.h"

namespace et::cpu {
namespace {

// ---- element-wise and per-row kernels

void rms_norm(const float* x, int64_t ldx, int64_t n, int64_t h, const float* w, float eps, float* y, int64_t ldy) {
  for (int64_t i = 0; i < n; i++) {
    const float* xi = x + i * ldx;
    float* yi = y + i * ldy;
    const float inv = 1.0f / sqrtf(dot16(xi, xi, h) / float(h) + eps);
    for (int64_t k = 0; k < h; k++) yi[k] = (xi[k] * inv) * w[k];
  }
}

// W frequencies a vector (8 or 4, where the half-width allows): lane for lane the scalar loop's expressions,
// so its bits
template <typename V, int W>
inline void rope_lanes(float* x, int64_t heads, int64_t d, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  for (int64_t h = 0; h < heads; h++) {
    float* a = x + h * d;
    float* b = a + half;
    for (int64_t i = 0; i < half; i += W) {
      V ai, bi, c, s;
      __builtin_memcpy(&ai, a + i, sizeof ai), __builtin_memcpy(&bi, b + i, sizeof bi);
      __builtin_memcpy(&c, cos + i, sizeof c), __builtin_memcpy(&s, sin + i, sizeof s);
      const V na = ai * c - bi * s, nb = bi * c + ai * s;
      __builtin_memcpy(a + i, &na, sizeof na), __builtin_memcpy(b + i, &nb, sizeof nb);
    }
  }
}

void rope(float* x, int64_t heads, int64_t d, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  if (half % 8 == 0) return rope_lanes<v8, 8>(x, heads, d, cos, sin);
  if (half % 4 == 0) return rope_lanes<v4, 4>(x, heads, d, cos, sin);
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

inline v8 silu8(v8 g, v8 u) {
  // silu(g) = g / (1 + e^-g); e^-|g| keeps the exponential's argument <= 0
  const v8 zero = {};
  const v8 e = exp8(g > zero ? zero - g : g);
  const v8 sig = g > zero ? 1.0f / (1.0f + e) : e / (1.0f + e);
  return g * sig * u;
}

// silu8 over the ISA's width: lane for lane the same bits
inline vn silun(vn g, vn u) {
  const vn zero = {};
  const vn e = expn(g > zero ? zero - g : g);
  const vn sig = g > zero ? 1.0f / (1.0f + e) : e / (1.0f + e);
  return g * sig * u;
}

void silu_mul(const float* gate, const float* up, float* y, int64_t count) {
  const int64_t whole = count & ~int64_t(7);
  int64_t i = 0;
  for (; i + LN <= whole; i += LN) storen(y + i, silun(loadn(gate + i), loadn(up + i)));
#if defined(__AVX512F__)
  if (i < count) {  // the last 1-15 in one masked vector (lane for lane the same bits)
    const __mmask16 left = __mmask16((1u << (count - i)) - 1);
    const vn g = vn(_mm512_maskz_loadu_ps(left, gate + i)), u = vn(_mm512_maskz_loadu_ps(left, up + i));
    _mm512_mask_storeu_ps(y + i, left, __m512(silun(g, u)));
  }
  return;
#endif
  for (; i < whole; i += 8) store8(y + i, silu8(load8(gate + i), load8(up + i)));
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
  int64_t i = 0;  // the first that holds it: a vector of comparisons at a time where the ISA has them
#if defined(__AVX512F__)
  for (const __m512 b = _mm512_set1_ps(best); i + 16 <= n; i += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), b, _CMP_EQ_OQ);
    if (hit) return i + __builtin_ctz(hit);
  }
#elif defined(__AVX__)
  for (const __m256 b = _mm256_set1_ps(best); i + 8 <= n; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), b, _CMP_EQ_OQ));
    if (hit) return i + __builtin_ctz(hit);
  }
#endif
  for (; i < n; i++)
    if (x[i] == best) return i;
  return 0;  // every value is -inf
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
#if defined(ET_BF16_DOT)
#define ET_LINEAR_BF16 linear_bf16_dot
#else
#define ET_LINEAR_BF16 linear_bf16
#endif
#if defined(ET_I8_DOT)
#define ET_LINEAR_I8_GROUPS linear_i8_dot
#else
#define ET_LINEAR_I8_GROUPS nullptr
#endif
const Kernels ET_KERNELS_NAME = {ET_KERNELS_ISA, linear, ET_LINEAR_BF16, linear_f16, linear_i8, rms_norm, rope, attend, silu_mul, add, argmax, logsumexp, ET_LINEAR_I8_GROUPS};

}  // namespace et::cpu
