// Helpers shared by the bindings: argument checks that name the argument and the value, views of
// the (data, offsets) buffer pairs that Arrow binary/list arrays are made of, and output arrays.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kmerx/buffers.hpp"

#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kmerx::bind {

namespace py = pybind11;

template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Byte sequences laid out as Arrow lays out a binary column: item i is data[offsets[i]:offsets[i+1]].
struct Seqs {
    const uint8_t* data;
    const int64_t* offsets;  // n + 1 entries
    std::size_t n;
};

// Validates offsets (non-empty, starting >= 0, non-decreasing, ending within data) so kernels can
// trust them: no input reaches native code that would make it read out of bounds.
inline Seqs as_seqs(const carray<uint8_t>& data, const carray<int64_t>& offsets, const char* name = "seqs") {
    if (data.ndim() != 1 || offsets.ndim() != 1)
        throw std::invalid_argument(std::string(name) + ": data and offsets must be 1-D arrays");
    const auto m = static_cast<std::size_t>(offsets.size());
    if (m == 0) throw std::invalid_argument(std::string(name) + ": offsets must hold at least one entry");
    const int64_t* o = offsets.data();
    const int64_t len = static_cast<int64_t>(data.size());
    if (o[0] < 0) throw std::invalid_argument(std::string(name) + ": offsets[0] must be >= 0, got " + std::to_string(o[0]));
    for (std::size_t i = 1; i < m; ++i)
        if (o[i] < o[i - 1])
            throw std::invalid_argument(std::string(name) + ": offsets must be non-decreasing, offsets[" +
                                        std::to_string(i) + "] = " + std::to_string(o[i]) + " < " +
                                        std::to_string(o[i - 1]));
    if (o[m - 1] > len)
        throw std::invalid_argument(std::string(name) + ": offsets end at " + std::to_string(o[m - 1]) +
                                    " beyond the data length " + std::to_string(len));
    return Seqs{data.data(), o, m - 1};
}

// An optional column that goes with `seqs` (qualities, names): both buffers or neither, and then one
// item per read. Absent: data and offsets are null.
inline Seqs optional_seqs(const std::optional<carray<uint8_t>>& data, const std::optional<carray<int64_t>>& offsets,
                          const char* name, const Seqs& seqs) {
    if (data.has_value() != offsets.has_value())
        throw std::invalid_argument(std::string(name) + "_data and " + name +
                                    "_offsets must both be given or both be None");
    if (!data) return Seqs{nullptr, nullptr, 0};
    const Seqs col = as_seqs(*data, *offsets, name);
    if (col.n != seqs.n)
        throw std::invalid_argument(std::string(name) + " holds " + std::to_string(col.n) + " reads, seq holds " +
                                    std::to_string(seqs.n));
    return col;
}

inline void check_range(const char* name, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi)
        throw std::invalid_argument(std::string(name) + " must be in " + std::to_string(lo) + ".." +
                                    std::to_string(hi) + ", got " + std::to_string(value));
}

// Hands a vector to numpy without copying; the capsule frees it with the array.
template <class T>
py::array_t<T> to_array(std::vector<T>&& v) {
    auto* owned = new std::vector<T>(std::move(v));
    py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(owned->size())}, {static_cast<py::ssize_t>(sizeof(T))},
                          owned->data(), owner);
}

// A C-contiguous array for a large kernel output; its storage comes from (and returns to) the
// recycled buffers of kmerx/buffers.hpp.
template <class T>
py::array_t<T> output_array(std::vector<py::ssize_t> shape) {
    std::size_t count = 1;
    for (auto d : shape) count *= static_cast<std::size_t>(d);
    const std::size_t bytes = count * sizeof(T);
    if (bytes < buffers::kMinBytes) return py::array_t<T>(shape);
    struct Block {
        void* p = nullptr;
        std::size_t size = 0;
    };
    auto block = std::make_unique<Block>();
    block->p = buffers::take(bytes, block->size);
    py::capsule owner(block.get(), [](void* b) {
        auto* blk = static_cast<Block*>(b);
        buffers::give(blk->p, blk->size);
        delete blk;
    });
    Block* raw = block.release();
    return py::array_t<T>(shape, static_cast<T*>(raw->p), owner);
}

template <class T>
py::array_t<T> empty(std::size_t n) {
    return py::array_t<T>(static_cast<py::ssize_t>(n));
}

// Int32 positions within reads need every read shorter than 2^31 bases; `what` names the op.
inline void check_int32_reads(const Seqs& seqs, const char* what) {
    for (std::size_t r = 0; r < seqs.n; ++r)
        if (seqs.offsets[r + 1] - seqs.offsets[r] > INT32_MAX)
            throw std::invalid_argument(std::string(what) + " need reads shorter than 2^31 bases, read " +
                                        std::to_string(r) + " has " +
                                        std::to_string(seqs.offsets[r + 1] - seqs.offsets[r]));
}

// The two passes of an op emitting `width` uint64 values per k-mer: count(per_read) writes each read's
// number of k-mers to per_read[0..n); fill(out_offsets, values, positions or null) writes them.
// Returns (values [total] or [total, width], out_offsets int64[n + 1], positions int32[total] or None).
template <class Count, class Fill>
py::tuple two_pass(const Seqs& seqs, py::ssize_t width, bool positions, Count&& count, Fill&& fill) {
    if (positions) check_int32_reads(seqs, "positions");
    auto out_offsets = empty<int64_t>(seqs.n + 1);
    int64_t* oo = out_offsets.mutable_data();
    {
        py::gil_scoped_release nogil;
        oo[0] = 0;
        count(oo + 1);
        for (std::size_t r = 0; r < seqs.n; ++r) oo[r + 1] += oo[r];
    }
    const auto total = static_cast<py::ssize_t>(oo[seqs.n]);
    auto values = width == 1 ? output_array<uint64_t>({total}) : output_array<uint64_t>({total, width});
    py::object pos = py::none();
    int32_t* pp = nullptr;
    if (positions) {
        auto p = output_array<int32_t>({total});
        pp = p.mutable_data();
        pos = std::move(p);
    }
    uint64_t* vp = values.mutable_data();
    {
        py::gil_scoped_release nogil;
        fill(static_cast<const int64_t*>(oo), vp, pp);
    }
    return py::make_tuple(values, out_offsets, pos);
}

}  // namespace kmerx::bind
