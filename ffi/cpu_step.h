// cpu_step.h — where a CPU forward's rows go: each new row's sequence, cache slot and RoPE position, and the
// cache slots it attends to (its key list), made once per forward for every layer to read (cpu_forward.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "shim.h"

namespace et::cpu {

// The cache slots each new token attends to, in increasing order: row i's count[i] slots at list[i]. No
// mask: causal, every slot up to the row's own, a prefix of slot_run(). With a mask: in `masked`
// (mask_cols == n: every cached slot, then the mask over the new tokens).
struct KeyLists {
  std::vector<const int32_t*> list;
  std::vector<int64_t> count;
  std::vector<int32_t> masked;
  int64_t widest = 0;  // most slots any row sees
};

// 0, 1, 2, .. up to at least every CPU cache's capacity: grown when a cache is allocated (grow_slot_run),
// never while a forward holds a step
const int32_t* slot_run();
void grow_slot_run(int64_t n);

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
