// Turning Python objects into native operators for the Krylov loops.
//
//   operator_from_python<T>(obj, n, role) -> std::unique_ptr<LinearOperator<T>>
//     obj: a _kernels.CsrMatrix (n x n, value type T), a _kernels.Preconditioner
//     (size n, value type T) or any Python callable f(v) -> w. TypeError for a
//     wrong value type or an unsupported object, ValueError for a wrong size.
//     Native operators are non-owning views: obj must outlive the operator
//     (true for call arguments). The callable adapter re-acquires the GIL,
//     passes a fresh NumPy copy of x, checks that the result is 1-D of length
//     n and real, converts it to T and raises ValueError if it is non-finite.
//     Exceptions raised by the callable propagate unchanged.
//
//   csr_view_from_python<T>(obj, n, role) -> CsrViewVariant<T>
//     For fused SpMV paths: when obj is a CsrMatrix, its CsrView<int32_t, T> or
//     CsrView<int64_t, T> (after the same dtype/shape checks); std::monostate
//     for any other object. Use with std::visit and `if constexpr`.
//
//   vector_data<T>(array, n, name, writeable) (array_checks.hpp) validates a
//     vector argument and returns its data pointer.
//
//   python_iterate_hook<T>(callback, n), python_signal_poll(): the
//     KrylovHooks members on_iterate (callback(x_k) with a NumPy copy of x;
//     the callable is borrowed, so it must be an argument of the running call)
//     and poll (raises the exception of a pending signal, e.g.
//     KeyboardInterrupt), for loops that run without the GIL.
//   numpy_copy(values) -> a float64 NumPy array of a std::vector<double>.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "array_checks.hpp"
#include "csr_matrix.hpp"
#include "krylov_common.hpp"
#include "linear_operator.hpp"
#include "preconditioners.hpp"
#include "spmv.hpp"

namespace krylearn {
namespace py = pybind11;

template <class T>
using CsrViewVariant = std::variant<std::monostate, CsrView<std::int32_t, T>, CsrView<std::int64_t, T>>;

// y = A x for a CSR view.
template <class I, class T>
class CsrOperator final : public LinearOperator<T> {
public:
    explicit CsrOperator(CsrView<I, T> A) : A_(A) {}
    std::size_t size() const override { return A_.n_rows; }
    void apply(const T* x, T* y) const override { csr_matvec(A_, x, y); }

private:
    CsrView<I, T> A_;
};

// Forwards to a shared native operator (a Preconditioner's).
template <class T>
class SharedOperator final : public LinearOperator<T> {
public:
    explicit SharedOperator(std::shared_ptr<const LinearOperator<T>> op) : op_(std::move(op)) {}
    std::size_t size() const override { return op_->size(); }
    void apply(const T* x, T* y) const override { op_->apply(x, y); }

private:
    std::shared_ptr<const LinearOperator<T>> op_;
};

// y = f(x) for a Python callable f; safe to call and destroy without the GIL.
template <class T>
class CallableOperator final : public LinearOperator<T> {
public:
    CallableOperator(py::object fn, std::size_t n, std::string role) : fn_(std::move(fn)), n_(n), role_(std::move(role)) {}
    ~CallableOperator() override {
        py::gil_scoped_acquire gil;
        fn_ = py::object();
    }
    CallableOperator(const CallableOperator&) = delete;
    CallableOperator& operator=(const CallableOperator&) = delete;

    std::size_t size() const override { return n_; }

    void apply(const T* x, T* y) const override {
        py::gil_scoped_acquire gil;
        py::array_t<T> in(static_cast<py::ssize_t>(n_));
        if (n_) std::memcpy(in.mutable_data(), x, n_ * sizeof(T));
        py::object out = fn_(in);
        py::array arr = py::array::ensure(out);
        if (!arr || arr.dtype().kind() == 'O')
            throw py::type_error(role_ + " must return a NumPy array, got " +
                                 py::str(py::type::of(out).attr("__name__")).cast<std::string>());
        if (is_complex(arr))
            throw py::type_error(role_ + " returned a complex array (" + dtype_str(arr) +
                                 "); krylearn kernels support real float32/float64 only");
        const char kind = arr.dtype().kind();
        if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b')
            throw py::type_error(role_ + " must return a real numeric array, got dtype " + dtype_str(arr));
        if (arr.ndim() != 1 || static_cast<std::size_t>(arr.shape(0)) != n_)
            throw py::value_error(role_ + " must return a 1-D array of length " + std::to_string(n_) + ", got shape " +
                                  shape_str(arr));
        auto typed = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(arr);
        if (!typed) throw py::type_error(role_ + " returned an array that cannot be converted to " + dtype_name<T>());
        const T* w = typed.data();
        if (!all_finite(w, n_)) throw py::value_error(role_ + " returned NaN or Inf");
        if (n_) std::memcpy(y, w, n_ * sizeof(T));
    }

private:
    py::object fn_;
    std::size_t n_;
    std::string role_;
};

template <class T>
CsrViewVariant<T> csr_view_from_python(py::handle obj, std::size_t n, const char* role) {
    if (!py::isinstance<CsrMatrix>(obj)) return std::monostate{};
    const auto& A = obj.cast<const CsrMatrix&>();
    A.require_value_type<T>(role);
    if (A.n_rows() != n || A.n_cols() != n)
        throw py::value_error(std::string(role) + " must have shape (" + std::to_string(n) + ", " + std::to_string(n) +
                              "), got (" + std::to_string(A.n_rows()) + ", " + std::to_string(A.n_cols()) + ")");
    if (A.index64()) return A.view<std::int64_t, T>();
    return A.view<std::int32_t, T>();
}

template <class T>
std::unique_ptr<LinearOperator<T>> operator_from_python(py::handle obj, std::size_t n, const char* role) {
    CsrViewVariant<T> view = csr_view_from_python<T>(obj, n, role);
    if (auto* v32 = std::get_if<CsrView<std::int32_t, T>>(&view)) return std::make_unique<CsrOperator<std::int32_t, T>>(*v32);
    if (auto* v64 = std::get_if<CsrView<std::int64_t, T>>(&view)) return std::make_unique<CsrOperator<std::int64_t, T>>(*v64);
    if (py::isinstance<Preconditioner>(obj)) {
        const auto& M = obj.cast<const Preconditioner&>();
        auto op = M.op<T>(role);
        if (M.size() != n)
            throw py::value_error(std::string(role) + " has size " + std::to_string(M.size()) + ", expected " +
                                  std::to_string(n));
        return std::make_unique<SharedOperator<T>>(std::move(op));
    }
    if (PyCallable_Check(obj.ptr()))
        return std::make_unique<CallableOperator<T>>(py::reinterpret_borrow<py::object>(obj), n, role);
    throw py::type_error(std::string(role) + " must be a CsrMatrix, a Preconditioner or a callable, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
}

template <class T>
std::function<void(const T*)> python_iterate_hook(py::handle callback, std::size_t n) {
    PyObject* fn = callback.ptr();
    return [fn, n](const T* xk) {
        py::gil_scoped_acquire gil;
        py::array_t<T> copy_of_x(static_cast<py::ssize_t>(n));
        if (n) std::memcpy(copy_of_x.mutable_data(), xk, n * sizeof(T));
        py::handle{fn}(copy_of_x);
    };
}

inline std::function<void()> python_signal_poll() {
    return [] {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    };
}

inline py::array_t<double> numpy_copy(const std::vector<double>& values) {
    py::array_t<double> out(static_cast<py::ssize_t>(values.size()));
    if (!values.empty()) std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(double));
    return out;
}

}  // namespace krylearn
