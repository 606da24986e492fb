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
