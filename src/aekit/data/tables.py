"""Tables in files: .npy, .npz (features "X", labels "y"), .csv / .csv.gz, .parquet; each
read to an array without running code (no unpickling)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.record import check_finite
from aekit.errors import DataError

SUFFIXES = (".npy", ".npz", ".csv", ".csv.gz", ".parquet")


def table_suffix(path: Path) -> str | None:
    """The suffix of :data:`SUFFIXES` that ``path`` ends with (case aside), or None."""
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def _read_npy(path: Path) -> tuple[Any, None]:
    """The array in a .npy file (an archive for .npz files), never unpickling."""
    if path.stat().st_size == 0:
        raise DataError(f"data file '{path.name}' is empty")
    try:
        return np.load(path, allow_pickle=False), None
    except (ValueError, OSError, EOFError) as exc:
        kind = path.suffix.lower()
        msg = f"data file '{path.name}' is not a numeric {kind} file ({exc})"
        raise DataError(msg) from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Features under key "X" (or the only array) and labels under "y" when present."""
    loaded = _read_npy(path)[0]
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded, None  # a plain .npy array saved under an .npz name
    with loaded as npz:
        keys = list(npz.files)
        if "X" not in keys and len(keys) != 1:
            listed = ", ".join(repr(k) for k in keys) or "no arrays"
            raise DataError(
                f"data file '{path.name}' holds {listed} and none is named 'X'; "
                "save the features under 'X' (np.savez(path, X=X, y=y))"
            )
        key = "X" if "X" in keys else keys[0]
        try:
            return npz[key], (npz["y"] if "y" in keys and key != "y" else None)
        except (ValueError, OSError, EOFError) as exc:
            msg = f"data file '{path.name}' is not a numeric .npz file ({exc})"
            raise DataError(msg) from None


def _read_csv(path: Path) -> tuple[np.ndarray, None]:
    """Comma-separated numbers; a first row of non-numbers only is a header.

    A first row mixing numbers and text is data with a typo, reported as such rather than
    silently dropped as a header.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows, lines = [], []
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines are skipped
                    rows.append(row)
                    lines.append(reader.line_num)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"data file '{path.name}' cannot be read as UTF-8 csv ({exc})") from None
    if not rows:
        raise DataError(f"data file '{path.name}' is empty")
    width = len(rows[0])
    if all(_bad_cell(cell) is not None for cell in rows[0]):
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise DataError(f"data file '{path.name}' has a header row but no data rows")
    for row, line in zip(rows, lines, strict=True):
        _check_csv_row(path, row, line, width)
    X = np.array(rows, dtype=np.float64)
    check_finite(X, f"data file '{path.name}'", lines)
    return X, None


def _check_csv_row(path: Path, row: list[str], line: int, width: int) -> None:
    if len(row) != width:
        raise DataError(
            f"data file '{path.name}' line {line} has {len(row)} value(s) but the first row "
            f"has {width}; every row needs the same number of comma-separated values"
        )
    for col, cell in enumerate(row, start=1):
        why = _bad_cell(cell)
        if why is not None:
            raise DataError(f"data file '{path.name}' line {line}, column {col} holds {why}")


def _bad_cell(cell: str) -> str | None:
    """None if ``cell`` is a number, else what is wrong with it."""
    try:
        float(cell)
        return None
    except ValueError:
        if not cell.strip():
            return "an empty cell; fill or drop missing values first"
        if ";" in cell or "\t" in cell:
            return f"{cell.strip()!r}, not a number; the file must be comma-separated"
        return f"{cell.strip()!r}, which is not a number; csv data must be numeric"


def _read_parquet(path: Path) -> tuple[np.ndarray, None]:
    try:
        columns = _parquet_columns(path)
    except ImportError:
        raise DataError(
            f"reading '{path.name}' needs pyarrow: pip install aekit[parquet]"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"data file '{path.name}' is not a readable parquet file ({exc})") from None
    if not columns:
        raise DataError(f"data file '{path.name}' has no columns")
    for name, col in columns.items():
        if col.dtype.kind not in "biuf":
            raise DataError(
                f"data file '{path.name}' column {name!r} is not numeric (dtype {col.dtype}); "
                "drop or encode it first"
            )
    return np.column_stack([c.astype(np.float64) for c in columns.values()]), None


def _parquet_columns(path: Path) -> dict[str, np.ndarray]:
    """Columns by name through pyarrow, else pandas; ImportError when neither is installed."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        import pandas as pd  # pandas reads parquet through fastparquet when pyarrow is absent

        df = pd.read_parquet(path)
        return {str(n): df[n].to_numpy() for n in df.columns}
    table = pq.read_table(path)  # nulls come back as NaN and are reported as non-finite
    return {n: c.to_numpy() for n, c in zip(table.column_names, table.columns, strict=True)}


READERS = {  # suffix -> reader(path) -> (X, labels or None)
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
    ".parquet": _read_parquet,
}
