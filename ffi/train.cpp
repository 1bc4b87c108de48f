// train.cpp — the et_trainer ABI (et_train.h): creating a head's parameters, moving them in and out as host
// float32, and turning target forwards into the training data. The step itself is in train_step.cpp.
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <numeric>

#include "train.h"

namespace et {
namespace {

using torch::Tensor;

// the head's trainable kinds, in the optimizer's order
const int32_t kParamKinds[] = {ET_W_FC, ET_W_FC_BIAS, ET_W_Q, ET_W_K, ET_W_V, ET_W_O,
                               ET_W_FFN_NORM, ET_W_GATE, ET_W_UP, ET_W_DOWN};

void check_head(const Model& target, const et_model_config& h) {
  const auto& t = target.cfg;
  check_config(h);
  TORCH_CHECK(target.finished && !t.draft, "the trainer needs a finished target model, not a draft head");
  TORCH_CHECK(h.draft == 1 && h.n_layers == 1, "the trained head must be a draft config with one layer");
  TORCH_CHECK(h.dtype == ET_F32, "heads are trained in float32: set dtype ET_F32");
  TORCH_CHECK(!h.attention_bias, "EAGLE heads are Llama layers without attention biases");
  TORCH_CHECK(h.hidden_size == t.hidden_size, "head hidden size ", h.hidden_size, " differs from the target's ", t.hidden_size);
  TORCH_CHECK(h.vocab_size == t.vocab_size, "head vocabulary ", h.vocab_size, " differs from the target's ", t.vocab_size);
  TORCH_CHECK(h.device == t.device && (h.device == ET_CPU || h.device_index == t.device_index),
              "the head must be trained on the target's device");
}

void init_params(Trainer& tr, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  for (int32_t kind : kParamKinds) {
    if (kind == ET_W_FC_BIAS && !tr.cfg.fc_bias) continue;
    auto shape = expected_shape(tr.cfg, kind);
    Tensor t;
    if (kind == ET_W_FFN_NORM) {
      t = torch::ones(shape, f32);
    } else {
      const double bound = 1.0 / std::sqrt(double(kind == ET_W_FC_BIAS ? 2 * tr.cfg.hidden_size : shape[1]));
      t = (torch::rand(shape, gen, f32) * 2 - 1) * bound;  // nn.Linear's default
    }
    tr.p[kind] = t.to(tr.device).set_requires_grad(true);
    tr.params.push_back(tr.p[kind]);
  }
  auto opts = torch::optim::AdamWOptions(1e-3).betas(std::make_tuple(0.9, 0.95)).weight_decay(0.0);
  tr.opt = std::make_unique<torch::optim::AdamW>(tr.params, opts);
}

Tensor& param(Trainer& tr, int32_t kind, int64_t n) {
  TORCH_CHECK(kind >= 0 && kind < ET_W_COUNT && tr.p[kind].defined(), "weight kind ", kind, " (", weight_name(kind),
              ") is not a parameter of this head");
  TORCH_CHECK(n == tr.p[kind].numel(), "parameter ", weight_name(kind), " has ", tr.p[kind].numel(),
              " elements, got ", n);
  return tr.p[kind];
}

}  // namespace
}  // namespace et

struct et_trainer { et::Trainer t; };

using et::guarded;

extern "C" {

int et_trainer_new(const et_model* target, const et_model_config* head, const float* inv_freq, uint64_t seed,
                   et_trainer** out) {
  return guarded([&] {
    et::check_handle(target, et::HandleKind::Model, "et_trainer_new");
    TORCH_CHECK(head && inv_freq && out, "et_trainer_new: null argument");
    et::check_head(*target->m, *head);
    auto t = std::make_unique<et_trainer>();
    auto& tr = t->t;
    tr.target = target->m;
    tr.cfg = *head;
    tr.device = target->m->opts.device();
    auto freq = torch::from_blob(const_cast<float*>(inv_freq), {head->head_dim / 2}, torch::kFloat32);
    tr.inv_freq = freq.to(tr.device, torch::kFloat32, false, true);
    // clones outside inference mode: autograd may save them for backward
    tr.embed = target->m->global[ET_W_EMBED].detach().to(torch::kFloat32, false, true);
    tr.lm_head = target->m->lm_head().detach().to(torch::kFloat32, false, true);
    et::init_params(tr, seed);
    *out = t.release();
    et::register_handle(*out, et::HandleKind::Trainer);
  });
}

void et_trainer_free(et_trainer* t) {
  if (et::release_handle(t, et::HandleKind::Trainer)) delete t;
}

int et_trainer_set_param(et_trainer* t, int32_t kind, const float* data, int64_t n) {
  return guarded([&] {
    et::check_handle(t, et::HandleKind::Trainer, "et_trainer_set_param");
    TORCH_CHECK(data, "et_trainer_set_param: null argument");
    auto& dst = et::param(t->t, kind, n);
    auto src = torch::from_blob(const_cast<float*>(data), dst.sizes(), torch::kFloat32);
    TORCH_CHECK(torch::isfinite(src).all().item<bool>(), "parameter ", et::weight_name(kind), " holds NaN or infinity");
    torch::NoGradGuard no_grad;
    dst.copy_(src);
  });
}

int et_trainer_get_param(const et_trainer* t, int32_t kind, float* out, int64_t n) {
  return guarded([&] {
    et::check_handle(t, et::HandleKind::Trainer, "et_trainer_get_param");
    TORCH_CHECK(out, "et_trainer_get_param: null argument");
    auto host = et::param(const_cast<et::Trainer&>(t->t), kind, n).detach().to(torch::kCPU).contiguous();
    std::memcpy(out, host.data_ptr<float>(), n * sizeof(float));
  });
}

int et_trainer_features(et_trainer* t, const int32_t* tokens, int32_t n, int32_t split) {
  return guarded([&] {
    et::check_handle(t, et::HandleKind::Trainer, "et_trainer_features");
    TORCH_CHECK(tokens, "et_trainer_features: null argument");
    TORCH_CHECK(split == ET_SPLIT_TRAIN || split == ET_SPLIT_VALID, "unknown split ", split);
    TORCH_CHECK(n >= 2, "a training sequence needs at least 2 tokens, got ", n);
    auto& tr = t->t;
    et::KvCache kv;
    {
      c10::InferenceMode guard;
      et::allocate_cache(kv, tr.target, n);
    }
    std::vector<int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), 0);
    et::Out o;
    et::forward(*tr.target, kv, tokens, positions.data(), n, nullptr, 0, nullptr, o);
    // copied out of inference mode, so the batches built from them can take part in autograd
    auto ids = torch::from_blob(const_cast<int32_t*>(tokens), {n}, torch::kInt32).to(tr.device, torch::kLong);
    tr.split[split].push_back({ids, o.hidden().clone()});
  });
}

int et_trainer_data_size(const et_trainer* t, int32_t split, int32_t* seqs, int64_t* tokens) {
  return guarded([&] {
    et::check_handle(t, et::HandleKind::Trainer, "et_trainer_data_size");
    TORCH_CHECK(seqs && tokens, "et_trainer_data_size: null argument");
    TORCH_CHECK(split == ET_SPLIT_TRAIN || split == ET_SPLIT_VALID, "unknown split ", split);
    const auto& data = t->t.split[split];
    int64_t total = 0;
    for (auto& s : data) total += s.tokens.size(0);
    *seqs = int32_t(data.size());
    *tokens = total;
  });
}

int et_trainer_step(et_trainer* t, int32_t batch_seqs, int32_t max_len, float lr, float noise, float grad_clip,
                    uint64_t seed, float* out_stats) {
  return guarded([&] {
    et::check_handle(t, et::HandleKind::Trainer, "et_trainer_step");
    TORCH_CHECK(out_stats, "et_trainer_step: null argument");
    et::train_step(t->t, batch_seqs, max_len, lr, noise, grad_clip, seed, out_stats);
  });
}

int et_trainer_eval(et_trainer* t, float* out_stats) {
  return guarded([&] {
    et::check_handle(t, et::HandleKind::Trainer, "et_trainer_eval");
    TORCH_CHECK(out_stats, "et_trainer_eval: null argument");
    et::train_eval(t->t, out_stats);
  });
}

}  // extern "C"
