// The k-base windows that per-k-mer ops (codes, ntHash) emit, found on the GPU. One thread per base
// position flags whether a window starts there (inside its read, at a multiple of the stride, all k
// bases ACGT); an exclusive scan of the flags gives every emitted window its output slot, so outputs
// match the CPU ops exactly with no per-read serial work (a 70 Mb chromosome spreads over the GPU).
// Each op then fills its values with one thread per position, reading its slot from the index.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace kmerx::cuda {

// Number of bases covered by the reads (offsets[n] - offsets[0]), read from the device; the size
// d_index needs is this + 1.
int64_t covered_bases(const int64_t* d_offsets, std::size_t n, cudaStream_t stream);

// Reads r in [0, n) are d_data[d_offsets[r] : d_offsets[r + 1]] (device pointers; data_len bytes).
// Validates the offsets on the device (std::invalid_argument when they are decreasing, negative or
// past data_len). Writes d_index[q] (q in [0, bases]) = number of emitted windows starting before base
// offsets[0] + q, and d_out_offsets[r] (n + 1 entries) = the first output slot of read r. Returns the
// total number of windows. k >= 1 (any length), stride >= 1.
int64_t window_index(const uint8_t* d_data, std::size_t data_len, const int64_t* d_offsets, std::size_t n,
                     int64_t k, int64_t stride, int64_t* d_index, int64_t* d_out_offsets, cudaStream_t stream);

}  // namespace kmerx::cuda
