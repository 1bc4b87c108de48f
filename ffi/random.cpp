// random.cpp — random weights made where the model lives, for benchmarks at real sizes without files.
// Norms are 1, biases 0, every other weight is normal(0, std), drawn from one generator of the model's
// device seeded with `seed`, in a fixed order: the same seed gives the same weights on the same device.
#include "shim.h"

namespace et {
namespace {

bool is_norm(int32_t kind) { return kind == ET_W_NORM || kind == ET_W_ATTN_NORM || kind == ET_W_FFN_NORM; }
bool is_bias(int32_t kind) {
  return kind == ET_W_Q_BIAS || kind == ET_W_K_BIAS || kind == ET_W_V_BIAS || kind == ET_W_FC_BIAS;
}

// a private generator of the model's device type, so the global one's state is left alone
at::Generator seeded_generator(const torch::Device& dev, uint64_t seed) {
  auto gen = at::globalContext().defaultGenerator(dev).clone();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

torch::Tensor random_weight(const Model& m, int32_t kind, at::Generator& gen, float std) {
  auto shape = expected_shape(m.cfg, kind);
  if (is_norm(kind)) return torch::ones(shape, m.opts);
  if (is_bias(kind)) return torch::zeros(shape, m.opts);
  return torch::empty(shape, m.opts).normal_(0.0, std, gen);  // drawn in the compute dtype, on the device
}

// global kinds this model owns: a draft head takes its embedding and LM head from the target (et_model_share)
bool global_needs(const et_model_config& c, int32_t kind) {
  if (c.draft) return false;
  if (kind == ET_W_LM_HEAD) return !c.tie_embeddings;
  return kind == ET_W_EMBED || kind == ET_W_NORM;
}

}  // namespace
}  // namespace et

using et::guarded;

extern "C" {

int et_model_init_random(et_model* model, uint64_t seed, float std) {
  return guarded([&] {
    et::check_handle(model, et::HandleKind::Model, "et_model_init_random");
    TORCH_CHECK(std > 0 && std < 1e3, "et_model_init_random: std must be in (0, 1000), got ", std);
    auto& m = *model->m;
    c10::InferenceMode guard;
    auto gen = et::seeded_generator(m.opts.device(), seed);
    // built aside and swapped in at the end, so a failure (out of memory, say) leaves the model as it was
    auto global = m.global;
    auto layers = m.layers;
    for (int32_t k : {ET_W_EMBED, ET_W_NORM, ET_W_LM_HEAD}) {
      if (et::global_needs(m.cfg, k)) global[k] = et::random_weight(m, k, gen, std);
    }
    for (auto& layer : layers) {
      for (int32_t k = ET_W_ATTN_NORM; k < ET_W_COUNT; k++) {
        if (et::layer_needs(m.cfg, k)) {
          layer.w[k] = et::random_weight(m, k, gen, std);
          layer.packed[k] = et::Packed{};  // packed again at et_model_finish
        }
      }
    }
    m.global = std::move(global);
    m.layers = std::move(layers);
    if (global[ET_W_EMBED].defined() || global[ET_W_LM_HEAD].defined()) m.packed_lm_head = et::Packed{};
    m.finished = false;
  });
}

}  // extern "C"
