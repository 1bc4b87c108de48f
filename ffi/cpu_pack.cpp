// cpu_pack.cpp — the CPU kernels' copies of a model's product weights, made at et_model_finish: each
// weight in panels of 32 outputs (cpu_kernels.h) in its own dtype, or rounded to int8 with a scale per output
// (ET_I8); q/k/v and gate/up fused into one product each.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "cpu_kernels.h"
#include "shim.h"

namespace et {
namespace {

using torch::Tensor;

// the panel layout of w's elements (float32, bfloat16, float16 or int8, copied as they are)
template <typename E>
void pack_into(const E* s, E* d, int64_t out, int64_t in) {
  cpu::parallel_for(cpu::panels(out), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++)
      for (int64_t k = 0; k < in; k++)
        for (int64_t l = 0; l < cpu::PANEL; l++) {
          const int64_t j = p * cpu::PANEL + l;
          d[(p * in + k) * cpu::PANEL + l] = j < out ? s[j * in + k] : E(0);
        }
  });
}

// int8 weights q (out x in) in groups of four inputs for the byte dot product (cpu_kernels.h), plus 128
Tensor pack_groups(const int8_t* q, int64_t out, int64_t in) {
  const int64_t in4 = cpu::i8_group_inputs(in);
  auto packed = torch::empty({cpu::panels(out), in4, cpu::PANEL}, torch::kChar);
  uint8_t* d = reinterpret_cast<uint8_t*>(packed.data_ptr<int8_t>());
  cpu::parallel_for(cpu::panels(out), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++)
      for (int64_t g = 0; g < in4; g += 4)
        for (int64_t l = 0; l < cpu::PANEL; l++)
          for (int64_t e = 0; e < 4; e++) {
            const int64_t j = p * cpu::PANEL + l, k = g + e;
            d[(p * in4 + g) * cpu::PANEL + 4 * l + e] = uint8_t((j < out && k < in ? q[j * in + k] : 0) + 128);
          }
  });
  return packed;
}

Packed pack(const Tensor& w) {
  const Tensor src = w.contiguous();
  const int64_t out = src.size(0), in = src.size(1);
  auto packed = torch::empty({cpu::panels(out), in, cpu::PANEL}, src.options());
  if (src.scalar_type() == torch::kBFloat16 || src.scalar_type() == torch::kHalf) {
    pack_into(reinterpret_cast<const uint16_t*>(src.data_ptr()), reinterpret_cast<uint16_t*>(packed.data_ptr()), out, in);
  } else {
    pack_into(src.data_ptr<float>(), packed.data_ptr<float>(), out, in);
  }
  return {packed, Tensor()};
}

// w as int8 panels (ET_I8): output j's weights divided by its scale max|w_j| / 127 (1 for a row of zeros)
// and rounded to nearest, even on ties, so each lies in [-127, 127]; in panel rows, or in groups of four
// inputs (`groups`); `what` names w in an error
Packed pack_int8(const Tensor& w, const std::string& what, bool groups) {
  const Tensor src = w.contiguous().to(torch::kFloat32);
  const int64_t out = src.size(0), in = src.size(1);
  auto scale = torch::zeros({cpu::panels(out) * cpu::PANEL}, torch::kFloat32);
  auto q = torch::empty({out, in}, torch::kChar);
  const float* s = src.data_ptr<float>();
  float* sc = scale.data_ptr<float>();
  int8_t* qp = q.data_ptr<int8_t>();
  std::atomic<bool> finite{true};
  cpu::parallel_for(out, 16, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
      const float* row = s + j * in;
      float most = 0;
      bool ok = true;  // (a NaN would slip past std::max)
      for (int64_t k = 0; k < in; k++) {
        ok = ok && std::isfinite(row[k]);
        most = std::max(most, std::fabs(row[k]));
      }
      if (!ok) {
        finite = false;
        continue;
      }
      const float sj = most > 0 ? most / 127.0f : 1.0f;
      sc[j] = sj;
      for (int64_t k = 0; k < in; k++) qp[j * in + k] = int8_t(std::nearbyint(row[k] / sj));
    }
  });
  TORCH_CHECK(finite, "int8 weights: weight ", what, " holds a value that is not finite (NaN or infinity)");
  if (groups) return {pack_groups(qp, out, in), scale, in, true};
  auto packed = torch::empty({cpu::panels(out), in, cpu::PANEL}, torch::kChar);
  pack_into(qp, packed.data_ptr<int8_t>(), out, in);
  return {packed, scale};
}

// the packed entries of a layer, fused (see Layer); made again at every finish, from the entries as they
// are then (a weight set since is packed anew)
void fuse_packed(const et_model_config& c, Layer& ly) {
  auto fuse = [&](std::initializer_list<int32_t> kinds) {
    std::vector<Tensor> parts, scales;
    for (int32_t k : kinds) {
      parts.push_back(ly.packed[k].w);
      if (ly.packed[k].scale.defined()) scales.push_back(ly.packed[k].scale);
    }
    const Packed& part = ly.packed[*kinds.begin()];  // (the parts share their inputs and layout)
    const Packed whole{torch::cat(parts, 0), scales.empty() ? Tensor() : torch::cat(scales, 0), part.in, part.groups};
    int64_t first = 0;
    for (int32_t k : kinds) {
      const int64_t count = ly.packed[k].w.size(0);
      ly.packed[k].w = whole.w.narrow(0, first, count);
      if (whole.scale.defined()) ly.packed[k].scale = whole.scale.narrow(0, first * cpu::PANEL, count * cpu::PANEL);
      first += count;
    }
    return whole;
  };
  ly.packed_gate_up = ly.packed[ET_W_GATE].defined() ? fuse({ET_W_GATE, ET_W_UP}) : Packed{};
  const int64_t qw = int64_t(c.n_heads) * c.head_dim, kw = int64_t(c.n_kv_heads) * c.head_dim;
  const int biases = ly.w[ET_W_Q_BIAS].defined() + ly.w[ET_W_K_BIAS].defined() + ly.w[ET_W_V_BIAS].defined();
  ly.packed_qkv = Packed{};
  ly.packed_qkv_bias = Tensor();
  if (qw % cpu::PANEL != 0 || kw % cpu::PANEL != 0 || (biases != 0 && biases != 3)) return;
  ly.packed_qkv = fuse({ET_W_Q, ET_W_K, ET_W_V});
  if (biases == 3) ly.packed_qkv_bias = torch::cat({ly.w[ET_W_Q_BIAS], ly.w[ET_W_K_BIAS], ly.w[ET_W_V_BIAS]}, 0);
}

}  // namespace

void pack_cpu_weights(Model& m) {
  for (size_t l = 0; l < m.layers.size(); l++) {
    auto& ly = m.layers[l];
    for (int32_t k : {ET_W_Q, ET_W_K, ET_W_V, ET_W_O, ET_W_GATE, ET_W_UP, ET_W_DOWN, ET_W_FC}) {
      if (!ly.w[k].defined()) continue;  // absent (fc of a target), or packed at an earlier finish
      if (m.cfg.dtype == ET_I8) {
        // in groups for the byte dot product where the table has one, but for fc: its inputs (the target's
        // features, not normalized) lose too much quantized (the grown pair's acceptance at depth 1 fell from
        // 0.89 to 0.78 with it, held at 0.87-0.89 without)
        const bool groups = cpu::kernels().linear_i8_groups != nullptr && k != ET_W_FC;
        ly.packed[k] = pack_int8(ly.w[k], std::string(weight_name(k)) + " of layer " + std::to_string(l), groups);
      } else {
        ly.packed[k] = pack(ly.w[k]);
      }
      ly.w[k] = Tensor();  // the kernels read only the packed copy
    }
    // norms and biases are read as float32 (exact from bfloat16)
    for (auto& t : ly.w)
      if (t.defined() && t.scalar_type() != torch::kFloat32) t = t.to(torch::kFloat32);
    fuse_packed(m.cfg, ly);
  }
  if (m.global[ET_W_NORM].defined()) m.global[ET_W_NORM] = m.global[ET_W_NORM].to(torch::kFloat32);
  if (!m.packed_lm_head.defined()) m.packed_lm_head = pack(m.lm_head());
}

}  // namespace et
