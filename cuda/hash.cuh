// ntHash 2 on the GPU: the same op as kmerx::nthash_counts / nthash (csrc/include/kmerx/hash.hpp), bit
// for bit, on device pointers. Two launches: nthash_index finds the ACGT k-mers and their output slots
// (any k >= 1), nthash_fill writes the hashes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kmerx/hash.hpp"

namespace kmerx::cuda {

// Reads r in [0, n) are d_data[d_offsets[r] : d_offsets[r + 1]] (device pointers; data_len bytes).
// Validates the offsets on the device (std::invalid_argument). Writes d_index[q] (q in [0, bases],
// bases = offsets[n] - offsets[0], see covered_bases in encode.cuh) = number of ACGT k-mers starting
// before base offsets[0] + q, and d_out_offsets[r] (n + 1 entries) = the first output slot of read r.
// Returns the total number of k-mers.
int64_t nthash_index(const uint8_t* d_data, std::size_t data_len, const int64_t* d_offsets, std::size_t n,
                     int64_t k, int64_t* d_index, int64_t* d_out_offsets, cudaStream_t stream);

// Writes spec.num_hashes uint64 per k-mer (row-major) and, when d_positions is not null, the int32
// start of each k-mer within its read, using the d_index of nthash_index.
void nthash_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const NtHashSpec& spec,
                 const int64_t* d_index, uint64_t* d_values, int32_t* d_positions, cudaStream_t stream);

}  // namespace kmerx::cuda
