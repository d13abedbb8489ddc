#!/usr/bin/env bash
# `bagstream merge` against lerobot 0.6.1's `aggregate_datasets` on the same two shards:
# three bench bags of different lengths (examples/make_bench_bag.rs, one 128x96 JPEG camera,
# as h264 video), 2 episodes and a task in shard 0, 1 episode and another task in shard 1;
# then lerobot-check on both results.
# Usage: bench/merge_vs_lerobot.sh WORKDIR   (needs ../shared/tools/lerobot-check's venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:?usage: merge_vs_lerobot.sh WORKDIR}"
target="${CARGO_TARGET_DIR:-$here/target}"
bin="$target/release/bagstream"
venv="${LEROBOT_VENV:-$HOME/.cache/lerobot-0.6.1-venv}"
shared="${SHARED:-${BAGSTREAM_SHARED:-$here/../shared}}"
rm -rf "$work" && mkdir -p "$work"
(cd "$here" && cargo build -q --release --bin bagstream --example make_bench_bag)
for s in 3 4 5; do
  "$target/release/examples/make_bench_bag" --out "$work/run$s.bag" --seconds $s --cameras 1 \
    --width 128 --height 96 > /dev/null
done
cfg="$work/bench.yaml"
cat > "$cfg" <<'YAML'
fps: 30
robot_type: teleop_arm
task: teleop benchmark
features:
  observation.state: {topic: /joint_states, field: position}
  action:
    sources:
      - {topic: /arm_cmd, field: data}
      - {topic: /gripper_cmd, field: data, tolerance: 0.06}
  observation.images.cam_high: {topic: /cam_high/image_raw/compressed}
YAML
"$bin" convert -q --config "$cfg" --vcodec h264 --task "pick up the cube" --out "$work/shard0" \
  "$work/run3.bag" "$work/run4.bag"
"$bin" convert -q --config "$cfg" --vcodec h264 --task "place the cube" --out "$work/shard1" \
  "$work/run5.bag"
# The inputs file is bagstream's own: lerobot's aggregate has no such order, so both merge in
# the order given.
rm -f "$work"/shard*/meta/bagstream_inputs.json
/usr/bin/time -v "$bin" merge --out "$work/bagstream" "$work/shard0" "$work/shard1" 2> "$work/merge-time.txt"
grep -E "Maximum resident|Elapsed" "$work/merge-time.txt"
"$bin" validate "$work/bagstream"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME="$work/hf"
"$venv/bin/python" "$here/bench/merge_vs_lerobot.py" aggregate "$work/lerobot" "$work/shard0" "$work/shard1" \
  > "$work/aggregate.log" 2>&1
"$venv/bin/python" "$here/bench/merge_vs_lerobot.py" compare "$work/bagstream" "$work/lerobot" | tee "$work/report.txt"
"$bin" validate "$work/lerobot" || true
"$shared/tools/lerobot-check" "$work/bagstream" "$work/lerobot"
