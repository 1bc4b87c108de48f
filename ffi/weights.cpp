// weights.cpp — model shape checks and weights created from mapped safetensors bytes.
#include "shim.h"

namespace et {

torch::ScalarType scalar_type(int32_t d) {
  switch (d) {
    case ET_F32: return torch::kFloat32;
    case ET_F16: return torch::kFloat16;
    case ET_BF16: return torch::kBFloat16;
    case ET_I8: return torch::kFloat32;  // quantized when packed
  }
  TORCH_CHECK(false, "unknown dtype code ", d);
}

const char* weight_name(int32_t kind) {
  static const char* names[ET_W_COUNT] = {"embed", "norm", "lm_head", "attn_norm", "q", "k", "v", "o",
                                          "q_bias", "k_bias", "v_bias", "ffn_norm", "gate", "up", "down",
                                          "fc", "fc_bias"};
  return kind >= 0 && kind < ET_W_COUNT ? names[kind] : "?";
}

bool is_global(int32_t kind) { return kind == ET_W_EMBED || kind == ET_W_NORM || kind == ET_W_LM_HEAD; }
static bool is_bias(int32_t kind) { return kind == ET_W_Q_BIAS || kind == ET_W_K_BIAS || kind == ET_W_V_BIAS; }

// whether a finished model must have this per-layer weight
bool layer_needs(const et_model_config& c, int32_t kind) {
  if (is_bias(kind)) return c.attention_bias;
  if (kind == ET_W_ATTN_NORM) return !c.draft;  // EAGLE heads drop layer 0's input norm
  if (kind == ET_W_FC) return c.draft;
  if (kind == ET_W_FC_BIAS) return c.draft && c.fc_bias;
  return true;
}

std::vector<int64_t> expected_shape(const et_model_config& c, int32_t kind) {
  const int64_t h = c.hidden_size, q = int64_t(c.n_heads) * c.head_dim, kv = int64_t(c.n_kv_heads) * c.head_dim;
  switch (kind) {
    case ET_W_EMBED: case ET_W_LM_HEAD: return {c.vocab_size, h};
    case ET_W_NORM: case ET_W_ATTN_NORM: case ET_W_FFN_NORM: return {h};
    case ET_W_Q: return {q, h};
    case ET_W_K: case ET_W_V: return {kv, h};
    case ET_W_O: return {h, q};
    case ET_W_Q_BIAS: return {q};
    case ET_W_K_BIAS: case ET_W_V_BIAS: return {kv};
    case ET_W_GATE: case ET_W_UP: return {c.intermediate_size, h};
    case ET_W_DOWN: return {h, c.intermediate_size};
    case ET_W_FC: return {h, 2 * h};
    case ET_W_FC_BIAS: return {h};
  }
  TORCH_CHECK(false, "unknown weight kind ", kind);
}

void check_config(const et_model_config& c) {
  TORCH_CHECK(c.hidden_size > 0 && c.intermediate_size > 0 && c.n_layers > 0 && c.vocab_size > 0,
              "model sizes must be positive");
  TORCH_CHECK(c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0,
              "n_heads (", c.n_heads, ") must be a positive multiple of n_kv_heads (", c.n_kv_heads, ")");
  TORCH_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, "head_dim must be positive and even, got ", c.head_dim);
  TORCH_CHECK(c.rms_norm_eps > 0, "rms_norm_eps must be positive");
  TORCH_CHECK(c.attention_scale > 0, "attention_scale must be positive");
  device_of(c.device, c.device_index);  // a known device code; CUDA present with that ordinal
  TORCH_CHECK(!c.draft || c.n_layers == 1, "a draft head has exactly one layer, got ", c.n_layers);
  scalar_type(c.dtype);
}

static torch::Tensor& slot(Model& m, int32_t kind, int32_t layer) {
  TORCH_CHECK(kind >= 0 && kind < ET_W_COUNT, "unknown weight kind ", kind);
  if (is_global(kind)) {
    TORCH_CHECK(layer == -1, "weight ", weight_name(kind), " is global: layer must be -1, got ", layer);
    return m.global[kind];
  }
  TORCH_CHECK(layer >= 0 && layer < m.cfg.n_layers, "layer ", layer, " out of range [0, ", m.cfg.n_layers, ")");
  return m.layers[layer].w[kind];
}

// A tensor over the mapped bytes that keeps the mapping alive as long as it lives.
static torch::Tensor map_tensor(const std::shared_ptr<Mapping>& map, uint64_t offset, uint64_t nbytes,
                                torch::ScalarType st, const std::vector<int64_t>& shape) {
  TORCH_CHECK(offset <= map->size && nbytes <= map->size - offset, map->path, ": bytes [", offset, ", ",
              offset + nbytes, ") lie outside the file (", map->size, " bytes)");
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  TORCH_CHECK(uint64_t(numel) * torch::elementSize(st) == nbytes, map->path, ": ", nbytes,
              " bytes do not hold ", numel, " elements of ", c10::toString(st));
  auto keep = map;
  void* p = static_cast<char*>(map->addr) + offset;
  auto t = torch::from_blob(p, shape, [keep](void*) {}, torch::TensorOptions().dtype(st));
  // kernels may assume natural alignment: copy the rare misaligned tensor
  if (reinterpret_cast<uintptr_t>(p) % torch::elementSize(st) != 0) t = t.clone();
  return t;
}

}  // namespace et

using et::guarded;

extern "C" {

int et_model_set_weight(et_model* model, int32_t kind, int32_t layer, et_mmap* file, uint64_t offset,
                        uint64_t nbytes, int32_t file_dtype, const int64_t* shape, int32_t ndim) {
  return guarded([&] {
    et::check_handle(model, et::HandleKind::Model, "et_model_set_weight");
    et::check_handle(file, et::HandleKind::Mmap, "et_model_set_weight");
    TORCH_CHECK(shape || ndim == 0, "et_model_set_weight: null argument");
    auto& m = *model->m;
    auto& dst = et::slot(m, kind, layer);
    TORCH_CHECK(ndim >= 0 && ndim <= 8, "bad rank ", ndim);
    std::vector<int64_t> got(shape, shape + ndim);
    auto want = et::expected_shape(m.cfg, kind);
    TORCH_CHECK(got == want, "weight ", et::weight_name(kind), " has shape ", c10::IntArrayRef(got),
                ", the config implies ", c10::IntArrayRef(want));
    c10::InferenceMode guard;
    auto t = et::map_tensor(file->map, offset, nbytes, et::scalar_type(file_dtype), got);
    dst = t.to(m.opts.device(), m.opts.dtype().toScalarType());
    if (!et::is_global(kind)) m.layers[layer].packed[kind] = et::Packed{};  // packed again at finish
    if (kind == ET_W_LM_HEAD || kind == ET_W_EMBED) m.packed_lm_head = et::Packed{};
    m.finished = false;
  });
}

int et_model_finish(et_model* model) {
  return guarded([&] {
    et::check_handle(model, et::HandleKind::Model, "et_model_finish");
    auto& m = *model->m;
    auto need = [&](const torch::Tensor& t, int32_t kind, int32_t layer) {
      TORCH_CHECK(t.defined(), "missing weight ", et::weight_name(kind), layer >= 0 ? " of layer " : "",
                  layer >= 0 ? std::to_string(layer) : std::string());
    };
    need(m.global[ET_W_EMBED], ET_W_EMBED, -1);
    if (!m.cfg.draft) need(m.global[ET_W_NORM], ET_W_NORM, -1);  // a draft head has no final norm
    if (!m.cfg.tie_embeddings) need(m.global[ET_W_LM_HEAD], ET_W_LM_HEAD, -1);
    for (int32_t l = 0; l < m.cfg.n_layers; l++) {
      for (int32_t k = ET_W_ATTN_NORM; k < ET_W_COUNT; k++) {
        // a product the CPU kernels packed at an earlier finish is present as its packed copy
        const auto& ly = m.layers[l];
        if (et::layer_needs(m.cfg, k)) need(ly.w[k].defined() ? ly.w[k] : ly.packed[k].w, k, l);
      }
    }
    TORCH_CHECK(m.cfg.dtype != ET_I8 || et::use_cpu_kernels(m),
                "int8 weights run on the CPU kernels only (device cpu, ET_CPU_KERNELS not 0, head_dim <= 256)");
    c10::InferenceMode guard;
    if (et::use_cpu_kernels(m)) et::pack_cpu_weights(m);
    else et::fuse_weights(m);
    m.finished = true;
  });
}

int et_model_share(et_model* draft, const et_model* target) {
  return guarded([&] {
    et::check_handle(draft, et::HandleKind::Model, "et_model_share");
    et::check_handle(target, et::HandleKind::Model, "et_model_share");
    auto& d = *draft->m;
    const auto& t = *target->m;
    TORCH_CHECK(d.cfg.draft && !t.cfg.draft, "et_model_share: needs a draft head and a target model");
    TORCH_CHECK(d.cfg.hidden_size == t.cfg.hidden_size, "draft hidden size ", d.cfg.hidden_size,
                " differs from the target's ", t.cfg.hidden_size);
    TORCH_CHECK(d.cfg.vocab_size == t.cfg.vocab_size, "draft vocabulary ", d.cfg.vocab_size,
                " differs from the target's ", t.cfg.vocab_size);
    // the CPU kernels compute in float32 whatever the weights' dtype, so there a head's may differ
    const bool mixed_ok = et::use_cpu_kernels(d) && et::use_cpu_kernels(t);
    TORCH_CHECK(d.opts.device() == t.opts.device() && (d.opts.dtype() == t.opts.dtype() || mixed_ok),
                "draft and target must share device and dtype");
    TORCH_CHECK(t.finished, "et_model_share: finish the target first");
    if (!d.global[ET_W_EMBED].defined()) d.global[ET_W_EMBED] = t.global[ET_W_EMBED];
    d.global[ET_W_LM_HEAD] = t.lm_head();
    d.packed_lm_head = t.packed_lm_head;  // the CPU kernels' copy, shared too
    d.cfg.tie_embeddings = 0;
    d.finished = false;
  });
}

int et_model_weight_bytes(const et_model* model, uint64_t* out) {
  return guarded([&] {
    et::check_handle(model, et::HandleKind::Model, "et_model_weight_bytes");
    TORCH_CHECK(out, "et_model_weight_bytes: null argument");
    uint64_t total = 0;
    auto add = [&](const torch::Tensor& t) { if (t.defined()) total += t.numel() * t.element_size(); };
    for (auto& t : model->m->global) add(t);  // the CPU kernels' packed LM head is not counted again
    const auto& m = *model->m;
    for (const auto& l : m.layers) {
      for (int32_t k = 0; k < ET_W_COUNT; k++) {
        if (l.w[k].defined()) add(l.w[k]);
        else if (l.packed[k].defined()) total += c10::multiply_integers(et::expected_shape(m.cfg, k)) * l.packed[k].w.element_size();
      }
    }
    *out = total;
  });
}

}  // extern "C"
