// Native preconditioners z = M^{-1} r and their type-erased Python-facing
// holder. Each preconditioner is a LinearOperator<T> whose apply() runs
// without the GIL, allocates nothing and never throws; r and z may be the
// same array. Setup validates nothing: the bindings check diagonals and
// pivots first and call finite() on the scaled coefficients afterwards.
#pragma once
#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "array_checks.hpp"
#include "linear_operator.hpp"
#include "spmv.hpp"
#include "triangular.hpp"

namespace krylearn {
namespace py = pybind11;

// y = M x with M itself (not M^{-1}), for the preconditioners stored as M's
// factors; x and y never alias. Allocates a work vector at most.
template <class T>
struct ForwardOperator {
    virtual ~ForwardOperator() = default;
    virtual void multiply(const T* x, T* y) const = 0;
};

// z = omega D^{-1} r  (parallel)
template <class T>
class JacobiPreconditioner final : public LinearOperator<T>, public ForwardOperator<T> {
public:
    // winv_i = omega / a_ii.
    explicit JacobiPreconditioner(std::vector<T> winv) : winv_(std::move(winv)) {}
    bool finite() const { return all_finite(winv_.data(), winv_.size()); }
    std::size_t size() const override { return winv_.size(); }
    void apply(const T* r, T* z) const override {
        const T* w = winv_.data();
        const auto n = static_cast<std::ptrdiff_t>(winv_.size());
#pragma omp parallel for schedule(static) if (winv_.size() >= kParallelMin)
        for (std::ptrdiff_t i = 0; i < n; ++i) z[i] = w[i] * r[i];
    }
    void multiply(const T* x, T* y) const override {
        for (std::size_t i = 0; i < winv_.size(); ++i) y[i] = x[i] / winv_[i];
    }

private:
    std::vector<T> winv_;
};

// One SSOR sweep from zero:
//   z = omega (2 - omega) (D + omega U)^{-1} D (D + omega L)^{-1} r,
// computed as y_i = (2 - omega) w_i r_i - sum_{j<i} s_ij y_j followed by
// z_i = y_i - sum_{j>i} s_ij z_j, with w_i = omega / a_ii and the row-scaled
// copy s_ij = w_i a_ij of A's values made at setup (so both recurrences are
// multiply-subtract chains).
template <class I, class T>
class SsorPreconditioner final : public LinearOperator<T>, public ForwardOperator<T> {
public:
    // diag_pos: positions of a_ii (DiagonalInfo); winv_i = omega / a_ii.
    SsorPreconditioner(CsrView<I, T> A, std::vector<I> diag_pos, const std::vector<T>& winv, double omega)
        : A_(A), diag_pos_(std::move(diag_pos)), coef_(A.nnz()), rhs_scale_(A.n_rows) {
        for (std::size_t i = 0; i < A.n_rows; ++i) {
            rhs_scale_[i] = T((2.0 - omega) * double(winv[i]));
            for (I k = A.indptr[i]; k < A.indptr[i + 1]; ++k) coef_[k] = T(double(winv[i]) * double(A.data[k]));
        }
    }
    bool finite() const { return all_finite(coef_.data(), coef_.size()) && all_finite(rhs_scale_.data(), rhs_scale_.size()); }
    std::size_t size() const override { return A_.n_rows; }
    void apply(const T* r, T* z) const override {
        const I* dp = diag_pos_.data();
        const T* rs = rhs_scale_.data();
        unit_lower_solve(A_.n_rows, A_.indptr, A_.indices, coef_.data(), [dp](std::size_t i) { return dp[i]; },
                         [rs](std::size_t i) { return rs[i]; }, r, z);
        unit_upper_solve(A_.n_rows, A_.indptr, A_.indices, coef_.data(), [dp](std::size_t i) { return dp[i] + 1; },
                         [](std::size_t) { return T(1); }, z);
    }
    // M = (D/w + L) (D/w)^{-1} (D/w + U) / (2 - w), in the scaled values: with
    // t = x + S_upper x, y_i = (t_i + (S_lower t)_i) / rhs_scale_i.
    void multiply(const T* x, T* y) const override {
        using detail::range_dot;
        const std::size_t n = A_.n_rows;
        std::vector<T> t(n);
        for (std::size_t i = 0; i < n; ++i)
            t[i] = T(range_dot(double(x[i]), coef_.data(), A_.indices, diag_pos_[i] + 1, A_.indptr[i + 1], x));
        for (std::size_t i = 0; i < n; ++i)
            y[i] = T(range_dot(double(t[i]), coef_.data(), A_.indices, A_.indptr[i], diag_pos_[i], t.data()) /
                     double(rhs_scale_[i]));
    }

private:
    CsrView<I, T> A_;
    std::vector<I> diag_pos_;
    std::vector<T> coef_, rhs_scale_;
};

// z = (L L^T)^{-1} r, L lower triangular with its positive diagonal last in
// every row. With L = C D^{1/2} (C unit lower, c_ij = l_ij / l_jj, D = diag(l_jj^2)),
// M = C D C^T and z = C^{-T} D^{-1} C^{-1} r, computed as
//   v_i = r_i / d_i - sum_{j<i} (l_ij l_jj / l_ii^2) v_j     (= D^{-1} C^{-1} r, rows of L)
//   z_i = v_i - sum_{j>i} c_ji z_j                          (= C^{-T} v, rows of C^T)
// Setup stores the scaled values of L's strict lower part and C^T as a CSR
// upper triangle (a transposed copy), so both passes are gathers whose
// sequential recurrences are multiply-subtract chains.
template <class I, class T>
class CholeskyPreconditioner final : public LinearOperator<T>, public ForwardOperator<T> {
public:
    // L validated: diagonal last in every row and positive.
    explicit CholeskyPreconditioner(CsrView<I, T> L)
        : L_(L), forward_(L.nnz()), inv_d_(L.n_rows), upper_indptr_(L.n_rows + 1, I(0)),
          upper_indices_(L.nnz() - L.n_rows), upper_(L.nnz() - L.n_rows) {
        const std::size_t n = L.n_rows;
        const I* Lp = L.indptr;
        auto diag = [&](std::size_t i) { return double(L.data[Lp[i + 1] - 1]); };
        for (std::size_t i = 0; i < n; ++i) {
            const double l_ii = diag(i);
            inv_d_[i] = T(1.0 / (l_ii * l_ii));
            for (I k = Lp[i]; k < Lp[i + 1] - 1; ++k) {
                forward_[k] = T(double(L.data[k]) * diag(L.indices[k]) / (l_ii * l_ii));
                ++upper_indptr_[L.indices[k] + 1];
            }
            forward_[Lp[i + 1] - 1] = T(0);  // diagonal slot, unused
        }
        for (std::size_t j = 0; j < n; ++j) upper_indptr_[j + 1] += upper_indptr_[j];
        // Rows of L in increasing i append increasing column indices to C^T's rows.
        std::vector<I> next(upper_indptr_.begin(), upper_indptr_.end() - 1);
        for (std::size_t i = 0; i < n; ++i)
            for (I k = Lp[i]; k < Lp[i + 1] - 1; ++k) {
                const I j = L.indices[k];
                upper_indices_[next[j]] = static_cast<I>(i);
                upper_[next[j]++] = T(double(L.data[k]) / diag(j));
            }
    }
    bool finite() const {
        return all_finite(forward_.data(), forward_.size()) && all_finite(upper_.data(), upper_.size()) &&
               all_finite(inv_d_.data(), inv_d_.size());
    }
    std::size_t size() const override { return L_.n_rows; }
    void apply(const T* r, T* z) const override {
        const I* Lp = L_.indptr;
        const T* inv_d = inv_d_.data();
        unit_lower_solve(L_.n_rows, Lp, L_.indices, forward_.data(), [Lp](std::size_t i) { return Lp[i + 1] - 1; },
                         [inv_d](std::size_t i) { return inv_d[i]; }, r, z);
        const I* Up = upper_indptr_.data();
        unit_upper_solve(L_.n_rows, Up, upper_indices_.data(), upper_.data(), [Up](std::size_t i) { return Up[i]; },
                         [](std::size_t) { return T(1); }, z);
    }
    // y = L (L^T x): u_j = l_jj (x_j + sum_{i>j} c_ji x_i) from the rows of C^T, then y = L u by rows.
    void multiply(const T* x, T* y) const override {
        using detail::range_dot;
        const std::size_t n = L_.n_rows;
        const I* Lp = L_.indptr;
        std::vector<T> u(n);
        for (std::size_t j = 0; j < n; ++j)
            u[j] = T(double(L_.data[Lp[j + 1] - 1]) * range_dot(double(x[j]), upper_.data(), upper_indices_.data(),
                                                                upper_indptr_[j], upper_indptr_[j + 1], x));
        for (std::size_t i = 0; i < n; ++i) y[i] = T(detail::row_dot(L_, i, u.data()));
    }

private:
    CsrView<I, T> L_;
    std::vector<T> forward_, inv_d_;
    std::vector<I> upper_indptr_, upper_indices_;
    std::vector<T> upper_;
};

// z = U^{-1} L^{-1} r with L (unit lower) and U stored together as by ilu0.
// U is applied from a row-scaled copy (u_ij / u_ii) made at setup:
// z_i = y_i / u_ii - sum_{j>i} (u_ij / u_ii) z_j.
template <class I, class T>
class LuPreconditioner final : public LinearOperator<T>, public ForwardOperator<T> {
public:
    // diag_pos and inv_diag_i = 1 / u_ii from DiagonalInfo of LU.
    LuPreconditioner(CsrView<I, T> LU, std::vector<I> diag_pos, std::vector<T> inv_diag)
        : LU_(LU), diag_pos_(std::move(diag_pos)), inv_diag_(std::move(inv_diag)), coef_(LU.data, LU.data + LU.nnz()) {
        for (std::size_t i = 0; i < LU.n_rows; ++i)
            for (I k = diag_pos_[i] + 1; k < LU.indptr[i + 1]; ++k) coef_[k] = T(double(coef_[k]) * double(inv_diag_[i]));
    }
    bool finite() const { return all_finite(coef_.data(), coef_.size()); }
    std::size_t size() const override { return LU_.n_rows; }
    void apply(const T* r, T* z) const override {
        const I* dp = diag_pos_.data();
        const T* inv = inv_diag_.data();
        unit_lower_solve(LU_.n_rows, LU_.indptr, LU_.indices, coef_.data(), [dp](std::size_t i) { return dp[i]; },
                         [](std::size_t) { return T(1); }, r, z);
        unit_upper_solve(LU_.n_rows, LU_.indptr, LU_.indices, coef_.data(), [dp](std::size_t i) { return dp[i] + 1; },
                         [inv](std::size_t i) { return inv[i]; }, z);
    }
    // y = L (U x) from the stored factor values.
    void multiply(const T* x, T* y) const override {
        using detail::range_dot;
        const std::size_t n = LU_.n_rows;
        std::vector<T> u(n);
        for (std::size_t i = 0; i < n; ++i)
            u[i] = T(range_dot(0.0, LU_.data, LU_.indices, diag_pos_[i], LU_.indptr[i + 1], x));
        for (std::size_t i = 0; i < n; ++i)
            y[i] = T(range_dot(double(u[i]), LU_.data, LU_.indices, LU_.indptr[i], diag_pos_[i], u.data()));
    }

private:
    CsrView<I, T> LU_;
    std::vector<I> diag_pos_;
    std::vector<T> inv_diag_, coef_;
};

// _kernels.Preconditioner: one native operator of value type float or double,
// plus a reference to the Python object (a CsrMatrix) whose arrays it reads.
class Preconditioner {
public:
    template <class T>
    Preconditioner(std::string kind, std::shared_ptr<const LinearOperator<T>> op, py::object keepalive)
        : kind_(std::move(kind)), size_(op->size()), keepalive_(std::move(keepalive)) {
        auto forward = std::dynamic_pointer_cast<const ForwardOperator<T>>(op);
        if constexpr (std::is_same_v<T, double>) f64_ = std::move(op), forward64_ = std::move(forward);
        else f32_ = std::move(op), forward32_ = std::move(forward);
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

    // M itself (y = M x), or null where only M^{-1} is stored.
    template <class T>
    std::shared_ptr<const ForwardOperator<T>> forward() const {
        if constexpr (std::is_same_v<T, double>) return forward64_;
        else return forward32_;
    }

private:
    std::string kind_;
    std::size_t size_;
    std::shared_ptr<const LinearOperator<float>> f32_;
    std::shared_ptr<const LinearOperator<double>> f64_;
    std::shared_ptr<const ForwardOperator<float>> forward32_;
    std::shared_ptr<const ForwardOperator<double>> forward64_;
    py::object keepalive_;
};

}  // namespace krylearn
