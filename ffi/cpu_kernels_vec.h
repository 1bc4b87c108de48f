// cpu_kernels_vec.h — the vector types (the ISA's own width vn, 8-lane v8), loads, lane sums, dot products, exp and max.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

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
inline void storen(float* p, vn v) { __builtin_memcpy(p, &v, sizeof v); }
// x in every lane (one broadcast; `vn{} + x` would add 0 first)
inline vn splat(float x) {
#if defined(__AVX512F__)
  return vn{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
#elif defined(__AVX__)
  return vn{x, x, x, x, x, x, x, x};
#else
  return vn{x, x, x, x};
#endif
}
inline v8 load8(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, v8 v) { __builtin_memcpy(p, &v, sizeof v); }
inline v8 splat8(float x) { return v8{x, x, x, x, x, x, x, x}; }

// the first `count` (< 8) floats at p in a vector, the rest zero; and back. Masked loads and stores where the
// ISA has them: nothing past the count is read or written (a loop over the floats compiles to a call).
#if defined(__AVX512F__)
inline __mmask16 first_lanes(int64_t count) { return __mmask16((1u << count) - 1); }
inline v8 load_part(const float* p, int64_t count) {
  const vn v = vn(_mm512_maskz_loadu_ps(first_lanes(count), p));
  return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
}
inline void store_part(float* p, v8 v, int64_t count) {
  _mm512_mask_storeu_ps(p, first_lanes(count), _mm512_castps256_ps512(__m256(v)));
}
#elif defined(__AVX__)
inline __m256i first_lanes(int64_t count) {
  const vi8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  return __m256i(lane < int32_t(count));
}
inline v8 load_part(const float* p, int64_t count) { return v8(_mm256_maskload_ps(p, first_lanes(count))); }
inline void store_part(float* p, v8 v, int64_t count) { _mm256_maskstore_ps(p, first_lanes(count), __m256(v)); }
#else
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
#endif

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

// e^x for x <= 0 or NaN (every caller's argument: a score less the largest, or SiLU's -|g|; nothing clamps
// it from above), Cephes-style: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n by
// building the exponent bits. Relative error ~2e-7. Any width (V float lanes, VI as many int32 lanes): each
// lane's bits are the same at every width. exp_parts: for x already clamped to >= -87, n and e^r.
template <typename V>
inline V exp_parts(V x, V* n) {
  const V magic = V{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  *n = (x * 1.44269504088896341f + magic) - magic;
  V r = x - *n * 0.693359375f;
  r = r + *n * 2.12194440e-4f;
  V p = V{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

template <typename V, typename VI>
inline V expv(V x) {
  const V lo = V{} - 87.0f;
  V n;
  const V p = exp_parts(x < lo ? lo : x, &n);
  const VI scale = (__builtin_convertvector(n, VI) + 127) << 23;  // 2^n (n >= -126 after the clamp)
  return p * reinterpret_cast<V>(scale);
}
inline v8 exp8(v8 x) { return expv<v8, vi8>(x); }

// e^x over the ISA's width (vn: 16 lanes on AVX-512), lane for lane what exp8 gives. On AVX-512 the same
// steps in fewer instructions: the clamp one maximum (NaN stays: the maximum returns its second operand
// then), and 2^n times the polynomial one scalef (exact, as the product by 2^n built from its bits is, for
// the n >= -126 that the clamp leaves; checked for every float in [-104, 0]).
typedef int32_t vin_exp __attribute__((vector_size(LN * 4)));
#if defined(__AVX512F__)
inline vn expn(vn x) {
  vn n;
  const vn p = exp_parts(vn(_mm512_maskz_max_ps(0xffff, _mm512_set1_ps(-87.0f), __m512(x))), &n);  // maskz: no GCC 12 warning
  return vn(_mm512_maskz_scalef_ps(0xffff, __m512(p), __m512(n)));
}
#else
inline vn expn(vn x) { return expv<vn, vin_exp>(x); }
#endif

#if defined(__AVX512F__)
// a 16-lane vector's two 8-lane halves
inline void halves(vn v, v8* lo, v8* hi) {
  *lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  *hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
}
#endif

#if defined(__AVX512F__)
// the largest of 16 lanes, none NaN, by halving
inline float lanes_max(vn v) {
  v8 lo, hi;
  halves(v, &lo, &hi);
  lo = hi > lo ? hi : lo;
  v4 q = __builtin_shufflevector(lo, lo, 0, 1, 2, 3), r = __builtin_shufflevector(lo, lo, 4, 5, 6, 7);
  q = r > q ? r : q;
  const float a = q[0] > q[1] ? q[0] : q[1], b = q[2] > q[3] ? q[2] : q[3];
  return a > b ? a : b;
}
#endif

// the largest of each of H rows x + c * stride, [0..n) (a maximum is exact in any order: 16 lanes at a time and
// a masked rest on AVX-512, 8 lanes and the rest one by one elsewhere; the rows side by side, each its own
// steps); *nan tells whether any is NaN (no NaN is ever the largest)
#if defined(__AVX512F__)
template <int H>
inline void max_rows(const float* x, int64_t stride, int64_t n, float* best, bool* nan) {
  __m512 b[H];
  for (int c = 0; c < H; c++) b[c] = _mm512_set1_ps(-INFINITY);
  __mmask16 odd = 0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int c = 0; c < H; c++) {
      const __m512 v = _mm512_loadu_ps(x + c * stride + i);
      b[c] = _mm512_maskz_max_ps(0xffff, v, b[c]);  // a NaN v gives b (the second operand; maskz: no GCC 12 warning)
      odd |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
  if (i < n)
    for (int c = 0; c < H; c++) {
      const __m512 v = _mm512_mask_loadu_ps(b[c], first_lanes(n - i), x + c * stride + i);
      b[c] = _mm512_maskz_max_ps(0xffff, v, b[c]);
      odd |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
  *nan = odd != 0;
  for (int c = 0; c < H; c++) best[c] = lanes_max(vn(b[c]));
}
#else
template <int H>
inline void max_rows(const float* x, int64_t stride, int64_t n, float* best, bool* nan) {
  const int64_t whole = n & ~int64_t(7);
  v8 best8[H];
  for (int c = 0; c < H; c++) best8[c] = v8{} - INFINITY;
  vi8 odd = {};
  for (int64_t i = 0; i < whole; i += 8)
    for (int c = 0; c < H; c++) {
      const v8 v = load8(x + c * stride + i);
      best8[c] = v > best8[c] ? v : best8[c];
      odd |= v != v;
    }
  bool any = false;
  for (int l = 0; l < 8; l++) any |= odd[l] != 0;
  for (int c = 0; c < H; c++) {
    const float* row = x + c * stride;
    float most = -INFINITY;
    for (int l = 0; l < 8; l++) most = best8[c][l] > most ? best8[c][l] : most;
    for (int64_t i = whole; i < n; i++) {
      any |= row[i] != row[i];
      most = row[i] > most ? row[i] : most;
    }
    best[c] = most;
  }
  *nan = any;
}
#endif

inline float max_of(const float* x, int64_t n, bool* nan) {
  float best;
  max_rows<1>(x, 0, n, &best, nan);
  return best;
}

// A per-thread scratch buffer, grown as needed and kept (a product is called per layer): the inputs as the
// dot-product instructions take them
struct ThreadBuffer {
  void* mem = nullptr;
  int64_t capacity = 0;
  void* at_least(int64_t bytes) {
    if (bytes > capacity) {
      void* grown = realloc(mem, size_t(bytes));
      if (!grown) abort();  // (a few MiB at most; the forward's own buffers are far larger)
      mem = grown;
      capacity = bytes;
    }
    return mem;
  }
};

}  // namespace
}  // namespace et::cpu
