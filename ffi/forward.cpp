// forward.cpp — the Llama forward: embeddings, decoder blocks under an explicit mask, final norm, LM head.
// Shapes: n new tokens, L = len + n visible slots, H heads, Hkv key/value heads, G = H / Hkv, D head_dim.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "shim.h"

namespace et {
namespace {

using torch::Tensor;

// HF Llama RMSNorm: normalise in float32, cast back, then scale.
Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
  auto xf = x.to(torch::kFloat32);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return y.to(x.scalar_type()) * w;
}

struct Rope {
  Tensor cos, sin;  // (1, n, D) in compute dtype
};

// the device tables of cos/sin by position (both halves of a head alike), grown from the host rows
void grow_rope_tables(const Model& m, int32_t max_pos) {
  auto& t = *m.cpu_rope;
  const int64_t half = m.cfg.head_dim / 2;
  const float* cos = rope_rows(m, max_pos, false);  // grows the host rows first
  const float* sin = rope_rows(m, max_pos, true);
  std::lock_guard<std::mutex> lock(t.mu);
  if (max_pos < t.device_rows) return;
  const int32_t rows = t.rows;
  auto table = [&](const float* src) {
    auto host = torch::from_blob(const_cast<float*>(src), {rows, half}, torch::kFloat32);
    return torch::cat({host, host}, -1).to(m.opts.device(), m.opts.dtype().toScalarType());
  };
  t.device_cos = table(cos);
  t.device_sin = table(sin);
  t.device_rows = rows;
}

Rope make_rope(const Model& m, const Tensor& pos, int32_t max_pos) {
  if (max_pos >= m.cpu_rope->device_rows) grow_rope_tables(m, max_pos);
  const auto& t = *m.cpu_rope;
  return {t.device_cos.index_select(0, pos).unsqueeze(0), t.device_sin.index_select(0, pos).unsqueeze(0)};
}

// rotate-half RoPE (the Hugging Face layout) on (heads, n, D)
Tensor apply_rope(const Tensor& x, const Rope& r) {
  auto half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * r.cos + rotated * r.sin;
}

// Additive float32 mask (n, L): 0 where a new token may attend, -inf elsewhere; undefined when nothing
// is masked (one new token, no mask: it sees every cached slot and itself). Built on the host in one pass.
Tensor make_mask_bias(const Model& m, int32_t len, int32_t n, const uint8_t* mask, int32_t mask_cols) {
  const int32_t L = len + n;
  if (!mask && n == 1) return Tensor();
  TORCH_CHECK(!mask || mask_cols == n || mask_cols == L, "mask has ", mask_cols, " columns; expected n (", n,
              ") or len + n (", L, ")");
  const auto dev = m.opts.device();
  auto bias = torch::zeros({n, L}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(dev.is_cuda()));
  float* b = bias.data_ptr<float>();
  const int32_t skip = mask && mask_cols == n ? len : 0;  // columns every row sees: the cached slots
  for (int32_t i = 0; i < n; i++) {
    float* row = b + int64_t(i) * L;
    for (int32_t j = skip; j < L; j++) {
      bool allowed = mask ? mask[int64_t(i) * mask_cols + (j - skip)] != 0 : j <= len + i;
      if (!allowed) row[j] = -INFINITY;
    }
    // every token must see itself, or its softmax row would be empty
    TORCH_CHECK(row[len + i] == 0.0f, "mask must let every new token attend to itself (row ", i, ")");
  }
  return bias.to(dev, torch::kFloat32, true);  // non-blocking from pinned memory on CUDA (see host_to_device)
}

// softmax(q k^T * scale + bias) v for the query rows of each key/value head. qg (Hkv, G*n, D) holds the G
// query heads that share a key/value head, stacked; keys/vals (Hkv, L, D); bias (n, L) or undefined.
// Scores and softmax in float32.
Tensor attend_manual(const Tensor& qg, const Tensor& keys, const Tensor& vals, const Tensor& bias, int64_t G,
                     float scale) {
  const int64_t Hkv = qg.size(0), Gn = qg.size(1), L = keys.size(1);
  auto scores = torch::matmul(qg, keys.transpose(1, 2)).to(torch::kFloat32) * scale;
  scores = scores.view({Hkv, G, Gn / G, L});
  if (bias.defined()) scores = scores + bias;
  auto probs = torch::softmax(scores, -1).to(qg.scalar_type()).view({Hkv, Gn, L});
  return torch::matmul(probs, vals);
}

#if TORCH_VERSION_MAJOR >= 2
// ET_SDPA=0 keeps the manual path on PyTorch 2.x (read once)
bool sdpa_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ET_SDPA");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

// The same through at::scaled_dot_product_attention, which picks a fused kernel for the device. Only the
// arguments every 2.x has (query, key, value, attn_mask): 2.0 has no `scale`, so a scale other than SDPA's
// own 1/sqrt(D) is folded into q. The mask is additive in q's dtype (0 and -inf are exact in bf16/f16),
// repeated for the G stacked query heads: (G*n, L), broadcast over the key/value heads.
Tensor attend_sdpa(const Tensor& qg, const Tensor& keys, const Tensor& vals, const Tensor& bias, int64_t G,
                   float scale) {
  const double fold = double(scale) * std::sqrt(double(qg.size(-1)));
  auto q = (std::abs(fold - 1.0) < 1e-6 ? qg : qg * fold).unsqueeze(0);  // (1, Hkv, G*n, D)
  auto k = keys.unsqueeze(0), v = vals.unsqueeze(0);                     // (1, Hkv, L, D)
  if (!bias.defined()) return at::scaled_dot_product_attention(q, k, v).squeeze(0);
  auto mask = bias.to(qg.scalar_type()).repeat({G, 1});
  return at::scaled_dot_product_attention(q, k, v, mask).squeeze(0);
}
#endif

Tensor attend(const Tensor& qg, const Tensor& keys, const Tensor& vals, const Tensor& bias, int64_t G, float scale) {
#if TORCH_VERSION_MAJOR >= 2
  if (sdpa_enabled()) return attend_sdpa(qg, keys, vals, bias, G, scale);
#endif
  return attend_manual(qg, keys, vals, bias, G, scale);
}

Tensor attention(const Model& m, const Layer& ly, const Tensor& x, const Rope& rope, const Tensor& bias,
                 KvCache& kv, int32_t l) {
  const auto& c = m.cfg;
  const int64_t n = x.size(0), H = c.n_heads, Hkv = c.n_kv_heads, G = H / Hkv, D = c.head_dim;
  const int64_t L = kv.len + n;
  auto qkv = torch::linear(x, ly.qkv, ly.qkv_bias);  // (n, (H + 2 Hkv) D): one product
  auto q = qkv.narrow(1, 0, H * D).view({n, H, D}).transpose(0, 1);                // (H, n, D)
  auto k = qkv.narrow(1, H * D, Hkv * D).view({n, Hkv, D}).transpose(0, 1);        // (Hkv, n, D)
  auto v = qkv.narrow(1, (H + Hkv) * D, Hkv * D).view({n, Hkv, D}).transpose(0, 1);
  q = apply_rope(q, rope);
  k = apply_rope(k, rope);
  kv.k[l].narrow(1, kv.len, n).copy_(k);
  kv.v[l].narrow(1, kv.len, n).copy_(v);
  auto keys = kv.k[l].narrow(1, 0, L);  // (Hkv, L, D)
  auto vals = kv.v[l].narrow(1, 0, L);
  // group the G query heads that share a key/value head: (Hkv, G*n, D)
  auto qg = q.reshape({Hkv, G * n, D});
  auto o = attend(qg, keys, vals, bias, G, c.attention_scale).view({H, n, D}).transpose(0, 1).reshape({n, H * D});
  return torch::linear(o, ly.w[ET_W_O]);
}

Tensor mlp(const Layer& ly, const Tensor& x) {
  auto gu = torch::linear(x, ly.gate_up);  // (n, 2 I): one product
  const int64_t I = gu.size(1) / 2;
  return torch::linear(torch::silu(gu.narrow(1, 0, I)) * gu.narrow(1, I, I), ly.w[ET_W_DOWN]);
}

// h = x + attn(norm(x)); out = h + mlp(norm(h)). A draft head's layer has no input norm.
Tensor block(const Model& m, const Layer& ly, const Tensor& x, const Rope& rope, const Tensor& bias,
             KvCache& kv, int32_t l) {
  const auto& attn_norm = ly.w[ET_W_ATTN_NORM];
  auto xn = attn_norm.defined() ? rms_norm(x, attn_norm, m.cfg.rms_norm_eps) : x;
  auto h = x + attention(m, ly, xn, rope, bias, kv, l);
  return h + mlp(ly, rms_norm(h, ly.w[ET_W_FFN_NORM], m.cfg.rms_norm_eps));
}

void check_inputs(const Model& m, const KvCache& kv, const int32_t* tokens, const int32_t* positions, int32_t n) {
  TORCH_CHECK(m.finished, "model is not finished: call et_model_finish after setting its weights");
  TORCH_CHECK(n > 0, "forward needs at least one token, got n = ", n);
  TORCH_CHECK(kv.len + int64_t(n) <= kv.capacity, "cache full: ", kv.len, " cached + ", n, " new tokens exceed capacity ",
              kv.capacity);
  for (int32_t i = 0; i < n; i++) {
    TORCH_CHECK(tokens[i] >= 0 && tokens[i] < m.cfg.vocab_size, "token id ", tokens[i], " at index ", i,
                " is outside the vocabulary [0, ", m.cfg.vocab_size, ")");
    TORCH_CHECK(positions[i] >= 0, "position ", positions[i], " at index ", i, " is negative");
  }
}

}  // namespace

void fuse_weights(Model& m) {
  for (auto& ly : m.layers) {
    auto& w = ly.w;
    const int64_t qw = w[ET_W_Q].size(0), kw = w[ET_W_K].size(0);
    ly.qkv = torch::cat({w[ET_W_Q], w[ET_W_K], w[ET_W_V]});
    w[ET_W_Q] = ly.qkv.narrow(0, 0, qw);  // views: the fused copy is the only one kept
    w[ET_W_K] = ly.qkv.narrow(0, qw, kw);
    w[ET_W_V] = ly.qkv.narrow(0, qw + kw, kw);
    if (w[ET_W_Q_BIAS].defined()) {
      ly.qkv_bias = torch::cat({w[ET_W_Q_BIAS], w[ET_W_K_BIAS], w[ET_W_V_BIAS]});
      w[ET_W_Q_BIAS] = ly.qkv_bias.narrow(0, 0, qw);
      w[ET_W_K_BIAS] = ly.qkv_bias.narrow(0, qw, kw);
      w[ET_W_V_BIAS] = ly.qkv_bias.narrow(0, qw + kw, kw);
    }
    const int64_t I = w[ET_W_GATE].size(0);
    ly.gate_up = torch::cat({w[ET_W_GATE], w[ET_W_UP]});
    w[ET_W_GATE] = ly.gate_up.narrow(0, 0, I);
    w[ET_W_UP] = ly.gate_up.narrow(0, I, I);
  }
}

void forward(const Model& m, KvCache& kv, const int32_t* tokens, const int32_t* positions, int32_t n,
             const uint8_t* mask, int32_t mask_cols, const Features* features, Out& out) {
  check_inputs(m, kv, tokens, positions, n);
  c10::InferenceMode guard;
  TORCH_CHECK(kv.blocked == use_cpu_kernels(m), "cache layout does not match the model's forward");
  if (use_cpu_kernels(m)) {
    forward_cpu(m, {SeqPart{&kv, n, mask, mask_cols, features}}, tokens, positions, {&out});
    kv.len += n;  // only now: a throw above leaves len as it was
    return;
  }
  auto dev = m.opts.device();
  auto ids = host_to_device(tokens, n, torch::kInt32, dev, torch::kLong);
  auto pos = host_to_device(positions, n, torch::kInt32, dev, torch::kLong);
  auto bias = make_mask_bias(m, kv.len, n, mask, mask_cols);
  int32_t max_pos = 0;
  for (int32_t i = 0; i < n; i++) max_pos = std::max(max_pos, positions[i]);
  auto rope = make_rope(m, pos, max_pos);
  auto x = torch::embedding(m.global[ET_W_EMBED], ids);  // (n, hidden)
  if (features) {
    // EAGLE: the draft reads concat(embedding, feature), embedding first
    const auto& ly = m.layers[0];
    auto rows = host_to_device(features->rows, n, torch::kInt32, dev, torch::kLong);
    auto feats = features->hidden->index_select(0, rows).to(m.opts.dtype().toScalarType());
    x = torch::linear(torch::cat({x, feats}, -1), ly.w[ET_W_FC], ly.w[ET_W_FC_BIAS]);
  }
  for (int32_t l = 0; l < m.cfg.n_layers; l++) x = block(m, m.layers[l], x, rope, bias, kv, l);
  // a draft head has no final norm: its output is the predicted next feature
  auto hidden = features ? x : rms_norm(x, m.global[ET_W_NORM], m.cfg.rms_norm_eps);
  out.set(hidden, torch::linear(hidden, m.lm_head()).to(torch::kFloat32));
  kv.len += n;  // only now: a throw above leaves len as it was
}

void forward_batch(const Model& m, const std::vector<SeqPart>& parts, const int32_t* tokens, const int32_t* positions,
                   const std::vector<Out*>& outs) {
  TORCH_CHECK(!parts.empty(), "a batched forward needs at least one sequence");
  int64_t first = 0;
  for (size_t b = 0; b < parts.size(); b++) {
    const auto& p = parts[b];
    for (size_t a = 0; a < b; a++) {
      TORCH_CHECK(parts[a].kv != p.kv, "sequences ", a, " and ", b, " share a cache");
      TORCH_CHECK(outs[a] != outs[b], "sequences ", a, " and ", b, " share a results holder");
    }
    check_inputs(m, *p.kv, tokens + first, positions + first, p.n);
    TORCH_CHECK((p.features != nullptr) == m.cfg.draft, "sequence ", b, m.cfg.draft ? " has no features" : " has features");
    TORCH_CHECK(p.kv->blocked == use_cpu_kernels(m), "cache layout does not match the model's forward");
    first += p.n;
  }
  c10::InferenceMode guard;
  if (use_cpu_kernels(m)) {
    forward_cpu(m, parts, tokens, positions, outs);
    for (const auto& p : parts) p.kv->len += p.n;  // only now: a throw above leaves every len as it was
    return;
  }
  // libtorch's path (CUDA, ET_CPU_KERNELS=0): one forward per sequence, in order
  first = 0;
  for (size_t b = 0; b < parts.size(); b++) {
    const auto& p = parts[b];
    forward(m, *p.kv, tokens + first, positions + first, p.n, p.mask, p.mask_cols, p.features, *outs[b]);
    first += p.n;
  }
}

}  // namespace et
