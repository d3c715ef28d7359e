// Bindings of the sourmash-compatible MinHash kernels (kmerx/sketch.hpp).
#include "kmerx/sketch.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

py::array_t<uint64_t> sketch_hashes(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k,
                                    uint64_t seed, uint64_t max_hash, int64_t num) {
    const Seqs seqs = as_seqs(data, offsets);
    check_range("k", k, 1, 64);
    if (num < 0) throw std::invalid_argument("num must be >= 0, got " + std::to_string(num));
    std::vector<uint64_t> out;
    {
        py::gil_scoped_release nogil;
        out = kmerx::sketch_hashes(seqs.data, seqs.offsets, seqs.n, static_cast<int>(k), seed, max_hash,
                                   static_cast<std::size_t>(num));
    }
    return to_array(std::move(out));
}

uint64_t murmur(const py::bytes& b, uint64_t seed) {
    const std::string s = b;
    return murmur3_x64_128_low(reinterpret_cast<const uint8_t*>(s.data()), s.size(), seed);
}

}  // namespace

void init_sketch(py::module_& m) {
    m.def("sketch_hashes", &sketch_hashes, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("seed"),
          py::arg("max_hash"), py::arg("num"),
          "Sorted distinct sourmash hashes of the reads' canonical k-mers, <= max_hash, the num smallest "
          "when num > 0. See kmerx/sketch.hpp.");
    m.def("murmur3_x64_128_low", &murmur, py::arg("data"), py::arg("seed"),
          "Low 64 bits of MurmurHash3_x64_128 of the bytes.");
}

}  // namespace kmerx::bind
