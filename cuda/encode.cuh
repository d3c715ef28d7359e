// K-mer codes on the GPU: the same conventions and output as kmerx::kmer_counts / kmer_codes
// (csrc/include/kmerx/encode.hpp), bit for bit, on device pointers. Two launches: window_index
// (windows.cuh, with k and the stride) finds the emitted k-mers and their output slots, kmer_fill
// writes the codes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kmerx/encode.hpp"

namespace kmerx::cuda {

// Writes codes (spec.words() uint64 per k-mer) and, when d_positions is not null, the int32 start of
// each k-mer within its read, using the d_index of window_index.
void kmer_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const KmerSpec& spec,
               const int64_t* d_index, uint64_t* d_codes, int32_t* d_positions, cudaStream_t stream);

}  // namespace kmerx::cuda
