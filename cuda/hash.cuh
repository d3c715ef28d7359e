// ntHash 2 on the GPU: the same op as kmerx::nthash_counts / nthash (csrc/include/kmerx/hash.hpp), bit
// for bit, on device pointers. Two launches: window_index (windows.cuh, stride 1) finds the ACGT k-mers
// and their output slots (any k >= 1), nthash_fill writes the hashes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kmerx/hash.hpp"

namespace kmerx::cuda {

// Writes spec.num_hashes uint64 per k-mer (row-major) and, when d_positions is not null, the int32
// start of each k-mer within its read, using the d_index of window_index.
void nthash_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const NtHashSpec& spec,
                 const int64_t* d_index, uint64_t* d_values, int32_t* d_positions, cudaStream_t stream);

}  // namespace kmerx::cuda
