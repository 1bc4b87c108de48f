// cpu_split.cpp — how the CPU kernels share a forward among the threads. A larger model's products split
// their outputs over the threads (cpu_forward.cpp's linear and attention). A small model's ops are each a
// few microseconds, about what handing pieces to another thread costs (about 25 handoffs a forward), so a
// batch of several sequences splits by sequence instead, each thread running whole forwards for its share
// (one handoff a forward), and a lone sequence's forward of a few rows stays on one thread.
#include <algorithm>
#include <exception>
#include <optional>

#include "shim.h"

namespace et {

namespace {

// Multiply-adds of the products for one row: the weights' elements, the LM head's included.
double row_macs(const et_model_config& c) {
  const double h = c.hidden_size, qkv = double(c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
  const double layer = h * qkv + double(c.n_heads) * c.head_dim * h + 3.0 * h * c.intermediate_size;
  return c.n_layers * layer + (c.draft ? 2.0 * h * h : 0.0) + h * c.vocab_size;
}

// Bytes of product weights at or under which a model is small (above): they stay in each core's caches, so
// every thread reading all of them costs little.
constexpr double SMALL_MODEL_BYTES = double(4 << 20);

// Rows from which a small model's lone forward (a prefill, a large tree) splits its ops after all: there each
// op is long enough to share (stories260K at 2 threads, context 64, `scripts/forward-cost.ts`: 8 rows 97 us
// on one thread against 99-102 split; 16 rows 189 against 167; 60 rows 755 against 598).
constexpr int64_t SPLIT_ROWS = 16;

// The parts cut into `groups` contiguous runs of about equal work, each row costing its products plus its
// attention over its slots.
std::vector<PartGroup> group_parts(const Model& m, const std::vector<SeqPart>& parts, int groups) {
  const auto& c = m.cfg;
  const double per_row = row_macs(c), per_slot = 2.0 * c.n_layers * c.n_heads * c.head_dim;
  std::vector<double> cost(parts.size());
  double total = 0;
  for (size_t b = 0; b < parts.size(); b++) {
    cost[b] = parts[b].n * (per_row + per_slot * (parts[b].kv->len + parts[b].n));
    total += cost[b];
  }
  std::vector<PartGroup> out;
  double done = 0;
  int64_t row = 0;
  size_t b = 0;
  for (int g = 0; g < groups && b < parts.size(); g++) {
    const double until = total * (g + 1) / groups;
    PartGroup grp{b, 0, row, 0};
    // at least one part each; the last group takes what is left
    while (b < parts.size() && (grp.count == 0 || g == groups - 1 || done + cost[b] / 2 <= until)) {
      done += cost[b];
      grp.rows += parts[b].n;
      grp.count++;
      b++;
    }
    row += grp.rows;
    out.push_back(grp);
  }
  return out;
}

}  // namespace

bool small_cpu_model(const Model& m) {
  return row_macs(m.cfg) * double(m.packed_lm_head.w.element_size()) <= SMALL_MODEL_BYTES;
}

std::vector<PartGroup> split_parts(const Model& m, const std::vector<SeqPart>& parts) {
  const int threads = std::max(1, torch::get_num_threads());
  if (threads <= 1 || parts.size() < 2 || !small_cpu_model(m)) {
    int64_t rows = 0;
    for (const auto& p : parts) rows += p.n;
    return {PartGroup{0, parts.size(), 0, rows}};
  }
  return group_parts(m, parts, int(std::min<size_t>(size_t(threads), parts.size())));
}

void run_groups(const Model& m, const std::vector<PartGroup>& groups, const std::function<void(size_t)>& run) {
  if (groups.size() == 1) {
    std::optional<cpu::Serial> serial;  // a small model's short lone forward stays on this thread
    if (small_cpu_model(m) && groups[0].rows < SPLIT_ROWS) serial.emplace();
    return run(0);
  }
  // a group's forward throws only on a broken model: its error is carried out of the worker, thrown here
  std::vector<std::exception_ptr> failed(groups.size());
  cpu::parallel_for(int64_t(groups.size()), 1, [&](int64_t a, int64_t b) {
    for (int64_t g = a; g < b; g++) {
      try {
        run(size_t(g));
      } catch (...) {
        failed[size_t(g)] = std::current_exception();
      }
    }
  });
  for (const auto& e : failed)
    if (e) std::rethrow_exception(e);
}

}  // namespace et
