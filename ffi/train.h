// train.h — internal types of the draft-head trainer behind et_trainer (et_train.h): the head's float32
// parameters with their AdamW state, and the target's features kept as a dataset on the device.
#pragma once
#include "et_train.h"
#include "shim.h"

namespace et {

struct Sequence {
  torch::Tensor tokens;    // (n) int64
  torch::Tensor features;  // (n, hidden) the target's final-norm hidden states, its compute dtype
};

struct Trainer {
  std::shared_ptr<Model> target;
  et_model_config cfg{};  // the head's
  torch::Device device{torch::kCPU};
  torch::Tensor inv_freq;        // (head_dim/2) float32
  torch::Tensor embed, lm_head;  // frozen float32 copies of the target's
  std::array<torch::Tensor, ET_W_COUNT> p;  // trainable, float32, indexed by et_weight
  std::vector<torch::Tensor> params;        // the defined ones, in optimizer order
  std::unique_ptr<torch::optim::AdamW> opt;
  std::vector<Sequence> split[2];           // indexed by et_split
};

// train_step.cpp: one optimizer step and one validation pass, as et_trainer_step / et_trainer_eval document
void train_step(Trainer& tr, int32_t batch_seqs, int32_t max_len, float lr, float noise, float grad_clip, uint64_t seed,
                float* out_stats);
void train_eval(Trainer& tr, float* out_stats);

}  // namespace et
