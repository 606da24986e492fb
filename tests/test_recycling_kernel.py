"""The native GCRO-DR Arnoldi cycle (_kernels.gcrodr_arnoldi) against a NumPy reference, and its input checks."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from krylearn import _kernels
from krylearn._validation import as_kernel_matrix
from krylearn.bench.sequences import darcy_sequence
from krylearn.preconditioners import make_preconditioner


def _setup(n=300, kc=5, seed=0, nonsymmetric=True):
    rng = np.random.default_rng(seed)
    A = sp.random_array((n, n), density=0.02, random_state=rng) + sp.diags_array(np.linspace(1.0, 10.0, n))
    if not nonsymmetric:
        A = A + A.T
    A = sp.csr_array(A)
    C = np.linalg.qr(rng.standard_normal((n, kc)))[0] if kc else np.zeros((n, 0))
    r = rng.standard_normal(n)
    v0 = r - C @ (C.T @ r)
    beta = float(np.linalg.norm(v0))
    return A, C, v0 / beta, beta


def _reference(A, Minv, C, v0, beta, steps):
    """Arnoldi of A M^{-1} against [C, V] with two full Gram-Schmidt sweeps, and the per-step least squares."""
    n, kc = C.shape
    W = np.zeros((n, kc + steps + 1))
    W[:, :kc], W[:, kc] = C, v0
    Z = np.zeros((n, steps))
    H = np.zeros((kc + steps + 1, steps))
    estimates, ys = [], []
    for j in range(steps):
        p = kc + j + 1
        Z[:, j] = Minv(W[:, p - 1])
        w = A @ Z[:, j]
        for _ in range(2):
            h = W[:, :p].T @ w
            w = w - W[:, :p] @ h
            H[:p, j] += h
        H[p, j] = np.linalg.norm(w)
        W[:, p] = w / H[p, j]
        Hbar = H[kc : p + 1, : j + 1]
        rhs = np.zeros(j + 2)
        rhs[0] = beta
        y = np.linalg.lstsq(Hbar, rhs, rcond=None)[0]
        ys.append(y)
        estimates.append(np.linalg.norm(rhs - Hbar @ y))
    return W, Z, H, ys, np.array(estimates)


def _buffers(n, kc, steps):
    return (np.zeros((n, kc + steps + 1), order="F"), np.zeros((n, steps), order="F"),
            np.zeros((kc + steps + 1, steps), order="F"), np.zeros(steps), np.zeros(steps))


@pytest.mark.parametrize("kc", [0, 5])
@pytest.mark.parametrize("pc", [None, "jacobi", "ilu0", "python"])
def test_arnoldi_matches_numpy_reference(kc, pc):
    A, C, v0, beta = _setup(kc=kc)
    n, steps = A.shape[0], 12
    if pc is None:
        M, Minv = None, (lambda v: v)
    else:
        obj = make_preconditioner("jacobi" if pc == "python" else pc, A)
        M = (lambda r: obj.apply(r)) if pc == "python" else obj.native
        Minv = obj.apply
    W, Z, H, y, est = _buffers(n, kc, steps)
    W[:, :kc], W[:, kc] = C, v0
    done, stop = _kernels.gcrodr_arnoldi(as_kernel_matrix(A), M, W, Z if M is not None else None, H, y, est,
                                         kc, steps, beta, 0.0)
    assert (done, stop) == (steps, 0)
    W_ref, Z_ref, H_ref, ys, est_ref = _reference(A, Minv, C, v0, beta, steps)
    np.testing.assert_allclose(W, W_ref, atol=1e-10)
    np.testing.assert_allclose(H, H_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y[:done], ys[-1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est, est_ref, rtol=1e-8, atol=1e-10 * beta)
    Zk = Z if M is not None else W[:, kc : kc + steps]
    np.testing.assert_allclose(A @ Zk, W @ H, atol=1e-10)  # A Z = [C, V] H
    if M is not None:
        np.testing.assert_allclose(Z, Z_ref, atol=1e-12)
    assert np.abs(W.T @ W - np.eye(kc + steps + 1)).max() < 1e-12


def test_arnoldi_stops_at_tolerance_and_on_invariant_space():
    A, C, v0, beta = _setup(kc=3, nonsymmetric=False)
    n, steps = A.shape[0], 40
    W, Z, H, y, est = _buffers(n, 3, steps)
    W[:, :3], W[:, 3] = C, v0
    tol = 1e-3 * beta
    done, stop = _kernels.gcrodr_arnoldi(as_kernel_matrix(A), None, W, None, H, y, est, 3, steps, beta, tol)
    assert stop == 1 and 0 < done < steps
    assert est[done - 1] <= tol < est[done - 2]
    # a diagonal matrix with 3 distinct values: the Krylov space is invariant after 3 steps
    D = sp.csr_array(sp.diags_array(np.repeat([1.0, 2.0, 5.0], 20)))
    v = np.ones(60) / np.sqrt(60.0)
    W, Z, H, y, est = _buffers(60, 0, 10)
    W[:, 0] = v
    done, stop = _kernels.gcrodr_arnoldi(as_kernel_matrix(D), None, W, None, H, y, est, 0, 10, 1.0, 0.0)
    assert (done, stop) == (3, 2)
    assert np.all(W[:, 3] == 0.0) and est[2] < 1e-12
    np.testing.assert_allclose(D @ (W[:, :3] @ y[:3]), v, atol=1e-12)


def test_arnoldi_bad_input():
    s = darcy_sequence(1, n=100)[0]
    A = as_kernel_matrix(s.A)
    n, kc, steps = 100, 2, 5

    def call(**changes):
        W, Z, H, y, est = _buffers(n, kc, steps)
        W[:, :kc + 1] = np.eye(n, kc + 1)
        args = dict(A=A, M=None, basis=W, Z=None, H=H, y=y, estimates=est, kc=kc, steps=steps, beta=1.0, tol=0.0)
        args.update(changes)
        return _kernels.gcrodr_arnoldi(**args)

    assert call()[0] == steps
    with pytest.raises(TypeError):
        call(A=s.A)  # a SciPy matrix, not a CsrMatrix
    with pytest.raises(TypeError):
        call(A=as_kernel_matrix(s.A.astype(np.float32)))
    with pytest.raises(TypeError):
        call(basis=np.zeros((n, 8), dtype=np.float32, order="F"))
    with pytest.raises(ValueError, match="Fortran"):
        call(basis=np.zeros((n, 8)))
    with pytest.raises(ValueError, match="shape"):
        call(basis=np.zeros((n, 7), order="F"))  # needs kc + steps + 1 = 8 columns
    with pytest.raises(ValueError, match="shape"):
        call(H=np.zeros((7, steps), order="F"))
    with pytest.raises(ValueError, match="Z is required"):
        call(M=make_preconditioner("jacobi", s.A).native)
    with pytest.raises(ValueError):
        call(M=make_preconditioner("jacobi", s.A).native, Z=np.zeros((n, steps - 1), order="F"))
    with pytest.raises(ValueError, match="NaN"):
        bad = np.zeros((n, 8), order="F")
        bad[0, 1] = np.nan
        call(basis=bad)
    with pytest.raises(ValueError, match="beta"):
        call(beta=0.0)
    with pytest.raises(ValueError, match="tol"):
        call(tol=-1.0)
    with pytest.raises(ValueError, match="kc"):
        call(kc=-1)
    with pytest.raises(ValueError, match="length"):
        call(y=np.zeros(steps - 1))
    shared = np.zeros(steps)
    with pytest.raises(ValueError, match="share memory"):
        call(y=shared, estimates=shared)
    ro = np.zeros(steps)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(estimates=ro)
    with pytest.raises(ValueError):
        call(M=lambda r: np.ones(n - 1), Z=np.zeros((n, steps), order="F"))  # a preconditioner of the wrong size


def test_arnoldi_does_not_depend_on_thread_count(digests_per_thread_count):
    # n = 12100: three row chunks, so the Gram-Schmidt sweeps run on both threads. The input is built
    # without BLAS, whose results may depend on its own thread count: C holds normalised indicators of
    # disjoint row blocks, and v has zero mean on each block.
    script = """
import hashlib
import numpy as np
from krylearn import _kernels as K
from krylearn._validation import as_kernel_matrix
from krylearn.bench.problems import poisson2d
A = poisson2d(110)
n, kc, s = A.shape[0], 5, 20
blk = n // kc
W = np.zeros((n, kc + s + 1), order="F")
v = np.cos(np.arange(n) * 0.37)
for i in range(kc):
    W[i * blk:(i + 1) * blk, i] = blk ** -0.5
    v[i * blk:(i + 1) * blk] -= v[i * blk:(i + 1) * blk].mean()
beta = np.sqrt(np.sum(v * v))
W[:, kc] = v / beta
H, y, est = np.zeros((kc + s + 1, s), order="F"), np.zeros(s), np.zeros(s)
assert K.gcrodr_arnoldi(as_kernel_matrix(A), None, W, None, H, y, est, kc, s, beta, 0.0) == (s, 0)
print(hashlib.sha256(W.tobytes() + H.tobytes() + y.tobytes()).hexdigest())
"""
    assert len(digests_per_thread_count(script)) == 1


# ----------------------------------------------------------------- recycled CG (_kernels.deflated_cg)

def _spd_problem(n_side=24, k=6, seed=0):
    """A 2D Poisson matrix, b, and an A-orthonormal W (n, k) spanning random vectors, with AW."""
    from krylearn.bench.problems import poisson2d

    A = poisson2d(n_side)
    rng = np.random.default_rng(seed)
    n = A.shape[0]
    b = rng.standard_normal(n)
    Y = rng.standard_normal((n, k))
    L = np.linalg.cholesky(Y.T @ (A @ Y))
    W = np.asfortranarray(np.linalg.solve(L, Y.T).T)  # W^T A W = I
    return A, b, W, np.asfortranarray(A @ W)


def _deflated_cg_reference(A, Minv, W, AW, b, x, tol, maxiter, ell):
    """Deflated PCG (Saad et al. 2000) in NumPy, the loop the native kernel implements."""
    x = x.copy()
    r = b - A @ x
    residuals = [np.linalg.norm(r)]
    if W is not None:
        c = W.T @ r
        x += W @ c
        r -= AW @ c
    deflate = (lambda v: v - W @ (AW.T @ v)) if W is not None else (lambda v: v.copy())
    z = Minv(r)
    rz, p, rnorm, its, P = r @ z, deflate(z), np.linalg.norm(r), 0, []
    while rnorm > tol and its < maxiter:
        q = A @ p
        alpha = rz / (p @ q)
        x += alpha * p
        r -= alpha * q
        its += 1
        z_new = Minv(r)
        if len(P) < ell:
            P.append((p.copy(), q.copy(), (z - z_new) / alpha))
        rnorm = np.linalg.norm(r)
        residuals.append(rnorm)
        rz_new = r @ z_new
        p = z_new + (rz_new / rz) * p
        if W is not None:
            p -= W @ (AW.T @ z_new)
        z, rz = z_new, rz_new
    return x, its, residuals, P


def _cg_buffers(n, ell):
    return tuple(np.zeros((n, ell), order="F") for _ in range(3))


@pytest.mark.parametrize("pc", [None, "jacobi", "ic0", "python"])
@pytest.mark.parametrize("deflate", [True, False])
def test_deflated_cg_matches_numpy_reference(pc, deflate):
    A, b, W, AW = _spd_problem()
    if not deflate:
        W = AW = None
    n, ell, tol = A.shape[0], 8, 1e-9 * np.linalg.norm(b)
    if pc is None:
        M, Minv = None, (lambda v: v.copy())
    else:
        obj = make_preconditioner("jacobi" if pc == "python" else pc, A)
        M = (lambda r: obj.apply(r)) if pc == "python" else obj.native
        Minv = obj.apply
    P, AP, MAP = _cg_buffers(n, ell)
    x = np.zeros(n)
    its, info, stored, matvecs, residuals = _kernels.deflated_cg(as_kernel_matrix(A), M, W, AW, b, x, tol, 1000,
                                                                 ell, P, AP, MAP)
    x_ref, its_ref, res_ref, P_ref = _deflated_cg_reference(A, Minv, W, AW, b, np.zeros(n), tol, 1000, ell)
    assert info == 0 and its == its_ref and stored == ell and matvecs == its + 2
    assert np.linalg.norm(b - A @ x) <= tol
    np.testing.assert_allclose(x, x_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(residuals[1:-1], res_ref[1:-1], rtol=1e-6)  # the last one is the true residual
    for j, (p, q, mq) in enumerate(P_ref):
        np.testing.assert_allclose(P[:, j], p, rtol=1e-7, atol=1e-12 * np.abs(p).max())
        np.testing.assert_allclose(AP[:, j], q, rtol=1e-7, atol=1e-12 * np.abs(q).max())
        np.testing.assert_allclose(MAP[:, j], mq, rtol=1e-6, atol=1e-10 * np.abs(mq).max())
    if deflate:  # every stored direction is A-orthogonal to W
        assert np.abs(W.T @ AP).max() <= 1e-8 * np.abs(AP).max()


def test_deflated_cg_with_a_good_space_needs_fewer_iterations_and_reports_indefinite():
    A, b, _, _ = _spd_problem(k=1)
    n = A.shape[0]
    vals, vecs = np.linalg.eigh(A.toarray())
    W = np.asfortranarray(vecs[:, :12] / np.sqrt(vals[:12]))  # the 12 smallest modes, A-orthonormal
    P, AP, MAP = _cg_buffers(n, 0)
    tol = 1e-10 * np.linalg.norm(b)
    plain = _kernels.deflated_cg(as_kernel_matrix(A), None, None, None, b, np.zeros(n), tol, 1000, 0, P, AP, MAP)
    deflated = _kernels.deflated_cg(as_kernel_matrix(A), None, W, np.asfortranarray(A @ W), b, np.zeros(n), tol, 1000,
                                    0, P, AP, MAP)
    assert plain[1] == deflated[1] == 0 and deflated[0] < 0.8 * plain[0]
    B = sp.csr_array(A - 2.0 * sp.eye_array(n))  # indefinite
    x = np.zeros(n)
    _, info, *_ = _kernels.deflated_cg(as_kernel_matrix(B), None, None, None, b, x, tol, 1000, 0, P, AP, MAP)
    assert info == -1 and np.all(np.isfinite(x))


def test_deflated_cg_maxiter_and_callback():
    A, b, W, AW = _spd_problem()
    n = A.shape[0]
    seen = []
    P, AP, MAP = _cg_buffers(n, 20)
    x = np.zeros(n)
    its, info, stored, _, residuals = _kernels.deflated_cg(as_kernel_matrix(A), None, W, AW, b, x, 0.0, 5, 20, P, AP,
                                                           MAP, lambda xk: seen.append(xk.copy()))
    assert (its, info, stored, len(residuals), len(seen)) == (5, 5, 5, 6, 5)
    np.testing.assert_array_equal(seen[-1], x)
    with pytest.raises(ZeroDivisionError):  # a raising callback ends the solve
        _kernels.deflated_cg(as_kernel_matrix(A), None, W, AW, b, np.zeros(n), 0.0, 5, 0, P, AP, MAP,
                             lambda xk: 1 / 0)


def test_deflated_cg_bad_input():
    A, b, W, AW = _spd_problem()
    n, km = A.shape[0], as_kernel_matrix(A)
    P, AP, MAP = _cg_buffers(n, 4)

    def call(**kw):
        args = dict(A=km, M=None, W=W, AW=AW, b=b, x=np.zeros(n), tol=1e-8, maxiter=100, ell=4, P=P, AP=AP, MAP=MAP)
        args.update(kw)
        return _kernels.deflated_cg(**args)

    with pytest.raises(TypeError, match="CsrMatrix"):
        call(A=A)
    with pytest.raises(ValueError, match="Fortran"):
        call(W=np.ascontiguousarray(W))
    with pytest.raises(ValueError, match="both"):
        call(AW=None)
    with pytest.raises(ValueError, match="AW has shape"):
        call(AW=np.asfortranarray(AW[:, :-1]))
    with pytest.raises(ValueError, match="shape of W"):
        call(AW=np.asfortranarray(np.hstack([AW, AW[:, :1]])))
    with pytest.raises(ValueError, match="rows"):
        call(W=np.asfortranarray(W[:-1]), AW=np.asfortranarray(AW[:-1]))
    bad = W.copy(order="F")
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="W"):
        call(W=bad)
    with pytest.raises(ValueError, match="b"):
        call(b=np.where(np.arange(n) == 2, np.inf, b))
    with pytest.raises(ValueError, match="length"):
        call(x=np.zeros(n - 1))
    with pytest.raises(ValueError, match="columns"):
        call(ell=5)
    with pytest.raises(ValueError, match="share memory"):
        call(AP=P)
    with pytest.raises(ValueError, match="tol"):
        call(tol=-1.0)
    with pytest.raises(ValueError, match="maxiter"):
        call(maxiter=-1)
    with pytest.raises(TypeError, match="callable"):
        call(callback=3)
    ro = np.zeros(n)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(x=ro)
    W_ro = W.copy(order="F")
    W_ro.flags.writeable = False  # W and AW are only read
    assert call(W=W_ro)[1] == 0


def test_deflated_cg_does_not_depend_on_thread_count(digests_per_thread_count):
    # n = 12100: three row chunks, so the deflation sweeps run on both threads (input built without BLAS).
    script = """
import hashlib
import numpy as np
from krylearn import _kernels as K
from krylearn._validation import as_kernel_matrix
from krylearn.bench.problems import poisson2d
A = poisson2d(110)
n, ell, blk = A.shape[0], 6, A.shape[0] // 4
W = np.zeros((n, 2), order="F")  # indicators of row blocks 0 and 2: not coupled by A, so A-orthogonal
W[:blk, 0] = 1.0
W[2 * blk:3 * blk, 1] = 1.0
AW = np.asfortranarray(np.column_stack([A @ W[:, 0], A @ W[:, 1]]))
scale = 1.0 / np.sqrt(np.sum(W * AW, axis=0))
W, AW = np.asfortranarray(W * scale), np.asfortranarray(AW * scale)
b = np.cos(np.arange(n) * 0.37)
x = np.zeros(n)
P, AP, MAP = (np.zeros((n, ell), order="F") for _ in range(3))
its, info, *_ = K.deflated_cg(as_kernel_matrix(A), None, W, AW, b, x, 1e-10, 60, ell, P, AP, MAP)
print(hashlib.sha256(x.tobytes() + P.tobytes() + MAP.tobytes()).hexdigest(), its, info)
"""
    assert len(digests_per_thread_count(script)) == 1
