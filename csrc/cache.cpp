// SlotIndex: CLOCK over a fixed set of slots, with an open-addressing map from block to slot.
#include "kmerx/cache.hpp"

#include "kmerx/rows.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace kmerx {

SlotIndex::SlotIndex(int64_t slots) : slots_(slots) {
    if (slots < 0) throw std::invalid_argument("cache slots must be >= 0, got " + std::to_string(slots));
    std::size_t cap = 16;
    while (cap < static_cast<std::size_t>(slots) * 2) cap <<= 1;
    keys_.assign(cap, 0);
    vals_.assign(cap, -1);
    mask_ = cap - 1;
    block_.assign(static_cast<std::size_t>(slots), -1);
    ref_.reset(new std::atomic<uint8_t>[static_cast<std::size_t>(slots)]);
    pins_.reset(new std::atomic<int32_t>[static_cast<std::size_t>(slots)]);
    for (int64_t s = 0; s < slots; ++s) {
        ref_[s].store(0, std::memory_order_relaxed);
        pins_[s].store(0, std::memory_order_relaxed);
    }
}

std::size_t SlotIndex::home(int64_t block) const { return mix64(static_cast<uint64_t>(block)) & mask_; }

int64_t SlotIndex::find(int64_t block) const {
    const int64_t key = block + 1;
    for (std::size_t i = home(block);; i = (i + 1) & mask_) {
        if (keys_[i] == key) return vals_[i];
        if (keys_[i] == 0) return -1;
    }
}

void SlotIndex::erase_key(int64_t block) {
    std::size_t i = home(block);
    while (keys_[i] != block + 1) i = (i + 1) & mask_;
    // Backward shift: pull later entries of the probe run into the hole so lookups never stop early.
    for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
        if (keys_[j] == 0) break;
        const std::size_t h = home(keys_[j] - 1);
        // Entry j may move to i when its home is not in the cyclic range (i, j].
        const bool in_range = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!in_range) {
            keys_[i] = keys_[j];
            vals_[i] = vals_[j];
            i = j;
        }
    }
    keys_[i] = 0;
    vals_[i] = -1;
}

int64_t SlotIndex::insert(int64_t block, int64_t* evicted) {
    *evicted = -1;
    int64_t slot = -1;
    if (used_ < slots_) {
        slot = used_++;
    } else {
        if (pinned_.load(std::memory_order_relaxed) >= slots_) return -1;
        // Two full sweeps clear every reference bit, so a third finds a victim unless all are pinned.
        for (int64_t step = 0; step < 3 * slots_ && slot < 0; ++step) {
            const int64_t s = hand_;
            hand_ = hand_ + 1 == slots_ ? 0 : hand_ + 1;
            if (pinned(s)) continue;
            if (block_[s] >= 0 && ref_[s].load(std::memory_order_relaxed)) {
                ref_[s].store(0, std::memory_order_relaxed);
                continue;
            }
            slot = s;
        }
        if (slot < 0) return -1;
        if (block_[slot] >= 0) {
            *evicted = block_[slot];
            erase_key(block_[slot]);
            --resident_;
        }
    }
    std::size_t i = home(block);
    while (keys_[i] != 0) i = (i + 1) & mask_;
    keys_[i] = block + 1;
    vals_[i] = slot;
    block_[slot] = block;
    ref_[slot].store(0, std::memory_order_relaxed);
    ++resident_;
    return slot;
}

void SlotIndex::clear() {
    std::fill(keys_.begin(), keys_.end(), 0);
    std::fill(vals_.begin(), vals_.end(), -1);
    std::fill(block_.begin(), block_.end(), -1);
    for (int64_t s = 0; s < slots_; ++s) ref_[s].store(0, std::memory_order_relaxed);
    // Slots stay "used": clear() keeps the memory, and free slots are found by the sweep.
    resident_ = 0;
}

}  // namespace kmerx
