// cpu_step.h — where a CPU forward's rows go: each new row's sequence, cache slot and RoPE position, and the
// cache slots it attends to (its key list), made once per forward for every layer to read (cpu_forward.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "shim.h"

namespace et::cpu {

// The cache slots each new token attends to, in increasing order (row i: keys[first[i] .. first[i+1])).
// No mask: causal. mask_cols == n: every cached slot, then the mask over the new tokens.
struct KeyLists {
  std::vector<int32_t> keys;
  std::vector<int64_t> first;
  int64_t widest = 0;  // most slots any row sees
};

// One sequence's cache at one layer: keys and values in blocks of slots (cpu_kernels.h's SLOT_BLOCK).
struct LayerCache {
  float* k;
  float* v;
  int64_t blocks;  // per key/value head
};

// Where each new row goes: its sequence's cache and slot, and the slots it attends to.
struct Step {
  const int32_t* positions;
  int64_t n;                       // rows over all sequences
  int32_t layers;
  KeyLists keys;                   // row r: keys.keys[first[r] .. first[r + 1])
  std::vector<int32_t> row_part;   // row r's sequence
  std::vector<int32_t> row_slot;   // the slot row r's keys and values go to
  std::vector<LayerCache> caches;  // [part * layers + l], looked up once per forward

  const LayerCache& cache(int64_t row, int32_t l) const { return caches[size_t(row_part[row]) * layers + l]; }
};

// The step of `count` sequences' parts (their rows in turn): checks each mask (a throw names the fault)
Step make_step(const SeqPart* parts, size_t count, const int32_t* positions, int32_t layers);

}  // namespace et::cpu
