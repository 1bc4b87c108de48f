// handles.cpp — the registry of live handles. Every handle the shim gives out is recorded here until it
// is freed, so a freed, foreign or mistyped pointer coming back through the ABI is refused with a message
// instead of being dereferenced, a second free is a no-op, and tests can count what is alive.
#include <mutex>
#include <unordered_map>

#include "shim.h"

namespace et {
namespace {

std::mutex registry_mutex;
std::unordered_map<const void*, HandleKind> registry;
int64_t live_counts[int(HandleKind::Count)] = {};

const char* kind_name(HandleKind k) {
  switch (k) {
    case HandleKind::Mmap: return "et_mmap";
    case HandleKind::Model: return "et_model";
    case HandleKind::Kv: return "et_kv";
    case HandleKind::Out: return "et_out";
    case HandleKind::Trainer: return "et_trainer";
    default: return "handle";
  }
}

}  // namespace

void register_handle(const void* p, HandleKind k) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry[p] = k;
  live_counts[int(k)]++;
}

bool release_handle(const void* p, HandleKind k) {
  if (!p) return false;
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(p);
  if (it == registry.end() || it->second != k) return false;
  registry.erase(it);
  live_counts[int(k)]--;
  return true;
}

void check_handle(const void* p, HandleKind k, const char* fn) {
  TORCH_CHECK(p, fn, ": null ", kind_name(k));
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(p);
  TORCH_CHECK(it != registry.end(), fn, ": not a live ", kind_name(k), " (freed already, or never made by this library)");
  TORCH_CHECK(it->second == k, fn, ": expected an ", kind_name(k), ", got an ", kind_name(it->second));
}

int64_t live_handles(HandleKind k) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return live_counts[int(k)];
}

}  // namespace et

extern "C" int et_live_handles(int64_t* counts, int32_t n) {
  return et::guarded([&] {
    TORCH_CHECK(counts && n >= 0, "et_live_handles: null argument");
    for (int32_t i = 0; i < n; i++) {
      counts[i] = i < int32_t(et::HandleKind::Count) ? et::live_handles(et::HandleKind(i)) : 0;
    }
  });
}

void et::clean_vector_state() {
#if defined(__x86_64__)
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) asm volatile("vzeroupper");  // the low 128 bits, all SSE code sees, are kept
#endif
}
