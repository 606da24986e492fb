"""Shared output of every benchmark suite: a table on screen, CSV + JSON
under ``results/<suite>/``, a progress bar, and the machine description."""
from __future__ import annotations

import csv
import json
import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def results_dir(suite: str, root: str | os.PathLike | None = None) -> Path:
    """``results/<suite>`` under ``root`` (default: $KRYLEARN_RESULTS or ./results), created."""
    base = Path(root or os.environ.get("KRYLEARN_RESULTS", "results"))
    path = base / suite
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine_info() -> dict[str, Any]:
    """Cores, Python, NumPy/SciPy versions: printed next to every result."""
    import numpy as np
    import scipy

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def progress(items: Iterable, description: str, total: int | None = None):
    """Iterate with a rich progress bar on a terminal, plain otherwise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    items = list(items) if total is None and not hasattr(items, "__len__") else items
    total = total if total is not None else len(items)  # type: ignore[arg-type]
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], title: str, columns: Sequence[str] | None = None) -> None:
    """Print rows (dicts sharing keys) as a table."""
    from rich.console import Console
    from rich.table import Table

    if not rows:
        Console().print(f"[bold]{title}[/bold]: no rows")
        return
    columns = list(columns or rows[0].keys())
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, justify="right" if isinstance(rows[0].get(col), (int, float)) else "left")
    for row in rows:
        table.add_row(*(_fmt(row.get(col, "")) for col in columns))
    Console(width=max(120, sum(len(c) + 3 for c in columns))).print(table)


def write_rows(rows: Sequence[dict[str, Any]], directory: Path, stem: str, meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write rows to ``<stem>.csv`` and ``<stem>.json`` (with machine info and ``meta``)."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    payload = {"machine": machine_info(), "meta": meta or {}, "rows": list(rows)}
    json_path.write_text(json.dumps(payload, indent=2, default=float))
    return csv_path, json_path
