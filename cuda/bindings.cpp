// kmerx._cuda: device kernels on cupy arrays (anything with __cuda_array_interface__), plus a host
// round trip for numpy inputs. Imports and reports device_count() == 0 without a GPU or driver.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "common.cuh"
#include "encode.cuh"
#include "hash.cuh"
#include "windows.cuh"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

// A C-contiguous device array seen through __cuda_array_interface__ (version 2 or 3).
struct DeviceView {
    void* ptr;
    std::vector<int64_t> shape;
    std::size_t size() const {
        std::size_t n = 1;
        for (auto s : shape) n *= std::size_t(s);
        return n;
    }
};

DeviceView device_view(const py::object& obj, const char* name, const char* typestr, int ndim) {
    if (!py::hasattr(obj, "__cuda_array_interface__"))
        throw py::type_error(std::string(name) + " must be a device array (cupy or __cuda_array_interface__), got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    const py::dict cai = obj.attr("__cuda_array_interface__");
    const std::string ts = py::str(cai["typestr"]);
    if (ts.substr(1) != std::string(typestr).substr(1))
        throw std::invalid_argument(std::string(name) + " must have dtype " + typestr + ", got " + ts);
    DeviceView v;
    for (auto s : cai["shape"].cast<py::tuple>()) v.shape.push_back(s.cast<int64_t>());
    if (int(v.shape.size()) != ndim)
        throw std::invalid_argument(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                                    std::to_string(v.shape.size()) + "-D");
    if (cai.contains("strides") && !cai["strides"].is_none()) {
        // Accept explicit strides only when they describe the C-contiguous layout.
        int64_t expect = int64_t(std::stoi(std::string(typestr).substr(2)));
        auto strides = cai["strides"].cast<std::vector<int64_t>>();
        for (int d = ndim - 1; d >= 0; --d) {
            if (v.shape[d] > 1 && strides[d] != expect)
                throw std::invalid_argument(std::string(name) + " must be C-contiguous");
            expect *= v.shape[d];
        }
    }
    v.ptr = reinterpret_cast<void*>(cai["data"].cast<py::tuple>()[0].cast<uintptr_t>());
    return v;
}


int64_t covered(const py::object& offsets) {
    const DeviceView o = device_view(offsets, "offsets", "<i8", 1);
    if (o.shape[0] < 1) throw std::invalid_argument("offsets must hold at least one entry");
    py::gil_scoped_release nogil;
    return cuda::covered_bases(static_cast<const int64_t*>(o.ptr), std::size_t(o.shape[0] - 1), nullptr);
}

// Pass 1 of every per-k-mer op on device arrays (windows.cuh).
int64_t index_op(const py::object& data, const py::object& offsets, int64_t k, int64_t stride,
                 const py::object& index, const py::object& out_offsets) {
    check_range("k", k, 1, INT32_MAX);
    check_range("stride", stride, 1, INT64_MAX);
    const DeviceView d = device_view(data, "data", "|u1", 1);
    const DeviceView o = device_view(offsets, "offsets", "<i8", 1);
    const DeviceView ix = device_view(index, "index", "<i8", 1);
    const DeviceView oo = device_view(out_offsets, "out_offsets", "<i8", 1);
    if (o.shape[0] < 1) throw std::invalid_argument("offsets must hold at least one entry");
    const auto n = std::size_t(o.shape[0] - 1);
    if (oo.size() != n + 1)
        throw std::invalid_argument("out_offsets must have " + std::to_string(n + 1) + " entries, got " +
                                    std::to_string(oo.size()));
    py::gil_scoped_release nogil;
    const int64_t bases = cuda::covered_bases(static_cast<const int64_t*>(o.ptr), n, nullptr);
    if (bases < 0 || int64_t(ix.size()) != bases + 1)
        throw std::invalid_argument("index must have covered bases + 1 = " + std::to_string(bases + 1) +
                                    " entries, got " + std::to_string(ix.size()));
    return cuda::window_index(static_cast<const uint8_t*>(d.ptr), d.size(), static_cast<const int64_t*>(o.ptr), n,
                              k, stride, static_cast<int64_t*>(ix.ptr), static_cast<int64_t*>(oo.ptr), nullptr);
}

// The checked arguments of a pass-2 fill on device arrays: `width` uint64 values per k-mer.
struct Fill {
    const uint8_t* data;
    const int64_t* offsets;
    std::size_t n;
    const int64_t* index;
    uint64_t* values;
    int32_t* positions;
};

Fill fill_args(const py::object& data, const py::object& offsets, const py::object& index, const py::object& values,
               std::size_t width, const py::object& positions) {
    const DeviceView d = device_view(data, "data", "|u1", 1);
    const DeviceView o = device_view(offsets, "offsets", "<i8", 1);
    const DeviceView ix = device_view(index, "index", "<i8", 1);
    const DeviceView v = device_view(values, "values", "<u8", width == 1 ? 1 : 2);
    if (o.shape[0] < 1) throw std::invalid_argument("offsets must hold at least one entry");
    Fill f{static_cast<const uint8_t*>(d.ptr), static_cast<const int64_t*>(o.ptr), std::size_t(o.shape[0] - 1),
           static_cast<const int64_t*>(ix.ptr), static_cast<uint64_t*>(v.ptr), nullptr};
    std::size_t npos = 0;
    if (!positions.is_none()) {
        const DeviceView p = device_view(positions, "positions", "<i4", 1);
        f.positions = static_cast<int32_t*>(p.ptr);
        npos = p.size();
    }
    py::gil_scoped_release nogil;
    const int64_t bases = cuda::covered_bases(f.offsets, f.n, nullptr);
    if (int64_t(ix.size()) != bases + 1)
        throw std::invalid_argument("index must have " + std::to_string(bases + 1) + " entries, got " +
                                    std::to_string(ix.size()));
    int64_t total = 0;
    KMERX_CUDA_CHECK(cudaMemcpy(&total, f.index + bases, sizeof(int64_t), cudaMemcpyDeviceToHost));
    if (v.size() != std::size_t(total) * width || (f.positions && npos != std::size_t(total)))
        throw std::invalid_argument("values/positions must hold the " + std::to_string(total) +
                                    " k-mers window_index counted (x " + std::to_string(width) + ")");
    return f;
}

void kmer_fill_op(const py::object& data, const py::object& offsets, int64_t k, const std::string& strand,
                  int64_t stride, const py::object& index, const py::object& codes, const py::object& positions) {
    const KmerSpec spec = make_kmer_spec(k, strand, stride);
    const Fill f = fill_args(data, offsets, index, codes, std::size_t(spec.words()), positions);
    py::gil_scoped_release nogil;
    cuda::kmer_fill(f.data, f.offsets, f.n, spec, f.index, f.values, f.positions, nullptr);
}

void nthash_fill_op(const py::object& data, const py::object& offsets, int64_t k, int64_t num_hashes,
                    const std::string& strand, const py::object& index, const py::object& values,
                    const py::object& positions) {
    const NtHashSpec spec = make_nthash_spec(k, num_hashes, strand);
    const Fill f = fill_args(data, offsets, index, values, std::size_t(spec.num_hashes), positions);
    py::gil_scoped_release nogil;
    cuda::nthash_fill(f.data, f.offsets, f.n, spec, f.index, f.values, f.positions, nullptr);
}

template <class T>
void to_device(cuda::DeviceBuffer<T>& dst, const T* src, std::size_t n) {
    if (n) KMERX_CUDA_CHECK(cudaMemcpy(dst.get(), src, n * sizeof(T), cudaMemcpyHostToDevice));
}

// numpy in, numpy out: an op's two passes on the GPU, for callers without cupy. `fill(data, offsets, n,
// index, values, positions)` runs pass 2 on device pointers; `width` uint64 values per k-mer.
template <class FillFn>
py::tuple host_round_trip(const Seqs& seqs, std::size_t data_len, int64_t k, int64_t stride, std::size_t width,
                          bool positions, FillFn&& fill) {
    if (cuda::device_count() == 0) throw std::runtime_error("no CUDA device");
    const std::size_t n = seqs.n;
    auto out_offsets = empty<int64_t>(n + 1);
    int64_t* oo = out_offsets.mutable_data();
    py::array_t<uint64_t> values;
    py::object pos = py::none();
    {
        py::gil_scoped_release nogil;
        cuda::DeviceBuffer<uint8_t> d_data(data_len);
        cuda::DeviceBuffer<int64_t> d_offsets(n + 1);
        to_device(d_data, seqs.data, data_len);
        to_device(d_offsets, seqs.offsets, n + 1);
        const auto bases = std::size_t(seqs.offsets[n] - seqs.offsets[0]);
        cuda::DeviceBuffer<int64_t> d_index(bases + 1), d_out(n + 1);
        const auto total = std::size_t(cuda::window_index(d_data.get(), data_len, d_offsets.get(), n, k, stride,
                                                          d_index.get(), d_out.get(), nullptr));
        KMERX_CUDA_CHECK(cudaMemcpy(oo, d_out.get(), (n + 1) * sizeof(int64_t), cudaMemcpyDeviceToHost));
        cuda::DeviceBuffer<uint64_t> d_values(total * width);
        cuda::DeviceBuffer<int32_t> d_pos(positions ? total : 0);
        fill(d_data.get(), d_offsets.get(), n, d_index.get(), d_values.get(), positions ? d_pos.get() : nullptr);
        py::gil_scoped_acquire gil;
        values = width == 1 ? py::array_t<uint64_t>(py::ssize_t(total))
                            : py::array_t<uint64_t>(std::vector<py::ssize_t>{py::ssize_t(total), py::ssize_t(width)});
        py::array_t<int32_t> p(positions ? py::ssize_t(total) : 0);
        {
            py::gil_scoped_release again;
            if (total) {
                KMERX_CUDA_CHECK(cudaMemcpy(values.mutable_data(), d_values.get(), total * width * 8,
                                            cudaMemcpyDeviceToHost));
                if (positions)
                    KMERX_CUDA_CHECK(cudaMemcpy(p.mutable_data(), d_pos.get(), total * 4, cudaMemcpyDeviceToHost));
            }
        }
        if (positions) pos = std::move(p);
    }
    return py::make_tuple(values, out_offsets, pos);
}

py::tuple codes_host(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k,
                     const std::string& strand, int64_t stride, bool positions) {
    const Seqs seqs = as_seqs(data, offsets);
    const KmerSpec spec = make_kmer_spec(k, strand, stride);
    return host_round_trip(seqs, std::size_t(data.size()), spec.k, spec.stride, std::size_t(spec.words()), positions,
                           [&](const uint8_t* d, const int64_t* o, std::size_t n, const int64_t* ix, uint64_t* v,
                               int32_t* p) { cuda::kmer_fill(d, o, n, spec, ix, v, p, nullptr); });
}

py::tuple nthash_host(const carray<uint8_t>& data, const carray<int64_t>& offsets, int64_t k, int64_t num_hashes,
                      const std::string& strand, bool positions) {
    const Seqs seqs = as_seqs(data, offsets);
    const NtHashSpec spec = make_nthash_spec(k, num_hashes, strand);
    return host_round_trip(seqs, std::size_t(data.size()), spec.k, 1, std::size_t(spec.num_hashes), positions,
                           [&](const uint8_t* d, const int64_t* o, std::size_t n, const int64_t* ix, uint64_t* v,
                               int32_t* p) { cuda::nthash_fill(d, o, n, spec, ix, v, p, nullptr); });
}

}  // namespace

}  // namespace kmerx::bind

PYBIND11_MODULE(_cuda, m) {
    using namespace kmerx::bind;
    m.doc() = "kmerx CUDA kernels (device arrays through __cuda_array_interface__)";
    m.def("device_count", &kmerx::cuda::device_count, "CUDA devices usable here; 0 without a GPU or driver.");
    m.def("covered_bases", &covered, py::arg("offsets"), "offsets[-1] - offsets[0] of device offsets.");
    m.def("window_index", &index_op, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("stride"),
          py::arg("index"), py::arg("out_offsets"),
          "Pass 1 of the per-k-mer ops on device arrays: fills index (covered bases + 1) and out_offsets; returns "
          "the number of emitted k-mers.");
    m.def("kmer_fill", &kmer_fill_op, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("strand"),
          py::arg("stride"), py::arg("index"), py::arg("codes"), py::arg("positions") = py::none(),
          "Pass 2 on device arrays: writes codes (n or n x 2 uint64) and optional int32 positions.");
    m.def("kmer_codes_host", &codes_host, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("strand"),
          py::arg("stride"), py::arg("positions"),
          "numpy in/out round trip through the GPU: (codes, out_offsets, positions or None).");
    m.def("nthash_fill", &nthash_fill_op, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("num_hashes"),
          py::arg("strand"), py::arg("index"), py::arg("values"), py::arg("positions") = py::none(),
          "ntHash pass 2 on device arrays: writes values (n or n x num_hashes uint64) and optional int32 positions.");
    m.def("nthash_host", &nthash_host, py::arg("data"), py::arg("offsets"), py::arg("k"), py::arg("num_hashes"),
          py::arg("strand"), py::arg("positions"),
          "numpy in/out ntHash round trip through the GPU: (values, out_offsets, positions or None).");
}
