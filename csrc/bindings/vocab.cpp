// Bindings of kmerx.Vocab's lookup table (kmerx/vocab.hpp).
#include "kmerx/vocab.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

// uint64[n] (words 1) or uint64[n, 2] (words 2); n is returned.
std::size_t code_rows(const carray<uint64_t>& codes, int words, const char* name) {
    const bool ok = words == 1 ? codes.ndim() == 1 : codes.ndim() == 2 && codes.shape(1) == 2;
    if (!ok)
        throw std::invalid_argument(std::string(name) + " must be " +
                                    (words == 1 ? "uint64[n] (k <= 32)" : "uint64[n, 2] (k > 32)") +
                                    ", got an array with " + std::to_string(codes.ndim()) + " dimensions");
    return static_cast<std::size_t>(codes.shape(0));
}

std::unique_ptr<VocabTable> make_table(const carray<uint64_t>& codes, const carray<uint32_t>& ids, int words) {
    if (words != 1 && words != 2) throw std::invalid_argument("words must be 1 or 2, got " + std::to_string(words));
    const std::size_t n = code_rows(codes, words, "codes");
    if (ids.ndim() != 1 || static_cast<std::size_t>(ids.shape(0)) != n)
        throw std::invalid_argument("ids must be uint32[" + std::to_string(n) + "]");
    py::gil_scoped_release nogil;
    return std::make_unique<VocabTable>(codes.data(), n, words, ids.data());
}

py::array_t<uint32_t> lookup(const VocabTable& t, const carray<uint64_t>& codes, uint32_t unknown) {
    const std::size_t n = code_rows(codes, t.words(), "codes");
    auto out = output_array<uint32_t>({static_cast<py::ssize_t>(n)});
    uint32_t* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        t.lookup(codes.data(), n, unknown, o);
    }
    return out;
}

}  // namespace

void init_vocab(py::module_& m) {
    py::class_<VocabTable>(m, "VocabTable", "Open-addressing k-mer code -> id table (kmerx/vocab.hpp).")
        .def(py::init(&make_table), py::arg("codes"), py::arg("ids"), py::arg("words"))
        .def("lookup", &lookup, py::arg("codes"), py::arg("unknown"))
        .def_property_readonly("words", &VocabTable::words)
        .def_property_readonly("capacity", &VocabTable::capacity)
        .def("__len__", &VocabTable::size);
}

}  // namespace kmerx::bind
