#!/usr/bin/env python3
"""Every rosbag2 bag of ../shared/bags as the independent `rosbags` package reads it.

For each rosbag2 directory (metadata.yaml) and each bare .db3 file under ../shared/bags:
the topics (name, type, serialization format, message count as counted while reading) and,
per topic, the first and last receive timestamp and a sha256 over the topic's messages in
timestamp order (ties in the order rosbags yields them: file order, then row order), each
message contributing its timestamp as 8 little-endian bytes and then its raw data
(decompressed, for per-message and whole-file zstd). Written to
tests/reference/rosbag2_reference.json; tests/rosbag2_reader.rs reads the same bags with
bagstream and compares. Only counts and digests are stored here, not the bags' bytes.

    pip install rosbags
    python3 tests/reference/make_rosbag2_reference.py [../shared/bags]   # from the repo root
"""

import hashlib
import json
import sys
from pathlib import Path

from rosbags.rosbag2 import Reader


def bags_under(root):
    dirs = sorted(p.parent for p in root.rglob("metadata.yaml"))
    files = sorted(
        p for p in root.rglob("*.db3") if not (p.parent / "metadata.yaml").exists()
    )
    return dirs + files


def storage_of(path):
    names = [p.name for p in path.iterdir()] if path.is_dir() else [path.name]
    return "mcap" if any(".mcap" in n for n in names) else "sqlite3"


def read_messages(paths):
    """(connections by key, messages by key) over `paths` read one after another."""
    per = {}
    conns = {}
    for path in paths:
        with Reader(path) as reader:
            for c in reader.connections:
                conns.setdefault((c.topic, c.msgtype, c.ext.serialization_format), c)
            for c, t, data in reader.messages():
                key = (c.topic, c.msgtype, c.ext.serialization_format)
                per.setdefault(key, []).append((t, bytes(data)))
    return conns, per


def read(path):
    conns, per = read_messages([path])
    note = None
    plain = sorted([*path.glob("*.db3"), *path.glob("*.mcap")]) if path.is_dir() else []
    if plain and "compression_mode: MESSAGE" not in (path / "metadata.yaml").read_text().replace(
        "message", "MESSAGE"
    ):
        # rosbags' directory reader keeps only the rows whose topic matches metadata.yaml's
        # entry in QoS and type hash too; where that drops rows (the files of sqlite3_talker
        # and mcap_talker have other QoS than their metadata.yaml), each file is read on its
        # own instead.
        fconns, fper = read_messages(plain)
        if sum(map(len, fper.values())) > sum(map(len, per.values())):
            conns, per = fconns, fper
            note = "read file by file: the directory reader dropped rows (QoS differs)"
    topics = []
    for key, c in conns.items():
        msgs = per.get(key, [])
        msgs.sort(key=lambda m: m[0])  # stable: ties keep rosbags' order
        h = hashlib.sha256()
        for t, data in msgs:
            h.update(t.to_bytes(8, "little", signed=True))
            h.update(data)
        topics.append(
            {
                "name": c.topic,
                "type": c.msgtype,
                "serialization_format": c.ext.serialization_format,
                "count": len(msgs),
                "first": msgs[0][0] if msgs else None,
                "last": msgs[-1][0] if msgs else None,
                "sha256": h.hexdigest(),
            }
        )
    topics.sort(key=lambda t: (t["name"], t["type"]))
    out = {
        "storage": storage_of(path),
        "message_count": sum(len(v) for v in per.values()),
        "topics": topics,
    }
    if note:
        out["note"] = note
    return out


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/bags")
    out = {}
    for path in bags_under(root):
        rel = path.relative_to(root).as_posix()
        # rosbag2's own ROS 1 test bags live beside its rosbag2 ones; they are not rosbag2.
        if rel.startswith("rosbag2/ros1_bags"):
            continue
        try:
            out[rel] = read(path)
        except Exception as e:  # noqa: BLE001 - recorded, the Rust test then skips the bag
            out[rel] = {"error": f"{type(e).__name__}: {e}"}
        print(rel, out[rel].get("message_count", out[rel].get("error")), file=sys.stderr)
    dest = Path(__file__).with_name("rosbag2_reference.json")
    dest.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
