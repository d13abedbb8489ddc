#!/usr/bin/env python3
"""`make bench`: the four tables of docs/benchmarks.md, measured on this machine.

1. peak RSS against bag length at a fixed chunk size (1x and 4x the length; 1x, 4x and 16x for
   uncompressed bags of two raw cameras);
2. peak RSS and throughput against chunk size (`bagstream sweep`);
3. throughput against the floors: reading the bag (warm page cache) for a tabular config,
   ffmpeg alone encoding as many frames for a video config;
4. bagstream against a Python baseline written the way users do it today.

Whole-process figures come from `/usr/bin/time -v` (its maximum RSS counts the ffmpeg
children too); the converter's own peak comes from `convert --summary-json`. Bags are
generated once into $BENCH_DIR (default out/bench) by examples/make_bench_bag.rs and reused.
Environment knobs (seconds of recording): BENCH_SECONDS (1x bag, default 290: 1 GB, so that 4x is 4 GB),
BENCH_VIDEO_SECONDS (bag for the video rows, default 60), BENCH_BASELINE_SECONDS (default 30),
BENCH_SKIP_BASELINE=1 to leave table 4 out, BENCH_TABLES=1,3 to run only some tables (5: --jobs 1
against --jobs 2 on BENCH_JOBS_TABULAR small tabular bags (default 100) and 8 camera bags, and 200
small bags through 4 shards and a merge),
BENCH_TABLE1=tabular,video,raw,mcap the row groups of table 1 (raw: uncompressed bags written with
`rosbags` by bench/make_raw_camera_bag.py, BENCH_RAW_SECONDS for the 1x bag, default 15;
skipped when ../shared is absent; mcap, sqlite3: the tabular bags converted to rosbag2 MCAP
and sqlite3 by `rosbags-convert`),
BENCH_REPEAT (default 5): runs of the tabular conversion and of `cat` in table 3, the best of
each kept; BENCH_FLOORS=tabular leaves table 3's video row out. Results: $BENCH_DIR/results.md.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_DIR", ROOT / "out" / "bench")).resolve()
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()
BIN = TARGET / "release" / "bagstream"
GEN = TARGET / "release" / "examples" / "make_bench_bag"
S1 = int(os.environ.get("BENCH_SECONDS", "290"))
SV = int(os.environ.get("BENCH_VIDEO_SECONDS", "60"))
SB = int(os.environ.get("BENCH_BASELINE_SECONDS", "30"))
VENV_PY = Path(os.environ.get("LEROBOT_VENV", Path.home() / ".cache/lerobot-0.6.1-venv")) / "bin/python"
TABLES = {int(t) for t in os.environ.get("BENCH_TABLES", "1,2,3,4,5").split(",")}
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
SR = int(os.environ.get("BENCH_RAW_SECONDS", "15"))
TABLE1 = set(os.environ.get("BENCH_TABLE1", "tabular,video,raw,mcap,sqlite3").split(","))
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared")).resolve()
TABULAR = ROOT / "bench" / "tabular.yaml"
VIDEO = ROOT / "bench" / "teleop-bench.yaml"
RAW = ROOT / "bench" / "raw-cameras.yaml"


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log(" ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def timed(cmd):
    """Wall seconds and maximum RSS (bytes) of `cmd` by /usr/bin/time -v."""
    report = OUT / "time.txt"
    start = time.monotonic()
    run(["/usr/bin/time", "-v", "-o", report, *cmd], stdout=subprocess.DEVNULL)
    wall = time.monotonic() - start
    text = report.read_text()
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return wall, kb * 1024


def bag(seconds):
    path = OUT / f"teleop-{seconds}s.bag"
    if not path.exists():
        run([GEN, "--out", path, "--seconds", seconds])
    return path


def raw_bag(seconds):
    """An uncompressed bag of two raw cameras and joint states, by the `rosbags` writer."""
    path = OUT / f"raw-cameras-{seconds}s.bag"
    if not path.exists():
        run([sys.executable, ROOT / "bench" / "make_raw_camera_bag.py", "--out", path,
             "--seconds", seconds, "--shared", SHARED])
    return path


def rosbag2_bag(seconds, storage):
    """The ROS1 bench bag of `seconds` as a rosbag2 directory of `storage` (mcap: CDR messages,
    uncompressed chunks, as `ros2 bag record` writes by default; sqlite3), converted by the
    independent `rosbags-convert`."""
    path = OUT / f"teleop-{seconds}s-{storage}"
    if not (path / "metadata.yaml").exists():
        shutil.rmtree(path, ignore_errors=True)
        run([shutil.which("rosbags-convert") or "rosbags-convert", "--src", bag(seconds),
             "--dst", path, "--dst-storage", storage])
    return path


def mcap_bag(seconds):
    return rosbag2_bag(seconds, "mcap")


def sqlite3_bag(seconds):
    return rosbag2_bag(seconds, "sqlite3")


def size_of(path):
    """Bytes of a bag file, or of every file of a rosbag2 directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return path.stat().st_size


def convert(config, bag_path, chunk=1.0, extra=()):
    """(wall s, /usr/bin/time max RSS, summary json) of one conversion."""
    out = OUT / "dataset"
    summary = OUT / "summary.json"
    shutil.rmtree(out, ignore_errors=True)
    wall, rss = timed([BIN, "convert", "-q", "--config", config, "--out", out,
                       "--chunk-secs", chunk, "--summary-json", summary, *extra, bag_path])
    s = json.loads(summary.read_text())
    shutil.rmtree(out, ignore_errors=True)
    return wall, rss, s


def estimate(config, bag_path, chunk=1.0):
    """The converter's peak as `--max-rss` estimates it from the index: a budget of one byte is
    always refused, and the refusal quotes the estimate."""
    r = subprocess.run([str(BIN), "convert", "-q", "--config", str(config), "--out", str(OUT / "refused"),
                        "--chunk-secs", str(chunk), "--max-rss", "1", str(bag_path)],
                       capture_output=True, text=True)
    m = re.search(r"estimated peak memory ([0-9.]+) (B|KiB|MiB|GiB)", r.stderr)
    if not m:
        raise SystemExit(f"no estimate in: {r.stderr}")
    return float(m.group(1)) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[m.group(2)]


def tree(label, cmd):
    """(wall s, peak PSS of the whole process tree, peak RSS of its largest process) by
    bench/measure.py: lerobot encodes in a pool of processes, bagstream in ffmpeg children."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "measure.py"), "--label", label, "--",
                        *[str(c) for c in cmd]], capture_output=True, text=True)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr
    m = re.search(r"wall ([0-9.]+) s, peak tree PSS ([0-9.]+) MiB, peak process RSS ([0-9.]+) MiB, exit (\d+)", line)
    if not m or m.group(4) != "0":
        raise SystemExit(f"{label} failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    return float(m.group(1)), float(m.group(2)) * 2**20, float(m.group(3)) * 2**20


def mb(b):
    """Binary, as bagstream prints sizes (docs/memory.md, Sizes)."""
    return f"{b / 2**20:.1f} MiB"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.0f} GiB RAM, {platform.platform()}, {ffmpeg}"


def peak_against_length(md):
    """1. Peak RSS against bag length."""
    rows = []
    groups = [("tabular", "tabular", TABULAR, bag, S1, (1, 4)),
              ("video", "video (3 cameras)", VIDEO, bag, SV, (1, 4)),
              ("raw", "uncompressed, 2 raw cameras", RAW, raw_bag, SR, (1, 4, 16)),
              ("mcap", "tabular, rosbag2 MCAP", TABULAR, mcap_bag, S1, (1, 4)),
              ("sqlite3", "tabular, rosbag2 sqlite3", TABULAR, sqlite3_bag, S1, (1, 4))]
    for key, name, config, make, base, lengths in groups:
        if key not in TABLE1:
            continue
        if key in ("mcap", "sqlite3") and not shutil.which("rosbags-convert"):
            log("table 1: no rosbags-convert (pip install rosbags), the MCAP rows are left out")
            continue
        if key == "raw" and not (SHARED / "tools" / "make_teleop_bag.py").exists():
            log(f"table 1: no {SHARED}/tools/make_teleop_bag.py, the uncompressed rows are left out")
            continue
        peaks = []
        for k in lengths:
            b = make(base * k)
            est = estimate(config, b)
            wall, rss, s = convert(config, b)
            peaks.append(s["peak_rss"])
            rows.append([name, f"{base * k} s", mb(size_of(b)), s["frames"], f"{wall:.1f}",
                         mb(s["peak_rss"]), mb(s["end_anon"]), mb(est), mb(rss)])
        for k, p in zip(lengths[1:], peaks[1:]):
            rows.append([name, f"{k}x / 1x", "", "", "", f"{p / peaks[0]:.3f}", "", "", ""])
    md.append("\n### 1. Peak RSS against bag length (--chunk-secs 1)\n\n")
    md.append(table(["config", "recording", "bag", "frames", "wall s", "converter peak RSS",
                     "anon at end", "--max-rss estimate", "/usr/bin/time max RSS (largest process)"], rows))



def sweeps(md):
    """2. Chunk size sweep (tabular on the 1x bag, video on the video bag)."""
    md.append("\n### 2. Peak RSS and throughput against chunk size (`bagstream sweep`)\n")
    for name, config, b in [("tabular", TABULAR, bag(S1)), ("video (3 cameras)", VIDEO, bag(SV))]:
        plot = OUT / f"sweep-{name.split()[0]}.svg"
        out = run([BIN, "sweep", "--config", config, "--chunk-secs", "0.25,0.5,1,2,4", "--plot", plot, b],
                  capture_output=True, text=True).stdout
        md.append(f"\n{name}, {b.name} (`bagstream sweep --config {config.relative_to(ROOT)} "
                  f"--chunk-secs 0.25,0.5,1,2,4 {b.name}`):\n\n```text\n{out}```\n")



def _timed_cat(files):
    start = time.monotonic()
    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def floors(md):
    """3. Throughput against the floors."""
    b = bag(S1)
    # Both figures are the best of REPEAT runs from a warm page cache: on 2 cores a single run
    # varies by a factor of 2 with whatever else the machine does.
    subprocess.run(["cat", b], stdout=subprocess.DEVNULL)  # warm the page cache
    floors = []
    for _ in range(REPEAT):
        start = time.monotonic()
        subprocess.run(["cat", b], stdout=subprocess.DEVNULL)
        floors.append(time.monotonic() - start)
    floor = min(floors)
    wall = min(convert(TABULAR, b)[0] for _ in range(REPEAT))
    size = b.stat().st_size
    rows = [["tabular", b.name, f"`cat` {floor:.2f} s ({size / 2**20 / floor:.0f} MiB/s)",
             f"{wall:.2f} s ({size / 2**20 / wall:.0f} MiB/s)", f"{floor / wall:.2f}", ">= 0.50"]]
    rows[0][2] += f", best of {REPEAT}"
    rows[0][3] += f", best of {REPEAT}"
    for storage in (["mcap", "sqlite3"] if shutil.which("rosbags-convert") else []):
        # The same recording as a rosbag2 directory: the floor is reading its files.
        mb_dir = rosbag2_bag(S1, storage)
        files = sorted(p for p in mb_dir.iterdir() if p.name != "metadata.yaml")
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL)
        mfloor = min(_timed_cat(files) for _ in range(REPEAT))
        mwall = min(convert(TABULAR, mb_dir)[0] for _ in range(REPEAT))
        msize = size_of(mb_dir)
        rows.append([f"tabular, rosbag2 {'MCAP' if storage == 'mcap' else storage}", mb_dir.name,
                     f"`cat` {mfloor:.2f} s ({msize / 2**20 / mfloor:.0f} MiB/s), best of {REPEAT}",
                     f"{mwall:.2f} s ({msize / 2**20 / mwall:.0f} MiB/s), best of {REPEAT}",
                     f"{mfloor / mwall:.2f}", ">= 0.50"])
    if os.environ.get("BENCH_FLOORS", "tabular,video").split(",").count("video") == 0:
        md.append("\n### 3. Against the floors\n\n")
        md.append(table(["config", "bag", "floor", "bagstream", "ratio", "target"], rows))
        return
    vb = bag(SV)
    wall, _, s = convert(VIDEO, vb)
    frames = s["frames"]
    # The encode floor encodes the same pictures: each camera's frames, decoded once from a
    # conversion's video into raw rgb24 (outside the timing, read from the page cache), fed to
    # one ffmpeg per camera with the converter's encoder settings, all three at once.
    out = OUT / "dataset-floor"
    shutil.rmtree(out, ignore_errors=True)
    run([BIN, "convert", "-q", "--config", VIDEO, "--out", out, vb], stdout=subprocess.DEVNULL)
    raws = []
    for video in sorted(out.glob("videos/*/chunk-000/file-000.mp4")):
        raw = OUT / f"floor-{video.parent.parent.name}.rgb"
        run(["ffmpeg", "-v", "error", "-y", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", raw])
        raws.append(raw)
    shutil.rmtree(out, ignore_errors=True)
    for raw in raws:
        subprocess.run(["cat", raw], stdout=subprocess.DEVNULL)
    start = time.monotonic()
    procs = [subprocess.Popen(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                               "-s", "640x480", "-r", "30", "-i", str(raw),
                               "-c:v", "libsvtav1", "-g", "2", "-crf", "30", "-preset", "12",
                               "-pix_fmt", "yuv420p", "-y", str(OUT / f"floor-{i}.mp4")])
             for i, raw in enumerate(raws)]
    for p in procs:
        p.wait()
    enc = time.monotonic() - start
    for raw in raws:
        raw.unlink()
    rows.append(["video (3 cameras)", vb.name,
                 f"{len(raws)} x ffmpeg alone on the same {frames} frames (raw rgb24): {enc:.1f} s",
                 f"{wall:.1f} s", f"{wall / enc:.2f}", "<= 1.15"])
    md.append("\n### 3. Against the floors\n\n")
    md.append(table(["config", "bag", "floor", "bagstream", "ratio", "target"], rows))



def baseline(md):
    """4. Against the Python baseline."""
    if os.environ.get("BENCH_SKIP_BASELINE") != "1":
        b = bag(SB)
        out = OUT / "dataset"
        shutil.rmtree(out, ignore_errors=True)
        wall, pss, rss = tree("bagstream", [BIN, "convert", "-q", "--config", VIDEO, "--out", out, b])
        frames = json.loads((out / "meta" / "info.json").read_text())["total_frames"]
        shutil.rmtree(out, ignore_errors=True)
        out = OUT / "baseline-dataset"
        shutil.rmtree(out, ignore_errors=True)
        bwall, bpss, brss = tree("baseline", [VENV_PY, ROOT / "bench" / "baseline_lerobot.py", b, out, "--fps", "30"])
        bframes = json.loads((out / "meta" / "info.json").read_text())["total_frames"]
        shutil.rmtree(out, ignore_errors=True)
        md.append("\n### 4. Against a Python baseline (rosbags + numpy + LeRobotDataset.add_frame)\n\n")
        md.append(table(["converter", "bag", "frames", "wall s", "peak PSS of the process tree",
                         "peak RSS of the largest process"], [
            ["bagstream", b.name, frames, f"{wall:.1f}", mb(pss), mb(rss)],
            ["Python baseline", b.name, bframes, f"{bwall:.1f}", mb(bpss), mb(brss)],
            ["ratio baseline / bagstream", "", "", f"{bwall / wall:.1f}x", f"{bpss / pss:.1f}x",
             f"{brss / rss:.1f}x"],
        ]))


def small_bags(n, seconds, cameras, tag):
    """`n` copies-in-kind of a short bench bag (each written once: the generator is
    deterministic, so the copies are the same recording; they count as separate inputs)."""
    d = OUT / f"small-{tag}"
    d.mkdir(parents=True, exist_ok=True)
    first = d / "bag-0000.bag"
    if not first.exists():
        run([GEN, "--out", first, "--seconds", seconds, "--cameras", cameras, "--width", "320",
             "--height", "240"])
    bags = [first]
    for i in range(1, n):
        b = d / f"bag-{i:04d}.bag"
        if not b.exists():
            shutil.copyfile(first, b)
        bags.append(b)
    return bags


def jobs_and_shards(md):
    """5. --jobs 1 against --jobs 2, and shards + merge (issue 12)."""
    rows = []
    for label, config, bags in [
        ("tabular", TABULAR, small_bags(int(os.environ.get("BENCH_JOBS_TABULAR", "100")), 10, 1, "tabular")),
        ("cameras (3 x 320x240, AV1)", VIDEO, small_bags(8, 10, 3, "cameras")),
    ]:
        lst = OUT / f"list-{len(bags)}.txt"
        lst.write_text("".join(f"{b}\n" for b in bags))
        walls = {}
        for jobs in (1, 2):
            out = OUT / "dataset-jobs"
            shutil.rmtree(out, ignore_errors=True)
            best = None
            for _ in range(min(REPEAT, 3)):
                shutil.rmtree(out, ignore_errors=True)
                wall, rss = timed([BIN, "convert", "-q", "--config", config, "--out", out,
                                   "--bags-from", lst, "--jobs", jobs])
                best = (wall, rss) if best is None or wall < best[0] else best
            shutil.rmtree(out, ignore_errors=True)
            walls[jobs] = best
        rows.append([label, len(bags), f"{walls[1][0]:.2f} s", mb(walls[1][1]),
                     f"{walls[2][0]:.2f} s", mb(walls[2][1]), f"{walls[1][0] / walls[2][0]:.2f}x"])
    md.append("\n### 5. Many bags: --jobs 1 against --jobs 2 (best of 3; peak RSS of the converter "
              "process, encoders apart)\n\n")
    md.append(table(["bags", "count", "--jobs 1", "peak RSS", "--jobs 2", "peak RSS", "speed-up"], rows))
    # 200 small bags through 4 shards and a merge.
    bags = small_bags(200, 5, 1, "shards")
    lst = OUT / "list-shards.txt"
    lst.write_text("".join(f"{b}\n" for b in bags))
    shards = []
    for i in range(4):
        sd = OUT / f"shard-{i}"
        shutil.rmtree(sd, ignore_errors=True)
        run([BIN, "convert", "-q", "--config", TABULAR, "--out", sd, "--bags-from", lst,
             "--shard", f"{i}/4"], stdout=subprocess.DEVNULL)
        shards.append(sd)
    merged = OUT / "merged"
    shutil.rmtree(merged, ignore_errors=True)
    wall, rss = timed([BIN, "merge", "-q", "--out", merged, *shards])
    size = sum(p.stat().st_size for p in merged.rglob("*") if p.is_file())
    md.append("\n200 bags of 5 s (tabular) in 4 shards, then `bagstream merge`:\n\n")
    md.append(table(["episodes", "dataset size", "merge wall", "merge peak RSS"],
                    [[200, mb(size), f"{wall:.2f} s", mb(rss)]]))
    for d in [*shards, merged]:
        shutil.rmtree(d, ignore_errors=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    run(["cargo", "build", "--release", "--bin", "bagstream", "--example", "make_bench_bag"], cwd=ROOT)
    md = [f"Machine: {machine()}\n", f"Commands: `make bench` (bench/bench.py), BENCH_SECONDS={S1}, "
          f"BENCH_VIDEO_SECONDS={SV}, BENCH_BASELINE_SECONDS={SB}, BENCH_RAW_SECONDS={SR}, "
          f"BENCH_TABLES={','.join(map(str, sorted(TABLES)))}, BENCH_TABLE1={','.join(sorted(TABLE1))}\n"]
    for number, step in [(1, peak_against_length), (2, sweeps), (3, floors), (4, baseline),
                         (5, jobs_and_shards)]:
        if number in TABLES:
            step(md)
    (OUT / "results.md").write_text("".join(md))
    print("".join(md))


if __name__ == "__main__":
    main()
