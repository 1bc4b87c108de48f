// out.cpp — readers of a forward's results: each copies only what the algorithm needs to the host.
#include <cmath>
#include <cstring>
#include <vector>

#include "shim.h"

using et::guarded;

namespace {

const et::Out& checked(const et_out* o, const char* fn) {
  et::check_handle(o, et::HandleKind::Out, fn);
  TORCH_CHECK(o->o.logits.defined(), "no results yet: run et_forward first");
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

}  // namespace

extern "C" {

int et_out_rows(const et_out* o, int32_t* n) {
  return guarded([&] {
    TORCH_CHECK(n, "et_out_rows: null argument");
    *n = static_cast<int32_t>(checked(o, "et_out_rows").logits.size(0));
  });
}

int et_out_argmax(const et_out* o, const int32_t* rows, int32_t n_rows, int32_t* ids) {
  return guarded([&] {
    TORCH_CHECK(ids, "et_out_argmax: null argument");
    c10::InferenceMode guard;
    auto best = select_rows(checked(o, "et_out_argmax").logits, rows, n_rows).max(-1);  // NaN wins a max
    // one copy to the host: a row whose maximum is NaN comes back as id -1
    auto marked = std::get<1>(best).masked_fill(std::get<0>(best).isnan(), -1).to(torch::kInt32);
    std::vector<int32_t> got(marked.numel());
    copy_out(marked, got.data());
    for (size_t i = 0; i < got.size(); i++) {
      TORCH_CHECK(got[i] >= 0, "the model produced NaN logits (row ", i, "): its weights hold NaN or overflow ",
                  "in this dtype");
    }
    std::memcpy(ids, got.data(), got.size() * sizeof(int32_t));  // only on success: out-parameters untouched else
  });
}

int et_out_topk(const et_out* o, const int32_t* rows, int32_t n_rows, int32_t k, int32_t* ids, float* logp) {
  return guarded([&] {
    TORCH_CHECK(ids && logp, "et_out_topk: null argument");
    const auto& r = checked(o, "et_out_topk");
    TORCH_CHECK(k > 0 && k <= r.logits.size(1), "top-k ", k, " outside [1, ", r.logits.size(1), "]");
    c10::InferenceMode guard;
    auto top = torch::topk(torch::log_softmax(select_rows(r.logits, rows, n_rows), -1), k, -1);
    copy_out(std::get<0>(top), logp);
    for (int64_t i = 0; i < int64_t(n_rows) * k; i++) {
      TORCH_CHECK(!std::isnan(logp[i]), "the model produced NaN logits (row ", i / k, "): its weights hold NaN or ",
                  "overflow in this dtype");
    }
    copy_out(std::get<1>(top).to(torch::kInt32), ids);
  });
}

int et_out_logits_row(const et_out* o, int32_t row, float* logits, int32_t n) {
  return guarded([&] {
    TORCH_CHECK(logits, "et_out_logits_row: null argument");
    const auto& r = checked(o, "et_out_logits_row");
    TORCH_CHECK(row >= 0 && row < r.logits.size(0), "row ", row, " outside [0, ", r.logits.size(0), ")");
    TORCH_CHECK(n == r.logits.size(1), "et_out_logits_row: buffer holds ", n, " floats, a row has ", r.logits.size(1));
    copy_out(r.logits[row], logits);
  });
}

int et_out_hidden_row(const et_out* o, int32_t row, float* hidden, int32_t n) {
  return guarded([&] {
    TORCH_CHECK(hidden, "et_out_hidden_row: null argument");
    const auto& r = checked(o, "et_out_hidden_row");
    TORCH_CHECK(row >= 0 && row < r.hidden.size(0), "row ", row, " outside [0, ", r.hidden.size(0), ")");
    TORCH_CHECK(n == r.hidden.size(1), "et_out_hidden_row: buffer holds ", n, " floats, a row has ", r.hidden.size(1));
    copy_out(r.hidden[row].to(torch::kFloat32), hidden);
  });
}

}  // extern "C"
