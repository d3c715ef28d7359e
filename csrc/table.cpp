// Row encoding in bulk and BlockTable: a block-sparse table behind a CLOCK hot-block cache.
#include "kmerx/table.hpp"

#include "kmerx/common.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kmerx {

TableSpec make_table_spec(int64_t rows, int64_t dim, int dtype, int64_t block_rows) {
    if (rows < 0) throw std::invalid_argument("rows must be >= 0, got " + std::to_string(rows));
    if (dim < 1 || dim > (1 << 20)) throw std::invalid_argument("dim must be in 1..1048576, got " + std::to_string(dim));
    if (dtype < 0 || dtype > 4) throw std::invalid_argument("dtype code must be in 0..4, got " + std::to_string(dtype));
    if (block_rows < 1 || block_rows > (1 << 20))
        throw std::invalid_argument("block_rows must be in 1..1048576, got " + std::to_string(block_rows));
    TableSpec s{rows, dim, static_cast<Dtype>(dtype), block_rows};
    if (s.block_bytes() > (int64_t(1) << 31))
        throw std::invalid_argument("block_rows * row bytes must be <= 2 GiB, got " + std::to_string(s.block_bytes()));
    return s;
}

void encode_rows(const float* x, int64_t n, int64_t dim, Dtype dtype, uint8_t* out) {
    const int64_t rb = row_bytes(dtype, dim);
    parallel_for(static_cast<std::size_t>(n), [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) encode_row(x + i * dim, dim, dtype, out + i * rb);
    }, 256);
}

void decode_rows(const uint8_t* rows, int64_t n, int64_t dim, Dtype dtype, float* out) {
    const int64_t rb = row_bytes(dtype, dim);
    parallel_for(static_cast<std::size_t>(n), [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i)
            for (int64_t j = 0; j < dim; ++j) out[i * dim + j] = decode_value(rows + i * rb, dim, dtype, j);
    }, 256);
}

void encode_virtual_rows(const VirtualInit& v, IdView ids, int64_t n, int64_t dim, Dtype dtype, uint8_t* out) {
    const int64_t rb = row_bytes(dtype, dim);
    parallel_for(static_cast<std::size_t>(n), [&](std::size_t b, std::size_t e) {
        std::vector<float> x(static_cast<std::size_t>(dim));
        for (std::size_t i = b; i < e; ++i) {
            virtual_row(v, static_cast<uint64_t>(ids.at(static_cast<int64_t>(i))), dim, x.data());
            encode_row(x.data(), dim, dtype, out + i * rb);
        }
    }, 64);
}

namespace {

[[noreturn]] void io_error(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

void pread_all(int fd, uint8_t* dst, int64_t bytes, int64_t at, const char* what) {
    while (bytes > 0) {
        const ssize_t got = ::pread(fd, dst, static_cast<std::size_t>(bytes), at);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) io_error(std::string("reading ") + what + (got == 0 ? " (file too short)" : ""));
        dst += got;
        bytes -= got;
        at += got;
    }
}

void pwrite_all(int fd, const uint8_t* src, int64_t bytes, int64_t at, const char* what) {
    while (bytes > 0) {
        const ssize_t put = ::pwrite(fd, src, static_cast<std::size_t>(bytes), at);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) io_error(std::string("writing ") + what);
        src += put;
        bytes -= put;
        at += put;
    }
}

}  // namespace

BlockTable::BlockTable(TableSpec spec, VirtualInit init, int64_t cache_bytes, std::string spill_dir,
                       std::string base_path, std::vector<int64_t> base_index)
    : spec_(spec),
      init_(init),
      index_(cache_bytes < 0 ? throw std::invalid_argument("cache_bytes must be >= 0, got " + std::to_string(cache_bytes))
                             : cache_bytes / spec.block_bytes()),
      spill_dir_(std::move(spill_dir)),
      base_index_(std::move(base_index)) {
    const int64_t slots = index_.slots();
    dirty_.assign(static_cast<std::size_t>(slots), 0);
    slab_bytes_ = static_cast<std::size_t>(slots * spec_.block_bytes());
    if (slab_bytes_) {
        // Reserved, not committed: pages become resident as slots are first used.
        void* p = ::mmap(nullptr, slab_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) io_error("reserving " + std::to_string(slab_bytes_) + " bytes for the block cache");
        slab_ = static_cast<uint8_t*>(p);
    }
    if (!base_path.empty()) {
        for (std::size_t i = 1; i < base_index_.size(); ++i)
            if (base_index_[i] <= base_index_[i - 1])
                throw std::invalid_argument("the block index of " + base_path + " must be strictly ascending");
        if (!base_index_.empty() && (base_index_.front() < 0 || base_index_.back() >= spec_.blocks()))
            throw std::invalid_argument("the block index of " + base_path + " names blocks outside 0.." +
                                        std::to_string(spec_.blocks() - 1));
        base_fd_ = ::open(base_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (base_fd_ < 0) io_error("opening " + base_path);
        const off_t size = ::lseek(base_fd_, 0, SEEK_END);
        const int64_t want = static_cast<int64_t>(base_index_.size()) * spec_.block_bytes();
        if (size != want) {
            ::close(base_fd_);
            throw std::invalid_argument(base_path + " holds " + std::to_string(size) + " bytes, its index needs " +
                                        std::to_string(want));
        }
    } else if (!base_index_.empty()) {
        throw std::invalid_argument("a block index was given without a block file");
    }
}

BlockTable::~BlockTable() {
    if (slab_) ::munmap(slab_, slab_bytes_);
    if (spill_fd_ >= 0) ::close(spill_fd_);
    if (base_fd_ >= 0) ::close(base_fd_);
}

BlockTable::Lease::~Lease() {
    for (int64_t s : slots_) table_.index_.unpin(s);
}

void BlockTable::check_id(int64_t id, int64_t i) const {
    if (id < 0 || id >= spec_.rows)
        throw std::out_of_range("id " + std::to_string(id) + " at index " + std::to_string(i) +
                                " is outside the table's rows 0.." + std::to_string(spec_.rows - 1));
}

void BlockTable::load_block(int64_t block, uint8_t* dst) {
    const int64_t bb = spec_.block_bytes();
    if (auto it = spilled_.find(block); it != spilled_.end()) {
        pread_all(spill_fd_, dst, bb, it->second * bb, "the spill file");
        return;
    }
    if (base_fd_ >= 0) {
        auto it = std::lower_bound(base_index_.begin(), base_index_.end(), block);
        if (it != base_index_.end() && *it == block) {
            pread_all(base_fd_, dst, bb, (it - base_index_.begin()) * bb, "the table's block file");
            return;
        }
    }
    const int64_t rb = spec_.row_bytes();
    std::vector<float> x(static_cast<std::size_t>(spec_.dim));
    for (int64_t r = 0; r < spec_.block_rows; ++r) {
        const int64_t row = block * spec_.block_rows + r;
        if (row < spec_.rows) {
            virtual_row(init_, static_cast<uint64_t>(row), spec_.dim, x.data());
            encode_row(x.data(), spec_.dim, spec_.dtype, dst + r * rb);
        } else {
            std::memset(dst + r * rb, 0, static_cast<std::size_t>(rb));
        }
    }
}

void BlockTable::spill(int64_t block, const uint8_t* src) {
    if (spill_fd_ < 0) {
        std::string tmpl = (spill_dir_.empty() ? std::string("/tmp") : spill_dir_) + "/kmerx-spill-XXXXXX";
        spill_fd_ = ::mkstemp(tmpl.data());
        if (spill_fd_ < 0) io_error("creating a spill file in " + spill_dir_);
        ::unlink(tmpl.c_str());  // lives as long as the descriptor
    }
    auto [it, fresh] = spilled_.try_emplace(block, static_cast<int64_t>(spilled_.size()));
    (void)fresh;
    const int64_t bb = spec_.block_bytes();
    pwrite_all(spill_fd_, src, bb, it->second * bb, "the spill file");
    writebacks_.fetch_add(1, std::memory_order_relaxed);
}

std::unique_ptr<BlockTable::Lease> BlockTable::resolve(IdView ids, int64_t n, const uint8_t** rows) {
    std::unique_ptr<Lease> lease(new Lease(*this));
    const int64_t R = spec_.block_rows, rb = spec_.row_bytes(), bb = spec_.block_bytes();
    for (int64_t i = 0; i < n; ++i) check_id(ids.at(i), i);
    lookups_.fetch_add(n, std::memory_order_relaxed);

    // Pass 1, shared: resident blocks, in parallel. Each hit pins its slot, so nothing we found can be
    // evicted before the gather, even while pass 2 runs exclusively.
    std::atomic<int64_t> hits{0};
    std::vector<std::vector<int64_t>> pinned;
    std::mutex pinned_mu;
    {
        std::shared_lock<std::shared_mutex> shared(mu_);
        parallel_for(static_cast<std::size_t>(n), [&](std::size_t b, std::size_t e) {
            std::vector<int64_t> mine;
            int64_t h = 0;
            for (std::size_t i = b; i < e; ++i) {
                const int64_t id = ids.at(static_cast<int64_t>(i));
                const int64_t slot = index_.find(id / R);
                if (slot < 0) {
                    rows[i] = nullptr;
                    continue;
                }
                index_.pin(slot);
                index_.touch(slot);
                mine.push_back(slot);
                rows[i] = slot_ptr(slot) + (id % R) * rb;
                ++h;
            }
            hits.fetch_add(h, std::memory_order_relaxed);
            std::lock_guard<std::mutex> g(pinned_mu);
            pinned.push_back(std::move(mine));
        }, 4096);
    }
    for (auto& v : pinned) lease->slots_.insert(lease->slots_.end(), v.begin(), v.end());
    hits_.fetch_add(hits.load(), std::memory_order_relaxed);

    // Pass 2, exclusive: each missing block once, loaded in parallel into its slot (or a private
    // buffer when every slot is pinned).
    if (hits.load() < n) {
        std::unique_lock<std::shared_mutex> excl(mu_);
        std::vector<int64_t> missing;
        for (int64_t i = 0; i < n; ++i)
            if (!rows[i]) missing.push_back(ids.at(i) / R);
        std::sort(missing.begin(), missing.end());
        missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
        std::vector<uint8_t*> dst(missing.size());
        std::vector<int64_t> to_load;  // positions in `missing` whose content must be loaded
        bool full = false;  // every slot pinned: the rest of the batch bypasses the cache
        for (std::size_t m = 0; m < missing.size(); ++m) {
            int64_t slot = index_.find(missing[m]);  // another lookup may have loaded it meanwhile
            if (slot < 0) {
                int64_t evicted = -1;
                slot = full ? -1 : index_.insert(missing[m], &evicted);
                full = slot < 0;
                if (evicted >= 0) {
                    evictions_.fetch_add(1, std::memory_order_relaxed);
                    if (dirty_[slot]) spill(evicted, slot_ptr(slot));
                }
                if (slot >= 0) dirty_[slot] = 0;
                to_load.push_back(static_cast<int64_t>(m));
            }
            if (slot >= 0) {
                index_.pin(slot);  // at once: a later insert of this pass must not take the slot back
                lease->slots_.push_back(slot);
                dst[m] = slot_ptr(slot);
            } else {
                lease->own_.emplace_back(new uint8_t[static_cast<std::size_t>(bb)]);
                dst[m] = lease->own_.back().get();
                bypass_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        loads_.fetch_add(static_cast<int64_t>(to_load.size()), std::memory_order_relaxed);
        parallel_for(to_load.size(), [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) load_block(missing[to_load[i]], dst[to_load[i]]);
        }, 16);
        for (int64_t i = 0; i < n; ++i) {
            if (rows[i]) continue;
            const int64_t id = ids.at(i);
            const auto m = std::lower_bound(missing.begin(), missing.end(), id / R) - missing.begin();
            rows[i] = dst[m] + (id % R) * rb;
        }
    }
    lease->lock_ = std::shared_lock<std::shared_mutex>(mu_);
    return lease;
}

void BlockTable::write(IdView ids, int64_t n, const float* values) {
    const int64_t R = spec_.block_rows, rb = spec_.row_bytes(), bb = spec_.block_bytes();
    for (int64_t i = 0; i < n; ++i) check_id(ids.at(i), i);
    // By block, and within a block in input order, so the last of repeated ids wins.
    std::vector<int64_t> order(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids.at(a) / R < ids.at(b) / R; });
    std::unique_lock<std::shared_mutex> excl(mu_);
    std::vector<uint8_t> own;
    for (std::size_t i = 0; i < order.size();) {
        const int64_t block = ids.at(order[i]) / R;
        int64_t slot = index_.find(block);
        uint8_t* dst;
        if (slot < 0) {
            int64_t evicted = -1;
            slot = index_.insert(block, &evicted);
            if (evicted >= 0) {
                evictions_.fetch_add(1, std::memory_order_relaxed);
                if (dirty_[slot]) spill(evicted, slot_ptr(slot));
            }
            if (slot >= 0) {
                dst = slot_ptr(slot);
            } else {
                own.resize(static_cast<std::size_t>(bb));
                dst = own.data();
            }
            load_block(block, dst);
            loads_.fetch_add(1, std::memory_order_relaxed);
        } else {
            dst = slot_ptr(slot);
        }
        for (; i < order.size() && ids.at(order[i]) / R == block; ++i) {
            const int64_t id = ids.at(order[i]);
            encode_row(values + order[i] * spec_.dim, spec_.dim, spec_.dtype, dst + (id % R) * rb);
        }
        if (slot >= 0) {
            dirty_[slot] = 1;
            index_.touch(slot);
        } else {
            spill(block, dst);  // no slot to keep it in: straight to the spill file
        }
    }
}

void BlockTable::read_blocks(const int64_t* blocks, int64_t count, uint8_t* out) {
    const int64_t bb = spec_.block_bytes();
    for (int64_t i = 0; i < count; ++i)
        if (blocks[i] < 0 || blocks[i] >= spec_.blocks())
            throw std::out_of_range("block " + std::to_string(blocks[i]) + " at index " + std::to_string(i) +
                                    " is outside 0.." + std::to_string(spec_.blocks() - 1));
    std::shared_lock<std::shared_mutex> shared(mu_);  // pread and the maps are safe to share
    parallel_for(static_cast<std::size_t>(count), [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) {
            const int64_t slot = index_.find(blocks[i]);
            if (slot >= 0) std::memcpy(out + i * bb, slot_ptr(slot), static_cast<std::size_t>(bb));
            else load_block(blocks[i], out + i * bb);
        }
    }, 16);
}

std::vector<int64_t> BlockTable::written_blocks() {
    std::shared_lock<std::shared_mutex> shared(mu_);
    std::vector<int64_t> out(base_index_);
    for (const auto& kv : spilled_) out.push_back(kv.first);
    for (int64_t s = 0; s < index_.slots(); ++s)
        if (dirty_[s] && index_.block_at(s) >= 0) out.push_back(index_.block_at(s));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<int64_t> BlockTable::save_blocks(const std::string& path) {
    const std::vector<int64_t> blocks = written_blocks();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) io_error("creating " + path);
    const int64_t bb = spec_.block_bytes();
    const int64_t chunk = std::max<int64_t>(1, (int64_t(64) << 20) / bb);
    std::vector<uint8_t> buf;
    try {
        for (std::size_t at = 0; at < blocks.size(); at += static_cast<std::size_t>(chunk)) {
            const int64_t m = std::min<int64_t>(chunk, static_cast<int64_t>(blocks.size() - at));
            buf.resize(static_cast<std::size_t>(m * bb));
            read_blocks(blocks.data() + at, m, buf.data());
            pwrite_all(fd, buf.data(), m * bb, static_cast<int64_t>(at) * bb, path.c_str());
        }
        if (::fsync(fd) != 0) io_error("syncing " + path);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    return blocks;
}

CacheStats BlockTable::stats() {
    std::shared_lock<std::shared_mutex> shared(mu_);
    CacheStats s;
    s.lookups = lookups_.load();
    s.hits = hits_.load();
    s.loads = loads_.load();
    s.evictions = evictions_.load();
    s.writebacks = writebacks_.load();
    s.bypass = bypass_.load();
    s.resident_blocks = index_.resident();
    s.capacity_blocks = index_.slots();
    s.used_blocks = index_.used();
    s.index_bytes = index_.overhead_bytes() + static_cast<int64_t>(dirty_.size());
    return s;
}

void BlockTable::reset_stats() {
    lookups_ = 0;
    hits_ = 0;
    loads_ = 0;
    evictions_ = 0;
    writebacks_ = 0;
    bypass_ = 0;
}

void BlockTable::clear_cache() {
    std::unique_lock<std::shared_mutex> excl(mu_);
    for (int64_t s = 0; s < index_.slots(); ++s) {
        if (dirty_[s] && index_.block_at(s) >= 0) spill(index_.block_at(s), slot_ptr(s));
        dirty_[s] = 0;
    }
    index_.clear();
}

}  // namespace kmerx
