#!/usr/bin/env bash
# Convert a list of bags on a SLURM cluster: a job array of N conversion tasks
# (convert-array.sbatch), then the merge (merge.sbatch) once every task has succeeded.
#
#   submit.sh CONFIG LIST N OUT [sbatch options...] [-- convert options...]
#
#   CONFIG   the conversion config (YAML)
#   LIST     the bags, one path per line, `#` comments (keep it unchanged until the merge is done)
#   N        the number of shards, one array task each
#   OUT      a directory on storage every node sees: OUT/shards/shard-IIIII-of-NNNNN (one
#            dataset per task), OUT/logs (the jobs' output), OUT/dataset (the merged dataset)
#   sbatch options go to both jobs and override the scripts' #SBATCH lines, e.g.
#            --partition=cpu --account=robots --time=2:00:00 --cpus-per-task=2 --mem=1G
#   convert options go to every conversion, e.g. -- --vcodec h264 --max-rss 1500M
#
# Prints the two job ids, as ARRAY_JOB=... and MERGE_JOB=... lines.
#
# Rerunning the same command after a failure is the way to resume: finished shards exit at
# once, interrupted ones continue (--resume), and the merge runs when all have succeeded.
# Cancel the old merge job first (it waits forever on a failed array: `scancel MERGE_JOB`).
#
# Environment: BAGSTREAM, the bagstream binary (default: `bagstream` on PATH; the jobs get it
# as an absolute path).
set -euo pipefail

if [ $# -lt 4 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
config=$(realpath "$1") list=$(realpath "$2") n=$3 out=$(realpath -m "$4")
shift 4
sbatch_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  sbatch_args+=("$1")
  shift
done
[ $# -gt 0 ] && shift # the "--"
convert_args=("$@")

case $n in
  '' | *[!0-9]* | 0) echo "N must be a positive number of shards, not '$n'" >&2; exit 2 ;;
esac
bin=${BAGSTREAM:-bagstream}
if ! BAGSTREAM=$(command -v "$bin"); then
  echo "bagstream not found ('$bin'): put it on PATH or set BAGSTREAM" >&2
  exit 2
fi
export BAGSTREAM
# The array tasks take N from here, not from the array's size, so that a resubmission of a
# few tasks (sbatch --array=3,17) still converts shards of N.
export BAGSTREAM_SHARDS=$n
mkdir -p "$out/shards" "$out/logs"

array_job=$(sbatch --parsable --export=ALL --array="0-$((n - 1))" \
  --output="$out/logs/convert-%A_%a.out" "${sbatch_args[@]}" \
  "$here/convert-array.sbatch" "$config" "$list" "$out/shards" "${convert_args[@]}")
array_job=${array_job%%;*} # --parsable prints "id;cluster" on a multi-cluster setup
merge_job=$(sbatch --parsable --export=ALL --dependency="afterok:$array_job" \
  --output="$out/logs/merge-%j.out" "${sbatch_args[@]}" \
  "$here/merge.sbatch" "$out/dataset" "$out/shards" "$n")
merge_job=${merge_job%%;*}
echo "ARRAY_JOB=$array_job"
echo "MERGE_JOB=$merge_job"
