#!/usr/bin/env python3
"""Baseline: convert a ROS1 teleop bag into a LeRobot v3.0 dataset the way users do it today.

Read the bag with `rosbags` (AnyReader), load every message of the configured topics into
memory (numbers into numpy arrays, JPEGs as bytes), align each stream to a 1/fps grid by
nearest receive time (np.searchsorted), decode the picked JPEGs with PIL and write with
lerobot's LeRobotDataset.create + add_frame + save_episode + finalize (videos: lerobot's
default encoder, AV1). The defaults match `make_bench_bag`'s topics and bench/teleop-bench.yaml.

Run with lerobot 0.6.1's python after bench/setup_baseline.sh:
    /root/.cache/lerobot-0.6.1-venv/bin/python bench/baseline_lerobot.py BAG OUT_DIR --fps 30
"""

import argparse
import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from lerobot.datasets.lerobot_dataset import LeRobotDataset

DEFAULT_CAMERAS = [
    "/cam_high/image_raw/compressed",
    "/cam_left_wrist/image_raw/compressed",
    "/cam_right_wrist/image_raw/compressed",
]


def camera_key(topic: str) -> str:
    """/cam_high/image_raw/compressed -> observation.images.cam_high"""
    return "observation.images." + topic.strip("/").split("/")[0]


def load(bag: Path, args) -> dict:
    """Every message of the configured topics, in memory: {topic: (times_ns, values)}."""
    wanted = [args.state_topic, args.action_topic, args.gripper_topic, *args.cameras]
    times = {t: [] for t in wanted}
    values = {t: [] for t in wanted}
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS1_NOETIC)) as reader:
        conns = [c for c in reader.connections if c.topic in times]
        missing = set(wanted) - {c.topic for c in conns}
        if missing:
            sys.exit(f"topics not in {bag}: {sorted(missing)}")
        for conn, stamp, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            topic = conn.topic
            times[topic].append(stamp)
            if topic == args.state_topic:
                values[topic].append(np.asarray(msg.position, dtype=np.float64))
            elif topic == args.action_topic:
                values[topic].append(np.asarray(msg.data, dtype=np.float64))
            elif topic == args.gripper_topic:
                values[topic].append(float(msg.data))
            else:
                values[topic].append(bytes(msg.data))
    out = {}
    for topic in wanted:
        t = np.asarray(times[topic], dtype=np.int64)
        v = values[topic]
        if topic not in args.cameras:
            v = np.asarray(v, dtype=np.float32)
        out[topic] = (t, v)
    return out


def nearest(times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index of the message nearest each grid time (times sorted)."""
    i = np.searchsorted(times, grid)
    i = np.clip(i, 1, len(times) - 1)
    left, right = times[i - 1], times[i]
    return np.where(grid - left <= right - grid, i - 1, i)


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bag", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--repo-id", default="bench/teleop")
    p.add_argument("--task", default="teleop benchmark")
    p.add_argument("--state-topic", default="/joint_states")
    p.add_argument("--action-topic", default="/arm_cmd")
    p.add_argument("--gripper-topic", default="/gripper_cmd")
    p.add_argument("--cameras", nargs="*", default=DEFAULT_CAMERAS)
    p.add_argument("--vcodec", default=None, help="lerobot's rgb encoder codec (default: lerobot's, AV1)")
    p.add_argument(
        "--image-writer-threads",
        type=int,
        default=None,
        help="threads writing frames to disk (default: 4 per camera, as lerobot-record)",
    )
    args = p.parse_args()
    t0 = time.monotonic()

    streams = load(args.bag, args)
    t_load = time.monotonic()
    n_msgs = sum(len(t) for t, _ in streams.values())
    print(f"loaded {n_msgs} messages in {t_load - t0:.1f} s", flush=True)

    # The grid: from the latest first message to the earliest last one, every 1/fps.
    start = max(t[0] for t, _ in streams.values())
    end = min(t[-1] for t, _ in streams.values())
    period = 1e9 / args.fps
    grid = start + np.round(np.arange(int((end - start) // period) + 1) * period).astype(np.int64)
    picks = {topic: nearest(t, grid) for topic, (t, _) in streams.items()}

    state = streams[args.state_topic][1][picks[args.state_topic]]
    action = np.concatenate(
        [
            streams[args.action_topic][1][picks[args.action_topic]],
            streams[args.gripper_topic][1][picks[args.gripper_topic]][:, None],
        ],
        axis=1,
    )
    first = {cam: decode_jpeg(streams[cam][1][0]) for cam in args.cameras}
    features = {
        "observation.state": {
            "dtype": "float32",
            "shape": (state.shape[1],),
            "names": [f"joint{j + 1}" for j in range(state.shape[1])],
        },
        "action": {
            "dtype": "float32",
            "shape": (action.shape[1],),
            "names": [f"joint{j + 1}" for j in range(action.shape[1] - 1)] + ["gripper"],
        },
    }
    for cam in args.cameras:
        h, w, c = first[cam].shape
        features[camera_key(cam)] = {
            "dtype": "video",
            "shape": (h, w, c),
            "names": ["height", "width", "channels"],
        }

    if args.out_dir.exists():
        shutil.rmtree(args.out_dir)
    threads = args.image_writer_threads
    if threads is None:
        threads = 4 * len(args.cameras)
    kwargs = {}
    if args.vcodec:
        from lerobot.configs.video import RGBEncoderConfig

        kwargs["rgb_encoder"] = RGBEncoderConfig(vcodec=args.vcodec)
    ds = LeRobotDataset.create(
        repo_id=args.repo_id,
        fps=args.fps,
        features=features,
        root=args.out_dir,
        robot_type="teleop_arm",
        use_videos=True,
        image_writer_threads=threads,
        **kwargs,
    )
    for k in range(len(grid)):
        frame = {
            "observation.state": state[k],
            "action": action[k],
            "task": args.task,
        }
        for cam in args.cameras:
            frame[camera_key(cam)] = decode_jpeg(streams[cam][1][picks[cam][k]])
        ds.add_frame(frame)
    t_frames = time.monotonic()
    print(f"added {len(grid)} frames in {t_frames - t_load:.1f} s", flush=True)
    ds.save_episode()
    ds.finalize()
    t_end = time.monotonic()
    print(f"saved episode (video encoding) in {t_end - t_frames:.1f} s", flush=True)
    print(f"done: {len(grid)} frames, {len(args.cameras)} cameras, {t_end - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
