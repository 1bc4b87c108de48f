// cpu_kernels_attend.h — attention of a few query heads over a list of cache slots: scores, softmax weights, values.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
#pragma once
#include "cpu_kernels_vec.h"

namespace et::cpu {
namespace {

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


}  // namespace
}  // namespace et::cpu
