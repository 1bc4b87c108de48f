// cpu_kernels_attend.h — attention of a few query heads over a list of cache slots: scores, softmax weights, values.
// Part of the kernels' code: included by cpu_kernels_impl.h only (see there).
// The cache holds keys and values in blocks of 16 slots (cpu_kernels.h), so both products run across slots:
// 16 slots' same dimension are one load (or a copy where the slots are not a whole block), times one query's
// dimension for the scores, or times 16 slots' softmax weights for the values; and a row's reads of one
// head's slots are one contiguous run a block.
#pragma once
#include "cpu_kernels_vec.h"

namespace et::cpu {
namespace {

constexpr int64_t SPAN = 16;         // slots per vector step, on every ISA (16 / LN registers)
constexpr int PARTS = SPAN / LN;

typedef int32_t vin __attribute__((vector_size(LN * 4)));

// row[0 .. count) (count <= SPAN) as PARTS registers, zero in the lanes past count (the loads read all
// SPAN floats: the rest of a cache block, or of the scratch)
inline void run_part(const float* row, int64_t count, vn* out) {
  for (int i = 0; i < PARTS; i++) {
    const vn v = loadn(row + i * LN);
    vin lane;
    for (int l = 0; l < LN; l++) lane[l] = i * LN + l;
    out[i] = lane < int32_t(count) ? v : vn{};
  }
}

// A key/value head's slots in blocks of SPAN: slot s's block at base + (s / SPAN) * stride, its dimension
// k's SPAN floats at + k * SPAN (lane s mod SPAN). The cache is laid out so; so is a copy of a list's rest.
struct Blocks {
  const float* base;
  int64_t stride;
  const float* at(int64_t s) const { return base + s / SPAN * stride; }
};

// The slots of a key list from `first` on (those after its last whole block of consecutive slots: tree
// slots, the last few). Where they are consecutive too, from the start of a block (a plain step, a chain's
// first row), the loops read them from the cache itself, a block cut short (its other lanes dropped);
// otherwise (`copied`) from a copy of `width` slots (a multiple of SPAN, zero past the slots) in blocks.
struct Rest {
  int64_t first, width;
  bool copied;
};

inline Rest rest_of(const int32_t* keys, int64_t m) {
  int64_t t = 0;
  while (t + SPAN <= m && keys[t] % SPAN == 0 && keys[t + SPAN - 1] == keys[t] + int32_t(SPAN - 1)) t += SPAN;
  const bool consecutive = t == m || (keys[t] % SPAN == 0 && keys[m - 1] == keys[t] + int32_t(m - 1 - t));
  return {t, (m - t + SPAN - 1) / SPAN * SPAN, !consecutive};
}

// list position t's block: the cache's where t is before the rest or the rest is read in place, else the copy's
inline const float* span_at(Blocks cache, Blocks rest, const int32_t* keys, Rest r, int64_t t) {
  return t >= r.first && r.copied ? rest.at(t - r.first) : cache.at(keys[t]);
}

inline void copy_rest(Blocks cache, int64_t d, const int32_t* keys, int64_t m, Rest r, float* dst) {
  const int64_t count = m - r.first;
  for (int64_t l = 0; l < r.width; l++) {
    float* to = dst + l / SPAN * d * SPAN + l % SPAN;
    if (l < count) {
      const int32_t slot = keys[r.first + l];
      const float* from = cache.at(slot) + slot % SPAN;
      for (int64_t k = 0; k < d; k++) to[k * SPAN] = from[k * SPAN];
    } else {
      for (int64_t k = 0; k < d; k++) to[k * SPAN] = 0.0f;
    }
  }
}

// scores of NQ query heads (rows of d floats, d apart) for the NB blocks `span`; the first `count` of each
// head are stored (head c at scores + c * m): each score one fused multiply-add chain over the dimensions
// from 0, in its lane, times scale. The heads share each load of the keys; NQ * NB * PARTS chains are in
// flight.
template <int NQ, int NB>
inline void scores_spans(const float* q, int64_t d, const float* const* span, int64_t count, float scale,
                         float* scores, int64_t m) {
  vn acc[NQ][NB * PARTS] = {};
  for (int64_t k = 0; k < d; k++) {
    vn key[NB * PARTS];
    for (int b = 0; b < NB; b++)
      for (int i = 0; i < PARTS; i++) key[b * PARTS + i] = loadn(span[b] + k * SPAN + i * LN);
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

// scores of NQ heads over all m slots: the blocks before r.first from the cache, the rest from the cache
// or its copy (a score's bits do not depend on which, nor on NQ)
template <int NQ>
inline void scores_heads(const float* q, Blocks cache, Blocks rest, int64_t d, const int32_t* keys, int64_t m,
                         Rest r, float scale, float* scores) {
  constexpr int NB = 8 / (PARTS * NQ) > 0 ? 8 / (PARTS * NQ) : 1;  // 8 accumulators
  int64_t t = 0;
  for (; t + NB * SPAN <= r.first; t += NB * SPAN) {
    const float* span[NB];
    for (int b = 0; b < NB; b++) span[b] = cache.at(keys[t + b * SPAN]);
    scores_spans<NQ, NB>(q, d, span, NB * SPAN, scale, scores + t, m);
  }
  for (; t < m; t += SPAN) {
    const float* span[1] = {span_at(cache, rest, keys, r, t)};
    scores_spans<NQ, 1>(q, d, span, m - t < SPAN ? m - t : SPAN, scale, scores + t, m);
  }
}

// scores[c*m + t] = (q_c . key keys[t]) * scale for the nq query heads q_c (rows of d floats), two at a time
inline void attend_scores(const float* q, int64_t nq, Blocks cache, Blocks rest, int64_t d, const int32_t* keys,
                          int64_t m, Rest r, float scale, float* scores) {
  int64_t c = 0;
  for (; c + 2 <= nq; c += 2) scores_heads<2>(q + c * d, cache, rest, d, keys, m, r, scale, scores + c * m);
  if (c < nq) scores_heads<1>(q + c * d, cache, rest, d, keys, m, r, scale, scores + c * m);
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

#if defined(__AVX512F__)
// Sixteen accumulators' hsum16 at once, halving them side by side: each step adds the same lanes hsum16 does,
// with two, four, eight, then sixteen accumulators a vector (15 adds and 31 shuffles instead of 16 x 4 adds
// and shuffles). Step 1: lane l + lane l + 8, x's in the low half and y's in the high.
inline vn add_halves(vn x, vn y) {
  return __builtin_shufflevector(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
         __builtin_shufflevector(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
}
// step 2, + lane l + 4: quarter q of the result holds accumulator q of x's two and y's two
inline vn add_quarters(vn x, vn y) {
  return __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
         __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
}
// step 3, + lane l + 2: quarter q holds x's accumulator q, then y's
inline vn add_pairs(vn x, vn y) {
  return __builtin_shufflevector(x, y, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
         __builtin_shufflevector(x, y, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
}
// step 4, + lane l + 1: lane 4q + i holds accumulator q + 4i
inline vn add_neighbours(vn x, vn y) {
  return __builtin_shufflevector(x, y, 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30) +
         __builtin_shufflevector(x, y, 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31);
}
inline vn hsum16_of16(vn a0, vn a1, vn a2, vn a3, vn a4, vn a5, vn a6, vn a7, vn a8, vn a9, vn a10, vn a11, vn a12,
                      vn a13, vn a14, vn a15) {
  const vn f = add_neighbours(add_pairs(add_quarters(add_halves(a0, a1), add_halves(a2, a3)),
                                         add_quarters(add_halves(a4, a5), add_halves(a6, a7))),
                               add_pairs(add_quarters(add_halves(a8, a9), add_halves(a10, a11)),
                                         add_quarters(add_halves(a12, a13), add_halves(a14, a15))));
  return __builtin_shufflevector(f, f, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);  // back in order
}
#elif defined(__AVX__)
// The same for four accumulators of two 8-lane parts (step 1: part 0 + part 1). Step 2, + lane l + 4: x's in
// the low half, y's in the high.
inline v8 add_quarters(v8 x, v8 y) {
  return __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15);
}
// step 3, + lane l + 2: each half holds its x accumulator, then its y one
inline v8 add_pairs(v8 x, v8 y) {
  return __builtin_shufflevector(x, y, 0, 1, 8, 9, 4, 5, 12, 13) +
         __builtin_shufflevector(x, y, 2, 3, 10, 11, 6, 7, 14, 15);
}
// the four sums, in order, in the low half
inline v8 hsum16_of4(const vn* a0, const vn* a1, const vn* a2, const vn* a3) {
  const v8 p = add_pairs(add_quarters(a0[0] + a0[1], a1[0] + a1[1]), add_quarters(a2[0] + a2[1], a3[0] + a3[1]));
  const v8 f = __builtin_shufflevector(p, p, 0, 2, 4, 6, 0, 2, 4, 6) +
               __builtin_shufflevector(p, p, 1, 3, 5, 7, 1, 3, 5, 7);  // + lane l + 1
  return __builtin_shufflevector(f, f, 0, 2, 1, 3, 4, 6, 5, 7);
}
#endif

// Values, in blocks like the keys. out_c[k] = inv_c * sum_t p_c[t] v[k][keys[t]]: list position t goes into
// lane t mod 16 of (head c, dimension k)'s accumulator, one chain a lane, block after block, and the lanes
// are added as hsum16 (so a value's bits depend only on the list, not on where its slots are). NQ heads x DB
// dimensions at `dim` a pass, their accumulators in registers: the heads share each load of a value row, the
// dimensions each load of p. A block cut short counts zeros past its count (whatever the cache or the
// scratch holds there).
template <int NQ, int DB>
inline void values_block(const float* p, int64_t m, const float* inv, Blocks cache, Blocks rest,
                         const int32_t* keys, Rest r, int64_t dim, float* out, int64_t d) {
  vn acc[NQ * DB][PARTS];
#pragma GCC unroll 16
  for (int a = 0; a < NQ * DB; a++)
#pragma GCC unroll 4
    for (int i = 0; i < PARTS; i++) acc[a][i] = vn{};
  for (int64_t t = 0; t < m; t += SPAN) {
    const int64_t count = m - t < SPAN ? m - t : SPAN;
    const float* span = span_at(cache, rest, keys, r, t);
    vn w[NQ][PARTS];
    for (int c = 0; c < NQ; c++) {
      if (count == SPAN)
        for (int i = 0; i < PARTS; i++) w[c][i] = loadn(p + c * m + t + i * LN);
      else
        run_part(p + c * m + t, count, w[c]);
    }
#pragma GCC unroll 16
    for (int k = 0; k < DB; k++) {
      const float* row = span + (dim + k) * SPAN;
      vn v[PARTS];
      if (count == SPAN)
        for (int i = 0; i < PARTS; i++) v[i] = loadn(row + i * LN);
      else
        run_part(row, count, v);
      for (int c = 0; c < NQ; c++)
        for (int i = 0; i < PARTS; i++) acc[c * DB + k][i] += w[c][i] * v[i];
    }
  }
  float sum[NQ * DB], scale[NQ * DB];
#if defined(__AVX512F__)
  if constexpr (NQ * DB == 16) {
    storen(sum, hsum16_of16(acc[0][0], acc[1][0], acc[2][0], acc[3][0], acc[4][0], acc[5][0], acc[6][0], acc[7][0],
                            acc[8][0], acc[9][0], acc[10][0], acc[11][0], acc[12][0], acc[13][0], acc[14][0],
                            acc[15][0]));
  } else
#elif defined(__AVX__)
  if constexpr (NQ * DB == 4) {
    const v8 f = hsum16_of4(acc[0], acc[1], acc[2], acc[3]);
    for (int a = 0; a < 4; a++) sum[a] = f[a];
  } else
#endif
  {
    for (int a = 0; a < NQ * DB; a++) sum[a] = hsum16(acc[a]);
  }
  for (int c = 0; c < NQ; c++)
    for (int k = 0; k < DB; k++) scale[c * DB + k] = inv[c];
  if (d == DB) {  // the heads' rows adjacent in out: one run
    for (int a = 0; a < NQ * DB; a++) out[a] = sum[a] * scale[a];
    return;
  }
  for (int c = 0; c < NQ; c++)
    for (int k = 0; k < DB; k++) out[c * d + dim + k] = sum[c * DB + k] * scale[c * DB + k];
}

// accumulators of 16 lanes a pass keeps in registers: half the ISA's registers on AVX-512 (of 32), a
// quarter on the others (of 16), the rest for the weights and values
constexpr int VALUE_ACC = LN == 16 ? 16 : LN == 8 ? 4 : 2;

// NQ heads' values over every dimension: VALUE_ACC / NQ at a time, then one at a time
template <int NQ>
inline void values_heads(const float* p, int64_t m, const float* inv, Blocks cache, Blocks rest, int64_t d,
                         const int32_t* keys, Rest r, float* out) {
  constexpr int DB = VALUE_ACC / NQ > 0 ? VALUE_ACC / NQ : 1;
  const int64_t whole = d / DB * DB;
  for (int64_t k = 0; k < whole; k += DB) values_block<NQ, DB>(p, m, inv, cache, rest, keys, r, k, out, d);
  for (int64_t k = whole; k < d; k++) values_block<NQ, 1>(p, m, inv, cache, rest, keys, r, k, out, d);
}

// out_c = softmax weights p_c (nq rows of m, summing to sum_c) times the values; the heads two at a time
// where a head is narrow (their loads of v shared), one at a time where it is wide
inline void attend_values(const float* p, int64_t nq, const float* sums, Blocks cache, Blocks rest, int64_t d,
                          const int32_t* keys, int64_t m, Rest r, float* out) {
  float inv[2];
  int64_t c = 0;
  if (d < 16) {
    for (; c + 2 <= nq; c += 2) {
      inv[0] = 1.0f / sums[c], inv[1] = 1.0f / sums[c + 1];
      values_heads<2>(p + c * m, m, inv, cache, rest, d, keys, r, out + c * d);
    }
  }
  for (; c < nq; c++) {
    inv[0] = 1.0f / sums[c];
    values_heads<1>(p + c * m, m, inv, cache, rest, d, keys, r, out + c * d);
  }
}

template <int DIM>
void attend_dim(const float* q, int64_t nkv, int64_t nq, const float* kb, const float* vb, int64_t hstride,
                int64_t d_runtime, const int32_t* keys, int64_t m, float scale, float* scratch, float* out) {
  const int64_t d = DIM ? DIM : d_runtime, rows = nkv * nq;
  const Rest r = rest_of(keys, m);  // the same slots for every head
  float* scores = scratch;
  float* sums = scores + rows * m;
  float* copy = sums + rows;
  const Blocks rest{copy, d * SPAN};
  for (int64_t j = 0; j < nkv; j++) {  // head j's keys, then its scores (its copy of the rest, if any, reused)
    const Blocks cache{kb + j * hstride, d * SPAN};
    if (r.copied) copy_rest(cache, d, keys, m, r, copy);
    attend_scores(q + j * nq * d, nq, cache, rest, d, keys, m, r, scale, scores + j * nq * m);
  }
  int64_t c = 0;  // every head's rows side by side, four at a time: their chains overlap
  for (; c + 4 <= rows; c += 4) softmax_rows<4>(scores + c * m, m, sums + c);
  if (c + 2 <= rows) softmax_rows<2>(scores + c * m, m, sums + c), c += 2;
  if (c < rows) softmax_rows<1>(scores + c * m, m, sums + c);
  for (int64_t j = 0; j < nkv; j++) {  // head j's values (its copy of the rest made again, over the keys')
    const Blocks cache{vb + j * hstride, d * SPAN};
    if (r.copied) copy_rest(cache, d, keys, m, r, copy);
    attend_values(scores + j * nq * m, nq, sums + j * nq, cache, rest, d, keys, m, r, out + j * nq * d);
  }
}

void attend(const float* q, int64_t nkv, int64_t nq, const float* kb, const float* vb, int64_t hstride, int64_t d,
            const int32_t* keys, int64_t m, float scale, float* scratch, float* out) {
  switch (d) {
    case 8: return attend_dim<8>(q, nkv, nq, kb, vb, hstride, d, keys, m, scale, scratch, out);
    case 16: return attend_dim<16>(q, nkv, nq, kb, vb, hstride, d, keys, m, scale, scratch, out);
    case 32: return attend_dim<32>(q, nkv, nq, kb, vb, hstride, d, keys, m, scale, scratch, out);
    case 64: return attend_dim<64>(q, nkv, nq, kb, vb, hstride, d, keys, m, scale, scratch, out);
    case 128: return attend_dim<128>(q, nkv, nq, kb, vb, hstride, d, keys, m, scale, scratch, out);
    default: return attend_dim<0>(q, nkv, nq, kb, vb, hstride, d, keys, m, scale, scratch, out);
  }
}

}  // namespace
}  // namespace et::cpu
