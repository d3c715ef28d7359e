// Bindings of the FASTA/FASTQ reader: open a path or a Python byte stream, pull batches as numpy
// buffers (ownership handed over, no copy), sniff compression.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <mutex>
#include <optional>

#include "kmerx/common.hpp"
#include "kmerx/compress.hpp"
#include "kmerx/fastx.hpp"

namespace py = pybind11;

namespace kmerx::bind {
namespace {

Format parse_format(const std::string& f) {
    if (f == "auto") return Format::Auto;
    if (f == "fasta") return Format::Fasta;
    if (f == "fastq") return Format::Fastq;
    throw std::invalid_argument("format must be 'auto', 'fasta' or 'fastq', got '" + f + "'");
}

const char* format_name(Format f) {
    return f == Format::Fasta ? "fasta" : f == Format::Fastq ? "fastq" : "auto";
}

template <class T>
py::array_t<T> take(Buf<T>& b) {
    const auto n = static_cast<py::ssize_t>(b.n);
    T* p = b.release();
    py::capsule owner(p, [](void* q) { std::free(q); });
    return py::array_t<T>({n}, {static_cast<py::ssize_t>(sizeof(T))}, p, owner);
}

// A Python object whose last reference may be dropped on a thread without the GIL.
struct PyRef {
    py::object obj;
    explicit PyRef(py::object o) : obj(std::move(o)) {}
    ~PyRef() {
        py::gil_scoped_acquire g;
        obj = py::object();
    }
};

class PyReader {
public:
    explicit PyReader(std::unique_ptr<FastxReader> r) : r_(std::move(r)) {}
    ~PyReader() { close(); }
    // The decoding thread may be waiting for the GIL (a Python read callback): release it to join.
    void close() {
        if (!r_) return;
        if (PyGILState_Check()) {
            py::gil_scoped_release rel;
            std::lock_guard<std::mutex> lk(mu_);
            r_.reset();
        } else {
            std::lock_guard<std::mutex> lk(mu_);
            r_.reset();
        }
    }
    py::object next() {
        FastxBatch b;
        bool ok = false;
        {
            py::gil_scoped_release rel;
            std::lock_guard<std::mutex> lk(mu_);  // Python threads may share one reader
            if (r_) ok = r_->next(b);
        }
        if (!ok || !r_) return py::none();
        if (!ok) return py::none();
        const bool fq = r_->format() == Format::Fastq;
        py::object qd = py::none(), qo = py::none();
        if (fq) {
            qd = take(b.qual);
            qo = take(b.qual_off);
        }
        return py::make_tuple(b.n, b.first_index, take(b.name), take(b.name_off), take(b.seq), take(b.seq_off), qd, qo);
    }
    std::string format() const { return r_ ? format_name(r_->format()) : "auto"; }

private:
    std::mutex mu_;
    std::unique_ptr<FastxReader> r_;
};

ReadOptions options(const std::string& format, int phred, std::size_t batch_bytes, int64_t first_index,
                    std::string label) {
    ReadOptions o;
    o.format = parse_format(format);
    if (phred != 33 && phred != 64) throw std::invalid_argument("phred must be 33 or 64, got " + std::to_string(phred));
    if (batch_bytes == 0) throw std::invalid_argument("batch_bytes must be >= 1, got 0");
    if (first_index < 0) throw std::invalid_argument("first_index must be >= 0, got " + std::to_string(first_index));
    o.phred = phred;
    o.batch_bytes = batch_bytes;
    o.first_index = first_index;
    o.label = std::move(label);
    return o;
}

}  // namespace

void init_fastx(py::module_& m) {
    py::class_<PyReader>(m, "FastxReader", "Native FASTA/FASTQ batch reader (use kmerx.io.read).")
        .def("next", &PyReader::next,
             "Next batch as (n, first_index, name_data, name_offsets int32, seq_data, seq_offsets, qual_data, "
             "qual_offsets) or None at the end; qual_* are None for FASTA.")
        .def("close", &PyReader::close, "Stop the decoding thread and free buffers.")
        .def_property_readonly("format", &PyReader::format);

    m.def(
        "fastx_open_path",
        [](const std::string& path, const std::string& format, int phred, std::size_t batch_bytes, int64_t first_index,
           std::optional<std::pair<int64_t, int64_t>> byte_range) {
            ReadOptions o = options(format, phred, batch_bytes, first_index, path);
            int64_t s = -1, e = -1;
            if (byte_range) {
                s = byte_range->first;
                e = byte_range->second;
                if (s < 0 || e < s)
                    throw std::invalid_argument("byte_range must be (start, end) with 0 <= start <= end, got (" +
                                                std::to_string(s) + ", " + std::to_string(e) + ")");
            }
            std::unique_ptr<FastxReader> r;
            {
                py::gil_scoped_release rel;
                r = open_fastx_path(path, std::move(o), s, e);
            }
            return new PyReader(std::move(r));
        },
        py::arg("path"), py::arg("format") = "auto", py::arg("phred") = 33, py::arg("batch_bytes") = 4u << 20,
        py::arg("first_index") = 0, py::arg("byte_range") = py::none(),
        "Open a file path (gzip/BGZF decoded natively on a second thread).");

    m.def(
        "fastx_open_stream",
        [](py::object read, const std::string& label, const std::string& format, int phred, std::size_t batch_bytes,
           int64_t first_index) {
            ReadOptions o = options(format, phred, batch_bytes, first_index, label);
            auto ref = std::make_shared<PyRef>(std::move(read));
            auto fn = [ref](uint8_t* dst, std::size_t n) -> std::size_t {
                py::gil_scoped_acquire g;
                py::object r = ref->obj(n);
                if (r.is_none()) return 0;
                std::size_t k;
                if (PyBytes_Check(r.ptr())) {
                    k = static_cast<std::size_t>(PyBytes_GET_SIZE(r.ptr()));
                    if (k > n) throw std::runtime_error("read(n) returned more than n bytes");
                    std::memcpy(dst, PyBytes_AS_STRING(r.ptr()), k);
                } else {
                    py::buffer_info info = py::buffer(r).request();
                    k = static_cast<std::size_t>(info.size * info.itemsize);
                    if (k > n) throw std::runtime_error("read(n) returned more than n bytes");
                    std::memcpy(dst, info.ptr, k);
                }
                return k;
            };
            std::unique_ptr<FastxReader> r = open_fastx_stream(callback_source(fn), std::move(o));
            return new PyReader(std::move(r));
        },
        py::arg("read"), py::arg("label"), py::arg("format") = "auto", py::arg("phred") = 33,
        py::arg("batch_bytes") = 4u << 20, py::arg("first_index") = 0,
        "Open a byte stream given its read(n) callable (gzip detected and decoded natively).");

    m.def(
        "sniff_compression",
        [](py::bytes head) {
            std::string h = head;
            return std::string(compression_name(
                sniff_compression(reinterpret_cast<const uint8_t*>(h.data()), h.size())));
        },
        py::arg("head"),
        "Compression named by the first bytes of a stream (18 suffice): 'none', 'gzip', 'bgzf', 'bz2', 'xz', 'zstd'.");
    m.def("gzip_backend", [] { return std::string(gzip_backend()); }, "'isa-l' or 'zlib'.");
}

}  // namespace kmerx::bind
