// Sequence statistics over a batch (the kernel behind `kmerx stats`): base composition, lengths and
// the histogram of quality bytes, all mergeable across batches by addition / min / max.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace kmerx::stats {

struct Counts {
    int64_t records = 0;
    int64_t bases = 0;
    int64_t min_len = 0;  // 0 when records == 0
    int64_t max_len = 0;
    // Case-insensitive: a/A ... n/N; `other` is every remaining byte (IUPAC codes, U, gaps ...).
    int64_t a = 0, c = 0, g = 0, t = 0, n = 0, other = 0;
    std::array<int64_t, 256> qual_hist{};  // count of each quality byte; all zero without qual
};

// seq / seq_offsets: read i is seq[seq_offsets[i]:seq_offsets[i+1]] (n + 1 offsets).
// qual / qual_offsets: the same for qualities, or null (FASTA). Runs on the pool.
Counts count(const uint8_t* seq, const int64_t* seq_offsets, std::size_t n, const uint8_t* qual,
             const int64_t* qual_offsets);

}  // namespace kmerx::stats
