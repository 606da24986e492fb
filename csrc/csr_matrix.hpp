// CsrMatrix: the validated, type-erased owner of a CSR matrix over the four
// index/value combinations (int32/int64 x float32/float64). It keeps
// references to the caller's NumPy arrays (no copy) and hands out typed
// CsrView<I, T> values to the kernels.
//
// Validation happens once, in from_arrays (see the architecture contract);
// kernels then trust the structure. The arrays must not be modified in place
// afterwards (like scipy.sparse, the matrix does not own private copies); the
// diagonal (positions and inverses) is computed once and cached.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "array_checks.hpp"
#include "spmv.hpp"

namespace krylearn {
namespace py = pybind11;

namespace detail {

// The reason the CSR arrays are invalid, found by walking them entry by entry
// (the slow path of csr_structure_error, for the message).
template <class I>
std::string csr_structure_reason(const I* indptr, std::size_t n_rows, const I* indices, std::size_t nnz,
                                 std::size_t n_cols) {
    if (indptr[0] != 0) return "indptr[0] must be 0, got " + std::to_string(indptr[0]);
    for (std::size_t i = 0; i < n_rows; ++i)
        if (indptr[i + 1] < indptr[i])
            return "indptr must be non-decreasing (indptr[" + std::to_string(i + 1) + "] < indptr[" + std::to_string(i) + "])";
    if (static_cast<std::size_t>(indptr[n_rows]) != nnz)
        return "indptr[-1] = " + std::to_string(indptr[n_rows]) + " must equal len(indices) = " + std::to_string(nnz);
    for (std::size_t i = 0; i < n_rows; ++i) {
        const I begin = indptr[i], end = indptr[i + 1];
        for (I k = begin; k < end; ++k) {
            const I c = indices[k];
            if (c < 0 || static_cast<std::size_t>(c) >= n_cols)
                return "column index " + std::to_string(c) + " in row " + std::to_string(i) + " is out of range [0, " +
                       std::to_string(n_cols) + ")";
            if (k > begin && c <= indices[k - 1])
                return "column indices of row " + std::to_string(i) +
                       " must be strictly increasing (unsorted or duplicate entry at column " + std::to_string(c) + ")";
        }
    }
    return {};
}

// Structural checks of CSR arrays; returns an empty string when valid, else
// the reason. Runs without the GIL. Valid arrays take three branch-free
// passes: indptr non-decreasing from 0 to nnz; every index in [0, n_cols)
// (min and max); and every drop indices[k] <= indices[k - 1] at a row start
// (counted over all k, then over the row starts: the two counts must agree).
template <class I>
std::string csr_structure_error(const I* indptr, std::size_t n_rows, const I* indices, std::size_t nnz,
                                std::size_t n_cols) {
    bool ok = indptr[0] == 0 && static_cast<std::size_t>(indptr[n_rows]) == nnz;
    for (std::size_t i = 0; i < n_rows; ++i) ok &= indptr[i + 1] >= indptr[i];
    if (ok && nnz > 0) {
        I lo = indices[0], hi = indices[0];
        std::size_t drops = 0;
        for (std::size_t k = 1; k < nnz; ++k) {
            lo = std::min(lo, indices[k]);
            hi = std::max(hi, indices[k]);
            drops += indices[k] <= indices[k - 1];
        }
        std::size_t row_start_drops = 0;
        for (std::size_t i = 0; i < n_rows; ++i) {
            const auto k = static_cast<std::size_t>(indptr[i]);
            row_start_drops += k > 0 && k < static_cast<std::size_t>(indptr[i + 1]) && indices[k] <= indices[k - 1];
        }
        ok = lo >= 0 && static_cast<std::size_t>(hi) < n_cols && drops == row_start_drops;
    }
    return ok ? std::string() : csr_structure_reason(indptr, n_rows, indices, nnz, n_cols);
}

}  // namespace detail

class CsrMatrix {
public:
    // Validating constructor: every check of the architecture contract, before
    // any element access beyond the checked bounds. TypeError for dtypes,
    // ValueError for everything else.
    static CsrMatrix from_arrays(py::handle indptr_obj, py::handle indices_obj, py::handle data_obj,
                                 py::ssize_t n_cols) {
        py::array indptr = as_ndarray(indptr_obj, "indptr");
        py::array indices = as_ndarray(indices_obj, "indices");
        py::array data = as_ndarray(data_obj, "data");
        const bool ip64 = has_dtype<std::int64_t>(indptr), ix64 = has_dtype<std::int64_t>(indices);
        if (!ip64 && !has_dtype<std::int32_t>(indptr))
            throw py::type_error("indptr must have dtype int32 or int64, got " + dtype_str(indptr));
        if (!ix64 && !has_dtype<std::int32_t>(indices))
            throw py::type_error("indices must have dtype int32 or int64, got " + dtype_str(indices));
        if (ip64 != ix64)
            throw py::type_error("indptr and indices must have the same dtype, got " + dtype_str(indptr) + " and " +
                                 dtype_str(indices));
        if (is_complex(data))
            throw py::type_error("data is complex (" + dtype_str(data) +
                                 "); krylearn kernels support real float32/float64 only");
        const bool v64 = has_dtype<double>(data);
        if (!v64 && !has_dtype<float>(data))
            throw py::type_error("data must have dtype float32 or float64, got " + dtype_str(data));
        require_1d_contiguous(indptr, "indptr");
        require_1d_contiguous(indices, "indices");
        require_1d_contiguous(data, "data");
        if (indptr.shape(0) < 1) throw py::value_error("indptr must have length n_rows + 1 >= 1, got 0");
        if (n_cols < 0) throw py::value_error("n_cols must be >= 0, got " + std::to_string(n_cols));
        if (indices.shape(0) != data.shape(0))
            throw py::value_error("indices and data must have the same length, got " + std::to_string(indices.shape(0)) +
                                  " and " + std::to_string(data.shape(0)));
        CsrMatrix A(indptr, indices, data, static_cast<std::size_t>(n_cols), ip64, v64);
        std::string error;
        {
            py::gil_scoped_release nogil;
            error = A.index64_ ? A.structure_error<std::int64_t>() : A.structure_error<std::int32_t>();
            if (error.empty()) {
                const bool finite = A.value64_ ? all_finite(static_cast<const double*>(A.data_.data()), A.nnz_)
                                               : all_finite(static_cast<const float*>(A.data_.data()), A.nnz_);
                if (!finite) error = "data contains NaN or Inf";
            }
        }
        if (!error.empty()) throw py::value_error(error);
        return A;
    }

    // For arrays produced by the kernels themselves (valid by construction).
    static CsrMatrix from_valid_arrays(py::array indptr, py::array indices, py::array data, std::size_t n_cols) {
        const bool index64 = has_dtype<std::int64_t>(indptr), value64 = has_dtype<double>(data);
        return CsrMatrix(std::move(indptr), std::move(indices), std::move(data), n_cols, index64, value64);
    }

    std::size_t n_rows() const { return n_rows_; }
    std::size_t n_cols() const { return n_cols_; }
    std::size_t nnz() const { return nnz_; }
    bool square() const { return n_rows_ == n_cols_; }
    bool index64() const { return index64_; }
    bool value64() const { return value64_; }
    const py::array& indptr() const { return indptr_; }
    const py::array& indices() const { return indices_; }
    const py::array& data() const { return data_; }
    const char* dtype_name() const { return value64_ ? "float64" : "float32"; }
    const char* index_dtype_name() const { return index64_ ? "int64" : "int32"; }

    template <class T>
    bool has_value_type() const { return value64_ == std::is_same_v<T, double>; }

    template <class I, class T>
    CsrView<I, T> view() const {
        if (index64_ != std::is_same_v<I, std::int64_t> || !has_value_type<T>())
            throw std::logic_error("CsrMatrix::view: requested types differ from the stored ones");
        return {n_rows_, n_cols_, static_cast<const I*>(indptr_.data()), static_cast<const I*>(indices_.data()),
                static_cast<const T*>(data_.data())};
    }

    // f(view) with the stored CsrView<I, T>; every branch must return the same type.
    template <class F>
    decltype(auto) visit(F&& f) const {
        if (index64_) {
            if (value64_) return f(view<std::int64_t, double>());
            return f(view<std::int64_t, float>());
        }
        if (value64_) return f(view<std::int32_t, double>());
        return f(view<std::int32_t, float>());
    }

    // f(view) with CsrView<I, T> for the stored index type; T must be the stored
    // value type (TypeError naming `name` otherwise).
    template <class T, class F>
    decltype(auto) visit_index(F&& f, const char* name = "the matrix") const {
        require_value_type<T>(name);
        if (index64_) return f(view<std::int64_t, T>());
        return f(view<std::int32_t, T>());
    }

    template <class T>
    void require_value_type(const char* name) const {
        if (!has_value_type<T>())
            throw py::type_error(std::string(name) + " has dtype " + dtype_name() + ", expected " +
                                 krylearn::dtype_name<T>());
    }

    // DiagonalInfo of this (square) matrix, computed on first use and cached
    // (the arrays are immutable by contract); never replaced once set. Call
    // with the GIL held.
    template <class I, class T>
    const DiagonalInfo<I, T>& cached_diagonal() const {
        if (!diagonal_cache_) {
            const CsrView<I, T> A = view<I, T>();
            std::shared_ptr<const DiagonalInfo<I, T>> info;
            {
                py::gil_scoped_release nogil;
                info = std::make_shared<const DiagonalInfo<I, T>>(diagonal_info(A));
            }
            // Another thread may have filled the cache while the GIL was released;
            // the first value stays (references to it may be in use).
            if (!diagonal_cache_) diagonal_cache_ = info;
        }
        return *static_cast<const DiagonalInfo<I, T>*>(diagonal_cache_.get());
    }

    void require_square(const char* name) const {
        if (!square())
            throw py::value_error(std::string(name) + " must be square, got shape (" + std::to_string(n_rows_) + ", " +
                                  std::to_string(n_cols_) + ")");
    }

private:
    CsrMatrix(py::array indptr, py::array indices, py::array data, std::size_t n_cols, bool index64, bool value64)
        : indptr_(std::move(indptr)),
          indices_(std::move(indices)),
          data_(std::move(data)),
          n_rows_(static_cast<std::size_t>(indptr_.shape(0)) - 1),
          n_cols_(n_cols),
          nnz_(static_cast<std::size_t>(data_.shape(0))),
          index64_(index64),
          value64_(value64) {}

    template <class I>
    std::string structure_error() const {
        return detail::csr_structure_error(static_cast<const I*>(indptr_.data()), n_rows_,
                                           static_cast<const I*>(indices_.data()), nnz_, n_cols_);
    }

    py::array indptr_, indices_, data_;
    std::size_t n_rows_, n_cols_, nnz_;
    bool index64_, value64_;
    mutable std::shared_ptr<const void> diagonal_cache_;  // DiagonalInfo<I, T> of the stored types
};

}  // namespace krylearn
