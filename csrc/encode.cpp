// 2-bit encoding and k-mer codes, scalar kernels and the per-read driver (see kmerx/encode.hpp).
#include "kmerx/encode.hpp"

#include <algorithm>
#include <limits>

#include "kmerx/common.hpp"

namespace kmerx {

namespace {

constexpr uint8_t kInvalid = kInvalidBase;
constexpr const BaseCodeTable& kTable = kBaseCode;

using u128 = unsigned __int128;

// Code type per k: one word up to k = 32, a 128-bit integer above.
template <class T>
struct Codes {
    T fwd = 0, rc = 0;
    T mask;
    int shift;  // 2k - 2: where a new base's complement enters the reverse complement
    explicit Codes(int k) : mask(k * 2 == int(sizeof(T) * 8) ? ~T(0) : (T(1) << (2 * k)) - 1), shift(2 * k - 2) {}
    // fwd keeps older bases above bit 2k (masked when read), so its loop-carried chain is one
    // shift-or; rc drops them off the low end.
    void push(uint8_t c) {
        fwd = (fwd << 2) | c;
        rc = (rc >> 2) | (T(3 - c) << shift);
    }
    template <Strand S>
    T get() const {
        if constexpr (S == Strand::Forward) return fwd & mask;
        else if constexpr (S == Strand::Reverse) return rc;
        else return std::min(T(fwd & mask), rc);
    }
};

template <class T>
inline void store(uint64_t* out, std::size_t i, T v) {
    if constexpr (sizeof(T) == 8) {
        out[i] = v;
    } else {
        out[2 * i] = uint64_t(v >> 64);
        out[2 * i + 1] = uint64_t(v);
    }
}

// The k-mers of one all-valid run seq[a, b) with start p % stride == 0. Bases are pushed once per
// k-mer when stride < k (rolling), else each k-mer is built afresh: O(b - a) work either way.
template <class T, Strand S, bool Pos>
std::size_t run_codes(const uint8_t* seq, int64_t a, int64_t b, int k, int64_t stride, uint64_t* out,
                      int32_t* pos) {
    const int64_t last = b - k;
    if (last < a) return 0;
    Codes<T> c(k);
    std::size_t n = 0;
    if (stride == 1) {
        for (int64_t i = a; i < a + k - 1; ++i) c.push(kTable.v[seq[i]]);
        for (int64_t i = a + k - 1; i < b; ++i) {
            c.push(kTable.v[seq[i]]);
            store(out, n, c.template get<S>());
            if constexpr (Pos) pos[n] = int32_t(i - k + 1);
            ++n;
        }
        return n;
    }
    int64_t p = (a + stride - 1) / stride * stride;
    int64_t next = p;  // next base to push
    for (; p <= last; p += stride) {
        if (next < p) next = p;  // gap >= k: start afresh
        for (; next < p + k; ++next) c.push(kTable.v[seq[next]]);
        store(out, n, c.template get<S>());
        if constexpr (Pos) pos[n] = int32_t(p);
        ++n;
    }
    return n;
}

int64_t run_end_scalar(const uint8_t* s, int64_t i, int64_t n) {
    while (i < n && kTable.v[s[i]] != kInvalid) ++i;
    return i;
}

// Calls fn(a, b) for every maximal all-valid run s[a, b) of length >= k.
template <class Fn>
void for_each_run(const uint8_t* s, int64_t n, int k, bool avx2, Fn&& fn) {
    int64_t i = 0;
    while (i < n) {
        while (i < n && kTable.v[s[i]] == kInvalid) ++i;
        if (i >= n) break;
        const int64_t b = avx2 ? detail::valid_run_end_avx2(s, i, n) : run_end_scalar(s, i, n);
        if (b - i >= k) fn(i, b);
        i = b;
    }
}

inline int64_t run_count(int64_t a, int64_t b, int k, int64_t stride) {
    const int64_t last = b - k;
    if (stride == 1) return std::max<int64_t>(0, last - a + 1);  // no 64-bit divisions on the common path
    const int64_t first = (a + stride - 1) / stride * stride;
    return first > last ? 0 : (last - first) / stride + 1;
}

// `expected` is this read's count from kmer_counts: when it equals the count of an all-valid read,
// every window the stride selects is valid and the read is processed as one run without rescanning.
template <class T, Strand S, bool Pos>
void read_codes(const uint8_t* s, int64_t len, const KmerSpec& spec, bool avx2, int64_t expected, uint64_t* out,
                int32_t* pos) {
    std::size_t n = 0;
    const int k = spec.k;
    const int words = spec.words();
    auto run = [&](int64_t a, int64_t b) {
        uint64_t* o = out + n * words;
        int32_t* q = Pos ? pos + n : nullptr;
        if constexpr (sizeof(T) == 8) {
            if (avx2 && spec.stride == 1 && k >= 4) {
                n += detail::kmer_run_avx2(s, a, b, k, S, o, q);
                return;
            }
        }
        n += run_codes<T, S, Pos>(s, a, b, k, spec.stride, o, q);
    };
    if (expected == 0) return;
    if (expected == run_count(0, len, k, spec.stride)) run(0, len);
    else for_each_run(s, len, k, avx2, run);
}

template <class T, Strand S>
void read_codes_pos(const uint8_t* s, int64_t len, const KmerSpec& spec, bool avx2, int64_t expected,
                    uint64_t* out, int32_t* pos) {
    if (pos) read_codes<T, S, true>(s, len, spec, avx2, expected, out, pos);
    else read_codes<T, S, false>(s, len, spec, avx2, expected, out, pos);
}

template <class T>
void read_codes_any(const uint8_t* s, int64_t len, const KmerSpec& spec, bool avx2, int64_t expected,
                    uint64_t* out, int32_t* pos) {
    switch (spec.strand) {
        case Strand::Forward: return read_codes_pos<T, Strand::Forward>(s, len, spec, avx2, expected, out, pos);
        case Strand::Reverse: return read_codes_pos<T, Strand::Reverse>(s, len, spec, avx2, expected, out, pos);
        case Strand::Canonical: return read_codes_pos<T, Strand::Canonical>(s, len, spec, avx2, expected, out, pos);
    }
}

void check_spec(const KmerSpec& spec) {
    if (spec.k < 1 || spec.k > 64)
        throw std::invalid_argument("k must be in 1..64, got " + std::to_string(spec.k));
    if (spec.stride < 1) throw std::invalid_argument("stride must be >= 1, got " + std::to_string(spec.stride));
}

}  // namespace

Strand strand_from_name(const std::string& s) {
    if (s == "canonical") return Strand::Canonical;
    if (s == "forward") return Strand::Forward;
    if (s == "reverse") return Strand::Reverse;
    throw std::invalid_argument("strand must be 'canonical', 'forward' or 'reverse', got '" + s + "'");
}

KmerSpec make_kmer_spec(int64_t k, const std::string& strand, int64_t stride) {
    if (k < 1 || k > 64) throw std::invalid_argument("k must be in 1..64, got " + std::to_string(k));
    if (stride < 1) throw std::invalid_argument("stride must be >= 1, got " + std::to_string(stride));
    KmerSpec spec;
    spec.k = static_cast<int>(k);
    spec.strand = strand_from_name(strand);
    spec.stride = stride;
    return spec;
}

int64_t pack_2bit(const uint8_t* seq, std::size_t n, uint8_t* out) {
    for (std::size_t i = 0; i < n; i += 4) {
        uint8_t byte = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            uint8_t c = 0;
            if (i + j < n) {
                c = kTable.v[seq[i + j]];
                if (c == kInvalid) return int64_t(i + j);
            }
            byte = uint8_t(byte | (c << (6 - 2 * j)));
        }
        out[i / 4] = byte;
    }
    return -1;
}

void unpack_2bit(const uint8_t* packed, std::size_t n, uint8_t* out) {
    static const char kBases[4] = {'A', 'C', 'G', 'T'};
    for (std::size_t i = 0; i < n; ++i) out[i] = uint8_t(kBases[(packed[i / 4] >> (6 - 2 * (i % 4))) & 3]);
}

void decode_kmers(const uint64_t* codes, std::size_t n, int k, uint8_t* out) {
    static const uint8_t kBases[4] = {'A', 'C', 'G', 'T'};
    const std::size_t words = k > 32 ? 2 : 1;
    parallel_for(n, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            uint8_t* o = out + i * std::size_t(k);
            uint64_t lo = codes[i * words + words - 1];
            for (int j = k - 1, left = std::min(k, 32); left > 0; --j, --left, lo >>= 2) o[j] = kBases[lo & 3];
            if (k > 32) {
                uint64_t hi = codes[i * 2];
                for (int j = k - 33; j >= 0; --j, hi >>= 2) o[j] = kBases[hi & 3];
            }
        }
    }, 1 << 14);
}

void kmer_counts(const uint8_t* data, const int64_t* offsets, std::size_t n, const KmerSpec& spec,
                 int64_t* counts) {
    check_spec(spec);
    const bool avx2 = simd_level() >= Simd::AVX2;
    // One scan of the chunk's bytes for invalid ones: reads without any get their count from their
    // length, only the others are split into runs.
    parallel_for_weighted(offsets, n, [&](std::size_t begin, std::size_t end) {
        const int64_t stop = offsets[end];
        std::size_t r = begin;
        int64_t i = offsets[begin];
        for (;;) {
            const int64_t bad = avx2 ? detail::valid_run_end_avx2(data, i, stop) : run_end_scalar(data, i, stop);
            for (; r < end && offsets[r + 1] <= bad; ++r) counts[r] = run_count(0, offsets[r + 1] - offsets[r], spec.k, spec.stride);
            if (r == end) break;
            int64_t c = 0;  // read r holds the invalid base at `bad`
            for_each_run(data + offsets[r], offsets[r + 1] - offsets[r], spec.k, avx2,
                         [&](int64_t a, int64_t b) { c += run_count(a, b, spec.k, spec.stride); });
            counts[r] = c;
            i = offsets[++r];
        }
    });
}

void kmer_codes(const uint8_t* data, const int64_t* offsets, std::size_t n, const KmerSpec& spec,
                const int64_t* out_offsets, uint64_t* codes, int32_t* positions) {
    check_spec(spec);
    const bool avx2 = simd_level() >= Simd::AVX2;
    const int words = spec.words();
    // Short reads go through the AVX2 kernel as one stream per group (no per-read set-up); long reads
    // run by run, which lets their output go out with non-temporal stores.
    const bool stream = avx2 && spec.stride == 1 && spec.k >= 4 && spec.k <= 32;
    constexpr int64_t kLongRead = int64_t(1) << 16;
    parallel_for_weighted(offsets, n, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end;) {
            if (stream && offsets[r + 1] - offsets[r] < kLongRead) {
                const std::size_t first = r;
                while (r < end && offsets[r + 1] - offsets[r] < kLongRead) ++r;
                detail::kmer_stream_avx2(data, offsets + first, r - first, spec.k, spec.strand,
                                         codes + out_offsets[first], positions ? positions + out_offsets[first] : nullptr,
                                         std::size_t(out_offsets[r] - out_offsets[first]));
                continue;
            }
            const uint8_t* s = data + offsets[r];
            const int64_t len = offsets[r + 1] - offsets[r];
            uint64_t* out = codes + out_offsets[r] * words;
            int32_t* pos = positions ? positions + out_offsets[r] : nullptr;
            const int64_t expected = out_offsets[r + 1] - out_offsets[r];
            if (words == 1) read_codes_any<uint64_t>(s, len, spec, avx2, expected, out, pos);
            else read_codes_any<u128>(s, len, spec, avx2, expected, out, pos);
            ++r;
        }
    });
}

}  // namespace kmerx
