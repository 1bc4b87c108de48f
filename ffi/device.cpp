// device.cpp — device facts for benchmarks: waiting for queued work, and the memory copy bandwidth that
// bounds a memory-bound decode step.
#include <chrono>

#include "shim.h"

namespace et {

torch::Device device_of(int32_t device, int32_t index) {
  TORCH_CHECK(device == ET_CPU || device == ET_CUDA, "unknown device code ", device);
  if (device == ET_CPU) return torch::Device(torch::kCPU);
  TORCH_CHECK(torch::cuda::is_available(), "CUDA is not available to this libtorch");
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  TORCH_CHECK(index >= 0 && index < count, "CUDA device ", index, " outside [0, ", count, ")");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

namespace {

void sync(const torch::Device& dev) {
  if (dev.is_cuda()) torch::cuda::synchronize(dev.index());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace
}  // namespace et

using et::guarded;

extern "C" {

int et_device_sync(int32_t device, int32_t index) {
  return guarded([&] { et::sync(et::device_of(device, index)); });
}

int et_copy_bandwidth(int32_t device, int32_t index, uint64_t bytes, int32_t iters, double* bytes_per_s) {
  return guarded([&] {
    TORCH_CHECK(bytes_per_s, "et_copy_bandwidth: null argument");
    TORCH_CHECK(bytes >= (1u << 20) && bytes <= (uint64_t(1) << 40), "copy size must be in [1 MiB, 1 TiB], got ",
                bytes, " bytes");
    TORCH_CHECK(iters > 0 && iters <= 100000, "iterations must be in [1, 100000], got ", iters);
    auto dev = et::device_of(device, index);
    c10::InferenceMode guard;
    // float elements: the copy kernels vectorise them on every device
    const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
    auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
    auto src = torch::ones({n}, opts);
    auto dst = torch::empty({n}, opts);
    dst.copy_(src);  // warm-up: first-touch page faults, kernel load
    et::sync(dev);
    auto t0 = std::chrono::steady_clock::now();
    for (int32_t i = 0; i < iters; i++) dst.copy_(src);
    et::sync(dev);
    const double s = et::seconds_since(t0);
    TORCH_CHECK(s > 0, "copy took no measurable time");
    // each copy reads n floats and writes n floats: both count
    *bytes_per_s = 2.0 * double(n) * sizeof(float) * iters / s;
  });
}

}  // extern "C"
