// MinHash sketches compatible with sourmash 4.x: the hash of a k-mer is the low 64 bits of
// MurmurHash3_x64_128 (seed `seed`) of its canonical form as uppercase ASCII, the canonical form being
// the lexicographically smaller of the k-mer and its reverse complement. Bases are case-insensitive;
// k-mers holding a non-ACGT byte are skipped (sourmash's add_sequence(force=True)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kmerx {

// MurmurHash3_x64_128 of n bytes, returning the low 64 bits (h1) of the 128-bit result. Both 64-bit
// halves of the state start at `seed`, as sourmash does.
uint64_t murmur3_x64_128_low(const uint8_t* bytes, std::size_t n, uint64_t seed);

// The distinct hashes of the reads' canonical k-mers (k in 1..64) that pass the sketch's filter, sorted
// ascending: hashes <= max_hash, and, when num > 0, only the num smallest of those. Reads are
// data[offsets[r]:offsets[r+1]] for r in [0, n); long reads are split with k-1 bases of overlap so work
// spreads over the pool's threads.
std::vector<uint64_t> sketch_hashes(const uint8_t* data, const int64_t* offsets, std::size_t n, int k,
                                    uint64_t seed, uint64_t max_hash, std::size_t num);

namespace detail {
// out[i] = the sourmash hash of the k-mer (1 <= k <= 32) whose canonical 2-bit code (kmerx/encode.hpp
// layout) is codes[i]. AVX2 twin of the scalar hashing in sketch.cpp (bit-identical).
void sketch_hash_codes_avx2(const uint64_t* codes, std::size_t n, int k, uint64_t seed, uint64_t* out);
}  // namespace detail

}  // namespace kmerx
