// FASTA/FASTQ parsing into ReadBatch buffers (names, sequences, qualities as data + offsets).
//
// Accepted input: FASTA (multi-line, blank lines, CRLF) and FASTQ (4-line or wrapped: sequence lines
// run to the '+' line, quality lines are read until their length equals the sequence length).
// Bytes are passed through as in the file (no case change), line breaks and a trailing '\r' removed.
// Every malformed record throws FormatError "{label}: record {n}, line {l}: {what}", where n is the
// 1-based ordinal of the record (first_index + i + 1) and l the 1-based line counted from where
// reading started (the range's first record for byte-range reads). Truncations report the line
// where the record should have continued.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "kmerx/compress.hpp"

namespace kmerx {

enum class Format : int { Auto = 0, Fasta = 1, Fastq = 2 };

// Reallocates a buffer of `used` live bytes to hold `want` bytes. Large buffers are 2 MiB aligned
// and advised as transparent huge pages: fresh batch buffers otherwise cost a page fault per 4 KiB.
// The result is freed with std::free; throws std::bad_alloc.
void* grow_bytes(void* old, std::size_t used, std::size_t want);

// A malloc'd growable array whose storage can be handed to Python without a copy.
template <class T>
struct Buf {
    T* p = nullptr;
    std::size_t n = 0, cap = 0;
    Buf() = default;
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    Buf(Buf&& o) noexcept : p(o.p), n(o.n), cap(o.cap) { o.p = nullptr; o.n = o.cap = 0; }
    Buf& operator=(Buf&& o) noexcept {
        std::swap(p, o.p); std::swap(n, o.n); std::swap(cap, o.cap);
        return *this;
    }
    ~Buf() { std::free(p); }
    void reserve(std::size_t c) {
        if (c <= cap) return;
        std::size_t nc = cap * 2 > c ? cap * 2 : c;
        if (nc < 256) nc = 256;
        p = static_cast<T*>(grow_bytes(p, n * sizeof(T), nc * sizeof(T)));
        cap = nc;
    }
    void push(T v) {
        if (n == cap) reserve(n + 1);
        p[n++] = v;
    }
    void append(const T* s, std::size_t k) {
        if (n + k > cap) reserve(n + k);
        if (k) std::memcpy(p + n, s, k * sizeof(T));
        n += k;
    }
    // Gives up ownership (the caller frees with std::free); never null, so views stay valid.
    T* release() {
        if (!p) reserve(1);
        T* q = p;
        p = nullptr;
        n = cap = 0;
        return q;
    }
};

// One batch: record i is name[name_off[i]:name_off[i+1]] etc.; qual is empty for FASTA.
struct FastxBatch {
    Buf<uint8_t> name, seq, qual;
    Buf<int32_t> name_off;
    Buf<int64_t> seq_off, qual_off;
    std::size_t n = 0;
    int64_t first_index = 0;  // read_index of record 0
};

struct ReadOptions {
    Format format = Format::Auto;
    int phred = 33;                       // 33 or 64: lowest legal quality byte
    std::size_t batch_bytes = 4u << 20;   // name + seq + qual bytes per batch (one record may exceed it)
    int64_t first_index = 0;              // read_index of the first record read
    std::string label = "<stream>";       // file name used in error messages
};

class FastxReader {
public:
    // `src` yields the decoded text from its start; `offset` is its absolute position in the file and
    // `range_end` (when >= 0) stops before the first record whose header starts at or after it.
    FastxReader(std::unique_ptr<Source> src, ReadOptions opt, uint64_t offset = 0, int64_t range_end = -1);
    ~FastxReader();
    // Fills `out` with the next batch; false (and an empty batch) at the end of the input.
    bool next(FastxBatch& out);
    // The detected or forced format; Auto until the first non-blank byte has been seen.
    Format format() const { return fmt_; }

private:
    bool fill();  // more bytes into the buffer; false at end of input
    bool detect_format();
    std::unique_ptr<Source> src_;
    ReadOptions opt_;
    Format fmt_;
    uint8_t* buf_ = nullptr;
    std::size_t cap_ = 0, pos_ = 0, len_ = 0;
    bool eof_ = false, done_ = false;
    uint64_t abs_ = 0;  // file offset of buf_[0]
    int64_t range_end_;
    uint64_t line_ = 0;   // lines consumed
    int64_t count_ = 0;   // records emitted
    std::size_t last_seq_ = 0, last_name_ = 0, last_n_ = 0;  // high-water marks of past batches
};

// Opens a path: gzip/BGZF decoded natively on a separate thread; bz2/xz/zstd raise
// std::invalid_argument (the Python layer decodes those). With a byte range [start, end) on an
// uncompressed file, yields exactly the records whose header starts in the range (see fastx.cpp for
// the FASTQ resynchronisation rule); a byte range on a compressed file throws std::invalid_argument.
std::unique_ptr<FastxReader> open_fastx_path(const std::string& path, ReadOptions opt, int64_t range_start = -1,
                                             int64_t range_end = -1);

// Opens a stream (e.g. a Python file object's read callback); gzip is detected and decoded natively.
// The stream is pulled on a separate thread with bounded buffering.
std::unique_ptr<FastxReader> open_fastx_stream(std::unique_ptr<Source> src, ReadOptions opt);

}  // namespace kmerx
