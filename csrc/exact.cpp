#include "kmerx/exact.hpp"

#include <algorithm>

#include "kmerx/common.hpp"

namespace kmerx::exact {

namespace {

// Four running sums over the coordinates (t mod 4), joined in a fixed order: independent chains keep
// the FPU busy, and the order never changes, so the result is reproducible bit for bit.
inline double row_dist(const double* a, const double* b, std::size_t dim) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t t = 0;
    for (; t + 4 <= dim; t += 4) {
        const double d0 = a[t] - b[t], d1 = a[t + 1] - b[t + 1], d2 = a[t + 2] - b[t + 2], d3 = a[t + 3] - b[t + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; t < dim; ++t) {
        const double d = a[t] - b[t];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

}  // namespace

void sq_dist(const double* x, std::size_t n, const double* centers, std::size_t m, std::size_t dim, double* out) {
    parallel_for(n, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            for (std::size_t j = 0; j < m; ++j) out[i * m + j] = row_dist(x + i * dim, centers + j * dim, dim);
    }, 256);
}

void sq_dist_pairs(const double* x, std::size_t n, const double* y, std::size_t /*rows_y*/, const int64_t* index,
                   std::size_t k, std::size_t dim, double* out) {
    parallel_for(n, [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            for (std::size_t j = 0; j < k; ++j)
                out[i * k + j] = row_dist(x + i * dim, y + static_cast<std::size_t>(index[i * k + j]) * dim, dim);
    }, 256);
}

void sums_by_label(const double* x, std::size_t n, std::size_t dim, const int32_t* labels, std::size_t k,
                   double* sums, int64_t* counts) {
    std::fill(sums, sums + k * dim, 0.0);
    std::fill(counts, counts + k, int64_t{0});
    for (std::size_t i = 0; i < n; ++i) ++counts[labels[i]];
    constexpr std::size_t block = 16;  // columns per task: 128 bytes of each row
    parallel_for((dim + block - 1) / block, [&](std::size_t begin, std::size_t end) {
        const std::size_t lo = begin * block, hi = std::min(dim, end * block);
        for (std::size_t i = 0; i < n; ++i) {
            const double* row = x + i * dim;
            double* sum = sums + static_cast<std::size_t>(labels[i]) * dim;
            for (std::size_t t = lo; t < hi; ++t) sum[t] += row[t];
        }
    });
}

}  // namespace kmerx::exact
