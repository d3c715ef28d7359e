// Row kernels whose results never depend on which other rows share the call, how many threads run,
// or (unlike BLAS) the matrix shape: kmerx.hpc relies on them for results that are the same bits at
// any number of MPI ranks (see src/kmerx/hpc/exact.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kmerx::exact {

// Squared Euclidean distances, each computed in one fixed order of operations, so a distance depends
// only on its two rows. (x - y)^2 == (y - x)^2 exactly, so d(a, b) == d(b, a) too.
// out[i * m + j] = |x[i] - centers[j]|^2 for rows x [n x dim] and centers [m x dim], row-major.
void sq_dist(const double* x, std::size_t n, const double* centers, std::size_t m, std::size_t dim, double* out);

// out[i * k + j] = |x[i] - y[index[i * k + j]]|^2: each row against its own k rows of y [rows_y x dim].
// Every index must be in [0, rows_y) (the binding checks).
void sq_dist_pairs(const double* x, std::size_t n, const double* y, std::size_t rows_y, const int64_t* index,
                   std::size_t k, std::size_t dim, double* out);

// sums[c * dim + t] = the sum of x[i * dim + t] over the rows with labels[i] == c, added in row order
// (threads split the columns, not the rows); counts[c] = those rows. Labels must be in [0, k).
void sums_by_label(const double* x, std::size_t n, std::size_t dim, const int32_t* labels, std::size_t k,
                   double* sums, int64_t* counts);

}  // namespace kmerx::exact
