// AVX2 kernel of the lsh projection scheme (kmerx/lsh.hpp); bit-identical to the scalar ones.
#include <immintrin.h>

#include <algorithm>

#include "kmerx/lsh.hpp"

namespace kmerx::lsh_detail {

namespace {

// NV vectors of 16 int16 lanes; each window adds one table row per chunk, then compares. C > 0 fixes
// the chunk count so the loop unrolls (0: pr.chunks).
template <int NV, int C>
void project(const Projection& pr, const Windows& w, uint32_t* out, int out_stride) {
    const int chunks = C ? C : pr.chunks;
    __m256i thr[NV];
    for (int v = 0; v < NV; ++v) thr[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pr.thresholds) + v);
    const uint32_t mask = (1U << pr.m) - 1;
    constexpr std::size_t row = 16 * NV;  // int16 lanes per table row (pr.lanes)
    for (int64_t t = 0; t < w.n; ++t) {
        const uint8_t* qt = w.q + t * w.stride;
        __m256i acc[NV];
        for (int v = 0; v < NV; ++v) acc[v] = _mm256_setzero_si256();
        const int16_t* base = pr.tables;
        for (int c = 0; c < chunks; ++c, base += 256 * row, qt += 4) {
            const __m256i* r = reinterpret_cast<const __m256i*>(base + *qt * row);
            for (int v = 0; v < NV; ++v) acc[v] = _mm256_add_epi16(acc[v], _mm256_loadu_si256(r + v));
        }
        // Pack the lane masks of two vectors to bytes (in lane order after the permute) and take one
        // bit per lane; no pext, which is microcoded and slow on AMD before Zen 3.
        uint64_t bits = 0;
        for (int v = 0; v < NV; v += 2) {
            const __m256i lo = _mm256_cmpgt_epi16(acc[v], thr[v]);
            const __m256i hi = v + 1 < NV ? _mm256_cmpgt_epi16(acc[v + 1], thr[v + 1]) : _mm256_setzero_si256();
            const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(lo, hi), 0xD8);
            bits |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(packed))) << (16 * v);
        }
        const uint32_t fw = static_cast<uint32_t>(bits) & mask;
        out[t * out_stride] = w.id(t, pr.canonical ? std::min(fw, static_cast<uint32_t>(bits >> pr.m) & mask) : fw);
    }
}

template <int NV>
void project_nv(const Projection& pr, const Windows& w, uint32_t* out, int out_stride) {
    switch (pr.chunks) {  // k = 29..32, 21..24, 13..16
        case 8: return project<NV, 8>(pr, w, out, out_stride);
        case 6: return project<NV, 6>(pr, w, out, out_stride);
        case 4: return project<NV, 4>(pr, w, out, out_stride);
        default: return project<NV, 0>(pr, w, out, out_stride);
    }
}

}  // namespace

void project_avx2(const Projection& pr, const Windows& w, uint32_t* out, int out_stride) {
    switch (pr.lanes / 16) {
        case 1: return project_nv<1>(pr, w, out, out_stride);
        case 2: return project_nv<2>(pr, w, out, out_stride);
        case 3: return project_nv<3>(pr, w, out, out_stride);
        default: return project_nv<4>(pr, w, out, out_stride);
    }
}

}  // namespace kmerx::lsh_detail
