// Device-resident hot-block cache: a slab of `capacity` blocks in device memory, kept by the same
// CLOCK bookkeeping as the host BlockTable (kmerx::SlotIndex, on the host), filled from host bytes
// through pinned staging memory or generated on the device for virtual rows.
//
// A batch: plan(unique blocks) pins a slot per block and names the blocks to fill; fill /
// fill_virtual bring them in; row_pointers resolves each id to its device row; the lookup reads
// them; release() unpins. Blocks that find every slot pinned go to a per-batch bypass buffer (slot
// numbers >= capacity) and are counted as bypass. One batch at a time: plan before release throws.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common.cuh"
#include "kmerx/cache.hpp"
#include "kmerx/rows.hpp"
#include "kmerx/table.hpp"

namespace kmerx::cuda {

// Owns pinned (page-locked) host memory; transfers from it run at full bus speed and asynchronously.
class PinnedBuffer {
   public:
    explicit PinnedBuffer(std::size_t bytes);
    ~PinnedBuffer();
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    uint8_t* get() const { return p_; }
    std::size_t size() const { return n_; }

   private:
    uint8_t* p_ = nullptr;
    std::size_t n_;
};

class DeviceCache {
   public:
    // Slots: cache_bytes / (block_rows * row_bytes), allocated on the current device at once.
    DeviceCache(int64_t block_rows, int64_t row_bytes, int64_t cache_bytes);
    ~DeviceCache();
    DeviceCache(const DeviceCache&) = delete;
    DeviceCache& operator=(const DeviceCache&) = delete;

    int64_t block_rows() const { return block_rows_; }
    int64_t row_bytes() const { return row_bytes_; }
    int64_t block_bytes() const { return block_rows_ * row_bytes_; }
    int64_t capacity() const { return index_.slots(); }
    bool planned() const { return planned_; }

    // For n distinct blocks: slot_out[i] is where block i lives for this batch (pinned until
    // release). missing receives the indices i whose content must be filled (not resident before).
    // counts[i] (optional): the batch's rows in block i, for the per-row hit counters (else 1).
    void plan(const int64_t* blocks, const int64_t* counts, int64_t n, int64_t* slot_out, std::vector<int64_t>& missing);

    // Copies n blocks (host, n x block_bytes) into the planned slots through pinned staging
    // memory, two halves in flight; returns once the copies are complete.
    void fill(const int64_t* slots, int64_t n, const uint8_t* host, cudaStream_t stream);

    // Generates n blocks of virtual rows (kmerx::virtual_row, encoded as `dtype`) into their slots
    // on the device; rows >= table_rows are zeros, as on the host. Synchronises the stream.
    void fill_virtual(const int64_t* slots, const int64_t* blocks, int64_t n, const VirtualInit& init,
                      int64_t table_rows, int64_t dim, Dtype dtype, cudaStream_t stream);

    // ptrs[i] = the device row of ids[i] (device arrays), whose block's slot is slot_of[i].
    void row_pointers(IdView ids, const int64_t* slot_of, int64_t n, const uint8_t** ptrs, cudaStream_t stream) const;

    // Unpins the slots of the last plan and frees its bypass buffer. No-op without a plan.
    void release();

    CacheStats stats() const;
    void reset_stats();
    // Drops every resident block (the slab stays allocated). Throws while a batch holds the cache.
    void clear();

   private:
    uint8_t* block_ptr(int64_t slot) const;

    int64_t block_rows_, row_bytes_;
    SlotIndex index_;
    DeviceBuffer<uint8_t> slab_;
    std::unique_ptr<DeviceBuffer<uint8_t>> bypass_;
    int64_t n_bypass_ = 0;
    std::unique_ptr<PinnedBuffer> staging_;
    cudaEvent_t done_[2] = {nullptr, nullptr};  // last copies out of each staging half
    bool planned_ = false;
    std::vector<int64_t> pinned_;  // slots the current plan pinned
    std::vector<uint8_t> stale_;   // per slot: planned but not filled yet
    int64_t lookups_ = 0, hits_ = 0, loads_ = 0, evictions_ = 0, bypass_count_ = 0;
};

// Virtual rows on the device: out row i (row_bytes(dtype, dim) bytes) = kmerx::virtual_row(init,
// rows[i]) encoded by kmerx::encode_row, zeros for rows[i] outside 0..table_rows-1. Device pointers.
void virtual_rows(const int64_t* rows, int64_t n, const VirtualInit& init, int64_t table_rows, int64_t dim,
                  Dtype dtype, uint8_t* out, cudaStream_t stream);

}  // namespace kmerx::cuda
