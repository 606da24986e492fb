// Python bindings of the Krylov loops: cg, gmres (and FGMRES), bicgstab,
// minres. Every argument is validated before any vector is touched; the loops
// run with the GIL released (Python operators, callbacks and the interrupt
// check re-acquire it). Each returns (iterations, info, residuals).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <variant>

#include "array_checks.hpp"
#include "krylov_bicgstab.hpp"
#include "krylov_cg.hpp"
#include "krylov_common.hpp"
#include "krylov_gmres.hpp"
#include "krylov_minres.hpp"
#include "python_operators.hpp"

namespace py = pybind11;
using namespace krylearn;

namespace {

// f(T{}) with T the value type of the solve: A's when A is a CsrMatrix,
// otherwise b's (matrix-free A).
template <class F>
py::tuple dispatch_value_type(py::handle A, py::handle b, F&& f) {
    if (py::isinstance<CsrMatrix>(A)) {
        if (A.cast<const CsrMatrix&>().value64()) return f(double{});
        return f(float{});
    }
    if (py::isinstance<Preconditioner>(A) || !PyCallable_Check(A.ptr()))
        throw py::type_error("A must be a CsrMatrix or a callable f(x) -> A x, got " +
                             py::str(py::type::of(A).attr("__name__")).cast<std::string>());
    py::array barr = as_ndarray(b, "b");
    if (has_dtype<double>(barr)) return f(double{});
    if (has_dtype<float>(barr)) return f(float{});
    if (is_complex(barr))
        throw py::type_error("b is complex (" + dtype_str(barr) + "); krylearn kernels support real float32/float64 only");
    throw py::type_error("b must have dtype float32 or float64, got " + dtype_str(barr));
}

double nonnegative(double value, const char* name) {
    if (!(value >= 0.0) || !std::isfinite(value))
        throw py::value_error(std::string(name) + " must be finite and >= 0, got " + std::to_string(value));
    return value;
}

std::size_t count_argument(py::handle obj, const char* name, std::size_t if_none, long long minimum) {
    if (obj.is_none()) return if_none;
    if (py::isinstance<py::bool_>(obj) || !PyIndex_Check(obj.ptr()))
        throw py::type_error(std::string(name) + " must be an integer or None, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
    if (!index) throw py::error_already_set();
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
    if (overflow > 0) return std::numeric_limits<std::size_t>::max();  // "no limit"
    if (overflow < 0 || value < minimum)
        throw py::value_error(std::string(name) + " must be >= " + std::to_string(minimum) + ", got " +
                              py::str(obj).cast<std::string>());
    return static_cast<std::size_t>(value);
}

// Everything a loop needs, validated; owns the operator adaptors.
template <class T>
struct KrylovCall {
    using value_type = T;
    std::size_t n = 0;
    const T* b = nullptr;
    T* x = nullptr;
    CsrViewVariant<T> A_view;                // the fused CSR path, when A is a CsrMatrix
    std::unique_ptr<LinearOperator<T>> A;    // always set
    std::unique_ptr<LinearOperator<T>> M;    // nullptr: no preconditioner
    KrylovParams params;
    KrylovHooks<T> hooks;

    KrylovCall(py::handle A_obj, py::handle b_obj, py::handle x_obj, py::handle M_obj, double rtol, double atol,
               py::handle maxiter, py::handle callback, std::size_t maxiter_per_unknown) {
        py::array barr = as_ndarray(b_obj, "b"), xarr = as_ndarray(x_obj, "x");
        if (py::isinstance<CsrMatrix>(A_obj)) {
            const auto& mat = A_obj.cast<const CsrMatrix&>();
            mat.require_square("A");
            n = mat.n_rows();
        } else {
            n = barr.ndim() == 1 ? static_cast<std::size_t>(barr.shape(0)) : 0;
        }
        b = vector_data<T>(barr, n, "b", false);
        x = vector_data<T>(xarr, n, "x", true);
        require_no_overlap(barr, "b", xarr, "x");
        require_finite(b, n, "b");
        require_finite(static_cast<const T*>(x), n, "x");
        params.rtol = nonnegative(rtol, "rtol");
        params.atol = nonnegative(atol, "atol");
        params.maxiter = count_argument(maxiter, "maxiter", maxiter_per_unknown * n, 0);
        if (!callback.is_none() && !PyCallable_Check(callback.ptr()))
            throw py::type_error("callback must be None or callable");
        A_view = csr_view_from_python<T>(A_obj, n, "A");
        A = operator_from_python<T>(A_obj, n, "A");
        if (!M_obj.is_none()) M = operator_from_python<T>(M_obj, n, "M");
        hooks.poll = python_signal_poll();
        if (!callback.is_none()) set_callback(callback, /*residual_norms=*/false);
    }

    // callback(x_k) with a NumPy copy of x, or callback(||r_k|| / ||b||). The
    // callable is borrowed: it is an argument of the running call.
    void set_callback(py::handle callback, bool residual_norms) {
        PyObject* fn = callback.ptr();
        hooks.on_iterate = nullptr;
        hooks.on_residual = nullptr;
        if (residual_norms) {
            hooks.on_residual = [fn](double relative) {
                py::gil_scoped_acquire gil;
                py::handle{fn}(relative);
            };
        } else {
            hooks.on_iterate = python_iterate_hook<T>(callback, n);
        }
    }

    const LinearOperator<T>* preconditioner() const { return M.get(); }

    // Runs loop() without the GIL; returns (iterations, info, residuals).
    template <class Loop>
    py::tuple run(Loop&& loop) {
        KrylovResult result;
        {
            py::gil_scoped_release nogil;
            result = loop();
        }
        return py::make_tuple(result.iterations, result.info, numpy_copy(result.residuals));
    }
};

// (iterations, info, residuals) of loop(call), call being the validated
// KrylovCall<T> of the solve's value type; residual_callback: callback gets
// ||r_k|| / ||b|| instead of x_k.
template <class Loop>
py::tuple solve_krylov(py::handle A, py::handle b, py::handle x, py::handle M, double rtol, double atol,
                       py::handle maxiter, py::handle callback, std::size_t maxiter_per_unknown,
                       bool residual_callback, Loop&& loop) {
    return dispatch_value_type(A, b, [&](auto tag) {
        using T = decltype(tag);
        KrylovCall<T> call(A, b, x, M, rtol, atol, maxiter, callback, maxiter_per_unknown);
        if (residual_callback && !callback.is_none()) call.set_callback(callback, true);
        return call.run([&] { return loop(call); });
    });
}

constexpr const char* kReturns =
    "Returns (iterations, info, residuals): info 0 converged (||b - A x|| <= max(atol, rtol ||b||)), > 0 "
    "not converged after that many iterations, -1 A not SPD (CG), -2 M not SPD, -3 other breakdown "
    "(x then holds the last finite iterate); residuals is float64, residuals[0] = ||r0||. x is the initial "
    "guess and is updated in place. A: CsrMatrix or callable f(x) -> A x; M: None, Preconditioner or "
    "callable f(r) -> M^{-1} r; all vectors 1-D, contiguous, of A's dtype.";

}  // namespace

void bind_krylov(py::module_& m) {
    m.def(
        "cg",
        [](py::handle A, py::handle b, py::handle x, py::handle M, double rtol, double atol, py::handle maxiter,
           py::handle callback) {
            return solve_krylov(A, b, x, M, rtol, atol, maxiter, callback, 10, false, [](auto& call) {
                using T = typename std::decay_t<decltype(call)>::value_type;
                return std::visit(
                    [&](const auto& view) {
                        using View = std::decay_t<decltype(view)>;
                        if constexpr (std::is_same_v<View, std::monostate>)
                            return cg(GenericOperator<T>{*call.A}, call.preconditioner(), call.b, call.x, call.params,
                                      call.hooks);
                        else
                            return cg(CsrFusedOperator<typename std::decay_t<decltype(*view.indptr)>, T>{view},
                                      call.preconditioner(), call.b, call.x, call.params, call.hooks);
                    },
                    call.A_view);
            });
        },
        py::arg("A"), py::arg("b"), py::arg("x"), py::arg("M") = py::none(), py::arg("rtol") = 1e-5,
        py::arg("atol") = 0.0, py::arg("maxiter") = py::none(), py::arg("callback") = py::none(),
        (std::string("Preconditioned conjugate gradients for SPD A and SPD M; callback(xk) after every iteration; "
                     "maxiter default 10 n. ") + kReturns).c_str());

    m.def(
        "gmres",
        [](py::handle A, py::handle b, py::handle x, py::handle M, py::handle restart, double rtol, double atol,
           py::handle maxiter, py::handle callback, const std::string& callback_type, bool flexible) {
            if (callback_type != "x" && callback_type != "pr_norm")
                throw py::value_error("callback_type must be 'x' or 'pr_norm', got '" + callback_type + "'");
            const std::size_t m_restart = count_argument(restart, "restart", 20, 1);
            return solve_krylov(A, b, x, M, rtol, atol, maxiter, callback, 10, callback_type == "pr_norm",
                                [&](auto& call) {
                                    return gmres(*call.A, call.preconditioner(), call.b, call.x, call.params,
                                                 m_restart, flexible, call.hooks);
                                });
        },
        py::arg("A"), py::arg("b"), py::arg("x"), py::arg("M") = py::none(), py::arg("restart") = 20,
        py::arg("rtol") = 1e-5, py::arg("atol") = 0.0, py::arg("maxiter") = py::none(),
        py::arg("callback") = py::none(), py::arg("callback_type") = "pr_norm", py::arg("flexible") = false,
        (std::string("Restarted GMRES(restart), right-preconditioned; flexible=True is FGMRES (M may change "
                     "between applications). maxiter counts inner iterations (default 10 n). callback_type 'x': "
                     "callback(xk) after each restart cycle; 'pr_norm': callback(||r_k|| / ||b||) after each inner "
                     "iteration. ") + kReturns).c_str());

    m.def(
        "bicgstab",
        [](py::handle A, py::handle b, py::handle x, py::handle M, double rtol, double atol, py::handle maxiter,
           py::handle callback) {
            return solve_krylov(A, b, x, M, rtol, atol, maxiter, callback, 10, false, [](auto& call) {
                return bicgstab(*call.A, call.preconditioner(), call.b, call.x, call.params, call.hooks);
            });
        },
        py::arg("A"), py::arg("b"), py::arg("x"), py::arg("M") = py::none(), py::arg("rtol") = 1e-5,
        py::arg("atol") = 0.0, py::arg("maxiter") = py::none(), py::arg("callback") = py::none(),
        (std::string("Right-preconditioned BiCGStab for general square A; callback(xk) after every iteration; "
                     "maxiter default 10 n. ") + kReturns).c_str());

    m.def(
        "minres",
        [](py::handle A, py::handle b, py::handle x, py::handle M, double shift, double rtol, py::handle maxiter,
           py::handle callback) {
            if (!std::isfinite(shift)) throw py::value_error("shift must be finite");
            return solve_krylov(A, b, x, M, rtol, 0.0, maxiter, callback, 5, false, [&](auto& call) {
                return minres(*call.A, call.preconditioner(), call.b, call.x, shift, call.params, call.hooks);
            });
        },
        py::arg("A"), py::arg("b"), py::arg("x"), py::arg("M") = py::none(), py::arg("shift") = 0.0,
        py::arg("rtol") = 1e-5, py::arg("maxiter") = py::none(), py::arg("callback") = py::none(),
        (std::string("Preconditioned MINRES for (A - shift I) x = b, A symmetric (may be indefinite), M SPD; "
                     "callback(xk) after every iteration; maxiter default 5 n. ") + kReturns).c_str());
}
