// cuda_memory.cpp — free and total memory of a CUDA device, for refusing a model that cannot fit before
// any of it is loaded. Asked of the CUDA driver (libcuda.so.1, present wherever CUDA runs) through dlopen,
// so the shim needs no CUDA headers and builds the same against CPU-only libtorch.
#include <dlfcn.h>

#include "shim.h"

namespace {

using MemGetInfo = int (*)(size_t* free_bytes, size_t* total_bytes);

// looked up once; null when the driver or the symbol is missing
MemGetInfo driver_mem_get_info() {
  static const MemGetInfo f = [] {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    return lib ? reinterpret_cast<MemGetInfo>(dlsym(lib, "cuMemGetInfo_v2")) : nullptr;
  }();
  TORCH_CHECK(f, "cannot read CUDA memory: libcuda.so.1 or its cuMemGetInfo_v2 not found");
  return f;
}

}  // namespace

extern "C" int et_cuda_memory(int32_t index, uint64_t* free_bytes, uint64_t* total_bytes) {
  return et::guarded([&] {
    TORCH_CHECK(free_bytes && total_bytes, "et_cuda_memory: null argument");
    const auto dev = et::device_of(ET_CUDA, index);
    // a tiny allocation makes libtorch create the device's primary context and make it current here,
    // which the driver call reads; the caching allocator keeps it, so it costs nothing afterwards
    torch::empty({1}, torch::TensorOptions().device(dev));
    size_t free_b = 0, total_b = 0;
    int rc = driver_mem_get_info()(&free_b, &total_b);
    TORCH_CHECK(rc == 0, "cuMemGetInfo failed with CUDA error ", rc);
    *free_bytes = free_b;
    *total_bytes = total_b;
  });
}
