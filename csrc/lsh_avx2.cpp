// AVX2 + BMI2 kernels of the lsh token schemes (kmerx/lsh.hpp); bit-identical to the scalar ones.
#include <immintrin.h>

#include <algorithm>

#include "kmerx/lsh.hpp"

namespace kmerx::lsh_detail {

namespace {

// NV vectors of 16 int16 lanes; each window adds one table row per chunk, then compares.
template <int NV>
void project(const Projection& pr, const uint8_t* q, int64_t n, int64_t stride, uint32_t* out, int out_stride) {
    __m256i thr[NV];
    for (int v = 0; v < NV; ++v) thr[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pr.thresholds) + v);
    const uint32_t mask = (1U << pr.m) - 1;
    const std::size_t row = static_cast<std::size_t>(pr.lanes);
    for (int64_t t = 0; t < n; ++t) {
        const uint8_t* qt = q + t * stride;
        __m256i acc[NV];
        for (int v = 0; v < NV; ++v) acc[v] = _mm256_setzero_si256();
        const int16_t* base = pr.tables;
        for (int c = 0; c < pr.chunks; ++c, base += 256 * row) {
            const __m256i* r = reinterpret_cast<const __m256i*>(base + qt[4 * c] * row);
            for (int v = 0; v < NV; ++v) acc[v] = _mm256_add_epi16(acc[v], _mm256_loadu_si256(r + v));
        }
        uint64_t bits = 0;
        for (int v = 0; v < NV; ++v) {
            const auto m = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpgt_epi16(acc[v], thr[v])));
            bits |= static_cast<uint64_t>(_pext_u32(m, 0x55555555U)) << (16 * v);
        }
        const uint32_t fw = static_cast<uint32_t>(bits) & mask;
        out[t * out_stride] = pr.canonical ? std::min(fw, static_cast<uint32_t>(bits >> pr.m) & mask) : fw;
    }
}

}  // namespace

void project_avx2(const Projection& pr, const uint8_t* q, int64_t n, int64_t stride, uint32_t* out,
                  int out_stride) {
    switch (pr.lanes / 16) {
        case 1: return project<1>(pr, q, n, stride, out, out_stride);
        case 2: return project<2>(pr, q, n, stride, out, out_stride);
        case 3: return project<3>(pr, q, n, stride, out, out_stride);
        default: return project<4>(pr, q, n, stride, out, out_stride);
    }
}

void sample_bits_avx2(const uint64_t* fw, const uint64_t* rc, int64_t n, uint64_t mask, bool canonical,
                      uint32_t* out, int out_stride) {
    if (canonical)
        for (int64_t t = 0; t < n; ++t)
            out[t * out_stride] = static_cast<uint32_t>(std::min(_pext_u64(fw[t], mask), _pext_u64(rc[t], mask)));
    else
        for (int64_t t = 0; t < n; ++t) out[t * out_stride] = static_cast<uint32_t>(_pext_u64(fw[t], mask));
}

}  // namespace kmerx::lsh_detail
