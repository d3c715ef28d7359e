// Embedding rows in their storage formats, and virtual rows. Header-only and usable from CUDA
// (KMERX_HD marks host + device functions), so the CPU and GPU decode the same bytes the same way
// and generate bit-identical virtual rows.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define KMERX_HD __host__ __device__ __forceinline__
#else
#define KMERX_HD inline
#endif

namespace kmerx {

// Storage format of one row of `dim` values:
//   F32, F16 (IEEE binary16), BF16: dim values, little endian.
//   I8: dim uint8 codes, then fp32 scale and fp32 bias (FBGEMM's fused 8-bit row-wise layout);
//       value = code * scale + bias.
//   I4: ceil(dim / 2) bytes of 4-bit codes, value 2j in the low nibble of byte j, then fp32 scale
//       and bias.
// Quantized rows use the row's min as bias and (max - min) / (levels - 1) as scale, with codes
// rounded to nearest, so |value - decoded| <= scale / 2 (plus fp32 rounding).
enum class Dtype : int { F32 = 0, F16 = 1, BF16 = 2, I8 = 3, I4 = 4 };

KMERX_HD int64_t row_bytes(Dtype t, int64_t dim) {
    switch (t) {
        case Dtype::F32: return 4 * dim;
        case Dtype::F16:
        case Dtype::BF16: return 2 * dim;
        case Dtype::I8: return dim + 8;
        case Dtype::I4: return (dim + 1) / 2 + 8;
    }
    return 0;
}

KMERX_HD uint32_t float_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
}

KMERX_HD float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}

// fp32 -> binary16, round to nearest even; overflow to inf, NaN stays NaN (as F16C's vcvtps2ph).
KMERX_HD uint16_t f32_to_f16(float f) {
    uint32_t x = float_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u | ((x >> 13) & 0x3ffu) : 0u));
    if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65536
    if (x < 0x38800000u) {                                               // half subnormal (or zero)
        if (x < 0x33000000u) return static_cast<uint16_t>(sign);         // below 2^-25: rounds to 0
        const uint32_t m = (x & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - (x >> 23);  // value / 2^-24 = m >> shift
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) ++q;
        return static_cast<uint16_t>(sign | q);
    }
    uint32_t h = (x - 0x38000000u) >> 13;  // rebias the exponent 127 -> 15
    const uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
}

KMERX_HD float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m * 2^-24, exact
        return bits_float(float_bits(v) | sign);
    }
    if (e == 31) return bits_float(sign | 0x7f800000u | (m << 13));
    return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

// fp32 -> bfloat16, round to nearest even; NaN stays a (quiet) NaN.
KMERX_HD uint16_t f32_to_bf16(float f) {
    const uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

KMERX_HD float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

// ---- quantized rows ----------------------------------------------------------------------------

KMERX_HD void quant_params(const float* x, int64_t dim, int levels, float* scale, float* bias) {
    float lo = x[0], hi = x[0];
    for (int64_t j = 1; j < dim; ++j) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    *bias = lo;
    *scale = (hi - lo) / static_cast<float>(levels - 1);
}

KMERX_HD int quant_code(float v, float bias, float inv, int levels) {
    const float q = (v - bias) * inv + 0.5f;
    int c = static_cast<int>(q);  // q >= 0 up to rounding of an exact 0
    return c < 0 ? 0 : (c >= levels ? levels - 1 : c);
}

// Encodes dim fp32 values into one row of `t` at dst (row_bytes(t, dim) bytes).
KMERX_HD void encode_row(const float* x, int64_t dim, Dtype t, uint8_t* dst) {
    switch (t) {
        case Dtype::F32: std::memcpy(dst, x, 4 * static_cast<size_t>(dim)); return;
        case Dtype::F16:
        case Dtype::BF16:
            for (int64_t j = 0; j < dim; ++j) {
                const uint16_t h = t == Dtype::F16 ? f32_to_f16(x[j]) : f32_to_bf16(x[j]);
                std::memcpy(dst + 2 * j, &h, 2);
            }
            return;
        case Dtype::I8:
        case Dtype::I4: {
            if (dim == 0) {
                std::memset(dst, 0, 8);
                return;
            }
            const int levels = t == Dtype::I8 ? 256 : 16;
            float scale, bias;
            quant_params(x, dim, levels, &scale, &bias);
            const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
            const int64_t data = row_bytes(t, dim) - 8;
            if (t == Dtype::I8) {
                for (int64_t j = 0; j < dim; ++j) dst[j] = static_cast<uint8_t>(quant_code(x[j], bias, inv, levels));
            } else {
                for (int64_t b = 0; b < data; ++b) {
                    const int lo = quant_code(x[2 * b], bias, inv, levels);
                    const int hi = 2 * b + 1 < dim ? quant_code(x[2 * b + 1], bias, inv, levels) : 0;
                    dst[b] = static_cast<uint8_t>(lo | (hi << 4));
                }
            }
            std::memcpy(dst + data, &scale, 4);
            std::memcpy(dst + data + 4, &bias, 4);
            return;
        }
    }
}

// Value j of a row of `t` (the slow, obviously correct path; kernels decode whole rows).
KMERX_HD float decode_value(const uint8_t* row, int64_t dim, Dtype t, int64_t j) {
    switch (t) {
        case Dtype::F32: {
            float v;
            std::memcpy(&v, row + 4 * j, 4);
            return v;
        }
        case Dtype::F16:
        case Dtype::BF16: {
            uint16_t h;
            std::memcpy(&h, row + 2 * j, 2);
            return t == Dtype::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        case Dtype::I8:
        case Dtype::I4: {
            const int64_t data = row_bytes(t, dim) - 8;
            float scale, bias;
            std::memcpy(&scale, row + data, 4);
            std::memcpy(&bias, row + data + 4, 4);
            const int code = t == Dtype::I8 ? row[j] : (row[j >> 1] >> ((j & 1) * 4)) & 0xf;
            return static_cast<float>(code) * scale + bias;
        }
    }
    return 0.0f;
}

// ---- virtual rows ------------------------------------------------------------------------------

KMERX_HD uint64_t mix64(uint64_t z) {  // splitmix64's finalizer
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Rows that are a pure function of (seed, row): value j of row r is drawn from splitmix64 stream
// mix64(seed ^ mix64(r)), element j + 1, with integer arithmetic and one fp32 multiply, so every
// machine and device gives the same bits.
//   Zeros:   0.
//   Uniform: (2u + 1 - 2^24) * scale / 2^24 for u the top 24 bits: uniform on (-scale, scale).
//   Normal:  (sum of four 16-bit uniforms - 131070) * factor: Irwin-Hall(4), mean 0, standard
//            deviation `scale`, bounded by +-3.46 scale (a close, exact-everywhere stand-in for N(0, scale^2)).
enum class Init : int { Zeros = 0, Uniform = 1, Normal = 2 };

struct VirtualInit {
    uint64_t seed = 0;
    Init kind = Init::Zeros;
    float factor = 0.0f;  // from make_virtual_init: per-unit multiplier of the integer draw
};

// factor = scale / 2^24 (Uniform) or scale / sqrt(4 (65536^2 - 1) / 12) (Normal), computed in
// double and rounded once, on the host.
inline VirtualInit make_virtual_init(uint64_t seed, Init kind, double scale) {
    VirtualInit v;
    v.seed = seed;
    v.kind = kind;
    if (kind == Init::Uniform) v.factor = static_cast<float>(scale / 16777216.0);
    if (kind == Init::Normal) v.factor = static_cast<float>(scale / std::sqrt((65536.0 * 65536.0 - 1.0) / 3.0));
    return v;
}

KMERX_HD float virtual_value(const VirtualInit& v, uint64_t stream, int64_t j) {
    const uint64_t h = mix64(stream + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(j + 1));
    if (v.kind == Init::Uniform) {
        const int32_t c = static_cast<int32_t>(2 * (h >> 40) + 1) - (1 << 24);
        return static_cast<float>(c) * v.factor;
    }
    const int32_t s = static_cast<int32_t>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
    return static_cast<float>(s - 131070) * v.factor;
}

KMERX_HD uint64_t virtual_stream(const VirtualInit& v, uint64_t row) { return mix64(v.seed ^ mix64(row)); }

// Writes the fp32 values of virtual row `row` to x[0..dim).
KMERX_HD void virtual_row(const VirtualInit& v, uint64_t row, int64_t dim, float* x) {
    if (v.kind == Init::Zeros) {
        for (int64_t j = 0; j < dim; ++j) x[j] = 0.0f;
        return;
    }
    const uint64_t s = virtual_stream(v, row);
    for (int64_t j = 0; j < dim; ++j) x[j] = virtual_value(v, s, j);
}

}  // namespace kmerx
