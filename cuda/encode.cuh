// K-mer codes on the GPU: the same conventions and output as kmerx::kmer_counts / kmer_codes
// (csrc/include/kmerx/encode.hpp), bit for bit, on device pointers. Two launches: kmer_index finds
// the emitted k-mers and their output slots, kmer_fill writes the codes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kmerx/encode.hpp"

namespace kmerx::cuda {

// Reads r in [0, n) are d_data[d_offsets[r] : d_offsets[r + 1]] (device pointers; data_len bytes).
// Validates the offsets on the device (std::invalid_argument when they are decreasing, negative or
// past data_len). Writes d_index[q] (q in [0, bases], bases = offsets[n] - offsets[0]) = number of
// emitted k-mers starting before base offsets[0] + q, and d_out_offsets[r] (n + 1 entries) = the first
// output slot of read r. Returns the total number of k-mers.
int64_t kmer_index(const uint8_t* d_data, std::size_t data_len, const int64_t* d_offsets, std::size_t n,
                   const KmerSpec& spec, int64_t* d_index, int64_t* d_out_offsets, cudaStream_t stream);

// Number of bases covered by the reads (offsets[n] - offsets[0]), read from the device; the size
// d_index needs is this + 1.
int64_t covered_bases(const int64_t* d_offsets, std::size_t n, cudaStream_t stream);

// Writes codes (spec.words() uint64 per k-mer) and, when d_positions is not null, the int32 start of
// each k-mer within its read, using the d_index of kmer_index.
void kmer_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const KmerSpec& spec,
               const int64_t* d_index, uint64_t* d_codes, int32_t* d_positions, cudaStream_t stream);

}  // namespace kmerx::cuda
