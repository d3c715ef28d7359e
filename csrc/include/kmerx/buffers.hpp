// Recycled output buffers for large kernel outputs.
//
// A fresh mapping pays a page fault and the kernel's zeroing per page, which for outputs like k-mer
// codes (8 bytes per input base) costs more than computing them. Batch after batch asks for the same
// few sizes, so freed buffers (up to a limit in all) are kept and handed out again.
#pragma once

#include <cstddef>

namespace kmerx::buffers {

constexpr std::size_t kMinBytes = std::size_t(1) << 20;  // smaller requests bypass the cache
constexpr std::size_t kDefaultLimit = std::size_t(256) << 20;

// A buffer of at least `bytes` (2 MiB-aligned, huge pages advised); `size` receives its real size,
// to pass back to give(). Throws std::bad_alloc.
void* take(std::size_t bytes, std::size_t& size);
// Returns a buffer from take(); kept for reuse while the cache holds at most limit() bytes.
void give(void* p, std::size_t size);
// Sets the bytes kept for reuse (0 frees them all now and disables keeping).
void set_limit(std::size_t bytes);
std::size_t limit();

}  // namespace kmerx::buffers
