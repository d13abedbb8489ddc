#!/usr/bin/env python3
"""Every message of every ROS 2 bag of ../shared/bags, decoded by the independent `rosbags`
package: per bag and topic, the message count, the field paths compared (every path of the
first message's entries outside arrays of messages, as make_cdr_vectors.py names them) and an
FNV-1a 64 digest over all messages in order of, for each path, its numbers as little-endian
float32 or its string's UTF-8 bytes. tests/ros2_all_values.rs decodes the same messages with
bagstream's readers and decoders and computes the same digest. Only digests are stored.

    python3 tests/reference/make_ros2_digests.py [../shared/bags]   # from the repository root
"""

import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cdr_vectors import entries  # noqa: E402

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def f32_bytes(values):
    out = bytearray()
    for v in values:
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, int):
            # A direct integer -> float32 conversion, as Rust's `as f32` rounds.
            f = np.array([v], dtype=np.uint64 if v >= 0 else np.int64).astype(np.float32)[0]
        else:
            f = np.float32(v)
        out += struct.pack("<f", float(f))
    return bytes(out)


def inputs(bags):
    """Every rosbag2 directory, and every MCAP or sqlite3 file outside one."""
    dirs = sorted(p.parent for p in bags.rglob("metadata.yaml"))
    files = sorted(p for p in bags.rglob("*") if p.suffix in (".mcap", ".db3")
                   and not any(d in p.parents for d in dirs))
    return dirs + files


def main():
    bags = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/bags")
    out = {}
    for path in inputs(bags):
        rel = str(path.relative_to(bags))
        topics = {}
        try:
            try:
                reader = AnyReader([path])
                reader.open()
            except Exception as e:  # noqa: BLE001
                if "no type definitions" not in str(e):
                    raise
                # Older sqlite3 bags hold no definitions: rosbags' own ROS 2 (Humble) types.
                reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
                reader.open()
            try:
                for conn, stamp, raw in reader.messages():
                    t = topics.get(conn.topic)
                    if t is None:
                        t = topics[conn.topic] = {"type": conn.msgtype, "count": 0, "paths": None,
                                                   "digest": FNV_OFFSET}
                    msg = reader.deserialize(raw, conn.msgtype)
                    fields, _ = entries(msg, conn.msgtype, ts=reader.typestore, long_over=None)
                    by_path = {e["path"]: e for e in fields}
                    if t["paths"] is None:
                        t["paths"] = [[e["path"], e["kind"]] for e in fields
                                      if "[" not in e["path"] and e["kind"] in ("num", "str")]
                    h = t["digest"]
                    for p, kind in t["paths"]:
                        e = by_path[p]
                        if kind == "num":
                            h = fnv(h, f32_bytes(e["values"]))
                        else:
                            h = fnv(h, e["value"].encode())
                    t["digest"] = h
                    t["count"] += 1
            finally:
                reader.close()
        except Exception as e:  # noqa: BLE001 - a bag rosbags cannot read is left out, said why
            print(f"{rel}: left out: {type(e).__name__}: {str(e)[:120]}", file=sys.stderr)
            continue
        topics = {k: v for k, v in topics.items() if v["count"]}
        for v in topics.values():
            v["digest"] = f"{v['digest']:016x}"
        if topics:
            out[rel] = topics
    dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ros2_digests.json")
    with open(dst, "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
        f.write("\n")
    n = sum(t["count"] for b in out.values() for t in b.values())
    print(f"{n} messages of {len(out)} bags -> {dst}")


if __name__ == "__main__":
    main()
