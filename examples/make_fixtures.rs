//! Write the repository's synthetic fixture bags: the same 3 s teleop episode (6 joints at
//! 100 Hz, arm command at 50 Hz, gripper at 10 Hz, pose at 30 Hz) with each chunk compression,
//! plus an unindexed copy as a killed recorder leaves it.
//!
//! `cargo run --example make_fixtures -- fixtures`

use std::path::PathBuf;

use bagstream::synth::{write_teleop_bag, TeleopSpec, FIXTURES};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fixtures".into()));
    std::fs::create_dir_all(&dir)?;
    for (name, compression, write_index) in FIXTURES {
        let spec = TeleopSpec {
            compression,
            write_index,
            ..TeleopSpec::default()
        };
        let path = dir.join(name);
        let n = write_teleop_bag(&path, &spec)?;
        let size = std::fs::metadata(&path)?.len();
        println!("{}: {n} messages, {size} bytes", path.display());
    }
    Ok(())
}
