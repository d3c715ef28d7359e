// Bindings of the 2-bit encoding and k-mer code kernels (kmerx/encode.hpp).
#include "kmerx/encode.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

// Returns (codes uint64[n] or uint64[n, 2], out_offsets int64[reads + 1], positions int32[n] or None).
py::tuple kmer_codes(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k,
                     const std::string& strand, int64_t stride, bool positions) {
    const Seqs seqs = as_seqs(data, offsets);
    const KmerSpec spec = make_kmer_spec(k, strand, stride);
    return two_pass(
        seqs, spec.words(), positions,
        [&](int64_t* counts) { kmer_counts(seqs.data, seqs.offsets, seqs.n, spec, counts); },
        [&](const int64_t* oo, uint64_t* codes, int32_t* pos) {
            kmerx::kmer_codes(seqs.data, seqs.offsets, seqs.n, spec, oo, codes, pos);
        });
}

// uint8[n, k] letters of n codes (uint64[n] for k <= 32, uint64[n, 2] for k > 32).
py::array_t<uint8_t> letters(const carray<uint64_t>& codes, int64_t k) {
    check_range("k", k, 1, 64);
    const int words = k > 32 ? 2 : 1;
    if (codes.ndim() != words || (words == 2 && codes.shape(1) != 2))
        throw std::invalid_argument("codes for k=" + std::to_string(k) + " must have shape " +
                                    (words == 1 ? std::string("(n,)") : std::string("(n, 2)")));
    const auto n = static_cast<py::ssize_t>(codes.shape(0));
    auto out = output_array<uint8_t>({n, static_cast<py::ssize_t>(k)});
    uint8_t* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        decode_kmers(codes.data(), std::size_t(n), int(k), o);
    }
    return out;
}

py::array_t<uint8_t> pack(const carray<uint8_t>& seq) {
    if (seq.ndim() != 1) throw std::invalid_argument("seq must be a 1-D uint8 array");
    const auto n = static_cast<std::size_t>(seq.size());
    auto out = empty<uint8_t>((n + 3) / 4);
    int64_t bad;
    {
        py::gil_scoped_release nogil;
        bad = pack_2bit(seq.data(), n, out.mutable_data());
    }
    if (bad >= 0)
        throw std::invalid_argument("pack_2bit: non-ACGT base " + std::to_string(int(seq.data()[bad])) +
                                    " ('" + std::string(1, char(seq.data()[bad])) + "') at position " +
                                    std::to_string(bad));
    return out;
}

py::bytes unpack(const carray<uint8_t>& packed, int64_t n) {
    if (packed.ndim() != 1) throw std::invalid_argument("packed must be a 1-D uint8 array");
    if (n < 0 || (n + 3) / 4 > packed.size())
        throw std::invalid_argument("n must be in 0.." + std::to_string(packed.size() * 4) + " for " +
                                    std::to_string(packed.size()) + " packed bytes, got " + std::to_string(n));
    std::string out(static_cast<std::size_t>(n), '\0');
    {
        py::gil_scoped_release nogil;
        unpack_2bit(packed.data(), static_cast<std::size_t>(n), reinterpret_cast<uint8_t*>(out.data()));
    }
    return py::bytes(out);
}

}  // namespace

void init_encode(py::module_& m) {
    m.def("kmer_codes", &kmer_codes, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("strand"),
          py::arg("stride"), py::arg("positions"),
          "K-mer codes of every read: (codes, out_offsets, positions or None). See kmerx/encode.hpp.");
    m.def("kmer_letters", &letters, py::arg("codes"), py::arg("k"), "uint8[n, k] ASCII letters of k-mer codes.");
    m.def("pack_2bit", &pack, py::arg("seq"), "Pack ACGT bytes 4 per byte, first base in the high bits.");
    m.def("unpack_2bit", &unpack, py::arg("packed"), py::arg("n"), "Unpack n bases from pack_2bit output.");
}

}  // namespace kmerx::bind
