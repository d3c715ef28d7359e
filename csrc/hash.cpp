// ntHash 2 on the CPU: scalar kernels, dispatch, threads, minimizers (kmerx/hash.hpp).
#include "kmerx/hash.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "kmerx/common.hpp"

namespace kmerx {
namespace nthash_detail {
namespace {

// ntHash's random seeds (facts from ntHash 2 / btllib), by base code A C G T.
constexpr uint64_t kSeed[4] = {0x3c8bfbb395c60474ULL, 0x3193c18562a02b4cULL, 0x20323ed082572324ULL,
                               0x295549f54be24456ULL};

}  // namespace

uint64_t srol_by(uint64_t x, int64_t d) {
    const unsigned a = static_cast<unsigned>(d % 33), b = static_cast<unsigned>(d % 31);
    const uint64_t m33 = (1ULL << 33) - 1, m31 = (1ULL << 31) - 1;
    uint64_t lo = x & m33, hi = x >> 33;
    if (a) lo = ((lo << a) | (lo >> (33 - a))) & m33;
    if (b) hi = ((hi << b) | (hi >> (31 - b))) & m31;
    return (hi << 33) | lo;
}

Tables make_tables(int64_t k) {
    Tables t{};
    for (int b = 0; b < 4; ++b) {
        t.f_in[b] = kSeed[b];
        t.f_out[b] = srol_by(kSeed[b], k);
        t.r_in[b] = srol_by(kSeed[3 - b], k);
        t.r_out[b] = kSeed[3 - b];
    }
    return t;
}

namespace {

template <Strand S>
void run_strand(const uint8_t* seq, int64_t len, int64_t k, const Tables& tab, uint64_t* out) {
    const Tables t = tab;  // a local copy: stores to out cannot alias it
    const auto pick = [](uint64_t f, uint64_t r) {
        if constexpr (S == Strand::Forward) return f;
        else if constexpr (S == Strand::Reverse) return r;
        else return f + r;
    };
    uint64_t f = 0, r = 0;
    for (int64_t i = 0; i < k; ++i) {  // the first k-mer, one base at a time (nothing leaves yet)
        const uint8_t c = kBaseCode.v[seq[i]];
        f = srol(f) ^ t.f_in[c];
        r = sror(r ^ t.r_in[c]);
    }
    out[0] = pick(f, r);
    for (int64_t i = k; i < len; ++i) {
        const uint8_t c = kBaseCode.v[seq[i]], o = kBaseCode.v[seq[i - k]];
        f = srol(f) ^ t.f_in[c] ^ t.f_out[o];
        r = sror(r ^ t.r_in[c] ^ t.r_out[o]);
        out[i - k + 1] = pick(f, r);
    }
}

}  // namespace

void run_scalar(const uint8_t* seq, int64_t len, int64_t k, const Tables& t, Strand strand, uint64_t* out) {
    switch (strand) {
        case Strand::Forward: return run_strand<Strand::Forward>(seq, len, k, t, out);
        case Strand::Reverse: return run_strand<Strand::Reverse>(seq, len, k, t, out);
        default: return run_strand<Strand::Canonical>(seq, len, k, t, out);
    }
}

int64_t next_invalid_scalar(const uint8_t* s, int64_t from, int64_t to) {
    while (from < to && kBaseCode.v[s[from]] != kInvalidBase) ++from;
    return from;
}

int64_t next_valid(const uint8_t* s, int64_t from, int64_t to) {
    while (from < to && kBaseCode.v[s[from]] == kInvalidBase) ++from;
    return from;
}

}  // namespace nthash_detail

using namespace nthash_detail;

NtHashSpec make_nthash_spec(int64_t k, int64_t num_hashes, const std::string& strand) {
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
    if (num_hashes < 1 || num_hashes > kMaxNumHashes)
        throw std::invalid_argument("num_hashes must be in 1.." + std::to_string(kMaxNumHashes) + ", got " +
                                    std::to_string(num_hashes));
    NtHashSpec spec;
    spec.k = k;
    spec.num_hashes = static_cast<int>(num_hashes);
    spec.strand = strand_from_name(strand);
    return spec;
}

namespace {

using FindFn = int64_t (*)(const uint8_t*, int64_t, int64_t);

FindFn find_invalid() { return simd_level() >= Simd::AVX2 ? next_invalid_avx2 : next_invalid_scalar; }

// Calls fn(start, len) for each maximal all-ACGT run of s[0..n) holding at least one k-mer.
template <class Fn>
void for_each_run(const uint8_t* s, int64_t n, int64_t k, FindFn find, Fn&& fn) {
    int64_t i = 0;
    while (i < n) {
        i = next_valid(s, i, n);
        const int64_t end = find(s, i, n);
        if (end - i >= k) fn(i, end - i);
        i = end;
    }
}

void extend(uint64_t* row, int h, int64_t k) {
    for (int j = 1; j < h; ++j) row[j] = extra_hash(row[0], static_cast<uint64_t>(j), k);
}

}  // namespace

void nthash_counts(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int64_t* counts) {
    const FindFn find = find_invalid();
    parallel_for_weighted(offsets, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r) {
            int64_t c = 0;
            for_each_run(data + offsets[r], offsets[r + 1] - offsets[r], k, find,
                         [&](int64_t, int64_t len) { c += len - k + 1; });
            counts[r] = c;
        }
    });
}

namespace {

// Writes m base hashes from src into rows of h values at values[o * h ...], with the extra hashes.
void emit(const uint64_t* src, int64_t m, int h, int64_t k, uint64_t* values, int64_t o) {
    if (h == 1) {
        std::memcpy(values + o, src, static_cast<std::size_t>(m) * sizeof(uint64_t));
        return;
    }
    for (int64_t j = 0; j < m; ++j) {
        uint64_t* row = values + (o + j) * h;
        row[0] = src[j];
        extend(row, h, k);
    }
}

// Runs shorter than kLongRun k-mers (short reads) are not hashed one by one: consecutive ones, with
// gaps (other reads' Ns, read boundaries) of at most kMaxGap bytes, form one span rolled in a single
// AVX2 call across everything; the windows of the runs are then copied out and the rest dropped.
constexpr int64_t kLongRun = 64;
constexpr int64_t kMaxGap = 64;
constexpr int64_t kMaxSpan = 1 << 15;  // bytes per span: its hashes stay in L2

}  // namespace

namespace {

// Part of a read: the k-mers starting at lo.. whose bases lie in [lo, end) of read r; first slot o.
// Reads longer than 2 * kPieceStarts are cut into pieces so threads share one long chromosome.
struct Piece {
    std::size_t r;
    int64_t lo, end, o;
};
constexpr int64_t kPieceStarts = 1 << 20;

std::vector<Piece> split_reads(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k,
                               const int64_t* out_offsets, FindFn find) {
    std::vector<Piece> pieces;
    std::vector<std::size_t> split;  // indices of pieces whose slot needs counting
    for (std::size_t r = 0; r < n; ++r) {
        const int64_t len = offsets[r + 1] - offsets[r];
        if (len <= 2 * kPieceStarts) {
            pieces.push_back({r, 0, len, out_offsets[r]});
            continue;
        }
        for (int64_t lo = 0; lo < len; lo += kPieceStarts) {
            split.push_back(pieces.size());
            pieces.push_back({r, lo, std::min(len, lo + kPieceStarts + k - 1), 0});
        }
    }
    if (split.empty()) return pieces;
    std::vector<int64_t> counts(split.size());
    parallel_for(split.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) {
            const Piece& p = pieces[split[i]];
            int64_t c = 0;
            for_each_run(data + offsets[p.r] + p.lo, p.end - p.lo, k, find, [&](int64_t, int64_t len) { c += len - k + 1; });
            counts[i] = c;
        }
    });
    for (std::size_t i = 0; i < split.size(); ++i) {
        Piece& p = pieces[split[i]];
        p.o = p.lo == 0 ? out_offsets[p.r] : pieces[split[i] - 1].o + counts[i - 1];
    }
    return pieces;
}

}  // namespace

void nthash(const uint8_t* data, const int64_t* offsets, std::size_t n, const NtHashSpec& spec,
            const int64_t* out_offsets, uint64_t* values, int32_t* positions) {
    const Tables t = make_tables(spec.k);
    const bool avx2 = simd_level() >= Simd::AVX2;
    const FindFn find = find_invalid();
    const int h = spec.num_hashes;
    const int64_t k = spec.k;
    const std::vector<Piece> pieces = split_reads(data, offsets, n, k, out_offsets, find);
    std::vector<int64_t> weight(pieces.size() + 1, 0);  // cumulative bytes, for balancing
    for (std::size_t i = 0; i < pieces.size(); ++i) weight[i + 1] = weight[i] + pieces[i].end - pieces[i].lo;
    parallel_for_weighted(weight.data(), pieces.size(), [&](std::size_t b, std::size_t e) {
        struct Pending {
            int64_t a, m, o;  // first base in data, k-mers, first output slot
        };
        std::vector<Pending> pending;
        std::vector<uint64_t> tmp;
        int64_t span_a = 0, span_b = 0;
        const auto flush = [&] {
            if (pending.empty()) return;
            tmp.resize(static_cast<std::size_t>(span_b - span_a - k + 1));
            run_avx2(data + span_a, span_b - span_a, k, t, spec.strand, tmp.data());
            for (const Pending& p : pending) emit(tmp.data() + (p.a - span_a), p.m, h, k, values, p.o);
            pending.clear();
        };
        for (std::size_t i = b; i < e; ++i) {
            const Piece& piece = pieces[i];
            const int64_t base = offsets[piece.r] + piece.lo;
            const uint8_t* s = data + base;
            int64_t o = piece.o;
            for_each_run(s, piece.end - piece.lo, k, find, [&](int64_t a, int64_t len) {
                const int64_t m = len - k + 1;
                const int64_t at = base + a;
                if (avx2 && m < kLongRun) {
                    if (!pending.empty() && (at - span_b > kMaxGap || at + len - span_a > kMaxSpan)) flush();
                    if (pending.empty()) span_a = at;
                    pending.push_back({at, m, o});
                    span_b = at + len;
                } else if (h == 1) {
                    (avx2 ? run_avx2 : run_scalar)(s + a, len, k, t, spec.strand, values + o);
                } else {
                    tmp.resize(static_cast<std::size_t>(m));
                    (avx2 ? run_avx2 : run_scalar)(s + a, len, k, t, spec.strand, tmp.data());
                    emit(tmp.data(), m, h, k, values, o);
                }
                if (positions)
                    for (int64_t j = 0; j < m; ++j) positions[o + j] = static_cast<int32_t>(piece.lo + a + j);
                o += m;
            });
        }
        flush();
    });
}

void nthash_minimizers(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int64_t w,
                       std::vector<uint64_t>& hashes, std::vector<int32_t>& positions, int64_t* out_offsets) {
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
    if (w < 1) throw std::invalid_argument("w must be >= 1, got " + std::to_string(w));
    const Tables t = make_tables(k);
    std::vector<uint64_t> h;
    std::vector<int64_t> p;
    out_offsets[0] = 0;
    for (std::size_t r = 0; r < n; ++r) {
        const uint8_t* s = data + offsets[r];
        const int64_t len = offsets[r + 1] - offsets[r];
        h.clear();
        p.clear();
        if (len >= k && w <= len - k + 1) {
            for_each_run(s, len, k, next_invalid_scalar, [&](int64_t a, int64_t rl) {
                const std::size_t at = h.size();
                h.resize(at + static_cast<std::size_t>(rl - k + 1));
                run_scalar(s + a, rl, k, t, Strand::Canonical, h.data() + at);
                for (int64_t j = 0; j <= rl - k; ++j) p.push_back(a + j);
            });
        }
        const int64_t m = static_cast<int64_t>(h.size());
        int64_t cur = -1, last_pos = -1;  // cur: index of the current window's minimizer
        for (int64_t i = w - 1; i < m; ++i) {
            const int64_t left = i - w + 1;
            if (cur < left) {  // the minimizer left the window: rescan, rightmost minimum wins
                cur = left;
                for (int64_t j = left + 1; j <= i; ++j)
                    if (h[j] <= h[cur]) cur = j;
            } else if (h[i] <= h[cur]) {
                cur = i;
            }
            if (p[cur] > last_pos && h[cur] != std::numeric_limits<uint64_t>::max()) {
                last_pos = p[cur];
                hashes.push_back(h[cur]);
                positions.push_back(static_cast<int32_t>(p[cur]));
            }
        }
        out_offsets[r + 1] = static_cast<int64_t>(hashes.size());
    }
}

}  // namespace kmerx
