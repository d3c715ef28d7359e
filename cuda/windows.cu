// Window index kernels (see windows.cuh).
#include <cub/device/device_scan.cuh>

#include <stdexcept>
#include <string>

#include "common.cuh"
#include "device.cuh"
#include "windows.cuh"

namespace kmerx::cuda {

namespace {

__global__ void validate_offsets(const int64_t* offsets, std::size_t n, int64_t data_len, int* bad) {
    for (std::size_t r = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; r <= n;
         r += std::size_t(gridDim.x) * blockDim.x) {
        const int64_t o = offsets[r];
        if (o < 0 || o > data_len || (r > 0 && o < offsets[r - 1])) atomicExch(bad, 1);
    }
}

__global__ void window_flags(const uint8_t* data, const int64_t* offsets, std::size_t n, int64_t k, int64_t stride,
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

}  // namespace

int64_t covered_bases(const int64_t* d_offsets, std::size_t n, cudaStream_t stream) {
    int64_t ends[2] = {0, 0};
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&ends[0], d_offsets, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&ends[1], d_offsets + n, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    return ends[1] - ends[0];
}

int64_t window_index(const uint8_t* d_data, std::size_t data_len, const int64_t* d_offsets, std::size_t n,
                     int64_t k, int64_t stride, int64_t* d_index, int64_t* d_out_offsets, cudaStream_t stream) {
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
    if (stride < 1) throw std::invalid_argument("stride must be >= 1, got " + std::to_string(stride));
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
    window_flags<<<grid_for(bases + 1), kThreads, 0, stream>>>(d_data, d_offsets, n, k, stride, bases, flags.get());
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

}  // namespace kmerx::cuda
