// Byte sources for the FASTA/FASTQ reader: files, caller-supplied pull callbacks, gzip (ISA-L or
// zlib) decoding, and a decoding thread with bounded buffering that overlaps the parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kmerx {

// Compression detected from the first bytes of a stream (never from a file name).
enum class Compression : int { None = 0, Gzip, Bgzf, Bz2, Xz, Zstd };

// Reads up to 18 bytes of `head` (fewer is fine) and names the compression they start.
// BGZF is gzip whose first member carries the "BC" extra subfield.
Compression sniff_compression(const uint8_t* head, std::size_t n);
const char* compression_name(Compression c);  // "none" | "gzip" | "bgzf" | "bz2" | "xz" | "zstd"

// A pull stream of bytes. read() fills up to n bytes of dst and returns how many; 0 means end of
// stream. Errors throw (FormatError for corrupt compressed data, std::runtime_error for I/O).
struct Source {
    virtual ~Source() = default;
    virtual std::size_t read(uint8_t* dst, std::size_t n) = 0;
};

// A file descriptor opened from `path` ("-" is not special here), positioned at byte `offset`.
// Throws std::runtime_error naming the path when it cannot be opened.
std::unique_ptr<Source> open_file(const std::string& path, uint64_t offset = 0);

// Wraps a pull callback: fn(dst, n) returns the bytes written (0 at end).
std::unique_ptr<Source> callback_source(std::function<std::size_t(uint8_t*, std::size_t)> fn);

// Serves `prefix` first, then the rest of `inner` (used after sniffing consumed a few bytes).
std::unique_ptr<Source> prefixed(std::string prefix, std::unique_ptr<Source> inner);

// Decodes gzip from `inner`: multi-member files and BGZF included, trailing zero padding ignored.
// A corrupt, truncated or trailing-garbage stream throws FormatError "{label}: ...".
std::unique_ptr<Source> gzip_decoder(std::unique_ptr<Source> inner, std::string label);

// Runs `inner` on its own thread, handing over chunks of `chunk` bytes through a queue at most
// `depth` chunks deep. Exceptions from the thread are rethrown by read(), in stream order.
// Destroying it stops the thread (after any read() the thread is inside returns).
std::unique_ptr<Source> threaded(std::unique_ptr<Source> inner, std::size_t chunk = 1 << 20,
                                 std::size_t depth = 4);

// "isa-l" or "zlib": the gzip inflater compiled in.
const char* gzip_backend();

}  // namespace kmerx
