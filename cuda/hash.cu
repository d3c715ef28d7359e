// ntHash 2 kernels (see hash.cuh). One thread per base position: a position emits a k-mer when its k
// bases lie in its read and are all ACGT; an exclusive scan of those flags gives each k-mer its output
// slot (as cuda/encode.cu does for k-mer codes), and each emitted k-mer is hashed from scratch, so no
// thread depends on another and the output equals the CPU's rolling result bit for bit.
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "encode.cuh"
#include "hash.cuh"

namespace kmerx::cuda {

namespace {

constexpr int kThreads = 256;

// ntHash seeds by base code A C G T (as in csrc/hash.cpp).
__constant__ uint64_t kSeed[4] = {0x3c8bfbb395c60474ULL, 0x3193c18562a02b4cULL, 0x20323ed082572324ULL,
                                  0x295549f54be24456ULL};
constexpr uint64_t kMultiSeed = 0x90b45d39fb6da1faULL;

__device__ __forceinline__ uint32_t base_code(uint8_t b) {
    switch (b | 0x20) {
        case 'a': return 0;
        case 'c': return 1;
        case 'g': return 2;
        case 't': return 3;
        default: return 4;
    }
}

__device__ __forceinline__ uint64_t srol(uint64_t x) {
    return ((x << 1) & 0xFFFFFFFDFFFFFFFFULL) | ((x >> 30) & 0x200000000ULL) | ((x >> 32) & 1ULL);
}

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

__global__ void flags_kernel(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int64_t bases,
                             int64_t* flags) {
    const int64_t base0 = offsets[0];
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q <= bases;
         q += int64_t(gridDim.x) * blockDim.x) {
        int64_t ok = 0;
        if (q < bases) {
            const int64_t p = base0 + q;
            const std::size_t r = read_of(offsets, n, p);
            if (p + k <= offsets[r + 1]) {
                ok = 1;
                for (int64_t j = 0; j < k; ++j)
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

__global__ void fill_kernel(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int h, int strand,
                            int64_t bases, const int64_t* index, uint64_t* values, int32_t* positions) {
    const int64_t base0 = offsets[0];
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < bases;
         q += int64_t(gridDim.x) * blockDim.x) {
        const int64_t slot = index[q];
        if (index[q + 1] == slot) continue;
        const int64_t p = base0 + q;
        uint64_t f = 0, r = 0;
        for (int64_t j = k - 1; j >= 0; --j) {  // reverse: XOR_j srol^j(SEED[comp s_j]), Horner from the end
            r = srol(r) ^ kSeed[3 - base_code(data[p + j])];
        }
        for (int64_t j = 0; j < k; ++j) f = srol(f) ^ kSeed[base_code(data[p + j])];
        const uint64_t v = strand == int(Strand::Forward) ? f : strand == int(Strand::Reverse) ? r : f + r;
        uint64_t* row = values + slot * h;
        row[0] = v;
        for (int j = 1; j < h; ++j) {
            const uint64_t t = v * (uint64_t(j) ^ (uint64_t(k) * kMultiSeed));
            row[j] = t ^ (t >> 27);
        }
        if (positions) positions[slot] = int32_t(p - offsets[read_of(offsets, n, p)]);
    }
}

unsigned grid_for(int64_t items) {
    const int64_t blocks = (items + kThreads - 1) / kThreads;
    return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 1 << 16)));
}

}  // namespace

int64_t nthash_index(const uint8_t* d_data, std::size_t data_len, const int64_t* d_offsets, std::size_t n,
                     int64_t k, int64_t* d_index, int64_t* d_out_offsets, cudaStream_t stream) {
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
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
    flags_kernel<<<grid_for(bases + 1), kThreads, 0, stream>>>(d_data, d_offsets, n, k, bases, flags.get());
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

void nthash_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const NtHashSpec& spec,
                 const int64_t* d_index, uint64_t* d_values, int32_t* d_positions, cudaStream_t stream) {
    const int64_t bases = covered_bases(d_offsets, n, stream);
    fill_kernel<<<grid_for(bases), kThreads, 0, stream>>>(d_data, d_offsets, n, spec.k, spec.num_hashes,
                                                          int(spec.strand), bases, d_index, d_values, d_positions);
    KMERX_CUDA_CHECK_LAUNCH();
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace kmerx::cuda
