// K-mer code kernels (see encode.cuh). One thread per base position: a position emits a k-mer when it
// starts at a multiple of the stride within its read and its k bases are ACGT; an exclusive scan of
// those flags gives every k-mer its output slot, so the result matches the CPU op exactly, with no
// per-read serial work (a 70 Mb chromosome spreads over the whole GPU).
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "encode.cuh"

namespace kmerx::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t base_code(uint8_t b) {
    switch (b | 0x20) {  // lowercase
        case 'a': return 0;
        case 'c': return 1;
        case 'g': return 2;
        case 't': return 3;
        default: return 4;
    }
}

// Read holding base p: the last r with offsets[r] <= p (empty reads are skipped over).
__device__ __forceinline__ std::size_t read_of(const int64_t* offsets, std::size_t n, int64_t p) {
    std::size_t lo = 0, hi = n;  // offsets[lo] <= p < offsets[hi]
    while (hi - lo > 1) {
        const std::size_t mid = (lo + hi) / 2;
        if (offsets[mid] <= p) lo = mid;
        else hi = mid;
    }
    return lo;
}

__global__ void validate_offsets(const int64_t* offsets, std::size_t n, int64_t data_len, int* bad) {
    for (std::size_t r = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; r <= n;
         r += std::size_t(gridDim.x) * blockDim.x) {
        const int64_t o = offsets[r];
        if (o < 0 || o > data_len || (r > 0 && o < offsets[r - 1])) atomicExch(bad, 1);
    }
}

__global__ void emit_flags(const uint8_t* data, const int64_t* offsets, std::size_t n, int k, int64_t stride,
                           int64_t bases, int64_t* flags) {
    const int64_t base0 = offsets[0];
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q <= bases;
         q += int64_t(gridDim.x) * blockDim.x) {
        int64_t ok = 0;
        if (q < bases) {
            const int64_t p = base0 + q;
            const std::size_t r = read_of(offsets, n, p);
            if ((p - offsets[r]) % stride == 0 && p + k <= offsets[r + 1]) {
                ok = 1;
                for (int j = 0; j < k; ++j)
                    if (base_code(data[p + j]) > 3) {
                        ok = 0;
                        break;
                    }
            }
        }
        flags[q] = ok;
    }
}

__global__ void gather_offsets(const int64_t* offsets, std::size_t n, const int64_t* index, int64_t* out) {
    for (std::size_t r = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; r <= n;
         r += std::size_t(gridDim.x) * blockDim.x)
        out[r] = index[offsets[r] - offsets[0]];
}

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

unsigned grid_for(int64_t items) {
    const int64_t blocks = (items + kThreads - 1) / kThreads;
    return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 1 << 16)));
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

int64_t covered_bases(const int64_t* d_offsets, std::size_t n, cudaStream_t stream) {
    int64_t ends[2] = {0, 0};
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&ends[0], d_offsets, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&ends[1], d_offsets + n, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    return ends[1] - ends[0];
}

int64_t kmer_index(const uint8_t* d_data, std::size_t data_len, const int64_t* d_offsets, std::size_t n,
                   const KmerSpec& spec, int64_t* d_index, int64_t* d_out_offsets, cudaStream_t stream) {
    check_spec(spec);
    DeviceBuffer<int> bad(1);
    KMERX_CUDA_CHECK(cudaMemsetAsync(bad.get(), 0, sizeof(int), stream));
    validate_offsets<<<grid_for(int64_t(n) + 1), kThreads, 0, stream>>>(d_offsets, n, int64_t(data_len), bad.get());
    KMERX_CUDA_CHECK_LAUNCH();
    int h_bad = 0;
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&h_bad, bad.get(), sizeof(int), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (h_bad)
        throw std::invalid_argument("seqs: offsets must be non-decreasing, >= 0 and within the data length " +
                                    std::to_string(data_len));
    const int64_t bases = covered_bases(d_offsets, n, stream);

    DeviceBuffer<int64_t> flags(std::size_t(bases) + 1);
    emit_flags<<<grid_for(bases + 1), kThreads, 0, stream>>>(d_data, d_offsets, n, spec.k, spec.stride, bases,
                                                             flags.get());
    KMERX_CUDA_CHECK_LAUNCH();
    std::size_t temp_bytes = 0;
    KMERX_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, flags.get(), d_index, bases + 1, stream));
    DeviceBuffer<uint8_t> temp(std::max<std::size_t>(temp_bytes, 1));
    KMERX_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(temp.get(), temp_bytes, flags.get(), d_index, bases + 1, stream));
    gather_offsets<<<grid_for(int64_t(n) + 1), kThreads, 0, stream>>>(d_offsets, n, d_index, d_out_offsets);
    KMERX_CUDA_CHECK_LAUNCH();
    int64_t total = 0;
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&total, d_index + bases, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));  // also before flags/temp are freed
    return total;
}

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
