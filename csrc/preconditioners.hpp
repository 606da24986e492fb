// Native preconditioners z = M^{-1} r and their type-erased Python-facing
// holder. Each preconditioner is a LinearOperator<T> whose apply() runs
// without the GIL, allocates nothing and never throws.
#pragma once
#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include <vector>

#include "array_checks.hpp"
#include "linear_operator.hpp"
#include "relaxation.hpp"
#include "spmv.hpp"
#include "triangular.hpp"

namespace krylearn {
namespace py = pybind11;

// z = omega D^{-1} r  (parallel)
template <class T>
class JacobiPreconditioner final : public LinearOperator<T> {
public:
    // winv_i = omega / a_ii from scaled_inverse_diagonal.
    explicit JacobiPreconditioner(std::vector<T> winv) : winv_(std::move(winv)) {}
    std::size_t size() const override { return winv_.size(); }
    void apply(const T* r, T* z) const override {
        const T* w = winv_.data();
        const auto n = static_cast<std::ptrdiff_t>(winv_.size());
#pragma omp parallel for schedule(static) if (winv_.size() >= kParallelMin)
        for (std::ptrdiff_t i = 0; i < n; ++i) z[i] = w[i] * r[i];
    }

private:
    std::vector<T> winv_;
};

// One SSOR sweep from zero:
//   z = omega (2 - omega) (D + omega U)^{-1} D (D + omega L)^{-1} r,
// computed as y_i = winv_i ((2 - omega) r_i - sum_{j<i} a_ij y_j) followed by
// z_i = y_i - winv_i sum_{j>i} a_ij z_j, with winv_i = omega / a_ii.
template <class I, class T>
class SsorPreconditioner final : public LinearOperator<T> {
public:
    SsorPreconditioner(CsrView<I, T> A, std::vector<I> diag_pos, std::vector<T> winv, double omega)
        : A_(A), diag_pos_(std::move(diag_pos)), winv_(std::move(winv)), two_minus_omega_(2.0 - omega) {}
    std::size_t size() const override { return A_.n_rows; }
    void apply(const T* r, T* z) const override {
        const I* Ap = A_.indptr;
        const I* Ai = A_.indices;
        const T* Ax = A_.data;
        const I* dp = diag_pos_.data();
        const T* w = winv_.data();
        const std::size_t n = A_.n_rows;
        for (std::size_t i = 0; i < n; ++i) {
            double s = two_minus_omega_ * double(r[i]);
            for (I k = Ap[i]; k < dp[i]; ++k) s -= double(Ax[k]) * double(z[Ai[k]]);
            z[i] = T(double(w[i]) * s);
        }
        for (std::size_t i = n; i-- > 0;) {
            double s = 0.0;
            const I end = Ap[i + 1];
            for (I k = dp[i] + 1; k < end; ++k) s += double(Ax[k]) * double(z[Ai[k]]);
            z[i] = T(double(z[i]) - double(w[i]) * s);
        }
    }

private:
    CsrView<I, T> A_;
    std::vector<I> diag_pos_;
    std::vector<T> winv_;
    double two_minus_omega_;
};

// z = (L L^T)^{-1} r, L lower triangular with its positive diagonal last in
// every row: one forward and one transposed (scatter) triangular solve.
template <class I, class T>
class CholeskyPreconditioner final : public LinearOperator<T> {
public:
    CholeskyPreconditioner(CsrView<I, T> L, std::vector<T> inv_diag) : L_(L), inv_diag_(std::move(inv_diag)) {}
    std::size_t size() const override { return L_.n_rows; }
    void apply(const T* r, T* z) const override {
        lower_solve_diag_last(L_, inv_diag_.data(), r, z);
        lower_transpose_solve_diag_last(L_, inv_diag_.data(), z);
    }

private:
    CsrView<I, T> L_;
    std::vector<T> inv_diag_;
};

// z = U^{-1} L^{-1} r with L (unit lower) and U stored together as by ilu0.
template <class I, class T>
class LuPreconditioner final : public LinearOperator<T> {
public:
    LuPreconditioner(CsrView<I, T> LU, std::vector<I> diag_pos, std::vector<T> inv_diag)
        : LU_(LU), diag_pos_(std::move(diag_pos)), inv_diag_(std::move(inv_diag)) {}
    std::size_t size() const override { return LU_.n_rows; }
    void apply(const T* r, T* z) const override {
        unit_lower_solve(LU_, diag_pos_.data(), r, z);
        upper_solve(LU_, diag_pos_.data(), inv_diag_.data(), z);
    }

private:
    CsrView<I, T> LU_;
    std::vector<I> diag_pos_;
    std::vector<T> inv_diag_;
};

// Diagonal positions of a square CSR matrix; returns n on success, else the
// first row without a diagonal entry.
template <class I, class T>
std::size_t diagonal_positions(const CsrView<I, T>& A, I* diag_pos) {
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        const std::ptrdiff_t k = csr_diagonal_position(A, i);
        if (k < 0) return i;
        diag_pos[i] = static_cast<I>(k);
    }
    return A.n_rows;
}

// inv_i = 1 / a_{i, diag_pos[i]}; returns n on success, else the first row
// whose pivot is zero, not positive (when require_positive) or not invertible in T.
template <class I, class T>
std::size_t inverse_pivots(const CsrView<I, T>& A, const I* diag_pos, bool require_positive, T* inv) {
    for (std::size_t i = 0; i < A.n_rows; ++i) {
        const double d = double(A.data[diag_pos[i]]);
        const T v = T(1.0 / d);
        if (d == 0.0 || (require_positive && !(d > 0.0)) || !std::isfinite(v)) return i;
        inv[i] = v;
    }
    return A.n_rows;
}

// _kernels.Preconditioner: one native operator of value type float or double,
// plus a reference to the Python object (a CsrMatrix) whose arrays it reads.
class Preconditioner {
public:
    template <class T>
    Preconditioner(std::string kind, std::shared_ptr<const LinearOperator<T>> op, py::object keepalive)
        : kind_(std::move(kind)), size_(op->size()), keepalive_(std::move(keepalive)) {
        if constexpr (std::is_same_v<T, double>) f64_ = std::move(op);
        else f32_ = std::move(op);
    }

    const std::string& kind() const { return kind_; }
    std::size_t size() const { return size_; }
    bool value64() const { return f64_ != nullptr; }
    const char* dtype_name() const { return value64() ? "float64" : "float32"; }

    template <class T>
    bool has_value_type() const { return value64() == std::is_same_v<T, double>; }

    // The native operator; TypeError naming `name` when its value type is not T.
    template <class T>
    std::shared_ptr<const LinearOperator<T>> op(const char* name = "the preconditioner") const {
        if (!has_value_type<T>())
            throw py::type_error(std::string(name) + " has dtype " + dtype_name() + ", expected " +
                                 krylearn::dtype_name<T>());
        if constexpr (std::is_same_v<T, double>) return f64_;
        else return f32_;
    }

private:
    std::string kind_;
    std::size_t size_;
    std::shared_ptr<const LinearOperator<float>> f32_;
    std::shared_ptr<const LinearOperator<double>> f64_;
    py::object keepalive_;
};

}  // namespace krylearn
