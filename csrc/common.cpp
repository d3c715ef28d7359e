#include "kmerx/common.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace kmerx {

namespace {

std::size_t default_threads() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw ? hw : 1;
}

// Workers sleep on a queue of jobs; a parallel_for pushes one job per chunk and waits on a latch.
class Pool {
  public:
    static Pool& instance() {
        // Leaked on purpose: worker threads must not be joined during static destruction.
        static Pool* pool = new Pool();
        return *pool;
    }

    void run(std::vector<std::function<void()>>& jobs) {
        // Shared ownership: a worker may still hold the latch after the caller has returned.
        struct Latch {
            std::mutex mu;
            std::condition_variable cv;
            std::size_t remaining;
        };
        auto latch = std::make_shared<Latch>();
        latch->remaining = jobs.size();
        auto finish = [](Latch& l) {
            std::lock_guard<std::mutex> g(l.mu);
            if (--l.remaining == 0) l.cv.notify_all();
        };
        ensure_workers(jobs.size() - 1);
        {
            std::lock_guard<std::mutex> lock(mu_);
            for (std::size_t i = 1; i < jobs.size(); ++i) {
                queue_.push_back([&jobs, latch, finish, i] {
                    jobs[i]();
                    finish(*latch);
                });
            }
        }
        cv_.notify_all();
        jobs[0]();  // the caller works on the first chunk
        finish(*latch);
        // Help with queued jobs instead of idling, then wait for the rest.
        while (auto job = try_pop()) job();
        std::unique_lock<std::mutex> lock(latch->mu);
        latch->cv.wait(lock, [&] { return latch->remaining == 0; });
    }

  private:
    std::function<void()> try_pop() {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.empty()) return {};
        auto job = std::move(queue_.front());
        queue_.pop_front();
        return job;
    }

    void ensure_workers(std::size_t n) {
        std::lock_guard<std::mutex> lock(mu_);
        while (workers_ < n) {
            std::thread([this] { loop(); }).detach();
            ++workers_;
        }
    }

    void loop() {
        in_pool_thread() = true;
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] { return !queue_.empty(); });
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            job();
        }
    }

  public:
    static bool& in_pool_thread() {
        static thread_local bool flag = false;
        return flag;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    std::size_t workers_ = 0;
};

std::atomic<std::size_t> g_threads{0};

// Chunks run with this flag set, so a parallel_for nested inside one runs serially.
struct NestedGuard {
    bool prev;
    NestedGuard() : prev(Pool::in_pool_thread()) { Pool::in_pool_thread() = true; }
    ~NestedGuard() { Pool::in_pool_thread() = prev; }
};

void run_ranges(const std::vector<std::pair<std::size_t, std::size_t>>& ranges,
                const std::function<void(std::size_t, std::size_t)>& fn) {
    if (ranges.empty()) return;
    if (ranges.size() == 1 || Pool::in_pool_thread()) {
        NestedGuard guard;
        for (auto& r : ranges) fn(r.first, r.second);
        return;
    }
    std::exception_ptr error;
    std::mutex error_mu;
    std::vector<std::function<void()>> jobs;
    jobs.reserve(ranges.size());
    for (auto& r : ranges) {
        jobs.emplace_back([&, r] {
            NestedGuard guard;
            try {
                fn(r.first, r.second);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mu);
                if (!error) error = std::current_exception();
            }
        });
    }
    Pool::instance().run(jobs);
    if (error) std::rethrow_exception(error);
}

}  // namespace

std::size_t num_threads() {
    std::size_t n = g_threads.load();
    if (n) return n;
    static const std::size_t dflt = default_threads();
    return dflt;
}

void set_num_threads(std::size_t n) { g_threads.store(n); }

void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                  std::size_t min_chunk) {
    if (n == 0) return;
    min_chunk = std::max<std::size_t>(min_chunk, 1);
    std::size_t parts = std::min(num_threads(), (n + min_chunk - 1) / min_chunk);
    parts = std::max<std::size_t>(parts, 1);
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    for (std::size_t p = 0; p < parts; ++p) {
        std::size_t b = n * p / parts, e = n * (p + 1) / parts;
        if (b < e) ranges.emplace_back(b, e);
    }
    run_ranges(ranges, fn);
}

std::vector<std::pair<std::size_t, std::size_t>> balanced_ranges(const int64_t* offsets, std::size_t n,
                                                                 std::size_t parts) {
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    if (n == 0) return ranges;
    parts = std::max<std::size_t>(1, std::min(parts, n));
    const int64_t lo = offsets[0], total = offsets[n] - offsets[0];
    std::size_t begin = 0;
    for (std::size_t p = 1; p <= parts && begin < n; ++p) {
        std::size_t end = n;
        if (p < parts) {
            const int64_t target = lo + static_cast<int64_t>((static_cast<double>(total) * p) / parts);
            end = static_cast<std::size_t>(std::upper_bound(offsets + begin + 1, offsets + n, target) - offsets);
            end = std::max(end, begin + 1);
        }
        ranges.emplace_back(begin, end);
        begin = end;
    }
    if (begin < n) ranges.back().second = n;
    return ranges;
}

void parallel_for_weighted(const int64_t* offsets, std::size_t n,
                           const std::function<void(std::size_t, std::size_t)>& fn, int64_t min_weight) {
    if (n == 0) return;
    const int64_t total = offsets[n] - offsets[0];
    std::size_t parts = num_threads();
    if (min_weight > 0) parts = std::min<std::size_t>(parts, static_cast<std::size_t>(total / min_weight) + 1);
    run_ranges(balanced_ranges(offsets, n, parts), fn);
}

// ---- SIMD -----------------------------------------------------------------------------------

namespace {

Simd detect() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return Simd::AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2")) return Simd::AVX2;
#endif
    return Simd::Scalar;
}

Simd initial_level() {
    const char* env = std::getenv("KMERX_SIMD");
    Simd best = detect();
    if (env && *env) {
        Simd want = simd_from_name(env);
        if (static_cast<int>(want) <= static_cast<int>(best)) return want;
    }
    return best;
}

std::atomic<int>& level_ref() {
    static std::atomic<int> level{static_cast<int>(initial_level())};
    return level;
}

}  // namespace

Simd simd_detected() {
    static const Simd d = detect();
    return d;
}

Simd simd_level() { return static_cast<Simd>(level_ref().load(std::memory_order_relaxed)); }

void set_simd(Simd level) {
    if (static_cast<int>(level) > static_cast<int>(simd_detected()))
        throw std::invalid_argument(std::string("simd level '") + simd_name(level) +
                                    "' is not supported by this CPU (best: " + simd_name(simd_detected()) + ")");
    level_ref().store(static_cast<int>(level));
}

const char* simd_name(Simd level) {
    switch (level) {
        case Simd::Scalar: return "scalar";
        case Simd::AVX2: return "avx2";
        case Simd::AVX512: return "avx512";
    }
    return "?";
}

Simd simd_from_name(const std::string& name) {
    if (name == "scalar") return Simd::Scalar;
    if (name == "avx2") return Simd::AVX2;
    if (name == "avx512") return Simd::AVX512;
    if (name == "auto") return simd_detected();
    throw std::invalid_argument("simd level must be one of 'auto', 'scalar', 'avx2', 'avx512', got '" + name + "'");
}

}  // namespace kmerx
