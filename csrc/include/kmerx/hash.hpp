// ntHash 2 (rolling k-mer hashes, bit-exact with btllib 1.4.10 / ntHash 2.3) and ntHash minimizers
// (btllib indexlr's rules) on the CPU. The CUDA twin (cuda/hash.cu) is bit-identical. docs/nthash.md.
//
// Definitions, for a k-mer s_0..s_{k-1} over ACGT (any case), with srol^d the "split rotation" (the
// low 33 bits and the high 31 bits of a word rotated left by d separately) and SEED[b] ntHash's seeds:
//   forward  = XOR_i srol^(k-1-i)(SEED[s_i])
//   reverse  = XOR_i srol^i(SEED[complement(s_i)])          (forward hash of the reverse complement)
//   canonical = forward + reverse  (mod 2^64; ntHash 2's definition, symmetric in the two strands)
// Hash 0 of a k-mer is the strand's value; extra hashes j = 1..num_hashes-1 are ntHash's
//   t = base * (j ^ (k * MULTISEED)); t ^ (t >> 27)
// of that same base value (for canonical this is exactly btllib NtHash::hashes()).
// K-mers holding a non-ACGT byte are skipped. Any k >= 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kmerx/encode.hpp"  // Strand

namespace kmerx {

constexpr int64_t kMaxNumHashes = 64;

struct NtHashSpec {
    int64_t k = 31;                     // >= 1
    int num_hashes = 1;                 // 1..kMaxNumHashes
    Strand strand = Strand::Canonical;
};

// A validated spec: std::invalid_argument naming k, num_hashes or strand when out of range.
NtHashSpec make_nthash_spec(int64_t k, int64_t num_hashes, const std::string& strand);

// Pass 1: counts[r] = number of all-ACGT k-mers of read r (item r is data[offsets[r]:offsets[r+1]]).
void nthash_counts(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int64_t* counts);

// Pass 2: read r's hashes go to values[out_offsets[r] * h ...] (h = num_hashes per k-mer, row-major),
// and when positions is not null the k-mer starts to positions[out_offsets[r] ...]. out_offsets has
// n + 1 entries (the prefix sums of nthash_counts). Multi-threaded over reads (reads over 2 Mi bases
// are cut into pieces of 2^20 k-mer starts first); AVX2 when available, bit-identical to scalar.
void nthash(const uint8_t* data, const int64_t* offsets, std::size_t n, const NtHashSpec& spec,
            const int64_t* out_offsets, uint64_t* values, int32_t* positions);

// Minimizers as btllib's indexlr picks them, per read: the valid k-mers v_0, v_1, ... (N k-mers
// skipped, windows run across them) are grouped in windows of w consecutive valid k-mers; each window's
// minimizer is its smallest canonical hash (h0), the rightmost one on ties; std::invalid_argument for
// k < 1 or w < 1; a minimizer is reported
// when its position is greater than the last reported one (so consecutive windows sharing it report it
// once) and its hash is not 2^64-1. Reads shorter than k + w - 1 report nothing.
// The output size is only known after the windows are scanned, so this is one pass into vectors:
// hashes/positions get the concatenation over reads, out_offsets (n + 1 entries) the read boundaries.
// Single-threaded (scalar).
void nthash_minimizers(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int64_t w,
                       std::vector<uint64_t>& hashes, std::vector<int32_t>& positions,
                       int64_t* out_offsets);

namespace nthash_detail {

// Split rotations (see above).
inline uint64_t srol(uint64_t x) {
    return ((x << 1) & 0xFFFFFFFDFFFFFFFFULL) | ((x >> 30) & 0x200000000ULL) | ((x >> 32) & 1ULL);
}
inline uint64_t sror(uint64_t x) {
    return ((x >> 1) & 0xFFFFFFFEFFFFFFFFULL) | ((x << 30) & 0x8000000000000000ULL) | ((x & 1ULL) << 32);
}
uint64_t srol_by(uint64_t x, int64_t d);

// Extra hash j >= 1 of a k-mer whose hash 0 is `base` (btllib's multi-hash rule; see above).
inline uint64_t extra_hash(uint64_t base, uint64_t j, int64_t k) {
    const uint64_t t = base * (j ^ (static_cast<uint64_t>(k) * 0x90b45d39fb6da1faULL));
    return t ^ (t >> 27);
}

// The rolling tables for one k, indexed by base code (A0 C1 G2 T3).
struct Tables {
    uint64_t f_in[4];   // SEED[b]
    uint64_t f_out[4];  // srol^k(SEED[b])
    uint64_t r_in[4];   // srol^k(SEED[comp b])
    uint64_t r_out[4];  // SEED[comp b]
};
Tables make_tables(int64_t k);

// Hashes the run seq[0..len) (all ACGT, len >= k): writes len - k + 1 values to out (base hash only:
// the strand's value). AVX2 variant in hash_avx2.cpp; same output bit for bit. run_avx2 also accepts
// non-ACGT bytes (the windows holding them get meaningless values, the others stay exact).
void run_scalar(const uint8_t* seq, int64_t len, int64_t k, const Tables& t, Strand strand, uint64_t* out);
void run_avx2(const uint8_t* seq, int64_t len, int64_t k, const Tables& t, Strand strand, uint64_t* out);

// First index >= from in [from, to) whose byte is not ACGTacgt, or `to`.
int64_t next_invalid_scalar(const uint8_t* s, int64_t from, int64_t to);
int64_t next_invalid_avx2(const uint8_t* s, int64_t from, int64_t to);
// First index >= from in [from, to) whose byte is ACGTacgt, or `to`.
int64_t next_valid(const uint8_t* s, int64_t from, int64_t to);

}  // namespace nthash_detail
}  // namespace kmerx
