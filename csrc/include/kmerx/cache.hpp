// Slot bookkeeping of a hot-block cache: which block each of a fixed number of slots holds, CLOCK
// (second chance) eviction, pins. The memory of the slots belongs to the owner (host RAM for
// BlockTable, device memory for the CUDA cache), so one policy serves both.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace kmerx {

class SlotIndex {
  public:
    explicit SlotIndex(int64_t slots);

    int64_t slots() const { return slots_; }
    int64_t used() const { return used_; }  // slots that ever held a block (resident memory grows with it)
    int64_t resident() const { return resident_; }
    // Bytes of this bookkeeping itself (allocated up front for every slot).
    int64_t overhead_bytes() const {
        return static_cast<int64_t>(keys_.size()) * 16 + slots_ * static_cast<int64_t>(sizeof(int64_t) + 1 + 4);
    }

    // Slot holding `block`, or -1. Safe from many threads while nobody inserts or evicts.
    int64_t find(int64_t block) const;

    // Gives `block` (not resident) a slot: a never-used one while any is left, else the CLOCK victim
    // among unpinned slots. Returns -1 at once when every slot is pinned (or there are none). *evicted is the
    // block the slot held before, or -1. The new slot is unreferenced and unpinned.
    int64_t insert(int64_t block, int64_t* evicted);

    // Drops every block (slots become free again but stay counted in used()).
    void clear();

    int64_t block_at(int64_t slot) const { return block_[slot]; }
    void touch(int64_t slot) { ref_[slot].store(1, std::memory_order_relaxed); }
    // Pins are atomic: lookups pin and unpin concurrently under a shared lock.
    // pinned_ counts slots with any pin, so insert() gives up at once when none is free.
    void pin(int64_t slot) {
        if (pins_[slot].fetch_add(1, std::memory_order_relaxed) == 0) pinned_.fetch_add(1, std::memory_order_relaxed);
    }
    void unpin(int64_t slot) {
        if (pins_[slot].fetch_sub(1, std::memory_order_release) == 1) pinned_.fetch_sub(1, std::memory_order_relaxed);
    }
    bool pinned(int64_t slot) const { return pins_[slot].load(std::memory_order_acquire) != 0; }

  private:
    void erase_key(int64_t block);
    std::size_t home(int64_t block) const;

    int64_t slots_;
    int64_t used_ = 0;
    int64_t resident_ = 0;
    int64_t hand_ = 0;
    // Open addressing, linear probing, backward-shift deletion: key block + 1 (0 = empty) -> slot.
    std::vector<int64_t> keys_;
    std::vector<int64_t> vals_;
    std::size_t mask_ = 0;
    std::vector<int64_t> block_;  // per slot: the block held, or -1
    std::unique_ptr<std::atomic<uint8_t>[]> ref_;
    std::unique_ptr<std::atomic<int32_t>[]> pins_;
    std::atomic<int64_t> pinned_{0};
};

}  // namespace kmerx
