// Token schemes and batch encoding (kmerx/tokenize.hpp, kmerx/lsh.hpp).
#include "kmerx/tokenize.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kmerx/common.hpp"
#include "kmerx/lsh.hpp"

namespace kmerx {

BaseTable make_base_table(const std::string& order, bool fold_case) {
    std::string sorted = order;
    std::sort(sorted.begin(), sorted.end());
    if (order.size() != 4 || sorted != "ACGT")
        throw std::invalid_argument("base order must be a permutation of 'ACGT', got '" + order + "'");
    BaseTable t{};
    t.digit.fill(kInvalidBase);
    for (int d = 0; d < 4; ++d) {
        const auto c = static_cast<unsigned char>(order[d]);
        t.digit[c] = static_cast<uint8_t>(d);
        if (fold_case) t.digit[c | 0x20] = static_cast<uint8_t>(d);
    }
    for (int d = 0; d < 4; ++d) {
        const char c = "TGCA"[std::string("ACGT").find(order[d])];  // A-T, C-G
        t.comp[d] = static_cast<uint8_t>(order.find(c));
    }
    return t;
}

namespace {

void check(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

// Windows are produced in blocks of this many, so scratch memory stays small for chromosome-long reads.
constexpr int64_t kBlock = 4096;

// Calls fn(t, fw, rc, valid) for the n windows starting at a + t * stride (t = 0..n-1): the codes of
// the window and of its reverse complement, and whether all k bases are valid. Code is uint64_t
// (k <= 32) or unsigned __int128 (k <= 64).
template <class Code, class Fn>
void roll_codes(const uint8_t* seq, int64_t a, int64_t n, int64_t stride, int k, const BaseTable& base, Fn&& fn) {
    if (n <= 0) return;
    const int bits = 2 * k;
    const Code mask = bits == static_cast<int>(8 * sizeof(Code)) ? ~Code(0) : (Code(1) << bits) - 1;
    const int shift = 2 * (k - 1);
    Code fw = 0, rc = 0;
    int64_t valid = 0, t = 0, next = a + k - 1;
    const int64_t end = a + (n - 1) * stride + k;
    for (int64_t p = a; p < end; ++p) {
        const uint8_t d = base.digit[seq[p]];
        valid = d > 3 ? 0 : valid + 1;
        fw = ((fw << 2) | Code(d & 3)) & mask;
        rc = (rc >> 2) | (Code(base.comp[d & 3]) << shift);
        if (p == next) {
            fn(t++, fw, rc, valid >= k);
            next += stride;
        }
    }
}

template <class Code>
Code pick(Strand s, Code fw, Code rc) {
    return s == Strand::Forward ? fw : s == Strand::Reverse ? rc : std::min(fw, rc);
}

// The schemes with one token per k-mer window: blocks of windows go to fill_block.
class WindowScheme : public TokenScheme {
public:
    WindowScheme(int64_t k, int64_t stride, uint32_t unk) : k_(k), stride_(stride), unk_(unk) {
        check(stride >= 1, "stride must be >= 1, got " + std::to_string(stride));
    }
    int64_t count(const uint8_t*, int64_t len) const override { return len >= k_ ? (len - k_) / stride_ + 1 : 0; }
    void fill(const uint8_t* seq, int64_t len, int64_t first, int64_t n, uint32_t* ids, int32_t* pos,
              uint32_t* slots) const override {
        (void)len;
        for (int64_t b = 0; b < n; b += kBlock) {
            const int64_t m = std::min(kBlock, n - b);
            fill_block(seq, (first + b) * stride_, m, ids + b * h_, slots ? slots + b : nullptr);
            if (pos)
                for (int64_t t = 0; t < m; ++t) pos[b + t] = static_cast<int32_t>((first + b + t) * stride_);
        }
    }

protected:
    // The n windows starting at a, a + stride, ...: ids (h per window) and slots (when not null).
    virtual void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t* slots) const = 0;
    int64_t k_, stride_;
    uint32_t unk_;
};

class DirectScheme final : public WindowScheme {
public:
    DirectScheme(int k, int64_t stride, Strand strand, const BaseTable& base, uint32_t offset, uint32_t unk)
        : WindowScheme(k, stride, unk), strand_(strand), base_(base), offset_(offset) {
        check(k >= 1 && k <= 15, "k must be in 1..15 for direct ids, got " + std::to_string(k));
        check(offset <= UINT32_MAX - (1ULL << (2 * k)), "offset leaves no room for 4^k ids");
    }
    void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t*) const override {
        roll_codes<uint64_t>(seq, a, n, stride_, static_cast<int>(k_), base_, [&](int64_t t, uint64_t fw, uint64_t rc, bool ok) {
            ids[t] = ok ? offset_ + static_cast<uint32_t>(pick(strand_, fw, rc)) : unk_;
        });
    }

private:
    Strand strand_;
    BaseTable base_;
    uint32_t offset_;
};

class VocabScheme final : public WindowScheme {
public:
    VocabScheme(int k, int64_t stride, Strand strand, const VocabTable* vocab, uint32_t unk)
        : WindowScheme(k, stride, unk), strand_(strand), vocab_(vocab), base_(make_base_table("ACGT", true)) {
        check(k >= 1 && k <= 64, "k must be in 1..64 for a vocabulary, got " + std::to_string(k));
        check(vocab != nullptr && vocab->words() == (k > 32 ? 2 : 1), "the vocabulary's k-mer size does not match k");
    }
    void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t*) const override {
        const int words = vocab_->words();
        thread_local std::vector<uint64_t> codes;
        thread_local std::vector<uint8_t> valid;
        codes.resize(static_cast<std::size_t>(n * words));
        valid.resize(static_cast<std::size_t>(n));
        if (words == 1) {
            roll_codes<uint64_t>(seq, a, n, stride_, static_cast<int>(k_), base_, [&](int64_t t, uint64_t fw, uint64_t rc, bool ok) {
                codes[t] = pick(strand_, fw, rc);
                valid[t] = ok;
            });
        } else {
            using U128 = unsigned __int128;
            roll_codes<U128>(seq, a, n, stride_, static_cast<int>(k_), base_, [&](int64_t t, U128 fw, U128 rc, bool ok) {
                const U128 c = pick(strand_, fw, rc);
                codes[2 * t] = static_cast<uint64_t>(c >> 64);
                codes[2 * t + 1] = static_cast<uint64_t>(c);
                valid[t] = ok;
            });
        }
        vocab_->lookup(codes.data(), static_cast<std::size_t>(n), unk_, ids);
        for (int64_t t = 0; t < n; ++t)
            if (!valid[t]) ids[t] = unk_;
    }

private:
    Strand strand_;
    const VocabTable* vocab_;
    BaseTable base_;
};

// id = offset + value mod buckets (a mask when buckets is a power of two).
struct Buckets {
    uint64_t n = 1;
    uint32_t offset = 0;
    bool pow2 = true;
    Buckets() = default;
    Buckets(uint64_t count, uint32_t off, const char* name) : n(count), offset(off), pow2((count & (count - 1)) == 0) {
        check(count >= 1 && count <= UINT32_MAX - static_cast<uint64_t>(off),
              std::string(name) + " must be in 1.." + std::to_string(UINT32_MAX - static_cast<uint64_t>(off)) +
                  ", got " + std::to_string(count));
    }
    uint32_t operator()(uint64_t v) const { return offset + static_cast<uint32_t>(pow2 ? v & (n - 1) : v % n); }
};

class HashedScheme final : public WindowScheme {
public:
    HashedScheme(int64_t k, int64_t stride, Strand strand, int h, uint64_t buckets, uint64_t weight_buckets,
                 uint32_t offset, uint32_t unk)
        : WindowScheme(k, stride, unk), strand_(strand), ids_(buckets, offset, "buckets"),
          tables_(nthash_detail::make_tables(k)) {
        check(k >= 1 && k <= INT32_MAX, "k must be >= 1, got " + std::to_string(k));
        check(h >= 1 && h < kMaxNumHashes, "num_hashes must be in 1.." + std::to_string(kMaxNumHashes - 1) +
                                                ", got " + std::to_string(h));
        h_ = h;
        weight_buckets_ = weight_buckets;
        if (weight_buckets) slots_ = Buckets(weight_buckets, offset, "weight_buckets");
    }
    void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t* slots) const override {
        std::fill(ids, ids + n * h_, unk_);
        if (slots) std::fill(slots, slots + n, unk_);
        const bool avx2 = simd_level() >= Simd::AVX2;
        const int64_t end = a + (n - 1) * stride_ + k_;
        thread_local std::vector<uint64_t> hashes;
        int64_t i = a;
        while (i < end) {
            i = nthash_detail::next_valid(seq, i, end);
            const int64_t j = avx2 ? nthash_detail::next_invalid_avx2(seq, i, end) : nthash_detail::next_invalid_scalar(seq, i, end);
            if (j - i >= k_) {
                // Windows of this run: starts in [i, j - k], on the stride grid from a.
                const int64_t t0 = (i - a + stride_ - 1) / stride_, t1 = (j - k_ - a) / stride_;
                hashes.resize(static_cast<std::size_t>(j - i - k_ + 1));
                (avx2 ? nthash_detail::run_avx2 : nthash_detail::run_scalar)(seq + i, j - i, k_, tables_, strand_, hashes.data());
                for (int64_t t = t0; t <= t1; ++t) {
                    const uint64_t v = hashes[a + t * stride_ - i];
                    uint32_t* row = ids + t * h_;
                    row[0] = ids_(v);
                    for (int e = 1; e < h_; ++e) row[e] = ids_(nthash_detail::extra_hash(v, e, k_));
                    if (slots) slots[t] = slots_(nthash_detail::extra_hash(v, h_, k_));
                }
            }
            i = j;
        }
    }

private:
    Strand strand_;
    Buckets ids_, slots_;
    nthash_detail::Tables tables_;
};

// ---- pieces and chars -------------------------------------------------------------------------------

class PiecesScheme final : public TokenScheme {
public:
    PiecesScheme(int k, const BaseTable& base, uint32_t kmer_offset, const std::array<uint32_t, 256>& char_id,
                 uint32_t unk)
        : k_(k), base_(base), kmer_offset_(kmer_offset), char_id_(char_id), unk_(unk) {
        check(k >= 1 && k <= 15, "k must be in 1..15 for pieces, got " + std::to_string(k));
    }
    int64_t count(const uint8_t* seq, int64_t len) const override {
        int64_t c = 0;
        scan(seq, len, [&](uint32_t, int64_t) {
            ++c;
            return true;
        });
        return c;
    }
    void fill(const uint8_t* seq, int64_t len, int64_t first, int64_t n, uint32_t* ids, int32_t* pos,
              uint32_t*) const override {
        int64_t t = -first;
        scan(seq, len, [&](uint32_t id, int64_t p) {
            if (t >= 0) {
                ids[t] = id;
                if (pos) pos[t] = static_cast<int32_t>(p);
            }
            return ++t < n;
        });
    }

private:
    // Calls emit(id, start) for each token in order while it returns true.
    template <class Emit>
    void scan(const uint8_t* s, int64_t len, Emit&& emit) const {
        int64_t i = 0;
        while (i < len) {
            if (base_.digit[s[i]] <= 3) {
                int64_t j = i;
                while (j < len && base_.digit[s[j]] <= 3) ++j;
                for (; j - i >= k_; i += k_) {
                    uint32_t code = 0;
                    for (int e = 0; e < k_; ++e) code = (code << 2) | base_.digit[s[i + e]];
                    if (!emit(kmer_offset_ + code, i)) return;
                }
                for (; i < j; ++i)
                    if (!emit(char_id_[s[i]], i)) return;
            } else if (char_id_[s[i]] != unk_) {
                if (!emit(char_id_[s[i]], i)) return;
                ++i;
            } else {
                const int64_t start = i;
                while (i < len && base_.digit[s[i]] > 3 && char_id_[s[i]] == unk_) ++i;
                if (!emit(unk_, start)) return;
            }
        }
    }
    int k_;
    BaseTable base_;
    uint32_t kmer_offset_;
    std::array<uint32_t, 256> char_id_;
    uint32_t unk_;
};

class CharsScheme final : public TokenScheme {
public:
    explicit CharsScheme(const std::array<uint32_t, 256>& char_id) : char_id_(char_id) {}
    int64_t count(const uint8_t*, int64_t len) const override { return len; }
    void fill(const uint8_t* seq, int64_t, int64_t first, int64_t n, uint32_t* ids, int32_t* pos,
              uint32_t*) const override {
        for (int64_t t = 0; t < n; ++t) ids[t] = char_id_[seq[first + t]];
        if (pos)
            for (int64_t t = 0; t < n; ++t) pos[t] = static_cast<int32_t>(first + t);
    }

private:
    std::array<uint32_t, 256> char_id_;
};

// ---- lsh ---------------------------------------------------------------------------------------------

class ProjectionScheme final : public WindowScheme {
public:
    ProjectionScheme(int k, int m, int h, int64_t stride, bool canonical, const int16_t* w, const int32_t* thr,
                     uint32_t offset, uint32_t unk)
        : WindowScheme(k, stride, unk), m_(m), canonical_(canonical), offset_(offset) {
        check(k >= 1 && k <= 64, "k must be in 1..64 for lsh, got " + std::to_string(k));
        check(m >= 1 && m <= 31, "m must be in 1..31, got " + std::to_string(m));
        check(h >= 1 && h <= 64, "num_hashes must be in 1..64, got " + std::to_string(h));
        check(offset <= UINT32_MAX - (1ULL << m), "offset leaves no room for 2^m ids");
        h_ = h;
        chunks_ = (k + 3) / 4;
        lanes_ = ((canonical ? 2 * m : m) + 15) / 16 * 16;
        const std::size_t per_fn = static_cast<std::size_t>(chunks_) * 256 * lanes_;
        tables_.assign(per_fn * h, 0);
        thresholds_.assign(static_cast<std::size_t>(lanes_) * h, INT16_MAX);
        for (int j = 0; j < h; ++j) {
            for (int i = 0; i < m; ++i) {
                const int16_t* wi = w + (static_cast<std::size_t>(j) * m + i) * k * 4;
                int64_t bound = 0;
                for (int p = 0; p < k; ++p) {
                    int64_t top = 0;
                    for (int b = 0; b < 4; ++b) top = std::max<int64_t>(top, std::abs(int64_t(wi[p * 4 + b])));
                    bound += top;
                }
                check(bound <= 32766, "lsh weights too large: hyperplane " + std::to_string(i) + " of function " +
                                          std::to_string(j) + " can sum to " + std::to_string(bound) + " (max 32766)");
                const int32_t c = thr[j * m + i];
                thresholds_[j * lanes_ + i] = static_cast<int16_t>(std::clamp<int32_t>(c, -32767, 32767));
                if (canonical) thresholds_[j * lanes_ + m + i] = thresholds_[j * lanes_ + i];
                for (int c4 = 0; c4 < chunks_; ++c4)
                    for (int v = 0; v < 256; ++v) {
                        int32_t fw = 0, rc = 0;
                        for (int e = 0; e < 4; ++e) {
                            const int p = 4 * c4 + e;
                            if (p >= k) break;
                            const int b = (v >> (6 - 2 * e)) & 3;
                            fw += wi[p * 4 + b];
                            rc -= wi[(k - 1 - p) * 4 + b];
                        }
                        int16_t* row = tables_.data() + j * per_fn + (static_cast<std::size_t>(c4) * 256 + v) * lanes_;
                        row[i] = static_cast<int16_t>(fw);
                        if (canonical) row[m + i] = static_cast<int16_t>(rc);
                    }
            }
        }
    }
    void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t*) const override {
        // q[p] = the 8-bit code of bases a+p .. a+p+3 (bases past the span count as A; no window uses them).
        const int64_t span = (n - 1) * stride_ + k_;
        thread_local std::vector<uint8_t> q;
        q.assign(static_cast<std::size_t>(span + 3), 0);
        int64_t last_bad = -1;  // relative index of the last invalid base seen
        uint32_t code = 0;
        for (int64_t p = span - 1; p >= 0; --p) {
            const uint8_t d = kBaseCode.v[seq[a + p]];
            code = (code >> 2) | (static_cast<uint32_t>(d & 3) << 6);
            q[p] = static_cast<uint8_t>(code);
        }
        const bool avx2 = simd_level() >= Simd::AVX2;
        for (int j = 0; j < h_; ++j) {
            const lsh_detail::Projection pr{chunks_, lanes_, m_, canonical_,
                                            tables_.data() + static_cast<std::size_t>(j) * chunks_ * 256 * lanes_,
                                            thresholds_.data() + j * lanes_};
            (avx2 ? lsh_detail::project_avx2 : lsh_detail::project_scalar)(pr, q.data(), n, stride_, ids + j, h_);
        }
        // Offset the ids; windows holding an invalid base get unk.
        int64_t scanned = 0;
        for (int64_t t = 0; t < n; ++t) {
            const int64_t s = t * stride_;
            for (int64_t p = std::max(scanned, s); p < s + k_; ++p)
                if (kBaseCode.v[seq[a + p]] > 3) last_bad = p;
            scanned = s + k_;
            const bool ok = last_bad < s;
            for (int j = 0; j < h_; ++j) ids[t * h_ + j] = ok ? offset_ + ids[t * h_ + j] : unk_;
        }
    }

private:
    int m_, chunks_ = 0, lanes_ = 0;
    bool canonical_;
    uint32_t offset_;
    std::vector<int16_t> tables_, thresholds_;
};

class BitsScheme final : public WindowScheme {
public:
    BitsScheme(int k, int s, int h, int64_t stride, bool canonical, const int32_t* positions, uint32_t offset,
               uint32_t unk)
        : WindowScheme(k, stride, unk), s_(s), canonical_(canonical), offset_(offset),
          base_(make_base_table("ACGT", true)), positions_(positions, positions + static_cast<std::size_t>(s) * h) {
        check(k >= 1 && k <= 64, "k must be in 1..64 for lsh, got " + std::to_string(k));
        check(s >= 1 && s <= 16 && s <= k, "the number of sampled positions must be in 1..min(16, k), got " +
                                               std::to_string(s));
        check(h >= 1 && h <= 64, "num_hashes must be in 1..64, got " + std::to_string(h));
        check(offset <= UINT32_MAX - (1ULL << (2 * s)), "offset leaves no room for 4^s ids");
        h_ = h;
        masks_.assign(h, 0);
        for (int j = 0; j < h; ++j)
            for (int i = 0; i < s; ++i) {
                const int32_t p = positions_[j * s + i];
                check(p >= 0 && p < k && (i == 0 || p > positions_[j * s + i - 1]),
                      "sampled positions must increase within 0.." + std::to_string(k - 1));
                if (k <= 32) masks_[j] |= 3ULL << (2 * (k - 1 - p));
            }
    }
    void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t*) const override {
        thread_local std::vector<uint8_t> valid;
        valid.resize(static_cast<std::size_t>(n));
        if (k_ <= 32 && simd_level() >= Simd::AVX2) {
            thread_local std::vector<uint64_t> fw, rc;
            fw.resize(static_cast<std::size_t>(n));
            rc.resize(static_cast<std::size_t>(n));
            roll_codes<uint64_t>(seq, a, n, stride_, static_cast<int>(k_), base_, [&](int64_t t, uint64_t f, uint64_t r, bool ok) {
                fw[t] = f;
                rc[t] = r;
                valid[t] = ok;
            });
            for (int j = 0; j < h_; ++j)
                lsh_detail::sample_bits_avx2(fw.data(), rc.data(), n, masks_[j], canonical_, ids + j, h_);
        } else {
            using U128 = unsigned __int128;
            roll_codes<U128>(seq, a, n, stride_, static_cast<int>(k_), base_, [&](int64_t t, U128 f, U128 r, bool ok) {
                valid[t] = ok;
                for (int j = 0; j < h_; ++j) {
                    uint32_t x = 0, y = 0;
                    for (int i = 0; i < s_; ++i) {
                        const int shift = 2 * (static_cast<int>(k_) - 1 - positions_[j * s_ + i]);
                        x = (x << 2) | static_cast<uint32_t>((f >> shift) & 3);
                        y = (y << 2) | static_cast<uint32_t>((r >> shift) & 3);
                    }
                    ids[t * h_ + j] = canonical_ ? std::min(x, y) : x;
                }
            });
        }
        for (int64_t t = 0; t < n; ++t)
            for (int j = 0; j < h_; ++j) ids[t * h_ + j] = valid[t] ? offset_ + ids[t * h_ + j] : unk_;
    }

private:
    int s_;
    bool canonical_;
    uint32_t offset_;
    BaseTable base_;
    std::vector<int32_t> positions_;
    std::vector<uint64_t> masks_;
};

}  // namespace

namespace lsh_detail {

void project_scalar(const Projection& pr, const uint8_t* q, int64_t n, int64_t stride, uint32_t* out,
                    int out_stride) {
    std::vector<int32_t> acc(static_cast<std::size_t>(pr.lanes));
    const uint32_t mask = (1U << pr.m) - 1;
    for (int64_t t = 0; t < n; ++t) {
        std::fill(acc.begin(), acc.end(), 0);
        const uint8_t* qt = q + t * stride;
        for (int c = 0; c < pr.chunks; ++c) {
            const int16_t* row = pr.tables + (static_cast<std::size_t>(c) * 256 + qt[4 * c]) * pr.lanes;
            for (int l = 0; l < pr.lanes; ++l) acc[l] += row[l];
        }
        uint64_t bits = 0;
        for (int l = 0; l < pr.lanes; ++l) bits |= static_cast<uint64_t>(acc[l] > pr.thresholds[l]) << l;
        const uint32_t fw = static_cast<uint32_t>(bits) & mask;
        out[t * out_stride] = pr.canonical ? std::min(fw, static_cast<uint32_t>(bits >> pr.m) & mask) : fw;
    }
}

}  // namespace lsh_detail

std::unique_ptr<TokenScheme> direct_scheme(int k, int64_t stride, Strand strand, const BaseTable& base,
                                           uint32_t offset, uint32_t unk) {
    return std::make_unique<DirectScheme>(k, stride, strand, base, offset, unk);
}
std::unique_ptr<TokenScheme> vocab_scheme(int k, int64_t stride, Strand strand, const VocabTable* vocab,
                                          uint32_t unk) {
    return std::make_unique<VocabScheme>(k, stride, strand, vocab, unk);
}
std::unique_ptr<TokenScheme> hashed_scheme(int64_t k, int64_t stride, Strand strand, int h, uint64_t buckets,
                                           uint64_t weight_buckets, uint32_t offset, uint32_t unk) {
    return std::make_unique<HashedScheme>(k, stride, strand, h, buckets, weight_buckets, offset, unk);
}
std::unique_ptr<TokenScheme> pieces_scheme(int k, const BaseTable& base, uint32_t kmer_offset,
                                           const std::array<uint32_t, 256>& char_id, uint32_t unk) {
    return std::make_unique<PiecesScheme>(k, base, kmer_offset, char_id, unk);
}
std::unique_ptr<TokenScheme> chars_scheme(const std::array<uint32_t, 256>& char_id) {
    return std::make_unique<CharsScheme>(char_id);
}
std::unique_ptr<TokenScheme> lsh_projection_scheme(int k, int m, int h, int64_t stride, bool canonical,
                                                   const int16_t* weights, const int32_t* thresholds,
                                                   uint32_t offset, uint32_t unk) {
    return std::make_unique<ProjectionScheme>(k, m, h, stride, canonical, weights, thresholds, offset, unk);
}
std::unique_ptr<TokenScheme> lsh_bits_scheme(int k, int s, int h, int64_t stride, bool canonical,
                                             const int32_t* positions, uint32_t offset, uint32_t unk) {
    return std::make_unique<BitsScheme>(k, s, h, stride, canonical, positions, offset, unk);
}

// ---- batch encoding ---------------------------------------------------------------------------------

void token_counts(const TokenScheme& s, const uint8_t* data, const int64_t* offsets, std::size_t n,
                  int64_t* counts) {
    parallel_for_weighted(offsets, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r) counts[r] = s.count(data + offsets[r], offsets[r + 1] - offsets[r]);
    });
}

int64_t encoded_length(const TokenLayout& layout, int64_t raw) {
    const int64_t kept = layout.max_tokens < 0 ? raw : std::min(raw, layout.max_tokens);
    return static_cast<int64_t>(layout.prefix.size() + layout.suffix.size()) + kept;
}

void encode_tokens(const TokenScheme& s, const uint8_t* data, const int64_t* offsets, std::size_t n,
                   const int64_t* raw, const TokenLayout& layout, const int64_t* out_offsets,
                   const TokenOutput& out) {
    const int h = s.ids_per_token();
    const bool padded = layout.width > 0;
    parallel_for_weighted(offsets, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r) {
            const int64_t len = encoded_length(layout, raw[r]);
            const int64_t kept = len - static_cast<int64_t>(layout.prefix.size() + layout.suffix.size());
            int64_t o = padded ? static_cast<int64_t>(r) * layout.width : out_offsets[r];
            const int64_t pad = padded ? layout.width - len : 0;
            // Marks [o, o + m) as special tokens or padding with the given id.
            auto mark = [&](int64_t at, int64_t m, uint32_t id, uint8_t attention) {
                std::fill(out.ids + at * h, out.ids + (at + m) * h, id);
                std::fill(out.special + at, out.special + at + m, uint8_t(1));
                if (out.attention) std::fill(out.attention + at, out.attention + at + m, attention);
                if (out.pos) std::fill(out.pos + at, out.pos + at + m, -1);
                if (out.slots) std::fill(out.slots + at, out.slots + at + m, id);
            };
            if (pad && layout.pad_left) {
                mark(o, pad, layout.pad_id, 0);
                o += pad;
            }
            for (uint32_t id : layout.prefix) mark(o++, 1, id, 1);
            const int64_t first = layout.truncate_left ? raw[r] - kept : 0;
            s.fill(data + offsets[r], offsets[r + 1] - offsets[r], first, kept, out.ids + o * h,
                   out.pos ? out.pos + o : nullptr, out.slots ? out.slots + o : nullptr);
            std::fill(out.special + o, out.special + o + kept, uint8_t(0));
            if (out.attention) std::fill(out.attention + o, out.attention + o + kept, uint8_t(1));
            o += kept;
            for (uint32_t id : layout.suffix) mark(o++, 1, id, 1);
            if (pad && !layout.pad_left) mark(o, pad, layout.pad_id, 0);
        }
    });
}

}  // namespace kmerx
