# shellcheck disable=SC2034 # the ENGINE_ arrays are read by the scripts that source this file
# The inputs of the engine tests (tests/slurm/run.sh, tests/datatrove/run.sh): sourced, then
# `engine_inputs DIR` writes one bag list per set into DIR and fills
#   ENGINE_SETS          the set names, in order
#   ENGINE_CONFIG[set]   its conversion config
#   ENGINE_LIST[set]     its bag list (DIR/set.txt: one path per line, with comments)
#   ENGINE_SHARDS[set]   how many shards to cut it into
# Needs ROOT (the repository), TARGET (cargo's target directory), SHARED (../shared; its sets
# are left out, and said so, when it is absent) and CARGO.
#
# The fixture bags are one recording in several containers, and so are the shared synthetic
# bags: their episodes are all alike, so a merge that put them in another order would still
# match. The `lengths` set is bags of 1 to 5 seconds listed out of order, so that the order of
# the shards and of the episodes in each shows in the rows.

declare -a ENGINE_SETS=()
declare -A ENGINE_CONFIG=() ENGINE_LIST=() ENGINE_SHARDS=()

_engine_set() { # name config shards list-file
  ENGINE_SETS+=("$1")
  ENGINE_CONFIG[$1]=$2
  ENGINE_SHARDS[$1]=$3
  ENGINE_LIST[$1]=$4
}

engine_inputs() {
  local dir=$1
  mkdir -p "$dir"

  cat >"$dir/teleop.txt" <<EOF
# The shipped fixtures, with a camera (an AV1 video feature).
$ROOT/fixtures/teleop_lz4.bag
$ROOT/fixtures/teleop_bz2.bag
EOF
  _engine_set teleop "$ROOT/fixtures/teleop.yaml" 2 "$dir/teleop.txt"

  local syn=$SHARED/bags/synthetic
  if [ -d "$syn" ]; then
    {
      echo "# ROS1 bags and ROS 2 recordings (MCAP and sqlite3) of one synthetic episode"
      for b in ros1_none.bag ros1_bz2.bag ros1_lz4.bag; do echo "$syn/$b"; done
      echo "# the ROS 2 ones"
      for b in ros2_mcap ros2_mcap_zstd ros2_sqlite3 ros2_sqlite3_msgzstd; do echo "$syn/$b"; done
    } >"$dir/synthetic.txt"
    _engine_set synthetic "$ROOT/fixtures/shared-synthetic.yaml" 3 "$dir/synthetic.txt"
  else
    echo "skipped: the synthetic set ($syn is absent)"
  fi

  # Bags of different lengths from examples/make_bench_bag.rs (no camera; a few KB each).
  # The debug build: `make test` has built it already (`cargo test --all-targets`).
  "${CARGO:-cargo}" build -q --example make_bench_bag
  local gen=$TARGET/debug/examples/make_bench_bag s
  echo "# bags of 1 to 5 s, out of order" >"$dir/lengths.txt"
  for s in 3 1 5 2 4; do
    "$gen" --out "$dir/len${s}s.bag" --seconds "$s" --cameras 0 --joint-hz 100 >/dev/null
    echo "$dir/len${s}s.bag" >>"$dir/lengths.txt"
  done
  _engine_set lengths "$ROOT/bench/tabular.yaml" 2 "$dir/lengths.txt"
}

# The bags of a list, as `bagstream convert` takes them (for the one-run conversion to compare
# with): the comment lines dropped.
engine_bags() {
  grep -v '^[[:space:]]*#' "$1"
}
