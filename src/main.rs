//! The `bagstream` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bagstream::bag_list::{read_bag_list, Shard};
use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions, DEFAULT_COMMIT_EVERY};
use bagstream::memory::MemoryOptions;
use bagstream::rss::{format_bytes, parse_size};
use bagstream::video::{Codec, VideoOptions};
use bagstream::{inspect, sweep, Error};

#[derive(Parser)]
#[command(
    name = "bagstream",
    version,
    about = "Convert ROS bags into LeRobot v3.0 datasets, streaming, with memory bounded by one chunk.",
    after_help = "Examples:\n  bagstream inspect fixtures/teleop_lz4.bag\n  bagstream inspect fixtures/teleop_lz4.bag --config-template > teleop.yaml\n  bagstream convert --config teleop.yaml --out out/teleop fixtures/teleop_lz4.bag\n  bagstream convert --config teleop.yaml --out out/teleop --append more.bag --task \"stack the cups\"\n  bagstream validate out/teleop\n  bagstream merge --out out/all out/shard0 out/shard1\n\nExit status: 0 success, 1 conversion failure, 2 usage or configuration error, 130 / 143 interrupted by SIGINT / SIGTERM (nothing written)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print what a bag holds (like `rosbag info`): duration, size, compression, topics.
    #[command(
        after_help = "Examples:\n  bagstream inspect run1.bag\n  bagstream inspect run1.bag --json | jq .topics\n  bagstream inspect run1.bag --config-template > run.yaml"
    )]
    Inspect {
        bag: PathBuf,
        /// Print the same as JSON.
        #[arg(long, conflicts_with = "config_template")]
        json: bool,
        /// Print a starting config for this bag instead.
        #[arg(long)]
        config_template: bool,
    },
    /// Convert bags into one LeRobot v3.0 dataset, one episode per bag, in the order given.
    #[command(
        after_help = "Examples:\n  bagstream convert --config teleop.yaml --out out/teleop run1.bag run2.bag\n  bagstream convert --config teleop.yaml --out out/teleop --append run3.bag\n  bagstream convert --config teleop.yaml --out out/teleop --chunk-secs 0.25 big.bag\n  bagstream convert --config teleop.yaml --out out/all --bags-from bags.txt --resume\n  bagstream convert --config teleop.yaml --out out/shard-3 --bags-from bags.txt --shard 3/16\n  bagstream convert --config teleop.yaml --out out/all --bags-from bags.txt --jobs 2 --threads 8\n  bagstream convert --config cams.yaml --out out/cams --vcodec h264 --crf 23 run1.bag\n  bagstream convert --config teleop.yaml --out out/teleop --max-rss 1G --memory-log mem.log --memory-plot mem.svg run1.bag\n\nVideo features need ffmpeg (on PATH, or BAGSTREAM_FFMPEG=/path/to/ffmpeg); see docs/cameras.md."
    )]
    Convert {
        /// The dataset directory to write.
        #[arg(long, short)]
        out: PathBuf,
        /// Length of the time window read at once, in seconds.
        #[arg(long, default_value_t = 1.0)]
        chunk_secs: f64,
        /// Add episodes to an existing dataset with the same features.
        #[arg(long)]
        append: bool,
        /// Print only the summary line (errors and warnings still go to stderr).
        #[arg(long, short)]
        quiet: bool,
        /// Skip a bag that fails (its episode rolled back), convert the others, list the
        /// failures at the end and exit with 1. Without it the run stops at the first bag
        /// that fails, keeping the episodes converted before it.
        #[arg(long)]
        keep_going: bool,
        #[command(flatten)]
        flags: ConvertFlags,
        /// Read more bags from FILE: one path per line, `#` comment lines and blank lines
        /// skipped, relative paths from the working directory; after the bags given as
        /// arguments. Repeatable.
        #[arg(long, value_name = "FILE")]
        bags_from: Vec<PathBuf>,
        /// Convert only part I of N (I from 0 to N-1, as SLURM_ARRAY_TASK_ID counts) of the
        /// input list into --out: the same split for every task given the same list, balanced
        /// by bag size. Implies --resume: a task run again finishes its shard, or skips it
        /// when complete. Merge the shards with `bagstream merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Convert only the bags that the dataset at --out does not hold yet (it records which
        /// bag became which episode); a bag that changed since it was converted is refused.
        /// Without a dataset at --out, the same as a new run.
        #[arg(long)]
        resume: bool,
        /// Commit the dataset (complete, in place, loadable) every N episodes and at the end,
        /// so that a killed run loses at most N episodes (continue it with --resume).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_COMMIT_EVERY)]
        commit_every: usize,
        /// Convert N bags at once, each job with its share of --threads; the dataset holds
        /// the same as with --jobs 1 (episodes in input order), each episode's video a file
        /// of its own. --max-rss is the budget of all jobs together.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        jobs: u32,
        /// Write the run's figures (frames, seconds, peak memory) as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
        /// Draw the converter's RSS over the run, checkpoints marked, as an SVG picture.
        #[arg(long, value_name = "FILE.svg")]
        memory_plot: Option<PathBuf>,
        /// The bags, one episode each, in order (more with --bags-from).
        bags: Vec<PathBuf>,
    },
    /// Convert the same bags once per chunk size, each in a fresh process, and compare peak
    /// memory and speed; the outputs must be identical.
    #[command(
        after_help = "Examples:\n  bagstream sweep --config teleop.yaml run1.bag --chunk-secs 0.25,0.5,1,2,4\n  bagstream sweep --config cams.yaml run1.bag --chunk-secs 0.1,1 --vcodec h264 --plot sweep.svg"
    )]
    Sweep {
        /// Chunk sizes to try, in seconds, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1,2,4")]
        chunk_secs: Vec<f64>,
        /// Draw peak RSS and throughput against chunk size as an SVG picture.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        #[command(flatten)]
        flags: ConvertFlags,
        /// The bags, one episode each.
        #[arg(required = true)]
        bags: Vec<PathBuf>,
    },
    /// Check a dataset against every rule of the LeRobot v3.0 layout.
    Validate { dataset: PathBuf },
    /// Merge datasets bagstream wrote (the shards of one run) into one LeRobot v3.0 dataset,
    /// as converting all their bags in one run would have written it.
    #[command(
        after_help = "Examples:\n  bagstream merge --out out/all out/shard0 out/shard1 out/shard2\n  bagstream merge --out out/all out/shard-*\n\nEpisodes follow the run's input order when every shard has meta/bagstream_inputs.json (which convert writes), else the shards' order as given. Data rows are rewritten with new indices; videos are hard-linked (copied across filesystems), never re-encoded. Features, fps, robot_type and video encoding must agree (else exit status 2). OUT must not exist or be empty; nothing appears there until the merge is complete."
    )]
    Merge {
        /// The dataset directory to write.
        #[arg(long, short)]
        out: PathBuf,
        /// Print only the summary line.
        #[arg(long, short)]
        quiet: bool,
        /// The shard datasets.
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<PathBuf>,
    },
}

/// The options `convert` and `sweep` share (sweep passes them on to each conversion; the
/// per-run outputs `--summary-json` and `--memory-plot` are convert's own, as a sweep's
/// runs would overwrite each other's).
#[derive(clap::Args, Clone)]
struct ConvertFlags {
    /// The conversion config (YAML); see docs/configuration.md.
    #[arg(long, short)]
    config: PathBuf,
    /// Task text of every episode (overrides the config's `task`).
    #[arg(long)]
    task: Option<String>,
    /// Video codec of the camera features stored as video: av1 (lerobot's default,
    /// libsvtav1), h264 (libx264, no B-frames) or hevc (libx265). Default: av1 for a new
    /// dataset; with --append, the dataset's (another is refused).
    #[arg(long, value_parser = ["av1", "h264", "hevc"])]
    vcodec: Option<String>,
    /// Constant rate factor of the video encoder (lower: better quality, larger files).
    /// Default: 30 for a new dataset; with --append, the dataset's (another is refused).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=63))]
    crf: Option<u32>,
    /// Append a line per memory checkpoint (and sample) to FILE, flushed at once: the
    /// last line of a killed run says where it was.
    #[arg(long, value_name = "FILE")]
    memory_log: Option<PathBuf>,
    /// Seconds between the memory log's `sample` lines.
    #[arg(long, value_name = "SECS", default_value_t = 0.5)]
    memory_sample: f64,
    /// Mark memory lines at or above SIZE (e.g. 512M) WARNING and say so on the terminal.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    warn_rss: Option<u64>,
    /// Mark memory lines at or above SIZE CRITICAL and say so on the terminal.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    critical_rss: Option<u64>,
    /// Memory budget of the converter (e.g. 512M, 2G): refuse to start when the estimate of
    /// the whole run from the bags' indexes is over it (suggesting a --chunk-secs); stop
    /// cleanly, leaving no dataset, if the converter's peak RSS passes it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_rss: Option<u64>,
    /// A directory searched for `pkg/msg/Type.msg` when a bag holds no definition of a type
    /// (older rosbag2 sqlite3 bags), as ROS's package path is; repeatable, searched before
    /// the config's `msg_path` and the definitions bagstream ships.
    #[arg(long, value_name = "DIR")]
    msg_path: Vec<PathBuf>,
    /// Where a bag stored as one compressed file (rosbag2 `.db3.zstd`, `.mcap.zstd`) is
    /// decompressed before reading (default: beside --out); removed at the end.
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// Cap on the threads of the whole run: bag readers, camera decode workers and each
    /// ffmpeg encoder's threads share it (docs/scale.md); default: the machine's cores.
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    threads: usize,
}

impl ConvertFlags {
    /// The same options as command-line arguments, for a child `convert`.
    fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec!["--config".into(), self.config.clone().into()];
        if let Some(t) = &self.task {
            a.extend(["--task".into(), t.into()]);
        }
        if let Some(c) = &self.vcodec {
            a.extend(["--vcodec".into(), c.into()]);
        }
        if let Some(c) = self.crf {
            a.extend(["--crf".into(), c.to_string().into()]);
        }
        if let Some(l) = &self.memory_log {
            a.extend(["--memory-log".into(), l.clone().into()]);
        }
        for dir in &self.msg_path {
            a.extend(["--msg-path".into(), dir.clone().into()]);
        }
        if let Some(d) = &self.tmp_dir {
            a.extend(["--tmp-dir".into(), d.clone().into()]);
        }
        if self.threads > 0 {
            a.extend(["--threads".into(), self.threads.to_string().into()]);
        }
        a.extend([
            "--memory-sample".into(),
            self.memory_sample.to_string().into(),
        ]);
        for (flag, v) in [
            ("--warn-rss", self.warn_rss),
            ("--critical-rss", self.critical_rss),
            ("--max-rss", self.max_rss),
        ] {
            if let Some(v) = v {
                a.extend([flag.into(), v.to_string().into()]);
            }
        }
        a
    }

    /// The config, with --msg-path searched first.
    fn config(&self) -> Result<Config, Error> {
        let mut config = Config::load(&self.config)?;
        let mut dirs = self.msg_path.clone();
        dirs.append(&mut config.msg_path);
        config.msg_path = dirs;
        Ok(config)
    }

    fn video(&self) -> Result<VideoOptions, Error> {
        let codec = self
            .vcodec
            .as_deref()
            .map(str::parse::<Codec>)
            .transpose()
            .map_err(|e| Error::Usage(format!("{e}")))?;
        Ok(VideoOptions {
            codec,
            crf: self.crf,
        })
    }

    fn memory(&self) -> Result<MemoryOptions, Error> {
        let every = self.memory_sample;
        if !(every.is_finite() && (0.01..=3600.0).contains(&every)) {
            return Err(Error::Usage(format!(
                "--memory-sample {every}: give seconds from 0.01 to 3600"
            )));
        }
        Ok(MemoryOptions {
            log: self.memory_log.clone(),
            sample_every: std::time::Duration::from_secs_f64(every),
            warn: self.warn_rss,
            critical: self.critical_rss,
            max_rss: self.max_rss,
        })
    }
}

fn main() -> ExitCode {
    bagstream::alloc::fix_mmap_threshold();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bagstream: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Inspect {
            bag,
            json,
            config_template,
        } => {
            let text = if config_template {
                let t = inspect::template(&bag)?;
                if t.enabled == 0 {
                    eprintln!(
                        "bagstream: warning: {}: no topic has numeric fields or decodable images with messages; the template enables no feature",
                        bag.display()
                    );
                }
                t.text
            } else if json {
                inspect::json(&bag)?
            } else {
                inspect::text(&bag)?
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            out,
            chunk_secs,
            append,
            quiet,
            keep_going,
            flags,
            bags_from,
            shard,
            resume,
            commit_every,
            jobs,
            summary_json,
            memory_plot,
            bags,
        } => {
            let mut bags = bags;
            for list in &bags_from {
                bags.extend(read_bag_list(list)?);
            }
            if bags.is_empty() {
                return Err(Error::Usage(if bags_from.is_empty() {
                    "no bag given: give bag paths or --bags-from FILE".into()
                } else {
                    "no bag given: the --bags-from lists hold no path".into()
                }));
            }
            let top_checkpoints = flags.memory_log.is_some();
            // To tell, if a signal stops the run, what this run committed.
            let recorded_before = recorded_episodes(&out);
            // Ctrl-C and SIGTERM stop the run cleanly: see bagstream::interrupt.
            bagstream::interrupt::install()
                .map_err(|e| Error::Conversion(format!("cannot handle signals: {e}")))?;
            let converted = convert(&ConvertOptions {
                config: flags.config()?,
                bags: bags.clone(),
                out: out.clone(),
                chunk_secs,
                task: flags.task.clone(),
                append,
                progress: !quiet,
                video: flags.video()?,
                memory: flags.memory()?,
                check_estimate: true,
                keep_going,
                tmp_dir: flags.tmp_dir.clone(),
                shard,
                resume,
                commit_every: Some(commit_every),
                threads: flags.threads,
                jobs: jobs as usize,
            });
            let summary = match converted {
                Ok(s) => s,
                Err(Error::Interrupted(signal)) => {
                    let committed = recorded_episodes(&out).saturating_sub(recorded_before);
                    let kept = if committed > 0 {
                        format!(
                            "{} holds the {committed} episode{} this run committed; run the same command with --resume to convert the rest",
                            out.display(),
                            if committed == 1 { "" } else { "s" }
                        )
                    } else if append {
                        format!("{} is as it was", out.display())
                    } else {
                        format!("nothing written to {}", out.display())
                    };
                    eprintln!(
                        "bagstream: interrupted by {}: {kept}",
                        bagstream::interrupt::signal_name(signal)
                    );
                    return Ok(ExitCode::from((128 + signal) as u8));
                }
                Err(e) => return Err(e),
            };
            if let Some(path) = &memory_plot {
                let mut levels = Vec::new();
                for (name, v) in [
                    ("--warn-rss", flags.warn_rss),
                    ("--critical-rss", flags.critical_rss),
                    ("--max-rss", flags.max_rss),
                ] {
                    if let Some(v) = v {
                        levels.push((name, v));
                    }
                }
                bagstream::plot::memory_svg(path, &summary.memory, &levels)?;
            }
            if let Some(path) = &summary_json {
                let json = sweep::summary_json(&summary, &bags);
                std::fs::write(path, format!("{json:#}\n"))
                    .map_err(|e| Error::Conversion(format!("{}: {e}", path.display())))?;
            }
            if summary.episodes.is_empty() && summary.already_done > 0 {
                println!(
                    "{}: holds all {} bags of this run{}, nothing to do",
                    out.display(),
                    summary.already_done,
                    shard.map_or(String::new(), |s| format!(" (shard {s})"))
                );
                return Ok(ExitCode::SUCCESS);
            }
            // -q: the summary line alone, for scripts; the details are for people.
            if quiet {
                println!("{} -> {}", summary.line(), out.display());
                return Ok(failures_exit(&summary, bags.len()));
            }
            for e in &summary.episodes {
                let r = &e.report;
                // Interior drops are the ones that shift time (docs/alignment.md).
                println!(
                    "{}: {} frames, {} dropped of {} ticks ({} between frames, {} before, {} after)",
                    e.bag.display(),
                    r.frames,
                    r.dropped,
                    r.ticks,
                    r.dropped_interior,
                    r.dropped_leading,
                    r.dropped_trailing
                );
                for c in &e.cameras {
                    println!(
                        "  {} <- {}: decoded {} of {} messages read",
                        c.feature, c.topic, c.decoded, c.messages
                    );
                }
                for (rule, s) in &r.sources {
                    println!(
                        "  {}: picks {}, holds {}, drops {} ({} between frames), |dt| p50 {} p95 {} max {}",
                        rule.label,
                        s.picks,
                        s.holds,
                        s.drops,
                        s.drops_interior,
                        ms(s.dt_percentile(50.0)),
                        ms(s.dt_percentile(95.0)),
                        ms(s.dt_percentile(100.0)),
                    );
                }
            }
            println!("{}", summary.memory_line());
            let m = &summary.memory;
            if top_checkpoints {
                println!("largest growth at checkpoints:");
                for c in &m.top {
                    println!(
                        "  {:>+9.1} MiB  at {:>7.2} s  {} (rss {})",
                        c.growth as f64 / bagstream::rss::MIB,
                        c.at.as_secs_f64(),
                        c.label,
                        format_bytes(c.rss)
                    );
                }
            }
            println!("{} -> {}", summary.line(), out.display());
            Ok(failures_exit(&summary, bags.len()))
        }
        Command::Sweep {
            chunk_secs,
            plot,
            flags,
            bags,
        } => {
            // Checked here, so that a bad option fails once, not in every child.
            flags.config()?;
            // Every run of a sweep writes a new dataset.
            flags.video()?.for_new_dataset()?;
            flags.memory()?;
            let exe = std::env::current_exe()
                .map_err(|e| Error::Conversion(format!("cannot find this program: {e}")))?;
            let report = sweep::sweep(&sweep::SweepOptions {
                exe,
                args: flags.to_args(),
                bags,
                chunk_secs,
            })?;
            print!("{}", report.table());
            if let Some(path) = &plot {
                bagstream::plot::sweep_svg(path, &report.runs)?;
            }
            if report.identical() {
                println!("outputs: identical for every chunk size");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("outputs: DIFFER: {}", report.differences.join("; "));
                Ok(ExitCode::from(1))
            }
        }
        Command::Merge { out, quiet, shards } => merge(out, quiet, shards),
        Command::Validate { dataset } => {
            let problems = bagstream::dataset::validate::validate(&dataset)?;
            if problems.is_empty() {
                println!("{}: valid LeRobot v3.0 dataset", dataset.display());
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    println!("{}: {p}", dataset.display());
                }
                eprintln!(
                    "bagstream: {} problem(s) in {}",
                    problems.len(),
                    dataset.display()
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

fn merge(out: PathBuf, quiet: bool, shards: Vec<PathBuf>) -> Result<ExitCode, Error> {
    use bagstream::dataset::merge::{merge, MergeOptions};
    use bagstream::dataset::DatasetError;
    bagstream::interrupt::install()
        .map_err(|e| Error::Conversion(format!("cannot handle signals: {e}")))?;
    let s = match merge(&MergeOptions::new(shards, &out)) {
        Ok(s) => s,
        Err(DatasetError::Interrupted(signal)) => {
            eprintln!(
                "bagstream: interrupted by {}: nothing written to {}",
                bagstream::interrupt::signal_name(signal),
                out.display()
            );
            return Ok(ExitCode::from((128 + signal) as u8));
        }
        Err(e) => return Err(e.into()),
    };
    if !s.missing_positions.is_empty() {
        let shown: Vec<String> = s
            .missing_positions
            .iter()
            .take(10)
            .map(u64::to_string)
            .collect();
        eprintln!(
            "bagstream: warning: {} of the run's {} inputs are in no shard (positions {}{})",
            s.missing_positions.len(),
            s.input_count.unwrap_or_default(),
            shown.join(", "),
            if s.missing_positions.len() > 10 {
                ", ..."
            } else {
                ""
            }
        );
    }
    if !quiet {
        println!(
            "episodes ordered {}",
            if s.by_position {
                "by input position (meta/bagstream_inputs.json)"
            } else {
                "shard by shard, as given"
            }
        );
        println!(
            "{} data file{}, {} video file{} linked, {} copied",
            s.data_files,
            if s.data_files == 1 { "" } else { "s" },
            s.videos_linked,
            if s.videos_linked == 1 { "" } else { "s" },
            s.videos_copied
        );
    }
    println!(
        "merged {} shards: {} episodes, {} frames, {} task{} -> {}",
        s.shards,
        s.episodes,
        s.frames,
        s.tasks,
        if s.tasks == 1 { "" } else { "s" },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Exit status 0, or 1 after listing the bags `--keep-going` skipped.
fn failures_exit(summary: &bagstream::convert::ConvertSummary, bags: usize) -> ExitCode {
    if summary.failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "bagstream: {} of {bags} bags failed and were skipped:",
        summary.failures.len(),
    );
    for f in &summary.failures {
        eprintln!("  {}: {}", f.bag.display(), f.reason);
    }
    ExitCode::from(1)
}

/// Episodes the inputs record of the dataset at `out` names (0 without one).
fn recorded_episodes(out: &std::path::Path) -> usize {
    bagstream::dataset::inputs::read(out)
        .ok()
        .flatten()
        .map_or(0, |r| r.inputs.len())
}

fn ms(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{:.1} ms", s * 1e3))
}
