// cpu_step.cpp — a CPU forward's step (cpu_step.h): the key lists of every new row, causal or by its mask.
#include "cpu_step.h"

#include <algorithm>

#include "cpu_kernels.h"

namespace et::cpu {

namespace {

// appends the key lists of one sequence's n new tokens after `len` cached slots
void add_key_lists(KeyLists& k, int32_t len, int32_t n, const uint8_t* mask, int32_t mask_cols) {
  const int32_t L = len + n;
  TORCH_CHECK(!mask || mask_cols == n || mask_cols == L, "mask has ", mask_cols, " columns; expected n (", n,
              ") or len + n (", L, ")");
  const int32_t skip = mask && mask_cols == n ? len : 0;  // columns every row sees: the cached slots
  for (int32_t i = 0; i < n; i++) {
    k.first.push_back(int64_t(k.keys.size()));
    if (!mask) {
      for (int32_t j = 0; j <= len + i; j++) k.keys.push_back(j);
    } else {
      const uint8_t* row = mask + int64_t(i) * mask_cols;
      TORCH_CHECK(row[len + i - skip] != 0, "mask must let every new token attend to itself (row ", i, ")");
      for (int32_t j = 0; j < skip; j++) k.keys.push_back(j);
      for (int32_t j = 0; j < mask_cols; j++)
        if (row[j]) k.keys.push_back(skip + j);
    }
    k.widest = std::max<int64_t>(k.widest, int64_t(k.keys.size()) - k.first.back());
  }
}

}  // namespace

Step make_step(const SeqPart* parts, size_t count, const int32_t* positions, int32_t layers) {
  Step s{positions, 0, layers, {}, {}, {}, {}};
  int64_t rows = 0, keys = 0;  // causal: exactly; masked (a tree): at most its cache and every new row
  for (size_t b = 0; b < count; b++) {
    const int64_t n = parts[b].n, len = parts[b].kv->len;
    rows += n;
    keys += parts[b].mask ? n * (len + n) : n * len + n * (n + 1) / 2;
  }
  s.keys.keys.reserve(size_t(keys));
  s.keys.first.reserve(size_t(rows) + 1);
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
      s.caches.push_back({p.kv->k[l].data_ptr<float>(), p.kv->v[l].data_ptr<float>(), cpu::slot_blocks(p.kv->capacity)});
    s.n += p.n;
  }
  s.keys.first.push_back(int64_t(s.keys.keys.size()));
  return s;
}

}  // namespace et::cpu
