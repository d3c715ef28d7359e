// Bindings of ntHash 2 and ntHash minimizers (kmerx/hash.hpp).
#include "kmerx/hash.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <string>
#include <vector>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

// Returns (values uint64[n] or uint64[n, num_hashes], out_offsets int64[reads + 1], positions int32[n] or None).
py::tuple nthash(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k, int64_t num_hashes,
                 const std::string& strand, bool positions) {
    const Seqs seqs = as_seqs(data, offsets);
    const NtHashSpec spec = make_nthash_spec(k, num_hashes, strand);
    return two_pass(
        seqs, spec.num_hashes, positions,
        [&](int64_t* counts) { nthash_counts(seqs.data, seqs.offsets, seqs.n, spec.k, counts); },
        [&](const int64_t* oo, uint64_t* values, int32_t* pos) {
            kmerx::nthash(seqs.data, seqs.offsets, seqs.n, spec, oo, values, pos);
        });
}

// Returns (hashes uint64[n], out_offsets int64[reads + 1], positions int32[n]).
py::tuple minimizers(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k, int64_t w) {
    const Seqs seqs = as_seqs(data, offsets);
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
    if (w < 1) throw std::invalid_argument("w must be >= 1, got " + std::to_string(w));
    check_int32_reads(seqs, "minimizers");
    std::vector<uint64_t> hashes;
    std::vector<int32_t> pos;
    auto out_offsets = empty<int64_t>(seqs.n + 1);
    int64_t* oo = out_offsets.mutable_data();
    {
        py::gil_scoped_release nogil;
        nthash_minimizers(seqs.data, seqs.offsets, seqs.n, k, w, hashes, pos, oo);
    }
    return py::make_tuple(to_array(std::move(hashes)), out_offsets, to_array(std::move(pos)));
}

}  // namespace

void init_hash(py::module_& m) {
    m.def("nthash", &nthash, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("num_hashes"),
          py::arg("strand"), py::arg("positions"),
          "ntHash 2 of every ACGT k-mer: (values, out_offsets, positions or None). See kmerx/hash.hpp.");
    m.def("nthash_minimizers", &minimizers, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("w"),
          "indexlr-style ntHash minimizers: (hashes, out_offsets, positions). See kmerx/hash.hpp.");
}

}  // namespace kmerx::bind
