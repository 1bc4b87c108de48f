// cpu_kernels_attend.h — attention of a few query heads over a list of cache slots: scores, softmax weights, values.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
// The cache holds keys and values transposed (per key/value head, d rows of `cap` floats), so the work runs
// across slots: 16 slots' same dimension are one load (or a gather where the slots are not consecutive).
#pragma once
#include "cpu_kernels_vec.h"

namespace et::cpu {
namespace {

constexpr int64_t SPAN = 16;         // slots per vector step, on every ISA (16 / LN registers)
constexpr int PARTS = SPAN / LN;

typedef int32_t vin __attribute__((vector_size(LN * 4)));

// row[j .. j + count) (count <= SPAN) as PARTS registers, zero in the lanes past count (the loads may read
// up to SPAN - 1 floats past the last, which the caches' padding holds)
inline void run_part(const float* row, int64_t count, vn* out) {
  for (int i = 0; i < PARTS; i++) {
    const vn v = loadn(row + i * LN);
    vin lane;
    for (int l = 0; l < LN; l++) lane[l] = i * LN + l;
    out[i] = lane < int32_t(count) ? v : vn{};
  }
}

// The slots of a key list from `first` on (those after its last whole span of consecutive slots: tree
// slots, the last few), copied into d rows of `width` floats (a multiple of SPAN, zero past the slots) so
// the loops below read them like the cache itself.
struct Rest {
  int64_t first, width;
};

inline Rest rest_of(const int32_t* keys, int64_t m) {
  int64_t t = 0;
  while (t + SPAN <= m && keys[t + SPAN - 1] == keys[t] + int32_t(SPAN - 1)) t += SPAN;
  return {t, (m - t + SPAN - 1) / SPAN * SPAN};
}

inline void copy_rest(const float* cache, int64_t cap, int64_t d, const int32_t* keys, int64_t m, Rest r, float* dst) {
  const int32_t* rk = keys + r.first;
  const int64_t count = m - r.first;
  int64_t lead = 0;  // the rest's first slots, still consecutive (fewer than SPAN): the last few of the run
  while (lead < count && rk[lead] == rk[0] + int32_t(lead)) lead++;
  for (int64_t k = 0; k < d; k++) {
    const float* row = cache + k * cap;
    float* to = dst + k * r.width;
    if (lead > 0) {
      vn v[PARTS];
      run_part(row + rk[0], lead, v);
      for (int i = 0; i < PARTS; i++) __builtin_memcpy(to + i * LN, &v[i], sizeof(vn));
    }
    for (int64_t l = lead; l < count; l++) to[l] = row[rk[l]];  // tree slots, one by one
    for (int64_t l = lead > 0 ? (count > SPAN ? count : SPAN) : count; l < r.width; l++) to[l] = 0.0f;
  }
}

// scores of one query head q (d floats) for NB spans of slots at row[0 ..) of d rows `stride` apart; the
// first `count` are stored: each score one fused multiply-add chain over the dimensions from 0, in its
// lane, times scale; NB spans keep NB * PARTS chains in flight
template <int NB>
inline void scores_spans(const float* q, int64_t d, const float* rows, int64_t stride, int64_t count, float scale,
                         float* scores) {
  vn acc[NB * PARTS] = {};
  for (int64_t k = 0; k < d; k++) {
    const vn qk = vn{} + q[k];
    const float* row = rows + k * stride;
    for (int b = 0; b < NB * PARTS; b++) acc[b] += qk * loadn(row + b * LN);
  }
  float s[NB * SPAN];
  for (int b = 0; b < NB * PARTS; b++) {
    const vn v = acc[b] * scale;
    __builtin_memcpy(s + b * LN, &v, sizeof v);
  }
  for (int64_t l = 0; l < count; l++) scores[l] = s[l];
}

// scores[c*m + t] = (q_c . key keys[t]) * scale for the nq query heads q_c (rows of d floats): the spans
// before r.first from the cache, the rest from its copy (a score's bits do not depend on which)
inline void attend_scores(const float* q, int64_t nq, const float* kt, int64_t cap, int64_t d, const int32_t* keys,
                          int64_t m, Rest r, const float* rest, float scale, float* scores) {
  constexpr int BLOCK = 4;
  int64_t t = 0;
  for (; t + BLOCK * SPAN <= r.first && keys[t + BLOCK * SPAN - 1] == keys[t] + int32_t(BLOCK * SPAN - 1); t += BLOCK * SPAN)
    for (int64_t c = 0; c < nq; c++) scores_spans<BLOCK>(q + c * d, d, kt + keys[t], cap, BLOCK * SPAN, scale, scores + c * m + t);
  for (; t < r.first; t += SPAN)
    for (int64_t c = 0; c < nq; c++) scores_spans<1>(q + c * d, d, kt + keys[t], cap, SPAN, scale, scores + c * m + t);
  for (; t < m; t += SPAN) {
    const int64_t count = m - t < SPAN ? m - t : SPAN;
    for (int64_t c = 0; c < nq; c++) scores_spans<1>(q + c * d, d, rest + (t - r.first), r.width, count, scale, scores + c * m + t);
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

// p[t .. t + count) as PARTS registers, zero past count
inline void weights_span(const float* p, int64_t count, vn* out) {
  if (count == SPAN) {
    for (int i = 0; i < PARTS; i++) out[i] = loadn(p + i * LN);
    return;
  }
  float g[SPAN] = {};
  for (int64_t l = 0; l < count; l++) g[l] = p[l];
  for (int i = 0; i < PARTS; i++) __builtin_memcpy(&out[i], g + i * LN, sizeof(vn));
}

// out[k] = sum_t p_t v[k][keys[t]] * inv for CH dimensions k: per dimension SPAN partial sums (slot t into
// lane t mod SPAN, one chain each), added by hsum16 at the end; the CH dimensions share each load of p.
// vt: the cache's rows of these dimensions; rest: their copies of the slots from r.first
template <int CH>
inline void values_chunk(const float* p, float inv, const float* vt, int64_t cap, const int32_t* keys, int64_t m,
                         Rest r, const float* rest, float* out) {
  vn acc[CH][PARTS] = {};
  for (int64_t t = 0; t < m; t += SPAN) {
    const int64_t count = m - t < SPAN ? m - t : SPAN;
    vn pv[PARTS];
    weights_span(p + t, count, pv);
    const bool cached = t < r.first;
    const float* at = cached ? vt + keys[t] : rest + (t - r.first);
    const int64_t stride = cached ? cap : r.width;
    for (int k = 0; k < CH; k++)
      for (int i = 0; i < PARTS; i++) acc[k][i] += pv[i] * loadn(at + k * stride + i * LN);
  }
  for (int k = 0; k < CH; k++) out[k] = hsum16(acc[k]) * inv;
}

inline void attend_values(const float* p, float sum, const float* vt, int64_t cap, int64_t d, const int32_t* keys,
                          int64_t m, Rest r, const float* rest, float* out) {
  constexpr int CH = 8 / PARTS;  // accumulators: 8 registers on every ISA
  const float inv = 1.0f / sum;
  int64_t k = 0;
  for (; k + CH <= d; k += CH) values_chunk<CH>(p, inv, vt + k * cap, cap, keys, m, r, rest + k * r.width, out + k);
  for (; k < d; k++) values_chunk<1>(p, inv, vt + k * cap, cap, keys, m, r, rest + k * r.width, out + k);
}

template <int DIM>
void attend_dim(const float* q, int64_t nq, const float* kt, const float* vt, int64_t cap, int64_t d_runtime,
                const int32_t* keys, int64_t m, float scale, float* scratch, float* out) {
  const int64_t d = DIM ? DIM : d_runtime;
  const Rest r = rest_of(keys, m);
  float* scores = scratch;
  float* rest_k = scores + nq * m;
  float* rest_v = rest_k + d * r.width;
  copy_rest(kt, cap, d, keys, m, r, rest_k);
  copy_rest(vt, cap, d, keys, m, r, rest_v);
  attend_scores(q, nq, kt, cap, d, keys, m, r, rest_k, scale, scores);
  for (int64_t c = 0; c < nq; c++) {
    float* p = scores + c * m;
    const float sum = softmax_weights(p, m);
    attend_values(p, sum, vt, cap, d, keys, m, r, rest_v, out + c * d);
  }
}

void attend(const float* q, int64_t nq, const float* kt, const float* vt, int64_t cap, int64_t d,
            const int32_t* keys, int64_t m, float scale, float* scores, float* out) {
  switch (d) {
    case 8: return attend_dim<8>(q, nq, kt, vt, cap, d, keys, m, scale, scores, out);
    case 16: return attend_dim<16>(q, nq, kt, vt, cap, d, keys, m, scale, scores, out);
    case 32: return attend_dim<32>(q, nq, kt, vt, cap, d, keys, m, scale, scores, out);
    case 64: return attend_dim<64>(q, nq, kt, vt, cap, d, keys, m, scale, scores, out);
    case 128: return attend_dim<128>(q, nq, kt, vt, cap, d, keys, m, scale, scores, out);
    default: return attend_dim<0>(q, nq, kt, vt, cap, d, keys, m, scale, scores, out);
  }
}

}  // namespace
}  // namespace et::cpu
