// cpu_pool.cpp — the CPU kernels' own worker threads. ATen's parallel_for is an inline template whose
// OpenMP version only runs in parallel when the caller is compiled with OpenMP, so the shim keeps a small
// pool instead: as many threads as libtorch is set to use (et_set_threads), started on first use, each
// spinning briefly for the next job and then sleeping. Jobs never throw (they are plain loops).
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "cpu_kernels.h"
#include "shim.h"

namespace et::cpu {

#if defined(__x86_64__)
FlushDenormals::FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040); }  // FTZ (bit 15), DAZ (bit 6)
FlushDenormals::~FlushDenormals() { _mm_setcsr(saved); }
#else
FlushDenormals::FlushDenormals() {}
FlushDenormals::~FlushDenormals() {}
#endif

namespace {

class Pool {
 public:
  // runs f over [0, n) in `chunks` contiguous pieces, the caller taking the first
  void run(int64_t n, int chunks, const std::function<void(int64_t, int64_t)>& f) {
    std::lock_guard<std::mutex> one(calls_);  // one job at a time
    grow(chunks - 1);
    pending_.store(chunks - 1, std::memory_order_relaxed);
    Job job{&f, n, chunks, 0};
    {
      std::lock_guard<std::mutex> lock(mu_);
      job.generation = job_.generation + 1;
      job_ = job;
      generation_.store(job.generation, std::memory_order_release);
    }
    wake_.notify_all();
    work(job, 0);
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }

 private:
  struct Job {
    const std::function<void(int64_t, int64_t)>* f;
    int64_t n;
    int chunks;
    uint64_t generation;
  };

  static void work(const Job& j, int chunk) {
    const int64_t begin = j.n * chunk / j.chunks, end = j.n * (chunk + 1) / j.chunks;
    if (begin < end) (*j.f)(begin, end);
  }

  void grow(int workers) {
    while (int(threads_.size()) < workers) {
      const int chunk = int(threads_.size()) + 1;
      threads_.emplace_back([this, chunk] { loop(chunk); });
      threads_.back().detach();  // the pool lives as long as the process
    }
  }

  // a worker takes each new job's description whole, under the lock, so it never mixes two jobs
  void loop(int chunk) {
    const FlushDenormals flush;  // for the worker's life: it runs only the kernels
    uint64_t seen = 0;
    for (;;) {
      // spin a little: the next product of a forward comes within microseconds
      for (int i = 0; i < 2000 && generation_.load(std::memory_order_acquire) == seen; i++) std::this_thread::yield();
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return job_.generation != seen; });
        job = job_;
      }
      seen = job.generation;
      if (chunk < job.chunks) {
        work(job, chunk);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::mutex calls_, mu_;
  std::condition_variable wake_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  Job job_{nullptr, 0, 1, 0};  // the latest job, guarded by mu_
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: its threads are detached
  return *p;
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  const int64_t most = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int threads = int(std::min<int64_t>(std::max(1, torch::get_num_threads()), most));
  if (threads <= 1) return f(0, n);
  pool().run(n, threads, f);
}

}  // namespace et::cpu
