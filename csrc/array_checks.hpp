// Validation of NumPy arrays arriving from Python, shared by every binding.
// Dtype problems raise TypeError; shape, contiguity, writeability, overlap
// and value problems raise ValueError. Nothing here touches array contents
// except the explicit finiteness check.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "blas1.hpp"
#include "factorization.hpp"

namespace krylearn {
namespace py = pybind11;

template <class T>
constexpr const char* dtype_name() {
    if constexpr (std::is_same_v<T, float>) return "float32";
    else if constexpr (std::is_same_v<T, double>) return "float64";
    else if constexpr (std::is_same_v<T, std::int32_t>) return "int32";
    else return "int64";
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += std::to_string(a.shape(d)) + (a.ndim() == 1 ? "," : (d + 1 < a.ndim() ? ", " : ""));
    return s + ")";
}

// obj as a NumPy array (no conversion: lists, scalars etc. raise TypeError,
// because an output written into a temporary copy would be silently lost).
inline py::array as_ndarray(py::handle obj, const char* name) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(std::string(name) + " must be a numpy.ndarray, got " +
                             py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::array>(obj);
}

// Exact dtype match, native byte order (array_t's check uses PyArray_EquivTypes).
template <class T>
bool has_dtype(const py::array& a) {
    return py::isinstance<py::array_t<T>>(a);
}

inline bool is_complex(const py::array& a) { return a.dtype().kind() == 'c'; }

// TypeError unless a has value type T; the message names complex input explicitly.
template <class T>
void require_dtype(const py::array& a, const char* name) {
    if (has_dtype<T>(a)) return;
    if (is_complex(a))
        throw py::type_error(std::string(name) + " is complex (" + dtype_str(a) +
                             "); krylearn kernels support real float32/float64 only");
    throw py::type_error(std::string(name) + " must have dtype " + dtype_name<T>() + ", got " + dtype_str(a));
}

inline void require_1d_contiguous(const py::array& a, const char* name) {
    if (a.ndim() != 1)
        throw py::value_error(std::string(name) + " must be 1-D, got shape " + shape_str(a));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous");
}

// Checks a 1-D, C-contiguous array of dtype T and length n (writeable when
// asked) and returns its data pointer. TypeError for a wrong dtype, ValueError
// for everything else.
template <class T>
T* vector_data(py::array& a, std::size_t n, const char* name, bool writeable) {
    require_dtype<T>(a, name);
    require_1d_contiguous(a, name);
    if (static_cast<std::size_t>(a.shape(0)) != n)
        throw py::value_error(std::string(name) + " has length " + std::to_string(a.shape(0)) + ", expected " +
                              std::to_string(n));
    if (writeable && !a.writeable()) throw py::value_error(std::string(name) + " is read-only; it must be writeable");
    return static_cast<T*>(const_cast<void*>(a.data()));
}

// Checks a C-contiguous array of dtype T and exactly `shape` (writeable when asked) and returns its
// data pointer. TypeError for a wrong dtype, ValueError for everything else.
template <class T>
T* array_data(py::array& a, std::initializer_list<std::size_t> shape, const char* name, bool writeable) {
    require_dtype<T>(a, name);
    bool same = static_cast<std::size_t>(a.ndim()) == shape.size();
    std::string expected = "(";
    py::ssize_t axis = 0;
    for (std::size_t extent : shape) {
        same = same && static_cast<std::size_t>(a.shape(axis)) == extent;
        expected += std::to_string(extent) + (++axis < static_cast<py::ssize_t>(shape.size()) ? ", " : "");
    }
    if (!same) throw py::value_error(std::string(name) + " must have shape " + expected + "), got " + shape_str(a));
    if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
    if (writeable && !a.writeable()) throw py::value_error(std::string(name) + " is read-only; it must be writeable");
    return static_cast<T*>(const_cast<void*>(a.data()));
}

// ValueError unless all n values are finite.
template <class T>
void require_finite(const T* x, std::size_t n, const char* name) {
    bool ok;
    {
        py::gil_scoped_release nogil;
        ok = all_finite(x, n);
    }
    if (!ok) throw py::value_error(std::string(name) + " contains NaN or Inf");
}

// ValueError when the byte ranges of two arrays overlap (identical ranges are
// accepted when allow_identical, for kernels that may work in place).
inline void require_no_overlap(const py::array& a, const char* a_name, const py::array& b, const char* b_name,
                               bool allow_identical = false) {
    const auto* pa = static_cast<const char*>(a.data());
    const auto* pb = static_cast<const char*>(b.data());
    const auto na = static_cast<std::size_t>(a.nbytes()), nb = static_cast<std::size_t>(b.nbytes());
    if (na == 0 || nb == 0) return;
    if (allow_identical && pa == pb && na == nb) return;
    if (pa < pb + nb && pb < pa + na)
        throw py::value_error(std::string(a_name) + " and " + b_name + " share memory; pass separate arrays");
}

// The max_tries argument of the shifted factorizations (factorize_with_shift). At most
// 64 tries: the last shift, 1e-3 * 4^62 ~ 2e34 times diag(A), is far beyond any shift
// that makes a factorization meaningful.
inline std::size_t max_tries_arg(long long value) {
    if (value < 1 || value > 64) throw py::value_error("max_tries must be in [1, 64], got " + std::to_string(value));
    return static_cast<std::size_t>(value);
}

// The error of a factorization that broke down at `row` for every shift tried.
inline std::string breakdown_message(const char* what, std::size_t max_tries, std::size_t row) {
    return std::string(what) + " broke down (row " + std::to_string(row) + ") for every diagonal shift tried, up to " +
           std::to_string(breakdown_shift(max_tries - 1)) + " * diag(A); increase max_tries or use another preconditioner";
}

}  // namespace krylearn
