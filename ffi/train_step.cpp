// train_step.cpp — one training step of an EAGLE draft head: a batch of teacher-forced windows, the head
// forward with autograd (the same math as forward.cpp's draft path, batched), the loss and AdamW.
// Shapes: B sequences per batch, T entries per sequence (padded), H hidden, Hq heads, Hkv kv heads, D head_dim.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <random>

#include "train.h"

namespace et {
namespace {

using torch::Tensor;

// one batch of teacher-forced entries: entry t of row b is (tok_{s+t+1}, f_{s+t}) -> f_{s+t+1}
struct Batch {
  Tensor tokens;     // (B, T) int64
  Tensor inputs;     // (B, T, H) float32
  Tensor targets;    // (B, T, H) float32
  Tensor positions;  // (B, T) float32, absolute
  Tensor entries;    // (N) int64: the real (unpadded) entries among the B*T
};

struct Window {
  const Sequence* seq;
  int64_t start, len;  // tokens [start, start + len); len - 1 entries
};

Batch make_batch(const Trainer& tr, const std::vector<Window>& windows) {
  int64_t T = 0;
  for (auto& w : windows) T = std::max(T, w.len - 1);
  std::vector<Tensor> tok, in, tgt, pos, valid;
  for (auto& w : windows) {
    const int64_t n = w.len - 1, pad = T - n;
    auto f = w.seq->features.narrow(0, w.start, w.len).to(torch::kFloat32);
    tok.push_back(torch::constant_pad_nd(w.seq->tokens.narrow(0, w.start + 1, n), {0, pad}));
    in.push_back(torch::constant_pad_nd(f.narrow(0, 0, n), {0, 0, 0, pad}));
    tgt.push_back(torch::constant_pad_nd(f.narrow(0, 1, n), {0, 0, 0, pad}));
    pos.push_back(torch::arange(T, torch::kFloat32) + double(w.start));
    valid.push_back(torch::arange(T) < n);
  }
  auto dev = tr.device;
  return {torch::stack(tok), torch::stack(in), torch::stack(tgt), torch::stack(pos).to(dev),
          torch::stack(valid).view(-1).nonzero().squeeze(1).to(dev)};
}

Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * w;
}

// rotate-half RoPE on (B, heads, T, D) with cos/sin (B, 1, T, D)
Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  auto half = x.size(-1) / 2;
  return x * cos + torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1) * sin;
}

Tensor attention(const Trainer& tr, const Tensor& x, const Tensor& positions) {
  const auto& c = tr.cfg;
  const int64_t B = x.size(0), T = x.size(1), Hq = c.n_heads, Hkv = c.n_kv_heads, G = Hq / Hkv, D = c.head_dim;
  auto freqs = positions.unsqueeze(-1) * tr.inv_freq;               // (B, T, D/2)
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);           // (B, 1, T, D)
  auto cos = emb.cos(), sin = emb.sin();
  auto q = torch::linear(x, tr.p[ET_W_Q]).view({B, T, Hq, D}).transpose(1, 2);   // (B, Hq, T, D)
  auto k = torch::linear(x, tr.p[ET_W_K]).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
  auto v = torch::linear(x, tr.p[ET_W_V]).view({B, T, Hkv, D}).transpose(1, 2);
  q = apply_rope(q, cos, sin);
  k = apply_rope(k, cos, sin);
  // query head h reads kv head h / G, as forward.cpp groups them
  auto widen = [&](const Tensor& t) { return t.unsqueeze(2).expand({B, Hkv, G, T, D}).reshape({B, Hq, T, D}); };
  auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(tr.device)).tril();
  auto bias = torch::zeros({T, T}, x.options()).masked_fill(causal.logical_not(), -INFINITY);
  auto scores = torch::matmul(q, widen(k).transpose(-1, -2)) * c.attention_scale + bias;  // (B, Hq, T, T)
  auto o = torch::matmul(torch::softmax(scores, -1), widen(v));                           // (B, Hq, T, D)
  return torch::linear(o.transpose(1, 2).reshape({B, T, Hq * D}), tr.p[ET_W_O]);
}

// f̂ for every entry of the batch: (B, T, H)
Tensor head_forward(const Trainer& tr, const Batch& b, const Tensor& noise) {
  const auto& p = tr.p;
  auto features = noise.defined() ? b.inputs + noise : b.inputs;
  auto x = torch::linear(torch::cat({torch::embedding(tr.embed, b.tokens), features}, -1), p[ET_W_FC], p[ET_W_FC_BIAS]);
  auto h = x + attention(tr, x, b.positions);
  auto hn = rms_norm(h, p[ET_W_FFN_NORM], tr.cfg.rms_norm_eps);
  auto mlp = torch::linear(torch::silu(torch::linear(hn, p[ET_W_GATE])) * torch::linear(hn, p[ET_W_UP]), p[ET_W_DOWN]);
  return h + mlp;
}

struct Losses {
  Tensor loss, reg, ce, acc;  // scalars; acc without grad
  int64_t entries;
};

Losses losses(const Trainer& tr, const Tensor& predicted, const Batch& b) {
  const int64_t H = tr.cfg.hidden_size;
  auto pred = predicted.reshape({-1, H}).index_select(0, b.entries);   // (N, H)
  auto want = b.targets.reshape({-1, H}).index_select(0, b.entries);
  Tensor target_probs, target_ids;
  {
    torch::NoGradGuard no_grad;
    auto logits = torch::linear(want, tr.lm_head);
    target_probs = torch::softmax(logits, -1);
    target_ids = logits.argmax(-1);
  }
  auto logits = torch::linear(pred, tr.lm_head);  // (N, V)
  auto reg = torch::smooth_l1_loss(pred, want);
  auto ce = -(target_probs * torch::log_softmax(logits, -1)).sum(-1).mean();
  auto acc = (logits.detach().argmax(-1) == target_ids).to(torch::kFloat32).mean();
  return {reg + 0.1 * ce, reg, ce, acc, pred.size(0)};
}

void write_stats(const Losses& l, double grad_norm, float* out) {
  auto host = torch::stack({l.loss.detach(), l.reg.detach(), l.ce.detach(), l.acc}).to(torch::kCPU);  // one sync
  for (int i = 0; i < 4; i++) out[i] = host[i].item<float>();
  out[ET_STAT_ENTRIES] = float(l.entries);
  out[ET_STAT_GRAD_NORM] = float(grad_norm);
}

std::vector<Window> draw_windows(const Trainer& tr, int32_t batch_seqs, int32_t max_len, std::mt19937_64& rng) {
  const auto& data = tr.split[ET_SPLIT_TRAIN];
  std::vector<Window> windows;
  for (int32_t i = 0; i < batch_seqs; i++) {
    const auto& seq = data[std::uniform_int_distribution<size_t>(0, data.size() - 1)(rng)];
    const int64_t n = seq.tokens.size(0), len = std::min<int64_t>(n, max_len);
    const int64_t start = std::uniform_int_distribution<int64_t>(0, n - len)(rng);
    windows.push_back({&seq, start, len});
  }
  return windows;
}

}  // namespace

void train_step(Trainer& tr, int32_t batch_seqs, int32_t max_len, float lr, float noise, float grad_clip, uint64_t seed,
                float* out) {
  TORCH_CHECK(!tr.split[ET_SPLIT_TRAIN].empty(), "no training data: add sequences with et_trainer_features");
  TORCH_CHECK(batch_seqs > 0, "batch size must be positive, got ", batch_seqs);
  TORCH_CHECK(max_len >= 2, "max_len must be at least 2, got ", max_len);
  TORCH_CHECK(lr >= 0 && std::isfinite(lr), "learning rate must be finite and >= 0, got ", lr);
  TORCH_CHECK(noise >= 0 && std::isfinite(noise), "noise must be finite and >= 0, got ", noise);
  TORCH_CHECK(grad_clip >= 0, "grad_clip must be >= 0, got ", grad_clip);
  std::mt19937_64 rng(seed);
  auto batch = make_batch(tr, draw_windows(tr, batch_seqs, max_len, rng));
  Tensor noise_t;
  if (noise > 0) {
    auto gen = at::detail::createCPUGenerator(rng());
    noise_t = ((torch::rand(batch.inputs.sizes(), gen, torch::kFloat32) * 2 - 1) * noise).to(tr.device);
  }
  tr.opt->zero_grad();
  auto l = losses(tr, head_forward(tr, batch, noise_t), batch);
  l.loss.backward();
  const double norm = torch::nn::utils::clip_grad_norm_(tr.params, grad_clip > 0 ? grad_clip : INFINITY);
  TORCH_CHECK(std::isfinite(norm), "the gradient is not finite (norm ", norm, "): lower --lr");
  for (auto& group : tr.opt->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  tr.opt->step();
  write_stats(l, norm, out);
}

void train_eval(Trainer& tr, float* out) {
  const auto& data = tr.split[ET_SPLIT_VALID];
  TORCH_CHECK(!data.empty(), "no validation data: add sequences with et_trainer_features(..., ET_SPLIT_VALID)");
  torch::NoGradGuard no_grad;
  double sums[4] = {0, 0, 0, 0};
  int64_t entries = 0;
  const size_t chunk = 8;
  for (size_t i = 0; i < data.size(); i += chunk) {
    std::vector<Window> windows;
    for (size_t j = i; j < std::min(data.size(), i + chunk); j++) windows.push_back({&data[j], 0, data[j].tokens.size(0)});
    auto batch = make_batch(tr, windows);
    auto l = losses(tr, head_forward(tr, batch, Tensor()), batch);
    float part[ET_STAT_COUNT];
    write_stats(l, 0, part);
    for (int k = 0; k < 4; k++) sums[k] += double(part[k]) * l.entries;
    entries += l.entries;
  }
  for (int k = 0; k < 4; k++) out[k] = float(sums[k] / entries);
  out[ET_STAT_ENTRIES] = float(entries);
  out[ET_STAT_GRAD_NORM] = 0;
}

}  // namespace et
