// Shared pieces of the native core: error types, the process-wide thread pool and SIMD dispatch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kmerx {

// A malformed input file. Registered with pybind11 as kmerx.FastxFormatError (a ValueError).
// Bad arguments use std::invalid_argument (ValueError) and std::out_of_range (IndexError).
struct FormatError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---- threads ---------------------------------------------------------------------------------
// One pool per process. Its size defaults to the CPUs this process may run on (sched_getaffinity,
// which honours taskset, cgroups cpusets and the CPUs Ray assigns to a worker).
std::size_t num_threads();
// 0 restores the default. Takes effect for the next parallel call.
void set_num_threads(std::size_t n);

// Calls fn(begin, end) on disjoint chunks covering [0, n), in parallel on the pool; the calling
// thread works too. The first exception thrown by any chunk is rethrown here after all chunks end.
// Nested calls (from inside fn) run serially on the calling thread.
void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                  std::size_t min_chunk = 1);

// Splits items [0, n) whose sizes are given by offsets[0..n] into at most `parts` contiguous ranges
// of about equal total size (by offsets), so long and short reads balance across threads.
std::vector<std::pair<std::size_t, std::size_t>> balanced_ranges(const int64_t* offsets, std::size_t n,
                                                                 std::size_t parts);

// Runs fn(begin, end) over balanced ranges of items [0, n) on the pool (see balanced_ranges).
void parallel_for_weighted(const int64_t* offsets, std::size_t n,
                           const std::function<void(std::size_t, std::size_t)>& fn,
                           int64_t min_weight = 1 << 16);

// ---- SIMD dispatch ---------------------------------------------------------------------------
// Kernels with vector variants pick one at run time; no -march=native in the build.
enum class Simd : int { Scalar = 0, AVX2 = 1, AVX512 = 2 };

Simd simd_detected();  // best level the CPU (and OS) supports
Simd simd_level();     // level kernels use now: detected, or what set_simd / KMERX_SIMD forced
// Forces a level (for tests and benchmarks); throws std::invalid_argument if the CPU lacks it.
void set_simd(Simd level);
const char* simd_name(Simd level);
Simd simd_from_name(const std::string& name);  // "scalar" | "avx2" | "avx512" | "auto"

}  // namespace kmerx
