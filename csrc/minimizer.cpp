// minimap2-compatible minimizers: the per-read window state machine and the threaded driver
// (see kmerx/minimizer.hpp and docs/minimizers.md).
#include "kmerx/minimizer.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include "kmerx/buffers.hpp"
#include "kmerx/common.hpp"

namespace kmerx {

using detail::kMinimizerEmpty;
using detail::kMinimizerPalindrome;
using Slot = detail::MinimizerSlot;

namespace {

// minimap2's base table: ACGTU (any case) and the raw codes 0..3; everything else is 4 ("N").
struct Nt4Table {
    uint8_t v[256];
    constexpr Nt4Table() : v() {
        for (int i = 0; i < 256; ++i) v[i] = 4;
        for (int i = 0; i < 4; ++i) v[i] = uint8_t(i);
        v['A'] = v['a'] = 0;
        v['C'] = v['c'] = 1;
        v['G'] = v['g'] = 2;
        v['T'] = v['t'] = v['U'] = v['u'] = 3;
    }
};
constexpr Nt4Table kNt4{};

constexpr Slot kNoSlot{kMinimizerEmpty, ~uint32_t(0)};
constexpr int kBlock = 256;  // k-mers per block in the steady-state path

using KeysFn = void (*)(const uint64_t*, const uint64_t*, int, int, uint32_t, Slot*);

// Slots collected by one range of reads, in a recycled buffer (kmerx/buffers.hpp): a fresh mapping
// would cost a page fault per 4 KiB, about as much as computing the minimizers.
class SlotBuffer {
  public:
    explicit SlotBuffer(std::size_t cap) { grow(std::max<std::size_t>(cap, 1024)); }
    ~SlotBuffer() {
        if (p_) buffers::give(p_, bytes_);
    }
    SlotBuffer(const SlotBuffer&) = delete;
    SlotBuffer& operator=(const SlotBuffer&) = delete;
    void push(const Slot& s) {
        if (n_ == cap_) grow(2 * cap_);
        p_[n_++] = s;
    }
    std::size_t size() const { return n_; }
    const Slot* data() const { return p_; }

  private:
    __attribute__((noinline)) void grow(std::size_t cap) {
        std::size_t bytes;
        auto* q = static_cast<Slot*>(buffers::take(cap * sizeof(Slot), bytes));
        if (p_) {
            std::copy(p_, p_ + n_, q);
            buffers::give(p_, bytes_);
        }
        p_ = q;
        bytes_ = bytes;
        cap_ = bytes / sizeof(Slot);
    }
    Slot* p_ = nullptr;
    std::size_t n_ = 0, cap_ = 0, bytes_ = 0;
};

// Spans of the last k homopolymer runs (hpc): k <= 28 runs fit in 32 entries.
struct RunQueue {
    int32_t a[32];
    int front = 0, count = 0;
    void push(int32_t x) { a[(front + count++) & 31] = x; }
    int32_t shift() {
        const int32_t x = a[front];
        front = (front + 1) & 31;
        --count;
        return x;
    }
};

// The smallest of keys[0, w) (w <= 64) and the bit mask of the slots holding it.
uint64_t window_min(const uint64_t* keys, int w, uint64_t* eq) {
    uint64_t b0 = kMinimizerEmpty, b1 = kMinimizerEmpty;  // two chains
    int j = 0;
    for (; j + 1 < w; j += 2) {
        b0 = std::min(b0, keys[j]);
        b1 = std::min(b1, keys[j + 1]);
    }
    if (j < w) b0 = std::min(b0, keys[j]);
    const uint64_t best = std::min(b0, b1);
    uint64_t m = 0;
    for (j = 0; j < w; ++j) m |= uint64_t(keys[j] == best) << j;
    *eq = m;
    return best;
}

// The window: w slots (ring; keys and tags apart so scans read one array), its minimum mn and the
// count l of non-palindromic valid bases since the last N. Follows mm_sketch's order of events
// exactly: a minimum is reported when a key <= it arrives, or when it leaves the window (then the
// window is rescanned oldest to newest keeping the newest of equal keys, and that key's other copies
// are reported); the first full window (l == w + k - 1) reports the copies of its minimum.
struct Window {
    int w, full;  // full = w + k - 1
    uint64_t keys[kMinimizerMaxW];
    uint32_t tags[kMinimizerMaxW];
    Slot mn = kNoSlot;
    int l = 0, pos = 0, min_pos = 0;

    void reset() {
        std::fill(keys, keys + w, kMinimizerEmpty);
        std::fill(tags, tags + w, ~uint32_t(0));
        mn = kNoSlot;
        l = pos = min_pos = 0;
    }
    // Out of line (as rescan): keeps the steady-state loop's state in registers.
    __attribute__((noinline)) void copies(int from, int to, SlotBuffer& out) const {  // other slots in [from, to) with mn's key
        for (int j = from; j < to; ++j)
            if (keys[j] == mn.key && tags[j] != mn.tag) out.push(Slot{keys[j], tags[j]});
    }
    __attribute__((noinline)) void rescan(SlotBuffer& out) {  // the minimum left the window
        if (l >= full && mn.key != kMinimizerEmpty) out.push(mn);
        if (w > 64) return rescan_long(out);
        // The minimum and a bit per slot holding it: the newest such slot (ring order ends at pos)
        // becomes mn, the others are its copies.
        uint64_t eq;
        const uint64_t best = window_min(keys, w, &eq);
        const uint64_t upto_pos = pos == 63 ? ~uint64_t(0) : (uint64_t(2) << pos) - 1;
        const uint64_t newer = eq & upto_pos;
        const int at = 63 - __builtin_clzll(newer ? newer : eq);
        mn = Slot{best, tags[at]};
        min_pos = at;
        if (l >= full && best != kMinimizerEmpty && (eq & (eq - 1))) {
            const uint64_t others = eq & ~(uint64_t(1) << at);
            for (uint64_t m = others & ~upto_pos; m; m &= m - 1) out.push(Slot{best, tags[__builtin_ctzll(m)]});
            for (uint64_t m = others & upto_pos; m; m &= m - 1) out.push(Slot{best, tags[__builtin_ctzll(m)]});
        }
    }
    // rescan for w > 64, slot by slot.
    void rescan_long(SlotBuffer& out) {
        mn.key = kMinimizerEmpty;
        for (int j = pos + 1; j < w; ++j)
            if (keys[j] <= mn.key) mn = Slot{keys[j], tags[j]}, min_pos = j;
        for (int j = 0; j <= pos; ++j)
            if (keys[j] <= mn.key) mn = Slot{keys[j], tags[j]}, min_pos = j;
        if (l >= full && mn.key != kMinimizerEmpty) {
            copies(pos + 1, w, out);
            copies(0, pos + 1, out);
        }
    }
    // cur enters the window at pos (l already counts it).
    void add(const Slot& cur, SlotBuffer& out) {
        keys[pos] = cur.key;
        tags[pos] = cur.tag;
        if (l == full && mn.key != kMinimizerEmpty) {
            copies(pos + 1, w, out);
            copies(0, pos, out);
        }
        if (cur.key <= mn.key) {
            if (l > full && mn.key != kMinimizerEmpty) out.push(mn);
            mn = cur;
            min_pos = pos;
        } else if (pos == min_pos) {
            rescan(out);
        }
        if (++pos == w) pos = 0;
    }
};

// The window over n slots when l > full (no hpc): every slot holds a k-mer, so only two events
// remain, a new minimum or the minimum leaving the window. Its own function so that the loop's
// state stays in registers.
__attribute__((noinline)) void steady(const Slot* __restrict sl, int n, Window& W, SlotBuffer& out) {
    uint64_t mn_key = W.mn.key;
    uint32_t mn_tag = W.mn.tag;
    int pos = W.pos, min_pos = W.min_pos, added = 0;
    const int w = W.w;
    uint64_t* __restrict keys = W.keys;
    uint32_t* __restrict tags = W.tags;
    for (int j = 0; j < n; ++j) {
        const uint64_t key = sl[j].key;
        const uint32_t tag = sl[j].tag;
        if (key == kMinimizerPalindrome) continue;
        ++added;
        keys[pos] = key;
        tags[pos] = tag;
        if (key <= mn_key) {
            out.push(Slot{mn_key, mn_tag});
            mn_key = key;
            mn_tag = tag;
            min_pos = pos;
        } else if (pos == min_pos) {
            W.mn = Slot{mn_key, mn_tag};
            W.pos = pos;
            W.rescan(out);
            mn_key = W.mn.key;
            mn_tag = W.mn.tag;
            min_pos = W.min_pos;
        }
        pos = pos + 1 == w ? 0 : pos + 1;
    }
    W.mn = Slot{mn_key, mn_tag};
    W.pos = pos;
    W.min_pos = min_pos;
    W.l += added;
}

// Codes of the k-mers ending at s[0], s[1], ... up to the first invalid base or m bases (fwd/rev hold
// the codes before s[0] and receive the last ones); returns how many. Out of line, like steady(), so
// its loop has the registers to itself.
__attribute__((noinline)) int block_codes(const uint8_t* __restrict s, int m, uint64_t mask, int shift1,
                                          uint64_t& fwd_io, uint64_t& rev_io, uint64_t* __restrict fc,
                                          uint64_t* __restrict rc) {
    uint64_t fwd = fwd_io, rev = rev_io;
    unsigned bad = 0;  // invalid bases are rare here: test once per block, not per base
    for (int n = 0; n < m; ++n) {
        const unsigned c = kNt4.v[s[n]];
        bad |= c;
        fwd = (fwd << 2) | (c & 3);  // masked on store: a shorter loop-carried chain
        rev = (rev >> 2) | (uint64_t(3 ^ (c & 3)) << shift1);
        fc[n] = fwd & mask;
        rc[n] = rev;
    }
    int n = m;
    if (bad > 3) {
        n = 0;
        while (kNt4.v[s[n]] < 4) ++n;
        if (n == 0) return 0;
        fwd = fc[n - 1];
        rev = rc[n - 1];
    }
    fwd_io = fwd & mask;
    rev_io = rev;
    return n;
}

// The minimizers of one read at a time. The k-mer state (fwd, rev) survives an N, as in minimap2, so
// palindrome checks on the partial k-mer right after an N see the bases before it. Once a valid run
// has filled the window (l > w + k - 1, no hpc), blocks of k-mers take a fast path: codes first, then
// keys (keys_fn, vectorisable), then the window over the keys with its state in registers.
class Sketcher {
  public:
    Sketcher(const MinimizerSpec& spec, bool avx2, SlotBuffer& out)
        : k_(spec.k), mask_((uint64_t(1) << (2 * spec.k)) - 1), shift1_(2 * (spec.k - 1)),
          keys_(avx2 ? &detail::minimizer_keys_avx2 : &detail::minimizer_keys), out_(out), fast_(avx2 && spec.w <= 240) {
        win_.w = spec.w;
        win_.full = spec.w + spec.k - 1;
        std::fill(win_.keys, win_.keys + kMinimizerMaxW, kMinimizerEmpty);
    }

    template <bool Hpc>
    void run(const uint8_t* s, int64_t len) {
        fwd_ = rev_ = 0;
        win_.reset();
        span_ = 0;
        runs_.front = runs_.count = 0;
        int64_t i = 0;
        while (i < len) {
            if (!Hpc && win_.l > win_.full) {
                if (fast_) i = fast_blocks(s, i, len);
                if (i >= len) break;
                i = block(s, i, len);
                if (i >= len) break;
            }
            i = step<Hpc>(s, i, len) + 1;
        }
        if (win_.mn.key != kMinimizerEmpty) out_.push(win_.mn);
    }

  private:
    // One base (or, with hpc, one homopolymer run) at s[i]; returns the index of its last base.
    template <bool Hpc>
    int64_t step(const uint8_t* s, int64_t i, int64_t len) {
        const int c = kNt4.v[s[i]];
        Slot cur = kNoSlot;
        if (c < 4) {
            if constexpr (Hpc) {
                int64_t run = 1;
                while (i + run < len && kNt4.v[s[i + run]] == c) ++run;
                i += run - 1;
                runs_.push(int32_t(run));  // reads are shorter than 2^31 bases
                span_ += int32_t(run);
                if (runs_.count > k_) span_ -= runs_.shift();
            } else {
                span_ = win_.l + 1 < k_ ? win_.l + 1 : k_;
            }
            fwd_ = ((fwd_ << 2) | uint64_t(c)) & mask_;
            rev_ = (rev_ >> 2) | (uint64_t(3 ^ c) << shift1_);
            if (fwd_ == rev_) return i;  // palindrome: no strand, no window slot
            const bool z = rev_ < fwd_;
            ++win_.l;
            if (win_.l >= k_ && span_ < 256)
                cur = Slot{(mm_hash64(z ? rev_ : fwd_, mask_) << 8) | uint64_t(span_), (uint32_t(i) << 1) | uint32_t(z)};
        } else {
            win_.l = 0;
            span_ = 0;
            runs_.front = runs_.count = 0;
        }
        win_.add(cur, out_);
        return i;
    }

    // Steady state (no hpc, window full): up to kBlock bases of the valid run at s[i]. Returns the
    // index of the first base not consumed (an invalid one, or the next block).
    int64_t block(const uint8_t* s, int64_t i, int64_t len) {
        uint64_t* fc = fc_;
        uint64_t* rc = rc_;
        Slot* sl = sl_;
        const int n = block_codes(s + i, int(std::min<int64_t>(len - i, kBlock)), mask_, shift1_, fwd_, rev_, fc, rc);
        keys_(fc, rc, n, k_, uint32_t(i), sl);
        steady(sl, n, win_, out_);
        return i + n;
    }

    // Steady state with AVX2: blocks of m k-mers (a multiple of 16, w + m <= 256) of a valid run
    // without palindromes. The window minimum of every position comes from a vectorised sliding
    // minimum over linear-window keys (see detail::minimizer_fast_keys_avx2): the minimum changes
    // exactly where mm_sketch reports its old minimum, and when the change is the old minimum leaving,
    // other copies of the new one are reported as its rescan does. Returns where it stopped.
    int64_t fast_blocks(const uint8_t* s, int64_t i, int64_t len) {
        const int w = win_.w, k = k_;
        const int mmax = ((256 - w) / 16) * 16 < 240 ? ((256 - w) / 16) * 16 : 240;
        for (;;) {
            const int m = int(std::min<int64_t>(mmax, len - i) / 16 * 16);
            if (m < 16) return i;
            if (!detail::acgt_codes_avx2(s + i - (k - 1), m + k - 1, codes_)) return i;  // l > w + k - 1: valid
            // Linear window: index h < w is ring slot pos + h (oldest first), index w + r is k-mer r.
            for (int h = 0; h < w; ++h) {
                const int r = win_.pos + h < w ? win_.pos + h : win_.pos + h - w;
                kt_[h] = int64_t(((win_.keys[r] & ~uint64_t(0xff)) | uint64_t(255 - h)) ^ kSign);
                htag_[h] = win_.tags[r];
            }
            if (!detail::minimizer_fast_keys_avx2(codes_, m, k, w, kt_ + w, zbits_)) return i;
            const int n = w + m;
            std::copy(kt_, kt_ + n, mn_);
            detail::window_min_avx2(mn_, n, w);
            const auto tag = [&](int q) -> uint32_t {
                if (q < w) return htag_[q];
                const int r = q - w;
                return (uint32_t(i + r) << 1) | uint32_t((zbits_[r >> 6] >> (r & 63)) & 1);
            };
            const auto slot = [&](int64_t v, int q) { return Slot{(uint64_t(v ^ kSign) & ~uint64_t(0xff)) | uint64_t(k), tag(q)}; };
            const int ne = detail::minimizer_fast_events_avx2(kt_, mn_, n, w, ev_);
            for (int e = 0; e < ne; ++e) {
                const int t = ev_[e] & ~detail::kFastCopies;
                const int64_t prev = mn_[t - 1];
                out_.push(slot(prev, 255 - int(prev & 0xff)));
                if (!(ev_[e] & detail::kFastCopies)) continue;
                const int64_t cur = mn_[t];  // the old minimum left: report the copies, oldest first
                const int q = 255 - int(cur & 0xff);
                for (int j = t - w + 1; j <= t; ++j)
                    if (j != q && ((kt_[j] ^ cur) >> 8) == 0) out_.push(slot(kt_[j], j));
            }
            const int64_t last = mn_[n - 1];
            const int q = 255 - int(last & 0xff);
            win_.mn = slot(last, q);
            for (int h = 0; h < w; ++h) {
                const Slot sl = slot(kt_[m + h], m + h);
                win_.keys[h] = sl.key;
                win_.tags[h] = sl.tag;
            }
            win_.pos = 0;
            win_.min_pos = q - m;
            win_.l += m;
            i += m;
            uint64_t f = 0, rv = 0;
            for (int j = m - 1; j < m + k - 1; ++j) {
                f = ((f << 2) | codes_[j]) & mask_;
                rv = (rv >> 2) | (uint64_t(3 ^ codes_[j]) << shift1_);
            }
            fwd_ = f;
            rev_ = rv;
        }
    }

    static constexpr uint64_t kSign = uint64_t(1) << 63;
    const int k_;
    const uint64_t mask_;
    const int shift1_;
    const KeysFn keys_;
    SlotBuffer& out_;
    Window win_;
    uint64_t fwd_ = 0, rev_ = 0;
    int32_t span_ = 0;
    RunQueue runs_;
    alignas(32) uint64_t fc_[kBlock];  // codes and slots of the current block
    alignas(32) uint64_t rc_[kBlock];
    alignas(32) Slot sl_[kBlock];
    bool fast_ = false;  // fast_blocks (AVX2)
    alignas(32) int64_t kt_[256 + 4] = {};  // fast_blocks: linear-window keys, their window minima,
    alignas(32) int64_t mn_[256 + 4] = {};  // events, tags, base codes
    uint16_t ev_[256];
    uint32_t htag_[256] = {};
    uint64_t zbits_[4];
    uint8_t codes_[256 + 32 + 8] = {};
};

// The slots [0, m) into the four columns at o.
void split_slots(const Slot* __restrict sl, std::size_t m, const MinimizerColumns& col, std::size_t o) {
    uint64_t* __restrict hash = col.hash + o;
    int32_t* __restrict end = col.end + o;
    int8_t* __restrict strand = col.strand + o;
    uint8_t* __restrict span = col.span + o;
    for (std::size_t j = 0; j < m; ++j) {
        const Slot x = sl[j];
        hash[j] = x.key >> 8;
        end[j] = int32_t(x.tag >> 1);
        strand[j] = int8_t(x.tag & 1);
        span[j] = uint8_t(x.key & 0xff);
    }
}

}  // namespace

namespace detail {
void minimizer_keys(const uint64_t* fwd, const uint64_t* rev, int n, int k, uint32_t first_end, Slot* out) {
    const uint64_t mask = (uint64_t(1) << (2 * k)) - 1;
    for (int j = 0; j < n; ++j) {
        const bool z = rev[j] < fwd[j];
        const uint64_t key = (mm_hash64(z ? rev[j] : fwd[j], mask) << 8) | uint64_t(k);
        out[j] = Slot{fwd[j] == rev[j] ? kMinimizerPalindrome : key, ((first_end + uint32_t(j)) << 1) | uint32_t(z)};
    }
}
}  // namespace detail

MinimizerSpec make_minimizer_spec(int64_t k, int64_t w, bool hpc) {
    if (k < 1 || k > kMinimizerMaxK)
        throw std::invalid_argument("k must be in 1.." + std::to_string(kMinimizerMaxK) + ", got " + std::to_string(k));
    if (w < 1 || w > kMinimizerMaxW)
        throw std::invalid_argument("w must be in 1.." + std::to_string(kMinimizerMaxW) + ", got " + std::to_string(w));
    return MinimizerSpec{int(k), int(w), hpc};
}

void minimizers(const uint8_t* data, const int64_t* offsets, std::size_t n, const MinimizerSpec& spec,
                int64_t* out_offsets, const std::function<MinimizerColumns(std::size_t)>& alloc) {
    out_offsets[0] = 0;
    if (n == 0) {
        alloc(0);
        return;
    }
    const bool avx2 = simd_level() >= Simd::AVX2;
    // Each range of reads collects its slots; a second parallel pass scatters them into the columns.
    const int64_t total = offsets[n] - offsets[0];
    const std::size_t parts = std::min<std::size_t>(num_threads(), std::size_t(total / (1 << 16)) + 1);
    const auto ranges = balanced_ranges(offsets, n, parts);
    std::vector<std::unique_ptr<SlotBuffer>> slots(ranges.size());
    parallel_for(ranges.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) {
            const int64_t bases = offsets[ranges[p].second] - offsets[ranges[p].first];
            slots[p] = std::make_unique<SlotBuffer>(std::size_t(bases / spec.w + bases / (spec.w + 1) + 16));
            SlotBuffer& out = *slots[p];
            auto sk = std::make_unique<Sketcher>(spec, avx2, out);
            for (std::size_t r = ranges[p].first; r < ranges[p].second; ++r) {
                const uint8_t* s = data + offsets[r];
                const int64_t len = offsets[r + 1] - offsets[r];
                if (spec.hpc) sk->run<true>(s, len);
                else sk->run<false>(s, len);
                out_offsets[r + 1] = int64_t(out.size());  // cumulative within the range, fixed below
            }
        }
    });
    std::vector<int64_t> base(ranges.size() + 1, 0);
    for (std::size_t p = 0; p < ranges.size(); ++p) base[p + 1] = base[p] + int64_t(slots[p]->size());
    const MinimizerColumns col = alloc(std::size_t(base.back()));
    parallel_for(ranges.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) {
            for (std::size_t r = ranges[p].first; r < ranges[p].second; ++r) out_offsets[r + 1] += base[p];
            const auto o = std::size_t(base[p]);
            const Slot* sl = slots[p]->data();
            const std::size_t m = slots[p]->size();
            if (col.end && col.strand && col.span) split_slots(sl, m, col, o);  // one pass over the slots
            else
                for (std::size_t j = 0; j < m; ++j) col.hash[o + j] = sl[j].key >> 8;
            slots[p].reset();
        }
    });
}

}  // namespace kmerx
