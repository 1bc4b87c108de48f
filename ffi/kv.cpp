// kv.cpp — cache length, rollback and compaction of accepted tree slots.
#include <cstring>

#include "cpu_kernels.h"
#include "shim.h"

using et::guarded;

namespace {

// On the CPU in float32: slot i's keys and values are copied down to base + i in ascending order, which is
// safe in place because slots rise at least as fast as their destinations (slots[i] >= base + i).
bool keep_in_place(et::KvCache& c, int32_t base, const int32_t* slots, int32_t n) {
  const auto& k0 = c.k[0];
  if (!k0.device().is_cpu() || k0.scalar_type() != torch::kFloat32) return false;
  const int64_t cap = c.capacity, H = k0.size(0), D = k0.size(2), blocks = et::cpu::slot_blocks(cap);
  for (size_t l = 0; l < c.k.size(); l++) {
    float* k = c.k[l].data_ptr<float>();
    float* v = c.v[l].data_ptr<float>();
    for (int64_t h = 0; h < H; h++) {
      for (int32_t i = 0; i < n; i++) {
        const int64_t from = slots[i], to = base + i;
        if (from == to) continue;
        if (c.blocked) {
          for (int64_t d = 0; d < D; d++) {
            const int64_t at = et::cpu::slot_index(to, h, d, blocks, D);
            const int64_t was = et::cpu::slot_index(from, h, d, blocks, D);
            k[at] = k[was];
            v[at] = v[was];
          }
        } else {
          std::memcpy(k + (h * cap + to) * D, k + (h * cap + from) * D, D * sizeof(float));
          std::memcpy(v + (h * cap + to) * D, v + (h * cap + from) * D, D * sizeof(float));
        }
      }
    }
  }
  return true;
}

}  // namespace

extern "C" {

int et_kv_len(const et_kv* kv, int32_t* out) {
  return guarded([&] {
    et::check_handle(kv, et::HandleKind::Kv, "et_kv_len");
    TORCH_CHECK(out, "et_kv_len: null argument");
    *out = kv->c.len;
  });
}

int et_kv_capacity(const et_kv* kv, int32_t* out) {
  return guarded([&] {
    et::check_handle(kv, et::HandleKind::Kv, "et_kv_capacity");
    TORCH_CHECK(out, "et_kv_capacity: null argument");
    *out = kv->c.capacity;
  });
}

int et_kv_truncate(et_kv* kv, int32_t n) {
  return guarded([&] {
    et::check_handle(kv, et::HandleKind::Kv, "et_kv_truncate");
    TORCH_CHECK(n >= 0 && n <= kv->c.len, "truncate to ", n, " outside [0, ", kv->c.len, "]");
    kv->c.len = n;  // slots past len are dead: the next forward overwrites them
  });
}

int et_kv_keep(et_kv* kv, int32_t base, const int32_t* slots, int32_t n) {
  return guarded([&] {
    et::check_handle(kv, et::HandleKind::Kv, "et_kv_keep");
    TORCH_CHECK(slots || n == 0, "et_kv_keep: null argument");
    auto& c = kv->c;
    TORCH_CHECK(base >= 0 && base <= c.len, "keep base ", base, " outside [0, ", c.len, "]");
    TORCH_CHECK(n >= 0 && base + int64_t(n) <= c.len, "keep of ", n, " slots from base ", base, " exceeds len ", c.len);
    for (int32_t i = 0; i < n; i++) {
      TORCH_CHECK(slots[i] >= base && slots[i] < c.len, "slot ", slots[i], " outside [", base, ", ", c.len, ")");
      TORCH_CHECK(i == 0 || slots[i] > slots[i - 1], "slots must be strictly increasing");
    }
    bool in_place = true;  // slots already where they should be: nothing to move
    for (int32_t i = 0; i < n; i++) in_place = in_place && slots[i] == base + i;
    c10::InferenceMode guard;
    if (n > 0 && !in_place && keep_in_place(c, base, slots, n)) {
      c.len = base + n;
      return;
    }
    if (n > 0 && !in_place) {
      auto idx = et::host_to_device(slots, n, torch::kInt32, c.k[0].device(), torch::kLong);
      for (size_t l = 0; l < c.k.size(); l++) {
        // index_select copies first, so sources overlapping the destination are safe (a blocked cache, always
        // float32 on the CPU, never comes here)
        c.k[l].narrow(1, base, n).copy_(c.k[l].index_select(1, idx));
        c.v[l].narrow(1, base, n).copy_(c.v[l].index_select(1, idx));
      }
    }
    c.len = base + n;
  });
}

}  // extern "C"
