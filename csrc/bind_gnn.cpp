// Python binding of the learned-IC network's native input, inference and
// factor assembly (gnn_inputs.hpp, gnn_inference.hpp). Validates every array
// (dtypes, shapes, the graph's pointers and indices, the parameter count)
// before any memory is read, and releases the GIL around the kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "array_checks.hpp"
#include "csr_matrix.hpp"
#include "factorization.hpp"
#include "gnn_inference.hpp"
#include "gnn_inputs.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;
using namespace krylearn;

namespace {

// ValueError unless lower_ptr (n + 1) starts at 0, never decreases and ends at E, and every
// edge k of row i has 0 <= cols[k] < i (a strictly-lower edge).
template <class I>
void require_strictly_lower_graph(const I* lower_ptr, const I* cols, std::size_t n, std::size_t E) {
    if (lower_ptr[0] != 0) throw py::value_error("lower_ptr[0] must be 0, got " + std::to_string(lower_ptr[0]));
    for (std::size_t i = 0; i < n; ++i)
        if (lower_ptr[i + 1] < lower_ptr[i])
            throw py::value_error("lower_ptr must be non-decreasing; it decreases at row " + std::to_string(i));
    if (static_cast<std::size_t>(lower_ptr[n]) != E)
        throw py::value_error("lower_ptr[-1] = " + std::to_string(lower_ptr[n]) + " must equal len(cols) = " +
                              std::to_string(E));
    for (std::size_t i = 0; i < n; ++i)
        for (auto k = static_cast<std::size_t>(lower_ptr[i]); k < static_cast<std::size_t>(lower_ptr[i + 1]); ++k)
            if (cols[k] < 0 || static_cast<std::size_t>(cols[k]) >= i)
                throw py::value_error("cols[" + std::to_string(k) + "] = " + std::to_string(cols[k]) + " in row " +
                                      std::to_string(i) + " is not a strictly-lower column (need 0 <= col < row)");
}

template <class I>
py::tuple forward_typed(py::array& lower_ptr, py::array& cols, py::array& a_off, py::array& l0_off,
                        py::array& node_features, py::array& parameters, std::size_t width, std::size_t rounds,
                        GnnActivation activation, int threads, std::size_t lanes) {
    require_1d_contiguous(lower_ptr, "lower_ptr");
    if (lower_ptr.shape(0) < 1) throw py::value_error("lower_ptr must have length n + 1 >= 1");
    const auto n = static_cast<std::size_t>(lower_ptr.shape(0) - 1);
    require_1d_contiguous(cols, "cols");
    const auto E = static_cast<std::size_t>(cols.shape(0));
    const I* lp = vector_data<I>(lower_ptr, n + 1, "lower_ptr", false);
    const I* ci = vector_data<I>(cols, E, "cols", false);
    const float* pa = vector_data<float>(a_off, E, "a_off", false);
    const float* pl = vector_data<float>(l0_off, E, "l0_off", false);
    const float* px = array_data<float>(node_features, {n, kGnnNodeFeatures}, "node_features", false);
    const float* pw = vector_data<float>(parameters, gnn_parameter_count(width, rounds), "parameters", false);
    require_strictly_lower_graph(lp, ci, n, E);

    py::array_t<float> l_off(static_cast<py::ssize_t>(E)), l_diag(static_cast<py::ssize_t>(n));
    float* po = l_off.mutable_data();
    float* pd = l_diag.mutable_data();
    {
        py::gil_scoped_release nogil;
        const GnnWeights net(pw, width, rounds, activation);
        if (width == 8)
            gnn_forward<8>(net, n, lp, ci, pa, pl, px, po, pd, threads, lanes);
        else if (width == 16)
            gnn_forward<16>(net, n, lp, ci, pa, pl, px, po, pd, threads, lanes);
        else
            gnn_forward<0>(net, n, lp, ci, pa, pl, px, po, pd, threads, lanes);
    }
    return py::make_tuple(l_off, l_diag);
}

py::tuple ic_gnn_forward_py(py::handle lower_ptr_obj, py::handle cols_obj, py::handle a_obj, py::handle l0_obj,
                            py::handle x_obj, py::handle w_obj, long long width, long long rounds,
                            const std::string& activation, long long threads, long long lanes) {
    py::array lower_ptr = as_ndarray(lower_ptr_obj, "lower_ptr"), cols = as_ndarray(cols_obj, "cols");
    py::array a_off = as_ndarray(a_obj, "a_off"), l0_off = as_ndarray(l0_obj, "l0_off");
    py::array node_features = as_ndarray(x_obj, "node_features"), parameters = as_ndarray(w_obj, "parameters");
    if (width < 2 || width > static_cast<long long>(kGnnMaxWidth))
        throw py::value_error("width must be in [2, " + std::to_string(kGnnMaxWidth) + "], got " + std::to_string(width));
    if (rounds < 1 || rounds > static_cast<long long>(kGnnMaxRounds))
        throw py::value_error("rounds must be in [1, " + std::to_string(kGnnMaxRounds) + "], got " +
                              std::to_string(rounds));
    if (activation != "silu" && activation != "hardswish")
        throw py::value_error("activation must be 'silu' or 'hardswish', got '" + activation + "'");
    const GnnActivation act = activation == "silu" ? GnnActivation::silu : GnnActivation::hardswish;
    if (threads < 0 || threads > 1024)
        throw py::value_error("threads must be in [0, 1024] (0: the OpenMP default), got " + std::to_string(threads));
    if (lanes != 0 && lanes != 4 && lanes != 8 && lanes != 16)
        throw py::value_error("lanes must be 0 (the widest this CPU runs), 4, 8 or 16, got " + std::to_string(lanes));
    if (static_cast<std::size_t>(lanes) > gnn_max_lanes())
        throw py::value_error("lanes=" + std::to_string(lanes) + " needs " + (lanes == 16 ? "AVX-512F" : "AVX2 and FMA") +
                              ", which this CPU (or this build) does not have");
    const std::size_t nlanes = lanes == 0 ? gnn_max_lanes() : static_cast<std::size_t>(lanes);
    int nthreads = static_cast<int>(threads);
#ifdef _OPENMP
    if (nthreads == 0) nthreads = omp_get_max_threads();
#else
    nthreads = 1;
#endif
    const auto w = static_cast<std::size_t>(width), r = static_cast<std::size_t>(rounds);
    if (has_dtype<std::int32_t>(lower_ptr))
        return forward_typed<std::int32_t>(lower_ptr, cols, a_off, l0_off, node_features, parameters, w, r, act, nthreads, nlanes);
    if (has_dtype<std::int64_t>(lower_ptr))
        return forward_typed<std::int64_t>(lower_ptr, cols, a_off, l0_off, node_features, parameters, w, r, act, nthreads, nlanes);
    throw py::type_error("lower_ptr must have dtype int32 or int64, got " + dtype_str(lower_ptr));
}

py::dict ic_gnn_inputs_py(const CsrMatrix& A, long long max_tries) {
    A.require_square("A");
    if (A.n_rows() == 0) throw py::value_error("learned IC needs a non-empty matrix");
    const std::size_t tries = max_tries_arg(max_tries);
    return A.visit([&](auto view) {
        using I = typename decltype(view)::index_type;
        const std::size_t n = view.n_rows;
        py::array_t<double> sqrt_diag(static_cast<py::ssize_t>(n));
        py::array_t<I> Lp(static_cast<py::ssize_t>(n + 1));
        std::vector<double> inv_sqrt(n);
        std::size_t bad;
        {
            py::gil_scoped_release nogil;
            bad = gnn_scaled_lower_count(view, sqrt_diag.mutable_data(), inv_sqrt.data(), Lp.mutable_data());
        }
        if (bad < n) {
            const std::ptrdiff_t d = csr_diagonal_position(view, bad);
            const std::string entry = "A[" + std::to_string(bad) + "," + std::to_string(bad) + "]";
            throw py::value_error("learned IC is for symmetric positive definite matrices; A has a zero or negative "
                                  "diagonal entry (" + entry + (d < 0 ? " is not stored" : " = " +
                                  std::to_string(double(view.data[d]))) + "), so it is not SPD");
        }
        const auto nnz = static_cast<std::size_t>(Lp.data()[n]), E = nnz - n;
        py::array_t<I> Li(static_cast<py::ssize_t>(nnz)), lower_ptr(static_cast<py::ssize_t>(n + 1)),
            cols(static_cast<py::ssize_t>(E));
        py::array_t<double> At(static_cast<py::ssize_t>(nnz));
        py::array_t<float> a_off(static_cast<py::ssize_t>(E)), l0_off(static_cast<py::ssize_t>(E)),
            node_features({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(kGnnNodeFeatures)}),
            feature_min(static_cast<py::ssize_t>(kGnnNodeFeatures)), feature_max(static_cast<py::ssize_t>(kGnnNodeFeatures));
        py::array_t<double> L0(static_cast<py::ssize_t>(nnz));
        std::vector<double> rowsum(n), offdiag_abs(n), colsum(n), rho(n);
        std::vector<I> marker(n, I(-1));
        double shift;
        std::size_t failed_row = 0;
        {
            py::gil_scoped_release nogil;
            const I* lp = Lp.data();
            I* li = Li.mutable_data();
            double* at = At.mutable_data();
            double* lx = L0.mutable_data();
            gnn_scaled_lower_fill(view, inv_sqrt.data(), lp, li, at, rowsum.data(), offdiag_abs.data());
            const CsrView<I, double> tril{n, n, lp, li, at};
            shift = factorize_with_shift(tries, [&](double s) {
                failed_row = ic0_numeric(tril, lp, li, lx, s, marker.data());
                return failed_row == n;
            });
            if (shift >= 0) {
                gnn_fill_residual(CsrView<I, double>{n, n, lp, li, lx}, rowsum.data(), colsum.data(), rho.data());
                gnn_export_inputs(n, lp, li, at, lx, rho.data(), rowsum.data(), offdiag_abs.data(),
                                  lower_ptr.mutable_data(), cols.mutable_data(), a_off.mutable_data(),
                                  l0_off.mutable_data(), node_features.mutable_data(), feature_min.mutable_data(),
                                  feature_max.mutable_data());
            }
        }
        if (shift < 0) throw py::value_error(breakdown_message("IC(0) of the Jacobi-scaled A", tries, failed_row));
        py::dict out;
        out["indptr"] = Lp;
        out["indices"] = Li;
        out["scaled_lower"] = At;
        out["l0"] = L0;
        out["sqrt_diag"] = sqrt_diag;
        out["lower_ptr"] = lower_ptr;
        out["cols"] = cols;
        out["a_off"] = a_off;
        out["l0_off"] = l0_off;
        out["node_features"] = node_features;
        out["feature_min"] = feature_min;
        out["feature_max"] = feature_max;
        out["shift"] = shift;
        return out;
    });
}

template <class I>
py::tuple assemble_typed(py::array& indptr, py::array& l_off, py::array& l_diag, py::array& sqrt_diag) {
    require_1d_contiguous(indptr, "indptr");
    if (indptr.shape(0) < 1) throw py::value_error("indptr must have length n + 1 >= 1");
    const auto n = static_cast<std::size_t>(indptr.shape(0) - 1);
    const I* lp = vector_data<I>(indptr, n + 1, "indptr", false);
    if (lp[0] != 0) throw py::value_error("indptr[0] must be 0");
    for (std::size_t i = 0; i < n; ++i)
        if (lp[i + 1] <= lp[i])
            throw py::value_error("every row of the factor needs its diagonal: indptr must increase, row " +
                                  std::to_string(i) + " is empty");
    const auto nnz = static_cast<std::size_t>(lp[n]);
    const float* po = vector_data<float>(l_off, nnz - n, "l_off", false);
    const float* pd = vector_data<float>(l_diag, n, "l_diag", false);
    const double* ps = vector_data<double>(sqrt_diag, n, "sqrt_diag", false);
    py::array_t<double> Lx(static_cast<py::ssize_t>(nnz));
    std::size_t bad;
    {
        py::gil_scoped_release nogil;
        bad = gnn_assemble_factor(n, lp, po, pd, ps, Lx.mutable_data());
    }
    return py::make_tuple(Lx, bad);
}

py::tuple ic_gnn_assemble_py(py::handle indptr_obj, py::handle off_obj, py::handle diag_obj, py::handle sqrt_obj) {
    py::array indptr = as_ndarray(indptr_obj, "indptr"), l_off = as_ndarray(off_obj, "l_off");
    py::array l_diag = as_ndarray(diag_obj, "l_diag"), sqrt_diag = as_ndarray(sqrt_obj, "sqrt_diag");
    if (has_dtype<std::int32_t>(indptr)) return assemble_typed<std::int32_t>(indptr, l_off, l_diag, sqrt_diag);
    if (has_dtype<std::int64_t>(indptr)) return assemble_typed<std::int64_t>(indptr, l_off, l_diag, sqrt_diag);
    throw py::type_error("indptr must have dtype int32 or int64, got " + dtype_str(indptr));
}

}  // namespace

void bind_gnn(py::module_& m) {
    m.def("ic_gnn_forward", &ic_gnn_forward_py, py::arg("lower_ptr"), py::arg("cols"), py::arg("a_off"),
          py::arg("l0_off"), py::arg("node_features"), py::arg("parameters"), py::arg("width"), py::arg("rounds"),
          py::arg("activation") = "silu", py::arg("threads") = 1, py::arg("lanes") = 0,
          "Forward pass of the learned-IC network (ICGNN) in float32 -> (l_off, l_diag).\n"
          "Graph: strictly-lower edges in CSR order (lower_ptr: n + 1, cols: E, int32 or int64 alike);\n"
          "a_off, l0_off: float32 (E,); node_features: float32 (n, 4); parameters: the flat float32\n"
          "array of ICGNN.native_parameters(); activation: ICGNN's, 'silu' or 'hardswish'. threads: OpenMP threads (0: the OpenMP default); lanes:\n"
          "floats per vector instruction, 4 (SSE), 8 (AVX2 with fused multiply-adds) or 16 (AVX-512F), 0 = the\n"
          "widest this CPU runs. The result does not depend on threads; the lanes change it by float32 rounding (FMA).");
    m.def("ic_gnn_inputs", &ic_gnn_inputs_py, py::arg("A"), py::arg("max_tries") = 12,
          "The learned-IC network's input for a square A with a positive diagonal (symmetry is not checked):\n"
          "with A~ = D^-1/2 A D^-1/2 (unit diagonal, entries scaling to 0 dropped) and L0 = IC(0) of A~\n"
          "(diagonal shifts as ic0), a dict: indptr, indices (tril(A~)'s pattern, diagonal last per row),\n"
          "scaled_lower (A~ on it) and l0 (L0 on it, float64), sqrt_diag (float64), the float32 network input lower_ptr,\n"
          "cols, a_off, l0_off, node_features (n x 4: l0_ii, rho, rowsum, offdiag_abs_sum), feature_min and\n"
          "feature_max (each feature's extremes, NaN ignored), and shift.");
    m.def("ic_gnn_assemble", &ic_gnn_assemble_py, py::arg("indptr"), py::arg("l_off"), py::arg("l_diag"),
          py::arg("sqrt_diag"),
          "L = D^1/2 L~ (float64 values on the pattern indptr, diagonal last per row) from the network's\n"
          "float32 strictly-lower values l_off and diagonal l_diag -> (data, number of entries that are\n"
          "not finite or are non-positive diagonal entries).");
    m.def("ic_gnn_max_lanes", &gnn_max_lanes, "Floats per vector the learned-IC forward pass uses here: 16 (AVX-512F), 8 (AVX2 with FMA) or 4.");
}
