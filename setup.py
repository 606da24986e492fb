"""Build the one compiled module, krylearn._kernels, from csrc/ (C++17, -O3, OpenMP)."""
import glob

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

kernels = Pybind11Extension(
    "krylearn._kernels",
    sorted(glob.glob("csrc/*.cpp")),
    include_dirs=["csrc"],
    depends=sorted(glob.glob("csrc/*.hpp") + glob.glob("csrc/*.inc")),  # header-only kernels: a header change must rebuild
    cxx_std=17,
    extra_compile_args=["-O3", "-fopenmp", "-fno-math-errno"],
    extra_link_args=["-fopenmp"],
)

setup(ext_modules=[kernels], cmdclass={"build_ext": build_ext})
