#!/usr/bin/env python3
"""What the independent `rosbags` package reads from every MCAP file of ../shared/bags.

Per file, per topic: type, message encoding, message count, first and last log time, and a
SHA-256 over the topic's messages in (log time, file) order, each message hashed as its log
time (8 bytes, little-endian) followed by its raw data bytes. tests/mcap_reader.rs computes the
same with bagstream's MCAP reader (whole file and windows) and compares:
tests/reference/mcap_reference.json. Only counts, times and hashes are stored, not the bags'
bytes.

    python3 tests/reference/make_mcap_reference.py [../shared/bags]   # from the repository root
"""

import hashlib
import json
import os
import sys
from pathlib import Path

from rosbags.rosbag2.storage_mcap import McapReader

DIRS = ["rerun", "rosbag2", "synthetic"]


def files(bags):
    out = []
    for d in DIRS:
        for p in sorted((bags / d).rglob("*.mcap")):
            rel = p.relative_to(bags).as_posix()
            # synthetic/: only the ROS 2 MCAP sets.
            if rel.startswith("synthetic/") and not rel.startswith("synthetic/ros2_mcap"):
                continue
            out.append(rel)
    return out


def read(path):
    topics = {}
    # rosbags' MCAP storage reader, below its type store (which cannot parse the service
    # definitions of some rosbag2 files, and is not needed for raw bytes).
    reader = McapReader(path)
    reader.open()
    try:
        # Merged by log time across chunks in file order, by (log time, offset) in one.
        for conn, stamp, raw in reader.messages(reader.connections):
            t = topics.setdefault(
                conn.topic,
                {
                    "type": conn.msgtype,
                    "encoding": conn.ext.serialization_format,
                    "msgs": [],
                },
            )
            t["msgs"].append((stamp, bytes(raw)))
    finally:
        reader.close()
    out = {}
    for name, t in topics.items():
        msgs = sorted(t["msgs"], key=lambda m: m[0])  # stable: ties keep rosbags' order
        h = hashlib.sha256()
        for stamp, raw in msgs:
            h.update(stamp.to_bytes(8, "little"))
            h.update(raw)
        out[name] = {
            "type": t["type"],
            "encoding": t["encoding"],
            "count": len(msgs),
            "first": msgs[0][0],
            "last": msgs[-1][0],
            "sha256": h.hexdigest(),
        }
    return out


def main():
    bags = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/bags")
    out = {}
    for rel in files(bags):
        try:
            out[rel] = read(bags / rel)
        except Exception as e:  # noqa: BLE001 (recorded: the Rust test skips such files)
            out[rel] = {"error": f"{type(e).__name__}: {e}"}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mcap_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    n = sum(t["count"] for b in out.values() if "error" not in b for t in b.values())
    print(f"{n} messages of {len(out)} files -> {path}")


if __name__ == "__main__":
    main()
