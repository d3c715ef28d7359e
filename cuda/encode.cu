// K-mer code fill kernel (see encode.cuh): one thread per base position; positions that start an
// emitted k-mer (the window index of windows.cuh) compute its code from scratch.
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "device.cuh"
#include "windows.cuh"
#include "encode.cuh"

namespace kmerx::cuda {

namespace {

template <class T, Strand S>
__global__ void fill(const uint8_t* data, const int64_t* offsets, std::size_t n, int k, int64_t bases,
                     const int64_t* index, uint64_t* codes, int32_t* positions) {
    const int64_t base0 = offsets[0];
    const int shift = 2 * k - 2;
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < bases;
         q += int64_t(gridDim.x) * blockDim.x) {
        const int64_t slot = index[q];
        if (index[q + 1] == slot) continue;
        const int64_t p = base0 + q;
        T fwd = 0, rc = 0;
        for (int j = 0; j < k; ++j) {
            const uint32_t c = base_code(data[p + j]);
            fwd = (fwd << 2) | T(c);
            rc = (rc >> 2) | (T(3 - c) << shift);
        }
        T v = S == Strand::Forward ? fwd : S == Strand::Reverse ? rc : (fwd < rc ? fwd : rc);
        if constexpr (sizeof(T) == 8) {
            codes[slot] = v;
        } else {
            codes[2 * slot] = uint64_t(v >> 64);
            codes[2 * slot + 1] = uint64_t(v);
        }
        if (positions) positions[slot] = int32_t(p - offsets[read_of(offsets, n, p)]);
    }
}

template <class T>
void launch_fill(const uint8_t* data, const int64_t* offsets, std::size_t n, const KmerSpec& spec, int64_t bases,
                 const int64_t* index, uint64_t* codes, int32_t* positions, cudaStream_t stream) {
    const unsigned g = grid_for(bases);
    switch (spec.strand) {
        case Strand::Forward:
            fill<T, Strand::Forward><<<g, kThreads, 0, stream>>>(data, offsets, n, spec.k, bases, index, codes, positions);
            break;
        case Strand::Reverse:
            fill<T, Strand::Reverse><<<g, kThreads, 0, stream>>>(data, offsets, n, spec.k, bases, index, codes, positions);
            break;
        case Strand::Canonical:
            fill<T, Strand::Canonical><<<g, kThreads, 0, stream>>>(data, offsets, n, spec.k, bases, index, codes, positions);
            break;
    }
    KMERX_CUDA_CHECK_LAUNCH();
}

void check_spec(const KmerSpec& spec) {
    if (spec.k < 1 || spec.k > 64) throw std::invalid_argument("k must be in 1..64, got " + std::to_string(spec.k));
    if (spec.stride < 1) throw std::invalid_argument("stride must be >= 1, got " + std::to_string(spec.stride));
}

}  // namespace

void kmer_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const KmerSpec& spec,
               const int64_t* d_index, uint64_t* d_codes, int32_t* d_positions, cudaStream_t stream) {
    check_spec(spec);
    const int64_t bases = covered_bases(d_offsets, n, stream);
    if (spec.words() == 1)
        launch_fill<uint64_t>(d_data, d_offsets, n, spec, bases, d_index, d_codes, d_positions, stream);
    else
        launch_fill<unsigned __int128>(d_data, d_offsets, n, spec, bases, d_index, d_codes, d_positions, stream);
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace kmerx::cuda
