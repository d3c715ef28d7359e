// Bindings of embedding rows, BlockTable and the fused lookup (kmerx/rows.hpp, table.hpp, lookup.hpp).
#include "kmerx/lookup.hpp"
#include "kmerx/table.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "cache_stats.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

Dtype dtype_of(int code) {
    check_range("dtype code", code, 0, 4);
    return static_cast<Dtype>(code);
}

// A 2-D C-contiguous array of `T` with `cols` columns (any rows); `name` for errors.
template <class T>
const T* matrix(const py::array& a, int64_t cols, const char* name, int64_t* rows = nullptr) {
    if (!a.dtype().is(py::dtype::of<T>()))
        throw py::type_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                             ", got " + std::string(py::str(a.dtype())));
    if (a.ndim() != 2 || a.shape(1) != cols)
        throw std::invalid_argument(std::string(name) + " must be 2-D with " + std::to_string(cols) + " columns");
    if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + " must be C-contiguous");
    if (rows) *rows = a.shape(0);
    return static_cast<const T*>(a.data());
}

// uint32 or int64 ids, 1-D and C-contiguous, without a copy.
IdView id_view(const py::array& a, const char* name, int64_t* n) {
    if (a.ndim() != 1 || !(a.flags() & py::array::c_style))
        throw std::invalid_argument(std::string(name) + " must be a 1-D C-contiguous array");
    *n = a.shape(0);
    IdView v;
    if (a.dtype().is(py::dtype::of<uint32_t>())) v.u32 = static_cast<const uint32_t*>(a.data());
    else if (a.dtype().is(py::dtype::of<int64_t>())) v.i64 = static_cast<const int64_t*>(a.data());
    else throw py::type_error(std::string(name) + " must be uint32 or int64, got " + std::string(py::str(a.dtype())));
    return v;
}

template <class T>
const T* vector_of(const std::optional<py::array>& a, int64_t n, const char* name) {
    if (!a) return nullptr;
    if (!a->dtype().is(py::dtype::of<T>()))
        throw py::type_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                             ", got " + std::string(py::str(a->dtype())));
    if (a->ndim() != 1 || a->shape(0) != n || !(a->flags() & py::array::c_style))
        throw std::invalid_argument(std::string(name) + " must be a 1-D C-contiguous array of " + std::to_string(n));
    return static_cast<const T*>(a->data());
}

py::array_t<uint8_t> encode_rows_op(const py::array& values, int dtype) {
    const Dtype d = dtype_of(dtype);
    if (values.ndim() != 2) throw std::invalid_argument("values must be 2-D (rows, dim)");
    int64_t n = 0;
    const int64_t dim = values.shape(1);
    const float* x = matrix<float>(values, dim, "values", &n);
    auto out = output_array<uint8_t>({n, row_bytes(d, dim)});
    uint8_t* o = out.mutable_data();
    py::gil_scoped_release nogil;
    encode_rows(x, n, dim, d, o);
    return out;
}

py::array_t<float> decode_rows_op(const py::array& rows, int64_t dim, int dtype) {
    const Dtype d = dtype_of(dtype);
    check_range("dim", dim, 1, 1 << 20);
    int64_t n = 0;
    const uint8_t* r = matrix<uint8_t>(rows, row_bytes(d, dim), "rows", &n);
    auto out = output_array<float>({n, dim});
    float* o = out.mutable_data();
    py::gil_scoped_release nogil;
    decode_rows(r, n, dim, d, o);
    return out;
}

VirtualInit virtual_init(uint64_t seed, int init, double scale) {
    check_range("init code", init, 0, 2);
    if (!(scale >= 0.0) || scale > 1e30) throw std::invalid_argument("scale must be finite and >= 0, got " + std::to_string(scale));
    return make_virtual_init(seed, static_cast<Init>(init), scale);
}

// Encoded virtual rows of `ids` (int64[n]) -> uint8[n, row_bytes].
py::array_t<uint8_t> virtual_rows_op(const py::array& ids, int64_t dim, int dtype, uint64_t seed, int init, double scale) {
    const Dtype d = dtype_of(dtype);
    check_range("dim", dim, 1, 1 << 20);
    const VirtualInit v = virtual_init(seed, init, scale);
    int64_t n = 0;
    const IdView iv = id_view(ids, "ids", &n);
    const int64_t rb = row_bytes(d, dim);
    auto out = output_array<uint8_t>({n, rb});
    uint8_t* o = out.mutable_data();
    py::gil_scoped_release nogil;
    encode_virtual_rows(v, iv, n, dim, d, o);
    return out;
}

py::array_t<float> sinusoidal_op(int64_t rows, int64_t dim) {
    check_range("rows", rows, 0, INT32_MAX);
    check_range("dim", dim, 1, 1 << 20);
    auto out = output_array<float>({rows, dim});
    float* o = out.mutable_data();
    py::gil_scoped_release nogil;
    sinusoidal_table(rows, dim, o);
    return out;
}

std::unique_ptr<BlockTable> make_block_table(int64_t rows, int64_t dim, int dtype, int64_t block_rows, uint64_t seed,
                                             int init, double scale, int64_t cache_bytes, std::string spill_dir,
                                             std::string base_path, const carray<int64_t>& base_index) {
    const TableSpec spec = make_table_spec(rows, dim, dtype, block_rows);
    std::vector<int64_t> index(base_index.data(), base_index.data() + base_index.size());
    return std::make_unique<BlockTable>(spec, virtual_init(seed, init, scale), cache_bytes, std::move(spill_dir),
                                        std::move(base_path), std::move(index));
}

py::dict stats_dict(BlockTable& t) {
    const CacheStats s = t.stats();
    py::dict d = cache_stats_dict(s);
    d["index_bytes"] = s.index_bytes;
    d["block_bytes"] = t.spec().block_bytes();
    return d;
}

void write_op(BlockTable& t, const py::array& ids, const py::array& values) {
    int64_t n = 0, m = 0;
    const IdView iv = id_view(ids, "ids", &n);
    const float* x = matrix<float>(values, t.spec().dim, "values", &m);
    if (m != n) throw std::invalid_argument("values has " + std::to_string(m) + " rows for " + std::to_string(n) + " ids");
    py::gil_scoped_release nogil;
    t.write(iv, n, x);
}

py::array_t<uint8_t> read_blocks_op(BlockTable& t, const carray<int64_t>& blocks) {
    if (blocks.ndim() != 1) throw std::invalid_argument("blocks must be 1-D");
    const int64_t n = blocks.shape(0);
    auto out = output_array<uint8_t>({n, t.spec().block_bytes()});
    uint8_t* o = out.mutable_data();
    const int64_t* b = blocks.data();
    py::gil_scoped_release nogil;
    t.read_blocks(b, n, o);
    return out;
}

// Loads the blocks of `ids` into the cache now (they stay until evicted). Returns the blocks loaded.
int64_t prefetch_op(BlockTable& t, const py::array& ids) {
    int64_t n = 0;
    const IdView iv = id_view(ids, "ids", &n);
    py::gil_scoped_release nogil;
    const int64_t before = t.stats().loads;
    std::vector<const uint8_t*> rows(static_cast<std::size_t>(n));
    t.resolve(iv, n, rows.data());
    return t.stats().loads - before;
}

// A table argument: a dense uint8 [rows, row_bytes] array, or a BlockTable (whose rows are resolved
// for these ids and held for the call).
struct TableArg {
    RowTable rows;
    std::vector<const uint8_t*> ptrs;
    std::unique_ptr<BlockTable::Lease> lease;
};

void table_arg(const py::object& obj, int64_t dim, int dtype, const char* name, TableArg& out) {
    out.rows.dim = dim;
    if (py::isinstance<BlockTable>(obj)) {
        auto& t = obj.cast<BlockTable&>();
        out.rows.rows = t.spec().rows;
        out.rows.dtype = t.spec().dtype;
        if (t.spec().dim != dim)
            throw std::invalid_argument(std::string(name) + " has dim " + std::to_string(t.spec().dim) + ", expected " +
                                        std::to_string(dim));
        return;
    }
    out.rows.dtype = dtype_of(dtype);
    int64_t n = 0;
    out.rows.base = matrix<uint8_t>(obj.cast<py::array>(), row_bytes(out.rows.dtype, dim), name, &n);
    out.rows.rows = n;
}

// Runs the lookup; see LookupArgs. `out` is allocated here unless given (padded per-token output,
// pre-zeroed by the caller). Returns out.
py::array lookup_op(const py::object& table, int64_t dim, int dtype, const py::array& ids, const carray<int64_t>& offsets,
                    int64_t h, const std::optional<py::array>& weights, const std::optional<py::array>& slots,
                    const std::optional<py::array>& slot_weights, const py::object& table2, int dtype2, int64_t qr_m,
                    int combine, const std::optional<py::array>& pos_table, const std::optional<py::array>& positions,
                    int pool, bool out_f16, const std::optional<carray<int64_t>>& out_rows, std::optional<py::array> out) {
    check_range("dim", dim, 1, 1 << 20);
    check_range("h", h, 1, 64);
    check_range("pool code", pool, 0, 3);
    check_range("combine code", combine, 0, 1);
    LookupArgs a;
    int64_t n_ids = 0;
    a.ids = id_view(ids, "ids", &n_ids);
    if (offsets.ndim() != 1 || offsets.size() < 1) throw std::invalid_argument("offsets must be 1-D with n + 1 entries");
    a.n_reads = offsets.size() - 1;
    a.offsets = offsets.data();
    const int64_t tokens = n_ids / h;
    if (n_ids % h) throw std::invalid_argument("ids holds " + std::to_string(n_ids) + " values, not a multiple of h = " + std::to_string(h));
    if (a.offsets[0] != 0) throw std::invalid_argument("offsets[0] must be 0, got " + std::to_string(a.offsets[0]));
    for (int64_t i = 0; i < a.n_reads; ++i)
        if (a.offsets[i + 1] < a.offsets[i])
            throw std::invalid_argument("offsets must be non-decreasing, offsets[" + std::to_string(i + 1) + "] = " +
                                        std::to_string(a.offsets[i + 1]) + " < " + std::to_string(a.offsets[i]));
    if (a.offsets[a.n_reads] != tokens)
        throw std::invalid_argument("offsets end at " + std::to_string(a.offsets[a.n_reads]) + ", ids hold " +
                                    std::to_string(tokens) + " tokens");
    a.h = h;
    a.weights = vector_of<float>(weights, n_ids, "weights");
    if (slots) {
        if (!slot_weights) throw std::invalid_argument("slots need slot_weights");
        int64_t ns = 0;
        const float* sw = matrix<float>(*slot_weights, h, "slot_weights", &ns);
        a.slots = vector_of<uint32_t>(slots, tokens, "slots");
        a.slot_weights = sw;
        a.n_slots = ns;
    }
    TableArg t1, t2;
    table_arg(table, dim, dtype, "table", t1);
    a.qr_m = qr_m;
    a.combine = static_cast<Combine>(combine);
    if (qr_m > 0) {
        if (h != 1 || a.weights || a.slots) throw std::invalid_argument("quotient-remainder lookups take one id per token");
        if (py::isinstance<BlockTable>(table) || py::isinstance<BlockTable>(table2))
            throw std::invalid_argument("quotient-remainder tables must be dense");
        table_arg(table2, dim, dtype2, "table2", t2);
        if (t2.rows.rows != qr_m)
            throw std::invalid_argument("table2 must have qr_m = " + std::to_string(qr_m) + " rows, got " +
                                        std::to_string(t2.rows.rows));
    } else if (qr_m < 0) {
        throw std::invalid_argument("qr_m must be >= 0, got " + std::to_string(qr_m));
    }
    if (pos_table) {
        int64_t pr = 0;
        a.pos_table = matrix<float>(*pos_table, dim, "pos_table", &pr);
        a.pos_rows = pr;
    }
    a.positions = vector_of<int32_t>(positions, tokens, "positions");
    a.pool = static_cast<Pool>(pool);
    a.out_f16 = out_f16;

    // Output rows: per read when pooling, else per token (out_rows[i] + t - offsets[i], or t).
    int64_t out_n = a.pool == Pool::None ? tokens : a.n_reads;
    if (out) {
        const auto want = out_f16 ? py::dtype("float16") : py::dtype::of<float>();
        if (!out->dtype().is(want) || !(out->flags() & py::array::c_style) || out->ndim() < 1 ||
            out->shape(out->ndim() - 1) != dim || !out->writeable())
            throw std::invalid_argument("out must be a writable C-contiguous " + std::string(py::str(want)) +
                                        " array whose last axis is dim");
        out_n = out->size() / dim;
    } else {
        out = out_f16 ? py::array(py::dtype("float16"), std::vector<py::ssize_t>{out_n, dim})
                      : py::array(output_array<float>({out_n, dim}));
    }
    if (out_rows) {
        if (a.pool != Pool::None) throw std::invalid_argument("out_rows applies to per-token output");
        if (out_rows->ndim() != 1 || out_rows->shape(0) != a.n_reads)
            throw std::invalid_argument("out_rows must hold one entry per read");
        a.out_rows = out_rows->data();
        for (int64_t i = 0; i < a.n_reads; ++i)
            if (a.out_rows[i] < 0 || a.out_rows[i] + (a.offsets[i + 1] - a.offsets[i]) > out_n)
                throw std::invalid_argument("out_rows[" + std::to_string(i) + "] places read " + std::to_string(i) +
                                            " outside the output's " + std::to_string(out_n) + " rows");
    } else if (out_n < (a.pool == Pool::None ? tokens : a.n_reads)) {
        throw std::invalid_argument("out holds " + std::to_string(out_n) + " rows, the lookup writes more");
    }
    a.out = out->mutable_data();
    // Block tables: resolve every id's row (loading missing blocks) and hold them for the call.
    if (py::isinstance<BlockTable>(table)) {
        auto& bt = table.cast<BlockTable&>();
        t1.ptrs.resize(static_cast<std::size_t>(n_ids));
        py::gil_scoped_release nogil;
        t1.lease = bt.resolve(a.ids, n_ids, t1.ptrs.data());
        t1.rows.ptrs = t1.ptrs.data();
    }
    a.table = t1.rows;
    a.table2 = t2.rows;
    {
        py::gil_scoped_release nogil;
        lookup(a);
        t1.lease.reset();
    }
    return *out;
}

}  // namespace

void init_table(py::module_& m) {
    m.def("encode_rows", &encode_rows_op, py::arg("values"), py::arg("dtype"),
          "fp32 rows (n, dim) -> encoded rows uint8 (n, row_bytes) of dtype code. See kmerx/rows.hpp.");
    m.def("decode_rows", &decode_rows_op, py::arg("rows"), py::arg("dim"), py::arg("dtype"),
          "Encoded rows uint8 (n, row_bytes) -> fp32 (n, dim).");
    m.def("virtual_rows", &virtual_rows_op, py::arg("ids"), py::arg("dim"), py::arg("dtype"), py::arg("seed"),
          py::arg("init"), py::arg("scale"), "Encoded virtual rows of ids: uint8 (n, row_bytes).");
    m.def("sinusoidal", &sinusoidal_op, py::arg("rows"), py::arg("dim"),
          "The Transformer's sinusoidal positional table, fp32 (rows, dim).");
    m.def("row_bytes", [](int dtype, int64_t dim) { return row_bytes(dtype_of(dtype), dim); }, py::arg("dtype"), py::arg("dim"));
    py::class_<BlockTable>(m, "BlockTable", "Block-sparse table with a hot-block cache (kmerx/table.hpp).")
        .def(py::init(&make_block_table), py::arg("rows"), py::arg("dim"), py::arg("dtype"), py::arg("block_rows"),
             py::arg("seed"), py::arg("init"), py::arg("scale"), py::arg("cache_bytes"), py::arg("spill_dir"),
             py::arg("base_path"), py::arg("base_index"))
        .def_property_readonly("rows", [](const BlockTable& t) { return t.spec().rows; })
        .def_property_readonly("dim", [](const BlockTable& t) { return t.spec().dim; })
        .def_property_readonly("dtype", [](const BlockTable& t) { return static_cast<int>(t.spec().dtype); })
        .def_property_readonly("block_rows", [](const BlockTable& t) { return t.spec().block_rows; })
        .def_property_readonly("block_bytes", [](const BlockTable& t) { return t.spec().block_bytes(); })
        .def("write", &write_op, py::arg("ids"), py::arg("values"))
        .def("read_blocks", &read_blocks_op, py::arg("blocks"))
        .def("prefetch", &prefetch_op, py::arg("ids"))
        .def("written_blocks", [](BlockTable& t) {
            std::vector<int64_t> v;
            {
                py::gil_scoped_release nogil;
                v = t.written_blocks();
            }
            return to_array(std::move(v));
        })
        .def("save_blocks", [](BlockTable& t, const std::string& path) {
            std::vector<int64_t> v;
            {
                py::gil_scoped_release nogil;
                v = t.save_blocks(path);
            }
            return to_array(std::move(v));
        }, py::arg("path"))
        .def("stats", &stats_dict)
        .def("reset_stats", &BlockTable::reset_stats)
        .def("clear_cache", &BlockTable::clear_cache, py::call_guard<py::gil_scoped_release>());
    m.def("lookup", &lookup_op, py::arg("table"), py::arg("dim"), py::arg("dtype"), py::arg("ids"), py::arg("offsets"),
          py::arg("h") = 1, py::arg("weights") = py::none(), py::arg("slots") = py::none(),
          py::arg("slot_weights") = py::none(), py::arg("table2") = py::none(), py::arg("dtype2") = 0,
          py::arg("qr_m") = 0, py::arg("combine") = 1, py::arg("pos_table") = py::none(),
          py::arg("positions") = py::none(), py::arg("pool") = 0, py::arg("out_f16") = false,
          py::arg("out_rows") = py::none(), py::arg("out") = py::none(),
          "Fused gather + positional term + pooling (kmerx/lookup.hpp). Returns out.");
}

}  // namespace kmerx::bind
