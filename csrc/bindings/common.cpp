#include <pybind11/pybind11.h>

#include "kmerx/buffers.hpp"
#include "kmerx/common.hpp"

namespace py = pybind11;

namespace kmerx::bind {

void init_common(py::module_& m) {
    // FastxFormatError is a ValueError, so callers that catch bad input generically still do.
    py::register_exception<FormatError>(m, "FastxFormatError", PyExc_ValueError);
    m.def("num_threads", &num_threads, "Threads the native kernels use.");
    m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the kernel thread count (0 = default).");
    m.def("simd_detected", [] { return std::string(simd_name(simd_detected())); });
    m.def("simd_level", [] { return std::string(simd_name(simd_level())); });
    m.def("set_buffer_cache_limit", &buffers::set_limit, py::arg("bytes"),
          "Bytes of freed large output buffers kept for reuse (default 256 MiB; 0 frees them all).");
    m.def("buffer_cache_limit", &buffers::limit);
    m.def("set_simd", [](const std::string& name) { set_simd(simd_from_name(name)); }, py::arg("level"));
}

}  // namespace kmerx::bind
