//! The `bagstream` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bagstream::config::Config;
use bagstream::convert::{convert, ConvertOptions};
use bagstream::memory::MemoryOptions;
use bagstream::rss::{format_bytes, parse_size};
use bagstream::video::{Codec, VideoSettings};
use bagstream::{inspect, Error};

#[derive(Parser)]
#[command(
    name = "bagstream",
    version,
    about = "Convert ROS bags into LeRobot v3.0 datasets, streaming, with memory bounded by one chunk.",
    after_help = "Examples:\n  bagstream inspect fixtures/teleop_lz4.bag\n  bagstream inspect fixtures/teleop_lz4.bag --config-template > teleop.yaml\n  bagstream convert --config teleop.yaml --out out/teleop fixtures/teleop_lz4.bag\n  bagstream convert --config teleop.yaml --out out/teleop --append more.bag --task \"stack the cups\"\n  bagstream validate out/teleop\n\nExit status: 0 success, 1 conversion failure, 2 usage or configuration error."
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
        after_help = "Examples:\n  bagstream convert --config teleop.yaml --out out/teleop run1.bag run2.bag\n  bagstream convert --config teleop.yaml --out out/teleop --append run3.bag\n  bagstream convert --config teleop.yaml --out out/teleop --chunk-secs 0.25 big.bag\n  bagstream convert --config cams.yaml --out out/cams --vcodec h264 --crf 23 run1.bag\n  bagstream convert --config teleop.yaml --out out/teleop --max-rss 1G --memory-log mem.log run1.bag\n\nVideo features need ffmpeg (on PATH, or BAGSTREAM_FFMPEG=/path/to/ffmpeg); see docs/cameras.md."
    )]
    Convert {
        /// The conversion config (YAML); see docs/configuration.md.
        #[arg(long, short)]
        config: PathBuf,
        /// The dataset directory to write.
        #[arg(long, short)]
        out: PathBuf,
        /// Length of the time window read at once, in seconds.
        #[arg(long, default_value_t = 1.0)]
        chunk_secs: f64,
        /// Task text of every episode (overrides the config's `task`).
        #[arg(long)]
        task: Option<String>,
        /// Add episodes to an existing dataset with the same features.
        #[arg(long)]
        append: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Video codec of the camera features stored as video: av1 (lerobot's default,
        /// libsvtav1), h264 (libx264, no B-frames) or hevc (libx265).
        #[arg(long, default_value = "av1", value_parser = ["av1", "h264", "hevc"])]
        vcodec: String,
        /// Constant rate factor of the video encoder (lower: better quality, larger files).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=63))]
        crf: u32,
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
        /// Memory budget of the converter (e.g. 512M, 2G): refuse to start when the estimate
        /// from the bag's index is over it (suggesting a --chunk-secs); stop cleanly, leaving
        /// no dataset, if the run passes it.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_rss: Option<u64>,
        /// The bags, one episode each.
        #[arg(required = true)]
        bags: Vec<PathBuf>,
    },
    /// Check a dataset against every rule of the LeRobot v3.0 layout.
    Validate { dataset: PathBuf },
}

fn main() -> ExitCode {
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
                inspect::config_template(&bag)?
            } else if json {
                inspect::json(&bag)?
            } else {
                inspect::text(&bag)?
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            config,
            out,
            chunk_secs,
            task,
            append,
            quiet,
            vcodec,
            crf,
            memory_log,
            memory_sample,
            warn_rss,
            critical_rss,
            max_rss,
            bags,
        } => {
            if !(memory_sample.is_finite() && (0.01..=3600.0).contains(&memory_sample)) {
                return Err(Error::Usage(format!(
                    "--memory-sample {memory_sample}: give seconds from 0.01 to 3600"
                )));
            }
            let top_checkpoints = memory_log.is_some();
            let config = Config::load(&config)?;
            let codec: Codec = vcodec.parse().map_err(|e| Error::Usage(format!("{e}")))?;
            if codec != Codec::Av1 && crf > 51 {
                return Err(Error::Usage(format!("--crf {crf}: {codec} takes 0 to 51")));
            }
            let video = VideoSettings {
                crf,
                ..VideoSettings::for_codec(codec)
            };
            let summary = convert(&ConvertOptions {
                config,
                bags,
                out: out.clone(),
                chunk_secs,
                task,
                append,
                progress: !quiet,
                video,
                memory: MemoryOptions {
                    log: memory_log,
                    sample_every: std::time::Duration::from_secs_f64(memory_sample),
                    warn: warn_rss,
                    critical: critical_rss,
                    max_rss,
                },
                check_estimate: true,
            })?;
            for e in &summary.episodes {
                let r = &e.report;
                println!(
                    "{}: {} frames, {} dropped of {} ticks",
                    e.bag.display(),
                    r.frames,
                    r.dropped,
                    r.ticks
                );
                for c in &e.cameras {
                    println!(
                        "  {} <- {}: decoded {} of {} messages read",
                        c.feature, c.topic, c.decoded, c.messages
                    );
                }
                for (rule, s) in &r.sources {
                    println!(
                        "  {}: picks {}, holds {}, drops {}, |dt| p50 {} p95 {} max {}",
                        rule.label,
                        s.picks,
                        s.holds,
                        s.drops,
                        ms(s.dt_percentile(50.0)),
                        ms(s.dt_percentile(95.0)),
                        ms(s.dt_percentile(100.0)),
                    );
                }
            }
            let m = &summary.memory;
            println!(
                "memory: converter peak RSS {}, peak anonymous {}; encoders peak {} together",
                m.peak_rss.map_or_else(|| "unknown".into(), format_bytes),
                format_bytes(m.peak_anon),
                format_bytes(m.encoders_peak),
            );
            if top_checkpoints {
                println!("largest growth at checkpoints:");
                for c in &m.top {
                    println!(
                        "  {:>+9.1} MB  at {:>7.2} s  {} (rss {})",
                        c.growth as f64 / 1e6,
                        c.at.as_secs_f64(),
                        c.label,
                        format_bytes(c.rss)
                    );
                }
            }
            println!("{} -> {}", summary.line(), out.display());
            Ok(ExitCode::SUCCESS)
        }
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

fn ms(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{:.1} ms", s * 1e3))
}
