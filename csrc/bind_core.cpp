// Python bindings of the core kernels: CsrMatrix, BLAS-1, SpMV, relaxation,
// SOR solver, IC(0)/ILU(0), triangular solves and native preconditioners.
//
// This layer only validates and dispatches over int32/int64 x float32/float64:
// every argument is checked (TypeError for dtypes, ValueError for the rest)
// before any memory is touched, and the GIL is released around every loop.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "blas1.hpp"
#include "csr_matrix.hpp"
#include "factorization.hpp"
#include "preconditioners.hpp"
#include "relaxation.hpp"
#include "row_statistics.hpp"
#include "spmv.hpp"
#include "symmetry.hpp"
#include "triangular.hpp"

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

// Length of a 1-D array (ValueError otherwise), before its dtype is known.
std::size_t vector_length(const py::array& a, const char* name) {
    require_1d_contiguous(a, name);
    return static_cast<std::size_t>(a.shape(0));
}

// T(value), ValueError unless finite in T.
template <class T>
T finite_scalar(double value, const char* name) {
    const T v = T(value);
    if (!std::isfinite(v)) throw py::value_error(std::string(name) + " must be finite, got " + std::to_string(value));
    return v;
}

void require_relaxation_omega(double omega) {
    if (!(omega > 0.0 && omega < 2.0))
        throw py::value_error("omega must be in the open interval (0, 2), got " + std::to_string(omega));
}

std::size_t non_negative(long long value, const char* name) {
    if (value < 0) throw py::value_error(std::string(name) + " must be >= 0, got " + std::to_string(value));
    return static_cast<std::size_t>(value);
}

double tolerance(double value, const char* name) {
    if (!(value >= 0.0) || !std::isfinite(value))
        throw py::value_error(std::string(name) + " must be finite and >= 0, got " + std::to_string(value));
    return value;
}

// An output vector: `out` when given (validated), else a fresh array.
template <class T>
py::array output_vector(const py::object& out, std::size_t n, const char* name) {
    if (out.is_none()) return py::array_t<T>(static_cast<py::ssize_t>(n));
    py::array a = as_ndarray(out, name);
    vector_data<T>(a, n, name, true);
    return a;
}

// Raises a pending KeyboardInterrupt (or any signal handler's exception) from
// a loop running without the GIL; checks at most every 50 ms.
struct InterruptPoll {
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    void operator()() {
        const auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::milliseconds(50)) return;
        last = now;
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
};

RelaxMethod relax_method(const std::string& name) {
    if (name == "jacobi") return RelaxMethod::jacobi;
    if (name == "sor_forward") return RelaxMethod::sor_forward;
    if (name == "sor_backward") return RelaxMethod::sor_backward;
    if (name == "ssor") return RelaxMethod::ssor;
    throw py::value_error("method must be 'jacobi', 'sor_forward', 'sor_backward' or 'ssor', got '" + name + "'");
}

// The cached diagonal of a square matrix; ValueError naming the first row
// without a diagonal entry or, when `invertible`, with a zero (or, in T,
// non-invertible) one.
template <class I, class T>
const DiagonalInfo<I, T>& checked_diagonal(const CsrMatrix& A, const char* what, bool invertible) {
    const DiagonalInfo<I, T>& d = A.cached_diagonal<I, T>();
    if (d.first_missing < A.n_rows())
        throw py::value_error(std::string(what) + ": row " + std::to_string(d.first_missing) + " has no diagonal entry");
    if (invertible && d.first_singular < A.n_rows())
        throw py::value_error(std::string(what) + ": the diagonal entry of row " + std::to_string(d.first_singular) +
                              " is zero or too small to invert");
    return d;
}

// winv_i = omega / a_ii as T.
template <class T>
std::vector<T> scaled_inverse(const std::vector<T>& inverse, double omega) {
    std::vector<T> winv(inverse.size());
    for (std::size_t i = 0; i < inverse.size(); ++i) winv[i] = T(omega * double(inverse[i]));
    return winv;
}

// obj as a CsrMatrix (TypeError otherwise).
const CsrMatrix& csr_arg(py::handle obj, const char* name) {
    if (!py::isinstance<CsrMatrix>(obj))
        throw py::type_error(std::string(name) + " must be a krylearn._kernels.CsrMatrix, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return obj.cast<const CsrMatrix&>();
}

// Builds a native preconditioner without the GIL; ValueError when its scaled
// coefficients are not finite (a matrix too badly scaled for type T).
template <class Op, class... Args>
std::shared_ptr<const Op> build_preconditioner(const char* what, Args&&... args) {
    std::shared_ptr<const Op> op;
    bool finite;
    {
        py::gil_scoped_release nogil;
        op = std::make_shared<const Op>(std::forward<Args>(args)...);
        finite = op->finite();
    }
    if (!finite)
        throw py::value_error(std::string(what) + ": the scaled coefficients overflow (the matrix is too badly scaled)");
    return op;
}

template <class T>
py::object make_preconditioner(const char* kind, std::shared_ptr<const LinearOperator<T>> op, py::object keepalive) {
    return py::cast(Preconditioner(kind, std::move(op), std::move(keepalive)));
}

// ---------------------------------------------------------------- CsrMatrix

py::array csr_matvec_py(const CsrMatrix& A, py::handle x_obj, py::object out) {
    py::array x = as_ndarray(x_obj, "x");
    return A.visit([&](auto view) -> py::array {
        using T = typename decltype(view)::value_type;
        const T* px = vector_data<T>(x, A.n_cols(), "x", false);
        require_finite(px, A.n_cols(), "x");
        py::array y = output_vector<T>(out, A.n_rows(), "out");
        require_no_overlap(x, "x", y, "out");
        T* py_ = static_cast<T*>(y.mutable_data());
        py::gil_scoped_release nogil;
        csr_matvec(view, px, py_);
        return y;
    });
}

py::array csr_diagonal_py(const CsrMatrix& A) {
    return A.visit([&](auto view) -> py::array {
        using T = typename decltype(view)::value_type;
        const std::size_t m = std::min(A.n_rows(), A.n_cols());
        py::array_t<T> d(static_cast<py::ssize_t>(m));
        T* pd = d.mutable_data();
        py::gil_scoped_release nogil;
        for (std::size_t i = 0; i < m; ++i) {
            const std::ptrdiff_t k = csr_diagonal_position(view, i);
            pd[i] = k < 0 ? T(0) : view.data[k];
        }
        return d;
    });
}

py::tuple csr_asymmetry_py(const CsrMatrix& A) {
    A.require_square("A");
    const Asymmetry result = A.visit([](auto view) {
        py::gil_scoped_release nogil;
        return csr_asymmetry(view);
    });
    return py::make_tuple(result.max_difference, result.max_abs);
}

py::tuple csr_row_statistics_py(const CsrMatrix& A) {
    A.require_square("A");
    const RowStatistics result = A.visit([](auto view) {
        py::gil_scoped_release nogil;
        return csr_row_statistics(view);
    });
    return py::make_tuple(result.median_dominance, result.median_spread, result.positive_diagonal);
}

std::string csr_repr(const CsrMatrix& A) {
    return "<krylearn._kernels.CsrMatrix shape=(" + std::to_string(A.n_rows()) + ", " + std::to_string(A.n_cols()) +
           ") nnz=" + std::to_string(A.nnz()) + " dtype=" + A.dtype_name() + " index_dtype=" + A.index_dtype_name() +
           ">";
}

// ---------------------------------------------------------------- BLAS-1 and SpMV

double dot_py(py::handle x_obj, py::handle y_obj) {
    py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y");
    const std::size_t n = vector_length(x, "x");
    return dispatch_float(x, "x", [&](auto tag) {
        using T = decltype(tag);
        const T* px = vector_data<T>(x, n, "x", false);
        const T* py_ = vector_data<T>(y, n, "y", false);
        require_finite(px, n, "x");
        require_finite(py_, n, "y");
        py::gil_scoped_release nogil;
        return dot(px, py_, n);
    });
}

double nrm2_py(py::handle x_obj) {
    py::array x = as_ndarray(x_obj, "x");
    const std::size_t n = vector_length(x, "x");
    return dispatch_float(x, "x", [&](auto tag) {
        using T = decltype(tag);
        const T* px = vector_data<T>(x, n, "x", false);
        require_finite(px, n, "x");
        py::gil_scoped_release nogil;
        return nrm2(px, n);
    });
}

void axpy_py(double alpha, py::handle x_obj, py::handle y_obj) {
    py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y");
    const std::size_t n = vector_length(x, "x");
    dispatch_float(x, "x", [&](auto tag) {
        using T = decltype(tag);
        const T a = finite_scalar<T>(alpha, "alpha");
        const T* px = vector_data<T>(x, n, "x", false);
        T* py_ = vector_data<T>(y, n, "y", true);
        require_no_overlap(x, "x", y, "y", true);
        require_finite(px, n, "x");
        require_finite(py_, n, "y");
        py::gil_scoped_release nogil;
        axpy(a, px, py_, n);
    });
}

void spmv_py(const CsrMatrix& A, py::handle x_obj, py::handle y_obj, double alpha, double beta) {
    py::array x = as_ndarray(x_obj, "x"), y = as_ndarray(y_obj, "y");
    A.visit([&](auto view) {
        using T = typename decltype(view)::value_type;
        const T a = finite_scalar<T>(alpha, "alpha"), b = finite_scalar<T>(beta, "beta");
        const T* px = vector_data<T>(x, A.n_cols(), "x", false);
        T* py_ = vector_data<T>(y, A.n_rows(), "y", true);
        require_no_overlap(x, "x", y, "y");
        require_finite(px, A.n_cols(), "x");
        if (b != T(0)) require_finite(py_, A.n_rows(), "y");
        py::gil_scoped_release nogil;
        csr_matvec_axpby(a, view, px, b, py_);
    });
}

// ---------------------------------------------------------------- relaxation

void relax_py(const CsrMatrix& A, py::handle x_obj, py::handle b_obj, const std::string& method_name, double omega,
              long long sweeps_arg) {
    A.require_square("A");
    const RelaxMethod method = relax_method(method_name);
    require_relaxation_omega(omega);
    const std::size_t sweeps = non_negative(sweeps_arg, "sweeps");
    py::array x = as_ndarray(x_obj, "x"), b = as_ndarray(b_obj, "b");
    A.visit([&](auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        const std::size_t n = A.n_rows();
        T* px = vector_data<T>(x, n, "x", true);
        const T* pb = vector_data<T>(b, n, "b", false);
        require_no_overlap(x, "x", b, "b");
        require_finite(px, n, "x");
        require_finite(pb, n, "b");
        const DiagonalInfo<I, T>& d = checked_diagonal<I, T>(A, "relax", true);
        std::vector<T> work(method == RelaxMethod::jacobi ? n : 0);
        bool finite;
        {
            py::gil_scoped_release nogil;
            relax(view, d.position.data(), d.inverse.data(), omega, pb, px, method, sweeps, work.data(), InterruptPoll{});
            finite = all_finite(px, n);
        }
        if (!finite) throw py::value_error("relax: the iteration diverged (x became non-finite)");
    });
}

py::tuple sor_solve_py(const CsrMatrix& A, py::handle b_obj, py::handle x_obj, double omega, bool symmetric,
                       double rtol, double atol, long long maxiter_arg) {
    A.require_square("A");
    require_relaxation_omega(omega);
    tolerance(rtol, "rtol");
    tolerance(atol, "atol");
    const std::size_t maxiter = non_negative(maxiter_arg, "maxiter");
    py::array x = as_ndarray(x_obj, "x"), b = as_ndarray(b_obj, "b");
    return A.visit([&](auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        const std::size_t n = A.n_rows();
        const T* pb = vector_data<T>(b, n, "b", false);
        T* px = vector_data<T>(x, n, "x", true);
        require_no_overlap(x, "x", b, "b");
        require_finite(pb, n, "b");
        require_finite(px, n, "x");
        const DiagonalInfo<I, T>& d = checked_diagonal<I, T>(A, "sor_solve", true);
        std::vector<T> backup(n);
        SorResult result;
        {
            py::gil_scoped_release nogil;
            result = sor_solve(view, d.position.data(), d.inverse.data(), omega, pb, px, symmetric, rtol, atol, maxiter,
                               backup.data(), InterruptPoll{});
        }
        return py::make_tuple(result.iterations, result.residual_norm, result.info);
    });
}

// ---------------------------------------------------------------- factorizations

py::tuple ic0_py(const CsrMatrix& A, long long max_tries_value) {
    A.require_square("A");
    const std::size_t max_tries = max_tries_arg(max_tries_value);
    return A.visit([&](auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        const std::size_t n = view.n_rows;
        py::array_t<I> Lp(static_cast<py::ssize_t>(n + 1));
        I* lp = Lp.mutable_data();
        std::size_t bad;
        {
            py::gil_scoped_release nogil;
            bad = ic0_symbolic_count(view, lp);
        }
        if (bad < n) throw py::value_error("ic0: row " + std::to_string(bad) + " of A has no diagonal entry");
        for (std::size_t i = 0; i < n; ++i)
            if (!(view.data[view.indptr[i] + (lp[i + 1] - lp[i]) - 1] > T(0)))
                throw py::value_error("ic0: the diagonal entry of row " + std::to_string(i) +
                                      " is not positive; IC(0) needs a positive diagonal (is A SPD?)");
        const auto nnz = static_cast<py::ssize_t>(lp[n]);
        py::array_t<I> Li(nnz);
        py::array_t<T> Lx(nnz);
        I* li = Li.mutable_data();
        T* lx = Lx.mutable_data();
        std::vector<I> marker(n, I(-1));
        double shift;
        std::size_t failed_row = 0;
        {
            py::gil_scoped_release nogil;
            ic0_symbolic_fill(view, lp, li);
            shift = factorize_with_shift(max_tries, [&](double s) {
                failed_row = ic0_numeric(view, lp, li, lx, s, marker.data());
                return failed_row == n;
            });
        }
        if (shift < 0) throw py::value_error(breakdown_message("ic0", max_tries, failed_row));
        return py::make_tuple(py::cast(CsrMatrix::from_valid_arrays(Lp, Li, Lx, n)), shift);
    });
}

py::tuple ilu0_py(const CsrMatrix& A, long long max_tries_value) {
    A.require_square("A");
    const std::size_t max_tries = max_tries_arg(max_tries_value);
    return A.visit([&](auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        const std::size_t n = view.n_rows, nnz = view.nnz();
        const I* diag_pos = checked_diagonal<I, T>(A, "ilu0", false).position.data();
        py::array_t<I> LUp(static_cast<py::ssize_t>(n + 1));
        py::array_t<I> LUi(static_cast<py::ssize_t>(nnz));
        py::array_t<T> LUx(static_cast<py::ssize_t>(nnz));
        I* lup = LUp.mutable_data();
        I* lui = LUi.mutable_data();
        T* lux = LUx.mutable_data();
        std::vector<I> marker(n, I(-1));
        double shift;
        std::size_t failed_row = 0;
        {
            py::gil_scoped_release nogil;
            copy(view.indptr, lup, n + 1);
            copy(view.indices, lui, nnz);
            shift = factorize_with_shift(max_tries, [&](double s) {
                failed_row = ilu0_numeric(view, diag_pos, lux, s, marker.data());
                return failed_row == n;
            });
        }
        if (shift < 0) throw py::value_error(breakdown_message("ilu0", max_tries, failed_row));
        return py::make_tuple(py::cast(CsrMatrix::from_valid_arrays(LUp, LUi, LUx, n)), shift);
    });
}

void trsv_py(const CsrMatrix& A, py::handle b_obj, py::handle x_obj, bool lower, bool transpose, bool unit_diagonal) {
    A.require_square("T");
    py::array b = as_ndarray(b_obj, "b"), x = as_ndarray(x_obj, "x");
    A.visit([&](auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        const std::size_t n = view.n_rows;
        const T* pb = vector_data<T>(b, n, "b", false);
        T* px = vector_data<T>(x, n, "x", true);
        require_no_overlap(b, "b", x, "x", true);
        require_finite(pb, n, "b");
        const I* diag_pos = unit_diagonal ? nullptr : checked_diagonal<I, T>(A, "trsv", true).position.data();
        bool finite;
        {
            py::gil_scoped_release nogil;
            trsv(view, diag_pos, pb, px, lower, transpose, unit_diagonal);
            finite = all_finite(px, n);
        }
        if (!finite) throw py::value_error("trsv: the solution overflowed (the triangle is numerically singular)");
    });
}

// ---------------------------------------------------------------- preconditioners

py::array preconditioner_apply_py(const Preconditioner& M, py::handle r_obj, py::object z_obj) {
    py::array r = as_ndarray(r_obj, "r");
    auto run = [&](auto tag) -> py::array {
        using T = decltype(tag);
        const auto op = M.op<T>();
        const T* pr = vector_data<T>(r, M.size(), "r", false);
        py::array z = output_vector<T>(z_obj, M.size(), "z");
        require_no_overlap(r, "r", z, "z", true);
        T* pz = static_cast<T*>(z.mutable_data());
        // Non-finite r gives non-finite z, so one check of z covers both; r is
        // then inspected only to word the error (and is intact unless z is r).
        bool finite = false, r_finite = true;
        {
            py::gil_scoped_release nogil;
            if (pz == pr) r_finite = all_finite(pr, M.size());
            if (r_finite) {
                op->apply(pr, pz);
                finite = all_finite(pz, M.size());
                if (!finite) r_finite = all_finite(pr, M.size());
            }
        }
        if (!r_finite) throw py::value_error("r contains NaN or Inf");
        if (!finite) throw py::value_error("Preconditioner.apply: the result overflowed (the " + M.kind() +
                                           " preconditioner is numerically singular)");
        return z;
    };
    require_1d_contiguous(r, "r");
    if (M.value64()) {
        require_dtype<double>(r, "r");
        return run(double{});
    }
    require_dtype<float>(r, "r");
    return run(float{});
}

// M X (M itself) for a vector X of length n or the columns of an (n, p) Fortran-ordered X;
// None where the preconditioner stores only M^{-1}.
py::object preconditioner_multiply_py(const Preconditioner& M, py::handle x_obj) {
    py::array x = as_ndarray(x_obj, "X");
    const std::size_t n = M.size();
    auto run = [&](auto tag) -> py::object {
        using T = decltype(tag);
        const auto forward = M.forward<T>();
        if (!forward) return py::none();
        require_dtype<T>(x, "X");
        std::size_t columns = 1;
        if (x.ndim() == 1) {
            require_1d_contiguous(x, "X");
        } else if (x.ndim() == 2 && (x.flags() & py::array::f_style)) {
            columns = static_cast<std::size_t>(x.shape(1));
        } else {
            throw py::value_error("X must be a contiguous vector or a Fortran-ordered (n, p) array, got shape " +
                                  shape_str(x));
        }
        if (static_cast<std::size_t>(x.shape(0)) != n)
            throw py::value_error("X must have " + std::to_string(n) + " rows, got shape " + shape_str(x));
        const T* px = static_cast<const T*>(x.data());
        require_finite(px, n * columns, "X");
        std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
        py::array_t<T, py::array::f_style> y(shape);
        T* py_ = y.mutable_data();
        {
            py::gil_scoped_release nogil;
            for (std::size_t c = 0; c < columns; ++c) forward->multiply(px + c * n, py_ + c * n);
        }
        return std::move(y);
    };
    return M.value64() ? run(double{}) : run(float{});
}

// build(A, view) with the stored CsrView of the square CsrMatrix `obj` (the argument `name`).
template <class Build>
py::object on_square_matrix(py::object obj, const char* name, Build&& build) {
    const CsrMatrix& A = csr_arg(obj, name);
    A.require_square(name);
    return A.visit([&](auto view) { return build(A, view); });
}

py::object jacobi_preconditioner_py(py::object A_obj, double omega) {
    return on_square_matrix(A_obj, "A", [&](const CsrMatrix& A, auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        if (!(omega > 0.0) || !std::isfinite(omega))
            throw py::value_error("omega must be finite and > 0, got " + std::to_string(omega));
        const DiagonalInfo<I, T>& d = checked_diagonal<I, T>(A, "jacobi_preconditioner", true);
        auto op = build_preconditioner<JacobiPreconditioner<T>>("jacobi_preconditioner", scaled_inverse(d.inverse, omega));
        return make_preconditioner<T>("jacobi", op, py::none());
    });
}

py::object ssor_preconditioner_py(py::object A_obj, double omega) {
    return on_square_matrix(A_obj, "A", [&](const CsrMatrix& A, auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        require_relaxation_omega(omega);
        const DiagonalInfo<I, T>& d = checked_diagonal<I, T>(A, "ssor_preconditioner", true);
        auto op = build_preconditioner<SsorPreconditioner<I, T>>("ssor_preconditioner", view, d.position,
                                                                 scaled_inverse(d.inverse, omega), omega);
        return make_preconditioner<T>("ssor", op, A_obj);
    });
}

py::object ic_preconditioner_py(py::object L_obj) {
    return on_square_matrix(L_obj, "L", [&](const CsrMatrix&, auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        for (std::size_t i = 0; i < view.n_rows; ++i) {
            const I last = view.indptr[i + 1] - 1;
            if (last < view.indptr[i] || static_cast<std::size_t>(view.indices[last]) != i)
                throw py::value_error("ic_preconditioner: L must be lower triangular with the diagonal stored last in "
                                      "every row; row " + std::to_string(i) + " is not");
        }
        for (std::size_t i = 0; i < view.n_rows; ++i)
            if (!(view.data[view.indptr[i + 1] - 1] > T(0)))
                throw py::value_error("ic_preconditioner: the diagonal entry of row " + std::to_string(i) +
                                      " is not positive");
        auto op = build_preconditioner<CholeskyPreconditioner<I, T>>("ic_preconditioner", view);
        return make_preconditioner<T>("ic", op, L_obj);
    });
}

py::object ilu_preconditioner_py(py::object LU_obj) {
    return on_square_matrix(LU_obj, "LU", [&](const CsrMatrix& LU, auto view) {
        using I = typename decltype(view)::index_type;
        using T = typename decltype(view)::value_type;
        const DiagonalInfo<I, T>& d = checked_diagonal<I, T>(LU, "ilu_preconditioner", true);
        auto op = build_preconditioner<LuPreconditioner<I, T>>("ilu_preconditioner", view, d.position, d.inverse);
        return make_preconditioner<T>("ilu", op, LU_obj);
    });
}

}  // namespace

void bind_core(py::module_& m) {
    py::class_<CsrMatrix>(m, "CsrMatrix",
                          "CsrMatrix(indptr, indices, data, n_cols)\n\n"
                          "Validated CSR matrix over NumPy arrays (int32/int64 indices, float32/float64 values).\n"
                          "Keeps references to the arrays; do not modify them afterwards.")
        .def(py::init(&CsrMatrix::from_arrays), py::arg("indptr"), py::arg("indices"), py::arg("data"),
             py::arg("n_cols"))
        .def_property_readonly("shape", [](const CsrMatrix& A) { return py::make_tuple(A.n_rows(), A.n_cols()); })
        .def_property_readonly("nnz", &CsrMatrix::nnz)
        .def_property_readonly("dtype", [](const CsrMatrix& A) { return py::dtype(A.dtype_name()); })
        .def_property_readonly("index_dtype", [](const CsrMatrix& A) { return py::dtype(A.index_dtype_name()); })
        .def_property_readonly("indptr", &CsrMatrix::indptr)
        .def_property_readonly("indices", &CsrMatrix::indices)
        .def_property_readonly("data", &CsrMatrix::data)
        .def("matvec", &csr_matvec_py, py::arg("x"), py::arg("out") = py::none(), "y = A x (into out when given).")
        .def("diagonal", &csr_diagonal_py, "Main diagonal (zeros where no entry is stored).")
        .def("asymmetry", &csr_asymmetry_py,
             "(max |a_ij - a_ji|, max |a_ij|) of a square matrix, without forming the transpose.")
        .def("row_statistics", &csr_row_statistics_py,
             "(median |a_ii| / sum_{j != i} |a_ij| (2 for a row without off-diagonal mass), median of\n"
             "max/min |a_ij| over each row's nonzero off-diagonals (NaN if no row has one), every a_ii > 0)\n"
             "of a square matrix, in one pass.")
        .def("__repr__", &csr_repr);

    m.def("dot", &dot_py, py::arg("x"), py::arg("y"), "x . y (accumulated in float64, deterministic).");
    m.def("nrm2", &nrm2_py, py::arg("x"), "||x||_2 (accumulated in float64, deterministic).");
    m.def("axpy", &axpy_py, py::arg("alpha"), py::arg("x"), py::arg("y"), "y += alpha x, in place.");
    m.def("spmv", &spmv_py, py::arg("A"), py::arg("x"), py::arg("y"), py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
          "y = alpha A x + beta y, in place (y is not read when beta == 0).");
    m.def("relax", &relax_py, py::arg("A"), py::arg("x"), py::arg("b"), py::arg("method"), py::arg("omega") = 1.0,
          py::arg("sweeps") = 1,
          "`sweeps` sweeps of 'jacobi', 'sor_forward', 'sor_backward' or 'ssor' on A x = b, x updated in place.");
    m.def("sor_solve", &sor_solve_py, py::arg("A"), py::arg("b"), py::arg("x"), py::arg("omega") = 1.0,
          py::arg("symmetric") = false, py::arg("rtol") = 1e-8, py::arg("atol") = 0.0, py::arg("maxiter") = 10000,
          "SOR (SSOR when symmetric) iterations on x in place until ||b - A x|| <= max(atol, rtol ||b||).\n"
          "Returns (iterations, residual_norm, info): info 0 converged, > 0 maxiter reached, -1 non-finite\n"
          "iterate (x is then the last finite iterate).");
    m.def("ic0", &ic0_py, py::arg("A"), py::arg("max_tries") = 12,
          "IC(0) of A on tril(A)'s pattern -> (L, shift); on breakdown retries with A + shift diag(A).");
    m.def("ilu0", &ilu0_py, py::arg("A"), py::arg("max_tries") = 12,
          "ILU(0) of A on A's pattern -> (LU, shift), unit L below and U on/above the diagonal.");
    m.def("trsv", &trsv_py, py::arg("T"), py::arg("b"), py::arg("x"), py::arg("lower"), py::arg("transpose") = false,
          py::arg("unit_diagonal") = false,
          "Solve T x = b (or T^T x = b) with the lower or upper triangle of T; the other triangle (and the\n"
          "diagonal when unit_diagonal) is not referenced. x may be b.");

    py::class_<Preconditioner>(m, "Preconditioner", "Opaque native preconditioner z = M^{-1} r.")
        .def("apply", &preconditioner_apply_py, py::arg("r"), py::arg("z") = py::none(),
             "z = M^{-1} r (into z when given; z may be r).")
        .def("multiply", &preconditioner_multiply_py, py::arg("X"),
             "M X with M itself, for a vector or the columns of a Fortran-ordered (n, p) array; None\n"
             "when only M^{-1} is stored.")
        .def_property_readonly("size", &Preconditioner::size)
        .def_property_readonly("dtype", [](const Preconditioner& M) { return py::dtype(M.dtype_name()); })
        .def_property_readonly("kind", &Preconditioner::kind)
        .def("__repr__", [](const Preconditioner& M) {
            return "<krylearn._kernels.Preconditioner kind=" + M.kind() + " size=" + std::to_string(M.size()) +
                   " dtype=" + M.dtype_name() + ">";
        });
    m.def("jacobi_preconditioner", &jacobi_preconditioner_py, py::arg("A"), py::arg("omega") = 1.0,
          "M^{-1} r = omega D^{-1} r.");
    m.def("ssor_preconditioner", &ssor_preconditioner_py, py::arg("A"), py::arg("omega") = 1.0,
          "M^{-1} r = one SSOR sweep from zero = omega (2 - omega) (D + omega U)^{-1} D (D + omega L)^{-1} r.");
    m.def("ic_preconditioner", &ic_preconditioner_py, py::arg("L"),
          "M = L L^T for a lower-triangular L with positive diagonal stored last in every row.");
    m.def("ilu_preconditioner", &ilu_preconditioner_py, py::arg("LU"),
          "M = L U for a combined ILU(0) factor (unit L below the diagonal, U on and above).");
}
