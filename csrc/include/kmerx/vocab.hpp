// K-mer code -> token id lookup for kmerx.Vocab: an open-addressing hash table (linear probing,
// multiplicative hash, power-of-two capacity, load <= 0.5), built once, read concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kmerx {

class VocabTable {
public:
    // codes: n distinct keys of `words` uint64 each (1: k <= 32; 2: [hi, lo] for k > 32); ids[i] is the
    // id of codes[i] and must be < UINT32_MAX. std::invalid_argument on a duplicate code.
    VocabTable(const uint64_t* codes, std::size_t n, int words, const uint32_t* ids);

    // out[i] = id of codes[i] (n keys of words() uint64), or `unknown` when absent. Multi-threaded for
    // big batches; safe to call from several threads at once.
    void lookup(const uint64_t* codes, std::size_t n, uint32_t unknown, uint32_t* out) const;

    int words() const { return words_; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return mask_ + 1; }

private:
    std::size_t slot(const uint64_t* key) const;
    uint32_t find(const uint64_t* key) const;  // kEmpty when absent
    void prefetch(const uint64_t* key) const;

    static constexpr uint32_t kEmpty = UINT32_MAX;
    int words_;
    int shift_;
    std::size_t mask_;
    std::size_t size_;
    std::vector<uint64_t> keys_;  // capacity * words
    std::vector<uint32_t> ids_;   // capacity; kEmpty marks a free slot
};

}  // namespace kmerx
