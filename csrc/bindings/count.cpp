// Bindings of the exact k-mer counter (kmerx/count.hpp).
#include "kmerx/count.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

void add_reads(KmerCountNative& c, const carray<uint8_t>& data, const carray<int64_t>& offsets) {
    const Seqs seqs = as_seqs(data, offsets);
    py::gil_scoped_release nogil;
    c.add_reads(seqs.data, seqs.offsets, seqs.n);
}

void add_codes(KmerCountNative& c, const carray<uint64_t>& codes) {
    const bool ok = c.words() == 1 ? codes.ndim() == 1 : codes.ndim() == 2 && codes.shape(1) == 2;
    if (!ok)
        throw std::invalid_argument(std::string("codes must have shape ") + (c.words() == 1 ? "(n,)" : "(n, 2)") +
                                    " for this k, got ndim " + std::to_string(codes.ndim()));
    const auto n = static_cast<std::size_t>(codes.shape(0));
    py::gil_scoped_release nogil;
    c.add_codes(codes.data(), n);
}

// The output maps as numpy arrays of `capacity` rows (codes uint64[n] or [n, 2], counts uint32[n]),
// zero-copy; each holds a reference to the maps.
py::tuple begin_finish(KmerCountNative& c) {
    {
        py::gil_scoped_release nogil;
        c.begin_finish();
    }
    const CountOutput o = c.output();
    auto holder = [&o] {
        return py::capsule(new std::shared_ptr<void>(o.owner),
                           [](void* q) { delete static_cast<std::shared_ptr<void>*>(q); });
    };
    const auto n = static_cast<py::ssize_t>(o.capacity);
    py::array_t<uint32_t> counts({n}, o.counts, holder());
    py::array_t<uint64_t> codes = c.words() == 1 ? py::array_t<uint64_t>({n}, o.codes, holder())
                                                 : py::array_t<uint64_t>({n, py::ssize_t(2)}, o.codes, holder());
    return py::make_tuple(codes, counts);
}

std::size_t count_bins(KmerCountNative& c, int64_t n) {
    check_range("n", n, 0, 65536);
    py::gil_scoped_release nogil;
    return c.count_bins(static_cast<int>(n));
}

void big_counts(const KmerCountNative& c, py::array_t<uint64_t, py::array::c_style> counts) {
    if (counts.ndim() != 1 || static_cast<std::size_t>(counts.shape(0)) != c.finished_rows())
        throw std::invalid_argument("counts must be uint64[" + std::to_string(c.finished_rows()) + "]");
    c.big_counts(counts.mutable_data());
}

}  // namespace

void init_count(py::module_& m) {
    py::class_<KmerCountNative>(m, "KmerCountNative", "Streaming exact k-mer counter. See kmerx/count.hpp.")
        .def(py::init([](int64_t k, bool canonical, uint64_t max_memory, const std::string& tmp_dir, int64_t bins,
                         uint64_t min_count, uint64_t max_count) {
                 check_range("k", k, 1, 64);
                 check_range("bins", bins, 0, 65536);
                 CountOptions o;
                 o.k = static_cast<int>(k);
                 o.canonical = canonical;
                 o.max_memory = max_memory;
                 o.tmp_dir = tmp_dir;
                 o.bins = static_cast<int>(bins);
                 o.min_count = min_count;
                 o.max_count = max_count;
                 return new KmerCountNative(o);
             }),
             py::arg("k"), py::arg("canonical"), py::arg("max_memory"), py::arg("tmp_dir"), py::arg("bins"),
             py::arg("min_count"), py::arg("max_count"))
        .def("add_reads", &add_reads, py::arg("data"), py::arg("offsets"))
        .def("add_codes", &add_codes, py::arg("codes"))
        .def("begin_finish", &begin_finish, "Ends pass 1: (codes, counts) output arrays of capacity rows.")
        .def("count_bins", &count_bins, py::arg("n"),
             "Counts the next n bins (0: all left); returns the number of final rows of the output.")
        .def("big_counts", &big_counts, py::arg("counts"),
             "Writes the exact counts >= 2^32 - 1 into a uint64 copy of the final rows' counts.")
        .def_property_readonly("bins_left", &KmerCountNative::bins_left)
        .def_property_readonly("max_count_seen", &KmerCountNative::max_count_seen)
        .def_property_readonly("total_kmers", &KmerCountNative::total_kmers)
        .def_property_readonly("spilled_bytes", &KmerCountNative::spilled_bytes)
        .def_property_readonly("bins", &KmerCountNative::bins);
    m.def("min_count_memory", &min_count_memory, py::arg("bins"), py::arg("threads"));
}

}  // namespace kmerx::bind
