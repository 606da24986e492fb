"""`pip install .` ships one import name, `krylearn`, with the extension,
every mapped subpackage and the shipped models (a wheel built from this tree)."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_has_one_import_name_with_extension_subpackages_and_models(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert "would be ignored" not in built.stderr
    (wheel,) = tmp_path.glob("krylearn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"krylearn"}
    assert any(name.startswith("krylearn/_kernels") and name.endswith(".so") for name in names)
    for module in ("solvers/recycling.py", "solvers/dcdm.py", "preconditioners/learned_ic.py",
                   "bandits/tsallis.py", "bench/suite_default.py", "petsc.py", "cli.py"):
        assert f"krylearn/{module}" in names
    shipped = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/models/*") if p.suffix in (".pt", ".json")}
    assert shipped, "no shipped models found in the tree"
    for path in shipped:
        assert f"krylearn/{path}" in names
