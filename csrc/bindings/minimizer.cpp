// Bindings of the minimap2-compatible minimizers (kmerx/minimizer.hpp).
#include "kmerx/minimizer.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <string>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

// Returns (hash uint64, out_offsets int64, end int32, strand int8, span uint8); the last three are
// None unless positions.
py::tuple minimizers(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k, int64_t w, bool hpc,
                     bool positions) {
    const Seqs seqs = as_seqs(data, offsets);
    const MinimizerSpec spec = make_minimizer_spec(k, w, hpc);
    check_int32_reads(seqs, "minimizers");
    auto out_offsets = empty<int64_t>(seqs.n + 1);
    int64_t* oo = out_offsets.mutable_data();
    py::object hash = py::none(), end = py::none(), strand = py::none(), span = py::none();
    auto alloc = [&](std::size_t m) {
        py::gil_scoped_acquire gil;
        const auto sz = static_cast<py::ssize_t>(m);
        auto h = output_array<uint64_t>({sz});
        MinimizerColumns col{h.mutable_data(), nullptr, nullptr, nullptr};
        hash = std::move(h);
        if (positions) {
            auto e = output_array<int32_t>({sz});
            auto st = output_array<int8_t>({sz});
            auto sp = output_array<uint8_t>({sz});
            col.end = e.mutable_data();
            col.strand = st.mutable_data();
            col.span = sp.mutable_data();
            end = std::move(e);
            strand = std::move(st);
            span = std::move(sp);
        }
        return col;
    };
    {
        py::gil_scoped_release nogil;
        kmerx::minimizers(seqs.data, seqs.offsets, seqs.n, spec, oo, alloc);
    }
    return py::make_tuple(hash, out_offsets, end, strand, span);
}

}  // namespace

void init_minimizer(py::module_& m) {
    m.def("minimizers", &minimizers, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("w"), py::arg("hpc"),
          py::arg("positions"),
          "minimap2 minimizers of every read: (hash, out_offsets, end, strand, span); see kmerx/minimizer.hpp.");
}

}  // namespace kmerx::bind
