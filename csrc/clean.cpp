#include "kmerx/clean.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kmerx/common.hpp"

namespace kmerx::clean {

namespace {

constexpr int64_t kMinBytesPerTask = 1 << 16;

bool is_lower(int c) { return c >= 'a' && c <= 'z'; }
int to_upper(int c) { return is_lower(c) ? c - 32 : c; }
bool in(const char* set, int c) { return c != 0 && std::strchr(set, c) != nullptr; }

// Per-byte decisions, built once per call from the options.
struct Tables {
    std::array<uint8_t, 256> fwd{};   // normalised byte
    std::array<uint8_t, 256> rev{};   // complement of the normalised byte
    std::array<bool, 256> is_n{};     // normalised byte is N/n
    std::array<bool, 256> bad{};      // invalid byte under Invalid::Error
};

uint8_t complement(uint8_t c) {
    const bool lower = is_lower(c);
    const int u = to_upper(c);
    int r;
    switch (u) {
        case 'A': r = 'T'; break;
        case 'C': r = 'G'; break;
        case 'G': r = 'C'; break;
        case 'T': case 'U': r = 'A'; break;
        case 'R': r = 'Y'; break;
        case 'Y': r = 'R'; break;
        case 'K': r = 'M'; break;
        case 'M': r = 'K'; break;
        case 'B': r = 'V'; break;
        case 'V': r = 'B'; break;
        case 'D': r = 'H'; break;
        case 'H': r = 'D'; break;
        case 'S': case 'W': case 'N': r = u; break;
        default: return c;
    }
    return static_cast<uint8_t>(lower ? r + 32 : r);
}

Tables make_tables(const Options& o) {
    Tables t;
    for (int b = 0; b < 256; ++b) {
        const int u = to_upper(b);
        // Letters keep their case unless uppercasing; replacements (N, T) follow the input's case.
        auto cased = [&](int up) { return (!o.uppercase && is_lower(b)) ? up + 32 : up; };
        int out;
        if (in("ACGT", u)) {
            out = cased(u);
        } else if (u == 'U') {
            out = cased(o.u_to_t ? 'T' : 'U');
        } else if (in("RYKMSWBDHVN", u)) {
            out = cased(o.iupac_to_n ? 'N' : u);
        } else if (o.invalid == Invalid::ToN) {
            out = cased('N');
        } else {
            out = (o.uppercase && is_lower(b)) ? u : b;
            t.bad[b] = o.invalid == Invalid::Error;
        }
        t.fwd[b] = static_cast<uint8_t>(out);
        t.rev[b] = complement(static_cast<uint8_t>(out));
        t.is_n[b] = out == 'N' || out == 'n';
    }
    return t;
}

struct Piece {
    int64_t parent, start, end;
    uint8_t split;
};

void check_options(const Options& o) {
    if (o.phred_offset < 0 || o.phred_offset > 255)
        throw std::invalid_argument("phred_offset must be in 0..255, got " + std::to_string(o.phred_offset));
    if (o.quality_cutoff5 > 255 || o.quality_cutoff3 > 255)
        throw std::invalid_argument("quality cutoff must be <= 255");
    if (o.min_length < 0) throw std::invalid_argument("min_length must be >= 0, got " + std::to_string(o.min_length));
    if (o.n_run_length < 1)
        throw std::invalid_argument("n_run_length must be >= 1, got " + std::to_string(o.n_run_length));
    if (o.max_n_fraction > 1.0) throw std::invalid_argument("max_n_fraction must be <= 1");
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Plans the output pieces of reads [begin, end) into `out`.
void plan_reads(const Input& in, const Options& o, const Tables& t, std::size_t begin, std::size_t end,
                std::vector<Piece>& out) {
    const bool trim = in.qual && (o.quality_cutoff5 >= 0 || o.quality_cutoff3 >= 0);
    const bool count_n = o.max_n_fraction >= 0.0;
    std::vector<std::pair<int64_t, int64_t>> segs;
    for (std::size_t i = begin; i < end; ++i) {
        const int64_t base = in.seq_offsets[i];
        const int64_t len = in.seq_offsets[i + 1] - base;
        const uint8_t* s = in.seq + base;
        if (in.qual) {
            const int64_t qlen = in.qual_offsets[i + 1] - in.qual_offsets[i];
            if (qlen != len)
                throw std::invalid_argument("read " + std::to_string(i) + ": qual length " + std::to_string(qlen) +
                                            " differs from seq length " + std::to_string(len));
        }
        if (o.invalid == Invalid::Error) {
            for (int64_t k = 0; k < len; ++k)
                if (t.bad[s[k]])
                    throw std::invalid_argument("read " + std::to_string(i) + ": invalid base byte " +
                                                std::to_string(s[k]) + " at position " + std::to_string(k));
        }
        int64_t lo = 0, hi = len;
        if (trim) quality_trim(in.qual + in.qual_offsets[i], len, o.quality_cutoff5, o.quality_cutoff3,
                               o.phred_offset, lo, hi);
        segs.clear();
        bool has_run = false;
        if (o.n_runs == NRuns::Keep) {
            segs.emplace_back(lo, hi);
        } else {
            int64_t seg_start = lo, j = lo;
            while (j < hi) {
                if (!t.is_n[s[j]]) { ++j; continue; }
                int64_t k = j;
                while (k < hi && t.is_n[s[k]]) ++k;
                if (k - j >= o.n_run_length) {
                    has_run = true;
                    if (o.n_runs == NRuns::Drop) break;
                    if (j > seg_start) segs.emplace_back(seg_start, j);
                    seg_start = k;
                }
                j = k;
            }
            if (o.n_runs == NRuns::Drop && has_run) continue;
            if (!has_run) segs.emplace_back(lo, hi);
            else if (seg_start < hi) segs.emplace_back(seg_start, hi);
        }
        for (auto [a, b] : segs) {
            const int64_t n = b - a;
            if (n == 0 && o.drop_empty) continue;
            if (n < o.min_length) continue;
            if (count_n && n > 0) {
                int64_t ns = 0;
                for (int64_t k = a; k < b; ++k) ns += t.is_n[s[k]];
                if (static_cast<double>(ns) > o.max_n_fraction * static_cast<double>(n)) continue;
            }
            out.push_back(Piece{static_cast<int64_t>(i), a, b, static_cast<uint8_t>(has_run)});
        }
    }
}

// Digits of v written at p (p == nullptr: only counted).
int64_t put_int(char* p, int64_t v) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    const int64_t n = res.ptr - buf;
    if (p) std::memcpy(p, buf, static_cast<std::size_t>(n));
    return n;
}

// Writes (or, with out == nullptr, measures) the name of output read k.
int64_t put_name(const Input& in, const Result& r, std::size_t k, char* out) {
    const int64_t p = r.parent[k];
    const int64_t base = in.name_offsets[p], len = in.name_offsets[p + 1] - base;
    int64_t n = len;
    if (out) std::memcpy(out, in.name + base, static_cast<std::size_t>(len));
    if (r.split[k]) {
        if (out) out[n] = ':';
        n += 1;
        n += put_int(out ? out + n : nullptr, r.start[k] + 1);
        if (out) out[n] = '-';
        n += 1;
        n += put_int(out ? out + n : nullptr, r.end[k]);
    }
    if (r.rc[k]) {
        const int64_t s = static_cast<int64_t>(std::strlen(RC_SUFFIX));
        if (out) std::memcpy(out + n, RC_SUFFIX, static_cast<std::size_t>(s));
        n += s;
    }
    return n;
}

void build_names(const Input& in, Result& r) {
    const std::size_t m = r.parent.size();
    bool any = false;
    for (std::size_t k = 0; k < m && !any; ++k) any = r.split[k] || r.rc[k];
    if (!any) return;
    r.name_offsets.resize(m + 1);
    r.name_offsets[0] = 0;
    for (std::size_t k = 0; k < m; ++k) r.name_offsets[k + 1] = r.name_offsets[k] + put_name(in, r, k, nullptr);
    r.name.resize(static_cast<std::size_t>(r.name_offsets[m]));
    parallel_for_weighted(r.name_offsets.data(), m, [&](std::size_t b, std::size_t e) {
        for (std::size_t k = b; k < e; ++k)
            put_name(in, r, k, reinterpret_cast<char*>(r.name.data()) + r.name_offsets[k]);
    }, kMinBytesPerTask);
}

}  // namespace

void quality_trim(const uint8_t* qual, int64_t len, int cutoff5, int cutoff3, int offset, int64_t& start,
                  int64_t& stop) {
    // Subtract the cutoff from each quality and sum from the trimmed end inwards; the cut goes where the
    // running sum of (cutoff - q) peaks, stopping once the sum turns negative (good bases dominate).
    start = 0;
    stop = len;
    if (cutoff5 >= 0) {
        int64_t sum = 0, best = 0;
        for (int64_t i = 0; i < len; ++i) {
            sum += cutoff5 - (static_cast<int>(qual[i]) - offset);
            if (sum < 0) break;
            if (sum > best) { best = sum; start = i + 1; }
        }
    }
    if (cutoff3 >= 0) {
        int64_t sum = 0, best = 0;
        for (int64_t i = len - 1; i >= 0; --i) {
            sum += cutoff3 - (static_cast<int>(qual[i]) - offset);
            if (sum < 0) break;
            if (sum > best) { best = sum; stop = i; }
        }
    }
    if (start >= stop) start = stop = 0;
}

bool random_rc(uint64_t seed, int64_t read_index) {
    // Counter-based: the decision depends on (seed, read_index) only, never on batch boundaries.
    return splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(read_index)) >> 63;
}

Result clean(const Input& in, const Options& o) {
    check_options(o);
    if (o.rc == Rc::Random && in.n && !in.read_index)
        throw std::invalid_argument("rc='random' needs read_index");
    const Tables t = make_tables(o);
    Result r;

    // Pass 1: plan pieces per balanced range of reads, in parallel, then concatenate in order.
    const int64_t total = in.n ? in.seq_offsets[in.n] - in.seq_offsets[0] : 0;
    const std::size_t parts =
        std::min<std::size_t>(num_threads(), static_cast<std::size_t>(total / kMinBytesPerTask) + 1);
    const auto ranges = balanced_ranges(in.seq_offsets, in.n, parts);
    std::vector<std::vector<Piece>> planned(ranges.size());
    parallel_for(ranges.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) {
            planned[p].reserve(ranges[p].second - ranges[p].first);
            plan_reads(in, o, t, ranges[p].first, ranges[p].second, planned[p]);
        }
    });
    std::size_t npieces = 0;
    for (auto& v : planned) npieces += v.size();
    const std::size_t nout = o.rc == Rc::Append ? 2 * npieces : npieces;
    r.parent.resize(nout);
    r.start.resize(nout);
    r.end.resize(nout);
    r.rc.resize(nout);
    r.split.resize(nout);
    r.offsets.resize(nout + 1);
    r.offsets[0] = 0;
    std::size_t j = 0;
    for (auto& v : planned) {
        for (const Piece& p : v) {
            r.parent[j] = p.parent;
            r.start[j] = p.start;
            r.end[j] = p.end;
            r.split[j] = p.split;
            r.rc[j] = o.rc == Rc::Random && random_rc(o.seed, in.read_index[p.parent]);
            r.offsets[j + 1] = r.offsets[j] + (p.end - p.start);
            ++j;
        }
        std::vector<Piece>().swap(v);
    }
    if (o.rc == Rc::Append) {
        for (std::size_t k = 0; k < npieces; ++k, ++j) {
            r.parent[j] = r.parent[k];
            r.start[j] = r.start[k];
            r.end[j] = r.end[k];
            r.split[j] = r.split[k];
            r.rc[j] = 1;
            r.offsets[j + 1] = r.offsets[j] + (r.end[k] - r.start[k]);
        }
    }

    // Pass 2: copy normalised bytes (and qualities), reversed and complemented for rc pieces.
    const int64_t out_bytes = r.offsets[nout];
    r.seq.resize(static_cast<std::size_t>(out_bytes));
    if (in.qual) r.qual.resize(static_cast<std::size_t>(out_bytes));
    parallel_for_weighted(r.offsets.data(), nout, [&](std::size_t b, std::size_t e) {
        for (std::size_t k = b; k < e; ++k) {
            const int64_t src = in.seq_offsets[r.parent[k]] + r.start[k];
            const int64_t n = r.end[k] - r.start[k];
            const uint8_t* s = in.seq + src;
            uint8_t* d = r.seq.data() + r.offsets[k];
            if (!r.rc[k]) {
                for (int64_t x = 0; x < n; ++x) d[x] = t.fwd[s[x]];
            } else {
                for (int64_t x = 0; x < n; ++x) d[x] = t.rev[s[n - 1 - x]];
            }
            if (in.qual) {
                const uint8_t* q = in.qual + in.qual_offsets[r.parent[k]] + r.start[k];
                uint8_t* dq = r.qual.data() + r.offsets[k];
                if (n == 0) continue;
                if (!r.rc[k]) std::memcpy(dq, q, static_cast<std::size_t>(n));
                else std::reverse_copy(q, q + n, dq);
            }
        }
    }, kMinBytesPerTask);
    if (in.name) build_names(in, r);
    return r;
}

}  // namespace kmerx::clean
