// The fused lookup kernel, compiled twice: lookup.cpp (portable) and lookup_avx2.cpp (AVX2 + F16C,
// KMERX_LOOKUP_AVX2). Only row decoding and fp16 output differ between the two; the arithmetic is the
// same fp32 adds and multiplies in the same order (no FMA), so both give the same bits.
#include "kmerx/common.hpp"
#include "kmerx/lookup.hpp"
#include "kmerx/rows.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if KMERX_LOOKUP_AVX2
#include <immintrin.h>
#endif

namespace kmerx::KMERX_LOOKUP_NS {

namespace {

enum class Op { Set, Add, AddScaled };

#if KMERX_LOOKUP_AVX2
template <Dtype D>
inline __m256 load8(const uint8_t* row, int64_t j, __m256 scale, __m256 bias) {
    if constexpr (D == Dtype::F32) {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + j);
    } else if constexpr (D == Dtype::F16) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j)));
    } else if constexpr (D == Dtype::BF16) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * j)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    } else if constexpr (D == Dtype::I8) {
        const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + j)));
        return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c), scale), bias);
    } else {
        uint32_t four;
        std::memcpy(&four, row + j / 2, 4);
        const __m128i x = _mm_cvtsi32_si128(static_cast<int>(four)), m = _mm_set1_epi8(0x0f);
        const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(x, m), _mm_and_si128(_mm_srli_epi16(x, 4), m));
        const __m256i c = _mm256_cvtepu8_epi32(nib);
        return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c), scale), bias);
    }
}
#endif

// dst[j] = / += / += w * value j of the row, j < dim.
template <Dtype D, Op O>
inline void row_op(const uint8_t* row, int64_t dim, float w, float* dst) {
    int64_t j = 0;
#if KMERX_LOOKUP_AVX2
    __m256 scale = _mm256_setzero_ps(), bias = _mm256_setzero_ps();
    if constexpr (D == Dtype::I8 || D == Dtype::I4) {
        float sb[2];
        std::memcpy(sb, row + row_bytes(D, dim) - 8, 8);
        scale = _mm256_set1_ps(sb[0]);
        bias = _mm256_set1_ps(sb[1]);
    }
    const __m256 wv = _mm256_set1_ps(w);
    for (; j + 8 <= dim; j += 8) {
        const __m256 v = load8<D>(row, j, scale, bias);
        if constexpr (O == Op::Set) _mm256_storeu_ps(dst + j, v);
        else if constexpr (O == Op::Add) _mm256_storeu_ps(dst + j, _mm256_add_ps(_mm256_loadu_ps(dst + j), v));
        else _mm256_storeu_ps(dst + j, _mm256_add_ps(_mm256_loadu_ps(dst + j), _mm256_mul_ps(wv, v)));
    }
#endif
    for (; j < dim; ++j) {
        const float v = decode_value(row, dim, D, j);
        if constexpr (O == Op::Set) dst[j] = v;
        else if constexpr (O == Op::Add) dst[j] += v;
        else dst[j] += w * v;
    }
}

template <Op O>
inline void row_op(Dtype d, const uint8_t* row, int64_t dim, float w, float* dst) {
    switch (d) {
        case Dtype::F32: return row_op<Dtype::F32, O>(row, dim, w, dst);
        case Dtype::F16: return row_op<Dtype::F16, O>(row, dim, w, dst);
        case Dtype::BF16: return row_op<Dtype::BF16, O>(row, dim, w, dst);
        case Dtype::I8: return row_op<Dtype::I8, O>(row, dim, w, dst);
        case Dtype::I4: return row_op<Dtype::I4, O>(row, dim, w, dst);
    }
}

#if KMERX_LOOKUP_AVX2
// acc[0..8 NV) += columns [col, col + 8 NV) of rows[t] for every token, accumulators in registers:
// one pass over the tokens per group of columns keeps the out-of-order window full of row loads
// instead of accumulator stores. `row_of(t)` gives token t's row; rows ahead are prefetched.
template <Dtype D, int NV, class RowOf>
inline void sum_columns(RowOf&& row_of, int64_t t0, int64_t t1, int64_t t_end, int64_t dim, int64_t col,
                        int64_t ahead, float* acc) {
    __m256 a[NV];
    for (int v = 0; v < NV; ++v) a[v] = _mm256_setzero_ps();
    constexpr int64_t bpv2 = D == Dtype::F32 ? 8 : D == Dtype::I8 ? 2 : D == Dtype::I4 ? 1 : 4;  // 2 x bytes per value
    const int64_t lo = col * bpv2 / 2, hi = (col + 8 * NV) * bpv2 / 2;
    const int64_t meta = row_bytes(D, dim) - 8;
    for (int64_t t = t0; t < t1; ++t) {
        if (t + ahead < t_end) {
            const uint8_t* p = row_of(t + ahead);
            for (int64_t b = lo; b < hi; b += 64) _mm_prefetch(reinterpret_cast<const char*>(p + b), _MM_HINT_T0);
            if constexpr (D == Dtype::I8 || D == Dtype::I4) _mm_prefetch(reinterpret_cast<const char*>(p + meta), _MM_HINT_T0);
        }
        const uint8_t* r = row_of(t);
        __m256 scale = _mm256_setzero_ps(), bias = _mm256_setzero_ps();
        if constexpr (D == Dtype::I8 || D == Dtype::I4) {
            float sb[2];
            std::memcpy(sb, r + meta, 8);
            scale = _mm256_set1_ps(sb[0]);
            bias = _mm256_set1_ps(sb[1]);
        }
        for (int v = 0; v < NV; ++v) a[v] = _mm256_add_ps(a[v], load8<D>(r, col + 8 * v, scale, bias));
    }
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(acc + col + 8 * v, a[v]);
}

// acc[0..dim) = sum over tokens of their rows; dim % 8 == 0. Rows up to 128 wide take one pass,
// which prefetches on into the following reads' tokens (up to t_end).
template <Dtype D, class RowOf>
inline void sum_rows(RowOf&& row_of, int64_t t0, int64_t t1, int64_t t_end, int64_t dim, int64_t ahead, float* acc) {
    if (dim == 128) return sum_columns<D, 16>(row_of, t0, t1, t_end, dim, 0, ahead, acc);
    if (dim == 64) return sum_columns<D, 8>(row_of, t0, t1, t_end, dim, 0, ahead, acc);
    int64_t col = 0;
    for (; col + 64 <= dim; col += 64) sum_columns<D, 8>(row_of, t0, t1, t1, dim, col, ahead, acc);
    for (; col < dim; col += 8) sum_columns<D, 1>(row_of, t0, t1, t1, dim, col, ahead, acc);
}
#endif

inline void store(const float* v, int64_t dim, bool f16, void* out, int64_t row) {
    if (!f16) {
        std::memcpy(static_cast<float*>(out) + row * dim, v, static_cast<std::size_t>(dim) * 4);
        return;
    }
    uint16_t* o = static_cast<uint16_t*>(out) + row * dim;
    int64_t j = 0;
#if KMERX_LOOKUP_AVX2
    for (; j + 8 <= dim; j += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + j), _mm256_cvtps_ph(_mm256_loadu_ps(v + j), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; j < dim; ++j) o[j] = f32_to_f16(v[j]);
}

inline void prefetch_row(const uint8_t* p, int64_t bytes) {
    for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b);
}

[[noreturn]] void out_of_range(const char* what, int64_t value, int64_t limit, int64_t token) {
    throw std::out_of_range(std::string(what) + " " + std::to_string(value) + " of token " + std::to_string(token) +
                            " is outside 0.." + std::to_string(limit - 1));
}

struct Kernel {
    const LookupArgs& a;
    int64_t dim, rb, rb2;
    bool plain;  // one id per token, weight 1, one table

    explicit Kernel(const LookupArgs& args)
        : a(args),
          dim(args.table.dim),
          rb(row_bytes(args.table.dtype, args.table.dim)),
          rb2(row_bytes(args.table2.dtype, args.table2.dim)),
          plain(args.h == 1 && !args.weights && !args.slots && args.qr_m == 0) {}

    const uint8_t* row(const RowTable& t, int64_t stride, int64_t k, int64_t id, int64_t token) const {
        if (t.ptrs) return t.ptrs[k];
        if (id < 0 || id >= t.rows) out_of_range("id", id, t.rows, token);
        return t.base + id * stride;
    }

    // The vector of token t (before its positional term) into v.
    void token_vector(int64_t t, float* v, float* tmp) const {
        if (a.qr_m > 0) {
            const int64_t id = a.ids.at(t);
            if (id < 0) out_of_range("id", id, a.table.rows * a.qr_m, t);
            row_op<Op::Set>(a.table.dtype, row(a.table, rb, t, id / a.qr_m, t), dim, 1.0f, v);
            row_op<Op::Set>(a.table2.dtype, row(a.table2, rb2, t, id % a.qr_m, t), dim, 1.0f, tmp);
            if (a.combine == Combine::Product)
                for (int64_t j = 0; j < dim; ++j) v[j] *= tmp[j];
            else
                for (int64_t j = 0; j < dim; ++j) v[j] += tmp[j];
            return;
        }
        if (plain) {
            row_op<Op::Set>(a.table.dtype, row(a.table, rb, t, a.ids.at(t), t), dim, 1.0f, v);
            return;
        }
        for (int64_t j = 0; j < dim; ++j) v[j] = 0.0f;
        for (int64_t j = 0; j < a.h; ++j) {
            const int64_t k = t * a.h + j;
            float w = 1.0f;
            if (a.weights) {
                w = a.weights[k];
            } else if (a.slots) {
                const int64_t s = a.slots[t];
                if (s >= a.n_slots) out_of_range("weight slot", s, a.n_slots, t);
                w = a.slot_weights[s * a.h + j];
            }
            row_op<Op::AddScaled>(a.table.dtype, row(a.table, rb, k, a.ids.at(k), t), dim, w, v);
        }
    }

    const float* pos_row(int64_t t, int64_t index) const {
        if (!a.pos_table) return nullptr;
        const int64_t p = a.positions ? a.positions[t] : index;
        if (p < 0) return nullptr;
        if (p >= a.pos_rows) out_of_range("position", p, a.pos_rows, t);
        return a.pos_table + p * dim;
    }

    void prefetch(int64_t t, int64_t end) const {
        if (!plain || t >= end) return;
        if (a.table.ptrs) {
            prefetch_row(a.table.ptrs[t], rb);
            return;
        }
        const int64_t id = a.ids.at(t);
        if (id >= 0 && id < a.table.rows) prefetch_row(a.table.base + id * rb, rb);
    }

    void run(std::size_t r0, std::size_t r1) const {
        constexpr int64_t kAhead = 8;  // rows in flight: hides DRAM latency of a random gather
        std::vector<float> buf(static_cast<std::size_t>(3 * dim));
        float *v = buf.data(), *tmp = v + dim, *acc = tmp + dim;
        const bool sum = a.pool == Pool::Sum || a.pool == Pool::Mean;
        for (std::size_t i = r0; i < r1; ++i) {
            const int64_t t0 = a.offsets[i], t1 = a.offsets[i + 1];
            if (a.pool == Pool::Max)
                for (int64_t j = 0; j < dim; ++j) acc[j] = -std::numeric_limits<float>::infinity();
            else if (sum)
                for (int64_t j = 0; j < dim; ++j) acc[j] = 0.0f;
            if (sum && plain) {
                // The hot path: rows straight into the accumulator, then the positional terms (in
                // this order on every path, so the AVX2 and portable builds give the same bits).
#if KMERX_LOOKUP_AVX2
                if (dim % 8 == 0) sum_plain(t0, t1, a.offsets[r1], acc);  // prefetches on its own
                else
#endif
                {
                    for (int64_t t = t0; t < std::min(t1, t0 + kAhead); ++t) prefetch(t, t1);
                    for (int64_t t = t0; t < t1; ++t) {
                        prefetch(t + kAhead, t1);
                        row_op<Op::Add>(a.table.dtype, row(a.table, rb, t, a.ids.at(t), t), dim, 1.0f, acc);
                    }
                }
                for (int64_t t = t0; t < t1; ++t)
                    if (const float* pos = pos_row(t, t - t0))
                        for (int64_t j = 0; j < dim; ++j) acc[j] += pos[j];
                finish(i, t0, t1, acc);
                continue;
            }
            for (int64_t t = t0; t < std::min(t1, t0 + kAhead); ++t) prefetch(t, t1);
            for (int64_t t = t0; t < t1; ++t) {
                prefetch(t + kAhead, t1);
                const float* pos = pos_row(t, t - t0);
                if (a.pool == Pool::None && !a.out_f16) {  // fp32 per token: build it in place
                    float* o = static_cast<float*>(a.out) + (a.out_rows ? a.out_rows[i] + (t - t0) : t) * dim;
                    token_vector(t, o, tmp);
                    if (pos)
                        for (int64_t j = 0; j < dim; ++j) o[j] += pos[j];
                    continue;
                }
                token_vector(t, v, tmp);
                if (pos)
                    for (int64_t j = 0; j < dim; ++j) v[j] += pos[j];
                if (sum) {
                    for (int64_t j = 0; j < dim; ++j) acc[j] += v[j];
                } else if (a.pool == Pool::Max) {
                    for (int64_t j = 0; j < dim; ++j) acc[j] = v[j] > acc[j] ? v[j] : acc[j];
                } else {
                    store(v, dim, a.out_f16, a.out, a.out_rows ? a.out_rows[i] + (t - t0) : t);
                }
            }
            if (a.pool != Pool::None) finish(i, t0, t1, acc);
        }
    }

    void finish(std::size_t i, int64_t t0, int64_t t1, float* acc) const {
        if (t1 == t0) {
            for (int64_t j = 0; j < dim; ++j) acc[j] = 0.0f;
        } else if (a.pool == Pool::Mean) {
            const float inv = 1.0f / static_cast<float>(t1 - t0);
            for (int64_t j = 0; j < dim; ++j) acc[j] *= inv;
        }
        store(acc, dim, a.out_f16, a.out, static_cast<int64_t>(i));
    }

#if KMERX_LOOKUP_AVX2
    void sum_plain(int64_t t0, int64_t t1, int64_t t_end, float* acc) const {
        constexpr int64_t ahead = 16;  // tokens: enough rows in flight to cover DRAM latency
        const RowTable& tb = a.table;
        auto go = [&](auto dtype_tag) {
            constexpr Dtype D = decltype(dtype_tag)::value;
            if (tb.ptrs) {
                sum_rows<D>([&](int64_t t) { return tb.ptrs[t]; }, t0, t1, t_end, dim, ahead, acc);
            } else {
                for (int64_t t = t0; t < t1; ++t) {
                    const int64_t id = a.ids.at(t);
                    if (id < 0 || id >= tb.rows) out_of_range("id", id, tb.rows, t);
                }
                // Prefetches may run ahead into ids not checked yet: clamp them into the table.
                const auto rows = static_cast<uint64_t>(tb.rows);
                auto row_of = [&](int64_t t) {
                    const int64_t id = a.ids.at(t);
                    return tb.base + (static_cast<uint64_t>(id) < rows ? id : 0) * rb;
                };
                sum_rows<D>(row_of, t0, t1, t_end, dim, ahead, acc);
            }
        };
        switch (tb.dtype) {
            case Dtype::F32: return go(std::integral_constant<Dtype, Dtype::F32>{});
            case Dtype::F16: return go(std::integral_constant<Dtype, Dtype::F16>{});
            case Dtype::BF16: return go(std::integral_constant<Dtype, Dtype::BF16>{});
            case Dtype::I8: return go(std::integral_constant<Dtype, Dtype::I8>{});
            case Dtype::I4: return go(std::integral_constant<Dtype, Dtype::I4>{});
        }
    }
#endif
};

}  // namespace

void lookup(const LookupArgs& a) {
    const Kernel k(a);
    parallel_for_weighted(a.offsets, static_cast<std::size_t>(a.n_reads),
                          [&](std::size_t b, std::size_t e) { k.run(b, e); }, 4096);
}

}  // namespace kmerx::KMERX_LOOKUP_NS
