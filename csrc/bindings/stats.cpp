#include "kmerx/stats.hpp"

#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

py::dict seq_counts(const carray<uint8_t>& seq_data, const carray<int64_t>& seq_offsets,
                    const std::optional<carray<uint8_t>>& qual_data,
                    const std::optional<carray<int64_t>>& qual_offsets) {
    const Seqs s = as_seqs(seq_data, seq_offsets, "seq");
    const Seqs q = optional_seqs(qual_data, qual_offsets, "qual", s);
    stats::Counts c;
    {
        py::gil_scoped_release release;
        c = stats::count(s.data, s.offsets, s.n, q.data, q.offsets);
    }
    py::array_t<int64_t> hist(256);
    std::copy(c.qual_hist.begin(), c.qual_hist.end(), hist.mutable_data());
    py::dict d;
    d["records"] = c.records;
    d["bases"] = c.bases;
    d["min_len"] = c.min_len;
    d["max_len"] = c.max_len;
    d["a"] = c.a;
    d["c"] = c.c;
    d["g"] = c.g;
    d["t"] = c.t;
    d["n"] = c.n;
    d["other"] = c.other;
    d["qual_hist"] = hist;
    return d;
}

}  // namespace

void init_stats(py::module_& m) {
    m.def("seq_counts", &seq_counts, py::arg("seq_data"), py::arg("seq_offsets"), py::arg("qual_data") = py::none(),
          py::arg("qual_offsets") = py::none(),
          "Per-batch counts: records, bases, min/max length, A/C/G/T/N/other (case-insensitive) and the "
          "256-bin histogram of quality bytes.");
}

}  // namespace kmerx::bind
