#include "kmerx/fastx.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "kmerx/common.hpp"

namespace kmerx {
namespace {

enum class St { Done, Need, End };

struct Line {
    const uint8_t* b = nullptr;
    const uint8_t* e = nullptr;     // end of content: '\n' and a trailing '\r' excluded
    const uint8_t* next = nullptr;  // first byte after the line break
    std::size_t size() const { return static_cast<std::size_t>(e - b); }
};

// 1 = a line, 0 = more bytes needed, -1 = end of input.
inline int get_line(const uint8_t* p, const uint8_t* end, bool eof, Line& l) {
    if (p >= end) return eof ? -1 : 0;
    auto* nl = static_cast<const uint8_t*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!nl) {
        if (!eof) return 0;
        l.b = p; l.e = end; l.next = end;
    } else {
        l.b = p; l.e = nl; l.next = nl + 1;
    }
    if (l.e > l.b && l.e[-1] == '\r') --l.e;
    return 1;
}

// True when any byte lies outside [lo, hi]; an OR reduction without early exit, so the compiler
// vectorises it.
inline bool any_outside(const uint8_t* p, std::size_t n, uint8_t lo, uint8_t hi) {
    const uint8_t span = static_cast<uint8_t>(hi - lo);
    uint8_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) bad |= static_cast<uint8_t>(static_cast<uint8_t>(p[i] - lo) > span);
    return bad != 0;
}

inline bool blank(const Line& l) {
    for (const uint8_t* q = l.b; q < l.e; ++q)
        if (*q != ' ' && *q != '\t' && *q != '\r') return false;
    return true;
}

std::string show_byte(uint8_t c) {
    char b[24];
    if (c >= 32 && c < 127) std::snprintf(b, sizeof b, "'%c' (0x%02x)", c, c);
    else std::snprintf(b, sizeof b, "0x%02x", c);
    return b;
}

bool valid_utf8(const uint8_t* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) { ++i; continue; }
        std::size_t k;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; }
        else return false;
        for (std::size_t j = 1; j <= k; ++j) {
            if (i + j >= n || (p[i + j] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

// Parsing state shared by the streaming reader and the byte-range resync check.
struct Ctx {
    const std::string* label;
    int64_t record;  // 1-based number of the record being parsed
    uint64_t line;   // lines consumed before the current one
    uint8_t qlo;     // lowest legal quality byte

    [[noreturn]] void fail(uint64_t at, const std::string& what) const {
        throw FormatError(*label + ": record " + std::to_string(record) + ", line " + std::to_string(at) + ": " +
                          what);
    }
    // Control bytes (< 32 other than tab) are garbage in any line.
    void check_text(const Line& l, uint64_t at, const char* where) const {
        for (const uint8_t* q = l.b; q < l.e; ++q)
            if (*q < 32 && *q != '\t' && *q != '\r') fail(at, std::string("control byte ") + show_byte(*q) + " in " + where);
    }
    void check_header(const Line& l, uint64_t at) const {
        const uint8_t* b = l.b + 1;
        std::size_t n = l.size() - 1;
        if (any_outside(b, n, 32, 126)) {
            check_text(l, at, "header");
            if (!valid_utf8(b, n)) fail(at, "header is not valid UTF-8");
        }
    }
    void check_seq(const Line& l, uint64_t at) const {
        if (!any_outside(l.b, l.size(), 32, 126)) return;
        for (const uint8_t* q = l.b; q < l.e; ++q)
            if ((*q < 32 && *q != '\t' && *q != '\r') || *q >= 127) fail(at, "invalid byte " + show_byte(*q) + " in sequence");
    }
    void check_qual(const Line& l, uint64_t at) const {
        if (!any_outside(l.b, l.size(), qlo, 126)) return;
        for (const uint8_t* q = l.b; q < l.e; ++q)
            if (*q < qlo || *q > 126)
                fail(at, "quality byte " + show_byte(*q) + " outside the Phred+" + std::to_string(qlo == 64 ? 64 : 33) +
                             " range " + std::to_string(qlo) + "..126");
    }
};

struct NullSink {
    void name(const uint8_t*, std::size_t) {}
    void seq(const uint8_t*, std::size_t) {}
    void qual(const uint8_t*, std::size_t) {}
};

struct BatchSink {
    FastxBatch& b;
    void name(const uint8_t* p, std::size_t n) { b.name.append(p, n); }
    void seq(const uint8_t* p, std::size_t n) { b.seq.append(p, n); }
    void qual(const uint8_t* p, std::size_t n) { b.qual.append(p, n); }
};

// Reads a record's header line h at p (a non-blank line) and checks that it starts with `mark`;
// the name goes to the sink. Done when the whole line is in the buffer.
template <class Sink>
St parse_header(const uint8_t* p, const uint8_t* end, bool eof, Ctx& c, Sink& sink, char mark, const char* format,
                uint64_t& line, Line& h) {
    const int r = get_line(p, end, eof, h);
    if (r <= 0) return r == 0 ? St::Need : St::End;  // callers skip blank lines first: End is not reached
    ++line;
    if (*h.b != mark)
        c.fail(line, std::string("expected '") + mark + "' at the start of a " + format + " record, found " +
                         show_byte(*h.b));
    c.check_header(h, line);
    sink.name(h.b + 1, h.size() - 1);
    return St::Done;
}

// Parses one FASTQ record whose header line starts at p (a non-blank line). On Done, p and c.line
// move past the record; on Need nothing is consumed and the sink holds a partial record (the caller
// rolls it back).
template <class Sink>
St parse_fastq(const uint8_t*& p, const uint8_t* end, bool eof, Ctx& c, Sink& sink) {
    uint64_t line = c.line;
    Line h;
    if (St st = parse_header(p, end, eof, c, sink, '@', "FASTQ", line, h); st != St::Done) return st;
    const uint8_t* q = h.next;
    std::size_t seqlen = 0;
    bool any = false;
    Line s;
    for (;;) {
        int r = get_line(q, end, eof, s);
        if (r == 0) return St::Need;
        if (r < 0)
            c.fail(line + 1, any ? "truncated record (missing '+' line)" : "truncated record (missing sequence)");
        ++line;
        if (s.e > s.b && *s.b == '+') break;
        if (s.e > s.b && *s.b == '@') c.fail(line, "missing '+' line (a line starting with '@' inside the sequence)");
        c.check_seq(s, line);
        sink.seq(s.b, s.size());
        any = true;
        seqlen += s.size();
        q = s.next;
    }
    // s is the '+' line: bare, or repeating the header.
    if (s.size() > 1 && (s.size() != h.size() || std::memcmp(s.b + 1, h.b + 1, s.size() - 1) != 0)) {
        c.check_text(s, line, "'+' line");
        c.fail(line, "'+' line name does not match the header");
    }
    q = s.next;
    std::size_t qlen = 0;
    bool first = true;
    Line t;
    while (qlen < seqlen) {
        int r = get_line(q, end, eof, t);
        if (r == 0) return St::Need;
        if (r < 0)
            c.fail(line + 1, "truncated record (quality has " + std::to_string(qlen) + " of " + std::to_string(seqlen) +
                                 " bytes)");
        ++line;
        if (qlen + t.size() > seqlen) {
            if (first)
                c.fail(line, "quality length (" + std::to_string(t.size()) + ") != sequence length (" +
                                 std::to_string(seqlen) + ")");
            c.fail(line - 1, "quality length (" + std::to_string(qlen) + ") != sequence length (" +
                                 std::to_string(seqlen) + ")");
        }
        c.check_qual(t, line);
        sink.qual(t.b, t.size());
        qlen += t.size();
        first = false;
        q = t.next;
    }
    p = q;
    c.line = line;
    return St::Done;
}

// One FASTA record: the header line, then every line up to the next '>' line or the end.
template <class Sink>
St parse_fasta(const uint8_t*& p, const uint8_t* end, bool eof, Ctx& c, Sink& sink) {
    uint64_t line = c.line;
    Line h;
    if (St st = parse_header(p, end, eof, c, sink, '>', "FASTA", line, h); st != St::Done) return st;
    const uint8_t* q = h.next;
    Line s;
    for (;;) {
        int r = get_line(q, end, eof, s);
        if (r == 0) return St::Need;
        if (r < 0 || (s.e > s.b && *s.b == '>')) break;
        ++line;
        c.check_seq(s, line);
        sink.seq(s.b, s.size());
        q = s.next;
    }
    p = q;
    c.line = line;
    return St::Done;
}

// Skips blank lines before a record; Done leaves p at a non-blank line.
St skip_blank(const uint8_t*& p, const uint8_t* end, bool eof, uint64_t& line) {
    for (;;) {
        if (p < end && *p != '\n' && *p != '\r' && *p != ' ' && *p != '\t') return St::Done;
        Line l;
        int r = get_line(p, end, eof, l);
        if (r < 0) return St::End;
        if (r == 0) return St::Need;
        if (!blank(l)) return St::Done;
        ++line;
        p = l.next;
    }
}

}  // namespace

void* grow_bytes(void* old, std::size_t used, std::size_t want) {
    constexpr std::size_t kHuge = std::size_t(2) << 20;
    if (want < kHuge / 2) {
        void* q = std::realloc(old, want);
        if (!q) throw std::bad_alloc();
        return q;
    }
    want = (want + kHuge - 1) / kHuge * kHuge;
    void* q = nullptr;
    if (posix_memalign(&q, kHuge, want) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    ::madvise(q, want, MADV_HUGEPAGE);
#endif
    if (used) std::memcpy(q, old, used);
    std::free(old);
    return q;
}

// ---- streaming reader --------------------------------------------------------------------------
FastxReader::FastxReader(std::unique_ptr<Source> src, ReadOptions opt, uint64_t offset, int64_t range_end)
    : src_(std::move(src)), opt_(std::move(opt)), fmt_(opt_.format), abs_(offset), range_end_(range_end) {
    if (opt_.phred != 33 && opt_.phred != 64)
        throw std::invalid_argument("phred must be 33 or 64, got " + std::to_string(opt_.phred));
    if (opt_.batch_bytes == 0) throw std::invalid_argument("batch_bytes must be >= 1, got 0");
    cap_ = 4u << 20;
    buf_ = static_cast<uint8_t*>(grow_bytes(nullptr, 0, cap_));
}

FastxReader::~FastxReader() { std::free(buf_); }

bool FastxReader::fill() {
    if (eof_) return false;
    if (pos_ > 0) {
        std::memmove(buf_, buf_ + pos_, len_ - pos_);
        len_ -= pos_;
        abs_ += pos_;
        pos_ = 0;
    }
    if (len_ == cap_) {
        // One record (or line) fills the buffer: grow, so huge records still parse.
        buf_ = static_cast<uint8_t*>(grow_bytes(buf_, len_, cap_ * 2));
        cap_ *= 2;
    }
    // Fill completely, so a record that spans refills is re-parsed only after the buffer doubles.
    while (len_ < cap_) {
        std::size_t r = src_->read(buf_ + len_, cap_ - len_);
        if (r == 0) {
            eof_ = true;
            break;
        }
        len_ += r;
    }
    return true;
}

bool FastxReader::detect_format() {
    for (;;) {
        const uint8_t* p = buf_ + pos_;
        uint64_t line = line_;
        St st = skip_blank(p, buf_ + len_, eof_, line);
        if (st == St::Need) {
            fill();
            continue;
        }
        if (st == St::End) return false;
        if (*p == '>') fmt_ = Format::Fasta;
        else if (*p == '@') fmt_ = Format::Fastq;
        else
            throw FormatError(opt_.label + ": record " + std::to_string(opt_.first_index + 1) + ", line " +
                              std::to_string(line + 1) + ": expected '>' or '@' at the start of a record, found " +
                              show_byte(*p));
        return true;
    }
}

bool FastxReader::next(FastxBatch& b) {
    b = FastxBatch();
    b.first_index = opt_.first_index + count_;
    b.name_off.push(0);
    b.seq_off.push(0);
    if (done_) return false;
    if (fmt_ == Format::Auto && !detect_format()) {
        done_ = true;
        return false;
    }
    const bool fq = fmt_ == Format::Fastq;
    if (fq) b.qual_off.push(0);
    // Reserve what the previous batch used (page-granular, untouched pages cost nothing) so the
    // buffers do not grow by copying.
    const std::size_t budget = std::min<std::size_t>(opt_.batch_bytes, std::size_t(1) << 28) + 4096;
    b.seq.reserve(std::min(budget, last_seq_ + last_seq_ / 8 + 4096));
    if (fq) b.qual.reserve(std::min(budget, last_seq_ + last_seq_ / 8 + 4096));
    b.name.reserve(std::min(budget, last_name_ + last_name_ / 8 + 4096));
    b.seq_off.reserve(last_n_ + last_n_ / 8 + 64);
    b.name_off.reserve(last_n_ + last_n_ / 8 + 64);
    if (fq) b.qual_off.reserve(last_n_ + last_n_ / 8 + 64);
    Ctx c{&opt_.label, 0, line_, static_cast<uint8_t>(opt_.phred)};
    BatchSink sink{b};
    const std::size_t limit = opt_.batch_bytes;
    for (;;) {
        const std::size_t mark_name = b.name.n, mark_seq = b.seq.n, mark_qual = b.qual.n;
        if (b.n > 0 && mark_name + mark_seq + mark_qual >= limit) break;
        const uint8_t* p = buf_ + pos_;
        uint64_t line = line_;
        St st = skip_blank(p, buf_ + len_, eof_, line);
        if (st == St::Need) {
            fill();
            continue;
        }
        if (st == St::End) {
            done_ = true;
            break;
        }
        if (range_end_ >= 0 && abs_ + static_cast<uint64_t>(p - buf_) >= static_cast<uint64_t>(range_end_)) {
            done_ = true;
            break;
        }
        c.record = opt_.first_index + count_ + 1;
        c.line = line;
        const uint8_t* q = p;
        st = fq ? parse_fastq(q, buf_ + len_, eof_, c, sink) : parse_fasta(q, buf_ + len_, eof_, c, sink);
        if (st == St::Need) {
            b.name.n = mark_name;
            b.seq.n = mark_seq;
            b.qual.n = mark_qual;
            pos_ = static_cast<std::size_t>(p - buf_);
            line_ = line;
            fill();
            continue;
        }
        if (b.n > 0 && b.name.n + b.seq.n + b.qual.n > limit) {
            // Over budget: this record opens the next batch instead.
            b.name.n = mark_name;
            b.seq.n = mark_seq;
            b.qual.n = mark_qual;
            pos_ = static_cast<std::size_t>(p - buf_);
            line_ = line;
            break;
        }
        if (b.name.n > static_cast<std::size_t>(INT32_MAX))
            throw std::invalid_argument("batch_bytes too large: names of one batch exceed 2 GiB");
        b.name_off.push(static_cast<int32_t>(b.name.n));
        b.seq_off.push(static_cast<int64_t>(b.seq.n));
        if (fq) b.qual_off.push(static_cast<int64_t>(b.qual.n));
        ++b.n;
        ++count_;
        pos_ = static_cast<std::size_t>(q - buf_);
        line_ = c.line;
    }
    if (b.n > 0) {
        last_seq_ = std::max(last_seq_, b.seq.n);
        last_name_ = std::max(last_name_, b.name.n);
        last_n_ = std::max(last_n_, b.n);
    }
    return b.n > 0;
}

// ---- opening -----------------------------------------------------------------------------------
namespace {

std::string read_head(Source& s, std::size_t n) {
    std::string h(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        std::size_t r = s.read(reinterpret_cast<uint8_t*>(&h[got]), n - got);
        if (r == 0) break;
        got += r;
    }
    h.resize(got);
    return h;
}

std::string pread_all(int fd, uint64_t off, std::size_t n, const std::string& path) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        ssize_t r = ::pread(fd, &out[got], n - got, static_cast<off_t>(off + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(path + ": read failed: " + std::strerror(errno));
        }
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
}

struct Fd {
    int fd;
    ~Fd() { ::close(fd); }
};

// First record start at or after `start`. FASTA: a '>' at a line start. FASTQ: an '@' at a line
// start is ambiguous (quality lines may begin with '@'), so a candidate is accepted only when the
// records from it parse cleanly under the same rules as the sequential reader, for kResyncRecords
// records or up to the end of the file. A false start on a quality line fails because the true
// header that follows lands inside its "sequence" (lines starting with '@' are not sequence) or its
// '+' line names another record, or its quality lengths do not line up.
uint64_t resync(int fd, const std::string& path, uint64_t size, uint64_t start, uint64_t stop, Format fmt,
                int phred) {
    constexpr int kResyncRecords = 8;
    if (start == 0) return 0;
    const uint8_t want = fmt == Format::Fasta ? '>' : '@';
    std::size_t win = 1 << 16;
    uint64_t base = start - 1;  // the byte before the cut: a line starts after the first '\n' from here
    for (;;) {
        std::string w = pread_all(fd, base, win, path);
        const bool eof = base + w.size() >= size;
        auto* d = reinterpret_cast<const uint8_t*>(w.data());
        const uint8_t* end = d + w.size();
        auto* nl = static_cast<const uint8_t*>(std::memchr(d, '\n', w.size()));
        if (!nl) {
            if (eof) return size;
            win *= 2;
            continue;
        }
        const uint8_t* p = nl + 1;
        for (;;) {  // p is a line start
            if (p >= end) {
                if (eof) return size;
                break;
            }
            const uint64_t at = base + static_cast<uint64_t>(p - d);
            if (at >= stop) return at;
            if (*p == want) {
                if (fmt == Format::Fasta) return at;
                std::string label = path;
                Ctx c{&label, 1, 0, static_cast<uint8_t>(phred)};
                NullSink sink;
                const uint8_t* q = p;
                bool ok = true, need = false;
                try {
                    for (int k = 0; k < kResyncRecords && !need; ++k) {
                        St st = skip_blank(q, end, eof, c.line);
                        if (st == St::End) break;
                        if (st == St::Need || parse_fastq(q, end, eof, c, sink) == St::Need) need = true;
                    }
                } catch (const FormatError&) {
                    ok = false;
                }
                if (need) break;
                if (ok) return at;
            }
            nl = static_cast<const uint8_t*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            if (!nl) {
                if (eof) return size;
                break;
            }
            p = nl + 1;
        }
        // The window ended inside a line or a check: re-read from this line start, wider.
        base = base + static_cast<uint64_t>(p - d) - 1;
        win *= 2;
    }
}

Format sniff_format(int fd, const std::string& path) {
    constexpr std::size_t kChunk = 1 << 16;
    for (uint64_t off = 0;; off += kChunk) {
        std::string h = pread_all(fd, off, kChunk, path);
        for (char ch : h) {
            if (ch == '>') return Format::Fasta;
            if (ch == '@') return Format::Fastq;
            if (ch != '\n' && ch != '\r' && ch != ' ' && ch != '\t') return Format::Auto;
        }
        if (h.size() < kChunk) return Format::Auto;
    }
}

}  // namespace

std::unique_ptr<FastxReader> open_fastx_path(const std::string& path, ReadOptions opt, int64_t range_start,
                                             int64_t range_end) {
    auto src = open_file(path);
    std::string head = read_head(*src, 18);
    Compression comp = sniff_compression(reinterpret_cast<const uint8_t*>(head.data()), head.size());
    if (opt.label.empty() || opt.label == "<stream>") opt.label = path;
    if (range_start >= 0) {
        if (comp != Compression::None)
            throw std::invalid_argument("byte_range needs an uncompressed file, but " + path + " is " +
                                        compression_name(comp) + "-compressed");
        if (range_end < range_start)
            throw std::invalid_argument("byte_range must satisfy start <= end, got (" + std::to_string(range_start) +
                                        ", " + std::to_string(range_end) + ")");
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
        Fd guard{fd};
        const uint64_t size = static_cast<uint64_t>(::lseek(fd, 0, SEEK_END));
        if (opt.format == Format::Auto) opt.format = sniff_format(fd, path);
        uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(range_end), size);
        uint64_t at = std::min<uint64_t>(static_cast<uint64_t>(range_start), size);
        if (opt.format == Format::Auto && at > 0) at = size;  // blank or malformed: range 0 reports it
        if (opt.format != Format::Auto && at < stop)
            at = resync(fd, path, size, at, stop, opt.format, opt.phred);
        if (at >= stop) at = size, stop = size;  // nothing starts in the range
        return std::make_unique<FastxReader>(open_file(path, at), std::move(opt), at, static_cast<int64_t>(stop));
    }
    src = prefixed(std::move(head), std::move(src));
    switch (comp) {
        case Compression::None:
            return std::make_unique<FastxReader>(std::move(src), std::move(opt));
        case Compression::Gzip:
        case Compression::Bgzf: {
            std::string label = opt.label;
            return std::make_unique<FastxReader>(threaded(gzip_decoder(std::move(src), label)), std::move(opt));
        }
        default:
            throw std::invalid_argument(path + ": " + compression_name(comp) +
                                        " input must be decoded by the caller (kmerx.io.read does this)");
    }
}

std::unique_ptr<FastxReader> open_fastx_stream(std::unique_ptr<Source> src, ReadOptions opt) {
    // The thread pulls (and decodes) the stream while the caller parses.
    std::string head = read_head(*src, 18);
    Compression comp = sniff_compression(reinterpret_cast<const uint8_t*>(head.data()), head.size());
    src = prefixed(std::move(head), std::move(src));
    if (comp == Compression::Gzip || comp == Compression::Bgzf) src = gzip_decoder(std::move(src), opt.label);
    else if (comp != Compression::None)
        throw std::invalid_argument(opt.label + ": " + compression_name(comp) +
                                    " input must be decoded by the caller (kmerx.io.read does this)");
    return std::make_unique<FastxReader>(threaded(std::move(src)), std::move(opt));
}

}  // namespace kmerx
