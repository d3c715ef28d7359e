// CUDA helpers shared by the kmerx._cuda kernels: checked calls and RAII device buffers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace kmerx::cuda {

// Throws std::runtime_error naming the file, line and CUDA error when a runtime call fails.
#define KMERX_CUDA_CHECK(expr)                                                                       \
    do {                                                                                             \
        const cudaError_t kmerx_err_ = (expr);                                                       \
        if (kmerx_err_ != cudaSuccess) ::kmerx::cuda::throw_error(kmerx_err_, #expr, __FILE__, __LINE__); \
    } while (0)

// After a kernel launch: catches bad launch configurations at once (asynchronous faults surface at
// the next checked synchronising call).
#define KMERX_CUDA_CHECK_LAUNCH() KMERX_CUDA_CHECK(cudaGetLastError())

[[noreturn]] void throw_error(cudaError_t err, const char* expr, const char* file, int line);

// Devices usable by this process; 0 (never an exception) without a driver or a GPU.
int device_count() noexcept;

// Owns n elements of device memory; freed on scope exit, so exceptions leak nothing.
template <class T>
class DeviceBuffer {
   public:
    explicit DeviceBuffer(std::size_t n) : n_(n) {
        if (n) KMERX_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
    }
    ~DeviceBuffer() {
        if (p_) cudaFree(p_);
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    T* get() const { return p_; }
    std::size_t size() const { return n_; }

   private:
    T* p_ = nullptr;
    std::size_t n_;
};

}  // namespace kmerx::cuda
