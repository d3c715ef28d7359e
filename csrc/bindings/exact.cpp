#include "kmerx/exact.hpp"

#include <string>

#include "arrays.hpp"

namespace py = pybind11;

namespace kmerx::bind {

namespace {

void check_rows(const carray<double>& a, const char* name, py::ssize_t dim) {
    if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D (rows, dim), got " +
                                                   std::to_string(a.ndim()) + "-D");
    if (dim >= 0 && a.shape(1) != dim)
        throw std::invalid_argument(std::string(name) + " has " + std::to_string(a.shape(1)) +
                                    " columns, x has " + std::to_string(dim));
}

py::array_t<double> sq_dist(const carray<double>& x, const carray<double>& centers) {
    check_rows(x, "x", -1);
    check_rows(centers, "centers", x.shape(1));
    const auto n = static_cast<std::size_t>(x.shape(0)), m = static_cast<std::size_t>(centers.shape(0));
    py::array_t<double> out({x.shape(0), centers.shape(0)});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        exact::sq_dist(x.data(), n, centers.data(), m, static_cast<std::size_t>(x.shape(1)), o);
    }
    return out;
}

py::array_t<double> sq_dist_pairs(const carray<double>& x, const carray<double>& y, const carray<int64_t>& index) {
    check_rows(x, "x", -1);
    check_rows(y, "y", x.shape(1));
    if (index.ndim() != 2 || index.shape(0) != x.shape(0))
        throw std::invalid_argument("index must be 2-D with one row per row of x (" + std::to_string(x.shape(0)) + ")");
    const int64_t* idx = index.data();
    for (py::ssize_t i = 0; i < index.size(); ++i)
        if (idx[i] < 0 || idx[i] >= y.shape(0))
            throw std::invalid_argument("index holds " + std::to_string(idx[i]) + ", outside y's rows 0.." +
                                        std::to_string(y.shape(0) - 1));
    py::array_t<double> out({index.shape(0), index.shape(1)});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        exact::sq_dist_pairs(x.data(), static_cast<std::size_t>(x.shape(0)), y.data(),
                                static_cast<std::size_t>(y.shape(0)), idx, static_cast<std::size_t>(index.shape(1)),
                                static_cast<std::size_t>(x.shape(1)), o);
    }
    return out;
}

py::tuple sums_by_label(const carray<double>& x, const carray<int32_t>& labels, int64_t k) {
    check_rows(x, "x", -1);
    if (labels.ndim() != 1 || labels.shape(0) != x.shape(0))
        throw std::invalid_argument("labels must be 1-D with one label per row of x (" + std::to_string(x.shape(0)) + ")");
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
    const int32_t* l = labels.data();
    for (py::ssize_t i = 0; i < labels.size(); ++i)
        if (l[i] < 0 || l[i] >= k)
            throw std::invalid_argument("labels hold " + std::to_string(l[i]) + ", outside 0.." + std::to_string(k - 1));
    py::array_t<double> sums({static_cast<py::ssize_t>(k), x.shape(1)});
    py::array_t<int64_t> counts(k);
    double* s = sums.mutable_data();
    int64_t* c = counts.mutable_data();
    {
        py::gil_scoped_release release;
        exact::sums_by_label(x.data(), static_cast<std::size_t>(x.shape(0)), static_cast<std::size_t>(x.shape(1)), l,
                             static_cast<std::size_t>(k), s, c);
    }
    return py::make_tuple(sums, counts);
}

}  // namespace

void init_exact(py::module_& m) {
    m.def("sq_dist", &sq_dist, py::arg("x"), py::arg("centers"),
          "Squared distances [n, m] of rows x [n, dim] to centers [m, dim] (float64), each computed row by "
          "row in a fixed order: a value never depends on the other rows or the thread count.");
    m.def("sq_dist_pairs", &sq_dist_pairs, py::arg("x"), py::arg("y"), py::arg("index"),
          "Squared distances [n, k] of each row x[i] to the rows y[index[i, j]], in the same fixed order.");
    m.def("sums_by_label", &sums_by_label, py::arg("x"), py::arg("labels"), py::arg("k"),
          "(sums [k, dim], counts [k]): the rows of x [n, dim] (float64) added per label (int32, 0..k-1) "
          "in row order, whatever the thread count.");
}

}  // namespace kmerx::bind
