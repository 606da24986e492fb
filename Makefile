# krylearn: two commands for a fresh machine.
#   make run   - set up .venv, build, run the default benchmark suite
#   make test  - set up .venv, build, run the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PETSC_VERSION := 3.26.1
APT_PACKAGES  := libopenmpi-dev openmpi-bin libopenblas-dev liblapack-dev g++ make

.PHONY: run test setup system venv petsc install bench clean

run: setup
	$(BIN)/krylearn bench

test: setup
	$(BIN)/python -m pytest -p no:cacheprovider tests

setup: system venv petsc install

# System packages (root on CI and dev machines). Only installs what is missing.
system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

venv: $(BIN)/python
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# PETSc + petsc4py from source, in two steps, each skipped when .venv already has it.
petsc: venv system
	@if $(BIN)/python -c "import petsc" 2>/dev/null; then \
	  echo "PETSc already built in $(VENV)"; \
	else \
	  PETSC_CONFIGURE_OPTIONS="--with-fc=0 --with-cuda=0 --with-debugging=0" \
	    $(BIN)/pip install --no-cache-dir petsc==$(PETSC_VERSION); \
	fi
	@if $(BIN)/python -c "import petsc4py; petsc4py.init([]); from petsc4py import PETSc" 2>/dev/null; then \
	  echo "petsc4py already built in $(VENV)"; \
	else \
	  $(BIN)/pip install --upgrade cython setuptools wheel numpy && \
	  PETSC_DIR=$$($(BIN)/python -c "import petsc; print(petsc.get_petsc_dir())") \
	    $(BIN)/pip install --no-cache-dir --no-build-isolation petsc4py==$(PETSC_VERSION); \
	fi

# torch is pinned to the CPU build on local disk; everything else from wheels.
install: venv petsc
	$(BIN)/pip install torch==2.13.0 "pybind11>=2.12" "setuptools>=77" wheel pytest hypothesis
	$(BIN)/pip install --no-build-isolation -e ".[all,test]"

bench: setup
	$(BIN)/krylearn bench

clean:
	rm -rf build krylearn/*.so results
