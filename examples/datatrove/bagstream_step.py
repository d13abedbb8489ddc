#!/usr/bin/env python3
"""bagstream as datatrove pipeline steps: each task converts one shard of a bag list, then one
task merges the shards into one dataset.

    python bagstream_step.py --config C.yaml --bags-from LIST.txt --tasks 8 --workers 2 --out OUT

runs the conversion with datatrove's LocalPipelineExecutor (8 tasks, 2 at a time), then the
merge (an executor that depends on it), and validates the result:

    OUT/shards/shard-IIIII-of-NNNNN   one dataset per task (`bagstream convert --shard I/N`)
    OUT/dataset                      the merged dataset, episodes in the order of LIST.txt
    OUT/logs/convert, OUT/logs/merge datatrove's logs, stats and completion markers

Running the same command again continues: datatrove skips the tasks it has marked complete,
bagstream skips a shard that is complete and resumes (`--resume`) one that was interrupted,
keeping its committed episodes. Keep LIST.txt and --tasks unchanged until the merge is done:
they define the shards.

slurm_pipeline.py runs the same steps with datatrove's SlurmPipelineExecutor. The steps follow
the conventions of lerobot's dataset ports (examples/port_datasets in lerobot): `run` does
the work for `rank` of `world_size` and returns nothing, and a single rank does the merge.
"""

import argparse
import ctypes
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger


def shard_dir(shards_dir, rank: int, world_size: int) -> Path:
    """Where task `rank` of `world_size` writes its shard (the same names as examples/slurm)."""
    return Path(shards_dir) / f"shard-{rank:05d}-of-{world_size:05d}"


def resolve(bagstream: str) -> str:
    """An absolute path for the binary when it is on PATH here, so that the tasks (other
    processes, or other machines with the same file system) run the same one."""
    return shutil.which(bagstream) or bagstream


def _stop_with_parent():
    """In the bagstream child, before exec: ask Linux to send it SIGTERM when the task's
    process dies. LocalPipelineExecutor kills its pool's workers when one task fails (and
    SLURM may kill a task's python); without this the other tasks' bagstream would go on as
    orphans, writing shards that the rerun converts at the same time. bagstream stops within
    a fraction of a second on SIGTERM, keeping the episodes it had committed."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass  # not Linux: no such guard


def run_bagstream(cmd: list) -> None:
    """Run bagstream with its output in the task's log; raise when it fails, so that datatrove
    does not mark the task complete and a rerun does it again."""
    cmd = [str(c) for c in cmd]
    logger.info(f"running {' '.join(cmd)}")
    preexec = _stop_with_parent if sys.platform.startswith("linux") else None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=preexec) as proc:
        for line in proc.stdout:
            logger.info(f"bagstream: {line.rstrip()}")
    if proc.returncode != 0:
        raise RuntimeError(f"bagstream exited with status {proc.returncode}: {' '.join(cmd)}")


class BagstreamConvert(PipelineStep):
    """Convert shard `rank` of `world_size` of a bag list into its own dataset.

    Args:
        config: the conversion config (YAML)
        bags_from: the bag list, one path per line, `#` comments
        shards_dir: where the shard datasets go (shard_dir() names them)
        bagstream: the bagstream binary
        convert_args: more `bagstream convert` options, e.g. ["--vcodec", "h264", "--max-rss", "1500M"]
    """

    name = "bagstream convert"
    type = "💽 - WRITER"

    def __init__(self, config, bags_from, shards_dir, bagstream: str = "bagstream", convert_args=()):
        super().__init__()
        self.config = str(config)
        self.bags_from = str(bags_from)
        self.shards_dir = str(shards_dir)
        self.bagstream = resolve(bagstream)
        self.convert_args = [str(a) for a in convert_args]

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        out = shard_dir(self.shards_dir, rank, world_size)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            summary = Path(tmp) / "summary.json"
            with self.track_time(unit="shard"):
                run_bagstream(
                    [self.bagstream, "convert", "-q", "--config", self.config, "--out", out,
                     "--bags-from", self.bags_from, "--shard", f"{rank}/{world_size}", "--resume",
                     "--summary-json", summary, *self.convert_args]
                )
            self.stat_update("shards")
            # A shard found complete is skipped, and may leave no summary.
            if summary.is_file() and summary.stat().st_size > 0:
                figures = json.loads(summary.read_text())
                for key in ("episodes", "frames", "dropped"):
                    if isinstance(figures.get(key), int):
                        self.stat_update(key, value=figures[key], unit="shard")


class BagstreamMerge(PipelineStep):
    """Merge the `shards` shard datasets of BagstreamConvert into one, and validate it. Run it
    with one task (or it merges on rank 0 only, as lerobot's AggregateDatasets step does).

    Args:
        shards_dir: where BagstreamConvert wrote the shards
        shards: how many there are (the conversion's number of tasks)
        out: the merged dataset
        bagstream: the bagstream binary
    """

    name = "bagstream merge"
    type = "💽 - WRITER"

    def __init__(self, shards_dir, shards: int, out, bagstream: str = "bagstream"):
        super().__init__()
        self.shards_dir = str(shards_dir)
        self.shards = int(shards)
        self.out = str(out)
        self.bagstream = resolve(bagstream)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if rank != 0:
            logger.info(f"rank {rank}: only rank 0 merges")
            return
        out = Path(self.out)
        if (out / "meta" / "info.json").exists():
            # Merged by an earlier run whose completion marker was not written (the task was
            # killed right after): the dataset is moved into place only when complete.
            logger.info(f"{out} exists: validating it instead of merging again")
            run_bagstream([self.bagstream, "validate", out])
            return
        shards = [shard_dir(self.shards_dir, i, self.shards) for i in range(self.shards)]
        missing = [str(s) for s in shards if not s.is_dir()]
        if missing:
            raise RuntimeError(f"{len(missing)} of {self.shards} shards are missing: {', '.join(missing[:5])}")
        with self.track_time(unit="merge"):
            run_bagstream([self.bagstream, "merge", "--out", out, *shards])
        run_bagstream([self.bagstream, "validate", out])
        self.stat_update("shards", value=self.shards, unit="merge")


def local_executors(config, bags_from, tasks: int, out, workers: int = 2, bagstream="bagstream",
                    convert_args=(), logs=None):
    """The conversion executor (tasks shards, workers at a time) and the merge executor that
    depends on it: `merge.run()` runs the conversion first, then the merge."""
    out = Path(out)
    logs = Path(logs) if logs else out / "logs"
    convert = LocalPipelineExecutor(
        pipeline=[BagstreamConvert(config, bags_from, out / "shards", bagstream, convert_args)],
        tasks=tasks,
        workers=workers,
        logging_dir=str(logs / "convert"),
    )
    merge = LocalPipelineExecutor(
        pipeline=[BagstreamMerge(out / "shards", tasks, out / "dataset", bagstream)],
        tasks=1,
        workers=1,
        logging_dir=str(logs / "merge"),
        depends=convert,
    )
    return convert, merge


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the conversion config (YAML)")
    parser.add_argument("--bags-from", required=True, help="the bag list, one path per line, # comments")
    parser.add_argument("--tasks", type=int, required=True, help="the number of shards (datatrove tasks)")
    parser.add_argument("--workers", type=int, default=2, help="tasks run at once (default 2)")
    parser.add_argument("--out", required=True, help="OUT/shards, OUT/dataset, OUT/logs")
    parser.add_argument("--logs", help="datatrove's logging directory (default OUT/logs)")
    parser.add_argument("--bagstream", default="bagstream", help="the bagstream binary (default: on PATH)")
    parser.add_argument("convert_args", nargs="*", help="more `bagstream convert` options, after --")
    args = parser.parse_args()
    _, merge = local_executors(args.config, args.bags_from, args.tasks, args.out, args.workers,
                               args.bagstream, args.convert_args, args.logs)
    merge.run()


if __name__ == "__main__":
    main()
