// sourmash-compatible MinHash hashing (kmerx/sketch.hpp).
//
// No ASCII k-mer is ever read back from the sequence; the canonical string's bytes are rebuilt from
// 2-bit codes in registers and murmur is specialised for the length at compile time.
// AVX2 (4 <= k <= 32): canonical codes from the k-mer code kernel, hashed four per vector
// (sketch_avx2.cpp). Scalar: with F the forward code (first base most significant) and R the
// reverse-complement code, the canonical string's bases, first base in the lowest bits, are exactly
// max(F, R) ^ mask (complementing a base is x ^ 3, and the two strands' orders are mirror images); a
// 256-entry table turns each byte of that (4 bases) into the 4 ASCII bytes murmur reads.
#include "kmerx/sketch.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "kmerx/common.hpp"
#include "kmerx/encode.hpp"

namespace kmerx {

namespace {

constexpr uint64_t kC1 = 0x87c37b91114253d5ULL;
constexpr uint64_t kC2 = 0x4cf5ad432745937fULL;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t fmix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// MurmurHash3_x64_128 (low half) of len bytes given as little-endian words; bytes past len in the
// last word must be zero, words past it are not read. Inlined with a constant len, the loops unroll.
__attribute__((always_inline)) inline uint64_t murmur_words(const uint64_t* w, int len, uint64_t seed) {
    uint64_t h1 = seed, h2 = seed;
    const int blocks = len / 16;
    for (int b = 0; b < blocks; ++b) {
        uint64_t k1 = w[2 * b], k2 = w[2 * b + 1];
        k1 *= kC1;
        k1 = rotl(k1, 31);
        k1 *= kC2;
        h1 ^= k1;
        h1 = rotl(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= kC2;
        k2 = rotl(k2, 33);
        k2 *= kC1;
        h2 ^= k2;
        h2 = rotl(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    const int rem = len & 15;
    if (rem > 8) {
        uint64_t k2 = w[2 * blocks + 1];
        k2 *= kC2;
        k2 = rotl(k2, 33);
        k2 *= kC1;
        h2 ^= k2;
    }
    if (rem > 0) {
        uint64_t k1 = w[2 * blocks];
        k1 *= kC1;
        k1 = rotl(k1, 31);
        k1 *= kC2;
        h1 ^= k1;
    }
    h1 ^= static_cast<uint64_t>(len);
    h2 ^= static_cast<uint64_t>(len);
    h1 += h2;
    h2 += h1;
    h1 = fmix(h1);
    h2 = fmix(h2);
    return h1 + h2;
}

// kAscii4[b]: the 4 bases of byte b (base j in bits 2j..2j+1) as ASCII, base j in byte j.
struct Ascii4Table {
    uint32_t v[256];
    constexpr Ascii4Table() : v() {
        constexpr uint8_t letters[4] = {'A', 'C', 'G', 'T'};
        for (int b = 0; b < 256; ++b) {
            uint32_t x = 0;
            for (int j = 0; j < 4; ++j) x |= uint32_t(letters[(b >> (2 * j)) & 3]) << (8 * j);
            v[b] = x;
        }
    }
};
inline constexpr Ascii4Table kAscii4{};

// ASCII word j (bases 8j..8j+7) of the bases in `low` (base i in bits 2i), `n` bases in all.
inline uint64_t ascii_word(uint64_t low, int j, int n) {
    const uint64_t w = kAscii4.v[(low >> (16 * (j & 3))) & 0xFF] |
                       uint64_t(kAscii4.v[(low >> (16 * (j & 3) + 8)) & 0xFF]) << 32;
    const int left = n - 8 * j;  // bases in this word
    return left >= 8 ? w : w & ((uint64_t(1) << (8 * left)) - 1);
}

// Keeps the hashes a sketch wants: <= threshold, and the num smallest distinct ones when num > 0.
struct Collector {
    uint64_t threshold;
    std::size_t num;
    std::vector<uint64_t> buf;
    std::vector<uint64_t> lows, hashes;  // scratch blocks for the scans, kept across reads
    std::size_t pending = 0;             // codes waiting in lows (AVX2 path)

    Collector(uint64_t max_hash, std::size_t n) : threshold(max_hash), num(n) {}

    void push(uint64_t h) {
        buf.push_back(h);
        if (num && buf.size() >= std::max<std::size_t>(2 * num, 4096)) compact();
    }
    void compact() {
        std::sort(buf.begin(), buf.end());
        buf.erase(std::unique(buf.begin(), buf.end()), buf.end());
        if (num && buf.size() >= num) {
            buf.resize(num);
            threshold = buf.back();
        }
    }
};

// Canonical k-mers are gathered as `lows` (see the top of this file), then hashed in blocks by the
// scalar or the AVX2 hasher and filtered.
constexpr std::size_t kBlock = 512;

// Pushes the hashes under the threshold; locals keep the loop free of reloads (push may lower it).
inline void keep(const uint64_t* h, std::size_t n, Collector& out) {
    uint64_t threshold = out.threshold;
    for (std::size_t i = 0; i < n; ++i)
        if (h[i] <= threshold) {
            out.push(h[i]);
            threshold = out.threshold;
        }
}

template <int K>
void hash_lows_scalar(const uint64_t* lows, std::size_t n, uint64_t seed, uint64_t* out) {
    constexpr int nwords = (K + 7) / 8;
    for (std::size_t i = 0; i < n; ++i) {
        uint64_t w[nwords];
        for (int j = 0; j < nwords; ++j) w[j] = ascii_word(lows[i], j, K);
        out[i] = murmur_words(w, K, seed);
    }
}

template <int K>
void flush(const uint64_t* lows, std::size_t n, uint64_t seed, Collector& out) {
    hash_lows_scalar<K>(lows, n, seed, out.hashes.data());
    keep(out.hashes.data(), n, out);
}

// AVX2: canonical codes from the k-mer code kernel (encode.hpp) gather in out.lows across runs and
// reads (short reads would leave most 4-lane blocks part empty) and are hashed kBlock at a time.
void flush_codes(int k, uint64_t seed, Collector& out) {
    const uint64_t* h = out.hashes.data();
    const std::size_t n = out.pending;
    detail::sketch_hash_codes_avx2(out.lows.data(), n, k, seed, out.hashes.data());
    keep(h, n, out);
    out.pending = 0;
}

template <int K>
void scan_avx2(const uint8_t* s, int64_t len, uint64_t seed, Collector& out) {
    int64_t i = 0;
    while (i < len) {
        while (i < len && kBaseCode.v[s[i]] == kInvalidBase) ++i;
        if (i >= len) break;
        const int64_t b = detail::valid_run_end_avx2(s, i, len);
        for (int64_t st = i; st + K <= b;) {
            const int64_t room = int64_t(kBlock - out.pending);
            const int64_t end = std::min(st + room + K - 1, b);
            out.pending += detail::kmer_run_avx2(s, st, end, K, Strand::Canonical, out.lows.data() + out.pending,
                                                 nullptr);
            if (out.pending == kBlock) flush_codes(K, seed, out);
            st = end - K + 1;
        }
        i = b;
    }
}

template <int K>
void scan_small(const uint8_t* s, int64_t len, uint64_t seed, bool avx2, Collector& out) {
    static_assert(K >= 1 && K <= 32, "one-word codes");
    out.lows.resize(kBlock);
    out.hashes.resize(kBlock);
    if constexpr (K >= 4) {  // the code kernel's AVX2 path needs k >= 4
        if (avx2) return scan_avx2<K>(s, len, seed, out);
    }
    constexpr uint64_t mask = K == 32 ? ~uint64_t(0) : (uint64_t(1) << (2 * K)) - 1;
    constexpr int shift = 2 * (K - 1);
    uint64_t* lows = out.lows.data();
    std::size_t n = 0;
    uint64_t f = 0, r = 0;
    int valid = 0;
    for (int64_t i = 0; i < len; ++i) {
        const uint64_t c = kBaseCode.v[s[i]];
        if (c > 3) {
            valid = 0;
            continue;
        }
        f = ((f << 2) | c) & mask;
        r = (r >> 2) | ((3 - c) << shift);
        if (++valid < K) continue;
        lows[n++] = std::max(f, r) ^ mask;
        if (n == kBlock) {
            flush<K>(lows, n, seed, out);
            n = 0;
        }
    }
    flush<K>(lows, n, seed, out);
}

// 33 <= k <= 64: the same scheme on 128-bit codes, with a run-time length.
void scan_large(const uint8_t* s, int64_t len, int k, uint64_t seed, Collector& out) {
    using u128 = unsigned __int128;
    const u128 mask = k == 64 ? ~u128(0) : (u128(1) << (2 * k)) - 1;
    const int shift = 2 * (k - 1);
    u128 f = 0, r = 0;
    int valid = 0;
    for (int64_t i = 0; i < len; ++i) {
        const uint64_t c = kBaseCode.v[s[i]];
        if (c > 3) {
            valid = 0;
            continue;
        }
        f = ((f << 2) | c) & mask;
        r = (r >> 2) | (u128(3 - c) << shift);
        if (++valid < k) continue;
        const u128 low = std::max(f, r) ^ mask;
        uint64_t w[8];
        const int nwords = (k + 7) / 8;
        for (int j = 0; j < nwords; ++j) w[j] = ascii_word(uint64_t(low >> (64 * (j / 4))), j, k);
        const uint64_t h = murmur_words(w, k, seed);
        if (h <= out.threshold) out.push(h);
    }
}

using ScanFn = void (*)(const uint8_t*, int64_t, uint64_t, bool, Collector&);

template <int... Ks>
constexpr ScanFn pick_small(int k, std::integer_sequence<int, Ks...>) {
    constexpr ScanFn table[] = {&scan_small<Ks + 1>...};
    return table[k - 1];
}

}  // namespace

uint64_t murmur3_x64_128_low(const uint8_t* bytes, std::size_t n, uint64_t seed) {
    if (n > (std::size_t(1) << 30)) throw std::invalid_argument("murmur3: input longer than 2^30 bytes");
    std::vector<uint64_t> w((n + 7) / 8 + 2, 0);
    std::memcpy(w.data(), bytes, n);  // little-endian hosts (x86-64, aarch64)
    return murmur_words(w.data(), static_cast<int>(n), seed);
}

std::vector<uint64_t> sketch_hashes(const uint8_t* data, const int64_t* offsets, std::size_t n, int k,
                                    uint64_t seed, uint64_t max_hash, std::size_t num) {
    if (k < 1 || k > 64) throw std::invalid_argument("k must be in 1..64, got " + std::to_string(k));
    // Segments of at most kSegment k-mers (k - 1 bases of overlap), weighted by their length.
    constexpr int64_t kSegment = int64_t(1) << 20;
    std::vector<int64_t> starts, cum{0};
    for (std::size_t r = 0; r < n; ++r) {
        const int64_t a = offsets[r], b = offsets[r + 1];
        if (b - a < k) continue;
        for (int64_t st = a;; st += kSegment) {
            const int64_t end = std::min(st + kSegment + k - 1, b);
            starts.push_back(st);
            cum.push_back(cum.back() + (end - st));
            if (end == b) break;
        }
    }
    const std::size_t nseg = starts.size();
    const bool avx2 = simd_level() >= Simd::AVX2;
    const ScanFn small = k <= 32 ? pick_small(k, std::make_integer_sequence<int, 32>{}) : nullptr;

    std::vector<std::vector<uint64_t>> parts;
    std::mutex lock;
    parallel_for_weighted(cum.data(), nseg, [&](std::size_t lo, std::size_t hi) {
        Collector c(max_hash, num);
        for (std::size_t i = lo; i < hi; ++i) {
            const int64_t len = cum[i + 1] - cum[i];
            if (small)
                small(data + starts[i], len, seed, avx2, c);
            else
                scan_large(data + starts[i], len, k, seed, c);
        }
        if (c.pending) flush_codes(k, seed, c);
        c.compact();
        std::lock_guard<std::mutex> g(lock);
        parts.push_back(std::move(c.buf));
    });
    if (parts.empty()) return {};
    if (parts.size() == 1) return std::move(parts[0]);
    Collector all(max_hash, num);
    for (auto& p : parts) all.buf.insert(all.buf.end(), p.begin(), p.end());
    all.compact();
    return std::move(all.buf);
}

}  // namespace kmerx
