#!/usr/bin/env python3
"""Compare two LeRobot v3.0 datasets as a reader of them sees them.

    compare_datasets.py EXPECTED ACTUAL

Used by the engine tests (tests/slurm, tests/datatrove) to check that a sharded conversion
merged into one dataset equals a one-run conversion of the same bags. The two may be laid out
in other files, so rows are compared, not files:
  - data: the rows of every data file (in file order), every column, value by value;
  - meta/tasks.parquet: every task and its index;
  - meta/episodes: every column but where each episode's video sits (the `videos/KEY/...`
    chunk and file indexes and from/to timestamps): a merge may keep each shard's video
    files apart, or join them;
  - meta/info.json: the totals, fps, robot type and features.
Videos are not decoded. Prints the first difference and exits 1; exits 0 when the datasets are
the same, 2 when one cannot be read.
"""

import json
import math
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Where an episode's frames sit in the video files: the layout, not the content.
VIDEO_LOCATION = re.compile(r"^videos/.+/(chunk_index|file_index|from_timestamp|to_timestamp)$")
INFO_KEYS = ("fps", "robot_type", "features", "codebase_version")
BATCH = 4096


class Different(Exception):
    pass


def same(x, y):
    """Equal values, NaN equal to NaN (a float column may hold NaN in both datasets)."""
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y))
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    return x == y


def read_parquet_dir(root: Path, what: str) -> pa.Table:
    files = sorted(root.rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{root}: no parquet file ({what})")
    tables = [pq.read_table(f) for f in files]
    # Each file has its own schema metadata; the rows are what matter.
    tables = [t.replace_schema_metadata(None) for t in tables]
    return pa.concat_tables(tables)


def describe_row(table: pa.Table, row: int) -> str:
    names = table.column_names
    if "episode_index" in names and "frame_index" in names:
        ep = table.column("episode_index")[row].as_py()
        fr = table.column("frame_index")[row].as_py()
        return f"row {row} (episode {ep}, frame {fr})"
    if "episode_index" in names:
        return f"row {row} (episode {table.column('episode_index')[row].as_py()})"
    return f"row {row}"


def compare_tables(what: str, a: pa.Table, b: pa.Table, skip=lambda name: False):
    cols_a = [c for c in a.column_names if not skip(c)]
    cols_b = [c for c in b.column_names if not skip(c)]
    if cols_a != cols_b:
        only_a = [c for c in cols_a if c not in cols_b]
        only_b = [c for c in cols_b if c not in cols_a]
        raise Different(
            f"{what}: columns differ: only in expected {only_a}, only in actual {only_b}"
            if only_a or only_b
            else f"{what}: columns in another order: {cols_a} against {cols_b}"
        )
    if a.num_rows != b.num_rows:
        raise Different(f"{what}: {a.num_rows} rows in expected, {b.num_rows} in actual")
    for name in cols_a:
        ta, tb = a.schema.field(name).type, b.schema.field(name).type
        if ta != tb:
            raise Different(f"{what}: column `{name}` is {ta} in expected, {tb} in actual")
        ca, cb = a.column(name), b.column(name)
        if ca.equals(cb):
            continue
        # Arrow's equality treats NaN as different from itself; find the first real difference.
        for start in range(0, a.num_rows, BATCH):
            va = ca.slice(start, BATCH).to_pylist()
            vb = cb.slice(start, BATCH).to_pylist()
            for k, (x, y) in enumerate(zip(va, vb)):
                if not same(x, y):
                    row = start + k
                    raise Different(
                        f"{what}: column `{name}`, {describe_row(a, row)}: {x!r} in expected, {y!r} in actual"
                    )


def compare_info(a: dict, b: dict):
    keys = sorted({k for k in a if k.startswith("total_")} | {k for k in b if k.startswith("total_")})
    for key in keys + list(INFO_KEYS):
        if not same(a.get(key), b.get(key)):
            raise Different(f"meta/info.json: `{key}` is {a.get(key)!r} in expected, {b.get(key)!r} in actual")


def compare(expected: Path, actual: Path):
    with open(expected / "meta/info.json") as f:
        info_a = json.load(f)
    with open(actual / "meta/info.json") as f:
        info_b = json.load(f)
    compare_info(info_a, info_b)
    compare_tables("meta/tasks.parquet", pq.read_table(expected / "meta/tasks.parquet").replace_schema_metadata(None),
                   pq.read_table(actual / "meta/tasks.parquet").replace_schema_metadata(None))
    compare_tables("meta/episodes", read_parquet_dir(expected / "meta/episodes", "episodes"),
                   read_parquet_dir(actual / "meta/episodes", "episodes"),
                   skip=lambda name: bool(VIDEO_LOCATION.match(name)))
    data = read_parquet_dir(expected / "data", "data")
    compare_tables("data", data, read_parquet_dir(actual / "data", "data"))
    return info_a.get("total_episodes"), data.num_rows


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    expected, actual = Path(argv[1]), Path(argv[2])
    try:
        episodes, rows = compare(expected, actual)
    except Different as d:
        print(f"{expected} and {actual} differ: {d}")
        return 1
    except (OSError, ValueError, pa.ArrowException) as e:
        print(f"cannot compare {expected} and {actual}: {e}", file=sys.stderr)
        return 2
    print(f"{actual}: same as {expected} ({episodes} episodes, {rows} data rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
