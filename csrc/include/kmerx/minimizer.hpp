// minimap2-compatible minimizers (the sketch of libminimap2 2.24 mm_sketch), CPU. docs/minimizers.md
// states the rules; in short:
//   * bases: ACGTU in any case and the raw bytes 0..3 are 0..3 (T/U = 3), as minimap2's
//     seq_nt4_table; any other byte is "N": it ends the current k-mer run and restarts the window.
//   * a k-mer's key is hash64(min(fwd, rev), 2k-bit mask), minimap2's invertible integer hash;
//     strand = 1 when the reverse-complement code is the smaller; palindromes (fwd == rev) are
//     skipped and take no window slot.
//   * windows hold w consecutive k-mer slots; the minimum is taken over (hash << 8 | span), so on a
//     hash tie the smaller span wins, and on a full tie the later k-mer; identical minima in a
//     window are all reported, in minimap2's push order (not always sorted by position).
//   * hpc: homopolymer runs count as one base; a k-mer ends at the last base of its last run and
//     spans the bases of its k runs; k-mers spanning >= 256 bases are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace kmerx {

constexpr int kMinimizerMaxK = 28;   // the hash leaves 8 bits of a 64-bit key for the span
constexpr int kMinimizerMaxW = 255;  // minimap2 keeps a window in a 256-slot buffer

struct MinimizerSpec {
    int k = 15;  // 1..28
    int w = 10;  // 1..255
    bool hpc = false;
};

// A validated spec: std::invalid_argument naming k or w and the value when out of range.
MinimizerSpec make_minimizer_spec(int64_t k, int64_t w, bool hpc);

// minimap2's hash64: an invertible map of the 2k-bit k-mer code onto [0, 4^k).
inline uint64_t mm_hash64(uint64_t key, uint64_t mask) {
    key = (~key + (key << 21)) & mask;
    key = key ^ (key >> 24);
    key = (key * 265) & mask;  // key + (key << 3) + (key << 8)
    key = key ^ (key >> 14);
    key = (key * 21) & mask;   // key + (key << 2) + (key << 4)
    key = key ^ (key >> 28);
    key = (key + (key << 31)) & mask;
    return key;
}

// Where minimizers() writes its results: alloc(m) is called once, on the calling thread, with the
// number of minimizers, and returns the columns to fill (end/strand/span may be null to skip them).
struct MinimizerColumns {
    uint64_t* hash;   // minimap2's hash64 of the smaller strand's code
    int32_t* end;     // 0-based position of the k-mer's last base
    int8_t* strand;   // 1: the reverse-complement k-mer is the smaller
    uint8_t* span;    // bases the k-mer covers (k without hpc)
};

// Minimizers of reads [0, n) (read r is data[offsets[r]:offsets[r+1]]), concatenated read after read
// in minimap2's order; out_offsets (n + 1 entries) receives the exclusive prefix sum of the counts.
// Reads must be shorter than 2^31 bases (the binding checks). Multi-threaded over reads; the
// steady state takes AVX2 blocks when simd_level() >= AVX2 (bit-identical to scalar).
void minimizers(const uint8_t* data, const int64_t* offsets, std::size_t n, const MinimizerSpec& spec,
                int64_t* out_offsets, const std::function<MinimizerColumns(std::size_t)>& alloc);

namespace detail {
// One window slot: key = hash << 8 | span (kMinimizerEmpty: no k-mer), tag = end << 1 | strand.
struct MinimizerSlot {
    uint64_t key;
    uint32_t tag;
};
constexpr uint64_t kMinimizerEmpty = ~uint64_t(0);
constexpr uint64_t kMinimizerPalindrome = ~uint64_t(0) - 1;  // above any key (hash < 2^56)

// Slots of n consecutive k-mers (no hpc) from their forward and reverse-complement codes fwd[j],
// rev[j] (each < 4^k); k-mer j ends at base first_end + j. Palindromes get kMinimizerPalindrome.
// Scalar and AVX2 versions (bit-identical).
void minimizer_keys(const uint64_t* fwd, const uint64_t* rev, int n, int k, uint32_t first_end,
                    MinimizerSlot* out);
void minimizer_keys_avx2(const uint64_t* fwd, const uint64_t* rev, int n, int k, uint32_t first_end,
                         MinimizerSlot* out);

// The steady-state fast path (no hpc, AVX2 only). Linear-window keys: index t of a block's window
// array holds (hash << 8 | (255 - t)) ^ 2^63 as int64, so that a signed compare orders by hash and,
// among equal hashes, puts the newest index first (minimap2's tie rule); w + m <= 256 keeps the
// index byte unique. minimizer_fast_keys_avx2 writes those of m k-mers (m % 16 == 0, m <= 240)
// from the base codes 0..3 of bases [end0 - k + 1, end0 + m) (8 readable bytes of padding after), as
// indices first_idx.., and the strand bits to zbits (bit r: k-mer r's reverse complement is smaller;
// 4 words). Returns false, with kt partly written, when a k-mer is a palindrome.
bool minimizer_fast_keys_avx2(const uint8_t* codes, int m, int k, int first_idx, int64_t* kt, uint64_t* zbits);
// a[t] = min(a[t - w + 1 .. t]) for t in [w - 1, n) (other entries are left partial), in place.
void window_min_avx2(int64_t* a, int n, int w);
// Base codes 0..3 of ACGTacgt bytes s[0, n) into codes; false when another byte occurs (the caller
// then takes the general path, which also knows U and the raw codes 0..3).
bool acgt_codes_avx2(const uint8_t* s, int n, uint8_t* codes);
// The positions t in [w, n) where mn[t] != mn[t - 1] (kt: the linear-window keys, mn: their window
// minima, both readable up to index n + 3), ascending, into ev; kFastCopies is set on those where the
// old minimum left and another slot of the window holds the new minimum's hash. Returns the count.
constexpr uint16_t kFastCopies = 0x8000;
int minimizer_fast_events_avx2(const int64_t* kt, const int64_t* mn, int n, int w, uint16_t* ev);
}  // namespace detail

}  // namespace kmerx
