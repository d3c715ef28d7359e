// ntHash 2 fill kernel (see hash.cuh). One thread per base position; positions that start an emitted
// k-mer (the window index of windows.cuh) hash it from scratch, so no thread depends on another and the
// output equals the CPU's rolling result bit for bit.
#include "common.cuh"
#include "device.cuh"
#include "windows.cuh"
#include "hash.cuh"

namespace kmerx::cuda {

namespace {

// ntHash seeds by base code A C G T (as in csrc/hash.cpp).
__constant__ uint64_t kSeed[4] = {0x3c8bfbb395c60474ULL, 0x3193c18562a02b4cULL, 0x20323ed082572324ULL,
                                  0x295549f54be24456ULL};
constexpr uint64_t kMultiSeed = 0x90b45d39fb6da1faULL;

__device__ __forceinline__ uint64_t srol(uint64_t x) {
    return ((x << 1) & 0xFFFFFFFDFFFFFFFFULL) | ((x >> 30) & 0x200000000ULL) | ((x >> 32) & 1ULL);
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

}  // namespace

void nthash_fill(const uint8_t* d_data, const int64_t* d_offsets, std::size_t n, const NtHashSpec& spec,
                 const int64_t* d_index, uint64_t* d_values, int32_t* d_positions, cudaStream_t stream) {
    const int64_t bases = covered_bases(d_offsets, n, stream);
    fill_kernel<<<grid_for(bases), kThreads, 0, stream>>>(d_data, d_offsets, n, spec.k, spec.num_hashes,
                                                          int(spec.strand), bases, d_index, d_values, d_positions);
    KMERX_CUDA_CHECK_LAUNCH();
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace kmerx::cuda
