// 2-bit nucleotide encoding and k-mer codes (CPU). The CUDA twin (cuda/encode.cu) follows the same
// conventions and is bit-identical; docs/kmer_codes.md describes the layouts.
//
// Bases: A/a = 0, C/c = 1, G/g = 2, T/t = 3; every other byte is "invalid" (N, IUPAC, ...).
// K-mer code (k <= 32): sum base_i * 4^(k-1-i), the first base most significant, in one uint64.
// K-mer code (33 <= k <= 64): the same 128-bit number stored as two uint64 words [hi, lo], so that
// lexicographic order of k-mers equals numeric order of (hi, lo).
// Strands: forward, reverse (the code of the reverse complement), canonical (min of both, i.e. the
// lexicographically smaller in ACGT order, as jellyfish and KMC define it).
// A k-mer starting at base p of a read (0-based) is emitted when p % stride == 0 and all its k bases
// are valid; windows holding an invalid base are dropped (no placeholder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kmerx {

enum class Strand : int { Forward = 0, Reverse = 1, Canonical = 2 };

struct KmerSpec {
    int k = 31;                          // 1..64
    Strand strand = Strand::Canonical;
    int64_t stride = 1;                  // >= 1
    int words() const { return k > 32 ? 2 : 1; }
};

// "canonical" | "forward" | "reverse"; std::invalid_argument naming the value otherwise.
Strand strand_from_name(const std::string& name);

// A validated spec: std::invalid_argument naming k (1..64), strand or stride (>= 1) when out of range.
KmerSpec make_kmer_spec(int64_t k, const std::string& strand, int64_t stride);

// Base code of every byte: 0..3 for ACGTacgt, kInvalidBase for anything else.
constexpr uint8_t kInvalidBase = 4;
struct BaseCodeTable {
    uint8_t v[256];
    constexpr BaseCodeTable() : v() {
        for (int i = 0; i < 256; ++i) v[i] = kInvalidBase;
        v['A'] = v['a'] = 0;
        v['C'] = v['c'] = 1;
        v['G'] = v['g'] = 2;
        v['T'] = v['t'] = 3;
    }
};
inline constexpr BaseCodeTable kBaseCode{};

// Packs n bases, 4 per byte, first base in the two high bits of byte 0; the last byte is padded with
// zero bits. out must hold (n + 3) / 4 bytes. Returns -1, or the index of the first invalid base (out
// is then partially written).
int64_t pack_2bit(const uint8_t* seq, std::size_t n, uint8_t* out);

// Inverse of pack_2bit: writes n ASCII bases (uppercase ACGT) from (n + 3) / 4 packed bytes.
void unpack_2bit(const uint8_t* packed, std::size_t n, uint8_t* out);

// The k letters (uppercase ACGT) of each of n codes, to out[i * k ...]; codes hold spec-style words
// (one uint64 for k <= 32, [hi, lo] pairs for k > 32). Multi-threaded.
void decode_kmers(const uint64_t* codes, std::size_t n, int k, uint8_t* out);

// Pass 1: counts[r] = number of k-mers read r emits (reads r in [0, n), item r is
// data[offsets[r]:offsets[r+1]]). Multi-threaded over reads.
void kmer_counts(const uint8_t* data, const int64_t* offsets, std::size_t n, const KmerSpec& spec,
                 int64_t* counts);

// Pass 2: writes the k-mers of read r to codes[out_offsets[r] * spec.words() ...] and, when positions
// is not null, their start offsets within the read to positions[out_offsets[r] ...]. out_offsets
// (n + 1 entries) must be the exclusive prefix sum of kmer_counts. Multi-threaded over reads; uses
// the AVX2 kernel when simd_level() >= AVX2 (bit-identical to the scalar one).
void kmer_codes(const uint8_t* data, const int64_t* offsets, std::size_t n, const KmerSpec& spec,
                const int64_t* out_offsets, uint64_t* codes, int32_t* positions);

namespace detail {
// Emits the k-mers of one all-valid run seq[a, b) of a read (stride 1, 4 <= k <= 32), writing at out/pos
// and returning the number written; positions are offsets from seq. For long reads.
std::size_t kmer_run_avx2(const uint8_t* seq, int64_t a, int64_t b, int k, Strand strand, uint64_t* out,
                          int32_t* pos);
// Writes the k-mers of reads [0, nreads) of offsets (stride 1, 4 <= k <= 32) to out (and their
// positions to pos when not null); cap is their number (the sum of kmer_counts). Returns the number
// written. AVX2 twin of the scalar per-read loop.
std::size_t kmer_stream_avx2(const uint8_t* data, const int64_t* offsets, std::size_t nreads, int k,
                             Strand strand, uint64_t* out, int32_t* pos, std::size_t cap);
// End of the all-valid run starting at i: the first j >= i with an invalid base, or n.
int64_t valid_run_end_avx2(const uint8_t* seq, int64_t i, int64_t n);
}  // namespace detail

}  // namespace kmerx
