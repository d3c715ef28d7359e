// AVX2 k-mer kernels (compiled with -mavx2 -mbmi2; called only when simd_level() >= AVX2).
//
// Within an all-valid run, one ymm holds the codes of 4 consecutive k-mers (lane j = k-mer i + j) and
// advances by 4 bases per step:
//   fwd(i + 4) = ((fwd(i) << 8) | P[i + k]) & mask,   P[m] = b[m]b[m+1]b[m+2]b[m+3] (b[m] high bits)
//   rc(i + 4)  = (rc(i) >> 8) | (Q[m] << (2k - 8)),    Q[m] = ~(b[m+3]b[m+2]b[m+1]b[m]) (complements)
// so each lane carries a one-op-deep dependency chain and the packed bytes P, Q are computed 32 at a time
// straight from the sequence (pshufb translation) into an L1-sized block.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "kmerx/encode.hpp"

namespace kmerx::detail {

namespace {

using u128 = unsigned __int128;

// Indexed by the low nibble: A/a = 1, C/c = 3, G/g = 7, T/t = 4.
inline __m256i expect_table() {
    return _mm256_setr_epi8(0, 'a', 0, 'c', 't', 0, 0, 'g', 0, 0, 0, 0, 0, 0, 0, 0,  //
                            0, 'a', 0, 'c', 't', 0, 0, 'g', 0, 0, 0, 0, 0, 0, 0, 0);
}
inline __m256i code_table() {
    return _mm256_setr_epi8(0, 0, 0, 1, 3, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,  //
                            0, 0, 0, 1, 3, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0);
}

constexpr int kBlock = 2048;  // packed bytes per block (multiple of 32)

// P, Q of 32 consecutive positions from their four shifted code vectors. Codes are < 4, so 16-bit
// shifts never carry across bytes.
inline void pack32(__m256i c0, __m256i c1, __m256i c2, __m256i c3, uint8_t* P, uint8_t* Q) {
    const __m256i p = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi16(c0, 6), _mm256_slli_epi16(c1, 4)),
                                      _mm256_or_si256(_mm256_slli_epi16(c2, 2), c3));
    const __m256i q = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi16(c3, 6), _mm256_slli_epi16(c2, 4)),
                                      _mm256_or_si256(_mm256_slli_epi16(c1, 2), c0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(P), p);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(Q), _mm256_xor_si256(q, _mm256_set1_epi8(-1)));
}

// P[j], Q[j] for j in [0, len) (len a multiple of 32) at positions m + j >= a of the run [a, b).
// Inside the run the shifted code vectors are translated straight from the sequence (loads of
// bytes the CPU has not just stored, so no store-forwarding stalls); the chunk reaching past b goes
// through a zero-padded copy (positions >= b feed only lanes that are never stored).
inline void pack_block(const uint8_t* s, int64_t b, int64_t m, int64_t len, uint8_t* P, uint8_t* Q) {
    const __m256i lut = code_table();
    auto tr = [&](const uint8_t* p) {
        return _mm256_shuffle_epi8(lut, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    };
    for (int64_t x = 0; x < len; x += 32) {
        const int64_t p0 = m + x;
        if (p0 + 35 <= b) {
            pack32(tr(s + p0), tr(s + p0 + 1), tr(s + p0 + 2), tr(s + p0 + 3), P + x, Q + x);
            continue;
        }
        if (b - 35 >= m) {  // slide the chunk back to end at b: it rewrites equal values, then zeros
            const int64_t p1 = b - 35, at = x - (p0 - p1);
            pack32(tr(s + p1), tr(s + p1 + 1), tr(s + p1 + 2), tr(s + p1 + 3), P + at, Q + at);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(P + at + 32), _mm256_setzero_si256());
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(Q + at + 32), _mm256_setzero_si256());
            continue;
        }
        // tmp[32 + i] = code at p0 + i for p0 + i < b, else 0.
        alignas(32) uint8_t tmp[128];
        const __m256i zero = _mm256_setzero_si256();
        for (int i = 32; i < 128; i += 32) _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + i), zero);
        const int64_t have = std::max<int64_t>(0, b - p0);  // < 35
        if (b >= 32) {  // the 32 bases ending at b, one vector (the read's first 32 bytes are readable)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(tmp + have), tr(s + b - 32));
            if (have > 32) tmp[32] = kBaseCode.v[s[p0]], tmp[33] = kBaseCode.v[s[p0 + 1]];
        } else {
            for (int64_t i = 0; i < have; ++i) tmp[32 + i] = kBaseCode.v[s[p0 + i]];
        }
        auto ld = [&](int i) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tmp + 32 + i)); };
        pack32(ld(0), ld(1), ld(2), ld(3), P + x, Q + x);
    }
}

inline __m256i widen4(const uint8_t* p) {
    int32_t w;
    std::memcpy(&w, p, 4);
    return _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(w));
}

// Lane j = bytes p[r + j + 4t] for t = 0..6, little-endian: the bytes 4 steps apart that one lane
// consumes (r + j + 24 < 32). p is loaded aligned, as it was stored: an unaligned reload of freshly
// stored bytes would stall on store forwarding.
inline __m256i gather_lanes(const uint8_t* p, int r) {
    __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_permute2x128_si256(v, v, 0x81);  // v's high half, low; zeros above
    switch (r) {  // v >> 8r bits across the two halves
        case 1: v = _mm256_alignr_epi8(hi, v, 1); break;
        case 2: v = _mm256_alignr_epi8(hi, v, 2); break;
        case 3: v = _mm256_alignr_epi8(hi, v, 3); break;
        default: break;
    }
    const __m256i idx = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                         0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, idx), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Bit j set when s[j] (j < 32) is not ACGTacgt. Bytes >= 0x80 look up 0 and never match; others
// must equal their low nibble's lowercase base.
inline uint32_t invalid_mask(const uint8_t* s) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    const __m256i ok = _mm256_cmpeq_epi8(_mm256_or_si256(v, _mm256_set1_epi8(0x20)),
                                         _mm256_shuffle_epi8(expect_table(), v));
    return ~uint32_t(_mm256_movemask_epi8(ok));
}

// Bits of positions x .. x + 63: set for a non-ACGT base or a position >= end.
inline uint64_t invalid64(const uint8_t* s, int64_t x, int64_t end) {
    if (x + 64 <= end) return uint64_t(invalid_mask(s + x)) | uint64_t(invalid_mask(s + x + 32)) << 32;
    uint64_t bad = 0;
    for (int i = 0; i < 64; ++i)
        if (x + i >= end || kBaseCode.v[s[x + i]] == kInvalidBase) bad |= uint64_t(1) << i;
    return bad;
}

constexpr int kMaxWords = kBlock / 64 + 1;

// valid[w] bit i: the k-mer starting at m + 64w + i is emitted, i.e. its k bases are ACGT and lie in
// one read. A window breaks on an invalid base anywhere in it or on a read start after its first
// base, so it is valid when neither occurs in the k - 1 positions after its start (an OR-smear of
// the break bits over k - 1 bits) and its first base is ACGT. Read starts before m are skipped in
// `cur` (m only grows).
inline void valid_bits(const uint8_t* s, int64_t m, int words, const int64_t* starts, std::size_t nstarts,
                       std::size_t& cur, int64_t end, int k, uint64_t* valid) {
    uint64_t inv[kMaxWords + 1], brk[kMaxWords + 1];
    for (int w = 0; w <= words; ++w) brk[w] = inv[w] = invalid64(s, m + 64 * w, end);
    while (cur < nstarts && starts[cur] < m) ++cur;
    const int64_t hi = m + 64 * (words + 1);
    for (std::size_t c = cur; c < nstarts && starts[c] < hi; ++c) {
        const int64_t d = starts[c] - m;
        brk[d >> 6] |= uint64_t(1) << (d & 63);
    }
    const int span = k - 1;
    for (int w = 0; w < words; ++w) {
        u128 t = (u128(brk[w + 1]) << 64 | brk[w]) >> 1;
        int cov = 1;  // t bit i = OR of the break bits at i + 1 .. i + cov
        for (; 2 * cov <= span; cov *= 2) t |= t >> cov;
        t |= t >> (span - cov);
        valid[w] = ~(uint64_t(t) | inv[w]);
    }
}

// vpermd indices moving the 64-bit lanes picked by a 4-bit mask to the front (left-packing).
struct PackTable {
    alignas(32) int32_t codes[16][8];
    alignas(16) int32_t pos[16][4];
    constexpr PackTable() : codes(), pos() {
        for (int m = 0; m < 16; ++m) {
            int n = 0;
            for (int j = 0; j < 4; ++j)
                if (m >> j & 1) codes[m][2 * n] = 2 * j, codes[m][2 * n + 1] = 2 * j + 1, pos[m][n++] = j;
        }
    }
};
inline constexpr PackTable kPack{};

// The k-mers of reads [0, nreads) of offsets, as one stream of bases s[a, b) (a = offsets[0],
// b = offsets[nreads]): every window is computed and the invalid ones (crossing a read boundary or a
// non-ACGT base) are dropped by left-packing each vector of 4, so there is no per-read or per-run
// set-up. k = 4q + r; step g consumes the packed bytes at a + r + 4g; the first q - 1 steps (the
// warm-up before k-mer a) are done at once from the packed bytes. cap: the number of k-mers emitted;
// stores never reach past out[cap] (another thread may own what follows).
// Masked = false is the single-run form: offsets = {a, b} delimit one all-valid run of a read that
// starts at s, so no window is dropped (cap = b - a - k + 1), positions are offsets from s, and with
// Stream full vectors go out as non-temporal stores (the caller aligns out).
template <Strand S, bool Pos, bool Masked, bool Stream>
std::size_t stream_avx2(const uint8_t* s, const int64_t* offsets, std::size_t nreads, int k, uint64_t* out,
                        int32_t* pos, std::size_t cap) {
    const int64_t a = offsets[0], b = offsets[nreads];
    const int64_t last = b - k;  // last k-mer start
    if (last < a || cap == 0) return 0;
    const int q = k / 4, r = k % 4, qq = q - 1;
    const uint64_t mask = k == 32 ? ~uint64_t(0) : (uint64_t(1) << (2 * k)) - 1;
    const __m256i vmask = _mm256_set1_epi64x(int64_t(mask));
    const __m128i qshift = _mm_cvtsi32_si128(2 * k - 8);
    // k < 32: codes are < 2^62, so a signed compare orders them; k = 32 flips the sign bits first.
    const __m256i sign = _mm256_set1_epi64x(k == 32 ? std::numeric_limits<int64_t>::min() : 0);
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);

    alignas(32) uint8_t P[kBlock + 64];
    alignas(32) uint8_t Q[kBlock + 64];
    uint64_t valid[Masked ? kMaxWords : 1];
    std::size_t cur = 0, rd = 0;  // read starts cursor (valid_bits); read of the last emitted k-mer
    __m256i vf = _mm256_setzero_si256(), vr = _mm256_setzero_si256();
    const int64_t total = q + (last - a + 4) / 4 - 1;  // steps
    std::size_t n = 0;
    for (int64_t g0 = 0; g0 < total;) {
        const int64_t g1 = std::min<int64_t>(total, g0 + kBlock / 4 - 8);
        pack_block(s, b, a + 4 * g0, (4 * (g1 - g0) + 3 + 31) & ~int64_t(31), P, Q);
        int64_t g = g0;
        if (g0 == 0) {
            // fwd: the first r bases of k-mer a + j (top of P[a + j]) then qq packed bytes, big-endian;
            // rc: their complements (low bits of Q[a + j]) then qq bytes of Q, little-endian.
            const __m256i bswap = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,  //
                                                   7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
            const __m256i f0 = _mm256_srl_epi64(widen4(P), _mm_cvtsi32_si128(8 - 2 * r));
            const __m256i fb = _mm256_srl_epi64(_mm256_shuffle_epi8(gather_lanes(P, r), bswap),
                                                _mm_cvtsi32_si128(64 - 8 * qq));
            vf = _mm256_or_si256(_mm256_sll_epi64(f0, _mm_cvtsi32_si128(8 * qq)), fb);
            const __m256i r0 = _mm256_and_si256(widen4(Q), _mm256_set1_epi64x((int64_t(1) << (2 * r)) - 1));
            const __m256i rb = _mm256_and_si256(gather_lanes(Q, r), _mm256_set1_epi64x((int64_t(1) << (8 * qq)) - 1));
            vr = _mm256_or_si256(_mm256_slli_epi64(r0, 8), _mm256_sll_epi64(rb, _mm_cvtsi32_si128(2 * r + 8)));
            g = qq;
        }
        const int64_t m = a + 4 * (g - qq);  // first k-mer of this block's steps
        if constexpr (Masked) valid_bits(s, m, int((4 * (g1 - g) + 63) / 64), offsets + 1, nreads, cur, b, k, valid);
        for (; g < g1; ++g) {
            const int64_t t = r + 4 * (g - g0);
            if constexpr (S != Strand::Reverse)
                vf = _mm256_and_si256(_mm256_or_si256(_mm256_slli_epi64(vf, 8), widen4(P + t)), vmask);
            if constexpr (S != Strand::Forward)
                vr = _mm256_or_si256(_mm256_srli_epi64(vr, 8), _mm256_sll_epi64(widen4(Q + t), qshift));
            const int64_t i = 4 * (g - qq) - (m - a);  // lanes hold k-mers m + i .. m + i + 3
            const unsigned keep = Masked ? unsigned(valid[i >> 6] >> (i & 63)) & 15 : 15;
            if (!keep) continue;
            __m256i v;
            if constexpr (S == Strand::Forward) {
                v = vf;
            } else if constexpr (S == Strand::Reverse) {
                v = vr;
            } else {
                const __m256i gt = _mm256_cmpgt_epi64(_mm256_xor_si256(vf, sign), _mm256_xor_si256(vr, sign));
                v = _mm256_blendv_epi8(vf, vr, gt);
            }
            if constexpr (Masked)
                v = _mm256_permutevar8x32_epi32(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(kPack.codes[keep])));
            __m128i p = _mm_setzero_si128();
            if constexpr (Pos && !Masked) {
                p = _mm_add_epi32(_mm_set1_epi32(int32_t(m + i)), lane);
            } else if constexpr (Pos) {
                // The kept k-mers of one vector lie in one read: k >= 4 puts k - 1 >= 3 dropped windows
                // between two reads' k-mers.
                const int64_t first = m + i + __builtin_ctz(keep);
                while (offsets[rd + 1] <= first) ++rd;
                p = _mm_add_epi32(_mm_set1_epi32(int32_t(m + i - offsets[rd])), lane);
                p = _mm_castps_si128(_mm_permutevar_ps(
                    _mm_castsi128_ps(p), _mm_load_si128(reinterpret_cast<const __m128i*>(kPack.pos[keep]))));
            }
            const int kept = Masked ? __builtin_popcount(keep) : int(std::min<std::size_t>(4, cap - n));
            if (n + 4 <= cap) {  // lanes past the kept ones are overwritten by the next store
                // Within a long run n advances by 4, so its alignment (and the store kind) stays put.
                if (Stream && keep == 15 && reinterpret_cast<uintptr_t>(out + n) % 32 == 0)
                    _mm256_stream_si256(reinterpret_cast<__m256i*>(out + n), v);
                else
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + n), v);
                if constexpr (Pos) _mm_storeu_si128(reinterpret_cast<__m128i*>(pos + n), p);
            } else {  // the last 1..3 k-mers
                alignas(32) uint64_t tc[4];
                alignas(16) int32_t tp[4];
                _mm256_store_si256(reinterpret_cast<__m256i*>(tc), v);
                _mm_store_si128(reinterpret_cast<__m128i*>(tp), p);
                for (int j = 0; j < kept; ++j) {
                    out[n + j] = tc[j];
                    if constexpr (Pos) pos[n + j] = tp[j];
                }
            }
            n += std::size_t(kept);
        }
        g0 = g1;
    }
    if constexpr (Stream) _mm_sfence();
    return n;
}

// Runs with at least this many k-mers write codes with non-temporal stores: an output far larger
// than the caches would otherwise be read into them before each write, doubling memory traffic.
constexpr int64_t kStreamKmers = int64_t(1) << 16;

template <Strand S, bool Pos>
std::size_t run_avx2(const uint8_t* s, int64_t a, int64_t b, int k, uint64_t* out, int32_t* pos) {
    if (b - a - k + 1 < kStreamKmers) {
        const int64_t run[2] = {a, b};
        return stream_avx2<S, Pos, false, false>(s, run, 1, k, out, pos, std::size_t(b - a - k + 1));
    }
    // Streaming stores need 32-byte alignment: the first d k-mers go scalar, the rest start aligned.
    const int64_t d = int64_t((32 - reinterpret_cast<uintptr_t>(out) % 32) % 32 / 8);
    const uint64_t mask = k == 32 ? ~uint64_t(0) : (uint64_t(1) << (2 * k)) - 1;
    uint64_t f = 0, rc = 0;
    for (int64_t i = a; i < a + k - 1 + d; ++i) {
        const uint64_t c = kBaseCode.v[s[i]];
        f = ((f << 2) | c) & mask;
        rc = (rc >> 2) | ((3 - c) << (2 * k - 2));
        const int64_t p = i - k + 1;
        if (p < a) continue;
        out[p - a] = S == Strand::Forward ? f : S == Strand::Reverse ? rc : std::min(f, rc);
        if constexpr (Pos) pos[p - a] = int32_t(p);
    }
    const int64_t run[2] = {a + d, b};
    return std::size_t(d) + stream_avx2<S, Pos, false, true>(s, run, 1, k, out + d, Pos ? pos + d : nullptr,
                                                             std::size_t(b - a - d - k + 1));
}

template <Strand S>
std::size_t dispatch_run(const uint8_t* s, int64_t a, int64_t b, int k, uint64_t* out, int32_t* pos) {
    return pos ? run_avx2<S, true>(s, a, b, k, out, pos) : run_avx2<S, false>(s, a, b, k, out, pos);
}

template <Strand S>
std::size_t dispatch_stream(const uint8_t* s, const int64_t* offsets, std::size_t nreads, int k, uint64_t* out,
                            int32_t* pos, std::size_t cap) {
    return pos ? stream_avx2<S, true, true, false>(s, offsets, nreads, k, out, pos, cap)
               : stream_avx2<S, false, true, false>(s, offsets, nreads, k, out, pos, cap);
}

}  // namespace

std::size_t kmer_run_avx2(const uint8_t* seq, int64_t a, int64_t b, int k, Strand strand, uint64_t* out,
                          int32_t* pos) {
    switch (strand) {
        case Strand::Forward: return dispatch_run<Strand::Forward>(seq, a, b, k, out, pos);
        case Strand::Reverse: return dispatch_run<Strand::Reverse>(seq, a, b, k, out, pos);
        case Strand::Canonical: break;
    }
    return dispatch_run<Strand::Canonical>(seq, a, b, k, out, pos);
}

std::size_t kmer_stream_avx2(const uint8_t* data, const int64_t* offsets, std::size_t nreads, int k,
                             Strand strand, uint64_t* out, int32_t* pos, std::size_t cap) {
    switch (strand) {
        case Strand::Forward: return dispatch_stream<Strand::Forward>(data, offsets, nreads, k, out, pos, cap);
        case Strand::Reverse: return dispatch_stream<Strand::Reverse>(data, offsets, nreads, k, out, pos, cap);
        case Strand::Canonical: break;
    }
    return dispatch_stream<Strand::Canonical>(data, offsets, nreads, k, out, pos, cap);
}

int64_t valid_run_end_avx2(const uint8_t* s, int64_t i, int64_t n) {
    for (; i + 32 <= n; i += 32)
        if (const uint32_t bad = invalid_mask(s + i)) return i + int64_t(__builtin_ctz(bad));
    if (i < n && n >= 32) {  // the tail as one overlapping vector ending at n
        const uint32_t bad = invalid_mask(s + n - 32) >> (32 - (n - i));
        return bad ? i + int64_t(__builtin_ctz(bad)) : n;
    }
    while (i < n && kBaseCode.v[s[i]] != kInvalidBase) ++i;
    return i;
}

}  // namespace kmerx::detail
