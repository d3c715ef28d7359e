// Locality-sensitive ids of k-mer windows (the "lsh" tokenizer scheme; docs/tokenizers.md). Similar
// k-mers (a few substitutions apart) share ids more often the closer they are.
//
// projection (LSHvec): bases are complex numbers (A -1, T +1, C -i, G +i); a function has m hyperplanes
//   w_i; bit i = [Re(x . w_i) > c_i]; id = sum bit_i 2^i. The caller quantizes: weights[j][i][p][b] is
//   the int16 value of Re(x_b w_ip) for base b (A C G T) at position p, thresholds[j][i] of c_i, so the
//   sums are exact integers and every device gets the same ids. Canonical: the smaller of the ids of
//   the k-mer and of its reverse complement (complement = negation, so the reverse strand's sum uses
//   -weights[k-1-p]).
// bits (bit sampling for Hamming distance): a function samples positions p_1 < ... < p_s; id = the 2-bit
//   code (A0 C1 G2 T3) of the sampled bases, the first most significant; canonical: the smaller of both
//   strands' ids.
// h functions per token give h ids (all in one range of 2^m or 4^s ids after `offset`).
#pragma once

#include <cstdint>
#include <memory>

#include "kmerx/tokenize.hpp"

namespace kmerx {

// k 1..64, m 1..31, h >= 1; std::invalid_argument when a hyperplane's largest possible sum
// (sum_p max_b |weights|) exceeds 32766 (the kernels add in int16 lanes).
std::unique_ptr<TokenScheme> lsh_projection_scheme(int k, int m, int h, int64_t stride, bool canonical,
                                                   const int16_t* weights, const int32_t* thresholds,
                                                   uint32_t offset, uint32_t unk);
// k 1..64, s 1..16 sampled positions per function (positions[j * s ..], increasing, < k), h >= 1.
std::unique_ptr<TokenScheme> lsh_bits_scheme(int k, int s, int h, int64_t stride, bool canonical,
                                             const int32_t* positions, uint32_t offset, uint32_t unk);

namespace lsh_detail {
// Chunk tables: a window's sums are sum_c tables[c][q[4c]] over its ceil(k/4) chunks, q[p] being the
// 8-bit code of bases p..p+3 (first base in the high bits); lanes 0..m-1 the forward sums, m..2m-1 the
// reverse strand's, padded to `lanes` (a multiple of 16) with lanes that never pass their threshold.
// Writes the windows' ids to out[t * out_stride]. AVX2 twin in lsh_avx2.cpp.
struct Windows {
    const uint8_t* q;    // chunk codes: q[p] = the 8-bit code of bases p..p+3 (first in the high bits)
    const uint8_t* run;  // ACGT bases from p on (capped at 255)
    int64_t n, stride;   // windows t = 0..n-1 start at p = t * stride
    int k;
    uint32_t offset, unk;
    // The id of window t given its raw id: offset + raw, or unk when the window holds a non-ACGT base.
    uint32_t id(int64_t t, uint32_t raw) const { return run[t * stride] >= k ? offset + raw : unk; }
};
struct Projection {
    int chunks, lanes, m;
    bool canonical;
    const int16_t* tables;  // [chunks][256][lanes]
    const int16_t* thresholds;  // [lanes]
};
void project_scalar(const Projection& pr, const Windows& w, uint32_t* out, int out_stride);
void project_avx2(const Projection& pr, const Windows& w, uint32_t* out, int out_stride);
}  // namespace lsh_detail

}  // namespace kmerx
