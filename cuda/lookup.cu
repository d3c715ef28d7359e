// Fused embedding lookup kernels (see lookup.cuh). One warp per read (pooled) or per token (per-token
// output); the lanes of a warp cover kTile consecutive columns at a time, so each row is read in
// coalesced pieces and a read's sum stays in registers, accumulated in token order. Rows wider than
// kTile columns take several passes over the read's tokens (the ids are re-read, not the rows).
#include "lookup.cuh"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.cuh"
#include "device.cuh"

namespace kmerx::cuda {

namespace {

constexpr int kWarp = 32;
constexpr int kCols = 4;                // columns per lane per pass
constexpr int kTile = kWarp * kCols;    // columns per warp per pass
constexpr unsigned long long kNoError = ~0ull;

// Problems a token can have; the error word is (token << 2 | kind) and the smallest wins.
enum : unsigned { kBadId = 0, kBadSlot = 1, kBadPosition = 2 };

// One 8-byte error word in stream-ordered memory, set to kNoError; freed on scope exit.
class ErrorWord {
   public:
    explicit ErrorWord(cudaStream_t s) : s_(s) {
        KMERX_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p_), sizeof(*p_), s));
        const cudaError_t e = cudaMemsetAsync(p_, 0xff, sizeof(*p_), s);
        if (e != cudaSuccess) {
            cudaFreeAsync(p_, s);
            throw_error(e, "cudaMemsetAsync", __FILE__, __LINE__);
        }
    }
    ~ErrorWord() { cudaFreeAsync(p_, s_); }
    ErrorWord(const ErrorWord&) = delete;
    ErrorWord& operator=(const ErrorWord&) = delete;
    unsigned long long* get() const { return p_; }
    // Waits for the stream and returns the word.
    unsigned long long read() const {
        unsigned long long v = kNoError;
        KMERX_CUDA_CHECK(cudaMemcpyAsync(&v, p_, sizeof(v), cudaMemcpyDeviceToHost, s_));
        KMERX_CUDA_CHECK(cudaStreamSynchronize(s_));
        return v;
    }

   private:
    unsigned long long* p_ = nullptr;
    cudaStream_t s_;
};

__device__ __forceinline__ int64_t id_at(const IdView& v, int64_t i) {
    return v.u32 ? static_cast<int64_t>(v.u32[i]) : v.i64[i];
}

// The row of `r` for id number k of the batch: dense tables by row, pointer tables by position.
__device__ __forceinline__ const uint8_t* row_of(const RowTable& t, int64_t r, int64_t k) {
    return t.ptrs ? t.ptrs[k] : t.base + r * row_bytes(t.dtype, t.dim);
}

// Value j of a row. Aligned fp32/fp16/bf16 rows take a plain load (decode_value's memcpy would be
// split into byte loads); the conversions, and everything quantized, are rows.hpp's.
__device__ __forceinline__ float value_at(const uint8_t* row, const RowTable& t, int64_t j) {
    const auto addr = reinterpret_cast<uintptr_t>(row);
    if (t.dtype == Dtype::F32 && (addr & 3) == 0) return reinterpret_cast<const float*>(row)[j];
    if (t.dtype == Dtype::F16 && (addr & 1) == 0) return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[j]);
    if (t.dtype == Dtype::BF16 && (addr & 1) == 0) return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[j]);
    return decode_value(row, t.dim, t.dtype, j);
}

__device__ __forceinline__ int64_t position_of(const LookupArgs& a, int64_t t, int64_t in_read) {
    return a.positions ? static_cast<int64_t>(a.positions[t]) : in_read;
}

// fp32 arithmetic exactly as written: no contraction into FMA, so sums round as on the CPU
// (lookup_kernel.hpp uses separate multiplies and adds).
__device__ __forceinline__ float add(float x, float y) { return __fadd_rn(x, y); }
__device__ __forceinline__ float mul(float x, float y) { return __fmul_rn(x, y); }

// One id per token, weight 1, one table: the CPU's `plain` path (sums add the row, then the position).
__device__ __forceinline__ bool is_plain(const LookupArgs& a) {
    return a.h == 1 && !a.weights && !a.slots && a.qr_m == 0;
}

__device__ __forceinline__ bool slotted(const LookupArgs& a) { return a.qr_m == 0 && !a.weights && a.slots; }

// The problem of token t (kBadId, kBadSlot, kBadPosition) or -1; p is its position row (< 0: none).
__device__ int token_problem(const LookupArgs& a, int64_t t, int64_t p) {
    if (a.pos_table && p >= a.pos_rows) return kBadPosition;
    const int64_t h = a.qr_m > 0 ? 1 : a.h;
    for (int64_t j = 0; j < h; ++j) {
        const int64_t id = id_at(a.ids, t * a.h + j);
        if (id < 0) return kBadId;
        if (a.qr_m > 0 ? (id / a.qr_m >= a.table.rows || id % a.qr_m >= a.table2.rows) : id >= a.table.rows)
            return kBadId;
    }
    if (!is_plain(a) && slotted(a) && static_cast<int64_t>(a.slots[t]) >= a.n_slots) return kBadSlot;
    return -1;
}

// Token t's vector before its positional term, at columns c0 + k * kWarp + lane (lanes past dim
// leave v alone), in the CPU's order of operations.
__device__ void token_vector(const LookupArgs& a, int64_t t, int64_t c0, int lane, float (&v)[kCols]) {
    const int64_t dim = a.table.dim;
    if (a.qr_m > 0) {  // one id; weights do not apply
        const int64_t id = id_at(a.ids, t);
        const uint8_t* q = row_of(a.table, id / a.qr_m, t);
        const uint8_t* r = row_of(a.table2, id % a.qr_m, t);
#pragma unroll
        for (int k = 0; k < kCols; ++k) {
            const int64_t c = c0 + k * kWarp + lane;
            if (c >= dim) break;
            const float qv = value_at(q, a.table, c), rv = value_at(r, a.table2, c);
            v[k] = a.combine == Combine::Product ? mul(qv, rv) : add(qv, rv);
        }
        return;
    }
    if (is_plain(a)) {
        const uint8_t* row = row_of(a.table, id_at(a.ids, t), t);
#pragma unroll
        for (int k = 0; k < kCols; ++k) {
            const int64_t c = c0 + k * kWarp + lane;
            if (c >= dim) break;
            v[k] = value_at(row, a.table, c);
        }
        return;
    }
    const float* sw = slotted(a) ? a.slot_weights + int64_t(a.slots[t]) * a.h : nullptr;
#pragma unroll
    for (int k = 0; k < kCols; ++k) v[k] = 0.0f;
    for (int64_t j = 0; j < a.h; ++j) {
        const int64_t n = t * a.h + j;
        const float w = a.weights ? a.weights[n] : sw ? sw[j] : 1.0f;
        const uint8_t* row = row_of(a.table, id_at(a.ids, n), n);
#pragma unroll
        for (int k = 0; k < kCols; ++k) {
            const int64_t c = c0 + k * kWarp + lane;
            if (c >= dim) break;
            v[k] = add(v[k], mul(w, value_at(row, a.table, c)));
        }
    }
}

// Adds positional row p (if any) to v.
__device__ __forceinline__ void add_position(const LookupArgs& a, int64_t p, int64_t c0, int lane, float (&v)[kCols]) {
    if (!a.pos_table || p < 0) return;
    const float* pr = a.pos_table + p * a.table.dim;
#pragma unroll
    for (int k = 0; k < kCols; ++k) {
        const int64_t c = c0 + k * kWarp + lane;
        if (c >= a.table.dim) break;
        v[k] = add(v[k], pr[c]);
    }
}

// Checks token t; lane 0 reports a problem when `report`. Returns whether the token is valid.
__device__ __forceinline__ bool check_token(const LookupArgs& a, int64_t t, int64_t p, int lane, bool report,
                                            unsigned long long* err) {
    const int problem = token_problem(a, t, p);
    if (problem < 0) return true;
    if (report && lane == 0) atomicMin(err, (static_cast<unsigned long long>(t) << 2) | unsigned(problem));
    return false;
}

__device__ __forceinline__ void store(const LookupArgs& a, int64_t row, int64_t c, float v) {
    const int64_t at = row * a.table.dim + c;
    if (a.out_f16) static_cast<uint16_t*>(a.out)[at] = f32_to_f16(v);
    else static_cast<float*>(a.out)[at] = v;
}

// Column passes: at least one, so tokens are validated even when dim is 0.
__device__ __forceinline__ int64_t passes(int64_t dim) { return dim > 0 ? (dim + kTile - 1) / kTile : 1; }

__global__ void pooled_kernel(LookupArgs a, unsigned long long* err) {
    const int lane = threadIdx.x & (kWarp - 1);
    const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int64_t warps = int64_t(gridDim.x) * blockDim.x / kWarp;
    const int64_t dim = a.table.dim, np = passes(dim);
    const bool max = a.pool == Pool::Max, sum = !max, plain = is_plain(a);
    for (int64_t i = first; i < a.n_reads; i += warps) {
        const int64_t t0 = a.offsets[i], t1 = a.offsets[i + 1];
        for (int64_t pass = 0; pass < np; ++pass) {
            const int64_t c0 = pass * kTile;
            float acc[kCols];
#pragma unroll
            for (int k = 0; k < kCols; ++k) acc[k] = max ? -INFINITY : 0.0f;
            for (int64_t t = t0; t < t1; ++t) {
                const int64_t p = position_of(a, t, t - t0);
                if (!check_token(a, t, p, lane, pass == 0, err)) continue;
                float v[kCols] = {};
                token_vector(a, t, c0, lane, v);
                if (sum && plain) {  // as the CPU's hot path: the rows into the sum, positions after
#pragma unroll
                    for (int k = 0; k < kCols; ++k) acc[k] = add(acc[k], v[k]);
                    continue;
                }
                add_position(a, p, c0, lane, v);
#pragma unroll
                for (int k = 0; k < kCols; ++k) acc[k] = max ? (v[k] > acc[k] ? v[k] : acc[k]) : add(acc[k], v[k]);
            }
            if (sum && plain && a.pos_table)
                for (int64_t t = t0; t < t1; ++t) {
                    const int64_t p = position_of(a, t, t - t0);
                    if (p < a.pos_rows) add_position(a, p, c0, lane, acc);  // larger p: flagged above
                }
            const int64_t n = t1 - t0;
            const float inv = 1.0f / static_cast<float>(n > 0 ? n : 1);
#pragma unroll
            for (int k = 0; k < kCols; ++k) {
                const int64_t c = c0 + k * kWarp + lane;
                if (c >= dim) break;
                // An empty read pools to zeros whatever the pool.
                const float r = n == 0 ? 0.0f : a.pool == Pool::Mean ? mul(acc[k], inv) : acc[k];
                store(a, i, c, r);
            }
        }
    }
}

__global__ void token_kernel(LookupArgs a, int64_t begin, int64_t end, unsigned long long* err) {
    const int lane = threadIdx.x & (kWarp - 1);
    const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int64_t warps = int64_t(gridDim.x) * blockDim.x / kWarp;
    const int64_t dim = a.table.dim, np = passes(dim);
    for (int64_t t = begin + first; t < end; t += warps) {
        const auto i = static_cast<int64_t>(read_of(a.offsets, static_cast<std::size_t>(a.n_reads), t));
        const int64_t in_read = t - a.offsets[i];
        const int64_t row = a.out_rows ? a.out_rows[i] + in_read : t;
        const int64_t p = position_of(a, t, in_read);
        for (int64_t pass = 0; pass < np; ++pass) {
            const int64_t c0 = pass * kTile;
            float v[kCols] = {};
            if (check_token(a, t, p, lane, pass == 0, err)) {
                token_vector(a, t, c0, lane, v);
                add_position(a, p, c0, lane, v);
            }
#pragma unroll
            for (int k = 0; k < kCols; ++k) {
                const int64_t c = c0 + k * kWarp + lane;
                if (c >= dim) break;
                store(a, row, c, v[k]);
            }
        }
    }
}

// Problems of the read layout; the error word is (index << 1 | kind), the smallest wins.
enum : unsigned { kBadOffsets = 0, kBadOutRows = 1 };

__global__ void check_reads_kernel(const int64_t* offsets, int64_t n, const int64_t* out_rows, int64_t cap,
                                   unsigned long long* err) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n + 1; i += int64_t(gridDim.x) * blockDim.x) {
        if (i == 0 && offsets[0] != 0) atomicMin(err, kBadOffsets);
        if (i == n) continue;
        const int64_t lo = offsets[i], hi = offsets[i + 1];
        if (hi < lo) atomicMin(err, (static_cast<unsigned long long>(i + 1) << 1) | kBadOffsets);
        else if (out_rows && (out_rows[i] < 0 || out_rows[i] > cap - (hi - lo)))
            atomicMin(err, (static_cast<unsigned long long>(i) << 1) | kBadOutRows);
    }
}

template <class T>
T fetch(const T* d_ptr, cudaStream_t stream) {
    T v{};
    KMERX_CUDA_CHECK(cudaMemcpyAsync(&v, d_ptr, sizeof(T), cudaMemcpyDeviceToHost, stream));
    KMERX_CUDA_CHECK(cudaStreamSynchronize(stream));
    return v;
}

[[noreturn]] void out_of_range(const char* what, int64_t value, int64_t limit, int64_t token) {
    throw std::out_of_range(std::string(what) + " " + std::to_string(value) + " of token " + std::to_string(token) +
                            " is outside 0.." + std::to_string(limit - 1));
}

// Reads back what it needs to name the token and the value, in the CPU's words (lookup_kernel.hpp).
[[noreturn]] void throw_token_error(const LookupArgs& a, unsigned long long word, cudaStream_t s) {
    const auto t = static_cast<int64_t>(word >> 2);
    const unsigned kind = unsigned(word & 3);
    if (kind == kBadSlot) out_of_range("weight slot", fetch(a.slots + t, s), a.n_slots, t);
    if (kind == kBadPosition) {
        if (a.positions) out_of_range("position", fetch(a.positions + t, s), a.pos_rows, t);
        std::vector<int64_t> off(static_cast<std::size_t>(a.n_reads + 1));
        KMERX_CUDA_CHECK(cudaMemcpyAsync(off.data(), a.offsets, off.size() * sizeof(int64_t), cudaMemcpyDeviceToHost, s));
        KMERX_CUDA_CHECK(cudaStreamSynchronize(s));
        std::size_t i = 0;
        while (i + 1 < off.size() && off[i + 1] <= t) ++i;
        out_of_range("position", t - off[i], a.pos_rows, t);
    }
    const int64_t h = a.qr_m > 0 ? 1 : a.h;
    for (int64_t j = 0; j < h; ++j) {
        const int64_t k = t * a.h + j;
        const int64_t id = a.ids.u32 ? int64_t(fetch(a.ids.u32 + k, s)) : fetch(a.ids.i64 + k, s);
        if (a.qr_m > 0) {
            if (id < 0) out_of_range("id", id, a.table.rows * a.qr_m, t);
            if (id / a.qr_m >= a.table.rows) out_of_range("id", id / a.qr_m, a.table.rows, t);
            if (id % a.qr_m >= a.table2.rows) out_of_range("id", id % a.qr_m, a.table2.rows, t);
        } else if (id < 0 || id >= a.table.rows) {
            out_of_range("id", id, a.table.rows, t);
        }
    }
    throw std::out_of_range("token " + std::to_string(t) + " is out of range");  // not reached
}

}  // namespace

int64_t check_reads(const int64_t* d_offsets, int64_t n_reads, const int64_t* d_out_rows, int64_t out_capacity,
                    cudaStream_t stream) {
    if (n_reads < 0) throw std::invalid_argument("n_reads must be >= 0, got " + std::to_string(n_reads));
    ErrorWord err(stream);
    check_reads_kernel<<<grid_for(n_reads + 1), kThreads, 0, stream>>>(d_offsets, n_reads, d_out_rows, out_capacity,
                                                                       err.get());
    KMERX_CUDA_CHECK_LAUNCH();
    const unsigned long long word = err.read();
    if (word == kNoError) return fetch(d_offsets + n_reads, stream);
    const auto i = static_cast<int64_t>(word >> 1);
    const int64_t at = fetch(d_offsets + i, stream);
    if ((word & 1) == kBadOffsets) {
        if (i == 0)
            throw std::invalid_argument("offsets[0] must be 0, got " + std::to_string(at));
        throw std::invalid_argument("offsets must be non-decreasing, offsets[" + std::to_string(i) + "] = " +
                                    std::to_string(at) + " < offsets[" + std::to_string(i - 1) + "] = " +
                                    std::to_string(fetch(d_offsets + i - 1, stream)));
    }
    const int64_t len = fetch(d_offsets + i + 1, stream) - at;
    throw std::invalid_argument("out_rows[" + std::to_string(i) + "] = " + std::to_string(fetch(d_out_rows + i, stream)) +
                                ": the read's " + std::to_string(len) + " rows fall outside out's " +
                                std::to_string(out_capacity) + " rows");
}

void lookup(const LookupArgs& a, cudaStream_t stream) {
    if (a.n_reads <= 0) return;
    ErrorWord err(stream);
    if (a.pool == Pool::None) {
        const int64_t begin = fetch(a.offsets, stream), end = fetch(a.offsets + a.n_reads, stream);
        if (end > begin) {
            token_kernel<<<grid_for((end - begin) * kWarp), kThreads, 0, stream>>>(a, begin, end, err.get());
            KMERX_CUDA_CHECK_LAUNCH();
        }
    } else {
        pooled_kernel<<<grid_for(a.n_reads * kWarp), kThreads, 0, stream>>>(a, err.get());
        KMERX_CUDA_CHECK_LAUNCH();
    }
    const unsigned long long word = err.read();
    if (word != kNoError) throw_token_error(a, word, stream);
}

}  // namespace kmerx::cuda
