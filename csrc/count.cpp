// Exact k-mer counting: binning by a sampled monotone prefix table, spilling, per-bin radix sort.
#include "kmerx/count.hpp"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "kmerx/common.hpp"
#include "kmerx/encode.hpp"

namespace kmerx {

namespace {

constexpr int kPrefixBits = 16;
constexpr std::size_t kSampleCodes = std::size_t(1) << 20;  // codes seen before the bin table is fixed
constexpr int64_t kPieceBases = int64_t(1) << 20;           // bases per unit of work in add_reads
constexpr std::size_t kMinChunkCodes = 512, kMaxChunkCodes = 8192;

struct Buf {  // uninitialised uint64 storage (no page zeroing beyond the kernel's)
    uint64_t* p = nullptr;
    std::size_t n = 0;
    void reserve(std::size_t words) {
        if (words <= n) return;
        std::free(p);
        words = std::max<std::size_t>(words, n + n / 2);  // grow geometrically: bins vary in size
        p = static_cast<uint64_t*>(std::malloc(std::max<std::size_t>(words, 1) * 8));
        if (!p) throw std::bad_alloc();
        n = words;
    }
    void release() {
        std::free(p);
        p = nullptr;
        n = 0;
    }
    ~Buf() { std::free(p); }
};

// One bin of one worker: a list of fixed-size chunks, the last one filled up to `room` free codes.
struct Chunks {
    std::vector<uint64_t*> chunks;
    uint64_t* cur = nullptr;
    std::size_t room = 0;
};

struct Slot {  // a worker's bins; touched by one thread at a time
    std::vector<Chunks> bins;
    std::size_t bytes = 0;
    std::vector<int64_t> out_offsets;
    Buf codes;
    Buf sort_buf, sort_tmp;  // pass 2: one bin's codes, kept across count_bins() calls
};

struct BinOut {
    std::size_t start = 0, kept = 0;                      // where the bin's result lies in the output
    std::vector<std::pair<std::size_t, uint64_t>> big;    // counts >= 2^32 - 1 (index in bin, value)
};

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// Chunks and outputs are mapped directly, so freeing them returns the pages to the OS at once (heap
// memory would stay resident and count against the budget).
void* map_bytes(std::size_t bytes) {
    void* p = ::mmap(nullptr, std::max<std::size_t>(bytes, 1), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
}
void unmap_bytes(void* p, std::size_t bytes) {
    if (p) ::munmap(p, std::max<std::size_t>(bytes, 1));
}

// The result maps, shared by the counter (which fills them) and whoever holds the result.
struct OutputMaps {
    uint64_t* codes = nullptr;
    uint32_t* counts = nullptr;
    std::size_t code_bytes = 0, count_bytes = 0;
    OutputMaps(std::size_t cb, std::size_t nb) : code_bytes(cb), count_bytes(nb) {
        codes = static_cast<uint64_t*>(map_bytes(cb));
        try {
            counts = static_cast<uint32_t*>(map_bytes(nb));
        } catch (...) {
            unmap_bytes(codes, cb);
            throw;
        }
    }
    ~OutputMaps() {
        unmap_bytes(codes, code_bytes);
        unmap_bytes(counts, count_bytes);
    }
    OutputMaps(const OutputMaps&) = delete;
    OutputMaps& operator=(const OutputMaps&) = delete;
};

}  // namespace

uint64_t min_count_memory(int bins, std::size_t threads) {
    return std::max<uint64_t>(uint64_t(1) << 20, uint64_t(threads) * uint64_t(bins) * kMinChunkCodes * 16 * 4);
}

class KmerCountState {
  public:
    CountOptions o;
    int W = 1, B = 1, pbits = 16;
    std::size_t T = 1, chunk_codes = kMaxChunkCodes;
    std::vector<uint16_t> table;  // prefix -> bin, non-decreasing
    bool have_table = false;
    std::vector<uint64_t> pending;  // codes seen before the table exists
    std::vector<Slot> slots;
    std::vector<uint64_t> file_codes;  // codes per bin already in its spill file
    std::string dir;
    uint64_t total = 0, spilled = 0, max_seen = 0;
    std::vector<BinOut> out;
    std::size_t distinct = 0, cap = 0;  // final result rows so far; capacity of the output maps (k-mers added)
    std::shared_ptr<OutputMaps> maps;
    uint64_t* out_codes = nullptr;      // cap * W words: the final rows [0, distinct), then bins being counted
    uint32_t* out_counts = nullptr;     // cap, saturated at 2^32 - 1 (exact values in BinOut::big)
    bool finished = false, failed = false;
    int next_bin = 0;                   // pass 2: bins [0, next_bin) are counted and compacted

    ~KmerCountState() {
        for (auto& s : slots)
            for (auto& b : s.bins)
                for (auto* c : b.chunks) unmap_bytes(c, chunk_bytes());
        if (!dir.empty()) {
            for (int b = 0; b < B; ++b) std::remove(bin_path(b).c_str());
            ::rmdir(dir.c_str());
        }
    }

    std::size_t chunk_bytes() const { return chunk_codes * W * 8; }

    std::string bin_path(int b) const { return dir + "/bin" + std::to_string(b) + ".raw"; }

    uint32_t prefix(const uint64_t* x) const {
        if (W == 1) return static_cast<uint32_t>(x[0] >> (2 * o.k - pbits));
        const int hb = 2 * o.k - 64;  // bits in hi: 2..64
        if (hb >= pbits) return static_cast<uint32_t>(x[0] >> (hb - pbits));
        return static_cast<uint32_t>((x[0] << (pbits - hb)) | (x[1] >> (64 - (pbits - hb))));
    }

    void build_table() {
        const std::size_t np = std::size_t(1) << pbits;
        std::vector<uint64_t> hist(np, 0);
        const std::size_t n = pending.size() / W;
        for (std::size_t i = 0; i < n; ++i) ++hist[prefix(&pending[i * W])];
        table.assign(np, 0);
        uint64_t cum = 0;
        for (std::size_t p = 0; p < np; ++p) {
            // Bin of a prefix = share of the sample below it; monotone, so sorted bins concatenate sorted.
            const uint64_t b = n ? (cum * B) / n : (p * B) / np;
            table[p] = static_cast<uint16_t>(std::min<uint64_t>(b, B - 1));
            cum += hist[p];
        }
        have_table = true;
    }

    void scatter(Slot& s, const uint64_t* codes, std::size_t n) {
        const std::size_t cw = chunk_codes * W;
        for (std::size_t i = 0; i < n; ++i) {
            const uint64_t* x = codes + i * W;
            Chunks& c = s.bins[table[prefix(x)]];
            if (c.room == 0) {
                auto* p = static_cast<uint64_t*>(map_bytes(cw * 8));
                c.chunks.push_back(p);
                c.cur = p;
                c.room = chunk_codes;
                s.bytes += cw * 8;
            }
            c.cur[0] = x[0];
            if (W == 2) c.cur[1] = x[1];
            c.cur += W;
            --c.room;
        }
    }

    std::size_t bytes() const {
        std::size_t b = 0;
        for (auto& s : slots) b += s.bytes;
        return b;
    }

    void maybe_spill() {
        if (bytes() > o.max_memory / 2) spill();
    }

    void spill() {
        if (dir.empty()) {
            std::string base = o.tmp_dir.empty() ? (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") : o.tmp_dir;
            std::string tmpl = base + "/kmerx-count-XXXXXX";
            std::vector<char> buf(tmpl.begin(), tmpl.end());
            buf.push_back('\0');
            if (!::mkdtemp(buf.data())) throw std::runtime_error(sys_error("tmp_dir: cannot create a directory in " + base));
            dir = buf.data();
        }
        std::atomic<int> next{0};
        std::atomic<uint64_t> written{0};
        parallel_for(T, [&](std::size_t, std::size_t) {
            for (int b; (b = next++) < B;) {
                std::FILE* f = nullptr;
                uint64_t n = 0;
                for (auto& s : slots) {
                    Chunks& c = s.bins[b];
                    for (std::size_t j = 0; j < c.chunks.size(); ++j) {
                        const std::size_t codes = j + 1 < c.chunks.size() ? chunk_codes : chunk_codes - c.room;
                        if (!f && !(f = std::fopen(bin_path(b).c_str(), "ab")))
                            throw std::runtime_error(sys_error("cannot open spill file " + bin_path(b)));
                        if (std::fwrite(c.chunks[j], 8 * W, codes, f) != codes) {
                            std::fclose(f);
                            throw std::runtime_error(sys_error("cannot write spill file " + bin_path(b)));
                        }
                        n += codes;
                        unmap_bytes(c.chunks[j], chunk_bytes());
                    }
                    c = Chunks{};
                }
                if (f && std::fclose(f) != 0) throw std::runtime_error(sys_error("cannot write spill file " + bin_path(b)));
                file_codes[b] += n;
                written += n * 8 * W;
            }
        }, 1);
        for (auto& s : slots) s.bytes = 0;
        spilled += written;
#if defined(__GLIBC__)
        malloc_trim(0);
#endif
    }

    void add_codes(const uint64_t* codes, std::size_t n) {
        total += n;
        if (!have_table) {
            pending.insert(pending.end(), codes, codes + n * W);
            // The sample is held in memory too: at most 1/32 of the budget.
            if (pending.size() / W < std::min<uint64_t>(kSampleCodes, o.max_memory / 32 / (8 * W))) return;
            build_table();
            std::vector<uint64_t> p;
            p.swap(pending);
            partition(p.data(), p.size() / W);
        } else {
            partition(codes, n);
        }
        maybe_spill();
    }

    void partition(const uint64_t* codes, std::size_t n) {
        // A part may cover several slots when the pool is smaller than T; it owns them all.
        parallel_for(T, [&](std::size_t b, std::size_t e) {
            for (std::size_t t = b; t < e; ++t) scatter(slots[t], codes + (n * t / T) * W, n * (t + 1) / T - n * t / T);
        }, 1);
    }

    // Splits reads into pieces of about kPieceBases bases: runs of whole reads, or windows of one long
    // read overlapping by k - 1 bases (so every k-mer lies in exactly one window).
    struct Piece {
        std::size_t r0, r1;   // reads [r0, r1), or one read r0 when win_end > 0
        int64_t win_begin, win_end;
    };

    void add_reads(const uint8_t* data, const int64_t* offsets, std::size_t n) {
        std::vector<Piece> pieces;
        std::size_t r = 0;
        while (r < n) {
            const int64_t len = offsets[r + 1] - offsets[r];
            if (len > kPieceBases) {
                for (int64_t s = 0; s + o.k <= len; s += kPieceBases)
                    pieces.push_back({r, r + 1, offsets[r] + s, offsets[r] + std::min(len, s + kPieceBases + o.k - 1)});
                ++r;
                continue;
            }
            std::size_t e = r + 1;
            while (e < n && offsets[e + 1] - offsets[e] <= kPieceBases && offsets[e + 1] - offsets[r] <= kPieceBases) ++e;
            pieces.push_back({r, e, 0, 0});
            r = e;
        }
        if (!have_table) {  // the first codes go to the sample serially
            std::size_t i = 0;
            Slot& s = slots[0];
            while (i < pieces.size() && !have_table) codes_of(pieces[i++], data, offsets, s, true);
            pieces.erase(pieces.begin(), pieces.begin() + i);
        }
        // Rounds of a few pieces per worker, so the budget is checked between rounds.
        const std::size_t round = 4 * T;
        for (std::size_t p0 = 0; p0 < pieces.size(); p0 += round) {
            const std::size_t p1 = std::min(pieces.size(), p0 + round);
            std::atomic<std::size_t> next{p0};
            std::atomic<uint64_t> added{0};
            parallel_for(T, [&](std::size_t b, std::size_t) {
                for (std::size_t i; (i = next++) < p1;) added += codes_of(pieces[i], data, offsets, slots[b], false);
            }, 1);
            total += added;
            maybe_spill();
        }
    }

    // K-mer codes of one piece into the slot's buffer, then into its bins (or the sample).
    uint64_t codes_of(const Piece& pc, const uint8_t* data, const int64_t* offsets, Slot& s, bool sample) {
        const KmerSpec spec{o.k, o.canonical ? Strand::Canonical : Strand::Forward, 1};
        const int64_t* offs;
        std::size_t nr;
        int64_t win[2];
        if (pc.win_end > 0) {
            win[0] = pc.win_begin;
            win[1] = pc.win_end;
            offs = win;
            nr = 1;
        } else {
            offs = offsets + pc.r0;
            nr = pc.r1 - pc.r0;
        }
        s.out_offsets.resize(nr + 1);
        int64_t* oo = s.out_offsets.data();
        oo[0] = 0;
        kmer_counts(data, offs, nr, spec, oo + 1);
        for (std::size_t i = 0; i < nr; ++i) oo[i + 1] += oo[i];
        const auto m = static_cast<std::size_t>(oo[nr]);
        s.codes.reserve(m * W);
        kmer_codes(data, offs, nr, spec, oo, s.codes.p, nullptr);
        if (sample)
            add_codes(s.codes.p, m);
        else
            scatter(s, s.codes.p, m);
        return m;
    }

    // LSD radix sort (k > 32) by 8-bit digits of (x - min), only over the bits where the bin's codes differ:
    // a bin spans a narrow code range, so its top bits are common and cost no pass.
    template <int NW>
    static void radix_sort(uint64_t*& a, uint64_t*& tmp, std::size_t n) {
        if (n < 2) return;
        constexpr int kBits = 8, kRadix = 1 << kBits;
        const int L = NW - 1;  // the low word
        uint64_t lo_min = a[L], lo_max = a[L], hi_min = a[0], hi_max = a[0];
        for (std::size_t i = 1; i < n; ++i) {
            lo_min = std::min(lo_min, a[i * NW + L]);
            lo_max = std::max(lo_max, a[i * NW + L]);
            if (NW == 2) {
                hi_min = std::min(hi_min, a[i * NW]);
                hi_max = std::max(hi_max, a[i * NW]);
            }
        }
        const bool hi_varies = NW == 2 && hi_min != hi_max;
        if (hi_varies) lo_min = 0;
        const uint64_t lmin = lo_min, hmin = hi_min;  // the low word is then sorted over its full width
        const uint64_t lo_span = hi_varies ? ~uint64_t(0) : lo_max - lo_min, hi_span = hi_max - hi_min;
        auto bits = [](uint64_t span) { return span ? 64 - __builtin_clzll(span) : 0; };
        const int lo_digits = (bits(lo_span) + kBits - 1) / kBits;
        const int digits = lo_digits + (hi_varies ? (bits(hi_span) + kBits - 1) / kBits : 0);
        if (digits == 0) return;
        auto digit = [lmin, hmin, lo_digits](const uint64_t* x, int d) -> std::size_t {
            if (d < lo_digits) return ((x[L] - lmin) >> (kBits * d)) & (kRadix - 1);
            return ((x[0] - hmin) >> (kBits * (d - lo_digits))) & (kRadix - 1);
        };
        // 32-bit counters: stores of uint64 codes cannot alias them (bins stay far below 2^32 codes).
        std::vector<uint32_t> hist(std::size_t(digits) * kRadix, 0);
        for (std::size_t i = 0; i < n; ++i)
            for (int d = 0; d < digits; ++d) ++hist[std::size_t(d) * kRadix + digit(a + i * NW, d)];
        for (int d = 0; d < digits; ++d) {
            uint32_t* h = &hist[std::size_t(d) * kRadix];
            if (h[digit(a, d)] == n) continue;  // one bucket holds all: nothing to move
            uint32_t sum = 0;
            for (int v = 0; v < kRadix; ++v) {
                const uint32_t c = h[v];
                h[v] = sum;
                sum += c;
            }
            for (std::size_t i = 0; i < n; ++i) {
                const uint64_t* x = a + i * NW;
                uint64_t* dst = tmp + NW * h[digit(x, d)]++;
                dst[0] = x[0];
                if (NW == 2) dst[1] = x[1];
            }
            std::swap(a, tmp);
        }
    }

    void free_chunks(int b) {
        for (auto& s : slots) {
            Chunks& c = s.bins[b];
            for (auto* ch : c.chunks) unmap_bytes(ch, chunk_bytes());
            c = Chunks{};
        }
    }

    // Reads bin b's spill file (if any) into p; returns the codes read.
    std::size_t read_spill(int b, uint64_t* p) {
        if (!file_codes[b]) return 0;
        std::FILE* f = std::fopen(bin_path(b).c_str(), "rb");
        if (!f) throw std::runtime_error(sys_error("cannot open spill file " + bin_path(b)));
        const std::size_t got = std::fread(p, 8 * W, file_codes[b], f);
        std::fclose(f);
        std::remove(bin_path(b).c_str());
        if (got != file_codes[b]) throw std::runtime_error("spill file " + bin_path(b) + " is truncated");
        return got;
    }

    // Single-word codes: one MSD pass straight from the chunks (and spill file) into ~n/2 buckets of
    // the bin's code range, then each bucket is sorted and run-length encoded while it is in L1 (equal
    // codes share a bucket). Results go straight to the output, at the bin's upper-bound position.
    uint64_t count_bin1(int b, std::size_t n, Buf& buf, Buf& tmp) {
        std::vector<std::pair<const uint64_t*, std::size_t>> spans;
        if (file_codes[b]) {
            buf.reserve(file_codes[b]);
            spans.emplace_back(buf.p, read_spill(b, buf.p));
        }
        for (auto& s : slots) {
            const Chunks& c = s.bins[b];
            for (std::size_t j = 0; j < c.chunks.size(); ++j)
                spans.emplace_back(c.chunks[j], j + 1 < c.chunks.size() ? chunk_codes : chunk_codes - c.room);
        }
        BinOut& r = out[b];
        uint64_t* oc = out_codes + r.start;
        uint32_t* on = out_counts + r.start;
        std::size_t keep = 0;
        uint64_t top = 0;
        auto emit = [&](uint64_t code, uint64_t c) {
            if (c < o.min_count || c > o.max_count) return;
            oc[keep] = code;
            on[keep] = static_cast<uint32_t>(std::min<uint64_t>(c, UINT32_MAX));
            if (c >= UINT32_MAX) r.big.emplace_back(keep, c);
            top = std::max(top, c);
            ++keep;
        };
        if (n == 0) return 0;
        uint64_t mn = spans[0].first[0], mx = mn;
        for (auto& sp : spans)
            for (std::size_t i = 0; i < sp.second; ++i) {
                mn = std::min(mn, sp.first[i]);
                mx = std::max(mx, sp.first[i]);
            }
        if (mn == mx) {
            free_chunks(b);
            emit(mn, n);
            r.kept = keep;
            return top;
        }
        const int span = 64 - __builtin_clzll(mx - mn);
        int bits = 1;
        while (bits < 18 && (std::size_t(1) << (bits + 1)) < n) ++bits;
        bits = std::min(bits, span);
        const int shift = span - bits;
        std::vector<uint32_t> start((std::size_t(1) << bits) + 1, 0);
        for (auto& sp : spans)
            for (std::size_t i = 0; i < sp.second; ++i) ++start[((sp.first[i] - mn) >> shift) + 1];
        for (std::size_t v = 1; v < start.size(); ++v) start[v] += start[v - 1];
        std::vector<uint32_t> pos(start.begin(), start.end() - 1);
        tmp.reserve(n);
        uint64_t* t = tmp.p;
        for (auto& sp : spans)
            for (std::size_t i = 0; i < sp.second; ++i) t[pos[(sp.first[i] - mn) >> shift]++] = sp.first[i];
        free_chunks(b);
        for (std::size_t v = 0; v + 1 < start.size(); ++v) {
            uint64_t* lo = t + start[v];
            const std::size_t m = start[v + 1] - start[v];
            if (m > 32) {
                std::sort(lo, lo + m);
            } else {
                for (std::size_t i = 1; i < m; ++i) {
                    const uint64_t x = lo[i];
                    std::size_t j = i;
                    for (; j > 0 && lo[j - 1] > x; --j) lo[j] = lo[j - 1];
                    lo[j] = x;
                }
            }
            for (std::size_t i = 0; i < m;) {
                std::size_t j = i + 1;
                while (j < m && lo[j] == lo[i]) ++j;
                emit(lo[i], j - i);
                i = j;
            }
        }
        r.kept = keep;
        return top;
    }

    uint64_t count_bin(int b, Buf& buf, Buf& tmp) {
        uint64_t n = file_codes[b];
        for (auto& s : slots) {
            const Chunks& c = s.bins[b];
            if (!c.chunks.empty()) n += c.chunks.size() * chunk_codes - c.room;
        }
        if (n >= UINT32_MAX) throw std::length_error("a bin holds 2^32 k-mers or more; use more bins");
        if (W == 1) return count_bin1(b, n, buf, tmp);
        buf.reserve(n * W);
        tmp.reserve(n * W);
        uint64_t* p = buf.p;
        p += read_spill(b, p) * W;
        for (auto& s : slots) {
            Chunks& c = s.bins[b];
            for (std::size_t j = 0; j < c.chunks.size(); ++j) {
                const std::size_t codes = j + 1 < c.chunks.size() ? chunk_codes : chunk_codes - c.room;
                std::memcpy(p, c.chunks[j], codes * 8 * W);
                p += codes * W;
                unmap_bytes(c.chunks[j], chunk_bytes());
            }
            c = Chunks{};
        }
        uint64_t* a = buf.p;
        uint64_t* t = tmp.p;
        radix_sort<2>(a, t, n);
        // Run-length encode straight into the output, at the bin's upper-bound position.
        BinOut& r = out[b];
        uint64_t* oc = out_codes + r.start * W;
        uint32_t* on = out_counts + r.start;
        std::size_t keep = 0;
        uint64_t mx = 0;
        for (std::size_t i = 0; i < n;) {
            std::size_t j = i + 1;
            if (W == 1)
                while (j < n && a[j] == a[i]) ++j;
            else
                while (j < n && a[2 * j] == a[2 * i] && a[2 * j + 1] == a[2 * i + 1]) ++j;
            const uint64_t c = j - i;
            if (c >= o.min_count && c <= o.max_count) {
                oc[keep * W] = a[i * W];
                if (W == 2) oc[keep * W + 1] = a[i * W + 1];
                on[keep] = static_cast<uint32_t>(std::min<uint64_t>(c, UINT32_MAX));
                if (c >= UINT32_MAX) r.big.emplace_back(keep, c);
                mx = std::max(mx, c);
                ++keep;
            }
            i = j;
        }
        r.kept = keep;
        return mx;
    }

    std::size_t begin_finish() {
        if (finished) throw std::logic_error("finish() was already called");
        finished = true;
        if (!have_table) {
            build_table();
            std::vector<uint64_t> p;
            p.swap(pending);
            partition(p.data(), p.size() / W);
        }
        for (auto& s : slots) {
            s.codes.release();
            std::vector<int64_t>().swap(s.out_offsets);
        }
        out.assign(B, BinOut{});
        std::size_t at = 0;
        for (int b = 0; b < B; ++b) {
            out[b].start = at;
            at += file_codes[b];
            for (auto& sl : slots) {
                const Chunks& c = sl.bins[b];
                if (!c.chunks.empty()) at += c.chunks.size() * chunk_codes - c.room;
            }
        }
        cap = at;
        // No huge pages here: the results of high-coverage input fill a small part of each bin's
        // upper-bound region, and 2 MB pages would populate the gaps too.
        maps = std::make_shared<OutputMaps>(cap * W * 8, cap * 4);
        out_codes = maps->codes;
        out_counts = maps->counts;
        return cap;
    }

    // Counts bins [next_bin, next_bin + n) in parallel, each straight into the output at its upper-bound
    // position, then moves their results left to follow the final rows (results never exceed their
    // bin, so moves go left and never touch rows already final).
    std::size_t count_bins(int n) {
        if (!finished) throw std::logic_error("count_bins() before begin_finish()");
        if (failed) throw std::logic_error("count_bins() after an error");
        const int b0 = next_bin, b1 = n <= 0 ? B : std::min(B, b0 + n);
        std::atomic<int> next{b0};
        std::vector<uint64_t> maxes(T, 0);
        try {
            parallel_for(T, [&](std::size_t w, std::size_t) {
                Slot& s = slots[w];
                for (int b; (b = next++) < b1;) maxes[w] = std::max(maxes[w], count_bin(b, s.sort_buf, s.sort_tmp));
            }, 1);
        } catch (...) {
            failed = true;
            throw;
        }
        for (auto m : maxes) max_seen = std::max(max_seen, m);
        for (int b = b0; b < b1; ++b) {
            BinOut& r = out[b];
            if (r.start != distinct && r.kept) {
                std::memmove(out_codes + distinct * W, out_codes + r.start * W, r.kept * W * 8);
                std::memmove(out_counts + distinct, out_counts + r.start, r.kept * 4);
            }
            r.start = distinct;
            distinct += r.kept;
        }
        next_bin = b1;
        if (next_bin == B) end_finish();
        return distinct;
    }

    void end_finish() {
        for (auto& s : slots) {
            s.sort_buf.release();
            s.sort_tmp.release();
        }
        if (!dir.empty()) {  // every bin file was removed as it was read
            ::rmdir(dir.c_str());
            dir.clear();
        }
        // The tail past the result was touched by the bins' results before compaction: release it.
        auto trim = [](void* base, std::size_t used, std::size_t total) {
            const std::size_t page = 4096, from = (used + page - 1) / page * page;
            if (from < total) ::madvise(static_cast<char*>(base) + from, total - from, MADV_DONTNEED);
        };
        trim(out_codes, distinct * W * 8, cap * W * 8);
        trim(out_counts, distinct * 4, cap * 4);
#if defined(__GLIBC__)
        malloc_trim(0);
#endif
    }

    void big_counts(uint64_t* counts) const {
        for (auto& r : out)
            for (auto& e : r.big) counts[r.start + e.first] = e.second;
    }
};
KmerCountNative::KmerCountNative(const CountOptions& opts) : s_(new KmerCountState) {
    auto& s = *s_;
    s.o = opts;
    if (opts.k < 1 || opts.k > 64) throw std::invalid_argument("k must be in 1..64, got " + std::to_string(opts.k));
    if (opts.bins < 0 || opts.bins > 65536)
        throw std::invalid_argument("bins must be in 0..65536 (0: automatic), got " + std::to_string(opts.bins));
    if (opts.min_count < 1) throw std::invalid_argument("min_count must be >= 1, got " + std::to_string(opts.min_count));
    if (opts.min_count > opts.max_count)
        throw std::invalid_argument("min_count must be <= max_count, got min_count=" + std::to_string(opts.min_count) +
                                    " max_count=" + std::to_string(opts.max_count));
    s.W = opts.k > 32 ? 2 : 1;
    s.T = std::max<std::size_t>(1, num_threads());
    s.pbits = std::min(kPrefixBits, 2 * opts.k);
    int b = opts.bins;
    if (b == 0) {  // as many bins as the budget affords, up to 1024 (bins of ~1/1024 of the k-mers stay in cache)
        b = 1024;
        while (b > 1 && min_count_memory(b, s.T) > opts.max_memory) b /= 2;
    }
    b = std::min(b, 1 << s.pbits);
    const uint64_t need = min_count_memory(b, s.T);
    if (opts.max_memory < need)
        throw std::invalid_argument("max_memory must be >= " + std::to_string(need) + " bytes for " + std::to_string(b) +
                                    " bins and " + std::to_string(s.T) + " threads, got " + std::to_string(opts.max_memory));
    s.B = b;
    // Chunks small enough that every bin of every worker fits in a quarter of the budget.
    std::size_t cc = kMaxChunkCodes;
    while (cc > kMinChunkCodes && uint64_t(s.T) * b * cc * 8 * s.W * 4 > opts.max_memory) cc /= 2;
    s.chunk_codes = cc;
    s.slots.resize(s.T);
    for (auto& sl : s.slots) sl.bins.resize(b);
    s.file_codes.assign(b, 0);
}

KmerCountNative::~KmerCountNative() = default;

void KmerCountNative::add_reads(const uint8_t* data, const int64_t* offsets, std::size_t n) {
    if (s_->finished) throw std::logic_error("add() after finish()");
    s_->add_reads(data, offsets, n);
}

void KmerCountNative::add_codes(const uint64_t* codes, std::size_t n) {
    if (s_->finished) throw std::logic_error("add() after finish()");
    s_->add_codes(codes, n);
}

std::size_t KmerCountNative::begin_finish() { return s_->begin_finish(); }
std::size_t KmerCountNative::count_bins(int n) { return s_->count_bins(n); }
int KmerCountNative::bins_left() const { return s_->finished ? s_->B - s_->next_bin : s_->B; }
CountOutput KmerCountNative::output() const {
    const auto& s = *s_;
    if (!s.maps) throw std::logic_error("output() before begin_finish()");
    return {s.out_codes, s.out_counts, s.cap, s.maps};
}
std::size_t KmerCountNative::finished_rows() const { return s_->distinct; }
uint64_t KmerCountNative::max_count_seen() const { return s_->max_seen; }
void KmerCountNative::big_counts(uint64_t* counts) const { s_->big_counts(counts); }
int KmerCountNative::words() const { return s_->W; }
uint64_t KmerCountNative::total_kmers() const { return s_->total; }
uint64_t KmerCountNative::spilled_bytes() const { return s_->spilled; }
int KmerCountNative::bins() const { return s_->B; }

}  // namespace kmerx
