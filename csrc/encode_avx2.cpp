// AVX2 k-mer kernels (compiled with -mavx2 -mbmi2; called only when simd_level() >= AVX2).
//
// Within an all-valid run, one ymm holds the codes of 4 consecutive k-mers (lane j = k-mer i + j) and
// advances by 4 bases per step:
//   fwd(i + 4) = ((fwd(i) << 8) | P[i + k]) & mask,   P[m] = b[m]b[m+1]b[m+2]b[m+3] (b[m] high bits)
//   rc(i + 4)  = (rc(i) >> 8) | (Q[m] << (2k - 8)),    Q[m] = ~(b[m+3]b[m+2]b[m+1]b[m]) (complements)
// so each lane carries a one-op-deep dependency chain and the packed bytes P, Q are computed 32 at a time
// from pshufb-translated bases in an L1-sized block.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "kmerx/encode.hpp"

namespace kmerx::detail {

namespace {

// Indexed by the low nibble: A/a = 1, C/c = 3, G/g = 7, T/t = 4.
inline __m256i expect_table() {
    return _mm256_setr_epi8(0, 'a', 0, 'c', 't', 0, 0, 'g', 0, 0, 0, 0, 0, 0, 0, 0,  //
                            0, 'a', 0, 'c', 't', 0, 0, 'g', 0, 0, 0, 0, 0, 0, 0, 0);
}
inline __m256i code_table() {
    return _mm256_setr_epi8(0, 0, 0, 1, 3, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,  //
                            0, 0, 0, 1, 3, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0);
}

constexpr int kBlock = 2048;  // packed bytes per block (multiple of 4)

// codes[x] = code of s[x] for x in [0, n); s is all valid.
inline void translate(const uint8_t* s, int64_t n, uint8_t* codes) {
    const __m256i lut = code_table();
    int64_t x = 0;
    for (; x + 32 <= n; x += 32) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + x));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + x), _mm256_shuffle_epi8(lut, v));
    }
    if (x < n && n >= 32) {  // the tail as one overlapping vector
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + n - 32));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + n - 32), _mm256_shuffle_epi8(lut, v));
        return;
    }
    for (; x < n; ++x) codes[x] = kBaseCode.v[s[x]];
}

// P[x], Q[x] for x in [0, n) from codes[0, n + 3); codes must be readable (any value) up to n + 34.
inline void pack4(const uint8_t* c, int64_t n, uint8_t* P, uint8_t* Q) {
    const __m256i ones = _mm256_set1_epi8(-1);
    for (int64_t x = 0; x < n; x += 32) {
        const __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + x));
        const __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + x + 1));
        const __m256i c2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + x + 2));
        const __m256i c3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + x + 3));
        // Values are < 4, so 16-bit shifts never carry across bytes.
        const __m256i p = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi16(c0, 6), _mm256_slli_epi16(c1, 4)),
                                          _mm256_or_si256(_mm256_slli_epi16(c2, 2), c3));
        const __m256i q = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi16(c3, 6), _mm256_slli_epi16(c2, 4)),
                                          _mm256_or_si256(_mm256_slli_epi16(c1, 2), c0));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(P + x), p);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(Q + x), _mm256_xor_si256(q, ones));
    }
}

inline __m256i widen4(const uint8_t* p) {
    int32_t w;
    std::memcpy(&w, p, 4);
    return _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(w));
}

// C[x - m] = code of s[x] for x in [m, m + len) inside the run [a, b), 0 outside it (the warm-up
// reads before a, the last vector reads past b; those lanes are never stored).
// At most 3 positions fall before a (the lead of the warm-up) and 3 after b (the last vector), so
// two zeroed vectors around the translated bases cover them plus pack4's 32-byte overrun.
inline void run_codes_block(const uint8_t* s, int64_t a, int64_t b, int64_t m, int64_t len, uint8_t* C) {
    const int64_t lo = std::max(m, a), hi = std::max(lo, std::min(m + len, b));
    const __m256i zero = _mm256_setzero_si256();
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(C), zero);
    translate(s + lo, hi - lo, C + (lo - m));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(C + (hi - m)), zero);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(C + (hi - m) + 32), zero);
}

// All k-mers of the run [a, b) (b - a >= k >= 4). The lanes start zeroed at the virtual k-mer a - K4
// (K4 = k rounded up to 4) and warm up through ceil(k / 4) steps, so short reads need no scalar
// priming; the last partial vector is written with a masked store.
template <Strand S, bool Pos>
std::size_t run_avx2(const uint8_t* s, int64_t a, int64_t b, int k, uint64_t* out, int32_t* pos) {
    const int64_t last = b - k;  // last k-mer start
    const int K4 = (k + 3) & ~3;
    const uint64_t mask = k == 32 ? ~uint64_t(0) : (uint64_t(1) << (2 * k)) - 1;
    const __m256i vmask = _mm256_set1_epi64x(int64_t(mask));
    const __m128i qshift = _mm_cvtsi32_si128(2 * k - 8);
    // k < 32: codes are < 2^62, so a signed compare orders them; k = 32 flips the sign bits first.
    const __m256i sign = _mm256_set1_epi64x(k == 32 ? std::numeric_limits<int64_t>::min() : 0);
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);

    alignas(32) uint8_t C[kBlock + 3 + 64];
    alignas(32) uint8_t P[kBlock + 32];
    alignas(32) uint8_t Q[kBlock + 32];

    __m256i vf = _mm256_setzero_si256(), vr = _mm256_setzero_si256();
    int64_t vstart = a - K4;     // the lanes hold k-mers vstart .. vstart + 3
    int64_t m = vstart + k;      // packed byte the next step consumes
    int64_t steps_left = K4 / 4 + (last - a + 4) / 4 - 1;
    std::size_t n = 0;
    while (steps_left > 0) {
        const int64_t steps = std::min<int64_t>(steps_left, kBlock / 4), len = 4 * steps;
        run_codes_block(s, a, b, m, len + 3, C);
        pack4(C, len, P, Q);
        for (int64_t t = 0; t < len; t += 4) {
            if constexpr (S != Strand::Reverse)
                vf = _mm256_and_si256(_mm256_or_si256(_mm256_slli_epi64(vf, 8), widen4(P + t)), vmask);
            if constexpr (S != Strand::Forward)
                vr = _mm256_or_si256(_mm256_srli_epi64(vr, 8), _mm256_sll_epi64(widen4(Q + t), qshift));
            vstart += 4;
            if (vstart < a) continue;  // warming up
            __m256i v;
            if constexpr (S == Strand::Forward) {
                v = vf;
            } else if constexpr (S == Strand::Reverse) {
                v = vr;
            } else {
                const __m256i gt = _mm256_cmpgt_epi64(_mm256_xor_si256(vf, sign), _mm256_xor_si256(vr, sign));
                v = _mm256_blendv_epi8(vf, vr, gt);
            }
            const __m128i p4 = _mm_add_epi32(_mm_set1_epi32(int32_t(vstart)), lane);
            if (vstart + 3 <= last) {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + n), v);
                if constexpr (Pos) _mm_storeu_si128(reinterpret_cast<__m128i*>(pos + n), p4);
                n += 4;
            } else {  // 1..3 k-mers left: lanes j < rem (masked stores are slow on AMD)
                alignas(32) uint64_t tail[4];
                _mm256_store_si256(reinterpret_cast<__m256i*>(tail), v);
                for (int64_t j = 0; j <= last - vstart; ++j, ++n) {
                    out[n] = tail[j];
                    if constexpr (Pos) pos[n] = int32_t(vstart + j);
                }
            }
        }
        m += len;
        steps_left -= steps;
    }
    return n;
}

template <Strand S>
std::size_t run_pos(const uint8_t* s, int64_t a, int64_t b, int k, uint64_t* out, int32_t* pos) {
    return pos ? run_avx2<S, true>(s, a, b, k, out, pos) : run_avx2<S, false>(s, a, b, k, out, pos);
}

// Bit j set when s[j] (j < 32) is not ACGTacgt. Bytes >= 0x80 look up 0 and never match; others
// must equal their low nibble's lowercase base.
inline uint32_t invalid_mask(const uint8_t* s) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    const __m256i ok = _mm256_cmpeq_epi8(_mm256_or_si256(v, _mm256_set1_epi8(0x20)),
                                         _mm256_shuffle_epi8(expect_table(), v));
    return ~uint32_t(_mm256_movemask_epi8(ok));
}

}  // namespace

std::size_t kmer_run_avx2(const uint8_t* seq, int64_t a, int64_t b, int k, Strand strand, uint64_t* out,
                          int32_t* pos) {
    switch (strand) {
        case Strand::Forward: return run_pos<Strand::Forward>(seq, a, b, k, out, pos);
        case Strand::Reverse: return run_pos<Strand::Reverse>(seq, a, b, k, out, pos);
        case Strand::Canonical: break;
    }
    return run_pos<Strand::Canonical>(seq, a, b, k, out, pos);
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
