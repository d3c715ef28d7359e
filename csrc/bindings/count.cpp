// Bindings of the exact k-mer counter (kmerx/count.hpp).
#include "kmerx/count.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
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

template <class T>
py::array_t<T> mapped_array(T* p, std::size_t bytes, std::vector<py::ssize_t> shape) {
    struct Map {
        void* p;
        std::size_t bytes;
    };
    auto* m = new Map{p, bytes};
    py::capsule owner(m, [](void* q) {
        auto* mm = static_cast<Map*>(q);
        KmerCountNative::free_output(mm->p, mm->bytes);
        delete mm;
    });
    return py::array_t<T>(shape, p, owner);
}

// (codes uint64[n] or [n, 2], counts uint32[n], or uint64[n] when a count exceeds 2^32 - 1), zero-copy.
py::tuple finish(KmerCountNative& c) {
    std::size_t n, cap;
    uint64_t* codes;
    uint32_t* counts;
    {
        py::gil_scoped_release nogil;
        n = c.finish();
        c.take_output(codes, counts, cap);
    }
    const auto m = static_cast<py::ssize_t>(n);
    const int w = c.words();
    py::array_t<uint32_t> c32 = mapped_array(counts, cap * 4, {m});
    py::array_t<uint64_t> k = w == 1 ? mapped_array(codes, cap * 8, {m}) : mapped_array(codes, cap * 16, {m, py::ssize_t(2)});
    if (c.max_count_seen() < UINT32_MAX) return py::make_tuple(k, c32);
    py::array_t<uint64_t> c64({m});
    uint64_t* p = c64.mutable_data();
    for (py::ssize_t i = 0; i < m; ++i) p[i] = c32.data()[i];
    c.big_counts(p);
    return py::make_tuple(k, c64);
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
        .def("finish", &finish, "Counts every bin: (codes, counts) sorted by code.")
        .def_property_readonly("total_kmers", &KmerCountNative::total_kmers)
        .def_property_readonly("spilled_bytes", &KmerCountNative::spilled_bytes)
        .def_property_readonly("bins", &KmerCountNative::bins);
    m.def("min_count_memory", &min_count_memory, py::arg("bins"), py::arg("threads"));
}

}  // namespace kmerx::bind
