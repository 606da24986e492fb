// Recycled (deflated) preconditioned CG (Saad, Yeung, Erhel, Guyomarc'h,
// SISC 2000) for SPD A, with a recycle space W (n x k, A-orthonormal:
// W^T A W = I) and AW = A W given:
//
//   x0 <- x0 + W W^T r0,  r0 <- r0 - AW W^T r0        (r0 A-orthogonal to W)
//   z0 = M^{-1} r0,  p0 = z0 - W (AW)^T z0
//   q = A p,  alpha = r.z / p.q,  x += alpha p,  r -= alpha q
//   z = M^{-1} r,  beta = r.z / r_old.z_old,  p = z + beta p - W (AW)^T z
//
// so every direction stays A-orthogonal to range(W) and CG runs on the
// deflated operator. The first `ell` directions p, A p and M^{-1} A p (the
// last from the recurrence: (z_old - z_new) / alpha, no extra application)
// are stored in P, AP, MAP for the caller's refresh of W.
//
// Stops when ||r|| <= tol on the recurrence and then on the true residual
// b - A x; when the true residual is above tol, CG restarts from it (with the
// deflation correction) and stops storing directions (the recurrence identity
// for M^{-1} A p no longer holds). info: 0 converged, > 0 iterations done
// without converging (maxiter), -1 p.Ap <= 0 (A not SPD), -2 r.z <= 0 (M not
// SPD), -3 a non-finite value. The residual history starts with ||b - A x0||.
// Reductions are chunked (common.hpp, gram_schmidt.hpp): the bits do not
// depend on the number of OpenMP threads.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "gram_schmidt.hpp"
#include "krylov_common.hpp"

namespace krylearn {

struct DeflatedCgResult {
    std::size_t iterations = 0;
    int info = 0;
    std::size_t stored = 0;   // columns written to P, AP, MAP
    std::size_t matvecs = 0;  // applications of A
    std::vector<double> residuals;
};

// See the header comment. W, AW: n x k; P, AP, MAP: n x ell (all column-major,
// leading dimension n). hooks.on_iterate(x) after every iteration and
// hooks.poll() may be empty; both may throw (the exception ends the solve, x
// holds the last iterate). Requirements (checked by the binding): finite b, x,
// W, AW.
inline DeflatedCgResult deflated_cg(const LinearOperator<double>& op, const LinearOperator<double>* M, std::size_t n,
                                    std::size_t k, const double* W, const double* AW, const double* b, double* x,
                                    double tol, std::size_t maxiter, std::size_t ell, double* P, double* AP,
                                    double* MAP, const KrylovHooks<double>& hooks) {
    DeflatedCgResult result;
    const GenericOperator<double> A{op};
    GramSchmidt<double> gs(n, k);
    std::vector<double> r(n), q(n), p(n), z(n), z_new(n), h(k), minus_h(k);
    double rz = 0.0;
    const auto true_residual_norm = [&] {  // r = b - A x
        A.residual(x, b, r.data());
        ++result.matvecs;
        return nrm2(r.data(), n);
    };
    const auto precondition = [&](const double* in, double* out) {
        if (M)
            M->apply(in, out);
        else
            copy(in, out, n);
    };
    const auto deflated_direction = [&] {  // p -= W (AW)^T z
        if (k == 0) return;
        gs.project(AW, k, z.data(), h.data());
        gs.subtract(W, k, h.data(), p.data(), nullptr);
    };
    // (Re)start from the residual in r: x += W W^T r, r -= AW W^T r, z = M^{-1} r, p = z - W (AW)^T z.
    const auto start_from_residual = [&] {
        if (k > 0) {
            gs.project(W, k, r.data(), h.data());
            for (std::size_t i = 0; i < k; ++i) minus_h[i] = -h[i];
            gs.subtract(W, k, minus_h.data(), x, nullptr);
            gs.subtract(AW, k, h.data(), r.data(), nullptr);
        }
        precondition(r.data(), z.data());
        rz = dot(r.data(), z.data(), n);
        copy(z.data(), p.data(), n);
        deflated_direction();
    };

    result.residuals.push_back(true_residual_norm());
    start_from_residual();
    double rnorm = nrm2(r.data(), n);
    std::size_t& its = result.iterations;
    while (rnorm > tol) {
        if (its >= maxiter) break;
        if (!(rz > 0.0) || !std::isfinite(rz)) {  // M not SPD, or a non-finite value
            result.info = std::isnan(rz) || std::isinf(rz) ? -3 : -2;
            break;
        }
        const double pq = A.apply_dot(p.data(), q.data());
        ++result.matvecs;
        if (!(pq > 0.0) || !std::isfinite(pq)) {  // A not SPD, or a non-finite value
            result.info = std::isnan(pq) || std::isinf(pq) ? -3 : -1;
            break;
        }
        const double alpha = rz / pq;
        axpy(alpha, p.data(), x, n);
        axpy(-alpha, q.data(), r.data(), n);
        ++its;
        precondition(r.data(), z_new.data());
        if (result.stored < ell) {
            const std::size_t j = result.stored++;
            copy(p.data(), P + j * n, n);
            copy(q.data(), AP + j * n, n);
            double* column = MAP + j * n;
            for (std::size_t i = 0; i < n; ++i) column[i] = (z[i] - z_new[i]) / alpha;
        }
        rnorm = nrm2(r.data(), n);
        result.residuals.push_back(rnorm);
        if (hooks.on_iterate) hooks.on_iterate(x);
        if (rnorm <= tol) {  // confirm with the true residual; restart from it if the recurrence drifted
            rnorm = result.residuals.back() = true_residual_norm();
            if (rnorm <= tol) break;
            ell = result.stored;
            start_from_residual();
            continue;
        }
        const double rz_new = dot(r.data(), z_new.data(), n);
        const double beta = rz_new / rz;
        z.swap(z_new);
        rz = rz_new;
        xpay(z.data(), beta, p.data(), n);  // p = z + beta p
        deflated_direction();
        if (hooks.poll) hooks.poll();
    }
    if (result.info == 0 && rnorm > tol) result.info = static_cast<int>(std::max<std::size_t>(its, 1));
    return result;
}

}  // namespace krylearn
