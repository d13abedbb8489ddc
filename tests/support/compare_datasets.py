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
    files apart, or join them; instead, each episode's span in its video (to - from) must
    be the same, and the video file it names must exist;
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


class Absent:
    def __repr__(self):
        return "(absent)"


ABSENT = Absent()


def first_difference(x, y, path: str):
    """The path and the two values of the first place where x and y differ, or None."""
    if isinstance(x, dict) and isinstance(y, dict):
        for k in list(x) + [k for k in y if k not in x]:
            d = first_difference(x.get(k, ABSENT), y.get(k, ABSENT), f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (a, b) in enumerate(zip(x, y)):
            d = first_difference(a, b, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if same(x, y) else (path, x, y)


def compare_info(a: dict, b: dict):
    keys = sorted({k for k in a if k.startswith("total_")} | {k for k in b if k.startswith("total_")})
    for key in keys + list(INFO_KEYS):
        d = first_difference(a.get(key, ABSENT), b.get(key, ABSENT), key)
        if d:
            raise Different(f"meta/info.json: `{d[0]}` is {d[1]!r} in expected, {d[2]!r} in actual")


def compare_video_spans(a: pa.Table, b: pa.Table, actual: Path, video_path: str):
    """Each episode's span in each of its videos, and the actual video files being there."""
    keys = sorted({m.group(0)[len("videos/"):-len("/from_timestamp")] for name in a.column_names
                   if (m := re.match(r"^videos/.+/from_timestamp$", name))})
    for key in keys:
        def span(t, i, key=key):
            return t.column(f"videos/{key}/to_timestamp")[i].as_py() - t.column(f"videos/{key}/from_timestamp")[i].as_py()

        for i in range(a.num_rows):
            if abs(span(a, i) - span(b, i)) > 1e-6:
                raise Different(f"meta/episodes: `{key}`, {describe_row(a, i)}: the episode spans "
                                f"{span(a, i)} s of its video in expected, {span(b, i)} s in actual")
            chunk = b.column(f"videos/{key}/chunk_index")[i].as_py()
            file = b.column(f"videos/{key}/file_index")[i].as_py()
            path = actual / video_path.format(video_key=key, chunk_index=chunk, file_index=file)
            if not path.is_file():
                raise Different(f"meta/episodes: `{key}`, {describe_row(b, i)}: its video {path} is missing")


def compare(expected: Path, actual: Path):
    with open(expected / "meta/info.json") as f:
        info_a = json.load(f)
    with open(actual / "meta/info.json") as f:
        info_b = json.load(f)
    compare_info(info_a, info_b)
    compare_tables("meta/tasks.parquet", pq.read_table(expected / "meta/tasks.parquet").replace_schema_metadata(None),
                   pq.read_table(actual / "meta/tasks.parquet").replace_schema_metadata(None))
    episodes_a = read_parquet_dir(expected / "meta/episodes", "episodes")
    episodes_b = read_parquet_dir(actual / "meta/episodes", "episodes")
    compare_tables("meta/episodes", episodes_a, episodes_b, skip=lambda name: bool(VIDEO_LOCATION.match(name)))
    if info_b.get("video_path"):
        compare_video_spans(episodes_a, episodes_b, actual, info_b["video_path"])
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
