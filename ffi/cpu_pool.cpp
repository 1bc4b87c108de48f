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

constexpr int64_t PIECES_PER_THREAD = 4;

// set while this thread runs a piece of a job, or a Serial lives on it: a parallel_for then runs inline (the
// pool runs one job at a time, and a piece is already one thread's share)
thread_local bool in_piece = false;

class Pool {
 public:
  // runs f over [0, n) cut into `pieces` contiguous pieces, which the caller and up to `workers` threads
  // take one at a time as each becomes free: a worker that starts late (a busy core) takes fewer, and the
  // caller never waits for more than the piece a worker is running. The pieces depend only on n and
  // `pieces`, never on who runs them.
  void run(int64_t n, int64_t pieces, int workers, const std::function<void(int64_t, int64_t)>& f) {
    std::lock_guard<std::mutex> one(calls_);  // one job at a time
    grow(workers);
    Job job{&f, n, pieces, 0};
    {
      std::lock_guard<std::mutex> lock(mu_);
      job.generation = job_.generation + 1;
      job_ = job;
      done_.store(0, std::memory_order_relaxed);
      next_.store(job.generation << PIECE_BITS, std::memory_order_relaxed);
      generation_.store(job.generation, std::memory_order_release);
    }
    wake_.notify_all();
    take_pieces(job);
    while (done_.load(std::memory_order_acquire) < pieces) std::this_thread::yield();
  }

 private:
  struct Job {
    const std::function<void(int64_t, int64_t)>* f;
    int64_t n;
    int64_t pieces;
    uint64_t generation;
  };
  static constexpr int PIECE_BITS = 24;  // next_: the job's generation above, its next piece below

  // runs pieces of `j` until none is left; a piece is claimed only while next_ still belongs to j, so a
  // worker that wakes after j has ended never touches a later job
  void take_pieces(const Job& j) {
    uint64_t v = next_.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t piece = v & ((uint64_t(1) << PIECE_BITS) - 1);
      if ((v >> PIECE_BITS) != j.generation || int64_t(piece) >= j.pieces) return;
      if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
      const int64_t begin = j.n * int64_t(piece) / j.pieces, end = j.n * (int64_t(piece) + 1) / j.pieces;
      if (begin < end) {
        const Serial inside;
        (*j.f)(begin, end);
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
      v = next_.load(std::memory_order_acquire);
    }
  }

  void grow(int workers) {
    while (int(threads_.size()) < workers) {
      threads_.emplace_back([this] { loop(); });
      threads_.back().detach();  // the pool lives as long as the process
    }
  }

  // a worker takes each new job's description whole, under the lock, so it never mixes two jobs
  void loop() {
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
      take_pieces(job);
    }
  }

  std::mutex calls_, mu_;
  std::condition_variable wake_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_{0};
  std::atomic<int64_t> done_{0};
  Job job_{nullptr, 0, 1, 0};  // the latest job, guarded by mu_
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: its threads are detached
  return *p;
}

}  // namespace

Serial::Serial() : was(in_piece) { in_piece = true; }
Serial::~Serial() { in_piece = was; }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  if (in_piece) return f(0, n);
  const int64_t most = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int threads = int(std::min<int64_t>(std::max(1, torch::get_num_threads()), most));
  if (threads <= 1) return f(0, n);
  // a few pieces a thread (none under the grain): enough to even out a late start or uneven pieces
  pool().run(n, std::min<int64_t>(most, int64_t(threads) * PIECES_PER_THREAD), threads - 1, f);
}

}  // namespace et::cpu
