#include "common.cuh"

namespace kmerx::cuda {

void throw_error(cudaError_t err, const char* expr, const char* file, int line) {
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + expr + " failed: " +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // no driver / no device: clear the sticky error, report none
        return 0;
    }
    return n;
}

}  // namespace kmerx::cuda
