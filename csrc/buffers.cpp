#include "kmerx/buffers.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace kmerx::buffers {

namespace {

constexpr std::size_t kAlign = std::size_t(2) << 20;  // whole huge pages

struct Cache {
    std::mutex mu;
    std::vector<std::pair<void*, std::size_t>> free;  // oldest first
    std::size_t held = 0;
    std::size_t limit = kDefaultLimit;

    void trim(std::size_t room) {  // free the oldest until `room` more bytes fit under the limit
        while (!free.empty() && held + room > limit) {
            held -= free.front().second;
            std::free(free.front().first);
            free.erase(free.begin());
        }
    }
};

Cache& cache() {
    static Cache* c = new Cache();  // never destroyed: numpy arrays may return buffers at exit
    return *c;
}

}  // namespace

void* take(std::size_t bytes, std::size_t& size) {
    Cache& c = cache();
    {
        std::lock_guard<std::mutex> lock(c.mu);
        std::size_t best = c.free.size();
        for (std::size_t i = 0; i < c.free.size(); ++i)  // smallest that fits without much waste
            if (c.free[i].second >= bytes && c.free[i].second <= 2 * bytes + kAlign &&
                (best == c.free.size() || c.free[i].second < c.free[best].second))
                best = i;
        if (best != c.free.size()) {
            void* p = c.free[best].first;
            size = c.free[best].second;
            c.held -= size;
            c.free.erase(c.free.begin() + std::ptrdiff_t(best));
            return p;
        }
    }
    size = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, size);
    if (!p) throw std::bad_alloc();
    madvise(p, size, MADV_HUGEPAGE);  // fewer, cheaper faults on first touch; advisory only
    return p;
}

void give(void* p, std::size_t size) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.trim(size);
    if (c.held + size > c.limit) {
        std::free(p);
        return;
    }
    c.free.emplace_back(p, size);
    c.held += size;
}

void set_limit(std::size_t bytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.limit = bytes;
    c.trim(0);
}

std::size_t limit() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    return c.limit;
}

}  // namespace kmerx::buffers
