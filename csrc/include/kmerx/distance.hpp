// Squared Euclidean distances computed row by row, each in one fixed order of operations, so a
// distance depends only on its two rows: never on which other rows share the call, how many threads
// run, or (unlike BLAS) on the matrix shape. kmerx.hpc relies on this for results that are the same
// bits at any number of MPI ranks. (x - y)^2 == (y - x)^2 exactly, so d(a, b) == d(b, a) too.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kmerx::distance {

// out[i * m + j] = |x[i] - centers[j]|^2 for rows x [n x dim] and centers [m x dim], row-major.
void sq_dist(const double* x, std::size_t n, const double* centers, std::size_t m, std::size_t dim, double* out);

// out[i * k + j] = |x[i] - y[index[i * k + j]]|^2: each row against its own k rows of y [rows_y x dim].
// Every index must be in [0, rows_y) (the binding checks).
void sq_dist_pairs(const double* x, std::size_t n, const double* y, std::size_t rows_y, const int64_t* index,
                   std::size_t k, std::size_t dim, double* out);

}  // namespace kmerx::distance
