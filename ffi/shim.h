// shim.h — internal types behind the opaque handles of et.h, and the error guard every ABI call uses.
#pragma once
#include <torch/torch.h>

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "et.h"

namespace et {

void set_error(const std::string& msg);

// The caller is JavaScript, whose floating point is SSE code: vector code here (the kernels, libtorch, libm)
// can leave the upper halves of the vector registers dirty, and then every later SSE instruction pays a
// transition penalty (measured: JavaScript's Math.exp 20x slower after et_out_topk on AVX-512, until some
// other call happened to clean up). Every ABI call ends with them clean (handles.cpp).
void clean_vector_state();

// Runs f; turns any exception into ET_ERR plus a message, so nothing escapes into C; leaves the vector
// registers clean.
template <class F>
int guarded(F&& f) {
  int rc = ET_ERR;
  try {
    f();
    rc = ET_OK;
  } catch (const c10::Error& e) {
    set_error(e.what_without_backtrace());
  } catch (const std::exception& e) {
    set_error(e.what());
  } catch (...) {
    set_error("unknown C++ exception");
  }
  clean_vector_state();
  return rc;
}

// handles.cpp: every handle given out is registered until freed; ABI entries check the pointers they get.
// The order is the one et_live_handles reports.
enum class HandleKind { Mmap = 0, Model = 1, Kv = 2, Out = 3, Trainer = 4, Count = 5 };
void register_handle(const void* p, HandleKind k);
// true if p was a live handle of kind k (now released): only then may the caller delete it
bool release_handle(const void* p, HandleKind k);
// throws unless p is a live handle of kind k; `fn` names the ABI call in the message
void check_handle(const void* p, HandleKind k, const char* fn);
int64_t live_handles(HandleKind k);

// A read-only mapping, shared by every tensor created from it.
struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  std::string path;
  ~Mapping();
};

// A product's weights as the CPU kernels read them (cpu_kernels.h): panels of float32, bfloat16 or float16
// as set, or of int8 (ET_I8) with one float32 scale per output in `scale` (panels * PANEL, zero past the
// last output; undefined for the others).
struct Packed {
  torch::Tensor w, scale;
  int64_t in = 0;       // the product's inputs, where w's rows are padded (int8 in groups); 0: w.size(1)
  bool groups = false;  // int8 in groups of four inputs, for the kernels' linear_i8_groups (cpu_kernels.h)
  bool defined() const { return w.defined(); }
};

struct Layer {
  std::array<torch::Tensor, ET_W_COUNT> w;  // indexed by et_weight; global kinds unused
  // the CPU kernels' products, packed at et_model_finish (cpu_kernels.h); their w entry is then released
  std::array<Packed, ET_W_COUNT> packed;
  // the same fused, one product each (their packed entries are views into them): q/k/v when their widths
  // are whole panels (with their biases, when all three have one), and gate/up (up from the panel after
  // gate's last)
  Packed packed_qkv, packed_gate_up;
  torch::Tensor packed_qkv_bias;
  // libtorch's path: q/k/v (and their biases) and gate/up fused at et_model_finish, one product each; the w
  // entries become views into them
  torch::Tensor qkv, qkv_bias, gate_up;
};

// cos/sin of each RoPE frequency at positions [0, rows), float32 on the host, for cpu_forward.cpp; and
// for libtorch's path the same as (rows, head_dim) tables (both halves) on the device in compute dtype
struct CpuRope {
  std::mutex mu;
  int32_t rows = 0;
  std::vector<float> cos, sin;  // (rows, head_dim / 2)
  torch::Tensor device_cos, device_sin;  // (device_rows, head_dim)
  int32_t device_rows = 0;
};

struct Model {
  et_model_config cfg{};
  torch::TensorOptions opts;  // compute dtype + device
  torch::Tensor inv_freq;     // (head_dim/2) float32 on device
  std::array<torch::Tensor, ET_W_COUNT> global;  // EMBED, NORM, LM_HEAD
  std::vector<Layer> layers;
  bool finished = false;
  std::shared_ptr<CpuRope> cpu_rope = std::make_shared<CpuRope>();
  Packed packed_lm_head;  // the CPU kernels' LM head (the original stays: embedding, training)

  const torch::Tensor& lm_head() const {
    return cfg.tie_embeddings ? global[ET_W_EMBED] : global[ET_W_LM_HEAD];
  }
};

struct KvCache {
  std::shared_ptr<Model> model;
  // per layer: (n_kv_heads, capacity, head_dim); when blocked (the CPU kernels' caches, float32 on the CPU),
  // (n_kv_heads, capacity / 16 blocks, head_dim, 16 slots): see cpu_kernels.h's SLOT_BLOCK
  std::vector<torch::Tensor> k, v;
  bool blocked = false;
  std::vector<float*> k_data, v_data;  // blocked: each layer's floats, looked up once (a step reads them all)
  int32_t len = 0;
  int32_t capacity = 0;
};

// A forward's results: hidden states (n, hidden) in the compute dtype (final-norm features) and logits
// (n, vocab) float32 (undefined in a feature store). A batched forward gives each sequence its rows of the
// batch's two tensors: held as the whole and a row range, and made views (narrow, through libtorch's
// dispatcher: about 0.2 us each, a tenth of a small model's step at 32 sequences) only when first asked for
// as tensors; the kernels' readers take the rows in place (logit_rows).
class Out {
 public:
  const torch::Tensor& hidden() const {
    settle();
    return hidden_;
  }
  const torch::Tensor& logits() const {
    settle();
    return logits_;
  }
  void set(torch::Tensor hidden, torch::Tensor logits) {
    hidden_ = std::move(hidden);
    logits_ = std::move(logits);
    whole_hidden_ = whole_logits_ = torch::Tensor();
  }
  // rows [first, first + count) of a batch's results
  void set_rows(const torch::Tensor& hidden, const torch::Tensor& logits, int64_t first, int64_t count) {
    hidden_ = logits_ = torch::Tensor();
    whole_hidden_ = hidden, whole_logits_ = logits;
    first_ = first, count_ = count;
  }
  // the logits as a tensor holding them from row `first` on, `count` rows, without making a view
  struct Rows {
    const torch::Tensor& whole;
    int64_t first, count;
  };
  Rows logit_rows() const {
    if (whole_logits_.defined()) return {whole_logits_, first_, count_};
    return {logits_, 0, logits_.defined() ? logits_.size(0) : 0};
  }

 private:
  void settle() const {
    if (!whole_hidden_.defined()) return;
    hidden_ = whole_hidden_.narrow(0, first_, count_);
    logits_ = whole_logits_.narrow(0, first_, count_);
    whole_hidden_ = whole_logits_ = torch::Tensor();
  }
  mutable torch::Tensor hidden_, logits_, whole_hidden_, whole_logits_;
  int64_t first_ = 0, count_ = 0;
};

torch::ScalarType scalar_type(int32_t et_dtype);
const char* weight_name(int32_t kind);
bool is_global(int32_t kind);  // EMBED, NORM, LM_HEAD
std::vector<int64_t> expected_shape(const et_model_config& c, int32_t kind);
void check_config(const et_model_config& c);
bool layer_needs(const et_model_config& c, int32_t kind);  // per-layer kinds a finished model must have
torch::Device device_of(int32_t et_device, int32_t index);  // checked: CUDA present, index in range

// host.cpp: n values of type `from` at `data` as a tensor of type `to` on `dev`, without a device sync
torch::Tensor host_to_device(const void* data, int64_t n, torch::ScalarType from, const torch::Device& dev,
                             torch::ScalarType to);

// A draft forward's features: row rows[i] of `hidden` (n checked rows) for entry i
struct Features {
  const torch::Tensor* hidden;
  const int32_t* rows;
};

// One sequence's share of a forward: its cache, its n new rows (consecutive in the call's tokens) and their
// mask (as et_forward's); for a draft head's forward, the features its rows read (null for the target's).
struct SeqPart {
  KvCache* kv;
  int32_t n;
  const uint8_t* mask;
  int32_t mask_cols;
  const Features* features = nullptr;
};

// forward.cpp: `features` selects the draft-head forward, null the target forward. The features are read
// before `out` is written, so they may be rows of `out` itself.
void forward(const Model& m, KvCache& kv, const int32_t* tokens, const int32_t* positions, int32_t n,
             const uint8_t* mask, int32_t mask_cols, const Features* features, Out& out);
// Several sequences' forwards in one (et_forward_batch, et_draft_forward_batch: every part then has its
// features): tokens and positions of every part in turn; on the CPU kernels one pass, elsewhere one forward
// per part. Checks every part before any runs.
void forward_batch(const Model& m, const std::vector<SeqPart>& parts, const int32_t* tokens, const int32_t* positions,
                   const std::vector<Out*>& outs);

// cpu_split.cpp: a model small enough that its forward never splits an op over threads; and the parts of a
// batched forward as the groups the threads run, each a whole forward of its own (one group unless small)
struct PartGroup {
  size_t first, count;  // parts [first, first + count)
  int64_t row, rows;    // their rows in the call
};
bool small_cpu_model(const Model& m);
std::vector<PartGroup> split_parts(const Model& m, const std::vector<SeqPart>& parts);
// run(g) for every group: one group on this thread (which a small model's few rows never leave), several
// over the threads, rethrowing the first group's error after all have run
void run_groups(const Model& m, const std::vector<PartGroup>& groups, const std::function<void(size_t)>& run);

// cpu_forward.cpp: the float32 CPU forward through cpu_kernels.h (checked inputs; leaves kv.len to the
// caller); whether the kernels are on (unless ET_CPU_KERNELS=0) and a model takes them (CPU, float32,
// head_dim <= 256); their instruction set ("off" when disabled)
namespace cpu {
// cpu_pool.cpp: f over [0, n) split into contiguous pieces of at least `grain` (a few per thread), on up to as
// many threads as libtorch is set to use, the caller among them, each taking the next piece when free;
// returns when every piece is done
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);
// while one lives, parallel_for on this thread runs f(0, n) inline
struct Serial {
  Serial();
  ~Serial();
  Serial(const Serial&) = delete;
  Serial& operator=(const Serial&) = delete;
  bool was;
};
}  // namespace cpu

bool cpu_kernels_enabled();
bool use_cpu_kernels(const Model& m);
// empty storage for `capacity` slots in the layout the model's forward reads (see KvCache)
void allocate_cache(KvCache& kv, const std::shared_ptr<Model>& m, int32_t capacity);
// cpu_pack.cpp, at et_model_finish: packs every product weight the CPU kernels read (int8 for ET_I8) and
// releases the per-layer originals
void pack_cpu_weights(Model& m);
// the host cos (want_sin false) or sin rows of cpu_rope, grown to cover max_pos; stable while m lives
const float* rope_rows(const Model& m, int32_t max_pos, bool want_sin);
// forward.cpp, at et_model_finish for libtorch's path: fuses q/k/v and gate/up (see Layer)
void fuse_weights(Model& m);
const char* cpu_kernels_isa();
// The CPU kernels' forward over every part's rows at once: products over all rows, each row's attention over
// its own cache (a draft head's rows each read their part's features); outs[b] gets part b's rows. Leaves the
// caches' lengths to the caller.
void forward_cpu(const Model& m, const std::vector<SeqPart>& parts, const int32_t* tokens, const int32_t* positions,
                 const std::vector<Out*>& outs);

}  // namespace et

struct et_mmap { std::shared_ptr<et::Mapping> map; };
struct et_model { std::shared_ptr<et::Model> m; };
struct et_kv { et::KvCache c; };
struct et_out { et::Out o; };
