#!/usr/bin/env python3
"""An uncompressed ROS1 bag (1 MiB chunks) holding only what bench/raw-cameras.yaml converts:
/joint_states and two raw 320x240 rgb8 cameras (/cam_high/image_raw, /cam_wrist/image_raw),
written by the independent `rosbags` writer through ../shared/tools/make_teleop_bag.py (the
same episode as its ros1_none.bag, the other topics left out).

Usage: make_raw_camera_bag.py --out BAG --seconds N [--fps 30] [--shared ../shared]
Cameras at --fps, joint states at 5x; 13.9 MB of bag per second at 30 fps.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEEP = {"/joint_states", "/cam_high/image_raw", "/cam_wrist/image_raw"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    a = ap.parse_args()
    sys.path.insert(0, str(a.shared / "tools"))
    import make_teleop_bag as m
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    ts = get_typestore(Stores.ROS1_NOETIC)
    ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))
    events = (e for e in m.build_messages(ts, a.seconds, a.fps, 320, 240) if e[0] in KEEP)
    a.out.unlink(missing_ok=True)
    part = a.out.with_name(a.out.name + ".part")
    part.unlink(missing_ok=True)
    m.write_ros1(part, None, events, ts, 1 << 20)
    part.rename(a.out)
    print(f"{a.out}: {a.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
