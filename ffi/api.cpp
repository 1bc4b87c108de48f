// api.cpp — the ABI edge: errors, library facts, file mappings and handle lifetimes.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shim.h"

namespace et {

thread_local std::string last_error;

void set_error(const std::string& msg) {
  // keep the first line only: c10 messages can carry multi-line context
  auto nl = msg.find('\n');
  last_error = nl == std::string::npos ? msg : msg.substr(0, nl);
}

Mapping::~Mapping() {
  if (addr && size) munmap(addr, size);
}

}  // namespace et

using et::guarded;

namespace {

// A batched call's sequences, checked: each one's cache, row count, mask and results holder.
struct BatchParts {
  std::vector<et::SeqPart> parts;
  std::vector<et::Out*> results;
};

BatchParts batch_parts(const char* fn, et_model* m, int32_t n_seqs, et_kv* const* kvs, const int32_t* counts,
                       const int32_t* tokens, const int32_t* positions, const uint8_t* masks,
                       const int32_t* mask_cols, et_out* const* outs) {
  et::check_handle(m, et::HandleKind::Model, fn);
  TORCH_CHECK(n_seqs > 0, fn, ": needs at least one sequence, got ", n_seqs);
  TORCH_CHECK(kvs && counts && tokens && positions && outs, fn, ": null argument");
  BatchParts bp;
  int64_t mask_bytes = 0;
  for (int32_t b = 0; b < n_seqs; b++) {
    et::check_handle(kvs[b], et::HandleKind::Kv, fn);
    et::check_handle(outs[b], et::HandleKind::Out, fn);
    TORCH_CHECK(kvs[b]->c.model == m->m, fn, ": the cache of sequence ", b, " belongs to another model");
    TORCH_CHECK(counts[b] > 0, fn, ": sequence ", b, " has ", counts[b], " tokens");
    const int32_t cols = mask_cols ? mask_cols[b] : 0;
    TORCH_CHECK(cols >= 0, fn, ": sequence ", b, " has ", cols, " mask columns");
    TORCH_CHECK(cols == 0 || masks, fn, ": sequence ", b, " has a mask but masks is null");
    bp.parts.push_back({&kvs[b]->c, counts[b], cols ? masks + mask_bytes : nullptr, cols});
    bp.results.push_back(&outs[b]->o);
    mask_bytes += int64_t(counts[b]) * cols;
  }
  return bp;
}

// A draft forward's feature source: a forward's hidden states on the head's device, of its width, and
// every row an entry reads within it.
void check_features(const et::Model& m, const torch::Tensor& src, const int32_t* rows, int32_t n) {
  TORCH_CHECK(src.defined(), "the feature source holds no results yet");
  TORCH_CHECK(src.size(1) == m.cfg.hidden_size, "features have width ", src.size(1), ", the head expects ",
              m.cfg.hidden_size);
  for (int32_t i = 0; i < n; i++) {
    TORCH_CHECK(rows[i] >= 0 && rows[i] < src.size(0), "feature row ", rows[i], " outside [0, ", src.size(0), ")");
  }
  TORCH_CHECK(src.device() == m.opts.device(), "features on another device");
}

}  // namespace

extern "C" {

const char* et_last_error(void) { return et::last_error.c_str(); }

const char* et_torch_version(void) {
  static const std::string v = std::to_string(TORCH_VERSION_MAJOR) + "." +
                               std::to_string(TORCH_VERSION_MINOR) + "." +
                               std::to_string(TORCH_VERSION_PATCH);
  return v.c_str();
}

const char* et_cpu_kernels(void) { return et::cpu_kernels_isa(); }

int32_t et_cuda_available(void) {
  try {
    return torch::cuda::is_available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int et_set_threads(int32_t n) {
  return guarded([&] {
    TORCH_CHECK(n > 0, "thread count must be positive, got ", n);
    // only on a change: each call makes libtorch build a new thread pool, whose threads spin a while
    if (n != torch::get_num_threads()) torch::set_num_threads(n);
  });
}

int et_get_threads(int32_t* n) {
  return guarded([&] {
    TORCH_CHECK(n, "et_get_threads: null argument");
    *n = torch::get_num_threads();
  });
}

int et_mmap_open(const char* path, et_mmap** out, uint64_t* size_bytes) {
  return guarded([&] {
    TORCH_CHECK(path && out && size_bytes, "et_mmap_open: null argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    TORCH_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      TORCH_CHECK(false, path, ": cannot stat: ", std::strerror(err));
    }
    auto map = std::make_shared<et::Mapping>();
    map->path = path;
    map->size = static_cast<size_t>(st.st_size);
    if (map->size > 0) {
      void* a = mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
      int err = errno;
      close(fd);
      TORCH_CHECK(a != MAP_FAILED, path, ": cannot map: ", std::strerror(err));
      map->addr = a;
    } else {
      close(fd);
    }
    *out = new et_mmap{map};
    et::register_handle(*out, et::HandleKind::Mmap);
    *size_bytes = map->size;
  });
}

void et_mmap_free(et_mmap* m) {
  if (et::release_handle(m, et::HandleKind::Mmap)) delete m;
}

int et_model_new(const et_model_config* cfg, const float* inv_freq, et_model** out) {
  return guarded([&] {
    TORCH_CHECK(cfg && inv_freq && out, "et_model_new: null argument");
    et::check_config(*cfg);
    auto m = std::make_shared<et::Model>();
    m->cfg = *cfg;
    const auto dev = et::device_of(cfg->device, cfg->device_index);
    m->opts = torch::TensorOptions().dtype(et::scalar_type(cfg->dtype)).device(dev);
    auto freq = torch::from_blob(const_cast<float*>(inv_freq), {cfg->head_dim / 2}, torch::kFloat32);
    m->inv_freq = freq.to(dev, torch::kFloat32, false, true);
    m->layers.resize(cfg->n_layers);
    *out = new et_model{m};
    et::register_handle(*out, et::HandleKind::Model);
  });
}

void et_model_free(et_model* m) {
  if (et::release_handle(m, et::HandleKind::Model)) delete m;
}

int et_kv_new(et_model* model, int32_t capacity, et_kv** out) {
  return guarded([&] {
    et::check_handle(model, et::HandleKind::Model, "et_kv_new");
    TORCH_CHECK(out, "et_kv_new: null argument");
    TORCH_CHECK(capacity > 0, "cache capacity must be positive, got ", capacity);
    auto kv = new et_kv{};
    try {
      c10::InferenceMode guard;
      et::allocate_cache(kv->c, model->m, capacity);
    } catch (...) {
      delete kv;
      throw;
    }
    *out = kv;
    et::register_handle(kv, et::HandleKind::Kv);
  });
}

void et_kv_free(et_kv* kv) {
  if (et::release_handle(kv, et::HandleKind::Kv)) delete kv;
}

int et_out_new(et_out** out) {
  return guarded([&] {
    TORCH_CHECK(out, "et_out_new: null argument");
    *out = new et_out{};
    et::register_handle(*out, et::HandleKind::Out);
  });
}

void et_out_free(et_out* o) {
  if (et::release_handle(o, et::HandleKind::Out)) delete o;
}

int et_forward(et_model* m, et_kv* kv, const int32_t* tokens, const int32_t* positions, int32_t n,
               const uint8_t* mask, int32_t mask_cols, et_out* out) {
  return guarded([&] {
    et::check_handle(m, et::HandleKind::Model, "et_forward");
    et::check_handle(kv, et::HandleKind::Kv, "et_forward");
    et::check_handle(out, et::HandleKind::Out, "et_forward");
    TORCH_CHECK(tokens && positions, "et_forward: null argument");
    TORCH_CHECK(kv->c.model == m->m, "et_forward: the cache belongs to another model");
    TORCH_CHECK(!m->m->cfg.draft, "et_forward: this is a draft head: use et_draft_forward");
    et::forward(*m->m, kv->c, tokens, positions, n, mask, mask_cols, nullptr, out->o);
  });
}


int et_forward_batch(et_model* m, int32_t n_seqs, et_kv* const* kvs, const int32_t* counts,
                     const int32_t* tokens, const int32_t* positions, const uint8_t* masks,
                     const int32_t* mask_cols, et_out* const* outs) {
  return guarded([&] {
    auto bp = batch_parts("et_forward_batch", m, n_seqs, kvs, counts, tokens, positions, masks, mask_cols, outs);
    TORCH_CHECK(!m->m->cfg.draft, "et_forward_batch: this is a draft head: use et_draft_forward_batch");
    et::forward_batch(*m->m, bp.parts, tokens, positions, bp.results);
  });
}

int et_draft_forward_batch(et_model* m, int32_t n_seqs, et_kv* const* kvs, const int32_t* counts,
                           const int32_t* tokens, const int32_t* positions, const uint8_t* masks,
                           const int32_t* mask_cols, const et_out* const* features, const int32_t* feature_rows,
                           et_out* const* outs) {
  return guarded([&] {
    const char* fn = "et_draft_forward_batch";
    auto bp = batch_parts(fn, m, n_seqs, kvs, counts, tokens, positions, masks, mask_cols, outs);
    TORCH_CHECK(m->m->cfg.draft, fn, ": not a draft head");
    TORCH_CHECK(features && feature_rows, fn, ": null argument");
    // every sequence's features, held while the outputs (which may be their sources) are rewritten
    std::vector<torch::Tensor> held(static_cast<size_t>(n_seqs));
    std::vector<et::Features> feats(static_cast<size_t>(n_seqs));
    int64_t first = 0;
    for (int32_t b = 0; b < n_seqs; b++) {
      et::check_handle(features[b], et::HandleKind::Out, fn);
      held[b] = features[b]->o.hidden();
      check_features(*m->m, held[b], feature_rows + first, counts[b]);
      feats[b] = {&held[b], feature_rows + first};
      bp.parts[b].features = &feats[b];
      first += counts[b];
    }
    c10::InferenceMode guard;
    et::forward_batch(*m->m, bp.parts, tokens, positions, bp.results);
  });
}

int et_draft_forward(et_model* m, et_kv* kv, const int32_t* tokens, const int32_t* positions, int32_t n,
                     const uint8_t* mask, int32_t mask_cols, const et_out* features, const int32_t* feature_rows,
                     et_out* out) {
  return guarded([&] {
    et::check_handle(m, et::HandleKind::Model, "et_draft_forward");
    et::check_handle(kv, et::HandleKind::Kv, "et_draft_forward");
    et::check_handle(features, et::HandleKind::Out, "et_draft_forward");
    et::check_handle(out, et::HandleKind::Out, "et_draft_forward");
    TORCH_CHECK(tokens && positions && feature_rows, "et_draft_forward: null argument");
    TORCH_CHECK(kv->c.model == m->m, "et_draft_forward: the cache belongs to another model");
    TORCH_CHECK(m->m->cfg.draft, "et_draft_forward: not a draft head");
    TORCH_CHECK(n > 0, "forward needs at least one token, got n = ", n);
    const auto held = features->o.hidden();  // kept alive while `out` (which may be `features`) is rewritten
    check_features(*m->m, held, feature_rows, n);
    c10::InferenceMode guard;
    const et::Features feats{&held, feature_rows};
    et::forward(*m->m, kv->c, tokens, positions, n, mask, mask_cols, &feats, out->o);
  });
}

}  // extern "C"
