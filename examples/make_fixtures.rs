//! Write the repository's synthetic fixture bags: the same 3 s teleop episode (6 joints at
//! 100 Hz, arm command at 50 Hz, gripper at 10 Hz, pose at 30 Hz, a 96x64 camera at 30 Hz as
//! raw rgb8 and JPEG; `synth::fixture_spec`) with each chunk compression, plus an unindexed copy
//! as a killed recorder leaves it.
//!
//! `cargo run --example make_fixtures -- fixtures`

use std::path::PathBuf;

use bagstream::synth::{fixture_spec, write_teleop_bag, FIXTURES};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fixtures".into()));
    std::fs::create_dir_all(&dir)?;
    for (name, compression, write_index) in FIXTURES {
        let spec = fixture_spec(compression, write_index);
        let path = dir.join(name);
        let n = write_teleop_bag(&path, &spec)?;
        let size = std::fs::metadata(&path)?.len();
        println!("{}: {n} messages, {size} bytes", path.display());
    }
    Ok(())
}
