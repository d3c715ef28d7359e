#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace kmerx::bind {

void init_fastx(py::module_& m) { (void)m; }

}  // namespace kmerx::bind
