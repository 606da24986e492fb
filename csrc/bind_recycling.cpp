// Python binding of the GCRO-DR Arnoldi cycle (recycling.hpp). Every argument
// is validated before any array is touched; the loop runs with the GIL
// released (a Python preconditioner re-acquires it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>
#include <string>

#include "array_checks.hpp"
#include "python_operators.hpp"
#include "recycling.hpp"

namespace py = pybind11;
using namespace krylearn;

namespace {

// A 2-D, float64, Fortran-ordered (column-major), writeable array with at
// least `rows` rows and `cols` columns; returns its data and leading dimension.
double* column_block(py::handle obj, const char* name, std::size_t rows, std::size_t cols, std::size_t* ld,
                     bool exact_rows) {
    py::array a = as_ndarray(obj, name);
    require_dtype<double>(a, name);
    if (a.ndim() != 2) throw py::value_error(std::string(name) + " must be 2-D, got shape " + shape_str(a));
    if (!(a.flags() & py::array::f_style))
        throw py::value_error(std::string(name) + " must be Fortran-ordered (column-major)");
    if (!a.writeable()) throw py::value_error(std::string(name) + " is read-only; it must be writeable");
    const auto r = static_cast<std::size_t>(a.shape(0)), c = static_cast<std::size_t>(a.shape(1));
    if ((exact_rows ? r != rows : r < rows) || c < cols)
        throw py::value_error(std::string(name) + " has shape " + shape_str(a) + ", needs " +
                              (exact_rows ? "" : ">= ") + std::to_string(rows) + " rows and >= " +
                              std::to_string(cols) + " columns");
    *ld = r;
    return static_cast<double*>(a.mutable_data());
}

py::tuple gcrodr_arnoldi_py(py::handle A_obj, py::handle M_obj, py::handle basis_obj, py::handle Z_obj,
                            py::handle H_obj, py::handle y_obj, py::handle est_obj, long long kc_arg,
                            long long steps_arg, double beta, double tol) {
    if (!py::isinstance<CsrMatrix>(A_obj))
        throw py::type_error("A must be a CsrMatrix, got " +
                             py::str(py::type::of(A_obj).attr("__name__")).cast<std::string>());
    const auto& mat = A_obj.cast<const CsrMatrix&>();
    mat.require_square("A");
    mat.require_value_type<double>("A");
    const std::size_t n = mat.n_rows();
    if (kc_arg < 0) throw py::value_error("kc must be >= 0, got " + std::to_string(kc_arg));
    if (steps_arg < 0) throw py::value_error("steps must be >= 0, got " + std::to_string(steps_arg));
    const auto kc = static_cast<std::size_t>(kc_arg), s = static_cast<std::size_t>(steps_arg);
    if (!(beta > 0.0) || !std::isfinite(beta))
        throw py::value_error("beta must be finite and > 0, got " + std::to_string(beta));
    if (!(tol >= 0.0) || !std::isfinite(tol))
        throw py::value_error("tol must be finite and >= 0, got " + std::to_string(tol));
    std::size_t ld_basis = 0, ld_z = 0, ldh = 0;
    double* basis = column_block(basis_obj, "basis", n, kc + s + 1, &ld_basis, true);
    double* Z = nullptr;
    if (!M_obj.is_none()) {
        if (Z_obj.is_none()) throw py::value_error("Z is required with a preconditioner M");
        Z = column_block(Z_obj, "Z", n, s, &ld_z, true);
    }
    double* H = column_block(H_obj, "H", kc + s + 1, s, &ldh, false);
    py::array y_arr = as_ndarray(y_obj, "y"), est_arr = as_ndarray(est_obj, "estimates");
    for (auto* arr : {&y_arr, &est_arr}) {
        const char* name = arr == &y_arr ? "y" : "estimates";
        require_dtype<double>(*arr, name);
        require_1d_contiguous(*arr, name);
        if (static_cast<std::size_t>(arr->shape(0)) < s)
            throw py::value_error(std::string(name) + " has length " + std::to_string(arr->shape(0)) +
                                  ", needs >= " + std::to_string(s));
        if (!arr->writeable()) throw py::value_error(std::string(name) + " is read-only; it must be writeable");
    }
    {
        py::array arrays[] = {as_ndarray(basis_obj, "basis"), as_ndarray(H_obj, "H"), y_arr, est_arr};
        const char* names[] = {"basis", "H", "y", "estimates"};
        for (int i = 0; i < 4; ++i)
            for (int j = i + 1; j < 4; ++j) require_no_overlap(arrays[i], names[i], arrays[j], names[j]);
        if (Z) {
            py::array zarr = as_ndarray(Z_obj, "Z");
            for (int i = 0; i < 4; ++i) require_no_overlap(zarr, "Z", arrays[i], names[i]);
        }
    }
    require_finite(static_cast<const double*>(basis), n * (kc + 1), "basis[:, :kc + 1]");
    std::unique_ptr<LinearOperator<double>> A = operator_from_python<double>(A_obj, n, "A");
    std::unique_ptr<LinearOperator<double>> M;
    if (!M_obj.is_none()) M = operator_from_python<double>(M_obj, n, "M");
    double* y = static_cast<double*>(y_arr.mutable_data());
    double* estimates = static_cast<double*>(est_arr.mutable_data());
    ArnoldiResult result;
    {
        py::gil_scoped_release nogil;
        result = gcrodr_arnoldi(*A, M.get(), n, kc, s, beta, tol, basis, Z, H, ldh, y, estimates);
    }
    return py::make_tuple(result.steps, static_cast<int>(result.stop));
}

}  // namespace

void bind_recycling(py::module_& m) {
    m.def("gcrodr_arnoldi", &gcrodr_arnoldi_py, py::arg("A"), py::arg("M"), py::arg("basis"), py::arg("Z"),
          py::arg("H"), py::arg("y"), py::arg("estimates"), py::arg("kc"), py::arg("steps"), py::arg("beta"),
          py::arg("tol"),
          R"doc(Arnoldi steps of one GCRO-DR cycle with right preconditioning (csrc/recycling.hpp).

A: float64 CsrMatrix (n x n); M: None, a Preconditioner, a CsrMatrix or a
callable r -> M^{-1} r. basis: Fortran-ordered (n, >= kc + steps + 1) float64,
columns [0, kc) = C and column kc = v_0 given orthonormal; columns
kc + 1 .. are written. Z: Fortran-ordered (n, >= steps), receives
M^{-1} v_j (ignored without M). H: Fortran-ordered (>= kc + steps + 1,
>= steps), receives column j = [C, V]^T A z_j and ||w||. y, estimates:
float64 vectors (>= steps): the least-squares solution and the residual
estimate after each step. Stops after `steps`, when the estimate <= tol, on an
invariant space or a breakdown. Returns (steps_done, stop) with stop 0 (all
steps), 1 (estimate <= tol), 2 (invariant space), -1 (breakdown).)doc");
}
