// Placeholder until the Krylov loops land (replaced by the Krylov bindings).
#include <pybind11/pybind11.h>
namespace py = pybind11;
void bind_krylov(py::module_&) {}
