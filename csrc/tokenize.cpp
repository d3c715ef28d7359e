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
// Shorter all-ACGT runs are hashed by the scalar kernel: the AVX2 one pays a set-up per run.
constexpr int64_t kLongRun = 1024;

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
    void fill(const uint8_t* seq, int64_t, int64_t first, int64_t n, uint32_t* ids, int32_t* pos,
              uint32_t* slots) const override {
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
        thread_local std::vector<uint64_t> code_buf;
        thread_local std::vector<uint8_t> valid_buf;
        code_buf.resize(static_cast<std::size_t>(n * words));
        valid_buf.resize(static_cast<std::size_t>(n));
        uint64_t* codes = code_buf.data();
        uint8_t* valid = valid_buf.data();
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
        vocab_->lookup(codes, static_cast<std::size_t>(n), unk_, ids);
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
        thread_local std::vector<uint64_t> hash_buf;
        int64_t i = a;
        while (i < end) {
            i = nthash_detail::next_valid(seq, i, end);
            const int64_t j = avx2 ? nthash_detail::next_invalid_avx2(seq, i, end) : nthash_detail::next_invalid_scalar(seq, i, end);
            if (j - i >= k_) {
                // Windows of this run: starts in [i, j - k], on the stride grid from a.
                const int64_t t0 = (i - a + stride_ - 1) / stride_, t1 = (j - k_ - a) / stride_;
                hash_buf.resize(static_cast<std::size_t>(j - i - k_ + 1));
                const uint64_t* hashes = hash_buf.data();
                (avx2 && j - i >= kLongRun ? nthash_detail::run_avx2 : nthash_detail::run_scalar)(seq + i, j - i, k_, tables_, strand_, hash_buf.data());
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

// The lsh schemes: a window's ids are sums of table rows indexed by its chunk codes (lsh.hpp).
class ChunkScheme : public WindowScheme {
public:
    ChunkScheme(int k, int h, int64_t stride, bool canonical, uint32_t offset, uint32_t unk)
        : WindowScheme(k, stride, unk), canonical_(canonical), offset_(offset), chunks_((k + kBases - 1) / kBases) {
        check(k >= 1 && k <= 64, "k must be in 1..64 for lsh, got " + std::to_string(k));
        check(h >= 1 && h <= 64, "num_hashes must be in 1..64, got " + std::to_string(h));
        h_ = h;
    }
    void fill_block(const uint8_t* seq, int64_t a, int64_t n, uint32_t* ids, uint32_t*) const override {
        // q[p]: the code of bases a+p .. a+p+3, first base in the high bits (non-ACGT bases and bases past
        // the span count as A); run[p]: the ACGT bases from a+p on, capped at 255 (> k), so a window
        // starting at p is valid iff run[p] >= k.
        const int64_t span = (n - 1) * stride_ + k_;
        thread_local std::vector<uint8_t> scratch;  // thread_local: look it up once, not per access
        scratch.assign(static_cast<std::size_t>(2 * (span + kBases)), 0);
        uint8_t* q = scratch.data();
        uint8_t* run = q + span + kBases;
        uint32_t code = 0, r = 0;
        for (int64_t p = span - 1; p >= 0; --p) {
            const uint32_t d = kBaseCode.v[seq[a + p]];
            code = (code >> 2) | ((d & 3) << 6);
            r = d > 3 ? 0 : std::min(r + 1, 255U);
            q[p] = static_cast<uint8_t>(code);
            run[p] = static_cast<uint8_t>(r);
        }
        const lsh_detail::Windows w{q, run, n, stride_, static_cast<int>(k_), offset_, unk_};
        for (int j = 0; j < h_; ++j) ids_from_chunks(j, w, ids + j, h_);
    }

protected:
    // Function j's ids of the windows, to out[t * out_stride].
    virtual void ids_from_chunks(int j, const lsh_detail::Windows& w, uint32_t* out, int out_stride) const = 0;
    // Calls fn(chunk, code, position, base) for every base of every chunk code of a window.
    template <class Fn>
    void each_chunk_base(Fn&& fn) const {
        for (int c = 0; c < chunks_; ++c)
            for (int v = 0; v < 256; ++v)
                for (int e = 0; e < kBases && kBases * c + e < k_; ++e)
                    fn(c, v, kBases * c + e, (v >> (2 * (kBases - 1 - e))) & 3);
    }
    static constexpr int kBases = 4;  // bases per chunk code: one byte
    bool canonical_;
    uint32_t offset_;
    int chunks_;
};

class ProjectionScheme final : public ChunkScheme {
public:
    ProjectionScheme(int k, int m, int h, int64_t stride, bool canonical, const int16_t* w, const int32_t* thr,
                     uint32_t offset, uint32_t unk)
        : ChunkScheme(k, h, stride, canonical, offset, unk), m_(m) {
        check(m >= 1 && m <= 31, "m must be in 1..31, got " + std::to_string(m));
        check(offset <= UINT32_MAX - (1ULL << m), "offset leaves no room for 2^m ids");
        lanes_ = ((canonical ? 2 * m : m) + 15) / 16 * 16;
        per_fn_ = static_cast<std::size_t>(chunks_) * 256 * lanes_;
        tables_.assign(per_fn_ * h, 0);
        thresholds_.assign(static_cast<std::size_t>(lanes_) * h, INT16_MAX);  // padding lanes never pass
        for (int j = 0; j < h; ++j)
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
                int16_t* thr_j = thresholds_.data() + j * lanes_;
                thr_j[i] = static_cast<int16_t>(std::clamp<int32_t>(thr[j * m + i], -32767, 32767));
                if (canonical) thr_j[m + i] = thr_j[i];
                // The reverse strand's sum: position p of the window holds, negated, the weight of
                // position k-1-p (complement = negation in the complex encoding).
                each_chunk_base([&](int c, int v, int p, int b) {
                    int16_t* row = tables_.data() + j * per_fn_ + (static_cast<std::size_t>(c) * 256 + v) * lanes_;
                    row[i] = static_cast<int16_t>(row[i] + wi[p * 4 + b]);
                    if (canonical) row[m + i] = static_cast<int16_t>(row[m + i] - wi[(k - 1 - p) * 4 + b]);
                });
            }
    }

private:
    void ids_from_chunks(int j, const lsh_detail::Windows& w, uint32_t* out, int out_stride) const override {
        const lsh_detail::Projection pr{chunks_, lanes_, m_, canonical_, tables_.data() + j * per_fn_,
                                        thresholds_.data() + j * lanes_};
        (simd_level() >= Simd::AVX2 ? lsh_detail::project_avx2 : lsh_detail::project_scalar)(pr, w, out, out_stride);
    }
    int m_, lanes_ = 0;
    std::size_t per_fn_ = 0;
    std::vector<int16_t> tables_, thresholds_;
};

// Bit sampling: each chunk code contributes its sampled bases' bits directly (forward in the low 32
// bits of an entry, reverse strand in the high 32), so a window's ids are the sum of chunks_ entries.
class BitsScheme final : public ChunkScheme {
public:
    BitsScheme(int k, int s, int h, int64_t stride, bool canonical, const int32_t* positions, uint32_t offset,
               uint32_t unk)
        : ChunkScheme(k, h, stride, canonical, offset, unk) {
        check(s >= 1 && s <= 16 && s <= k, "the number of sampled positions must be in 1..min(16, k), got " +
                                               std::to_string(s));
        check(offset <= UINT32_MAX - (1ULL << (2 * s)), "offset leaves no room for 4^s ids");
        tables_.assign(static_cast<std::size_t>(h) * chunks_ * 256, 0);
        for (int j = 0; j < h; ++j) {
            std::vector<int> slot(k, -1);  // sampled index of each position, or -1
            for (int i = 0; i < s; ++i) {
                const int32_t p = positions[j * s + i];
                check(p >= 0 && p < k && (i == 0 || p > positions[j * s + i - 1]),
                      "sampled positions must increase within 0.." + std::to_string(k - 1));
                slot[p] = i;
            }
            each_chunk_base([&](int c, int v, int p, int b) {
                uint64_t& e = tables_[(static_cast<std::size_t>(j) * chunks_ + c) * 256 + v];
                if (slot[p] >= 0) e |= static_cast<uint64_t>(b) << (2 * (s - 1 - slot[p]));
                if (slot[k - 1 - p] >= 0) e |= static_cast<uint64_t>(3 - b) << (32 + 2 * (s - 1 - slot[k - 1 - p]));
            });
        }
    }

private:
    void ids_from_chunks(int j, const lsh_detail::Windows& w, uint32_t* out, int out_stride) const override {
        const uint64_t* tab = tables_.data() + static_cast<std::size_t>(j) * chunks_ * 256;
        switch (chunks_) {  // a fixed chunk count unrolls the inner loop (k = 29..32, 21..24, 13..16)
            case 8: return windows<8>(tab, w, out, out_stride);
            case 6: return windows<6>(tab, w, out, out_stride);
            case 4: return windows<4>(tab, w, out, out_stride);
            default: return windows<0>(tab, w, out, out_stride);
        }
    }
    template <int C>
    void windows(const uint64_t* tab, const lsh_detail::Windows& w, uint32_t* out, int out_stride) const {
        const std::size_t chunks = C ? C : static_cast<std::size_t>(chunks_);
        for (int64_t t = 0; t < w.n; ++t) {
            const uint8_t* qt = w.q + t * w.stride;
            uint64_t e = 0;
            for (std::size_t c = 0; c < chunks; ++c) e |= tab[c * 256 + qt[4 * c]];
            const auto fw = static_cast<uint32_t>(e);
            out[t * out_stride] = w.id(t, canonical_ ? std::min(fw, static_cast<uint32_t>(e >> 32)) : fw);
        }
    }
    std::vector<uint64_t> tables_;
};

}  // namespace

namespace lsh_detail {

void project_scalar(const Projection& pr, const Windows& w, uint32_t* out, int out_stride) {
    std::vector<int32_t> acc(static_cast<std::size_t>(pr.lanes));
    const uint32_t mask = (1U << pr.m) - 1;
    for (int64_t t = 0; t < w.n; ++t) {
        std::fill(acc.begin(), acc.end(), 0);
        const uint8_t* qt = w.q + t * w.stride;
        for (int c = 0; c < pr.chunks; ++c) {
            const int16_t* row = pr.tables + (static_cast<std::size_t>(c) * 256 + qt[4 * c]) * pr.lanes;
            for (int l = 0; l < pr.lanes; ++l) acc[l] += row[l];
        }
        uint64_t bits = 0;
        for (int l = 0; l < pr.lanes; ++l) bits |= static_cast<uint64_t>(acc[l] > pr.thresholds[l]) << l;
        const uint32_t fw = static_cast<uint32_t>(bits) & mask;
        out[t * out_stride] = w.id(t, pr.canonical ? std::min(fw, static_cast<uint32_t>(bits >> pr.m) & mask) : fw);
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
    // Checked before the ntHash tables for k are built.
    check(k >= 1 && k <= INT32_MAX, "k must be >= 1, got " + std::to_string(k));
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
