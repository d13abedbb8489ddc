#!/usr/bin/env bash
# make slurm-test: run examples/slurm on a real SLURM cluster of one node started here, and
# check that each sharded, merged conversion equals a one-run conversion of the same bags.
#
# For each input set (tests/support/engine_inputs.sh): examples/slurm/submit.sh submits the
# conversion array and the merge (afterok), the jobs are followed with `scontrol show job`
# until the merges end, and tests/support/compare_datasets.py compares the merged dataset
# with `bagstream convert` of the whole list. In the first round one task of the `lengths` set
# fails (an injected failure): its merge must never start; then the documented recovery
# (cancel the merge, run submit.sh again) must skip the complete shard, convert the failed one
# and merge; a third submission must leave everything as it is.
#
# Needs root. Installs slurm-wlm and munge (apt-get) and pyarrow (pip) when missing; starts
# munged, slurmctld and slurmd itself (tests/slurm/cluster.sh) and stops them at the end.
# Environment: BAGSTREAM (the binary the jobs run; the Makefile passes the release build),
# BAGSTREAM_SHARED (../shared), CARGO_TARGET_DIR, KEEP=1 to keep the work directory.
set -euo pipefail
started=$SECONDS
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
SHARED=$(realpath -m "${BAGSTREAM_SHARED:-$ROOT/../shared}")
BAGSTREAM=${BAGSTREAM:-$TARGET/release/bagstream}
TIMEOUT=${SLURM_TEST_TIMEOUT:-600}

if [ "$(id -u)" != 0 ]; then
  echo "tests/slurm/run.sh needs root (it starts munged, slurmctld and slurmd)" >&2
  exit 2
fi
[ -x "$BAGSTREAM" ] || { echo "no bagstream at $BAGSTREAM (make build)" >&2; exit 2; }
export BAGSTREAM

source tests/slurm/cluster.sh
source tests/support/engine_inputs.sh
slurm_install
if ! python3 -c 'import pyarrow' 2>/dev/null; then
  echo "installing pyarrow"
  python3 -m pip install -q --root-user-action=ignore pyarrow ||
    python3 -m pip install -q --root-user-action=ignore --break-system-packages pyarrow
fi

work=$(mktemp -d /tmp/bagstream-slurm-test.XXXXXX)
cleanup() {
  slurm_down
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

engine_inputs "$work/inputs"
slurm_up "$work/cluster"
echo "slurm: node $(sinfo -h -o '%N %c CPUs %m MB %T') after $((SECONDS - started)) s"

# Job states, one per line (an array job: one per task, or per range of pending tasks).
job_states() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
job_reason() { scontrol show job -o "$1" 2>/dev/null | grep -o 'Reason=[^ ]*' | head -1 | cut -d= -f2; }
# The state of task I of array job J.
task_state() { scontrol show job -o "$1" 2>/dev/null | grep "ArrayTaskId=$2 " | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }

declare -A ARRAY=() MERGE=()
# Submit SET into work/run/SET (BAGSTREAM from the environment); records its two job ids.
# The tasks get 1 CPU each, so that this machine's CPUs run several at once.
submit() {
  local set=$1 ids
  ids=$(examples/slurm/submit.sh "${ENGINE_CONFIG[$set]}" "${ENGINE_LIST[$set]}" \
    "${ENGINE_SHARDS[$set]}" "$work/run/$set" --cpus-per-task=1 --mem=1G --time=10)
  ARRAY[$set]=$(sed -n 's/^ARRAY_JOB=//p' <<<"$ids")
  MERGE[$set]=$(sed -n 's/^MERGE_JOB=//p' <<<"$ids")
  if [ -z "${ARRAY[$set]}" ] || [ -z "${MERGE[$set]}" ]; then
    echo "submit.sh printed: $ids" >&2
    return 1
  fi
  echo "$set: ${ENGINE_SHARDS[$set]} shards, array job ${ARRAY[$set]}, merge job ${MERGE[$set]}"
}

# Where SET's jobs are: running (a job is pending or running), done (every task and the merge
# completed) or failed (the rest: a job ended otherwise, or a task failed and the merge waits
# for ever, DependencyNeverSatisfied).
outcome() {
  local set=$1 state merge
  for state in $(job_states "${ARRAY[$set]}"); do
    case $state in
      PENDING | CONFIGURING | RUNNING | COMPLETING | REQUEUED | SUSPENDED) echo running; return ;;
    esac
  done
  merge=$(job_states "${MERGE[$set]}")
  case $merge in
    PENDING)
      if [ "$(job_reason "${MERGE[$set]}")" = DependencyNeverSatisfied ]; then echo failed; else echo running; fi
      return
      ;;
    CONFIGURING | RUNNING | COMPLETING) echo running; return ;;
  esac
  if [ "$merge" = COMPLETED ] && ! job_states "${ARRAY[$set]}" | grep -qvx COMPLETED; then
    echo "done"
  else
    echo failed
  fi
}

dump_logs() {
  local set f
  for set in "$@"; do
    scontrol show job -o "${ARRAY[$set]}" | cut -c1-300
    for f in "$work/run/$set"/logs/*; do
      [ -e "$f" ] && { echo "--- $f"; tail -20 "$f"; }
    done
  done
  echo "--- slurmctld log"; tail -20 "$work/cluster/log/slurmctld.log"
  echo "--- slurmd log"; tail -20 "$work/cluster/log/slurmd.log"
}

# Wait until no job of the named sets is pending or running; OUTCOME[set] then says how each
# ended.
declare -A OUTCOME=()
wait_for() {
  local deadline=$((SECONDS + TIMEOUT)) set busy
  while :; do
    busy=0
    for set in "$@"; do
      OUTCOME[$set]=$(outcome "$set")
      [ "${OUTCOME[$set]}" = running ] && busy=1
    done
    [ $busy = 0 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      echo "FAIL: jobs still running after $TIMEOUT s" >&2
      squeue >&2
      dump_logs "$@" >&2
      exit 1
    fi
    sleep 0.5
  done
}

passed=0 failed=0
check() { # name, then the command
  local name=$1
  shift
  if "$@"; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAIL: $name"
    failed=$((failed + 1))
  fi
}
# The names, sizes and times of the files under a directory ("absent" when there is none).
fingerprint() { if [ -d "$1" ]; then (cd "$1" && find . -type f -printf '%P %s %T@\n' | sort | sha256sum); else echo absent; fi; }
summary() {
  echo "${0#./}: $((SECONDS - started)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# Round 1: every set; in `lengths`, shard 1 fails (a wrapper that exits 1 for that shard and
# runs the real binary for the others), as a task that crashed would.
fail=$work/fail-shard-1
{
  echo '#!/bin/sh'
  echo 'case " $* " in *" --shard 1/"*) echo "injected failure of shard 1" >&2; exit 1 ;; esac'
  echo "exec '$BAGSTREAM' \"\$@\""
} >"$fail"
chmod +x "$fail"
t0=$SECONDS
for set in "${ENGINE_SETS[@]}"; do
  if [ "$set" = lengths ]; then BAGSTREAM=$fail submit "$set"; else submit "$set"; fi
done
wait_for "${ENGINE_SETS[@]}"
echo "round 1: the jobs ended in $((SECONDS - t0)) s"
for set in "${ENGINE_SETS[@]}"; do
  want="done"
  [ "$set" = lengths ] && want=failed
  [ "${OUTCOME[$set]}" = "$want" ] || dump_logs "$set"
  check "$set: the jobs ended ${OUTCOME[$set]} (expected: $want)" test "${OUTCOME[$set]}" = "$want"
done
merged=no
[ -e "$work/run/lengths/dataset" ] && merged=yes
check "lengths: shard 0 completed, shard 1 failed, nothing merged" \
  test "$(task_state "${ARRAY[lengths]}" 0) $(task_state "${ARRAY[lengths]}" 1) $merged" = "COMPLETED FAILED no"
if [ "$failed" != 0 ]; then
  summary # the later rounds build on this one
  exit 1
fi

# Round 2, the documented recovery: cancel the merge that waits for ever and run submit.sh
# again. Shard 0 is complete and must be left as it is; shard 1 converts; the merge runs.
shard0=$work/run/lengths/shards/shard-00000-of-00002
before_shard0=$(fingerprint "$shard0")
scancel "${MERGE[lengths]}"
t0=$SECONDS
submit lengths
wait_for lengths
echo "round 2: the jobs ended in $((SECONDS - t0)) s"
check "lengths, submitted again: the jobs ended ${OUTCOME[lengths]}" test "${OUTCOME[lengths]}" = "done"
check "lengths, submitted again: the complete shard 0 was skipped" test "$(fingerprint "$shard0")" = "$before_shard0"

for set in "${ENGINE_SETS[@]}"; do
  mapfile -t bags < <(engine_bags "${ENGINE_LIST[$set]}")
  "$BAGSTREAM" convert -q --config "${ENGINE_CONFIG[$set]}" --out "$work/local/$set" "${bags[@]}" >/dev/null
  check "$set: the merged dataset validates" "$BAGSTREAM" validate "$work/run/$set/dataset"
  check "$set: merged = one run" python3 tests/support/compare_datasets.py "$work/local/$set" "$work/run/$set/dataset"
done

# Round 3: submitted once more, with everything done: the tasks skip their shards and the
# merge keeps the dataset it finds.
before=$(fingerprint "$work/run/lengths/shards")$(fingerprint "$work/run/lengths/dataset")
submit lengths
wait_for lengths
check "lengths, submitted a third time: the jobs ended ${OUTCOME[lengths]}" test "${OUTCOME[lengths]}" = "done"
check "lengths, submitted a third time: shards and dataset untouched" \
  test "$(fingerprint "$work/run/lengths/shards")$(fingerprint "$work/run/lengths/dataset")" = "$before"

summary
