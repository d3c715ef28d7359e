// kmerx._cuda: device kernels on cupy arrays (anything with __cuda_array_interface__), plus a host
// round trip for numpy inputs. Imports and reports device_count() == 0 without a GPU or driver.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "cache_stats.hpp"
#include "common.cuh"
#include "encode.cuh"
#include "hash.cuh"
#include "lookup.cuh"
#include "table.cuh"
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

// ---- embeddings ------------------------------------------------------------------------------

Dtype dtype_of(int code) {
    check_range("dtype code", code, 0, 4);
    return static_cast<Dtype>(code);
}

std::string typestr_of(const py::object& obj, const char* name) {
    if (!py::hasattr(obj, "__cuda_array_interface__"))
        throw py::type_error(std::string(name) + " must be a device array (cupy or __cuda_array_interface__), got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    return py::str(obj.attr("__cuda_array_interface__")["typestr"]);
}

// uint32 or int64 device ids, 1-D.
IdView device_ids(const py::object& obj, const char* name, int64_t* n) {
    const std::string ts = typestr_of(obj, name);
    IdView v;
    if (ts.substr(1) == "u4") {
        const DeviceView d = device_view(obj, name, "<u4", 1);
        v.u32 = static_cast<const uint32_t*>(d.ptr);
        *n = d.shape[0];
    } else if (ts.substr(1) == "i8") {
        const DeviceView d = device_view(obj, name, "<i8", 1);
        v.i64 = static_cast<const int64_t*>(d.ptr);
        *n = d.shape[0];
    } else {
        throw py::type_error(std::string(name) + " must be uint32 or int64, got typestr " + ts);
    }
    return v;
}

// An optional 1-D device vector of n entries.
template <class T>
const T* device_vector(const py::object& obj, const char* name, const char* typestr, int64_t n) {
    if (obj.is_none()) return nullptr;
    const DeviceView d = device_view(obj, name, typestr, 1);
    if (d.shape[0] != n)
        throw std::invalid_argument(std::string(name) + " must hold " + std::to_string(n) + " entries, got " +
                                    std::to_string(d.shape[0]));
    return static_cast<const T*>(d.ptr);
}

// A table's rows: dense (device uint8 rows x row_bytes) or one device row pointer per id (uint64).
RowTable device_table(const py::object& dense, const py::object& ptrs, int64_t rows, int64_t dim, Dtype dtype,
                      int64_t n_ids, const char* name) {
    RowTable t;
    t.dim = dim;
    t.dtype = dtype;
    if (!ptrs.is_none()) {
        if (!dense.is_none()) throw std::invalid_argument(std::string(name) + ": give the dense rows or the row pointers, not both");
        t.ptrs = reinterpret_cast<const uint8_t* const*>(device_vector<uint64_t>(ptrs, (std::string(name) + "_ptrs").c_str(), "<u8", n_ids));
        check_range((std::string(name) + " rows").c_str(), rows, 0, INT64_MAX);
        t.rows = rows;
        return t;
    }
    if (dense.is_none()) throw std::invalid_argument(std::string(name) + " is required");
    const DeviceView d = device_view(dense, name, "|u1", 2);
    const int64_t rb = row_bytes(dtype, dim);
    if (d.shape[1] != rb)
        throw std::invalid_argument(std::string(name) + " must have row_bytes = " + std::to_string(rb) + " columns, got " +
                                    std::to_string(d.shape[1]));
    t.base = static_cast<const uint8_t*>(d.ptr);
    t.rows = d.shape[0];
    return t;
}

// The device twin of _core.lookup: the same arguments on device arrays; `out` is required (nothing
// is allocated here). table/table2 are dense rows, or table_ptrs gives one row pointer per id (rows:
// the table's row count, for the range checks).
void lookup_op(const py::object& table, int64_t dim, int dtype, const py::object& ids, const py::object& offsets,
               int64_t h, const py::object& weights, const py::object& slots, const py::object& slot_weights,
               const py::object& table2, int dtype2, int64_t qr_m, int combine, const py::object& pos_table,
               const py::object& positions, int pool, bool out_f16, const py::object& out_rows, const py::object& out,
               const py::object& table_ptrs, int64_t rows) {
    check_range("dim", dim, 1, 1 << 20);
    check_range("h", h, 1, 64);
    check_range("pool code", pool, 0, 3);
    check_range("combine code", combine, 0, 1);
    check_range("qr_m", qr_m, 0, INT64_MAX);
    LookupArgs a;
    int64_t n_ids = 0;
    a.ids = device_ids(ids, "ids", &n_ids);
    if (n_ids % h)
        throw std::invalid_argument("ids holds " + std::to_string(n_ids) + " values, not a multiple of h = " + std::to_string(h));
    const int64_t tokens = n_ids / h;
    const DeviceView o = device_view(offsets, "offsets", "<i8", 1);
    if (o.shape[0] < 1) throw std::invalid_argument("offsets must be 1-D with n + 1 entries");
    a.n_reads = o.shape[0] - 1;
    a.offsets = static_cast<const int64_t*>(o.ptr);
    a.h = h;
    a.weights = device_vector<float>(weights, "weights", "<f4", n_ids);
    if (!slots.is_none()) {
        if (slot_weights.is_none()) throw std::invalid_argument("slots need slot_weights");
        const DeviceView sw = device_view(slot_weights, "slot_weights", "<f4", 2);
        if (sw.shape[1] != h)
            throw std::invalid_argument("slot_weights must be 2-D with h = " + std::to_string(h) + " columns");
        a.slots = device_vector<uint32_t>(slots, "slots", "<u4", tokens);
        a.slot_weights = static_cast<const float*>(sw.ptr);
        a.n_slots = sw.shape[0];
    }
    a.table = device_table(table, table_ptrs, rows, dim, dtype_of(dtype), n_ids, "table");
    a.qr_m = qr_m;
    a.combine = static_cast<Combine>(combine);
    if (qr_m > 0) {
        if (h != 1 || a.weights || a.slots) throw std::invalid_argument("quotient-remainder lookups take one id per token");
        if (!table_ptrs.is_none()) throw std::invalid_argument("quotient-remainder tables must be dense");
        a.table2 = device_table(table2, py::none(), 0, dim, dtype_of(dtype2), n_ids, "table2");
        if (a.table2.rows != qr_m)
            throw std::invalid_argument("table2 must have qr_m = " + std::to_string(qr_m) + " rows, got " +
                                        std::to_string(a.table2.rows));
    }
    if (!pos_table.is_none()) {
        const DeviceView p = device_view(pos_table, "pos_table", "<f4", 2);
        if (p.shape[1] != dim) throw std::invalid_argument("pos_table must be 2-D with " + std::to_string(dim) + " columns");
        a.pos_table = static_cast<const float*>(p.ptr);
        a.pos_rows = p.shape[0];
    }
    a.positions = device_vector<int32_t>(positions, "positions", "<i4", tokens);
    a.pool = static_cast<Pool>(pool);
    a.out_f16 = out_f16;
    const std::string ots = typestr_of(out, "out");
    if (ots.substr(1) != (out_f16 ? "f2" : "f4"))
        throw py::type_error(std::string("out must have dtype ") + (out_f16 ? "float16" : "float32") + ", got typestr " + ots);
    const py::tuple oshape = out.attr("__cuda_array_interface__")["shape"];
    const DeviceView ov = device_view(out, "out", out_f16 ? "<f2" : "<f4", int(oshape.size()));
    if (ov.shape.empty() || ov.shape.back() != dim)
        throw std::invalid_argument("out must be a C-contiguous array whose last axis is dim = " + std::to_string(dim));
    const auto out_n = int64_t(ov.size()) / dim;
    a.out = ov.ptr;
    if (!out_rows.is_none()) {
        if (a.pool != Pool::None) throw std::invalid_argument("out_rows applies to per-token output");
        a.out_rows = device_vector<int64_t>(out_rows, "out_rows", "<i8", a.n_reads);
    }
    py::gil_scoped_release nogil;
    const int64_t end = cuda::check_reads(a.offsets, a.n_reads, a.out_rows, out_n, nullptr);
    if (end != tokens)
        throw std::invalid_argument("offsets end at " + std::to_string(end) + ", ids hold " + std::to_string(tokens) +
                                    " tokens");
    if (!a.out_rows && out_n < (a.pool == Pool::None ? tokens : a.n_reads))
        throw std::invalid_argument("out holds " + std::to_string(out_n) + " rows, the lookup writes more");
    cuda::lookup(a, nullptr);
}

// Encoded virtual rows of device int64 `rows` into device uint8 out (n, row_bytes).
void virtual_rows_op(const py::object& rows, int64_t dim, int dtype, uint64_t seed, int init, double scale,
                     int64_t table_rows, const py::object& out) {
    const Dtype d = dtype_of(dtype);
    check_range("dim", dim, 1, 1 << 20);
    check_range("init code", init, 0, 2);
    if (!(scale >= 0.0) || scale > 1e30) throw std::invalid_argument("scale must be finite and >= 0, got " + std::to_string(scale));
    const DeviceView r = device_view(rows, "rows", "<i8", 1);
    const DeviceView o = device_view(out, "out", "|u1", 2);
    if (o.shape[0] != r.shape[0] || o.shape[1] != row_bytes(d, dim))
        throw std::invalid_argument("out must have shape (" + std::to_string(r.shape[0]) + ", " +
                                    std::to_string(row_bytes(d, dim)) + ")");
    const VirtualInit v = make_virtual_init(seed, static_cast<Init>(init), scale);
    py::gil_scoped_release nogil;
    cuda::virtual_rows(static_cast<const int64_t*>(r.ptr), r.shape[0], v, table_rows, dim, d,
                       static_cast<uint8_t*>(o.ptr), nullptr);
}

std::unique_ptr<cuda::DeviceCache> make_cache(int64_t block_rows, int64_t dim, int dtype, int64_t cache_bytes) {
    check_range("block_rows", block_rows, 1, 1 << 24);
    check_range("dim", dim, 1, 1 << 20);
    check_range("cache_bytes", cache_bytes, 0, INT64_MAX);
    return std::make_unique<cuda::DeviceCache>(block_rows, row_bytes(dtype_of(dtype), dim), cache_bytes);
}

const int64_t* host_vector(const carray<int64_t>& a, const char* name, int64_t n = -1) {
    if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n))
        throw std::invalid_argument(std::string(name) + " must be 1-D" + (n >= 0 ? " with " + std::to_string(n) + " entries" : std::string()));
    return a.data();
}

py::tuple plan_op(cuda::DeviceCache& c, const carray<int64_t>& blocks, const std::optional<carray<int64_t>>& counts) {
    const int64_t* b = host_vector(blocks, "blocks");
    const int64_t n = blocks.shape(0);
    const int64_t* k = counts ? host_vector(*counts, "counts", n) : nullptr;
    for (int64_t i = 0; i < n; ++i)
        if (b[i] < 0) throw std::invalid_argument("blocks[" + std::to_string(i) + "] = " + std::to_string(b[i]) + " is negative");
    auto slots = empty<int64_t>(std::size_t(n));
    std::vector<int64_t> missing;
    c.plan(b, k, n, slots.mutable_data(), missing);
    return py::make_tuple(slots, to_array(std::move(missing)));
}

void fill_op(cuda::DeviceCache& c, const carray<int64_t>& slots, const carray<uint8_t>& data) {
    const int64_t* s = host_vector(slots, "slots");
    const int64_t n = slots.shape(0);
    if (data.ndim() != 2 || data.shape(0) != n || data.shape(1) != c.block_bytes())
        throw std::invalid_argument("data must have shape (" + std::to_string(n) + ", " + std::to_string(c.block_bytes()) + ")");
    c.fill(s, n, data.data(), nullptr);
}

void fill_virtual_op(cuda::DeviceCache& c, const carray<int64_t>& slots, const carray<int64_t>& blocks, int64_t table_rows,
                     int64_t dim, int dtype, uint64_t seed, int init, double scale) {
    const int64_t* s = host_vector(slots, "slots");
    const int64_t n = slots.shape(0);
    const int64_t* b = host_vector(blocks, "blocks", n);
    check_range("init code", init, 0, 2);
    if (!(scale >= 0.0) || scale > 1e30) throw std::invalid_argument("scale must be finite and >= 0, got " + std::to_string(scale));
    c.fill_virtual(s, b, n, make_virtual_init(seed, static_cast<Init>(init), scale), table_rows, dim, dtype_of(dtype), nullptr);
}

void row_pointers_op(const cuda::DeviceCache& c, const py::object& ids, const py::object& slot_of, const py::object& ptrs) {
    int64_t n = 0;
    const IdView v = device_ids(ids, "ids", &n);
    const auto* s = device_vector<int64_t>(slot_of, "slot_of", "<i8", n);
    const auto* p = device_vector<uint64_t>(ptrs, "ptrs", "<u8", n);
    c.row_pointers(v, s, n, reinterpret_cast<const uint8_t**>(const_cast<uint64_t*>(p)), nullptr);
}

py::dict cache_stats(const cuda::DeviceCache& c) { return cache_stats_dict(c.stats()); }

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
    m.def("lookup", &lookup_op, py::arg("table"), py::arg("dim"), py::arg("dtype"), py::arg("ids"), py::arg("offsets"),
          py::arg("h") = 1, py::arg("weights") = py::none(), py::arg("slots") = py::none(),
          py::arg("slot_weights") = py::none(), py::arg("table2") = py::none(), py::arg("dtype2") = 0,
          py::arg("qr_m") = 0, py::arg("combine") = 1, py::arg("pos_table") = py::none(),
          py::arg("positions") = py::none(), py::arg("pool") = 0, py::arg("out_f16") = false,
          py::arg("out_rows") = py::none(), py::arg("out") = py::none(), py::arg("table_ptrs") = py::none(),
          py::arg("rows") = 0,
          "_core.lookup on device arrays (out required): dense table rows (uint8 rows x row_bytes) or table_ptrs "
          "(uint64 device row pointer per id, with rows).");
    m.def("virtual_rows", &virtual_rows_op, py::arg("rows"), py::arg("dim"), py::arg("dtype"), py::arg("seed"),
          py::arg("init"), py::arg("scale"), py::arg("table_rows"), py::arg("out"),
          "Encoded virtual rows of device int64 rows into device uint8 out (n, row_bytes); rows outside the table are zeros.");
    py::class_<kmerx::cuda::DeviceCache>(m, "DeviceCache",
                                         "Device hot-block cache: CLOCK slots in device memory, filled from host bytes.")
        .def(py::init(&make_cache), py::arg("block_rows"), py::arg("dim"), py::arg("dtype"), py::arg("cache_bytes"))
        .def_property_readonly("capacity", &kmerx::cuda::DeviceCache::capacity)
        .def_property_readonly("block_rows", &kmerx::cuda::DeviceCache::block_rows)
        .def_property_readonly("block_bytes", &kmerx::cuda::DeviceCache::block_bytes)
        .def_property_readonly("planned", &kmerx::cuda::DeviceCache::planned)
        .def("plan", &plan_op, py::arg("blocks"), py::arg("counts") = py::none(),
             "Pins a slot for each distinct block: (slots int64, missing: indices of blocks to fill).")
        .def("fill", &fill_op, py::arg("slots"), py::arg("data"), "Copies host blocks (n, block_bytes) into slots.")
        .def("fill_virtual", &fill_virtual_op, py::arg("slots"), py::arg("blocks"), py::arg("table_rows"), py::arg("dim"),
             py::arg("dtype"), py::arg("seed"), py::arg("init"), py::arg("scale"),
             "Generates virtual blocks into slots on the device.")
        .def("row_pointers", &row_pointers_op, py::arg("ids"), py::arg("slot_of"), py::arg("ptrs"),
             "Device row pointer (uint64) of each id given its block's slot.")
        .def("release", &kmerx::cuda::DeviceCache::release, "Unpins the batch's slots.")
        .def("stats", &cache_stats)
        .def("reset_stats", &kmerx::cuda::DeviceCache::reset_stats)
        .def("clear", &kmerx::cuda::DeviceCache::clear);
}
