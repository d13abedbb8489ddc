//! Writes a small LeRobot v3.0 dataset (2 episodes, or 1 more with `--append`) so it can be
//! loaded with the real lerobot: `cargo run --example write_demo -- OUT [--append]`.

use bagstream::dataset::{
    DatasetSpec, DatasetWriter, FeatureKind, FeatureSpec, Frame, LeRobotWriter, WriterOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: write_demo OUT [--append]")?;
    let append = args.next().as_deref() == Some("--append");
    let spec = DatasetSpec {
        fps: 30,
        robot_type: Some("demo_arm".into()),
        features: vec![
            FeatureSpec {
                key: "observation.state".into(),
                kind: FeatureKind::Vector {
                    names: vec!["shoulder".into(), "elbow".into(), "wrist".into()],
                },
            },
            FeatureSpec {
                key: "action".into(),
                kind: FeatureKind::Vector {
                    names: vec!["gripper".into()],
                },
            },
        ],
    };
    let mut w = LeRobotWriter::create(&spec, &WriterOptions::new(out, append))?;
    let tasks: &[(&str, usize)] = if append {
        [("stack the cubes", 45)].as_slice()
    } else {
        [("pick the cube", 60), ("place the cube", 37)].as_slice()
    };
    for (task, frames) in tasks {
        w.begin_episode(task, 0)?;
        for i in 0..*frames {
            let t = i as f32 / 30.0;
            w.write_frame(&Frame {
                values: vec![t.sin(), t.cos(), 0.5 * t, (i % 2) as f32],
                ..Frame::default()
            })?;
        }
        let s = w.end_episode(serde_json::json!({"frames": frames}))?;
        println!("episode {}: {} frames", s.episode_index, s.frames);
    }
    Box::new(w).finish()?;
    let problems = bagstream::dataset::validate::validate(std::path::Path::new(
        &std::env::args().nth(1).unwrap_or_default(),
    ))?;
    for p in &problems {
        println!("problem: {p}");
    }
    Ok(())
}
