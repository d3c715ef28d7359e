// Exact k-mer counting (CPU), k <= 64, with a memory budget and spilling to disk.
//
// Pass 1 (add): the k-mer codes of a batch (kmerx/encode.hpp layout: uint64 for k <= 32, [hi, lo] for
// k > 32) are scattered into `bins` bins by their top 16 bits through a monotone table built from a
// sample of the first codes seen, so bins are balanced even for skewed canonical codes and the
// concatenation of the sorted bins is globally sorted (no final merge). Each worker thread owns its own
// chunked bins (no locks). When the bins hold more than the budget, every bin is appended to its own
// raw file in a temporary directory and its memory is released.
// Pass 2 (begin_finish, count_bins): bins are counted in parallel, one at a time per thread: gather
// (file + memory), sort, run-length, min/max filter, straight into the output; then moved left to
// follow the rows already final. Bins are counted in groups so a caller can write finished rows while
// the next group is counted.
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

// Result rows of a counter: codes (capacity * words uint64) and counts (capacity uint32, saturated at
// 2^32 - 1: see big_counts), sorted by code.
struct CountOutput {
    uint64_t* codes = nullptr;
    uint32_t* counts = nullptr;
    std::size_t capacity = 0;
    std::shared_ptr<void> owner;
};

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

    // Pass 2, in steps. begin_finish() ends pass 1 and maps the output; it returns its capacity (rows:
    // the k-mers added, an upper bound of the result). Then each count_bins(n) counts the next n bins
    // (n <= 0: all that are left) in parallel and returns the number of final rows: the output's prefix
    // [0, rows) is sorted, holds the result of every bin counted so far and never changes again, so it
    // can be written out while later bins are counted. std::logic_error when called out of order.
    std::size_t begin_finish();
    std::size_t count_bins(int n);
    int bins_left() const;            // bins not yet counted (all of them before begin_finish())
    std::size_t finished_rows() const;
    // The output maps (valid after begin_finish()); `owner` keeps them alive after the counter is gone.
    CountOutput output() const;
    // Largest count among the kept k-mers of the bins counted so far (0 when none).
    uint64_t max_count_seen() const;
    // Writes the exact counts >= 2^32 - 1 of the final rows into a uint64 copy of their counts.
    void big_counts(uint64_t* counts) const;

    int words() const;
    uint64_t total_kmers() const;   // k-mers added so far
    uint64_t spilled_bytes() const; // bytes written to spill files so far
    int bins() const;

  private:
    std::unique_ptr<KmerCountState> s_;
};

}  // namespace kmerx
