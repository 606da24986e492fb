// Python bindings of the recycling loops: the GCRO-DR Arnoldi cycle
// (recycling.hpp) and recycled CG (deflated_cg.hpp). Every argument is
// validated before any array is touched; the loops run with the GIL released
// (a Python preconditioner or callback re-acquires it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>
#include <string>

#include "array_checks.hpp"
#include "deflated_cg.hpp"
#include "python_operators.hpp"
#include "recycling.hpp"

namespace py = pybind11;
using namespace krylearn;

namespace {

// A 2-D, float64, Fortran-ordered (column-major) array with at least `rows`
// rows and `cols` columns, writeable unless `read_only` (the caller then only
// reads through the returned pointer); returns its data and leading dimension.
double* column_block(py::handle obj, const char* name, std::size_t rows, std::size_t cols, std::size_t* ld,
                     bool exact_rows, bool read_only = false) {
    py::array a = as_ndarray(obj, name);
    require_dtype<double>(a, name);
    if (a.ndim() != 2) throw py::value_error(std::string(name) + " must be 2-D, got shape " + shape_str(a));
    if (!(a.flags() & py::array::f_style))
        throw py::value_error(std::string(name) + " must be Fortran-ordered (column-major)");
    if (!read_only && !a.writeable()) throw py::value_error(std::string(name) + " is read-only; it must be writeable");
    const auto r = static_cast<std::size_t>(a.shape(0)), c = static_cast<std::size_t>(a.shape(1));
    if ((exact_rows ? r != rows : r < rows) || c < cols)
        throw py::value_error(std::string(name) + " has shape " + shape_str(a) + ", needs " +
                              (exact_rows ? "" : ">= ") + std::to_string(rows) + " rows and >= " +
                              std::to_string(cols) + " columns");
    *ld = r;
    return read_only ? static_cast<double*>(const_cast<void*>(a.data())) : static_cast<double*>(a.mutable_data());
}

// The float64 square CsrMatrix behind A_obj (TypeError / ValueError otherwise).
const CsrMatrix& square_float64_matrix(py::handle A_obj) {
    if (!py::isinstance<CsrMatrix>(A_obj))
        throw py::type_error("A must be a CsrMatrix, got " +
                             py::str(py::type::of(A_obj).attr("__name__")).cast<std::string>());
    const auto& mat = A_obj.cast<const CsrMatrix&>();
    mat.require_square("A");
    mat.require_value_type<double>("A");
    return mat;
}

py::tuple gcrodr_arnoldi_py(py::handle A_obj, py::handle M_obj, py::handle basis_obj, py::handle Z_obj,
                            py::handle H_obj, py::handle y_obj, py::handle est_obj, long long kc_arg,
                            long long steps_arg, double beta, double tol) {
    const std::size_t n = square_float64_matrix(A_obj).n_rows();
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

py::tuple deflated_cg_py(py::handle A_obj, py::handle M_obj, py::handle W_obj, py::handle AW_obj, py::handle b_obj,
                         py::handle x_obj, double tol, long long maxiter, long long ell_arg, py::handle P_obj,
                         py::handle AP_obj, py::handle MAP_obj, py::handle callback) {
    const std::size_t n = square_float64_matrix(A_obj).n_rows();
    if (!(tol >= 0.0) || !std::isfinite(tol))
        throw py::value_error("tol must be finite and >= 0, got " + std::to_string(tol));
    if (maxiter < 0) throw py::value_error("maxiter must be >= 0, got " + std::to_string(maxiter));
    if (ell_arg < 0) throw py::value_error("ell must be >= 0, got " + std::to_string(ell_arg));
    if (!callback.is_none() && !PyCallable_Check(callback.ptr()))
        throw py::type_error("callback must be None or callable");
    if (W_obj.is_none() != AW_obj.is_none()) throw py::value_error("W and AW must both be given or both be None");
    const auto ell = static_cast<std::size_t>(ell_arg);
    std::size_t k = 0, ld = 0;
    const double *W = nullptr, *AW = nullptr;
    if (!W_obj.is_none()) {
        py::array w_arr = as_ndarray(W_obj, "W");
        k = w_arr.ndim() == 2 ? static_cast<std::size_t>(w_arr.shape(1)) : 0;
        W = column_block(W_obj, "W", n, k, &ld, true, true);
        AW = column_block(AW_obj, "AW", n, k, &ld, true, true);
        if (static_cast<std::size_t>(as_ndarray(AW_obj, "AW").shape(1)) != k)
            throw py::value_error("AW must have the shape of W, (" + std::to_string(n) + ", " + std::to_string(k) +
                                  "), got " + shape_str(as_ndarray(AW_obj, "AW")));
        require_finite(W, n * k, "W");
        require_finite(AW, n * k, "AW");
    }
    double* P = column_block(P_obj, "P", n, ell, &ld, true);
    double* AP = column_block(AP_obj, "AP", n, ell, &ld, true);
    double* MAP = column_block(MAP_obj, "MAP", n, ell, &ld, true);
    py::array b_arr = as_ndarray(b_obj, "b"), x_arr = as_ndarray(x_obj, "x");
    const double* b = vector_data<double>(b_arr, n, "b", false);
    double* x = vector_data<double>(x_arr, n, "x", true);
    require_finite(b, n, "b");
    require_finite(static_cast<const double*>(x), n, "x");
    {
        py::array outputs[] = {x_arr, as_ndarray(P_obj, "P"), as_ndarray(AP_obj, "AP"), as_ndarray(MAP_obj, "MAP")};
        const char* names[] = {"x", "P", "AP", "MAP"};
        for (int i = 0; i < 4; ++i) {
            for (int j = i + 1; j < 4; ++j) require_no_overlap(outputs[i], names[i], outputs[j], names[j]);
            require_no_overlap(outputs[i], names[i], b_arr, "b");
            if (W) {
                require_no_overlap(outputs[i], names[i], as_ndarray(W_obj, "W"), "W");
                require_no_overlap(outputs[i], names[i], as_ndarray(AW_obj, "AW"), "AW");
            }
        }
    }
    std::unique_ptr<LinearOperator<double>> A = operator_from_python<double>(A_obj, n, "A");
    std::unique_ptr<LinearOperator<double>> M;
    if (!M_obj.is_none()) M = operator_from_python<double>(M_obj, n, "M");
    KrylovHooks<double> hooks;
    hooks.poll = python_signal_poll();
    if (!callback.is_none()) hooks.on_iterate = python_iterate_hook<double>(callback, n);
    DeflatedCgResult result;
    {
        py::gil_scoped_release nogil;
        result = deflated_cg(*A, M.get(), n, k, W, AW, b, x, tol, static_cast<std::size_t>(maxiter), ell, P, AP, MAP,
                             hooks);
    }
    return py::make_tuple(result.iterations, result.info, result.stored, result.matvecs, numpy_copy(result.residuals));
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
    m.def("deflated_cg", &deflated_cg_py, py::arg("A"), py::arg("M"), py::arg("W"), py::arg("AW"), py::arg("b"),
          py::arg("x"), py::arg("tol"), py::arg("maxiter"), py::arg("ell"), py::arg("P"), py::arg("AP"),
          py::arg("MAP"), py::arg("callback") = py::none(),
          R"doc(Recycled (deflated) PCG for SPD A (csrc/deflated_cg.hpp).

A: float64 CsrMatrix (n x n); M: None, a Preconditioner, a CsrMatrix or a
callable r -> M^{-1} r. W, AW: None (plain PCG) or Fortran-ordered float64
(n, k) with W^T A W = I and AW = A W. x: the initial guess, updated in place.
P, AP, MAP: Fortran-ordered float64 (n, ell), receive the first directions p,
A p and M^{-1} A p. Stops when ||b - A x|| <= tol (true residual), after
maxiter iterations, or on a breakdown. callback(x_k) after every iteration.
Returns (iterations, info, stored, matvecs, residuals): info 0 converged,
> 0 not converged, -1 A not SPD, -2 M not SPD, -3 non-finite value; stored =
columns of P written; matvecs = applications of A; residuals[0] =
||b - A x0||.)doc");
}
