// Python bindings of the core kernels: CsrMatrix, BLAS-1, SpMV. Every
// function validates all arguments before touching memory and releases the
// GIL around the numerical loops.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "array_checks.hpp"
#include "blas1.hpp"
#include "csr_matrix.hpp"
#include "python_operators.hpp"
#include "spmv.hpp"

namespace py = pybind11;
using namespace krylearn;

namespace {

// Calls f(T{}) with T the float type of `a` (TypeError for any other dtype).
template <class F>
decltype(auto) dispatch_float(const py::array& a, const char* name, F&& f) {
    if (has_dtype<double>(a)) return f(double{});
    if (has_dtype<float>(a)) return f(float{});
    if (is_complex(a))
        throw py::type_error(std::string(name) + " is complex (" + dtype_str(a) +
                             "); krylearn kernels support real float32/float64 only");
    throw py::type_error(std::string(name) + " must have dtype float32 or float64, got " + dtype_str(a));
}

}  // namespace

void bind_core(py::module_& m) {
    py::class_<CsrMatrix>(m, "CsrMatrix", "Validated CSR matrix over NumPy arrays (int32/int64 indices, float32/float64 values).")
        .def(py::init(&CsrMatrix::from_arrays), py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"))
        .def_property_readonly("shape", [](const CsrMatrix& A) { return py::make_tuple(A.n_rows(), A.n_cols()); })
        .def_property_readonly("nnz", &CsrMatrix::nnz);
    m.def("dot", [](py::handle x_obj, py::handle y_obj) {
        py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y");
        return dispatch_float(x, "x", [&](auto tag) {
            using T = decltype(tag);
            const std::size_t n = x.ndim() == 1 ? x.shape(0) : 0;
            const T* px = vector_data<T>(x, n, "x", false);
            const T* py_ = vector_data<T>(y, n, "y", false);
            py::gil_scoped_release nogil;
            return dot(px, py_, n);
        });
    });
}
