// cpu_forward.cpp — the float32 CPU forward on raw pointers through the kernels of cpu_kernels.h: no
// per-op dispatch, no repacking of the weights for the skinny products of decoding, one fixed summation
// order per output element. A bfloat16 or float16 model runs here too: its products' weights stay 16-bit
// (half the bytes a step reads), everything else (norms, biases, activations, caches, outputs) is float32,
// so it computes what the float32 forward computes on the same weights, bit for bit. The math is
// forward.cpp's, which still serves CUDA and ET_CPU_KERNELS=0. Shapes: n new tokens, L = len + n slots, H heads, Hkv key/value heads, G = H / Hkv,
// D head_dim, h hidden, I intermediate.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "cpu_kernels.h"
#include "cpu_step.h"
#include "shim.h"

namespace et {

namespace cpu {

const Kernels& kernels() {
  static const Kernels* chosen = [] {
    const char* want = std::getenv("ET_CPU_ISA");
    const std::string w = want ? want : "";
#if defined(__x86_64__)
    // both tables also convert float16 weights with F16C instructions
    const bool f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
    const bool has512 = __builtin_cpu_supports("avx512f") && f16c;
    const bool has2 = __builtin_cpu_supports("avx2") && f16c;
    const bool hasbf16 = has512 && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vnni");
    if (w == "avx512bf16" && hasbf16) return &avx512bf16_kernels;
    if (w == "avx512" && has512) return &avx512_kernels;
    if (w == "avx2" && has2) return &avx2_kernels;
    if (w == "generic") return &generic_kernels;
    if (hasbf16) return &avx512bf16_kernels;
    if (has512) return &avx512_kernels;
    if (has2) return &avx2_kernels;
#endif
    return &generic_kernels;
  }();
  return *chosen;
}

}  // namespace cpu

namespace {

using torch::Tensor;

const float* f32(const Tensor& t) {
  if (!t.defined()) return nullptr;
  TORCH_CHECK(t.is_contiguous() && t.scalar_type() == torch::kFloat32, "cpu kernels need contiguous float32 weights");
  return t.data_ptr<float>();
}

// everything the kernels make (caches, hidden states, logits) is float32, whatever the weights' dtype
torch::TensorOptions f32_options(const Model& m) { return m.opts.dtype(torch::kFloat32); }

// token t's embedding row into dst (h floats): float32 as stored, or bfloat16 / float16 widened exactly
void embed_row(const Tensor& table, int32_t t, int64_t h, float* dst) {
  TORCH_CHECK(table.is_contiguous(), "cpu kernels need a contiguous embedding table");
  const auto type = table.scalar_type();
  if (type == torch::kFloat32) {
    std::memcpy(dst, table.data_ptr<float>() + int64_t(t) * h, h * sizeof(float));
    return;
  }
  TORCH_CHECK(type == torch::kBFloat16 || type == torch::kHalf, "cpu kernels need a float32, bfloat16 or float16 embedding table");
  const uint16_t* src = reinterpret_cast<const uint16_t*>(table.data_ptr()) + int64_t(t) * h;
  if (type == torch::kHalf) {
    const _Float16* half = reinterpret_cast<const _Float16*>(src);
    for (int64_t k = 0; k < h; k++) dst[k] = float(half[k]);
    return;
  }
  for (int64_t k = 0; k < h; k++) {
    const uint32_t bits = uint32_t(src[k]) << 16;
    std::memcpy(dst + k, &bits, sizeof(float));
  }
}

// one scratch arena per thread, grown as needed and kept: a forward allocates nothing once warm
float* scratch(size_t floats) {
  thread_local std::vector<float> arena;
  if (arena.size() < floats) arena.resize(floats);
  return arena.data();
}

// room for one task's attention scores, per thread (tasks run on libtorch's worker threads)
float* scratch_scores(size_t floats) {
  thread_local std::vector<float> scores;
  if (scores.size() < floats) scores.resize(floats);
  return scores.data();
}

// y (n x out, row stride ldy) = x (n x in, row stride ldx) w^T + b for a packed w, split over threads by panels
void linear(const float* x, int64_t ldx, int64_t n, const Packed& packed, int64_t out, const Tensor& b, float* y,
            int64_t ldy) {
  const auto& K = cpu::kernels();
  TORCH_CHECK(packed.defined(), "cpu kernels: a product weight was not packed (et_model_finish)");
  const Tensor& w = packed.w;
  const int64_t in = packed.in > 0 ? packed.in : w.size(1), np = w.size(0);
  const float* bp = f32(b);
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, n * in * cpu::PANEL));
  if (w.scalar_type() == torch::kBFloat16 || w.scalar_type() == torch::kHalf) {
    const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr());
    const auto product = w.scalar_type() == torch::kHalf ? K.linear_f16 : K.linear_bf16;
    cpu::parallel_for(np, grain, [&](int64_t p0, int64_t p1) { product(x, ldx, n, in, out, wp, bp, y, ldy, p0, p1); });
    return;
  }
  if (w.scalar_type() == torch::kChar) {
    const int8_t* wp = w.data_ptr<int8_t>();
    const float* sp = f32(packed.scale);
    const auto product = packed.groups ? K.linear_i8_groups : K.linear_i8;
    cpu::parallel_for(np, grain, [&](int64_t p0, int64_t p1) { product(x, ldx, n, in, out, wp, sp, bp, y, ldy, p0, p1); });
    return;
  }
  const float* wp = f32(w);
  cpu::parallel_for(np, grain, [&](int64_t p0, int64_t p1) { K.linear(x, ldx, n, in, out, wp, bp, y, ldy, p0, p1); });
}

}  // namespace

// cos/sin of every (position, frequency) up to the largest position seen, made once per model
const float* rope_rows(const Model& m, int32_t max_pos, bool want_sin) {
  auto& t = *m.cpu_rope;
  std::lock_guard<std::mutex> lock(t.mu);
  const int64_t half = m.cfg.head_dim / 2;
  if (max_pos >= t.rows) {
    const int32_t rows = std::max<int32_t>({256, max_pos + 1, 2 * t.rows});
    const float* inv = m.inv_freq.data_ptr<float>();
    t.cos.resize(size_t(rows) * half);
    t.sin.resize(size_t(rows) * half);
    for (int32_t p = t.rows; p < rows; p++) {
      for (int64_t i = 0; i < half; i++) {
        const float angle = float(p) * inv[i];  // float32, as the torch path computes it
        t.cos[size_t(p) * half + i] = std::cos(angle);
        t.sin[size_t(p) * half + i] = std::sin(angle);
      }
    }
    t.rows = rows;
  }
  return want_sin ? t.sin.data() : t.cos.data();
}

namespace {

using cpu::KeyLists;
using cpu::LayerCache;
using cpu::Step;

// x += attn(norm(x)) for one layer; qkv, att: scratch rows
void attention_block(const Model& m, const Layer& ly, float* x, const Step& s, int32_t l, float* xn, float* qkv,
                     float* att, float* tmp) {
  const auto& c = m.cfg;
  const auto& K = cpu::kernels();
  const int64_t n = s.n, h = c.hidden_size, H = c.n_heads, Hkv = c.n_kv_heads, G = H / Hkv, D = c.head_dim;
  const int64_t qw = H * D, kw = Hkv * D, ld = qw + 2 * kw;  // a qkv row: q heads, k heads, v heads
  const float* src = x;
  if (ly.w[ET_W_ATTN_NORM].defined()) {  // a draft head's layer has no input norm
    K.rms_norm(x, h, n, h, f32(ly.w[ET_W_ATTN_NORM]), c.rms_norm_eps, xn, h);
    src = xn;
  }
  if (ly.packed_qkv.defined()) {
    linear(src, h, n, ly.packed_qkv, ld, ly.packed_qkv_bias, qkv, ld);
  } else {
    linear(src, h, n, ly.packed[ET_W_Q], qw, ly.w[ET_W_Q_BIAS], qkv, ld);
    linear(src, h, n, ly.packed[ET_W_K], kw, ly.w[ET_W_K_BIAS], qkv + qw, ld);
    linear(src, h, n, ly.packed[ET_W_V], kw, ly.w[ET_W_V_BIAS], qkv + qw + kw, ld);
  }
  int32_t max_pos = 0;
  for (int64_t i = 0; i < n; i++) max_pos = std::max(max_pos, s.positions[i]);
  const float* cos = rope_rows(m, max_pos, false);
  const float* sin = rope_rows(m, max_pos, true);
  for (int64_t i = 0; i < n; i++) {
    float* row = qkv + i * ld;
    const int64_t p = s.positions[i] * (D / 2);
    K.rope(row, H + Hkv, D, cos + p, sin + p);  // q and k heads are adjacent
    const LayerCache& kv = s.cache(i, l);
    const int64_t slot = s.row_slot[i];
    for (int64_t g = 0; g < Hkv; g++) {
      const float* k = row + qw + g * D;
      const float* v = row + qw + kw + g * D;
      for (int64_t d = 0; d < D; d++) {
        const int64_t at = cpu::slot_index(slot, g, d, kv.blocks, D);
        kv.k[at] = k[d];
        kv.v[at] = v[d];
      }
    }
  }
  // one task per (new token, group of key/value heads): each head's G query heads share its keys, and a
  // group's heads go through the kernel together (small heads: their short loops overlap); a group holds as
  // many heads as keep its work within 2^14 multiply-adds (at least one, a divisor of Hkv)
  const KeyLists& keys = s.keys;
  const float scale = c.attention_scale;
  const int64_t work = int64_t(keys.widest) * D * G;
  int64_t hb = Hkv;
  while (hb > 1 && (hb * work > (int64_t(1) << 14) || Hkv % hb != 0)) hb--;
  const int64_t groups = Hkv / hb;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, hb * work));
  cpu::parallel_for(n * groups, grain, [&](int64_t a, int64_t b) {
    float* scores = scratch_scores(size_t(cpu::attend_scratch(hb * G, D, keys.widest)));
    for (int64_t t = a; t < b; t++) {
      const int64_t i = t / groups, g = t % groups * hb;
      const LayerCache& kv = s.cache(i, l);
      const int64_t hstride = kv.blocks * D * cpu::SLOT_BLOCK;  // floats from a key/value head to the next
      K.attend(qkv + i * ld + g * G * D, hb, G, kv.k + g * hstride, kv.v + g * hstride, hstride, D,
               keys.list[i], keys.count[i], scale, scores, att + i * qw + g * G * D);
    }
  });
  linear(att, qw, n, ly.packed[ET_W_O], h, Tensor(), tmp, h);
  K.add(x, tmp, n * h);
}

// a row of gate and up: gate's I outputs, then up's from the panel after gate's last
int64_t up_offset(const et_model_config& c) { return cpu::panels(c.intermediate_size) * cpu::PANEL; }

// x += mlp(norm(x)); gu: 2 x up_offset scratch per row
void mlp_block(const Model& m, const Layer& ly, float* x, int64_t n, float* xn, float* gu, float* tmp) {
  const auto& c = m.cfg;
  const auto& K = cpu::kernels();
  const int64_t h = c.hidden_size, I = c.intermediate_size, up = up_offset(c), ld = 2 * up;
  K.rms_norm(x, h, n, h, f32(ly.w[ET_W_FFN_NORM]), c.rms_norm_eps, xn, h);
  linear(xn, h, n, ly.packed_gate_up, ld, Tensor(), gu, ld);
  for (int64_t i = 0; i < n; i++) K.silu_mul(gu + i * ld, gu + i * ld + up, gu + i * ld, I);
  linear(gu, ld, n, ly.packed[ET_W_DOWN], h, Tensor(), tmp, h);
  K.add(x, tmp, n * h);
}

}  // namespace

bool cpu_kernels_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ET_CPU_KERNELS");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

bool use_cpu_kernels(const Model& m) {
  const auto dtype = m.opts.dtype();
  return cpu_kernels_enabled() && m.opts.device().is_cpu() &&
         (dtype == torch::kFloat32 || dtype == torch::kBFloat16 || dtype == torch::kHalf) && m.cfg.head_dim <= 256;
}

void allocate_cache(KvCache& kv, const std::shared_ptr<Model>& m, int32_t capacity) {
  const auto& c = m->cfg;
  kv.model = m;
  kv.capacity = capacity;
  kv.blocked = use_cpu_kernels(*m);
  if (kv.blocked) cpu::grow_slot_run(capacity);
  kv.k.clear();
  kv.v.clear();
  kv.k_data.clear();
  kv.v_data.clear();
  // uninitialised: a slot is only ever read after a forward wrote it (attention reads [0, len + n)),
  // so a cache sized for a long run costs no time up front and, on CPU, memory only as it fills
  for (int32_t l = 0; l < c.n_layers; l++) {
    if (!kv.blocked) {
      kv.k.push_back(torch::empty({c.n_kv_heads, capacity, c.head_dim}, m->opts));
      kv.v.push_back(torch::empty({c.n_kv_heads, capacity, c.head_dim}, m->opts));
      continue;
    }
    // the CPU kernels' caches: float32 (a bfloat16 model's too), keys and values in blocks of slots
    const auto shape = {int64_t(c.n_kv_heads), cpu::slot_blocks(capacity), int64_t(c.head_dim), cpu::SLOT_BLOCK};
    kv.k.push_back(torch::empty(shape, f32_options(*m)));
    kv.v.push_back(torch::empty(shape, f32_options(*m)));
    kv.k_data.push_back(kv.k.back().data_ptr<float>());
    kv.v_data.push_back(kv.v.back().data_ptr<float>());
  }
}

const char* cpu_kernels_isa() { return cpu_kernels_enabled() ? cpu::kernels().isa : "off"; }

namespace {

// The forward of one group's rows (`step`: their slots and keys): hidden states into hp, logits into lp (the
// group's first rows there). A draft part's features are contiguous float32 here (forward_cpu sees to it).
void forward_rows(const Model& m, const SeqPart* parts, size_t count, const Step& step, const int32_t* tokens,
                  float* hp, float* lp) {
  const auto& c = m.cfg;
  const int64_t h = c.hidden_size, V = c.vocab_size;
  const int64_t qw = int64_t(c.n_heads) * c.head_dim, ld = qw + 2 * int64_t(c.n_kv_heads) * c.head_dim;
  const int64_t n = step.n;
  // scratch rows: x, xn, tmp (h each), qkv (ld), att (qw), gate/up (2 up_offset); fc input (2h) for a draft head
  const int64_t row = 3 * h + ld + qw + std::max<int64_t>(2 * up_offset(c), 2 * h);
  float* x = scratch(size_t(n) * row);
  float* xn = x + n * h;
  float* tmp = xn + n * h;
  float* qkv = tmp + n * h;
  float* att = qkv + n * ld;
  float* gu = att + n * qw;
  const Tensor& embed = m.global[ET_W_EMBED];
  const bool draft = c.draft;
  if (draft) {
    // EAGLE: the draft reads concat(embedding, feature), embedding first; each part its own features
    int64_t i = 0;
    for (size_t b = 0; b < count; b++) {
      const auto& p = parts[b];
      const float* f = p.features->hidden->data_ptr<float>();  // contiguous float32 (checked by the caller)
      for (int32_t j = 0; j < p.n; j++, i++) {
        embed_row(embed, tokens[i], h, gu + i * 2 * h);
        std::memcpy(gu + i * 2 * h + h, f + int64_t(p.features->rows[j]) * h, h * sizeof(float));
      }
    }
    linear(gu, 2 * h, n, m.layers[0].packed[ET_W_FC], h, m.layers[0].w[ET_W_FC_BIAS], x, h);
  } else {
    for (int64_t i = 0; i < n; i++) embed_row(embed, tokens[i], h, x + i * h);
  }
  for (int32_t l = 0; l < c.n_layers; l++) {
    attention_block(m, m.layers[l], x, step, l, xn, qkv, att, tmp);
    mlp_block(m, m.layers[l], x, n, xn, gu, tmp);
  }
  // a draft head has no final norm: its output is the predicted next feature
  if (draft) std::memcpy(hp, x, size_t(n) * h * sizeof(float));
  else cpu::kernels().rms_norm(x, h, n, h, f32(m.global[ET_W_NORM]), c.rms_norm_eps, hp, h);
  linear(hp, h, n, m.packed_lm_head, V, Tensor(), lp, V);
}

// `held` (an Out's results) to be written again as rows x cols floats: when it has that shape and nothing but the
// Out holds it or any view of its storage (no feature store, no features of this forward), so nothing else sees
// the new values; else undefined (saves two allocations a step)
Tensor reused(const Tensor& held, int64_t rows, int64_t cols) {
  if (!held.defined() || held.dim() != 2 || held.size(0) != rows || held.size(1) != cols) return Tensor();
  if (held.scalar_type() != torch::kFloat32 || !held.device().is_cpu() || !held.is_contiguous()) return Tensor();
  if (held.use_count() != 1 || held.storage().use_count() != 1) return Tensor();
  return held;
}

}  // namespace

void forward_cpu(const Model& m, const std::vector<SeqPart>& parts, const int32_t* tokens, const int32_t* positions,
                 const std::vector<Out*>& outs) {
  const cpu::FlushDenormals flush;
  const auto& c = m.cfg;
  const int64_t h = c.hidden_size, V = c.vocab_size;
  int64_t n = 0;
  int32_t max_pos = 0;
  for (const auto& p : parts) n += p.n;
  for (int64_t i = 0; i < n; i++) max_pos = std::max(max_pos, positions[i]);
  rope_rows(m, max_pos, false);  // grown here, once, before any group reads it
  // each draft part's features as contiguous float32, held while the forward runs
  std::vector<Tensor> features;
  std::vector<Features> feature_rows(parts.size());
  std::vector<SeqPart> held(parts);
  if (c.draft) {
    features.reserve(parts.size());
    for (size_t b = 0; b < parts.size(); b++) {
      features.push_back(parts[b].features->hidden->contiguous());
      f32(features.back());
      feature_rows[b] = Features{&features.back(), parts[b].features->rows};
      held[b].features = &feature_rows[b];
    }
  }
  // after the features are held: a lone sequence's results go where its last ones were, unless the features are those
  Tensor hidden = parts.size() == 1 ? reused(outs[0]->hidden(), n, h) : Tensor();
  Tensor logits = parts.size() == 1 ? reused(outs[0]->logits(), n, V) : Tensor();
  if (!hidden.defined()) hidden = torch::empty({n, h}, f32_options(m));
  if (!logits.defined()) logits = torch::empty({n, V}, f32_options(m));
  float* hp = hidden.data_ptr<float>();
  float* lp = logits.data_ptr<float>();
  // the groups the threads run (cpu_split.cpp); their steps made here, where a bad mask may throw
  const std::vector<PartGroup> runs = split_parts(m, held);
  std::vector<Step> steps;
  for (const auto& r : runs) steps.push_back(cpu::make_step(held.data() + r.first, r.count, positions + r.row, c.n_layers));
  auto run = [&](size_t g) {
    const PartGroup& r = runs[g];
    forward_rows(m, held.data() + r.first, r.count, steps[g], tokens + r.row, hp + r.row * h, lp + r.row * V);
  };
  run_groups(m, runs, run);
  // each sequence's rows of the whole (contiguous: whole rows)
  if (parts.size() == 1) return outs[0]->set(std::move(hidden), std::move(logits));
  int64_t first = 0;
  for (size_t b = 0; b < parts.size(); b++) {
    outs[b]->set_rows(hidden, logits, first, parts[b].n);
    first += parts[b].n;
  }
}

}  // namespace et
