/* et.h — the C ABI of eagle's libtorch shim.
 *
 * TypeScript decides what to compute (token ids, positions, masks, which cache slots to keep); this shim
 * decides how (embeddings, attention under a mask, matmuls) and keeps tensors on their device. Only ids,
 * positions and a few numbers cross per step.
 *
 * Map of the sources (C++ inside, this header and et_train.h outside)
 *   shim.h          internal types behind the handles, and the guard that turns exceptions into statuses
 *   api.cpp         the ABI edge: errors, library facts, file mappings, handle lifetimes, threads
 *   handles.cpp     the registry of live handles that refuses freed, foreign and mistyped pointers
 *   weights.cpp     shape checks and model weights made from mapped safetensors bytes
 *   random.cpp      random weights made on the model's device (benchmarks at real sizes, no files)
 *   forward.cpp     the Llama forward and the EAGLE draft forward under an explicit mask
 *   kv.cpp          cache length, rollback and compaction of accepted tree slots
 *   out.cpp         readers of a forward's results: argmax, top-k, one logits or hidden row
 *   host.cpp        small host arrays onto the device without draining its queue
 *   cpu_forward.cpp the CPU forward on raw pointers (f32, bf16, f16, int8 weights); cpu_kernels*.{h,cpp} its per-ISA kernels;
 *                   cpu_pool.cpp their worker threads; cpu_split.cpp how a forward is shared among them;
 *                   cpu_pack.cpp the weights as the kernels read them; cpu_step.{h,cpp} where a forward's rows go
 *                   and the cache slots each attends to
 *   device.cpp      device sync and copy bandwidth, for benchmarks
 *   cuda_memory.cpp free CUDA memory from the driver, for refusing what cannot fit
 *   train.h, train.cpp, train_step.cpp   the draft-head trainer of et_train.h: data, parameters, one step
 *
 * Conventions
 * - Handles are opaque. Each kind has exactly one free function; freeing NULL is a no-op.
 * - The shim keeps a registry of live handles: a call given a freed handle, a pointer it never made or a
 *   handle of another kind fails with ET_ERR (no dereference), and freeing such a pointer is a no-op. (A
 *   freed handle's address may be reused by a later handle; the registry cannot tell those apart.)
 * - Every fallible call returns ET_OK (0) or ET_ERR (-1). On ET_ERR, et_last_error() holds a one-line
 *   message (valid until the next et_* call on the same thread) and out-parameters are left untouched.
 *   No C++ exception ever crosses this boundary.
 * - Unless a function says otherwise, a failed call leaves every handle as it was before the call.
 * - Sizes are counts of elements, not bytes, unless the name says bytes. Token ids and positions are int32.
 */
#ifndef ET_H
#define ET_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ET_OK 0
#define ET_ERR -1

#if defined(__GNUC__)
#define ET_API __attribute__((visibility("default")))
#else
#define ET_API
#endif

typedef struct et_mmap et_mmap;   /* a read-only memory-mapped file */
typedef struct et_model et_model; /* immutable weights + shape; shared by any number of caches */
typedef struct et_kv et_kv;       /* the K/V cache of one sequence for one model */
typedef struct et_out et_out;     /* the results of the last forward: hidden states and logits, on device */

/* ET_I8: the products' weights held as int8 with one float32 scale per output (max |w| / 127 of its row,
 * rounded to nearest), everything else (norms, biases, activations, the cache) float32; the CPU kernels
 * only. A draft head's precision changes how often its tokens are accepted, never the output. */
enum et_dtype { ET_F32 = 0, ET_F16 = 1, ET_BF16 = 2, ET_I8 = 3 };
enum et_device { ET_CPU = 0, ET_CUDA = 1 };

/* Model shape and placement. All fields are 4 bytes wide, so the struct has no padding. */
typedef struct {
  int32_t hidden_size;
  int32_t intermediate_size;
  int32_t n_layers;
  int32_t n_heads;
  int32_t n_kv_heads;    /* n_heads % n_kv_heads == 0 */
  int32_t head_dim;      /* even */
  int32_t vocab_size;
  int32_t attention_bias; /* 1: q/k/v projections have biases (Qwen2) */
  int32_t tie_embeddings; /* 1: the LM head is the token embedding */
  int32_t dtype;          /* et_dtype used for compute and the cache (ET_I8: float32, see et_dtype) */
  int32_t device;         /* et_device */
  int32_t device_index;   /* CUDA ordinal; ignored on CPU */
  int32_t draft;          /* 1: an EAGLE draft head (see et_draft_forward); n_layers must be 1 */
  int32_t fc_bias;        /* draft only: 1 if fc has a bias */
  float rms_norm_eps;
  float attention_scale; /* multiplies q·k; usually 1/sqrt(head_dim) */
} et_model_config;

/* Weight kinds; per-layer kinds take a layer index, global ones take -1. */
enum et_weight {
  ET_W_EMBED = 0,     /* (vocab, hidden) */
  ET_W_NORM = 1,      /* (hidden) final norm */
  ET_W_LM_HEAD = 2,   /* (vocab, hidden); absent when tied */
  ET_W_ATTN_NORM = 3, /* (hidden) */
  ET_W_Q = 4,         /* (n_heads*head_dim, hidden) */
  ET_W_K = 5,         /* (n_kv_heads*head_dim, hidden) */
  ET_W_V = 6,         /* (n_kv_heads*head_dim, hidden) */
  ET_W_O = 7,         /* (hidden, n_heads*head_dim) */
  ET_W_Q_BIAS = 8,    /* (n_heads*head_dim) */
  ET_W_K_BIAS = 9,    /* (n_kv_heads*head_dim) */
  ET_W_V_BIAS = 10,   /* (n_kv_heads*head_dim) */
  ET_W_FFN_NORM = 11, /* (hidden) */
  ET_W_GATE = 12,     /* (intermediate, hidden) */
  ET_W_UP = 13,       /* (intermediate, hidden) */
  ET_W_DOWN = 14,     /* (hidden, intermediate) */
  ET_W_FC = 15,       /* draft: (hidden, 2*hidden), input is concat(embedding, feature) */
  ET_W_FC_BIAS = 16,  /* draft: (hidden) */
  ET_W_COUNT = 17
};

/* The message of the last failed call on this thread ("" if none). Never NULL. */
ET_API const char* et_last_error(void);
/* libtorch's version as "major.minor.patch"; and whether CUDA can be used (1) or not (0). */
ET_API const char* et_torch_version(void);
ET_API int32_t et_cuda_available(void);
/* The instruction set of the float32 CPU kernels ("avx512", "avx2", "generic"; ET_CPU_ISA asks for one the
 * CPU has), or "off" under ET_CPU_KERNELS=0, where libtorch's ops compute on the CPU too. */
ET_API const char* et_cpu_kernels(void);
/* Live handles per kind, for leak checks: counts[i] for i < n, in the order et_mmap, et_model, et_kv,
 * et_out, et_trainer (kinds past the fifth read 0). */
ET_API int et_live_handles(int64_t* counts, int32_t n);
/* Free and total bytes of CUDA device `index`, as the driver reports them (libtorch's cache of blocks it
 * holds counts as used). Fails where CUDA is not available. */
ET_API int et_cuda_memory(int32_t index, uint64_t* free_bytes, uint64_t* total_bytes);
/* Sets the number of CPU threads libtorch uses for one op (n > 0). */
ET_API int et_set_threads(int32_t n);
/* The number of CPU threads libtorch (and the CPU kernels) use for one op. */
ET_API int et_get_threads(int32_t* n);

/* Maps `path` read-only. *size_bytes gets the file size. The mapping lives until et_mmap_free and
 * until every weight created from it is freed (weights hold a reference). */
ET_API int et_mmap_open(const char* path, et_mmap** out, uint64_t* size_bytes);
ET_API void et_mmap_free(et_mmap* m);

/* Creates a model with no weights yet. `inv_freq` holds head_dim/2 RoPE inverse frequencies (any rope
 * scaling already applied by the caller). */
ET_API int et_model_new(const et_model_config* cfg, const float* inv_freq, et_model** out);
/* Sets one weight from bytes in a mapped file: `nbytes` at `offset`, stored as `file_dtype` with the given
 * shape (must equal the shape the config implies for `kind`). Converted to the model's dtype and device;
 * on CPU with matching dtype the mapping is used in place (no copy). Setting a weight twice replaces it. */
ET_API int et_model_set_weight(et_model* m, int32_t kind, int32_t layer, et_mmap* file, uint64_t offset,
                               uint64_t nbytes, int32_t file_dtype, const int64_t* shape, int32_t ndim);
/* Checks that every weight the config needs is present. Forward refuses an unfinished model. */
ET_API int et_model_finish(et_model* m);
/* Draft heads: takes the token embedding (unless the head has its own) and the LM head from `target`,
 * sharing the tensors (no copy). Hidden size and vocabulary must match, and so must the device; the
 * dtype too, except where both models run on the CPU kernels (which compute in float32 whatever the
 * weights' dtype). Call before et_model_finish. */
ET_API int et_model_share(et_model* draft, const et_model* target);
/* Random weights, made on the model's device in its dtype (no files, no host copy): norms 1, biases 0,
 * every other weight normal(0, std), drawn in a fixed order from a generator of the model's device type
 * seeded with `seed` (the same seed gives the same weights on the same device; the global generator is
 * left alone). Sets every weight the config needs except, for a draft head, the embedding and LM head,
 * which still come from et_model_share. Replaces weights set before; call et_model_finish afterwards.
 * 0 < std < 1000. On failure (out of memory, say) the model keeps the weights it had. */
ET_API int et_model_init_random(et_model* m, uint64_t seed, float std);
/* Bytes of the model's weights at its dtype, each weight once (mapped CPU weights count too; the CPU
 * kernels' packed copies count as the weights they replace, their padding and the packed LM head not). */
ET_API int et_model_weight_bytes(const et_model* m, uint64_t* out);
ET_API void et_model_free(et_model* m);

/* A cache for up to `capacity` tokens of one sequence. Starts empty (len 0). Keeps the model alive. */
ET_API int et_kv_new(et_model* m, int32_t capacity, et_kv** out);
ET_API int et_kv_len(const et_kv* kv, int32_t* out);
ET_API int et_kv_capacity(const et_kv* kv, int32_t* out);
/* Drops every slot from n on (rollback). 0 <= n <= len. */
ET_API int et_kv_truncate(et_kv* kv, int32_t n);
/* Compaction after tree verification: copies slots[0..n) to [base, base+n) (in that order; the slots may
 * overlap the destination) and sets len = base + n. Requires base <= len, every slot in [base, len), and
 * slots strictly increasing. */
ET_API int et_kv_keep(et_kv* kv, int32_t base, const int32_t* slots, int32_t n);
ET_API void et_kv_free(et_kv* kv);

/* An empty results holder; reused across forwards. */
ET_API int et_out_new(et_out** out);
ET_API void et_out_free(et_out* o);

/* One forward over n new tokens.
 * tokens[n], positions[n]: ids and RoPE positions (any order; a tree puts siblings at the same position).
 * mask: NULL for causal, else row-major n x mask_cols bytes (1 = may attend). mask_cols == n: among the new
 *   tokens only, every cached slot visible; mask_cols == len + n: over cached slots then new tokens.
 * The new K/V are written to slots [len, len+n) and len becomes len + n; on failure len is unchanged
 * (slot contents past len are unspecified). `out` receives the final-norm hidden states (n, hidden) and
 * logits (n, vocab), kept on the device (on the CPU kernels in the storage of its last results where
 * their shape matches and nothing else holds them, so after a failure past the checks its results are
 * unspecified). Fails if len + n > capacity. */
ET_API int et_forward(et_model* m, et_kv* kv, const int32_t* tokens, const int32_t* positions, int32_t n,
                      const uint8_t* mask, int32_t mask_cols, et_out* out);

/* Target forwards of several sequences in one call (batched decoding): sequence b has its own cache kvs[b]
 * and results holder outs[b] (all distinct, caches of this model) and counts[b] > 0 new tokens. tokens and
 * positions hold every sequence's in turn (sum of counts). mask_cols[b] == 0: causal; else sequence b's mask
 * is the next counts[b] x mask_cols[b] bytes of `masks` (the masked sequences' masks in turn), with
 * et_forward's meaning; mask_cols == NULL: every sequence causal. Each sequence's results equal what
 * et_forward gives it alone (on the CPU kernels bit for bit: one pass over every row, each row attending to
 * its own cache). Every sequence is checked before any runs; on a failure past the checks (out of memory),
 * libtorch's path (CUDA, ET_CPU_KERNELS=0), which runs one forward per sequence, may leave the sequences
 * before the failing one advanced. */
ET_API int et_forward_batch(et_model* m, int32_t n_seqs, et_kv* const* kvs, const int32_t* counts,
                            const int32_t* tokens, const int32_t* positions, const uint8_t* masks,
                            const int32_t* mask_cols, et_out* const* outs);

/* One EAGLE draft-head forward over n new entries. Entry i pairs tokens[i] with the feature row
 * feature_rows[i] of `features` (the hidden states of an earlier target or draft forward; they are read
 * before `out` is written, so `features` may be `out` itself):
 *   x = fc(concat(embed(token), feature)); x = x + attn(x); x = x + mlp(norm(x)); logits = lm_head(x).
 * There is no input norm and no final norm; `out` gets x as hidden states (the next features) and the
 * logits. Everything else is as for et_forward. */
ET_API int et_draft_forward(et_model* draft, et_kv* kv, const int32_t* tokens, const int32_t* positions, int32_t n,
                            const uint8_t* mask, int32_t mask_cols, const et_out* features,
                            const int32_t* feature_rows, et_out* out);

/* Several sequences' draft-head forwards in one call, as et_forward_batch is to et_forward: sequence b's
 * entries pair its tokens with its feature rows (feature_rows holds every sequence's in turn, counts[b]
 * each) of features[b], and its results go to outs[b]. features[b] may be outs[b] (read before any is
 * written). On the CPU kernels one pass over every row. */
ET_API int et_draft_forward_batch(et_model* draft, int32_t n_seqs, et_kv* const* kvs, const int32_t* counts,
                                  const int32_t* tokens, const int32_t* positions, const uint8_t* masks,
                                  const int32_t* mask_cols, const et_out* const* features,
                                  const int32_t* feature_rows, et_out* const* outs);

/* Readers of the last forward's results. Each reads only what it names; each is a device sync. */
ET_API int et_out_rows(const et_out* o, int32_t* n);
/* Row selection for the readers below: rows[n_rows] names the rows to read, in that order; rows == NULL
 * reads every row (n_rows must then equal the row count). */
/* ids[n_rows]: argmax of each selected row's logits (lowest id on ties). */
ET_API int et_out_argmax(const et_out* o, const int32_t* rows, int32_t n_rows, int32_t* ids);
/* The same for several results at once (a batched forward's): ids holds, output after output, the argmax of
 * the first counts[b] rows of outs[b] (each 1 <= counts[b] <= its row count). */
ET_API int et_out_argmax_each(int32_t n_outs, const et_out* const* outs, const int32_t* counts, int32_t* ids);
/* For each selected row, the k most likely ids (descending) and their log-probabilities under
 * softmax(logits): ids[n_rows * k], logp[n_rows * k]. */
ET_API int et_out_topk(const et_out* o, const int32_t* rows, int32_t n_rows, int32_t k, int32_t* ids, float* logp);
/* logits[n] of one row, as float32; n must equal the vocabulary size (the buffer's length, so a wrong
 * buffer is refused rather than overrun). */
ET_API int et_out_logits_row(const et_out* o, int32_t row, float* logits, int32_t n);
/* hidden[n] of one row, as float32, n == hidden size (for tests and diagnostics). */
ET_API int et_out_hidden_row(const et_out* o, int32_t row, float* hidden, int32_t n);

/* A feature store for et_draft_forward: appends the hidden states of the selected rows of `src` (a forward's
 * results, or another store) to those `dst` holds when it is a store, then keeps only the last `keep` rows
 * (keep >= n). `dst` then holds hidden states only: the logits readers refuse it, et_out_hidden_row and
 * et_draft_forward read it. `src` may be `dst`. */
ET_API int et_out_gather(et_out* dst, const et_out* src, const int32_t* rows, int32_t n, int32_t keep);

/* Devices, for benchmarks. `device` is an et_device, `index` the CUDA ordinal (ignored on CPU). */
/* Waits until every operation queued on the device has finished: a no-op on CPU, where ops run when called. */
ET_API int et_device_sync(int32_t device, int32_t index);
/* Device-to-device copy bandwidth: copies a buffer of `bytes` (1 MiB .. 1 TiB) into another on the same
 * device, once to warm up, then `iters` times (1 .. 100000) between two syncs. *bytes_per_s counts the bytes
 * read plus the bytes written (2 x bytes per copy), the convention under which it approaches the memory's
 * peak bandwidth; a step that only reads W bytes therefore takes at least W / *bytes_per_s seconds.
 * Allocates 2 x bytes on the device while it runs. */
ET_API int et_copy_bandwidth(int32_t device, int32_t index, uint64_t bytes, int32_t iters, double* bytes_per_s);

#ifdef __cplusplus
}
#endif
#endif
