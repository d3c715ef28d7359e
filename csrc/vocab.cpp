// kmerx.Vocab's lookup table (kmerx/vocab.hpp).
#include "kmerx/vocab.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kmerx/common.hpp"

namespace kmerx {

namespace {
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;  // 2^64 / phi: Fibonacci hashing
constexpr uint64_t kMix2 = 0xC2B2AE3D27D4EB4FULL;
}  // namespace

VocabTable::VocabTable(const uint64_t* codes, std::size_t n, int words, const uint32_t* ids)
    : words_(words), size_(n) {
    if (words != 1 && words != 2) throw std::invalid_argument("words must be 1 or 2, got " + std::to_string(words));
    int bits = 4;
    while ((std::size_t(1) << bits) < 2 * n) ++bits;  // load <= 0.5
    shift_ = 64 - bits;
    mask_ = (std::size_t(1) << bits) - 1;
    keys_.assign((mask_ + 1) * words, 0);
    ids_.assign(mask_ + 1, kEmpty);
    for (std::size_t i = 0; i < n; ++i) {
        if (ids[i] == kEmpty) throw std::invalid_argument("ids must be < 2^32 - 1");
        const uint64_t* key = codes + i * words;
        std::size_t s = slot(key);
        while (ids_[s] != kEmpty) {
            bool same = true;
            for (int w = 0; w < words; ++w) same &= keys_[s * words + w] == key[w];
            if (same) throw std::invalid_argument("codes must be distinct, codes[" + std::to_string(i) + "] repeats");
            s = (s + 1) & mask_;
        }
        for (int w = 0; w < words; ++w) keys_[s * words + w] = key[w];
        ids_[s] = ids[i];
    }
}

inline std::size_t VocabTable::slot(const uint64_t* key) const {
    const uint64_t x = words_ == 1 ? key[0] : key[0] * kMix2 + key[1];
    return static_cast<std::size_t>((x * kGolden) >> shift_);
}

inline void VocabTable::prefetch(const uint64_t* key) const {
    const std::size_t s = slot(key);
    __builtin_prefetch(&ids_[s]);
    __builtin_prefetch(&keys_[s * words_]);
}

inline uint32_t VocabTable::find(const uint64_t* key) const {
    for (std::size_t s = slot(key);; s = (s + 1) & mask_) {
        const uint32_t id = ids_[s];
        if (id == kEmpty) return kEmpty;
        if (keys_[s * words_] == key[0] && (words_ == 1 || keys_[s * words_ + 1] == key[1])) return id;
    }
}

void VocabTable::lookup(const uint64_t* codes, std::size_t n, uint32_t unknown, uint32_t* out) const {
    parallel_for(
        n,
        [&](std::size_t lo, std::size_t hi) {
            // Slots of the next kAhead keys are prefetched while the current ones probe: a table
            // bigger than the caches costs one memory latency per key otherwise.
            constexpr std::size_t kAhead = 16;
            for (std::size_t i = lo; i < std::min(hi, lo + kAhead); ++i) prefetch(codes + i * words_);
            for (std::size_t i = lo; i < hi; ++i) {
                if (i + kAhead < hi) prefetch(codes + (i + kAhead) * words_);
                const uint32_t id = find(codes + i * words_);
                out[i] = id == kEmpty ? unknown : id;
            }
        },
        1 << 16);
}

}  // namespace kmerx
