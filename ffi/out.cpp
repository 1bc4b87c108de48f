// out.cpp — readers of a forward's results: each copies only what the algorithm needs to the host.
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_kernels.h"
#include "shim.h"

using et::guarded;

namespace {

// CPU logits are read in place by the CPU kernels (no torch ops), unless ET_CPU_KERNELS=0
bool read_in_place(const torch::Tensor& logits) {
  return et::cpu_kernels_enabled() && logits.device().is_cpu() && logits.is_contiguous();
}

const float* row_of(const torch::Tensor& logits, const int32_t* rows, int32_t i) {
  return logits.data_ptr<float>() + int64_t(rows ? rows[i] : i) * logits.size(1);
}

void check_rows(const torch::Tensor& t, const int32_t* rows, int32_t n_rows) {
  if (!rows) {
    TORCH_CHECK(n_rows == t.size(0), "n_rows ", n_rows, " must equal the row count ", t.size(0), " when rows is null");
    return;
  }
  TORCH_CHECK(n_rows > 0, "n_rows must be positive, got ", n_rows);
  for (int32_t i = 0; i < n_rows; i++) {
    TORCH_CHECK(rows[i] >= 0 && rows[i] < t.size(0), "row ", rows[i], " outside [0, ", t.size(0), ")");
  }
}

// the k largest of row[0..V) by value, the lower id first on ties, into ids / values (descending)
void top_k(const float* row, int64_t V, int32_t k, int32_t* ids, float* values) {
  int32_t size = 0;
  for (int64_t j = 0; j < V; j++) {
    const float v = row[j];
    if (size == k && !(v > values[k - 1])) continue;
    int32_t at = size < k ? size++ : k - 1;  // the slot it takes, then moved up past every smaller value
    while (at > 0 && v > values[at - 1]) {
      values[at] = values[at - 1];
      ids[at] = ids[at - 1];
      at--;
    }
    values[at] = v;
    ids[at] = int32_t(j);
  }
}

void topk_in_place(const torch::Tensor& logits, const int32_t* rows, int32_t n_rows, int32_t k, int32_t* ids,
                   float* logp) {
  check_rows(logits, rows, n_rows);
  const auto& K = et::cpu::kernels();
  const int64_t V = logits.size(1);
  std::vector<int32_t> top_ids(int64_t(n_rows) * k);
  std::vector<float> top_logp(int64_t(n_rows) * k);
  for (int32_t i = 0; i < n_rows; i++) {
    const float* row = row_of(logits, rows, i);
    const float lse = K.logsumexp(row, V);
    TORCH_CHECK(!std::isnan(lse), "the model produced NaN logits (row ", i, "): its weights hold NaN or ",
                "overflow in this dtype");
    top_k(row, V, k, top_ids.data() + int64_t(i) * k, top_logp.data() + int64_t(i) * k);
    for (int32_t j = 0; j < k; j++) top_logp[int64_t(i) * k + j] -= lse;
  }
  std::memcpy(ids, top_ids.data(), top_ids.size() * sizeof(int32_t));  // only on success
  std::memcpy(logp, top_logp.data(), top_logp.size() * sizeof(float));
}

const et::Out& checked(const et_out* o, const char* fn) {
  et::check_handle(o, et::HandleKind::Out, fn);
  TORCH_CHECK(o->o.logit_rows().whole.defined(), o->o.hidden().defined()
                                                      ? "a feature store holds no logits (et_out_gather)"
                                                      : "no results yet: run et_forward first");
  return o->o;
}

// the hidden states of a forward's results or of a feature store
const et::Out& checked_hidden(const et_out* o, const char* fn) {
  et::check_handle(o, et::HandleKind::Out, fn);
  TORCH_CHECK(o->o.hidden().defined(), "no results yet: run et_forward first");
  return o->o;
}

// the selected rows of t (all when rows is null)
torch::Tensor select_rows(const torch::Tensor& t, const int32_t* rows, int32_t n_rows) {
  const int64_t total = t.size(0);
  if (!rows) {
    TORCH_CHECK(n_rows == total, "n_rows ", n_rows, " must equal the row count ", total, " when rows is null");
    return t;
  }
  TORCH_CHECK(n_rows > 0, "n_rows must be positive, got ", n_rows);
  for (int32_t i = 0; i < n_rows; i++) {
    TORCH_CHECK(rows[i] >= 0 && rows[i] < total, "row ", rows[i], " outside [0, ", total, ")");
  }
  auto idx = et::host_to_device(rows, n_rows, torch::kInt32, t.device(), torch::kLong);
  return t.index_select(0, idx);
}

void copy_out(const torch::Tensor& t, void* dst) {
  auto host = t.to(torch::kCPU).contiguous();  // device sync
  std::memcpy(dst, host.data_ptr(), host.numel() * host.element_size());
}

// argmax of the rows of `logits` that `rows` names (checked), or of its first n_rows from row `first` on
// when rows is NULL (the caller checks that it holds them), into got[n_rows]: on the CPU kernels in place,
// else by torch with one copy to the host
void argmax_rows(const torch::Tensor& logits, int64_t first, const int32_t* rows, int32_t n_rows, int32_t* got) {
  if (rows) check_rows(logits, rows, n_rows);
  const auto& K = et::cpu::kernels();
  if (read_in_place(logits)) {
    for (int32_t i = 0; i < n_rows; i++) {
      const int64_t best = K.argmax(row_of(logits, rows, i) + first * logits.size(1), logits.size(1));
      TORCH_CHECK(best >= 0, "the model produced NaN logits (row ", i, "): its weights hold NaN or overflow ",
                  "in this dtype");
      got[i] = int32_t(best);
    }
    return;
  }
  c10::InferenceMode guard;
  auto best = (rows ? select_rows(logits, rows, n_rows) : logits.narrow(0, first, n_rows)).max(-1);  // NaN wins a max
  // one copy to the host: a row whose maximum is NaN comes back as id -1
  auto marked = std::get<1>(best).masked_fill(std::get<0>(best).isnan(), -1).to(torch::kInt32);
  copy_out(marked, got);
  for (int32_t i = 0; i < n_rows; i++) {
    TORCH_CHECK(got[i] >= 0, "the model produced NaN logits (row ", i, "): its weights hold NaN or overflow ",
                "in this dtype");
  }
}

}  // namespace

extern "C" {

int et_out_rows(const et_out* o, int32_t* n) {
  return guarded([&] {
    TORCH_CHECK(n, "et_out_rows: null argument");
    *n = static_cast<int32_t>(checked(o, "et_out_rows").logit_rows().count);
  });
}

int et_out_argmax(const et_out* o, const int32_t* rows, int32_t n_rows, int32_t* ids) {
  return guarded([&] {
    TORCH_CHECK(ids, "et_out_argmax: null argument");
    const auto& logits = checked(o, "et_out_argmax").logits();
    if (!rows) check_rows(logits, rows, n_rows);  // n_rows must be the row count
    std::vector<int32_t> got(n_rows > 0 ? size_t(n_rows) : 0);
    argmax_rows(logits, 0, rows, n_rows, got.data());
    std::memcpy(ids, got.data(), got.size() * sizeof(int32_t));  // only on success: out-parameters untouched else
  });
}

int et_out_argmax_each(int32_t n_outs, const et_out* const* outs, const int32_t* counts, int32_t* ids) {
  return guarded([&] {
    TORCH_CHECK(outs && counts && ids, "et_out_argmax_each: null argument");
    TORCH_CHECK(n_outs > 0, "et_out_argmax_each: n_outs must be positive, got ", n_outs);
    int64_t total = 0;
    for (int32_t b = 0; b < n_outs; b++) {
      TORCH_CHECK(counts[b] > 0, "et_out_argmax_each: counts[", b, "] must be positive, got ", counts[b]);
      total += counts[b];
    }
    std::vector<int32_t> got(static_cast<size_t>(total));
    int64_t at = 0;
    for (int32_t b = 0; b < n_outs; b++) {
      const auto r = checked(outs[b], "et_out_argmax_each").logit_rows();  // no view made
      TORCH_CHECK(counts[b] <= r.count, "et_out_argmax_each: counts[", b, "] is ", counts[b], " but output ", b,
                  " holds ", r.count, " rows");
      argmax_rows(r.whole, r.first, nullptr, counts[b], got.data() + at);
      at += counts[b];
    }
    std::memcpy(ids, got.data(), got.size() * sizeof(int32_t));  // only on success
  });
}

int et_out_topk(const et_out* o, const int32_t* rows, int32_t n_rows, int32_t k, int32_t* ids, float* logp) {
  return guarded([&] {
    TORCH_CHECK(ids && logp, "et_out_topk: null argument");
    const auto& r = checked(o, "et_out_topk");
    TORCH_CHECK(k > 0 && k <= r.logits().size(1), "top-k ", k, " outside [1, ", r.logits().size(1), "]");
    if (read_in_place(r.logits())) return topk_in_place(r.logits(), rows, n_rows, k, ids, logp);
    c10::InferenceMode guard;
    auto top = torch::topk(torch::log_softmax(select_rows(r.logits(), rows, n_rows), -1), k, -1);
    copy_out(std::get<0>(top), logp);
    for (int64_t i = 0; i < int64_t(n_rows) * k; i++) {
      TORCH_CHECK(!std::isnan(logp[i]), "the model produced NaN logits (row ", i / k, "): its weights hold NaN or ",
                  "overflow in this dtype");
    }
    copy_out(std::get<1>(top).to(torch::kInt32), ids);
  });
}

int et_out_gather(et_out* dst, const et_out* src, const int32_t* rows, int32_t n, int32_t keep) {
  return guarded([&] {
    et::check_handle(dst, et::HandleKind::Out, "et_out_gather");
    const auto& from = checked_hidden(src, "et_out_gather").hidden();
    TORCH_CHECK(rows, "et_out_gather: null argument");
    TORCH_CHECK(keep >= n, "et_out_gather: keep ", keep, " is less than the ", n, " rows gathered");
    auto& to = dst->o;
    TORCH_CHECK(!to.hidden().defined() || to.logits().defined() || to.hidden().size(1) == from.size(1),
                "et_out_gather: the store holds rows of another width");
    check_rows(from, rows, n);
    c10::InferenceMode guard;
    // a store holds hidden states only (logits undefined): the new rows go after what it held as a store
    const bool store = to.hidden().defined() && !to.logits().defined();
    const int64_t held = store ? std::min<int64_t>(to.hidden().size(0), keep - n) : 0;
    auto all = torch::empty({held + n, from.size(1)}, from.options());  // new storage: src may be dst
    if (held > 0) all.narrow(0, 0, held).copy_(to.hidden().narrow(0, to.hidden().size(0) - held, held));
    if (from.device().is_cpu() && from.is_contiguous()) {
      const int64_t row = from.size(1) * from.element_size();
      auto* dst = static_cast<char*>(all.data_ptr()) + held * row;
      const auto* src_rows = static_cast<const char*>(from.data_ptr());
      for (int32_t i = 0; i < n; i++) std::memcpy(dst + i * row, src_rows + rows[i] * row, row);
    } else {
      all.narrow(0, held, n).copy_(select_rows(from, rows, n));
    }
    to.set(all, torch::Tensor());
  });
}

int et_out_logits_row(const et_out* o, int32_t row, float* logits, int32_t n) {
  return guarded([&] {
    TORCH_CHECK(logits, "et_out_logits_row: null argument");
    const auto& r = checked(o, "et_out_logits_row");
    TORCH_CHECK(row >= 0 && row < r.logits().size(0), "row ", row, " outside [0, ", r.logits().size(0), ")");
    TORCH_CHECK(n == r.logits().size(1), "et_out_logits_row: buffer holds ", n, " floats, a row has ", r.logits().size(1));
    if (read_in_place(r.logits())) {
      std::memcpy(logits, r.logits().data_ptr<float>() + int64_t(row) * n, n * sizeof(float));
      return;
    }
    copy_out(r.logits()[row], logits);
  });
}

int et_out_hidden_row(const et_out* o, int32_t row, float* hidden, int32_t n) {
  return guarded([&] {
    TORCH_CHECK(hidden, "et_out_hidden_row: null argument");
    const auto& r = checked_hidden(o, "et_out_hidden_row");
    TORCH_CHECK(row >= 0 && row < r.hidden().size(0), "row ", row, " outside [0, ", r.hidden().size(0), ")");
    TORCH_CHECK(n == r.hidden().size(1), "et_out_hidden_row: buffer holds ", n, " floats, a row has ", r.hidden().size(1));
    copy_out(r.hidden()[row].to(torch::kFloat32), hidden);
  });
}

}  // extern "C"
