"""The README's Python quick-start runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python quick-start"
    namespace: dict = {}
    exec(compile(blocks[0], "README quick-start", "exec"), namespace)  # noqa: S102 - our own README
    result, A, b = namespace["result"], namespace["A"], namespace["b"]
    assert result.converged
    import numpy as np

    assert np.linalg.norm(b - A @ namespace["x"]) <= 1e-5 * np.linalg.norm(b)
