"""Compare `bagstream merge` with lerobot 0.6.1's `aggregate_datasets` on the same shards.

Usage (with the lerobot-check venv's python, offline):
    python bench/merge_vs_lerobot.py aggregate OUT SHARD...   # run lerobot's aggregate_datasets
    python bench/merge_vs_lerobot.py compare BAGSTREAM LEROBOT # print the differences

`bench/merge_vs_lerobot.sh` builds the shards, runs both and writes the report; the findings
are in docs/scale.md, "Merge against lerobot's aggregate_datasets".
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def aggregate(out, shards):
    from lerobot.datasets.aggregate import aggregate_datasets

    aggregate_datasets(
        repo_ids=[f"local/shard{i}" for i in range(len(shards))],
        aggr_repo_id="local/merged",
        roots=[Path(s) for s in shards],
        aggr_root=Path(out),
    )


def read_all(root, sub):
    files = sorted((Path(root) / sub).rglob("*.parquet"))
    return files, pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def values(x):
    """A cell as a flat float array (lists, nested lists, numpy arrays, scalars)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        parts = [values(v) for v in x]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.array([float(x)])


def norm(x):
    """A cell as plain Python values, for ==."""
    if isinstance(x, np.ndarray):
        return [norm(v) for v in x.tolist()] if x.dtype == object else x.tolist()
    if isinstance(x, (list, tuple)):
        return [norm(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def max_rel(a, b):
    a, b = values(a), values(b)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    d = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
    d[a == b] = 0.0
    return float(d.max())


def compare_frames(name, a, b, out):
    cols_a, cols_b = list(a.columns), list(b.columns)
    if cols_a != cols_b:
        out.append(f"{name}: columns differ:\n  bagstream only {sorted(set(cols_a) - set(cols_b))}\n"
                   f"  lerobot only {sorted(set(cols_b) - set(cols_a))}\n  order same: "
                   f"{[c for c in cols_a if c in cols_b] == [c for c in cols_b if c in cols_a]}")
    if len(a) != len(b):
        out.append(f"{name}: {len(a)} rows (bagstream) vs {len(b)} (lerobot)")
        return
    for c in [c for c in cols_a if c in cols_b]:
        where = [i for i, (x, y) in enumerate(zip(a[c], b[c])) if norm(x) != norm(y)]
        if not where:
            continue
        first = f"first: bagstream {norm(list(a[c])[where[0]])!r} lerobot {norm(list(b[c])[where[0]])!r}"
        try:
            rel = max(max_rel(x, y) for x, y in zip(a[c], b[c]))
            how = f"max relative difference {rel:.3g}"
        except (TypeError, ValueError):
            how = "not numeric"
        out.append(f"{name}: column {c}: differs in rows {where[:8]}{'...' if len(where) > 8 else ''}, "
                   f"{how}; {first}")
    return


def frames_in(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames,codec_name", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)
    s = json.loads(r.stdout)["streams"][0]
    return int(s["nb_read_frames"]), s["codec_name"]


def compare(bs, lr):
    bs, lr = Path(bs), Path(lr)
    out = []
    dfa_files, dfa = read_all(bs, "data")
    dfb_files, dfb = read_all(lr, "data")
    out.append(f"data files: bagstream {[str(f.relative_to(bs)) for f in dfa_files]}, "
               f"lerobot {[str(f.relative_to(lr)) for f in dfb_files]}")
    compare_frames("data", dfa, dfb, out)
    import pyarrow.parquet as pq
    for name, files in (("bagstream", dfa_files), ("lerobot", dfb_files)):
        for f in files:
            md = pq.ParquetFile(f).metadata
            out.append(f"{name} {f.relative_to(bs if name == 'bagstream' else lr)}: "
                       f"{md.num_row_groups} row groups, rows per group "
                       f"{[md.row_group(i).num_rows for i in range(md.num_row_groups)]}, "
                       f"{f.stat().st_size} bytes")
    _, ea = read_all(bs, "meta/episodes")
    _, eb = read_all(lr, "meta/episodes")
    compare_frames("meta/episodes", ea, eb, out)
    ta, tb = pd.read_parquet(bs / "meta/tasks.parquet"), pd.read_parquet(lr / "meta/tasks.parquet")
    if not ta.equals(tb):
        out.append(f"tasks differ:\n{ta}\n{tb}")
    sa = json.loads((bs / "meta/stats.json").read_text())
    sb = json.loads((lr / "meta/stats.json").read_text())
    if set(sa) != set(sb):
        out.append(f"stats.json features differ: {sorted(set(sa) ^ set(sb))}")
    for feat in sa:
        if feat not in sb:
            continue
        for stat in sa[feat]:
            r = max_rel(sa[feat][stat], sb[feat].get(stat, []))
            if r != 0.0:
                out.append(f"stats.json {feat}/{stat}: max relative difference {r:.3g}")
    ia = json.loads((bs / "meta/info.json").read_text())
    ib = json.loads((lr / "meta/info.json").read_text())
    for k in sorted(set(ia) | set(ib)):
        if k == "features":
            for f in sorted(set(ia[k]) | set(ib[k])):
                if ia[k].get(f) != ib[k].get(f):
                    out.append(f"info.json features.{f}: bagstream {ia[k].get(f)} lerobot {ib[k].get(f)}")
        elif ia.get(k) != ib.get(k):
            out.append(f"info.json {k}: bagstream {ia.get(k)!r} lerobot {ib.get(k)!r}")
    for name, root in (("bagstream", bs), ("lerobot", lr)):
        for v in sorted((root / "videos").rglob("*.mp4")) if (root / "videos").exists() else []:
            n, codec = frames_in(v)
            out.append(f"{name} {v.relative_to(root)}: {n} frames ({codec}), {v.stat().st_size} bytes, "
                       f"{v.stat().st_nlink} links")
    # Each episode's decoded frames, where the episodes say they are.
    for key in [k for k, f in ia["features"].items() if f["dtype"] == "video"]:
        h, w = ia["features"][key]["shape"][:2]
        fps = ia["fps"]
        per = []
        for root, eps in ((bs, ea), (lr, eb)):
            cache, frames = {}, []
            for _, e in eps.iterrows():
                rel = ia["video_path"].format(video_key=key, chunk_index=e[f"videos/{key}/chunk_index"],
                                              file_index=e[f"videos/{key}/file_index"])
                if rel not in cache:
                    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(root / rel), "-f", "rawvideo",
                                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
                    cache[rel] = [raw[i:i + w * h * 3] for i in range(0, len(raw), w * h * 3)]
                lo = round(e[f"videos/{key}/from_timestamp"] * fps)
                frames.append(cache[rel][lo:lo + e["length"]])
            per.append(frames)
        same = [a == b for a, b in zip(*per)]
        out.append(f"videos {key}: decoded frames of each episode identical: {same}")
    extra_a = sorted(str(p.relative_to(bs)) for p in bs.rglob("*") if p.is_file() and "meta" in p.parts)
    extra_b = sorted(str(p.relative_to(lr)) for p in lr.rglob("*") if p.is_file() and "meta" in p.parts)
    out.append(f"meta files: bagstream only {sorted(set(extra_a) - set(extra_b))}, "
               f"lerobot only {sorted(set(extra_b) - set(extra_a))}")
    print("\n".join(out))


if __name__ == "__main__":
    if sys.argv[1] == "aggregate":
        aggregate(sys.argv[2], sys.argv[3:])
    else:
        compare(sys.argv[2], sys.argv[3])
