// cpu_kernels_attend.h — attention of a few query heads over a list of cache slots: scores, softmax weights, values.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
// The cache holds keys transposed (per key/value head, d rows of `cap` floats), so scores run across slots:
// 16 slots' same dimension are one load (or a copy where the slots are not consecutive); and values slot-
// major (per key/value head, cap rows of d floats), so a slot's weight times its values is one broadcast
// and d / 8 loads, shared by the query heads of the group.
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
// slots, the last few). Where they are consecutive too (a plain step, a chain's first row) the loops read
// them from the cache itself, as a span cut short (its other lanes read the slots after it, or the
// cache's padding, and are dropped); otherwise (`copied`) from a copy in d rows of `width` floats (a
// multiple of SPAN, zero past the slots).
struct Rest {
  int64_t first, width;
  bool copied;
};

inline Rest rest_of(const int32_t* keys, int64_t m) {
  int64_t t = 0;
  while (t + SPAN <= m && keys[t + SPAN - 1] == keys[t] + int32_t(SPAN - 1)) t += SPAN;
  const bool consecutive = t == m || keys[m - 1] == keys[t] + int32_t(m - 1 - t);
  return {t, (m - t + SPAN - 1) / SPAN * SPAN, !consecutive};
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

// scores of NQ query heads (rows of d floats, d apart) for NB spans of slots at rows[0 ..) of d rows `stride`
// apart; the first `count` of each head are stored (head c at scores + c * m): each score one fused
// multiply-add chain over the dimensions from 0, in its lane, times scale. The heads share each load of the
// keys; NQ * NB * PARTS chains are in flight.
template <int NQ, int NB>
inline void scores_spans(const float* q, int64_t d, const float* rows, int64_t stride, int64_t count, float scale,
                         float* scores, int64_t m) {
  vn acc[NQ][NB * PARTS] = {};
  for (int64_t k = 0; k < d; k++) {
    const float* row = rows + k * stride;
    vn key[NB * PARTS];
    for (int b = 0; b < NB * PARTS; b++) key[b] = loadn(row + b * LN);
    for (int c = 0; c < NQ; c++) {
      const vn qk = splat(q[c * d + k]);
      for (int b = 0; b < NB * PARTS; b++) acc[c][b] += qk * key[b];
    }
  }
  if (count == NB * SPAN) {  // whole spans: straight into the scores
    for (int c = 0; c < NQ; c++)
      for (int b = 0; b < NB * PARTS; b++) storen(scores + c * m + b * LN, acc[c][b] * scale);
    return;
  }
#if defined(__AVX512F__)
  if constexpr (NB == 1) {  // one register a head: its first `count` lanes
    for (int c = 0; c < NQ; c++) _mm512_mask_storeu_ps(scores + c * m, first_lanes(count), __m512(acc[c][0] * scale));
    return;
  }
#endif
  for (int c = 0; c < NQ; c++) {
    float s[NB * SPAN];
    for (int b = 0; b < NB * PARTS; b++) storen(s + b * LN, acc[c][b] * scale);
    for (int64_t l = 0; l < count; l++) scores[c * m + l] = s[l];
  }
}

// scores of NQ heads over all m slots: the spans before r.first from the cache, the rest from its copy (a
// score's bits do not depend on which, nor on NQ)
template <int NQ>
inline void scores_heads(const float* q, const float* kt, int64_t cap, int64_t d, const int32_t* keys, int64_t m,
                         Rest r, const float* rest, float scale, float* scores) {
  constexpr int BLOCK = 8 / (PARTS * NQ) > 0 ? 8 / (PARTS * NQ) : 1;  // 8 accumulators
  int64_t t = 0;
  for (; t + BLOCK * SPAN <= r.first && keys[t + BLOCK * SPAN - 1] == keys[t] + int32_t(BLOCK * SPAN - 1); t += BLOCK * SPAN)
    scores_spans<NQ, BLOCK>(q, d, kt + keys[t], cap, BLOCK * SPAN, scale, scores + t, m);
  for (; t < r.first; t += SPAN) scores_spans<NQ, 1>(q, d, kt + keys[t], cap, SPAN, scale, scores + t, m);
  for (; t < m; t += SPAN) {
    const int64_t count = m - t < SPAN ? m - t : SPAN;
    if (r.copied) scores_spans<NQ, 1>(q, d, rest + (t - r.first), r.width, count, scale, scores + t, m);
    else scores_spans<NQ, 1>(q, d, kt + keys[t], cap, count, scale, scores + t, m);
  }
}

// scores[c*m + t] = (q_c . key keys[t]) * scale for the nq query heads q_c (rows of d floats), two at a time
inline void attend_scores(const float* q, int64_t nq, const float* kt, int64_t cap, int64_t d, const int32_t* keys,
                          int64_t m, Rest r, const float* rest, float scale, float* scores) {
  int64_t c = 0;
  for (; c + 2 <= nq; c += 2) scores_heads<2>(q + c * d, kt, cap, d, keys, m, r, rest, scale, scores + c * m);
  if (c < nq) scores_heads<1>(q + c * d, kt, cap, d, keys, m, r, rest, scale, scores + c * m);
}

// H rows of scores in place (row c at sc + c * m) -> exp(score - the row's max); sums[c] = row c's sum: 8-lane
// partial sums over chunks of 8, the last one padded with zeros, then added across (on AVX-512 two chunks at
// a time, as two halves in order, the last 1-15 scores in one masked vector; the same bits). The rows go side
// by side, each its own steps: its bits do not depend on H.
template <int H>
inline void softmax_rows(float* sc, int64_t m, float* sums) {
  bool nan = false;
  float best[H];
  max_rows<H>(sc, m, m, best, &nan);
  v8 sum8[H];
  for (int c = 0; c < H; c++) sum8[c] = v8{};
  int64_t t = 0;
#if defined(__AVX512F__)
  for (; t + 16 <= m; t += 16)
    for (int c = 0; c < H; c++) {
      float* at = sc + c * m + t;
      const vn e = expn(loadn(at) - best[c]);
      storen(at, e);
      v8 lo, hi;
      halves(e, &lo, &hi);
      sum8[c] += lo;
      sum8[c] += hi;
    }
  if (t < m) {
    const __mmask16 left = first_lanes(m - t);
    for (int c = 0; c < H; c++) {
      float* at = sc + c * m + t;
      const vn e = vn(_mm512_maskz_mov_ps(left, __m512(expn(vn(_mm512_maskz_loadu_ps(left, at)) - best[c]))));
      _mm512_mask_storeu_ps(at, left, __m512(e));
      v8 lo, hi;
      halves(e, &lo, &hi);
      sum8[c] += lo;
      sum8[c] += hi;  // (zeros past m: the sums keep their bits)
    }
  }
#else
  for (; t + 8 <= m; t += 8)
    for (int c = 0; c < H; c++) {
      float* at = sc + c * m + t;
      const v8 e = exp8(load8(at) - best[c]);
      store8(at, e);
      sum8[c] += e;
    }
  if (t < m) {
    const vi8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int c = 0; c < H; c++) {
      float* at = sc + c * m + t;
      const v8 e = lane < int32_t(m - t) ? exp8(load_part(at, m - t) - best[c]) : v8{};
      store_part(at, e, m - t);
      sum8[c] += e;
    }
  }
#endif
  for (int c = 0; c < H; c++) sums[c] = hsum8(sum8[c]);
}

// Values, slot-major (a slot's d floats contiguous). out_c[k] = inv_c * sum_t p_c[t] v[keys[t]][k] for NQ
// heads and the DV 8-float chunks of dimensions at `dim`: the slot at list position t goes into partial sum
// t mod 4 (one chain each), and the four are added as (s0 + s1) + (s2 + s3); the heads share each load of v.
constexpr int VPART = 4;

template <int NQ, int DV>
inline void values_rows(const float* p, int64_t m, const float* inv, const float* vs, int64_t d, const int32_t* keys,
                        int64_t dim, float* out) {
  v8 acc[VPART][NQ][DV] = {};
  int64_t t = 0;
  for (; t + VPART <= m; t += VPART)
    for (int u = 0; u < VPART; u++) {
      const float* row = vs + int64_t(keys[t + u]) * d + dim;
      v8 v[DV];
      for (int j = 0; j < DV; j++) v[j] = load8(row + 8 * j);
      for (int c = 0; c < NQ; c++) {
        const v8 w = splat8(p[c * m + t + u]);
        for (int j = 0; j < DV; j++) acc[u][c][j] += w * v[j];
      }
    }
  for (int u = 0; t < m; t++, u++) {
    const float* row = vs + int64_t(keys[t]) * d + dim;
    for (int c = 0; c < NQ; c++) {
      const v8 w = splat8(p[c * m + t]);
      for (int j = 0; j < DV; j++) acc[u][c][j] += w * load8(row + 8 * j);
    }
  }
  for (int c = 0; c < NQ; c++)
    for (int j = 0; j < DV; j++) {
      const v8 sum = (acc[0][c][j] + acc[1][c][j]) + (acc[2][c][j] + acc[3][c][j]);
      store8(out + c * d + dim + 8 * j, sum * inv[c]);
    }
}

// the same for one dimension (the last d mod 8), in scalars
inline void values_scalar(const float* p, int64_t m, float inv, const float* vs, int64_t d, const int32_t* keys,
                          int64_t k, float* out) {
  float acc[VPART] = {};
  for (int64_t t = 0; t < m; t++) acc[t % VPART] += p[t] * vs[int64_t(keys[t]) * d + k];
  out[k] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) * inv;
}

// NQ heads' values over every dimension: chunks of 16, then 8, then single dimensions
template <int NQ>
inline void values_heads(const float* p, int64_t m, const float* inv, const float* vs, int64_t d, const int32_t* keys,
                         float* out) {
  int64_t k = 0;
  if constexpr (NQ == 1) {
    for (; k + 16 <= d; k += 16) values_rows<1, 2>(p, m, inv, vs, d, keys, k, out);
  }
  for (; k + 8 <= d; k += 8) values_rows<NQ, 1>(p, m, inv, vs, d, keys, k, out);
  for (; k < d; k++)
    for (int c = 0; c < NQ; c++) values_scalar(p + c * m, m, inv[c], vs, d, keys, k, out + c * d);
}

// out_c = softmax weights p_c (nq rows of m, summing to sum_c) times the values; the heads two at a time
// where a head is narrow (their loads of v shared), one at a time where it is wide
inline void attend_values(const float* p, int64_t nq, const float* sums, const float* vs, int64_t d,
                          const int32_t* keys, int64_t m, float* out) {
  float inv[2];
  int64_t c = 0;
  if (d < 16) {
    for (; c + 2 <= nq; c += 2) {
      inv[0] = 1.0f / sums[c], inv[1] = 1.0f / sums[c + 1];
      values_heads<2>(p + c * m, m, inv, vs, d, keys, out + c * d);
    }
  }
  for (; c < nq; c++) {
    inv[0] = 1.0f / sums[c];
    values_heads<1>(p + c * m, m, inv, vs, d, keys, out + c * d);
  }
}

template <int DIM>
void attend_dim(const float* q, int64_t nkv, int64_t nq, const float* kt, const float* vs, int64_t cap, int64_t d_runtime,
                const int32_t* keys, int64_t m, float scale, float* scratch, float* out) {
  const int64_t d = DIM ? DIM : d_runtime, rows = nkv * nq;
  const Rest r = rest_of(keys, m);  // the same slots for every head
  float* scores = scratch;
  float* sums = scores + rows * m;
  float* rest_k = sums + rows;
  for (int64_t j = 0; j < nkv; j++) {  // head j's keys, then its scores (its copy of the rest, if any, reused)
    const float* kj = kt + j * d * cap;
    if (r.copied) copy_rest(kj, cap, d, keys, m, r, rest_k);
    attend_scores(q + j * nq * d, nq, kj, cap, d, keys, m, r, rest_k, scale, scores + j * nq * m);
  }
  int64_t c = 0;  // every head's rows side by side, four at a time: their chains overlap
  for (; c + 4 <= rows; c += 4) softmax_rows<4>(scores + c * m, m, sums + c);
  if (c + 2 <= rows) softmax_rows<2>(scores + c * m, m, sums + c), c += 2;
  if (c < rows) softmax_rows<1>(scores + c * m, m, sums + c);
  for (int64_t j = 0; j < nkv; j++)
    attend_values(scores + j * nq * m, nq, sums + j * nq, vs + j * cap * d, d, keys, m, out + j * nq * d);
}

void attend(const float* q, int64_t nkv, int64_t nq, const float* kt, const float* vs, int64_t cap, int64_t d,
            const int32_t* keys, int64_t m, float scale, float* scores, float* out) {
  switch (d) {
    case 8: return attend_dim<8>(q, nkv, nq, kt, vs, cap, d, keys, m, scale, scores, out);
    case 16: return attend_dim<16>(q, nkv, nq, kt, vs, cap, d, keys, m, scale, scores, out);
    case 32: return attend_dim<32>(q, nkv, nq, kt, vs, cap, d, keys, m, scale, scores, out);
    case 64: return attend_dim<64>(q, nkv, nq, kt, vs, cap, d, keys, m, scale, scores, out);
    case 128: return attend_dim<128>(q, nkv, nq, kt, vs, cap, d, keys, m, scale, scores, out);
    default: return attend_dim<0>(q, nkv, nq, kt, vs, cap, d, keys, m, scale, scores, out);
  }
}

}  // namespace
}  // namespace et::cpu
