// Exact k-mer counting (CPU), k <= 64, with a memory budget and spilling to disk.
//
// Pass 1 (add): the k-mer codes of a batch (kmerx/encode.hpp layout: uint64 for k <= 32, [hi, lo] for
// k > 32) are scattered into `bins` bins by their top 16 bits through a monotone table built from a
// sample of the first codes seen, so bins are balanced even for skewed canonical codes and the
// concatenation of the sorted bins is globally sorted (no final merge). Each worker thread owns its own
// chunked bins (no locks). When the bins hold more than the budget, every bin is appended to its own
// raw file in a temporary directory and its memory is released.
// Pass 2 (finish): bins are counted in parallel, one at a time per thread: gather (file + memory),
// LSD radix sort skipping constant digits, run-length, min/max filter; then concatenated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kmerx {

struct CountOptions {
    int k = 31;                          // 1..64: the k-mer length (sets the code width)
    bool canonical = true;               // count min(k-mer, reverse complement)
    uint64_t max_memory = 2ull << 30;    // bytes of binned codes kept in memory before spilling
    std::string tmp_dir;                 // where spill files go (empty: $TMPDIR or /tmp)
    int bins = 0;                        // 0: automatic (1024); else 1..65536
    uint64_t min_count = 1;              // keep k-mers seen at least min_count times
    uint64_t max_count = UINT64_MAX;     // ... and at most max_count times
};

// Smallest max_memory accepted: the per-thread chunk of every bin must fit.
uint64_t min_count_memory(int bins, std::size_t threads);

class KmerCountState;

// Streaming exact counter. Not thread-safe itself (one caller at a time); uses the pool inside.
class KmerCountNative {
  public:
    // std::invalid_argument naming the option when k, bins, max_memory or min/max_count is invalid.
    explicit KmerCountNative(const CountOptions& opts);
    ~KmerCountNative();
    KmerCountNative(const KmerCountNative&) = delete;
    KmerCountNative& operator=(const KmerCountNative&) = delete;

    // Adds the k-mers of reads [0, n) (item r is data[offsets[r]:offsets[r+1]]).
    void add_reads(const uint8_t* data, const int64_t* offsets, std::size_t n);
    // Adds n codes (words() uint64 each, [hi, lo] for k > 32) computed elsewhere.
    void add_codes(const uint64_t* codes, std::size_t n);

    // Sorts and counts every bin straight into the output; returns the number of distinct k-mers
    // kept. After this, only take_output(), big_counts() and max_count_seen() may be called.
    std::size_t finish();
    // Largest count among the kept k-mers (0 when none); valid after finish().
    uint64_t max_count_seen() const;
    // Hands over the result maps: codes (capacity * words() uint64) and counts (capacity uint32), whose
    // first finish() entries are the result; counts saturate at 2^32 - 1 (see big_counts). The caller
    // owns them and releases each with free_output(p, its size in bytes).
    void take_output(uint64_t*& codes, uint32_t*& counts, std::size_t& capacity);
    // Writes the exact counts >= 2^32 - 1 into a uint64 copy of the counts.
    void big_counts(uint64_t* counts) const;
    static void free_output(void* p, std::size_t bytes);

    int words() const;
    uint64_t total_kmers() const;   // k-mers added so far
    uint64_t spilled_bytes() const; // bytes written to spill files so far
    int bins() const;

  private:
    std::unique_ptr<KmerCountState> s_;
};

}  // namespace kmerx
