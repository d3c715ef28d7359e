// Bindings of the token schemes and batch encoding (kmerx/tokenize.hpp, kmerx/lsh.hpp).
#include "kmerx/tokenize.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "kmerx/lsh.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

using Scheme = std::shared_ptr<TokenScheme>;

std::array<uint32_t, 256> char_ids(const carray<uint32_t>& ids) {
    if (ids.ndim() != 1 || ids.shape(0) != 256) throw std::invalid_argument("char_ids must be uint32[256]");
    std::array<uint32_t, 256> out{};
    std::copy(ids.data(), ids.data() + 256, out.begin());
    return out;
}

template <class T>
const T* rows(const carray<T>& a, std::vector<py::ssize_t> shape, const char* name) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
    if (!ok) {
        std::string want;
        for (auto d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
        throw std::invalid_argument(std::string(name) + " must have shape (" + want + ")");
    }
    return a.data();
}

// Pads to: -1 no padding (list output), 0 the longest encoding, > 0 that width; then up to a multiple.
py::dict encode(const TokenScheme& s, const carray<uint8_t>& data, const carray<int64_t>& offsets,
                std::vector<uint32_t> prefix, std::vector<uint32_t> suffix, int64_t max_tokens, bool truncate_left,
                int64_t pad_to, int64_t multiple_of, bool pad_left, uint32_t pad_id, bool positions) {
    const Seqs seqs = as_seqs(data, offsets);
    check_int32_reads(seqs, "tokenizers");
    check_range("multiple_of", multiple_of, 1, INT32_MAX);
    TokenLayout layout{std::move(prefix), std::move(suffix), max_tokens, truncate_left, 0, pad_left, pad_id};
    std::vector<int64_t> raw(seqs.n);
    auto out_offsets = empty<int64_t>(seqs.n + 1);
    int64_t* oo = out_offsets.mutable_data();
    int64_t longest = 0;
    {
        py::gil_scoped_release nogil;
        token_counts(s, seqs.data, seqs.offsets, seqs.n, raw.data());
        oo[0] = 0;
        for (std::size_t r = 0; r < seqs.n; ++r) {
            const int64_t len = encoded_length(layout, raw[r]);
            longest = std::max(longest, len);
            oo[r + 1] = oo[r] + len;
        }
    }
    const bool padded = pad_to >= 0;
    if (padded) {
        int64_t width = pad_to == 0 ? longest : pad_to;
        width = (width + multiple_of - 1) / multiple_of * multiple_of;
        if (longest > width)
            for (std::size_t r = 0; r < seqs.n; ++r)
                if (oo[r + 1] - oo[r] > width)
                    throw std::invalid_argument("read " + std::to_string(r) + " encodes to " +
                                                std::to_string(oo[r + 1] - oo[r]) + " tokens, more than the padded width " +
                                                std::to_string(width) + "; enable truncation or raise max_length");
        layout.width = width;  // 0 only when every encoding is empty: nothing to write
    }
    const py::ssize_t h = s.ids_per_token();
    const auto n = static_cast<py::ssize_t>(seqs.n);
    const auto total = padded ? n * layout.width : static_cast<py::ssize_t>(oo[seqs.n]);
    std::vector<py::ssize_t> shape = padded ? std::vector<py::ssize_t>{n, layout.width} : std::vector<py::ssize_t>{total};
    std::vector<py::ssize_t> id_shape = shape;
    if (h > 1) id_shape.push_back(h);
    auto ids = output_array<uint32_t>(id_shape);
    auto special = output_array<uint8_t>(shape);
    py::dict result;
    TokenOutput out{ids.mutable_data(), special.mutable_data(), nullptr, nullptr, nullptr};
    if (padded) {
        auto attention = output_array<uint8_t>(shape);
        out.attention = attention.mutable_data();
        result["attention_mask"] = attention;
    }
    if (positions) {
        auto pos = output_array<int32_t>(shape);
        out.pos = pos.mutable_data();
        result["positions"] = pos;
    }
    if (s.has_slots()) {
        auto slots = output_array<uint32_t>(shape);
        out.slots = slots.mutable_data();
        result["weight_slots"] = slots;
    }
    if (total > 0) {
        py::gil_scoped_release nogil;
        encode_tokens(s, seqs.data, seqs.offsets, seqs.n, raw.data(), layout, oo, out);
    }
    result["input_ids"] = ids;
    result["special_tokens_mask"] = special;
    result["offsets"] = out_offsets;
    return result;
}

}  // namespace

void init_tokenize(py::module_& m) {
    py::class_<TokenScheme, Scheme>(m, "TokenScheme", "A tokenizer's raw-token scheme (kmerx/tokenize.hpp).")
        .def_property_readonly("ids_per_token", &TokenScheme::ids_per_token)
        .def_property_readonly("has_slots", &TokenScheme::has_slots)
        .def("encode", &encode, py::arg("data"), py::arg("offsets"), py::arg("prefix"), py::arg("suffix"),
             py::arg("max_tokens"), py::arg("truncate_left"), py::arg("pad_to"), py::arg("multiple_of"),
             py::arg("pad_left"), py::arg("pad_id"), py::arg("positions"),
             "Encodes a batch: dict of input_ids, special_tokens_mask, offsets (int64[n + 1] of the unpadded "
             "encodings), and attention_mask (padded), positions, weight_slots when asked / defined.");
    m.def(
        "direct_scheme",
        [](int k, int64_t stride, const std::string& strand, const std::string& order, bool fold_case,
           uint32_t offset, uint32_t unk) -> Scheme {
            return direct_scheme(k, stride, strand_from_name(strand), make_base_table(order, fold_case), offset, unk);
        },
        py::arg("k"), py::arg("stride"), py::arg("strand"), py::arg("order"), py::arg("fold_case"), py::arg("offset"),
        py::arg("unk"));
    m.def(
        "vocab_scheme",
        [](int k, int64_t stride, const std::string& strand, const VocabTable& vocab, uint32_t unk) -> Scheme {
            return vocab_scheme(k, stride, strand_from_name(strand), &vocab, unk);
        },
        py::arg("k"), py::arg("stride"), py::arg("strand"), py::arg("vocab"), py::arg("unk"), py::keep_alive<0, 4>());
    m.def(
        "hashed_scheme",
        [](int64_t k, int64_t stride, const std::string& strand, int h, uint64_t buckets, uint64_t weight_buckets,
           uint32_t offset, uint32_t unk) -> Scheme {
            return hashed_scheme(k, stride, strand_from_name(strand), h, buckets, weight_buckets, offset, unk);
        },
        py::arg("k"), py::arg("stride"), py::arg("strand"), py::arg("num_hashes"), py::arg("buckets"),
        py::arg("weight_buckets"), py::arg("offset"), py::arg("unk"));
    m.def(
        "lsh_projection_scheme",
        [](int k, int64_t stride, bool canonical, const carray<int16_t>& weights, const carray<int32_t>& thresholds,
           uint32_t offset, uint32_t unk) -> Scheme {
            if (weights.ndim() != 4 || weights.shape(2) != k || weights.shape(3) != 4)
                throw std::invalid_argument("weights must be int16[h, m, k, 4]");
            const int h = static_cast<int>(weights.shape(0)), mm = static_cast<int>(weights.shape(1));
            return lsh_projection_scheme(k, mm, h, stride, canonical, weights.data(),
                                         rows(thresholds, {h, mm}, "thresholds"), offset, unk);
        },
        py::arg("k"), py::arg("stride"), py::arg("canonical"), py::arg("weights"), py::arg("thresholds"),
        py::arg("offset"), py::arg("unk"));
    m.def(
        "lsh_bits_scheme",
        [](int k, int64_t stride, bool canonical, const carray<int32_t>& positions, uint32_t offset,
           uint32_t unk) -> Scheme {
            if (positions.ndim() != 2) throw std::invalid_argument("positions must be int32[h, s]");
            const int h = static_cast<int>(positions.shape(0)), s = static_cast<int>(positions.shape(1));
            return lsh_bits_scheme(k, s, h, stride, canonical, positions.data(), offset, unk);
        },
        py::arg("k"), py::arg("stride"), py::arg("canonical"), py::arg("positions"), py::arg("offset"), py::arg("unk"));
    m.def(
        "pieces_scheme",
        [](int k, const std::string& order, bool fold_case, uint32_t kmer_offset, const carray<uint32_t>& ids,
           uint32_t unk) -> Scheme {
            return pieces_scheme(k, make_base_table(order, fold_case), kmer_offset, char_ids(ids), unk);
        },
        py::arg("k"), py::arg("order"), py::arg("fold_case"), py::arg("kmer_offset"), py::arg("char_ids"), py::arg("unk"));
    m.def(
        "chars_scheme", [](const carray<uint32_t>& ids) -> Scheme { return chars_scheme(char_ids(ids)); },
        py::arg("char_ids"));
}

}  // namespace kmerx::bind
