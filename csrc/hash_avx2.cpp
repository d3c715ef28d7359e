// AVX2 ntHash kernels (compiled with -mavx2; chosen at run time by simd_level()). Bit-identical to
// run_scalar / next_invalid_scalar in hash.cpp.
//
// A run of m k-mers is cut into 4 contiguous quarters rolled side by side, one per 64-bit lane, so the
// serial srol/sror dependency chain of ntHash is spread over 4 independent chains. Bases come in 8 at
// a time per lane (one 64-bit load); their index into the 4-entry seed tables is (byte & 6) / 2
// (A0 C1 T2 G3 for ASCII, either case), looked up with vpermd. Outputs are transposed 4x4 so every
// lane stores 4 consecutive hashes with one 256-bit store.
#include <immintrin.h>

#include <cstring>

#include "kmerx/hash.hpp"

namespace kmerx::nthash_detail {
namespace {

inline uint64_t load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// A table already in vector order A0 C1 T2 G3.
inline __m256i vtable(const uint64_t* t) {
    return _mm256_setr_epi64x(static_cast<long long>(t[0]), static_cast<long long>(t[1]),
                              static_cast<long long>(t[2]), static_cast<long long>(t[3]));
}

inline __m256i vsrol(__m256i x) {
    const __m256i m = _mm256_set1_epi64x(static_cast<long long>(0xFFFFFFFDFFFFFFFFULL));
    const __m256i b33 = _mm256_set1_epi64x(0x200000000LL), one = _mm256_set1_epi64x(1);
    // x + x rather than a shift: adds issue on more ports than shifts
    return _mm256_or_si256(_mm256_and_si256(_mm256_add_epi64(x, x), m),
                           _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi64(x, 30), b33),
                                           _mm256_and_si256(_mm256_srli_epi64(x, 32), one)));
}

inline __m256i vsror(__m256i x) {
    const __m256i m = _mm256_set1_epi64x(static_cast<long long>(0xFFFFFFFEFFFFFFFFULL));
    const __m256i b63 = _mm256_set1_epi64x(static_cast<long long>(0x8000000000000000ULL));
    const __m256i one = _mm256_set1_epi64x(1);
    return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi64(x, 1), m),
                           _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi64(x, 30), b63),
                                           _mm256_slli_epi64(_mm256_and_si256(x, one), 32)));
}

template <Strand S>
inline __m256i vpick(__m256i f, __m256i r) {
    if constexpr (S == Strand::Forward) return f;
    else if constexpr (S == Strand::Reverse) return r;
    else return _mm256_add_epi64(f, r);
}

template <Strand S>
inline uint64_t pick(uint64_t f, uint64_t r) {
    if constexpr (S == Strand::Forward) return f;
    else if constexpr (S == Strand::Reverse) return r;
    else return f + r;
}

// The scalar parts here index the tables in vector order, (byte >> 1) & 3 (A0 C1 T2 G3), so every
// byte maps somewhere: a non-ACGT byte spoils only the hashes of the windows holding it, which callers
// discard (see nthash() in hash.cpp, which rolls across read boundaries and Ns of short runs).
inline unsigned vcode(uint8_t b) { return (b >> 1) & 3u; }

Tables vector_order(const Tables& t) {
    Tables v{};
    constexpr int from[4] = {0, 1, 3, 2};
    for (int i = 0; i < 4; ++i) {
        v.f_in[i] = t.f_in[from[i]];
        v.f_out[i] = t.f_out[from[i]];
        v.r_in[i] = t.r_in[from[i]];
        v.r_out[i] = t.r_out[from[i]];
    }
    return v;
}

// Rolls from the k-mer at p (state f, r) to the k-mers p+1 .. last, writing out[p+1 .. last].
// t in vector order.
template <Strand S>
void roll_scalar(const uint8_t* seq, int64_t k, const Tables& t, int64_t p, int64_t last, uint64_t f,
                 uint64_t r, uint64_t* out) {
    for (++p; p <= last; ++p) {
        const unsigned c = vcode(seq[p + k - 1]), o = vcode(seq[p - 1]);
        f = srol(f) ^ t.f_in[c] ^ t.f_out[o];
        r = sror(r ^ t.r_in[c] ^ t.r_out[o]);
        out[p] = pick<S>(f, r);
    }
}

inline void first_kmer(const uint8_t* s, int64_t k, const Tables& t, uint64_t& f, uint64_t& r) {
    f = r = 0;
    for (int64_t i = 0; i < k; ++i) {
        const unsigned c = vcode(s[i]);
        f = srol(f) ^ t.f_in[c];
        r = sror(r ^ t.r_in[c]);
    }
}

inline void store_transposed(uint64_t* out, int64_t q, int64_t s, __m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i t0 = _mm256_unpacklo_epi64(a, b), t1 = _mm256_unpackhi_epi64(a, b);
    const __m256i t2 = _mm256_unpacklo_epi64(c, d), t3 = _mm256_unpackhi_epi64(c, d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + s), _mm256_permute2x128_si256(t0, t2, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q + s), _mm256_permute2x128_si256(t1, t3, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * q + s), _mm256_permute2x128_si256(t0, t2, 0x31));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 3 * q + s), _mm256_permute2x128_si256(t1, t3, 0x31));
}

template <Strand S>
void run_short(const uint8_t* seq, int64_t len, int64_t k, const Tables& t, uint64_t* out) {
    uint64_t f, r;
    first_kmer(seq, k, t, f, r);
    out[0] = pick<S>(f, r);
    roll_scalar<S>(seq, k, t, 0, len - k, f, r, out);
}

template <Strand S>
void run_lanes(const uint8_t* seq, int64_t len, int64_t k, const Tables& t, uint64_t* out) {
    const int64_t m = len - k + 1;
    if (m < 64) return run_short<S>(seq, len, k, t, out);
    const int64_t q = m / 4;
    uint64_t f0[4], r0[4];
    for (int j = 0; j < 4; ++j) {
        first_kmer(seq + j * q, k, t, f0[j], r0[j]);
        out[j * q] = pick<S>(f0[j], r0[j]);
    }
    const __m256i tfi = vtable(t.f_in), tfo = vtable(t.f_out), tri = vtable(t.r_in), tro = vtable(t.r_out);
    const __m256i six = _mm256_set1_epi8(6);
    // vpermd reads 3 bits per dword: a qword picks table entry c with dword indices (2c, 2c + 1). A
    // base byte & 6 is 2c; the same 4 bytes copied into the high dword with bit 0 set give 2c + 1, so
    // shifting the qword right by 8j yields the index of base j (j < 4) with one instruction.
    const __m256i odd = _mm256_set1_epi64x(0x0101010100000000LL);
    __m256i f = _mm256_setr_epi64x(static_cast<long long>(f0[0]), static_cast<long long>(f0[1]),
                                   static_cast<long long>(f0[2]), static_cast<long long>(f0[3]));
    __m256i r = _mm256_setr_epi64x(static_cast<long long>(r0[0]), static_cast<long long>(r0[1]),
                                   static_cast<long long>(r0[2]), static_cast<long long>(r0[3]));
    const auto step = [&](__m256i ii, __m256i io) {
        const __m256i df = _mm256_xor_si256(_mm256_permutevar8x32_epi32(tfi, ii), _mm256_permutevar8x32_epi32(tfo, io));
        const __m256i dr = _mm256_xor_si256(_mm256_permutevar8x32_epi32(tri, ii), _mm256_permutevar8x32_epi32(tro, io));
        f = _mm256_xor_si256(vsrol(f), df);
        r = vsror(_mm256_xor_si256(r, dr));
        return vpick<S>(f, r);
    };
    const auto four = [&](__m256i din, __m256i dout, int64_t at) {
        const __m256i v0 = step(din, dout);
        const __m256i v1 = step(_mm256_srli_epi64(din, 8), _mm256_srli_epi64(dout, 8));
        const __m256i v2 = step(_mm256_srli_epi64(din, 16), _mm256_srli_epi64(dout, 16));
        const __m256i v3 = step(_mm256_srli_epi64(din, 24), _mm256_srli_epi64(dout, 24));
        store_transposed(out, q, at, v0, v1, v2, v3);
    };
    int64_t s = 1;  // step s computes the k-mer j*q + s of every lane j
    for (; s + 8 <= q; s += 8) {
        const uint8_t* in = seq + s + k - 1;
        const uint8_t* ot = seq + s - 1;
        const __m256i vin = _mm256_and_si256(
            _mm256_setr_epi64x(static_cast<long long>(load64(in)), static_cast<long long>(load64(in + q)),
                               static_cast<long long>(load64(in + 2 * q)), static_cast<long long>(load64(in + 3 * q))),
            six);
        const __m256i vout = _mm256_and_si256(
            _mm256_setr_epi64x(static_cast<long long>(load64(ot)), static_cast<long long>(load64(ot + q)),
                               static_cast<long long>(load64(ot + 2 * q)), static_cast<long long>(load64(ot + 3 * q))),
            six);
        four(_mm256_or_si256(_mm256_shuffle_epi32(vin, 0xA0), odd), _mm256_or_si256(_mm256_shuffle_epi32(vout, 0xA0), odd), s);
        four(_mm256_or_si256(_mm256_shuffle_epi32(vin, 0xF5), odd), _mm256_or_si256(_mm256_shuffle_epi32(vout, 0xF5), odd), s + 4);
    }
    alignas(32) uint64_t fl[4], rl[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(fl), f);
    _mm256_store_si256(reinterpret_cast<__m256i*>(rl), r);
    // Each lane finishes its quarter; the last one also takes the m - 4q k-mers left over.
    for (int j = 0; j < 4; ++j)
        roll_scalar<S>(seq, k, t, j * q + s - 1, j == 3 ? m - 1 : (j + 1) * q - 1, fl[j], rl[j], out);
}

}  // namespace

void run_avx2(const uint8_t* seq, int64_t len, int64_t k, const Tables& tables, Strand strand, uint64_t* out) {
    const Tables t = vector_order(tables);
    switch (strand) {
        case Strand::Forward: return run_lanes<Strand::Forward>(seq, len, k, t, out);
        case Strand::Reverse: return run_lanes<Strand::Reverse>(seq, len, k, t, out);
        default: return run_lanes<Strand::Canonical>(seq, len, k, t, out);
    }
}

int64_t next_invalid_avx2(const uint8_t* s, int64_t from, int64_t to) {
    const __m256i up = _mm256_set1_epi8(static_cast<char>(0xDF));
    const __m256i a = _mm256_set1_epi8('A'), c = _mm256_set1_epi8('C'), g = _mm256_set1_epi8('G'),
                  tt = _mm256_set1_epi8('T');
    const auto bad_mask = [&](int64_t at) {  // bit i: s[at + i] is not ACGTacgt
        const __m256i x = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + at)), up);
        const __m256i ok = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(x, a), _mm256_cmpeq_epi8(x, c)),
                                           _mm256_or_si256(_mm256_cmpeq_epi8(x, g), _mm256_cmpeq_epi8(x, tt)));
        return ~static_cast<uint32_t>(_mm256_movemask_epi8(ok));
    };
    while (from + 32 <= to) {
        const uint32_t bad = bad_mask(from);
        if (bad) return from + __builtin_ctz(bad);
        from += 32;
    }
    if (from < to && to >= 32) {  // the last 32 bytes of s[0, to), overlapping what was checked
        const uint32_t bad = bad_mask(to - 32) >> (from - (to - 32));
        return bad ? from + __builtin_ctz(bad) : to;
    }
    return next_invalid_scalar(s, from, to);
}

}  // namespace kmerx::nthash_detail
