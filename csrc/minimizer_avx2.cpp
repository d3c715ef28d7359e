// AVX2 parts of the minimizer steady-state paths (compiled with -mavx2; called only when
// simd_level() >= AVX2): keys four k-mers per step (bit-identical to detail::minimizer_keys), and
// the fast blocks' keys, sliding-window minima and events (csrc/minimizer.cpp, fast_blocks).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kmerx/minimizer.hpp"

namespace kmerx::detail {

namespace {

// hash64 on four lanes; the multiplications by 265 and 21 are shift-adds (AVX2 has no 64-bit mullo).
inline __m256i hash4(__m256i x, __m256i mask) {
    x = _mm256_and_si256(_mm256_add_epi64(_mm256_xor_si256(x, _mm256_set1_epi64x(-1)), _mm256_slli_epi64(x, 21)), mask);
    x = _mm256_xor_si256(x, _mm256_srli_epi64(x, 24));
    x = _mm256_and_si256(_mm256_add_epi64(_mm256_add_epi64(x, _mm256_slli_epi64(x, 3)), _mm256_slli_epi64(x, 8)), mask);
    x = _mm256_xor_si256(x, _mm256_srli_epi64(x, 14));
    x = _mm256_and_si256(_mm256_add_epi64(_mm256_add_epi64(x, _mm256_slli_epi64(x, 2)), _mm256_slli_epi64(x, 4)), mask);
    x = _mm256_xor_si256(x, _mm256_srli_epi64(x, 28));
    return _mm256_and_si256(_mm256_add_epi64(x, _mm256_slli_epi64(x, 31)), mask);
}

}  // namespace

void minimizer_keys_avx2(const uint64_t* fwd, const uint64_t* rev, int n, int k, uint32_t first_end,
                         MinimizerSlot* out) {
    const __m256i mask = _mm256_set1_epi64x(int64_t((uint64_t(1) << (2 * k)) - 1));
    const __m256i span = _mm256_set1_epi64x(k);
    const __m256i pal = _mm256_set1_epi64x(int64_t(kMinimizerPalindrome));
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i tag = _mm256_slli_epi64(_mm256_add_epi64(_mm256_set1_epi64x(first_end), _mm256_setr_epi64x(0, 1, 2, 3)), 1);
    const __m256i step = _mm256_set1_epi64x(8);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const __m256i f = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(fwd + j));
        const __m256i r = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rev + j));
        const __m256i z = _mm256_cmpgt_epi64(f, r);  // codes < 2^56: the signed compare is exact
        const __m256i h = hash4(_mm256_blendv_epi8(f, r, z), mask);
        const __m256i key = _mm256_blendv_epi8(_mm256_or_si256(_mm256_slli_epi64(h, 8), span), pal, _mm256_cmpeq_epi64(f, r));
        // Tags fit 32 bits (end < 2^31), so each tag lane's high half is the slot's zero padding.
        const __m256i t = _mm256_and_si256(_mm256_or_si256(tag, _mm256_and_si256(z, one)), _mm256_set1_epi64x(0xffffffff));
        const __m256i lo = _mm256_unpacklo_epi64(key, t);  // k0 t0 k2 t2
        const __m256i hi = _mm256_unpackhi_epi64(key, t);  // k1 t1 k3 t3
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j + 2), _mm256_permute2x128_si256(lo, hi, 0x31));
        tag = _mm256_add_epi64(tag, step);
    }
    if (j < n) minimizer_keys(fwd + j, rev + j, n - j, k, first_end + uint32_t(j), out + j);
}

}  // namespace kmerx::detail

namespace kmerx::detail {

namespace {
inline __m256i min64(__m256i a, __m256i b) { return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b)); }

// Columns of the 4x4 matrix of 64-bit rows r0..r3.
inline void transpose4(__m256i& r0, __m256i& r1, __m256i& r2, __m256i& r3) {
    const __m256i a = _mm256_unpacklo_epi64(r0, r1), b = _mm256_unpackhi_epi64(r0, r1);
    const __m256i c = _mm256_unpacklo_epi64(r2, r3), d = _mm256_unpackhi_epi64(r2, r3);
    r0 = _mm256_permute2x128_si256(a, c, 0x20);
    r1 = _mm256_permute2x128_si256(b, d, 0x20);
    r2 = _mm256_permute2x128_si256(a, c, 0x31);
    r3 = _mm256_permute2x128_si256(b, d, 0x31);
}
}  // namespace

// Lane t rolls the codes of k-mers [t * L, (t + 1) * L) (L = m / 4), so the four chains are
// independent; rows of four steps are transposed back into sequence order.
bool minimizer_fast_keys_avx2(const uint8_t* codes, int m, int k, int first_idx, int64_t* kt, uint64_t* zbits) {
    const int L = m / 4;
    const __m256i mask = _mm256_set1_epi64x(int64_t((uint64_t(1) << (2 * k)) - 1));
    const __m256i three = _mm256_set1_epi64x(3);
    const __m128i sh = _mm_cvtsi32_si128(2 * (k - 1));
    const __m256i sign = _mm256_set1_epi64x(int64_t(uint64_t(1) << 63));
    const __m256i one = _mm256_set1_epi64x(1);
    __m256i fwd = _mm256_setzero_si256(), rev = _mm256_setzero_si256(), pal = _mm256_setzero_si256();
    for (int u = 0; u + 1 < k; ++u) {
        const __m256i c = _mm256_setr_epi64x(codes[u], codes[L + u], codes[2 * L + u], codes[3 * L + u]);
        fwd = _mm256_and_si256(_mm256_or_si256(_mm256_slli_epi64(fwd, 2), c), mask);
        rev = _mm256_or_si256(_mm256_srli_epi64(rev, 2), _mm256_sll_epi64(_mm256_xor_si256(c, three), sh));
    }
    __m256i idx = _mm256_setr_epi64x(255 - first_idx, 255 - first_idx - L, 255 - first_idx - 2 * L, 255 - first_idx - 3 * L);
    alignas(32) int64_t keys[4 * 60];
    alignas(32) int64_t zs[4 * 60];
    const uint8_t* p = codes + k - 1;
    for (int s0 = 0; s0 < L; s0 += 8) {
        uint64_t b[4];
        for (int t = 0; t < 4; ++t) std::memcpy(&b[t], p + t * L + s0, 8);
        __m256i v = _mm256_setr_epi64x(int64_t(b[0]), int64_t(b[1]), int64_t(b[2]), int64_t(b[3]));
        const int e = std::min(8, L - s0);
        for (int d = 0; d < e; ++d, v = _mm256_srli_epi64(v, 8)) {
            const __m256i c = _mm256_and_si256(v, three);
            fwd = _mm256_and_si256(_mm256_or_si256(_mm256_slli_epi64(fwd, 2), c), mask);
            rev = _mm256_or_si256(_mm256_srli_epi64(rev, 2), _mm256_sll_epi64(_mm256_xor_si256(c, three), sh));
            const __m256i z = _mm256_cmpgt_epi64(fwd, rev);  // codes < 2^56
            pal = _mm256_or_si256(pal, _mm256_cmpeq_epi64(fwd, rev));
            const __m256i h = hash4(_mm256_blendv_epi8(fwd, rev, z), mask);
            _mm256_store_si256(reinterpret_cast<__m256i*>(keys + 4 * (s0 + d)),
                               _mm256_xor_si256(_mm256_or_si256(_mm256_slli_epi64(h, 8), idx), sign));
            _mm256_store_si256(reinterpret_cast<__m256i*>(zs + 4 * (s0 + d)), z);
            idx = _mm256_sub_epi64(idx, one);
        }
    }
    if (!_mm256_testz_si256(pal, pal)) return false;
    zbits[0] = zbits[1] = zbits[2] = zbits[3] = 0;
    for (int s = 0; s < L; s += 4) {
        auto row = [&](const int64_t* a, int j) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(a + 4 * (s + j))); };
        __m256i k0 = row(keys, 0), k1 = row(keys, 1), k2 = row(keys, 2), k3 = row(keys, 3);
        __m256i z0 = row(zs, 0), z1 = row(zs, 1), z2 = row(zs, 2), z3 = row(zs, 3);
        transpose4(k0, k1, k2, k3);
        transpose4(z0, z1, z2, z3);
        const __m256i ks[4] = {k0, k1, k2, k3}, zz[4] = {z0, z1, z2, z3};
        for (int t = 0; t < 4; ++t) {
            const int r = t * L + s;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(kt + r), ks[t]);
            zbits[r >> 6] |= uint64_t(_mm256_movemask_pd(_mm256_castsi256_pd(zz[t]))) << (r & 63);
        }
    }
    return true;
}

// Doubling: after the pass with shift d, a[t] is the minimum of 2d entries ending at t; a last pass
// with shift w - d covers exactly w. Descending, so each pass reads the previous pass's values.
void window_min_avx2(int64_t* a, int n, int w) {
    auto pass = [&](int d) {
        int t = n - 4;
        for (; t >= d; t -= 4) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t));
            const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t - d));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + t), min64(x, y));
        }
        for (t += 3; t >= d; --t) a[t] = std::min(a[t], a[t - d]);
    };
    int d = 1;
    if (w >= 4) {  // the first two doublings in one pass
        int t = n - 4;
        for (; t >= 3; t -= 4) {
            const auto at = [&](int j) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + j)); };
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + t), min64(min64(at(t), at(t - 1)), min64(at(t - 2), at(t - 3))));
        }
        for (t += 3; t >= 3; --t) a[t] = std::min(std::min(a[t], a[t - 1]), std::min(a[t - 2], a[t - 3]));
        d = 4;
    }
    for (; 2 * d <= w; d *= 2) pass(d);
    if (d < w) pass(w - d);
}

}  // namespace kmerx::detail

namespace kmerx::detail {

bool acgt_codes_avx2(const uint8_t* s, int n, uint8_t* codes) {
    // (c >> 1) & 3 maps A C G T (either case) to 0 1 3 2; x ^ (x >> 1) makes that 0 1 2 3.
    const __m256i lower = _mm256_set1_epi8(0x20), three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    const __m256i a = _mm256_set1_epi8('a'), c = _mm256_set1_epi8('c'), g = _mm256_set1_epi8('g'), t = _mm256_set1_epi8('t');
    __m256i ok = _mm256_set1_epi8(-1);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + j));
        const __m256i l = _mm256_or_si256(v, lower);
        const __m256i valid = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(l, a), _mm256_cmpeq_epi8(l, c)),
                                              _mm256_or_si256(_mm256_cmpeq_epi8(l, g), _mm256_cmpeq_epi8(l, t)));
        ok = _mm256_and_si256(ok, valid);
        const __m256i x = _mm256_and_si256(_mm256_srli_epi16(v, 1), three);
        const __m256i y = _mm256_and_si256(_mm256_srli_epi16(x, 1), one);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + j), _mm256_xor_si256(x, y));
    }
    if (_mm256_movemask_epi8(ok) != -1) return false;
    for (; j < n; ++j) {
        const uint8_t l = s[j] | 0x20;
        if (l != 'a' && l != 'c' && l != 'g' && l != 't') return false;
        const uint8_t x = (s[j] >> 1) & 3;
        codes[j] = x ^ (x >> 1);
    }
    return true;
}

int minimizer_fast_events_avx2(const int64_t* kt, const int64_t* mn, int n, int w, uint16_t* ev) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i tail = _mm256_cmpgt_epi64(_mm256_set1_epi64x(w % 4), _mm256_setr_epi64x(0, 1, 2, 3));
    int ne = 0, nl = 0;
    uint16_t left[256];
    for (int t0 = w; t0 < n; t0 += 64) {
        uint64_t ch = 0;
        for (int j = 0; j < 64 && t0 + j < n; j += 4) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mn + t0 + j));
            const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mn + t0 + j - 1));
            ch |= uint64_t(~_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(a, b))) & 15) << j;
        }
        if (n - t0 < 64) ch &= (uint64_t(1) << (n - t0)) - 1;
        for (; ch; ch &= ch - 1) {
            const int t = t0 + __builtin_ctzll(ch);
            ev[ne] = uint16_t(t);
            left[nl] = ne;
            nl += !(kt[t] < mn[t - 1]);  // not a new minimum: the old one left
            ++ne;
        }
    }
    for (int e = 0; e < nl; ++e) {
        const int t = ev[left[e]];
        // How many slots of the window [t - w + 1, t] hold the new minimum's hash (its own included).
        const __m256i h = _mm256_set1_epi64x(mn[t]);
        __m256i cnt = _mm256_setzero_si256();
        int j = 0;
        for (; j + 4 <= w; j += 4) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + t - w + 1 + j));
            cnt = _mm256_sub_epi64(cnt, _mm256_cmpeq_epi64(_mm256_srli_epi64(_mm256_xor_si256(x, h), 8), zero));
        }
        if (j < w) {
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + t - w + 1 + j));
            const __m256i eq = _mm256_cmpeq_epi64(_mm256_srli_epi64(_mm256_xor_si256(x, h), 8), zero);
            cnt = _mm256_sub_epi64(cnt, _mm256_and_si256(eq, tail));
        }
        const __m128i c2 = _mm_add_epi64(_mm256_castsi256_si128(cnt), _mm256_extracti128_si256(cnt, 1));
        if (_mm_cvtsi128_si64(c2) + _mm_extract_epi64(c2, 1) > 1) ev[left[e]] |= kFastCopies;
    }
    return ne;
}

}  // namespace kmerx::detail
