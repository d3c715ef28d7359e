#include <pybind11/pybind11.h>

PYBIND11_MODULE(_cuda, m) { m.doc() = "kmerx CUDA kernels"; }
