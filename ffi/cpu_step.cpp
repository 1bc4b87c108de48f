// cpu_step.cpp — a CPU forward's step (cpu_step.h): the key lists of every new row, causal or by its mask.
#include "cpu_step.h"

#include <algorithm>

#include "cpu_kernels.h"

namespace et::cpu {

namespace {

std::vector<int32_t>& run_of_slots() {
  static std::vector<int32_t> run;
  return run;
}

// appends the key lists of one sequence's n new tokens after `len` cached slots (a masked list into
// k.masked, reserved beforehand for every row's at most: it never moves)
void add_key_lists(KeyLists& k, int32_t len, int32_t n, const uint8_t* mask, int32_t mask_cols) {
  const int32_t L = len + n;
  TORCH_CHECK(!mask || mask_cols == n || mask_cols == L, "mask has ", mask_cols, " columns; expected n (", n,
              ") or len + n (", L, ")");
  TORCH_CHECK(int64_t(run_of_slots().size()) >= L, "a forward over ", L, " slots with a slot run of ",
              run_of_slots().size(), " (a cache not allocated by allocate_cache)");
  const int32_t skip = mask && mask_cols == n ? len : 0;  // columns every row sees: the cached slots
  for (int32_t i = 0; i < n; i++) {
    if (!mask) {
      k.list.push_back(slot_run());
      k.count.push_back(int64_t(len) + i + 1);
    } else {
      const uint8_t* row = mask + int64_t(i) * mask_cols;
      TORCH_CHECK(row[len + i - skip] != 0, "mask must let every new token attend to itself (row ", i, ")");
      const size_t first = k.masked.size();
      for (int32_t j = 0; j < skip; j++) k.masked.push_back(j);
      for (int32_t j = 0; j < mask_cols; j++)
        if (row[j]) k.masked.push_back(skip + j);
      k.list.push_back(k.masked.data() + first);
      k.count.push_back(int64_t(k.masked.size() - first));
    }
    k.widest = std::max<int64_t>(k.widest, k.count.back());
  }
}

}  // namespace

Step make_step(const SeqPart* parts, size_t count, const int32_t* positions, int32_t layers) {
  Step s{positions, 0, layers, {}, {}, {}, {}};
  int64_t rows = 0, masked = 0;  // a masked row (a tree's): at most its cache and every new row
  for (size_t b = 0; b < count; b++) {
    const int64_t n = parts[b].n, len = parts[b].kv->len;
    rows += n;
    if (parts[b].mask) masked += n * (len + n);
  }
  s.keys.masked.reserve(size_t(masked));
  s.keys.list.reserve(size_t(rows));
  s.keys.count.reserve(size_t(rows));
  s.row_part.reserve(size_t(rows));
  s.row_slot.reserve(size_t(rows));
  s.caches.reserve(count * size_t(layers));
  for (size_t b = 0; b < count; b++) {
    const auto& p = parts[b];
    add_key_lists(s.keys, p.kv->len, p.n, p.mask, p.mask_cols);
    for (int32_t i = 0; i < p.n; i++) {
      s.row_part.push_back(int32_t(b));
      s.row_slot.push_back(p.kv->len + i);
    }
    for (int32_t l = 0; l < layers; l++)
      s.caches.push_back({p.kv->k_data[size_t(l)], p.kv->v_data[size_t(l)], cpu::slot_blocks(p.kv->capacity)});
    s.n += p.n;
  }
  return s;
}

const int32_t* slot_run() { return run_of_slots().data(); }

void grow_slot_run(int64_t n) {
  auto& run = run_of_slots();
  for (int64_t s = int64_t(run.size()); s < n; s++) run.push_back(int32_t(s));
}

}  // namespace et::cpu
