# bagstream: `make run` converts the shipped example, `make test` runs every test.
CARGO ?= cargo
BIN := $(or $(CARGO_TARGET_DIR),target)/release/bagstream
SHARED ?= ../shared
LEROBOT_CHECK ?= $(SHARED)/tools/lerobot-check

.PHONY: run build test lint fuzz fixtures compat bench clean slurm-test datatrove-test

build:
	$(CARGO) build --release

# Convert the shipped example bag into out/teleop and check the result.
run: build
	rm -rf out/teleop
	$(BIN) convert --config fixtures/teleop.yaml --out out/teleop fixtures/teleop_lz4.bag
	$(BIN) validate out/teleop

# Tests that need $(SHARED) skip when it is absent; cargo counts them as passed, so each skip
# leaves a file in SKIPPED (src/test_skip.rs), and the count and names are printed after the run.
SKIPPED := $(or $(CARGO_TARGET_DIR),target)/debug/skipped-tests
test:
	@rm -rf $(SKIPPED)
	BAGSTREAM_SHARED=$(abspath $(SHARED)) BAGSTREAM_SKIPPED=$(abspath $(SKIPPED)) \
	  $(CARGO) test --all-targets; status=$$?; \
	n=$$(ls $(SKIPPED) 2>/dev/null | wc -l); \
	if [ "$$n" -gt 0 ]; then echo "$$n tests skipped:"; sed 's/^/  /' $(SKIPPED)/*; \
	else echo "no test skipped"; fi; exit $$status

# The in-tree fuzzer (examples/fuzz.rs): each target (ROS1 bag reader, MCAP reader, definition
# parser, dynamic decoder, CDR decoder) for FUZZ_SECS seconds; prints executions and crashes per target, fails
# on a crash.
# The dev profile (overflow checks on) shares the test build; FUZZ_FLAGS=--release for speed.
FUZZ_SECS ?= 60
FUZZ_FLAGS ?=
fuzz:
	$(CARGO) run $(FUZZ_FLAGS) --example fuzz -- --secs $(FUZZ_SECS)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Rebuild the fixture bags (deterministic: the same bytes every time).
fixtures:
	$(CARGO) run --release --example make_fixtures -- fixtures

# Load converted datasets with the real lerobot 0.6.1 (optional: builds a 5 GB Python
# environment on first use).
compat: build
	rm -rf out/compat && mkdir -p out/compat
	$(BIN) convert -q --config fixtures/shared-synthetic.yaml --out out/compat/synthetic $(SHARED)/bags/synthetic/ros1_lz4.bag $(SHARED)/bags/synthetic/ros1_lz4.bag
	$(BIN) convert -q --config fixtures/shared-synthetic.yaml --out out/compat/synthetic-append $(SHARED)/bags/synthetic/ros1_lz4.bag
	$(BIN) convert -q --config fixtures/shared-synthetic.yaml --out out/compat/synthetic-append --append --task "second task" $(SHARED)/bags/synthetic/ros1_lz4.bag
	$(BIN) convert -q --config fixtures/shared-joint-states.yaml --out out/compat/pr2 $(SHARED)/bags/robot_state_publisher/joint_states_indexed.bag $(SHARED)/bags/robot_state_publisher/joint_states_indexed.bag
	$(BIN) convert -q --config fixtures/shared-joint-states.yaml --out out/compat/pr2-append $(SHARED)/bags/robot_state_publisher/joint_states_indexed.bag
	$(BIN) convert -q --config fixtures/shared-joint-states.yaml --out out/compat/pr2-append --append --task "second task" $(SHARED)/bags/robot_state_publisher/joint_states_indexed.bag
	$(BIN) convert -q --config fixtures/teleop.yaml --out out/compat/teleop fixtures/teleop_lz4.bag fixtures/teleop_bz2.bag
	$(BIN) convert -q --config fixtures/shared-synthetic-cameras.yaml --vcodec h264 --out out/compat/cameras-h264 $(SHARED)/bags/synthetic/ros1_none.bag $(SHARED)/bags/synthetic/ros1_lz4.bag
	$(BIN) convert -q --config fixtures/shared-synthetic-cameras-av1.yaml --out out/compat/cameras-av1 $(SHARED)/bags/synthetic/ros1_none.bag
	$(BIN) convert -q --config fixtures/shared-synthetic-cameras-av1.yaml --out out/compat/cameras-av1 --append --task "second task" $(SHARED)/bags/synthetic/ros1_bz2.bag
	$(BIN) convert -q --config fixtures/shared-realsense.yaml --out out/compat/realsense $(SHARED)/bags/librealsense/single_depth_color_640x480.bag
	$(BIN) convert -q --config fixtures/shared-rerun.yaml --out out/compat/rerun $(SHARED)/bags/rerun/rosbag2_2025_09_10-13_03_56_0.mcap
	$(BIN) convert -q --config fixtures/shared-synthetic-cameras.yaml --vcodec h264 --out out/compat/ros2-h264 $(SHARED)/bags/synthetic/ros2_mcap $(SHARED)/bags/synthetic/ros2_sqlite3_msgzstd
	$(BIN) convert -q --config fixtures/shared-synthetic-cameras-av1.yaml --out out/compat/ros2-av1 $(SHARED)/bags/synthetic/ros2_mcap_zstd $(SHARED)/bags/synthetic/ros2_sqlite3
	$(BIN) convert -q --config fixtures/shared-synthetic.yaml --out out/compat/ros1-and-ros2 $(SHARED)/bags/synthetic/ros1_lz4.bag $(SHARED)/bags/synthetic/ros2_mcap
	$(BIN) convert -q --config fixtures/shared-ros-numpy.yaml --out out/compat/ros-numpy $(SHARED)/bags/ros_numpy/test.bag
	$(LEROBOT_CHECK) out/compat/synthetic out/compat/synthetic-append out/compat/pr2 out/compat/pr2-append out/compat/teleop out/compat/cameras-h264 out/compat/cameras-av1 out/compat/realsense out/compat/ros-numpy out/compat/rerun out/compat/ros2-h264 out/compat/ros2-av1 out/compat/ros1-and-ros2

# The cluster examples (docs/scale.md) run for real: examples/slurm on a single-node SLURM
# cluster started on this machine (needs root; installs slurm-wlm, munge and pyarrow when
# missing), and examples/datatrove under datatrove's LocalPipelineExecutor (in its own venv,
# $(DATATROVE_VENV)). Each checks that the merged shards equal a one-run conversion.
# BAGSTREAM=... runs the jobs with another binary.
BAGSTREAM ?= $(abspath $(BIN))
DATATROVE_VENV ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/datatrove-venv
slurm-test: build
	BAGSTREAM=$(BAGSTREAM) BAGSTREAM_SHARED=$(abspath $(SHARED)) tests/slurm/run.sh

datatrove-test: build
	BAGSTREAM=$(BAGSTREAM) BAGSTREAM_SHARED=$(abspath $(SHARED)) DATATROVE_VENV=$(DATATROVE_VENV) tests/datatrove/run.sh

# Speed and memory figures for docs/benchmarks.md (long: generates GB-sized bags once in
# out/bench; see bench/bench.py for the knobs). Not part of `make test`.
bench:
	python3 bench/bench.py

clean:
	rm -rf out
