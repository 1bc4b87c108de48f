/* et_train.h — the C ABI for training EAGLE draft heads: autograd and the optimizer run here, the data,
 * the learning-rate schedule and the files in TypeScript. Conventions as in et.h: opaque handles with one
 * free function each (freeing NULL is a no-op), ET_OK / ET_ERR with et_last_error(), no exception crosses.
 *
 * The model trained is the head et_draft_forward runs: entry t pairs the target's feature f_t (its
 * final-norm hidden state) with token t+1 at position t and predicts f_{t+1}:
 *   x = fc(concat(embed(tok_{t+1}), f_t + U(-noise, noise))); h = x + attn(x); f̂ = h + mlp(norm(h))
 * with a causal mask over the entries of one sequence. Loss per entry, averaged over entries:
 *   SmoothL1(f̂, f_{t+1}) (mean over hidden) + 0.1 * CE(softmax(lm_head(f_{t+1})), log_softmax(lm_head(f̂)))
 * The target's embedding and LM head are frozen (float32 copies); the head's parameters are float32. */
#ifndef ET_TRAIN_H
#define ET_TRAIN_H

#include "et.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_trainer et_trainer; /* a head's parameters, its AdamW state and a feature dataset */

enum et_split { ET_SPLIT_TRAIN = 0, ET_SPLIT_VALID = 1 };

/* out_stats[ET_STAT_COUNT] of et_trainer_step and et_trainer_eval. */
enum et_train_stat {
  ET_STAT_LOSS = 0,      /* regression + 0.1 * cross-entropy */
  ET_STAT_REG = 1,       /* SmoothL1(f̂, f), mean over entries and hidden units */
  ET_STAT_CE = 2,        /* soft cross-entropy against the target's next-token distribution */
  ET_STAT_ACC = 3,       /* top-1 agreement: argmax lm_head(f̂) == argmax lm_head(f) */
  ET_STAT_ENTRIES = 4,   /* entries (positions) the numbers above average over */
  ET_STAT_GRAD_NORM = 5, /* step: the gradient's global L2 norm before clipping; eval: 0 */
  ET_STAT_COUNT = 6
};

/* A trainer for a head of shape `head` (draft = 1, n_layers = 1, dtype ET_F32, no attention bias, the
 * target's hidden size, vocabulary and device) with RoPE inverse frequencies inv_freq[head_dim/2].
 * Parameters start as PyTorch's nn.Linear default (uniform ±1/sqrt(fan_in), drawn from `seed`), norms 1.
 * The target (finished, not a draft) is only read: its embedding, LM head and forward. Keeps it alive. */
ET_API int et_trainer_new(const et_model* target, const et_model_config* head, const float* inv_freq, uint64_t seed,
                          et_trainer** out);
ET_API void et_trainer_free(et_trainer* t);

/* One parameter as host float32: kind is ET_W_FC, ET_W_FC_BIAS (when fc_bias), ET_W_Q/K/V/O, ET_W_FFN_NORM,
 * ET_W_GATE/UP/DOWN; n must equal the element count of the shape et_model_set_weight expects (row-major).
 * set copies in place (the optimizer keeps its state); get writes n floats to out. */
ET_API int et_trainer_set_param(et_trainer* t, int32_t kind, const float* data, int64_t n);
ET_API int et_trainer_get_param(const et_trainer* t, int32_t kind, float* out, int64_t n);

/* Runs the target over one sequence tokens[n] (n >= 2, positions 0..n-1, no grad) and keeps its tokens and
 * final-norm hidden states on the device, in the training or validation split (et_split). */
ET_API int et_trainer_features(et_trainer* t, const int32_t* tokens, int32_t n, int32_t split);
/* Sequences and tokens held in a split. */
ET_API int et_trainer_data_size(const et_trainer* t, int32_t split, int32_t* seqs, int64_t* tokens);

/* One optimizer step over batch_seqs training sequences drawn with replacement (from `seed`, as is the
 * noise); a sequence longer than max_len (>= 2) contributes one window of max_len tokens at a drawn
 * start, keeping its absolute positions. AdamW (betas 0.9, 0.95, no weight decay) at learning rate lr,
 * after clipping the gradient's global norm to grad_clip (0: no clipping). Writes out_stats (before the
 * update). On failure the parameters are unchanged. */
ET_API int et_trainer_step(et_trainer* t, int32_t batch_seqs, int32_t max_len, float lr, float noise, float grad_clip,
                           uint64_t seed, float* out_stats);
/* The same losses over every validation sequence, whole, without noise or grad. Needs validation data. */
ET_API int et_trainer_eval(et_trainer* t, float* out_stats);

#ifdef __cplusplus
}
#endif
#endif
