// The fused lookup: portable build of lookup_kernel.hpp, dispatch, and the sinusoidal table.
#define KMERX_LOOKUP_AVX2 0
#define KMERX_LOOKUP_NS portable
#include "lookup_kernel.hpp"

#include <cmath>

namespace kmerx {

namespace avx2 {
void lookup(const LookupArgs& a);
}

void lookup(const LookupArgs& a) {
    if (simd_level() >= Simd::AVX2) avx2::lookup(a);
    else portable::lookup(a);
}

void sinusoidal_table(int64_t rows, int64_t dim, float* out) {
    parallel_for(static_cast<std::size_t>(rows), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p)
            for (int64_t j = 0; j < dim; ++j) {
                const double angle = static_cast<double>(p) / std::pow(10000.0, static_cast<double>(j - (j & 1)) / dim);
                out[p * dim + j] = static_cast<float>(j & 1 ? std::cos(angle) : std::sin(angle));
            }
    }, 64);
}

}  // namespace kmerx
