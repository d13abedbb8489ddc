#!/usr/bin/env bash
# make datatrove-test: run examples/datatrove/bagstream_step.py with datatrove's
# LocalPipelineExecutor (N tasks, 2 workers, then the merge that depends on them) and check
# that each merged dataset equals a one-run conversion of the same bags
# (tests/support/compare_datasets.py), for every input set of tests/support/engine_inputs.sh.
#
# In the `lengths` set, the first run has shard 1 fail (an injected failure, once task 0 is
# done: datatrove's local pool kills the running tasks when one fails): the run must fail,
# with task 0 marked complete by datatrove and nothing merged; the second run must
# leave task 0 alone (datatrove skips it), convert shard 1 and merge. Then a third run, with
# task 0's completion marker removed, must rerun task 0, which bagstream finds complete and
# skips, leaving the shard as it was.
#
# datatrove goes into its own venv, DATATROVE_VENV (default: TARGET/datatrove-venv), made with
# `python3 -m venv` and pip on first use. Environment: BAGSTREAM (the Makefile passes the
# release build), BAGSTREAM_SHARED (../shared), CARGO_TARGET_DIR, KEEP=1 keeps the work
# directory.
set -euo pipefail
started=$SECONDS
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
SHARED=$(realpath -m "${BAGSTREAM_SHARED:-$ROOT/../shared}")
BAGSTREAM=${BAGSTREAM:-$TARGET/release/bagstream}
VENV=${DATATROVE_VENV:-$TARGET/datatrove-venv}
# datatrove 0.10.1 runs on Python 3.10 to 3.13 and needs none of its extras for these steps;
# pyarrow is for compare_datasets.py.
REQUIREMENTS=(datatrove==0.10.1 pyarrow)
[ -x "$BAGSTREAM" ] || { echo "no bagstream at $BAGSTREAM (make build)" >&2; exit 2; }

py=$VENV/bin/python
if ! "$py" -c 'import importlib.metadata as m, pyarrow; assert m.version("datatrove") == "0.10.1"' 2>/dev/null; then
  echo "making $VENV (${REQUIREMENTS[*]})"
  python3 -m venv "$VENV"
  "$py" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
fi
echo "datatrove $("$py" -c 'import importlib.metadata as m; print(m.version("datatrove"))') in $VENV, after $((SECONDS - started)) s"

source tests/support/engine_inputs.sh
work=$(mktemp -d /tmp/bagstream-datatrove-test.XXXXXX)
if [ "${KEEP:-}" = 1 ]; then trap 'echo "kept $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
engine_inputs "$work/inputs"

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

# Run the pipeline of SET with the binary $2; its output in work/SET.log.N (N: the run).
declare -A RUNS=()
pipeline() {
  local set=$1 bin=$2 n=$((${RUNS[$1]:-0} + 1))
  RUNS[$set]=$n
  "$py" examples/datatrove/bagstream_step.py --config "${ENGINE_CONFIG[$set]}" \
    --bags-from "${ENGINE_LIST[$set]}" --tasks "${ENGINE_SHARDS[$set]}" --workers 2 \
    --out "$work/run/$set" --bagstream "$bin" >"$work/$set.log.$n" 2>&1
}
show_log() { echo "--- $work/$1.log.${RUNS[$1]}"; tail -40 "$work/$1.log.${RUNS[$1]}"; }

# Fails shard 1 once task 0 is marked complete (within 60 s); runs the real binary otherwise.
fail=$work/fail-shard-1
{
  echo '#!/bin/sh'
  echo 'case " $* " in *" --shard 1/"*)'
  echo "  for i in \$(seq 300); do [ -e '$work/run/lengths/logs/convert/completions/00000' ] && break; sleep 0.2; done"
  echo '  echo "injected failure of shard 1" >&2; exit 1 ;;'
  echo 'esac'
  echo "exec '$BAGSTREAM' \"\$@\""
} >"$fail"
chmod +x "$fail"

for set in "${ENGINE_SETS[@]}"; do
  t0=$SECONDS
  if [ "$set" = lengths ]; then
    status=0
    pipeline "$set" "$fail" || status=$?
    check "lengths, shard 1 failing: the run fails" test $status != 0
    done_marks=$(find "$work/run/$set/logs/convert/completions" -type f -printf '%f ' 2>/dev/null || true)
    merged=no
    [ -e "$work/run/$set/dataset" ] && merged=yes
    check "lengths, shard 1 failing: task 0 alone marked complete, nothing merged" \
      test "$done_marks$merged" = "00000 no"
    shard0=$work/run/$set/shards/shard-00000-of-00002
    before_shard0=$(fingerprint "$shard0")
  fi
  if pipeline "$set" "$BAGSTREAM"; then status=0; else status=$?; show_log "$set"; fi
  echo "$set: ${ENGINE_SHARDS[$set]} tasks and the merge in $((SECONDS - t0)) s"
  check "$set: the pipeline succeeds" test $status = 0
  mapfile -t bags < <(engine_bags "${ENGINE_LIST[$set]}")
  "$BAGSTREAM" convert -q --config "${ENGINE_CONFIG[$set]}" --out "$work/local/$set" "${bags[@]}" >/dev/null
  check "$set: the merged dataset validates" "$BAGSTREAM" validate "$work/run/$set/dataset"
  check "$set: merged = one run" "$py" tests/support/compare_datasets.py "$work/local/$set" "$work/run/$set/dataset"
done
if [ "$failed" != 0 ]; then
  summary # the reruns below build on these runs
  exit 1
fi

set=lengths
check "lengths, run again: datatrove skipped the completed task 0" grep -q 'Skipping 1 already completed tasks' "$work/$set.log.2"
check "lengths, run again: shard 0 untouched" test "$(fingerprint "$shard0")" = "$before_shard0"

# Task 0 forgotten by datatrove: bagstream finds the shard complete and skips it.
rm "$work/run/$set/logs/convert/completions/00000"
before=$(fingerprint "$work/run/$set/shards")$(fingerprint "$work/run/$set/dataset")
if pipeline "$set" "$BAGSTREAM"; then status=0; else status=$?; show_log "$set"; fi
check "lengths, task 0 unmarked: the pipeline succeeds and marks it again" \
  test "$status $(find "$work/run/$set/logs/convert/completions" -type f -printf '%f\n' | sort | tr '\n' ' ')" = "0 00000 00001 "
check "lengths, task 0 unmarked: shards and dataset untouched" \
  test "$(fingerprint "$work/run/$set/shards")$(fingerprint "$work/run/$set/dataset")" = "$before"

summary
