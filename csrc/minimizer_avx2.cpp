// AVX2 keys of the minimizer steady-state path (compiled with -mavx2; called only when
// simd_level() >= AVX2): four k-mers per step, bit-identical to detail::minimizer_keys.
#include <immintrin.h>

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
