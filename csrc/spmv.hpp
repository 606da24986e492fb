// CSR sparse matrix-vector kernels, templated on index type I (int32/int64)
// and value type T (float/double). Rows are distributed with OpenMP
// schedule(static); each row is reduced sequentially in double, so y does not
// depend on the thread count. Fused reductions (x.y, ||b - Ax||) use the
// chunked scheme of common.hpp over rows and are deterministic too.
//
// Preconditions (checked once by the bindings, never here): indptr is
// non-decreasing with indptr[0] = 0, 0 <= indices < n_cols, len(x) = n_cols,
// len(y) = n_rows, and x does not overlap y.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "blas1.hpp"
#include "common.hpp"

namespace krylearn {

template <class I, class T>
struct CsrView {
    using index_type = I;
    using value_type = T;
    std::size_t n_rows, n_cols;
    const I* indptr;
    const I* indices;
    const T* data;

    std::size_t nnz() const { return n_rows ? static_cast<std::size_t>(indptr[n_rows]) : 0; }
    // Loops over rows go parallel when the matrix carries enough work.
    bool parallel() const { return nnz() + n_rows >= kParallelMin; }
};

// Position k of the entry (i, i) in row i, or -1 when absent (binary search
// over the sorted column indices of the row).
template <class I, class T>
std::ptrdiff_t csr_diagonal_position(const CsrView<I, T>& A, std::size_t i) {
    const I* first = A.indices + A.indptr[i];
    const I* last = A.indices + A.indptr[i + 1];
    const I* it = std::lower_bound(first, last, static_cast<I>(i));
    return (it != last && static_cast<std::size_t>(*it) == i) ? it - A.indices : -1;
}

// The diagonal of a square CSR matrix, as the relaxation, triangular and
// preconditioner kernels need it.
template <class I, class T>
struct DiagonalInfo {
    std::vector<I> position;     // position k of a_ii in row i (-1 when absent)
    std::vector<T> inverse;      // 1 / a_ii (0 when absent or not invertible)
    std::size_t first_missing;   // first row without a stored diagonal entry, or n
    std::size_t first_singular;  // first row whose a_ii is zero or whose inverse overflows T, or n
};

template <class I, class T>
DiagonalInfo<I, T> diagonal_info(const CsrView<I, T>& A) {
    const std::size_t n = A.n_rows;
    DiagonalInfo<I, T> d{std::vector<I>(n), std::vector<T>(n), n, n};
    for (std::size_t i = 0; i < n; ++i) {
        const std::ptrdiff_t k = csr_diagonal_position(A, i);
        d.position[i] = static_cast<I>(k);
        const T inv = k < 0 ? T(0) : T(1.0 / double(A.data[k]));
        const bool invertible = k >= 0 && A.data[k] != T(0) && std::isfinite(inv);
        d.inverse[i] = invertible ? inv : T(0);
        if (k < 0 && d.first_missing == n) d.first_missing = i;
        if (k >= 0 && !invertible && d.first_singular == n) d.first_singular = i;
    }
    return d;
}

namespace detail {

// (A x)_i in double. Hot loops count positions in std::ptrdiff_t whatever I
// is: a 32-bit counter costs a sign extension per entry under -fwrapv (which
// Python's build flags pass).
// init + sum over stored entries [begin, end) of values[k] x[indices[k]], in double.
template <class I, class T>
inline double range_dot(double init, const T* values, const I* indices, std::ptrdiff_t begin, std::ptrdiff_t end,
                        const T* x) {
    for (std::ptrdiff_t k = begin; k < end; ++k) init += double(values[k]) * double(x[indices[k]]);
    return init;
}

template <class I, class T>
inline double row_dot(const CsrView<I, T>& A, std::size_t i, const T* x) {
    return range_dot(0.0, A.data, A.indices, A.indptr[i], A.indptr[i + 1], x);
}

}  // namespace detail

// y = A x
template <class I, class T>
void csr_matvec(const CsrView<I, T>& A, const T* x, T* y) {
    const auto n = static_cast<std::ptrdiff_t>(A.n_rows);
#pragma omp parallel for schedule(static) if (A.parallel())
    for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = T(detail::row_dot(A, i, x));
}

// y = alpha A x + beta y; with beta == 0 the old y is not read (BLAS rule).
template <class I, class T>
void csr_matvec_axpby(T alpha, const CsrView<I, T>& A, const T* x, T beta, T* y) {
    const auto n = static_cast<std::ptrdiff_t>(A.n_rows);
    const double a = alpha, b = beta;
    if (beta == T(0)) {
#pragma omp parallel for schedule(static) if (A.parallel())
        for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = T(a * detail::row_dot(A, i, x));
    } else {
#pragma omp parallel for schedule(static) if (A.parallel())
        for (std::ptrdiff_t i = 0; i < n; ++i) y[i] = T(a * detail::row_dot(A, i, x) + b * double(y[i]));
    }
}

// y = A x and returns x . y (A square), in one pass over A.
template <class I, class T>
double csr_matvec_dot(const CsrView<I, T>& A, const T* x, T* y) {
    const std::size_t parallel_min = A.parallel() ? 0 : A.n_rows + 1;  // rows go parallel with enough work
    return chunked_sum(
        A.n_rows,
        [&A, x, y](std::size_t b, std::size_t e) {
            double s = 0.0;
            for (std::size_t i = b; i < e; ++i) {
                y[i] = T(detail::row_dot(A, i, x));
                s += double(x[i]) * double(y[i]);
            }
            return s;
        },
        parallel_min);
}

// r = b - A x
template <class I, class T>
void csr_residual(const CsrView<I, T>& A, const T* x, const T* b, T* r) {
    const auto n = static_cast<std::ptrdiff_t>(A.n_rows);
#pragma omp parallel for schedule(static) if (A.parallel())
    for (std::ptrdiff_t i = 0; i < n; ++i) r[i] = T(double(b[i]) - detail::row_dot(A, i, x));
}

// ||b - A x||_2 without storing the residual (a scaled second pass runs only
// when the sum of squares leaves double's safe range).
template <class I, class T>
double csr_residual_nrm2(const CsrView<I, T>& A, const T* x, const T* b) {
    const std::size_t parallel_min = A.parallel() ? 0 : A.n_rows + 1;  // rows go parallel with enough work
    const double s = chunked_sum(
        A.n_rows,
        [&A, x, b](std::size_t lo, std::size_t hi) {
            double acc = 0.0;
            for (std::size_t i = lo; i < hi; ++i) {
                const double ri = double(T(double(b[i]) - detail::row_dot(A, i, x)));
                acc += ri * ri;
            }
            return acc;
        },
        parallel_min);
    if (std::isnan(s) || !detail::sumsq_out_of_range(s)) return std::sqrt(s);
    double scale = 0.0;
    for (std::size_t i = 0; i < A.n_rows; ++i)
        scale = std::max(scale, std::fabs(double(T(double(b[i]) - detail::row_dot(A, i, x)))));
    if (scale == 0.0 || !std::isfinite(scale)) return scale;
    const double inv = 1.0 / scale;
    double t = 0.0;
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        const double ri = double(T(double(b[i]) - detail::row_dot(A, i, x))) * inv;
        t += ri * ri;
    }
    return scale * std::sqrt(t);
}

}  // namespace krylearn
