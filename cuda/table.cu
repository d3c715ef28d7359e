// Device hot-block cache (see table.cuh): host-side CLOCK bookkeeping, device slab, pinned staging.
#include "table.cuh"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "device.cuh"

namespace kmerx::cuda {

namespace {

constexpr std::size_t kStagingHalf = std::size_t(16) << 20;  // bytes per staging half
constexpr int64_t kScratchFloats = int64_t(16) << 20;         // fp32 scratch of one virtual-row launch

// Device memory for one call, ordered on its stream; freed on scope exit.
template <class T>
class StreamBuffer {
   public:
    StreamBuffer(std::size_t n, cudaStream_t s) : s_(s) {
        if (n) KMERX_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p_), n * sizeof(T), s));
    }
    ~StreamBuffer() {
        if (p_) cudaFreeAsync(p_, s_);
    }
    StreamBuffer(const StreamBuffer&) = delete;
    StreamBuffer& operator=(const StreamBuffer&) = delete;
    T* get() const { return p_; }

   private:
    T* p_ = nullptr;
    cudaStream_t s_;
};

// One row: the host's BlockTable::load_block does the same, so device blocks equal host blocks.
__device__ void generate_row(const VirtualInit& init, int64_t row, int64_t table_rows, int64_t dim, Dtype dtype,
                             float* scratch, uint8_t* dst) {
    if (row < 0 || row >= table_rows) {
        const int64_t rb = row_bytes(dtype, dim);
        for (int64_t b = 0; b < rb; ++b) dst[b] = 0;
        return;
    }
    virtual_row(init, static_cast<uint64_t>(row), dim, scratch);
    encode_row(scratch, dim, dtype, dst);
}

// Thread per row, rows[i] -> out + i * row_bytes; scratch holds dim floats per thread of the launch.
__global__ void virtual_rows_kernel(const int64_t* rows, int64_t n, VirtualInit init, int64_t table_rows, int64_t dim,
                                    Dtype dtype, float* scratch, uint8_t* out) {
    const int64_t rb = row_bytes(dtype, dim);
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        generate_row(init, rows[i], table_rows, dim, dtype, scratch + i * dim, out + i * rb);
}

// Thread per row of n blocks: row r of block b is blocks[b] * R + r, written to dsts[b] + r * row_bytes.
__global__ void virtual_blocks_kernel(const int64_t* blocks, uint8_t* const* dsts, int64_t n, int64_t R,
                                      VirtualInit init, int64_t table_rows, int64_t dim, Dtype dtype, float* scratch) {
    const int64_t rb = row_bytes(dtype, dim);
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n * R; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t b = i / R, r = i % R;
        generate_row(init, blocks[b] * R + r, table_rows, dim, dtype, scratch + i * dim, dsts[b] + r * rb);
    }
}

__global__ void row_pointers_kernel(IdView ids, const int64_t* slot_of, int64_t n, uint8_t* slab, int64_t cap,
                                    uint8_t* bypass, int64_t n_bypass, int64_t R, int64_t rb,
                                    const uint8_t** ptrs, unsigned long long* bad) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t id = ids.u32 ? static_cast<int64_t>(ids.u32[i]) : ids.i64[i];
        const int64_t s = slot_of[i];
        if (id < 0 || s < 0 || s >= cap + n_bypass) {
            atomicMin(bad, static_cast<unsigned long long>(i));
            ptrs[i] = nullptr;
            continue;
        }
        uint8_t* block = s < cap ? slab + s * R * rb : bypass + (s - cap) * R * rb;
        ptrs[i] = block + (id % R) * rb;
    }
}

}  // namespace

PinnedBuffer::PinnedBuffer(std::size_t bytes) : n_(bytes) {
    if (bytes) KMERX_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&p_), bytes, cudaHostAllocDefault));
}

PinnedBuffer::~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
}

DeviceCache::DeviceCache(int64_t block_rows, int64_t row_bytes, int64_t cache_bytes)
    : block_rows_(block_rows),
      row_bytes_(row_bytes),
      index_(block_rows > 0 && row_bytes > 0 && cache_bytes >= 0 ? cache_bytes / (block_rows * row_bytes) : 0),
      slab_(static_cast<std::size_t>(index_.slots() * std::max<int64_t>(block_rows * row_bytes, 0))) {
    if (block_rows < 1) throw std::invalid_argument("block_rows must be >= 1, got " + std::to_string(block_rows));
    if (row_bytes < 1) throw std::invalid_argument("row_bytes must be >= 1, got " + std::to_string(row_bytes));
    if (cache_bytes < 0) throw std::invalid_argument("cache_bytes must be >= 0, got " + std::to_string(cache_bytes));
    stale_.assign(static_cast<std::size_t>(index_.slots()), 0);
    for (auto& e : done_) KMERX_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
}

DeviceCache::~DeviceCache() {
    for (auto e : done_)
        if (e) cudaEventDestroy(e);
}

uint8_t* DeviceCache::block_ptr(int64_t slot) const {
    return slot < capacity() ? slab_.get() + slot * block_bytes() : bypass_->get() + (slot - capacity()) * block_bytes();
}

void DeviceCache::plan(const int64_t* blocks, const int64_t* counts, int64_t n, int64_t* slot_out,
                       std::vector<int64_t>& missing) {
    if (planned_) throw std::logic_error("DeviceCache.plan: the previous batch still holds the cache (release it first)");
    missing.clear();
    pinned_.clear();
    int64_t rows = 0, hit_rows = 0, evicted_blocks = 0, nb = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t c = counts ? counts[i] : 1;
        rows += c;
        int64_t slot = index_.find(blocks[i]);
        if (slot >= 0) {
            index_.touch(slot);
            hit_rows += c;
        } else {
            int64_t evicted = -1;
            slot = index_.insert(blocks[i], &evicted);
            if (evicted >= 0) ++evicted_blocks;
            missing.push_back(i);
            if (slot >= 0) stale_[slot] = 1;  // resident in the index, content not there yet
            else slot = capacity() + nb++;
        }
        if (slot < capacity()) {
            index_.pin(slot);  // at once, so a later insert of this batch cannot take it
            pinned_.push_back(slot);
        }
        slot_out[i] = slot;
    }
    planned_ = true;
    try {
        if (nb) bypass_ = std::make_unique<DeviceBuffer<uint8_t>>(static_cast<std::size_t>(nb * block_bytes()));
    } catch (...) {
        release();
        throw;
    }
    n_bypass_ = nb;
    lookups_ += rows;
    hits_ += hit_rows;
    loads_ += static_cast<int64_t>(missing.size());
    evictions_ += evicted_blocks;
    bypass_count_ += nb;
}

void DeviceCache::fill(const int64_t* slots, int64_t n, const uint8_t* host, cudaStream_t stream) {
    if (!planned_) throw std::logic_error("DeviceCache.fill: no planned batch");
    for (int64_t i = 0; i < n; ++i)
        if (slots[i] < 0 || slots[i] >= capacity() + n_bypass_)
            throw std::out_of_range("slots[" + std::to_string(i) + "] = " + std::to_string(slots[i]) +
                                    " is not a slot of this batch (0.." + std::to_string(capacity() + n_bypass_ - 1) + ")");
    if (n == 0) return;
    const auto bb = static_cast<std::size_t>(block_bytes());
    const std::size_t per = std::max<std::size_t>(1, kStagingHalf / bb);  // blocks per staging half
    if (!staging_) staging_ = std::make_unique<PinnedBuffer>(2 * per * bb);
    int half = 0;
    for (int64_t b0 = 0; b0 < n; b0 += int64_t(per), half ^= 1) {
        const int64_t m = std::min<int64_t>(int64_t(per), n - b0);
        uint8_t* stage = staging_->get() + half * per * bb;
        KMERX_CUDA_CHECK(cudaEventSynchronize(done_[half]));  // the copies that last read this half are done
        std::memcpy(stage, host + b0 * bb, m * bb);
        // One copy per run of consecutive slots (fresh slots are handed out in order).
        for (int64_t j = 0; j < m;) {
            int64_t e = j + 1;
            while (e < m && slots[b0 + e] == slots[b0 + e - 1] + 1 && (slots[b0 + e] < capacity()) == (slots[b0 + j] < capacity()))
                ++e;
            KMERX_CUDA_CHECK(cudaMemcpyAsync(block_ptr(slots[b0 + j]), stage + j * bb, (e - j) * bb,
                                             cudaMemcpyHostToDevice, stream));
            j = e;
        }
        KMERX_CUDA_CHECK(cudaEventRecord(done_[half], stream));
    }
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int64_t i = 0; i < n; ++i)
        if (slots[i] < capacity()) stale_[slots[i]] = 0;
}

void DeviceCache::fill_virtual(const int64_t* slots, const int64_t* blocks, int64_t n, const VirtualInit& init,
                               int64_t table_rows, int64_t dim, Dtype dtype, cudaStream_t stream) {
    if (!planned_) throw std::logic_error("DeviceCache.fill_virtual: no planned batch");
    if (kmerx::row_bytes(dtype, dim) != row_bytes_)
        throw std::invalid_argument("dim and dtype give rows of " + std::to_string(kmerx::row_bytes(dtype, dim)) +
                                    " bytes, the cache holds rows of " + std::to_string(row_bytes_));
    for (int64_t i = 0; i < n; ++i)
        if (slots[i] < 0 || slots[i] >= capacity() + n_bypass_)
            throw std::out_of_range("slots[" + std::to_string(i) + "] = " + std::to_string(slots[i]) +
                                    " is not a slot of this batch");
    if (n == 0) return;
    const int64_t R = block_rows_;
    const int64_t per = std::max<int64_t>(1, kScratchFloats / std::max<int64_t>(1, dim * R));  // blocks per launch
    std::vector<uint8_t*> dsts(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) dsts[i] = block_ptr(slots[i]);
    StreamBuffer<int64_t> d_blocks(static_cast<std::size_t>(n), stream);
    StreamBuffer<uint8_t*> d_dsts(static_cast<std::size_t>(n), stream);
    StreamBuffer<float> scratch(static_cast<std::size_t>(std::min(per, n) * R * dim), stream);
    KMERX_CUDA_CHECK(cudaMemcpyAsync(d_blocks.get(), blocks, n * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
    KMERX_CUDA_CHECK(cudaMemcpyAsync(d_dsts.get(), dsts.data(), n * sizeof(uint8_t*), cudaMemcpyHostToDevice, stream));
    for (int64_t b0 = 0; b0 < n; b0 += per) {
        const int64_t m = std::min(per, n - b0);
        virtual_blocks_kernel<<<grid_for(m * R), kThreads, 0, stream>>>(d_blocks.get() + b0, d_dsts.get() + b0, m, R, init,
                                                                       table_rows, dim, dtype, scratch.get());
        KMERX_CUDA_CHECK_LAUNCH();
    }
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int64_t i = 0; i < n; ++i)
        if (slots[i] < capacity()) stale_[slots[i]] = 0;
}

void DeviceCache::row_pointers(IdView ids, const int64_t* slot_of, int64_t n, const uint8_t** ptrs,
                               cudaStream_t stream) const {
    if (!planned_) throw std::logic_error("DeviceCache.row_pointers: no planned batch");
    if (n == 0) return;
    StreamBuffer<unsigned long long> bad(1, stream);
    KMERX_CUDA_CHECK(cudaMemsetAsync(bad.get(), 0xff, sizeof(unsigned long long), stream));
    row_pointers_kernel<<<grid_for(n), kThreads, 0, stream>>>(ids, slot_of, n, slab_.get(), capacity(),
                                                              bypass_ ? bypass_->get() : nullptr, n_bypass_,
                                                              block_rows_, row_bytes_, ptrs, bad.get());
    KMERX_CUDA_CHECK_LAUNCH();
    unsigned long long first = 0;
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&first, bad.get(), sizeof(first), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (first != ~0ull)
        throw std::out_of_range("index " + std::to_string(first) +
                                ": negative id or a slot that is not one of this batch's");
}

void DeviceCache::release() {
    if (!planned_) return;
    for (int64_t s : pinned_) index_.unpin(s);
    pinned_.clear();
    // A batch that failed before filling leaves slots the index calls resident but whose bytes
    // never arrived: forget everything rather than serve them later.
    if (std::find(stale_.begin(), stale_.end(), uint8_t(1)) != stale_.end()) {
        index_.clear();
        std::fill(stale_.begin(), stale_.end(), uint8_t(0));
    }
    bypass_.reset();  // cudaFree waits for the device, so no kernel still reads it
    n_bypass_ = 0;
    planned_ = false;
}

CacheStats DeviceCache::stats() const {
    CacheStats s;
    s.lookups = lookups_;
    s.hits = hits_;
    s.loads = loads_;
    s.evictions = evictions_;
    s.bypass = bypass_count_;
    s.resident_blocks = index_.resident();
    s.capacity_blocks = index_.slots();
    s.used_blocks = index_.used();
    return s;
}

void DeviceCache::reset_stats() { lookups_ = hits_ = loads_ = evictions_ = bypass_count_ = 0; }

void DeviceCache::clear() {
    if (planned_) throw std::logic_error("DeviceCache.clear: a batch holds the cache (release it first)");
    index_.clear();
}

void virtual_rows(const int64_t* rows, int64_t n, const VirtualInit& init, int64_t table_rows, int64_t dim,
                  Dtype dtype, uint8_t* out, cudaStream_t stream) {
    if (n <= 0) return;
    const int64_t per = std::max<int64_t>(1, kScratchFloats / std::max<int64_t>(1, dim));
    StreamBuffer<float> scratch(static_cast<std::size_t>(std::min(per, n) * dim), stream);
    const int64_t rb = row_bytes(dtype, dim);
    for (int64_t r0 = 0; r0 < n; r0 += per) {
        const int64_t m = std::min(per, n - r0);
        virtual_rows_kernel<<<grid_for(m), kThreads, 0, stream>>>(rows + r0, m, init, table_rows, dim, dtype,
                                                                 scratch.get(), out + r0 * rb);
        KMERX_CUDA_CHECK_LAUNCH();
    }
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace kmerx::cuda
