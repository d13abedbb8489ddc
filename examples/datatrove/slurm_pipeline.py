#!/usr/bin/env python3
"""The bagstream steps of bagstream_step.py under datatrove's SlurmPipelineExecutor: a job
array of --tasks conversion tasks, then a merge job that starts when all of them have
succeeded (datatrove submits it with `--dependency=afterok:ARRAY_JOB`).

Run it on a login node (not inside a SLURM job), with datatrove installed in a venv that the
compute nodes see on the same path, and bagstream on a path they see too:

    python examples/datatrove/slurm_pipeline.py --venv ~/venvs/datatrove \\
        --config arm.yaml --bags-from /data/bags.txt --tasks 500 --out /data/arm \\
        --partition cpu --cpus-per-task 4 --mem-per-cpu-gb 1 --bagstream /opt/bagstream/bin/bagstream

It returns as soon as the jobs are submitted. The layout is the one of bagstream_step.py:
OUT/shards/shard-IIIII-of-NNNNN, OUT/dataset, OUT/logs/{convert,merge} (datatrove's logs,
stats, completion markers, and the sbatch script it wrote). Each task's SLURM output is under
OUT/logs/*/slurm_logs.

When tasks fail, run the same command again: datatrove submits only the tasks without a
completion marker (bagstream resumes each one: its committed episodes are kept), and a new
merge job after them; cancel the old merge job, which waits for ever (`scancel`). datatrove
also requeues a task that receives SIGUSR1 (its `requeue_signals`; e.g. `sbatch
--signal=B:USR1@120` sent by the time limit); the requeued task resumes the same way.

Not run by the tests (tests/datatrove runs bagstream_step.py's LocalPipelineExecutor); see
docs/scale.md for sizing the tasks.
"""

import argparse
import sys
from pathlib import Path

from datatrove.executor.slurm import SlurmPipelineExecutor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bagstream_step import BagstreamConvert, BagstreamMerge  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--bags-from", required=True)
    p.add_argument("--tasks", type=int, required=True, help="number of shards (array tasks)")
    p.add_argument("--workers", type=int, default=-1, help="tasks running at once (-1: no limit)")
    p.add_argument("--out", required=True)
    p.add_argument("--bagstream", default="bagstream")
    p.add_argument("--venv", required=True, help="the venv with datatrove, as the nodes see it")
    p.add_argument("--partition", required=True)
    p.add_argument("--time", default="04:00:00", help="time limit of a task")
    p.add_argument("--cpus-per-task", type=int, default=4)
    p.add_argument("--mem-per-cpu-gb", type=int, default=1, help="memory per CPU, whole GB")
    p.add_argument("--qos", default=None, help="a QOS, if the cluster uses them")
    p.add_argument("convert_args", nargs="*", help="more `bagstream convert` options, after --")
    a = p.parse_args()

    out = Path(a.out).resolve()
    # The tasks unpickle the steps, so they must import bagstream_step: put this directory on
    # their PYTHONPATH, after activating the venv that has datatrove and its
    # `launch_pickled_pipeline` command.
    env = f"source {a.venv}/bin/activate && export PYTHONPATH={HERE}:$PYTHONPATH"
    common = dict(partition=a.partition, time=a.time, env_command=env, qos=a.qos)

    convert = SlurmPipelineExecutor(
        job_name="bagstream-convert",
        pipeline=[BagstreamConvert(Path(a.config).resolve(), Path(a.bags_from).resolve(), out / "shards",
                                   a.bagstream, a.convert_args)],
        tasks=a.tasks,
        workers=a.workers,
        cpus_per_task=a.cpus_per_task,
        mem_per_cpu_gb=a.mem_per_cpu_gb,
        logging_dir=str(out / "logs" / "convert"),
        **common,
    )
    merge = SlurmPipelineExecutor(
        job_name="bagstream-merge",
        pipeline=[BagstreamMerge(out / "shards", a.tasks, out / "dataset", a.bagstream)],
        tasks=1,
        cpus_per_task=1,
        mem_per_cpu_gb=max(2, a.cpus_per_task * a.mem_per_cpu_gb),
        logging_dir=str(out / "logs" / "merge"),
        depends=convert,  # submits the conversion first, then this job with afterok on it
        **common,
    )
    merge.run()


if __name__ == "__main__":
    main()
