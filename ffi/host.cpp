// host.cpp — small host arrays (token ids, positions, row and slot indices) onto the device without
// draining its queue: on CUDA through pinned memory and a non-blocking copy (the caching host allocator
// keeps the buffer until the copy is done), where a copy from pageable memory would first wait for every
// queued kernel. On CPU, a copy in the wanted dtype (the caller's buffer may go away after the call).
#include <cstring>

#include "shim.h"

namespace et {

torch::Tensor host_to_device(const void* data, int64_t n, torch::ScalarType from, const torch::Device& dev,
                             torch::ScalarType to) {
  auto src = torch::from_blob(const_cast<void*>(data), {n}, torch::TensorOptions().dtype(from));
  if (!dev.is_cuda()) return src.to(to, false, true);
  auto pinned = torch::empty({n}, torch::TensorOptions().dtype(from).pinned_memory(true));
  std::memcpy(pinned.data_ptr(), data, n * torch::elementSize(from));
  return pinned.to(dev, to, true);
}

}  // namespace et
