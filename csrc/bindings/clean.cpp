#include "kmerx/clean.hpp"

#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

py::tuple clean_reads(const carray<uint8_t>& seq_data, const carray<int64_t>& seq_offsets,
                      const std::optional<carray<uint8_t>>& qual_data,
                      const std::optional<carray<int64_t>>& qual_offsets,
                      const std::optional<carray<int64_t>>& read_index,
                      const std::optional<carray<uint8_t>>& name_data,
                      const std::optional<carray<int64_t>>& name_offsets, bool uppercase, bool iupac_to_n,
                      bool u_to_t, int invalid, int quality_cutoff5, int quality_cutoff3, int phred_offset,
                      int64_t min_length, double max_n_fraction, int n_runs, int64_t n_run_length,
                      bool drop_empty, int rc, uint64_t seed) {
    const Seqs seqs = as_seqs(seq_data, seq_offsets, "seq");
    clean::Input in{seqs.data, seqs.offsets, nullptr, nullptr, nullptr, nullptr, nullptr, seqs.n};
    const Seqs qual_col = optional_seqs(qual_data, qual_offsets, "qual", seqs);
    const Seqs name_col = optional_seqs(name_data, name_offsets, "name", seqs);
    in.qual = qual_col.data;
    in.qual_offsets = qual_col.offsets;
    in.name = name_col.data;
    in.name_offsets = name_col.offsets;
    if (read_index) {
        if (read_index->ndim() != 1 || static_cast<std::size_t>(read_index->size()) != seqs.n)
            throw std::invalid_argument("read_index must be 1-D with one entry per read (" +
                                        std::to_string(seqs.n) + "), got " + std::to_string(read_index->size()));
        in.read_index = read_index->data();
    }
    check_range("invalid", invalid, 0, 2);
    check_range("n_runs", n_runs, 0, 2);
    check_range("rc", rc, 0, 2);
    check_range("phred_offset", phred_offset, 0, 255);
    check_range("quality_cutoff5", quality_cutoff5, -1, 255);
    check_range("quality_cutoff3", quality_cutoff3, -1, 255);
    clean::Options o;
    o.uppercase = uppercase;
    o.iupac_to_n = iupac_to_n;
    o.u_to_t = u_to_t;
    o.invalid = static_cast<clean::Invalid>(invalid);
    o.quality_cutoff5 = quality_cutoff5;
    o.quality_cutoff3 = quality_cutoff3;
    o.phred_offset = phred_offset;
    o.min_length = min_length;
    o.max_n_fraction = max_n_fraction;
    o.n_runs = static_cast<clean::NRuns>(n_runs);
    o.n_run_length = n_run_length;
    o.drop_empty = drop_empty;
    o.rc = static_cast<clean::Rc>(rc);
    o.seed = seed;
    clean::Result r;
    {
        py::gil_scoped_release release;
        r = clean::clean(in, o);
    }
    const bool has_qual = in.qual != nullptr;
    py::object qual = has_qual ? py::object(to_array(std::move(r.qual))) : py::none();
    py::object names = r.name_offsets.empty() ? py::object(py::none())
                                              : py::object(py::make_tuple(to_array(std::move(r.name)),
                                                                          to_array(std::move(r.name_offsets))));
    return py::make_tuple(to_array(std::move(r.seq)), qual, to_array(std::move(r.offsets)),
                          to_array(std::move(r.parent)), to_array(std::move(r.rc)), names);
}

}  // namespace

void init_clean(py::module_& m) {
    m.attr("RC_SUFFIX") = clean::RC_SUFFIX;
    m.def("clean_reads", &clean_reads, py::arg("seq_data"), py::arg("seq_offsets"), py::arg("qual_data"),
          py::arg("qual_offsets"), py::arg("read_index"), py::arg("name_data"), py::arg("name_offsets"), py::kw_only(), py::arg("uppercase"),
          py::arg("iupac_to_n"), py::arg("u_to_t"), py::arg("invalid"), py::arg("quality_cutoff5"),
          py::arg("quality_cutoff3"), py::arg("phred_offset"), py::arg("min_length"), py::arg("max_n_fraction"),
          py::arg("n_runs"), py::arg("n_run_length"), py::arg("drop_empty"), py::arg("rc"), py::arg("seed"),
          "Clean a batch of reads (see kmerx.clean). Returns (seq, qual|None, offsets, parent, rc, "
          "(name_data, name_offsets)|None); names are None when they equal the parents' names.");
    m.def("quality_trim_index",
          [](const carray<uint8_t>& qual, int cutoff5, int cutoff3, int phred_offset) {
              check_range("phred_offset", phred_offset, 0, 255);
              int64_t start = 0, stop = 0;
              clean::quality_trim(qual.data(), qual.size(), cutoff5, cutoff3, phred_offset, start, stop);
              return py::make_tuple(start, stop);
          },
          py::arg("qual"), py::arg("cutoff5"), py::arg("cutoff3"), py::arg("phred_offset") = 33,
          "cutadapt's quality trimming of one read: (start, stop) of the part kept.");
    m.def("random_rc", &clean::random_rc, py::arg("seed"), py::arg("read_index"),
          "Whether rc='random' reverse-complements the read with this read_index.");
}

}  // namespace kmerx::bind
