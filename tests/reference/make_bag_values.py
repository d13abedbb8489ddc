#!/usr/bin/env python3
"""Decoded values of real ROS 2 messages, by the independent `rosbags` package.

For each MCAP file of ../shared/bags whose chunks are uncompressed (the message-layer test
reads those without an MCAP reader), the first messages of every topic as rosbags decodes them
with the file's own definitions: tests/reference/bag_values.json, entries as in
make_cdr_vectors.py (arrays over 64 values as length + FNV-1a of their float32 values).
tests/ros2_bag_values.rs decodes the same messages with bagstream and compares. Only values
are stored here, not the bags' bytes.

    python3 tests/reference/make_bag_values.py [../shared/bags]   # from the repository root
"""

import json
import os
import sys
from pathlib import Path

from rosbags.highlevel import AnyReader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cdr_vectors import entries  # noqa: E402

FILES = [
    "rerun/rosbag2_2025_09_10-13_03_56_0.mcap",
    "rosbag2/mcap_cdr_test/cdr_test_0.mcap",
    "rosbag2/cpp_bags/only_topics.mcap",
    "synthetic/ros2_mcap/ros2_mcap.mcap",
]
# Not here: mcap_test_bag_for_seek names its type `test_msgs/BasicTypes` (no `msg/`), which
# rosbags cannot look up; the zstd-chunked files need an MCAP reader.
PER_TOPIC = 3


def main():
    bags = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/bags")
    out = {}
    for rel in FILES:
        topics = {}
        with AnyReader([bags / rel]) as reader:
            for conn, stamp, raw in reader.messages():
                msgs = topics.setdefault(conn.topic, {"type": conn.msgtype, "messages": []})
                if len(msgs["messages"]) >= PER_TOPIC:
                    continue
                msg = reader.deserialize(raw, conn.msgtype)
                fields, _ = entries(msg, conn.msgtype, ts=reader.typestore, long_over=64)
                item = {"log_time": stamp, "fields": fields}
                header = getattr(msg, "header", None)
                if header is not None and hasattr(header, "stamp"):
                    item["stamp_ns"] = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
                msgs["messages"].append(item)
        out[rel] = topics
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bag_values.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
        f.write("\n")
    n = sum(len(t["messages"]) for b in out.values() for t in b.values())
    print(f"{n} messages of {len(out)} files -> {path}")


if __name__ == "__main__":
    main()
