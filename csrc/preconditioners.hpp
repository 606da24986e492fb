// Native preconditioners z = M^{-1} r and their type-erased Python-facing
// holder. Each preconditioner is a LinearOperator<T> whose apply() runs
// without the GIL, allocates nothing and never throws.
#pragma once
#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "array_checks.hpp"
#include "linear_operator.hpp"

namespace krylearn {
namespace py = pybind11;

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
