// kmerx._core: one init function per op family, each in its own file.
#include <pybind11/pybind11.h>

#include "kmerx/common.hpp"

namespace py = pybind11;

namespace kmerx::bind {
void init_common(py::module_& m);
void init_fastx(py::module_& m);
void init_clean(py::module_& m);
void init_stats(py::module_& m);
void init_encode(py::module_& m);
void init_sketch(py::module_& m);
void init_vocab(py::module_& m);
void init_hash(py::module_& m);
void init_minimizer(py::module_& m);
void init_count(py::module_& m);
void init_tokenize(py::module_& m);
void init_table(py::module_& m);
void init_exact(py::module_& m);
}  // namespace kmerx::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "kmerx native core (CPU kernels)";
    kmerx::bind::init_common(m);
    kmerx::bind::init_fastx(m);
    kmerx::bind::init_clean(m);
    kmerx::bind::init_stats(m);
    kmerx::bind::init_encode(m);
    kmerx::bind::init_sketch(m);
    kmerx::bind::init_vocab(m);
    kmerx::bind::init_hash(m);
    kmerx::bind::init_minimizer(m);
    kmerx::bind::init_count(m);
    kmerx::bind::init_tokenize(m);
    kmerx::bind::init_table(m);
    kmerx::bind::init_exact(m);
}
