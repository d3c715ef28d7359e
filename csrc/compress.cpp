#include "kmerx/compress.hpp"

#include <cxxabi.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef KMERX_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "kmerx/common.hpp"

namespace kmerx {

Compression sniff_compression(const uint8_t* h, std::size_t n) {
    if (n >= 3 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 8) {
        // FEXTRA with the BGZF "BC" subfield right after XLEN (bgzip writes it first).
        if (n >= 14 && (h[3] & 4) && h[12] == 'B' && h[13] == 'C') return Compression::Bgzf;
        return Compression::Gzip;
    }
    if (n >= 3 && h[0] == 'B' && h[1] == 'Z' && h[2] == 'h') return Compression::Bz2;
    if (n >= 6 && std::memcmp(h, "\xfd" "7zXZ\x00", 6) == 0) return Compression::Xz;
    if (n >= 4 && std::memcmp(h, "\x28\xb5\x2f\xfd", 4) == 0) return Compression::Zstd;
    return Compression::None;
}

const char* compression_name(Compression c) {
    switch (c) {
        case Compression::Gzip: return "gzip";
        case Compression::Bgzf: return "bgzf";
        case Compression::Bz2: return "bz2";
        case Compression::Xz: return "xz";
        case Compression::Zstd: return "zstd";
        default: return "none";
    }
}

const char* gzip_backend() {
#ifdef KMERX_HAVE_ISAL
    return "isa-l";
#else
    return "zlib";
#endif
}

namespace {

// ---- plain sources -----------------------------------------------------------------------------
struct FdSource final : Source {
    int fd;
    std::string path;
    FdSource(int f, std::string p) : fd(f), path(std::move(p)) {}
    ~FdSource() override { ::close(fd); }
    std::size_t read(uint8_t* dst, std::size_t n) override {
        for (;;) {
            ssize_t r = ::read(fd, dst, n);
            if (r >= 0) return static_cast<std::size_t>(r);
            if (errno != EINTR) throw std::runtime_error(path + ": read failed: " + std::strerror(errno));
        }
    }
};

struct CallbackSource final : Source {
    std::function<std::size_t(uint8_t*, std::size_t)> fn;
    explicit CallbackSource(std::function<std::size_t(uint8_t*, std::size_t)> f) : fn(std::move(f)) {}
    std::size_t read(uint8_t* dst, std::size_t n) override { return fn(dst, n); }
};

struct PrefixSource final : Source {
    std::string prefix;
    std::size_t pos = 0;
    std::unique_ptr<Source> inner;
    PrefixSource(std::string p, std::unique_ptr<Source> in) : prefix(std::move(p)), inner(std::move(in)) {}
    std::size_t read(uint8_t* dst, std::size_t n) override {
        if (pos < prefix.size()) {
            std::size_t k = std::min(n, prefix.size() - pos);
            std::memcpy(dst, prefix.data() + pos, k);
            pos += k;
            return k;
        }
        return inner->read(dst, n);
    }
};

// ---- gzip --------------------------------------------------------------------------------------
// One inflater per stream; members are decoded back to back (multi-member gzip, BGZF).
class GzipSource final : public Source {
public:
    GzipSource(std::unique_ptr<Source> inner, std::string label)
        : inner_(std::move(inner)), label_(std::move(label)), in_(kInBuf) {
#ifdef KMERX_HAVE_ISAL
        isal_inflate_init(&st_);
        st_.crc_flag = ISAL_GZIP;
#else
        std::memset(&zs_, 0, sizeof zs_);
        if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("zlib inflateInit2 failed");
#endif
    }
    ~GzipSource() override {
#ifndef KMERX_HAVE_ISAL
        inflateEnd(&zs_);
#endif
    }

    std::size_t read(uint8_t* dst, std::size_t n) override {
        n = std::min<std::size_t>(n, 1u << 30);
        for (;;) {
            if (done_) return 0;
            if (between_members_) {
                if (!start_next_member()) return 0;
                continue;
            }
            if (in_len_ == in_pos_ && !eof_) refill();
            std::size_t before_in = in_len_ - in_pos_;
            std::size_t out = 0;
            bool member_end = inflate_some(dst, n, out);
            std::size_t consumed = before_in - (in_len_ - in_pos_);
            if (member_end) between_members_ = true;
            if (out > 0) return out;
            if (!member_end && consumed == 0 && in_pos_ == in_len_ && eof_)
                fail("truncated gzip stream (unexpected end of file)");
        }
    }

private:
    static constexpr std::size_t kInBuf = 1 << 18;

    [[noreturn]] void fail(const std::string& what) { throw FormatError(label_ + ": " + what); }

    void refill() {
        if (in_pos_ < in_len_) {
            std::memmove(in_.data(), in_.data() + in_pos_, in_len_ - in_pos_);
            in_len_ -= in_pos_;
        } else {
            in_len_ = 0;
        }
        in_pos_ = 0;
        std::size_t r = inner_->read(in_.data() + in_len_, in_.size() - in_len_);
        if (r == 0) eof_ = true;
        in_len_ += r;
    }

    // After a member: another member, zero padding (ignored) or end of stream.
    bool start_next_member() {
        for (;;) {
            while (in_pos_ < in_len_ && in_[in_pos_] == 0) ++in_pos_;
            if (in_pos_ < in_len_) break;
            if (eof_) { done_ = true; return false; }
            refill();
        }
        if (in_len_ - in_pos_ < 2 && !eof_) refill();
        if (in_len_ - in_pos_ < 2 || in_[in_pos_] != 0x1f || in_[in_pos_ + 1] != 0x8b)
            fail("corrupt gzip stream (trailing garbage after a member)");
        between_members_ = false;
#ifdef KMERX_HAVE_ISAL
        isal_inflate_reset(&st_);
        st_.crc_flag = ISAL_GZIP;
#else
        inflateReset(&zs_);
#endif
        return true;
    }

    // Inflates into dst[0..n); returns true at the end of a member.
    bool inflate_some(uint8_t* dst, std::size_t n, std::size_t& out) {
#ifdef KMERX_HAVE_ISAL
        st_.next_in = in_.data() + in_pos_;
        st_.avail_in = static_cast<uint32_t>(in_len_ - in_pos_);
        st_.next_out = dst;
        st_.avail_out = static_cast<uint32_t>(n);
        int ret = isal_inflate(&st_);
        in_pos_ = in_len_ - st_.avail_in;
        out = n - st_.avail_out;
        if (ret < 0 || ret == ISAL_NEED_DICT)
            fail("corrupt gzip stream (" + std::string(ret == ISAL_INCORRECT_CHECKSUM ? "CRC mismatch"
                                                       : ret == ISAL_INVALID_WRAPPER ? "bad gzip header"
                                                                                      : "invalid deflate data") + ")");
        return st_.block_state == ISAL_BLOCK_FINISH;
#else
        zs_.next_in = in_.data() + in_pos_;
        zs_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
        zs_.next_out = dst;
        zs_.avail_out = static_cast<uInt>(n);
        int ret = inflate(&zs_, Z_NO_FLUSH);
        in_pos_ = in_len_ - zs_.avail_in;
        out = n - zs_.avail_out;
        if (ret == Z_STREAM_END) return true;
        if (ret != Z_OK && ret != Z_BUF_ERROR)
            fail(std::string("corrupt gzip stream (") + (zs_.msg ? zs_.msg : "invalid data") + ")");
        return false;
#endif
    }

    std::unique_ptr<Source> inner_;
    std::string label_;
    std::vector<uint8_t> in_;
    std::size_t in_pos_ = 0, in_len_ = 0;
    bool eof_ = false, done_ = false, between_members_ = false;
#ifdef KMERX_HAVE_ISAL
    inflate_state st_;
#else
    z_stream zs_;
#endif
};

// ---- decoding thread ---------------------------------------------------------------------------
class ThreadedSource final : public Source {
public:
    ThreadedSource(std::unique_ptr<Source> inner, std::size_t chunk, std::size_t depth)
        : inner_(std::move(inner)), chunk_(std::max<std::size_t>(chunk, 4096)), depth_(std::max<std::size_t>(depth, 1)) {
        thread_ = std::thread([this] { produce(); });
    }
    ~ThreadedSource() override {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

    std::size_t read(uint8_t* dst, std::size_t n) override {
        while (cur_pos_ == cur_.data.size()) {
            if (cur_.end) {
                if (cur_.error) std::rethrow_exception(cur_.error);
                return 0;
            }
            std::unique_lock<std::mutex> lk(mu_);
            if (!cur_.data.empty() || cur_.data.capacity()) free_.push_back(std::move(cur_.data));
            cv_.notify_all();
            cv_.wait(lk, [this] { return !full_.empty(); });
            cur_ = std::move(full_.front());
            full_.pop_front();
            cur_pos_ = 0;
        }
        std::size_t k = std::min(n, cur_.data.size() - cur_pos_);
        std::memcpy(dst, cur_.data.data() + cur_pos_, k);
        cur_pos_ += k;
        return k;
    }

private:
    struct Chunk {
        std::vector<uint8_t> data;
        bool end = false;
        std::exception_ptr error;
    };

    void produce() {
        for (;;) {
            std::vector<uint8_t> buf;
            {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [this] { return stop_ || full_.size() < depth_; });
                if (stop_) return;
                if (!free_.empty()) {
                    buf = std::move(free_.back());
                    free_.pop_back();
                }
            }
            Chunk c;
            try {
                buf.resize(chunk_);
                std::size_t len = 0;
                while (len < chunk_) {
                    std::size_t r = inner_->read(buf.data() + len, chunk_ - len);
                    if (r == 0) { c.end = true; break; }
                    len += r;
                }
                buf.resize(len);
            } catch (abi::__forced_unwind&) {
                throw;  // thread cancellation (e.g. a Python read callback during interpreter exit)
            } catch (...) {
                c.end = true;
                c.error = std::current_exception();
                buf.clear();
            }
            c.data = std::move(buf);
            bool end = c.end;
            {
                std::lock_guard<std::mutex> lk(mu_);
                full_.push_back(std::move(c));
            }
            cv_.notify_all();
            if (end) return;
        }
    }

    std::unique_ptr<Source> inner_;
    std::size_t chunk_, depth_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Chunk> full_;
    std::vector<std::vector<uint8_t>> free_;
    bool stop_ = false;
    Chunk cur_;
    std::size_t cur_pos_ = 0;
    std::thread thread_;
};

}  // namespace

std::unique_ptr<Source> open_file(const std::string& path, uint64_t offset) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    auto src = std::make_unique<FdSource>(fd, path);
    if (offset && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0)
        throw std::runtime_error(path + ": cannot seek: " + std::strerror(errno));
#ifdef POSIX_FADV_SEQUENTIAL
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    return src;
}

std::unique_ptr<Source> callback_source(std::function<std::size_t(uint8_t*, std::size_t)> fn) {
    return std::make_unique<CallbackSource>(std::move(fn));
}

std::unique_ptr<Source> prefixed(std::string prefix, std::unique_ptr<Source> inner) {
    if (prefix.empty()) return inner;
    return std::make_unique<PrefixSource>(std::move(prefix), std::move(inner));
}

std::unique_ptr<Source> gzip_decoder(std::unique_ptr<Source> inner, std::string label) {
    return std::make_unique<GzipSource>(std::move(inner), std::move(label));
}

std::unique_ptr<Source> threaded(std::unique_ptr<Source> inner, std::size_t chunk, std::size_t depth) {
    return std::make_unique<ThreadedSource>(std::move(inner), chunk, depth);
}

}  // namespace kmerx
