// The single pybind11 module krylearn._kernels. Each binding file registers
// its own functions; this file only assembles them.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_core(py::module_& m);    // bind_core.cpp: CSR, BLAS-1, relaxation, factorizations, preconditioners
void bind_krylov(py::module_& m);  // bind_krylov.cpp: CG, GMRES/FGMRES, BiCGStab, MINRES loops
void bind_recycling(py::module_& m);  // bind_recycling.cpp: the GCRO-DR Arnoldi cycle
void bind_gnn(py::module_& m);     // bind_gnn.cpp: the learned-IC network's native inference
void bind_bandits(py::module_& m); // bind_bandits.cpp: the bandit learners' per-solve arithmetic

PYBIND11_MODULE(_kernels, m) {
    m.doc() = "krylearn native kernels: CSR SpMV, BLAS-1, SOR/SSOR, IC(0)/ILU(0), Krylov loops, learned-IC inference, bandit learners.";
    bind_core(m);
    bind_krylov(m);
    bind_recycling(m);
    bind_gnn(m);
    bind_bandits(m);
}
