// Embedding tables: the row layout (TableSpec), row encoding in bulk, and BlockTable, the
// block-sparse store with a bounded hot-block cache for tables that are virtual or larger than RAM.
#pragma once

#include "kmerx/cache.hpp"
#include "kmerx/rows.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace kmerx {

// rows x dim values stored as `dtype`, grouped in blocks of block_rows rows (the unit of storage,
// caching and disk I/O). The last block may be partial; its missing rows read as zeros.
struct TableSpec {
    int64_t rows = 0;
    int64_t dim = 0;
    Dtype dtype = Dtype::F32;
    int64_t block_rows = 1;

    int64_t row_bytes() const { return kmerx::row_bytes(dtype, dim); }
    int64_t block_bytes() const { return block_rows * row_bytes(); }
    int64_t blocks() const { return (rows + block_rows - 1) / block_rows; }
};

// Validates and builds a spec; errors name the argument and value. dtype: 0..4 (Dtype).
TableSpec make_table_spec(int64_t rows, int64_t dim, int dtype, int64_t block_rows);

// Encodes n rows of fp32 values (n x dim) into n rows of `dtype`, and back. Multi-threaded.
void encode_rows(const float* x, int64_t n, int64_t dim, Dtype dtype, uint8_t* out);
void decode_rows(const uint8_t* rows, int64_t n, int64_t dim, Dtype dtype, float* out);

// Ids of any width the tokenizers produce (uint32) or users pass (int64).
struct IdView {
    const uint32_t* u32 = nullptr;
    const int64_t* i64 = nullptr;
    int64_t at(int64_t i) const { return u32 ? static_cast<int64_t>(u32[i]) : i64[i]; }
};

// Virtual rows (rows.hpp) of n ids, encoded as `dtype` into out (n x row_bytes). Multi-threaded.
void encode_virtual_rows(const VirtualInit& v, IdView ids, int64_t n, int64_t dim, Dtype dtype, uint8_t* out);

// Counters of a BlockTable's cache, per row lookup: a lookup hits when its block was resident.
struct CacheStats {
    int64_t lookups = 0;     // row lookups (ids) served
    int64_t hits = 0;        // ... whose block was resident
    int64_t loads = 0;       // blocks brought in (each missing block once per batch)
    int64_t evictions = 0;   // resident blocks dropped to make room
    int64_t writebacks = 0;  // evicted (or flushed) written blocks saved to the spill file
    int64_t bypass = 0;      // blocks served from a batch's private buffer because every slot was pinned
    int64_t resident_blocks = 0;
    int64_t capacity_blocks = 0;
    int64_t used_blocks = 0;  // slots that hold (or held) memory: resident bytes = used * block_bytes
    int64_t index_bytes = 0;  // the cache's bookkeeping (per slot, allocated up front)
};

// A table whose content is, block by block: the last written value (resident in the cache, or
// written back to a spill file), else the block of a saved table (the base file, read-only), else
// the virtual initialisation (seed, row). Only the cache's slots hold RAM, bounded by cache_bytes
// and touched lazily, so a 2^32-row table costs memory in proportion to the blocks in use.
//
// Thread-safe: lookups run concurrently (a shared lock while they gather, pins on their blocks);
// loading missing blocks and writes take the lock exclusively.
class BlockTable {
  public:
    // base_path/base_index: a saved table's block file and the block id held by each of its
    // block-sized records (sorted ascending); empty path for none. spill_dir: where the spill file
    // for evicted written blocks is created (unlinked at once, so it never outlives the process).
    BlockTable(TableSpec spec, VirtualInit init, int64_t cache_bytes, std::string spill_dir,
               std::string base_path, std::vector<int64_t> base_index);
    ~BlockTable();
    BlockTable(const BlockTable&) = delete;
    BlockTable& operator=(const BlockTable&) = delete;

    const TableSpec& spec() const { return spec_; }
    const VirtualInit& init() const { return init_; }

    // A lookup's hold on its rows: pins and a shared lock, released on destruction.
    class Lease {
      public:
        ~Lease();
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;

      private:
        friend class BlockTable;
        explicit Lease(BlockTable& t) : table_(t) {}
        BlockTable& table_;
        std::vector<int64_t> slots_;                 // one entry per pin taken
        std::vector<std::unique_ptr<uint8_t[]>> own_;  // bypass blocks
        std::shared_lock<std::shared_mutex> lock_;
    };

    // Points rows[i] at the row of ids[i] for i < n, loading each missing block once (in parallel)
    // and pinning the blocks until the lease ends. Throws std::out_of_range for an id >= rows.
    std::unique_ptr<Lease> resolve(IdView ids, int64_t n, const uint8_t** rows);

    // Stores n rows of fp32 values (n x dim) at ids, encoded; a repeated id keeps its last row.
    void write(IdView ids, int64_t n, const float* values);

    // Current content of `count` blocks into out (count x block_bytes), without caching them.
    void read_blocks(const int64_t* blocks, int64_t count, uint8_t* out);

    // Blocks whose content differs from the initialisation (written, spilled or from the base), ascending.
    std::vector<int64_t> written_blocks();
    // Writes every written block, ascending, to `path` (block_bytes each); returns their ids.
    std::vector<int64_t> save_blocks(const std::string& path);

    CacheStats stats();
    void reset_stats();
    // Writes back written blocks and drops every resident block (the memory stays mapped).
    void clear_cache();

  private:
    void load_block(int64_t block, uint8_t* dst);  // from spill, base or init (caller holds the lock)
    void spill(int64_t block, const uint8_t* src);
    void check_id(int64_t id, int64_t i) const;
    uint8_t* slot_ptr(int64_t slot) const { return slab_ + slot * spec_.block_bytes(); }

    TableSpec spec_;
    VirtualInit init_;
    SlotIndex index_;
    uint8_t* slab_ = nullptr;
    std::size_t slab_bytes_ = 0;
    std::vector<uint8_t> dirty_;  // per slot

    std::string spill_dir_;
    int spill_fd_ = -1;
    std::unordered_map<int64_t, int64_t> spilled_;  // block -> record in the spill file
    int base_fd_ = -1;
    std::vector<int64_t> base_index_;

    std::shared_mutex mu_;
    std::atomic<int64_t> lookups_{0}, hits_{0}, loads_{0}, evictions_{0}, writebacks_{0}, bypass_{0};
};

}  // namespace kmerx
