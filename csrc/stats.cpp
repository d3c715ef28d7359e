#include "kmerx/stats.hpp"

#include <algorithm>
#include <limits>
#include <mutex>
#include <vector>

#include "kmerx/common.hpp"

namespace kmerx::stats {

namespace {

// Four interleaved tables break the store-to-load dependency when neighbouring bytes repeat
// (homopolymers, binned qualities), which otherwise serialises a single-table histogram.
void histogram(const uint8_t* p, int64_t len, std::array<int64_t, 256>& out) {
    std::vector<uint32_t> h(4 * 256, 0);
    constexpr int64_t kFlush = int64_t{1} << 30;  // keep the 32-bit counters from overflowing
    while (len > 0) {
        const int64_t m = std::min(len, kFlush);
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
            ++h[p[i]];
            ++h[256 + p[i + 1]];
            ++h[512 + p[i + 2]];
            ++h[768 + p[i + 3]];
        }
        for (; i < m; ++i) ++h[p[i]];
        for (int b = 0; b < 256; ++b) {
            out[b] += int64_t{h[b]} + h[256 + b] + h[512 + b] + h[768 + b];
            h[b] = h[256 + b] = h[512 + b] = h[768 + b] = 0;
        }
        p += m;
        len -= m;
    }
}

}  // namespace

Counts count(const uint8_t* seq, const int64_t* seq_offsets, std::size_t n, const uint8_t* qual,
             const int64_t* qual_offsets) {
    Counts total;
    total.records = static_cast<int64_t>(n);
    if (n == 0) return total;
    total.min_len = std::numeric_limits<int64_t>::max();
    std::array<int64_t, 256> seq_hist{};
    std::mutex mu;
    parallel_for_weighted(seq_offsets, n, [&](std::size_t b, std::size_t e) {
        std::array<int64_t, 256> sh{}, qh{};
        int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
        for (std::size_t i = b; i < e; ++i) {
            const int64_t len = seq_offsets[i + 1] - seq_offsets[i];
            lo = std::min(lo, len);
            hi = std::max(hi, len);
        }
        // Reads of a range are contiguous, so each range is one block of bytes.
        histogram(seq + seq_offsets[b], seq_offsets[e] - seq_offsets[b], sh);
        if (qual) histogram(qual + qual_offsets[b], qual_offsets[e] - qual_offsets[b], qh);
        std::lock_guard<std::mutex> lock(mu);
        total.min_len = std::min(total.min_len, lo);
        total.max_len = std::max(total.max_len, hi);
        for (int x = 0; x < 256; ++x) {
            seq_hist[x] += sh[x];
            total.qual_hist[x] += qh[x];
        }
    });
    total.bases = seq_offsets[n] - seq_offsets[0];
    auto both = [&](char up) { return seq_hist[static_cast<uint8_t>(up)] + seq_hist[static_cast<uint8_t>(up + 32)]; };
    total.a = both('A');
    total.c = both('C');
    total.g = both('G');
    total.t = both('T');
    total.n = both('N');
    total.other = total.bases - total.a - total.c - total.g - total.t - total.n;
    return total;
}

}  // namespace kmerx::stats
