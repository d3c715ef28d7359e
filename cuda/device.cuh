// Device-side helpers shared by the kernels (included by .cu files only).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace kmerx::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `items` (at least one, at most 2^16).
inline unsigned grid_for(int64_t items) {
    const int64_t blocks = (items + kThreads - 1) / kThreads;
    return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 1 << 16)));
}

// A0 C1 G2 T3 in either case, 4 for anything else (kmerx::kBaseCode on the host).
__device__ __forceinline__ uint32_t base_code(uint8_t b) {
    switch (b | 0x20) {
        case 'a': return 0;
        case 'c': return 1;
        case 'g': return 2;
        case 't': return 3;
        default: return 4;
    }
}

// Read holding base p: the last r with offsets[r] <= p (empty reads are skipped over).
__device__ __forceinline__ std::size_t read_of(const int64_t* offsets, std::size_t n, int64_t p) {
    std::size_t lo = 0, hi = n;  // offsets[lo] <= p < offsets[hi]
    while (hi - lo > 1) {
        const std::size_t mid = (lo + hi) / 2;
        if (offsets[mid] <= p) lo = mid;
        else hi = mid;
    }
    return lo;
}

}  // namespace kmerx::cuda
