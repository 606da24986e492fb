// Abstract y = Op(x) used by the Krylov loops: a CSR matrix, a native
// preconditioner (y = M^{-1} x) or a Python callable. The loops are templated
// on the value type only, so they never see index types.
#pragma once
#include <cstddef>

namespace krylearn {

template <class T>
struct LinearOperator {
    virtual ~LinearOperator() = default;
    // Length of x and y (square operators only).
    virtual std::size_t size() const = 0;
    // y = Op(x). x and y never alias. May throw; callers run it without the
    // GIL held (Python-backed operators re-acquire it themselves).
    virtual void apply(const T* x, T* y) const = 0;
};

}  // namespace krylearn
