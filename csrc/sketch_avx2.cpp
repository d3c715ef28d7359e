// AVX2 twin of the sketch hashing in sketch.cpp: four k-mers per 256-bit vector, one 64-bit lane
// each. AVX2 has no 64-bit multiply: each murmur multiply by a constant is one 32x32->64 multiply of
// the low halves plus one 32-bit multiply giving both cross products (only their low 32 bits count).
#include <immintrin.h>

#include <utility>

#include "kmerx/sketch.hpp"

namespace kmerx::detail {

namespace {

struct Const64 {
    __m256i c, swapped;  // the constant, and its two 32-bit halves exchanged
    explicit Const64(uint64_t v)
        : c(_mm256_set1_epi64x(static_cast<long long>(v))),
          swapped(_mm256_set1_epi64x(static_cast<long long>((v << 32) | (v >> 32)))) {}
};

// a * c mod 2^64 = lo(a) lo(c) + ((lo(a) hi(c) + hi(a) lo(c)) mod 2^32) << 32.
inline __m256i mul(__m256i a, const Const64& k) {
    const __m256i cross = _mm256_mullo_epi32(a, k.swapped);  // per lane: [lo(a) hi(c), hi(a) lo(c)]
    const __m256i high = _mm256_and_si256(_mm256_add_epi64(cross, _mm256_slli_epi64(cross, 32)),
                                          _mm256_set1_epi64x(static_cast<long long>(0xFFFFFFFF00000000ULL)));
    return _mm256_add_epi64(_mm256_mul_epu32(a, k.c), high);
}

template <int R>
inline __m256i rotl(__m256i x) {
    return _mm256_or_si256(_mm256_slli_epi64(x, R), _mm256_srli_epi64(x, 64 - R));
}

inline __m256i xorv(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }
inline __m256i add(__m256i a, __m256i b) { return _mm256_add_epi64(a, b); }
inline __m256i times5(__m256i a) { return _mm256_add_epi64(_mm256_slli_epi64(a, 2), a); }

template <int Shift>
inline __m256i xorshift(__m256i a) { return _mm256_xor_si256(a, _mm256_srli_epi64(a, Shift)); }

// ASCII word J (bases 8J..8J+7) of four k-mers whose codes (first base most significant) have been
// shifted to the top of their lanes: base i then sits at bits 62-2i, in byte 7 - i/4.
template <int J>
inline __m256i ascii_word(__m256i top) {
    // Byte p of a lane takes byte 7 - 2J - p/4 of the lane's code.
    constexpr char a = 7 - 2 * J, b = 6 - 2 * J, c = 15 - 2 * J, d = 14 - 2 * J;
    const __m256i rep = _mm256_setr_epi8(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d,  //
                                         a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d);
    const __m256i r = _mm256_shuffle_epi8(top, rep);
    // Position p % 4 == 0, 1, 2, 3 needs bits 6-7, 4-5, 2-3, 0-1: positions 0, 1 shift down by 4 first,
    // then masks leave 4b (positions 0, 2) or b (1, 3): one 16-entry table maps both to letters.
    const __m256i lo_mask = _mm256_set1_epi32(0x030C0000);
    const __m256i hi_mask = _mm256_set1_epi32(0x0000030C);
    const __m256i v = _mm256_or_si256(_mm256_and_si256(r, lo_mask),
                                      _mm256_and_si256(_mm256_srli_epi16(r, 4), hi_mask));
    const __m256i letters = _mm256_setr_epi8('A', 'C', 'G', 'T', 'C', 0, 0, 0, 'G', 0, 0, 0, 'T', 0, 0, 0,  //
                                             'A', 'C', 'G', 'T', 'C', 0, 0, 0, 'G', 0, 0, 0, 'T', 0, 0, 0);
    return _mm256_shuffle_epi8(letters, v);
}

template <int K, int... J>
inline void ascii_words(__m256i top, __m256i* w, std::integer_sequence<int, J...>) {
    ((w[J] = ascii_word<J>(top)), ...);
    constexpr int tail = K % 8;
    if constexpr (tail != 0) {
        constexpr int last = (K - 1) / 8;
        w[last] = _mm256_and_si256(w[last], _mm256_set1_epi64x(static_cast<long long>((uint64_t(1) << (8 * tail)) - 1)));
    }
}

template <int K>
void hash_codes(const uint64_t* codes, std::size_t n, uint64_t seed, uint64_t* out) {
    constexpr int nwords = (K + 7) / 8;
    constexpr int blocks = K / 16;
    constexpr int rem = K & 15;
    const Const64 c1(0x87c37b91114253d5ULL), c2(0x4cf5ad432745937fULL);
    const Const64 f1(0xff51afd7ed558ccdULL), f2(0xc4ceb9fe1a85ec53ULL);
    const __m256i vseed = _mm256_set1_epi64x(static_cast<long long>(seed));
    const __m256i n1 = _mm256_set1_epi64x(0x52dce729), n2 = _mm256_set1_epi64x(0x38495ab5);
    const __m256i len = _mm256_set1_epi64x(K);
    for (std::size_t i = 0; i + 4 <= n; i += 4) {
        const __m256i top =
            _mm256_slli_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i)), 64 - 2 * K);
        __m256i w[4];
        ascii_words<K>(top, w, std::make_integer_sequence<int, nwords>{});
        __m256i h1 = vseed, h2 = vseed;
        for (int b = 0; b < blocks; ++b) {
            h1 = xorv(h1, mul(rotl<31>(mul(w[2 * b], c1)), c2));
            h1 = add(times5(add(rotl<27>(h1), h2)), n1);
            h2 = xorv(h2, mul(rotl<33>(mul(w[2 * b + 1], c2)), c1));
            h2 = add(times5(add(rotl<31>(h2), h1)), n2);
        }
        if constexpr (rem > 8) h2 = xorv(h2, mul(rotl<33>(mul(w[2 * blocks + 1], c2)), c1));
        if constexpr (rem > 0) h1 = xorv(h1, mul(rotl<31>(mul(w[2 * blocks], c1)), c2));
        h1 = xorv(h1, len);
        h2 = xorv(h2, len);
        h1 = add(h1, h2);
        h2 = add(h2, h1);
        h1 = xorshift<33>(mul(xorshift<33>(mul(xorshift<33>(h1), f1)), f2));
        h2 = xorshift<33>(mul(xorshift<33>(mul(xorshift<33>(h2), f1)), f2));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), add(h1, h2));
    }
}

using HashFn = void (*)(const uint64_t*, std::size_t, uint64_t, uint64_t*);

template <int... Ks>
constexpr HashFn pick(int k, std::integer_sequence<int, Ks...>) {
    constexpr HashFn table[] = {&hash_codes<Ks + 1>...};
    return table[k - 1];
}

}  // namespace

void sketch_hash_codes_avx2(const uint64_t* codes, std::size_t n, int k, uint64_t seed, uint64_t* out) {
    pick(k, std::make_integer_sequence<int, 32>{})(codes, n, seed, out);
    const std::size_t done = n & ~std::size_t(3);
    if (done == n) return;
    uint64_t pad[4] = {0, 0, 0, 0}, h[4];
    for (std::size_t i = done; i < n; ++i) pad[i - done] = codes[i];
    pick(k, std::make_integer_sequence<int, 32>{})(pad, 4, seed, h);
    for (std::size_t i = done; i < n; ++i) out[i] = h[i - done];
}

}  // namespace kmerx::detail
