//! SVG pictures of memory: RSS over a run with its checkpoints marked (`--memory-plot`), and
//! peak RSS and throughput against chunk size (`sweep --plot`). plotters' SVG backend writes
//! text as `<text>` for the viewer to render, so no font library is needed.

use std::path::Path;

use plotters::prelude::*;

use crate::memory::MemoryReport;
use crate::sweep::SweepRun;

/// Sizes are drawn in MiB, as every size bagstream prints.
const MB: f64 = crate::rss::MIB;

/// One figure of a sweep run, in plot units.
type RunFigure = fn(&SweepRun) -> f64;

fn err(path: &Path, e: impl std::fmt::Display) -> crate::Error {
    crate::Error::Conversion(format!("{}: cannot draw the plot: {e}", path.display()))
}

/// RSS over time; checkpoints at run, bag and episode boundaries marked and named; the
/// `--warn-rss` and `--max-rss` levels as dashed lines.
pub fn memory_svg(path: &Path, report: &MemoryReport, levels: &[(&str, u64)]) -> crate::Result<()> {
    let e = |x: &dyn std::fmt::Display| err(path, x);
    let pts = &report.curve.points;
    let t_end = pts.last().map_or(1.0, |p| p.0).max(1e-3);
    let top = pts
        .iter()
        .map(|p| p.1)
        .chain(levels.iter().map(|l| l.1))
        .max()
        .unwrap_or(0) as f64
        / MB;
    let root = SVGBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let peak = report.peak_rss.map_or(0.0, |p| p as f64 / MB);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("bagstream converter RSS (peak {peak:.1} MiB)"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_end * 1.02, 0f64..(top * 1.15).max(1.0))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("RSS (MiB)")
        .draw()
        .map_err(|x| e(&x))?;
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|(t, r)| (*t, *r as f64 / MB)),
            BLUE.stroke_width(2),
        ))
        .map_err(|x| e(&x))?
        .label("RSS")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    for (name, level) in levels {
        let y = *level as f64 / MB;
        let color = if name.contains("max") { RED } else { MAGENTA };
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, y), (t_end * 1.02, y)],
                6,
                4,
                color.stroke_width(1),
            ))
            .map_err(|x| e(&x))?
            .label(format!("{name} {y:.1} MiB"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    chart
        .draw_series(report.marks.iter().enumerate().map(|(i, m)| {
            let t = m.at.as_secs_f64();
            let at = (t, m.rss as f64 / MB);
            // Labels in the right half end at their point, so none runs off the picture;
            // neighbours are staggered upwards.
            let right = t > t_end / 2.0;
            let (h, dx) = if right {
                (HPos::Right, -4)
            } else {
                (HPos::Left, 4)
            };
            let style =
                TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(h, VPos::Bottom));
            EmptyElement::at(at)
                + Circle::new((0, 0), 4, BLACK.filled())
                + Text::new(m.label.clone(), (dx, -6 - 14 * (i as i32 % 3)), style)
        }))
        .map_err(|x| e(&x))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// Peak RSS (converter, and converter plus encoders) and frames per second against the chunk
/// size, on a log axis.
pub fn sweep_svg(path: &Path, runs: &[SweepRun]) -> crate::Result<()> {
    let e = |x: &dyn std::fmt::Display| err(path, x);
    if runs.is_empty() {
        return Err(e(&"no runs"));
    }
    let lo = runs
        .iter()
        .map(|r| r.chunk_secs)
        .fold(f64::INFINITY, f64::min)
        / 1.5;
    let hi = runs.iter().map(|r| r.chunk_secs).fold(0.0, f64::max) * 1.5;
    let mut sorted: Vec<&SweepRun> = runs.iter().collect();
    sorted.sort_by(|a, b| a.chunk_secs.total_cmp(&b.chunk_secs));
    // Ticks at the chunk sizes measured, labelled as given: the log axis's own ticks are
    // computed (0.1 * 3 is 0.30000000000000004) and fall between the points.
    let ticks: Vec<f64> = sorted.iter().map(|r| r.chunk_secs).collect();
    let tick_label = |x: &f64| x.to_string();
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (upper, lower) = root.split_vertically(350);
    let rss_top = sorted
        .iter()
        .map(|r| (r.peak_rss + r.encoders_peak) as f64 / MB)
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&upper)
        .caption("peak memory against chunk size", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(ticks.clone()),
            0f64..rss_top * 1.15,
        )
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_label_formatter(&tick_label)
        .x_desc("--chunk-secs")
        .y_desc("peak RSS (MiB)")
        .draw()
        .map_err(|x| e(&x))?;
    let series: [(&str, RGBColor, RunFigure); 2] = [
        ("converter", BLUE, |r| r.peak_rss as f64 / MB),
        // The encoders' figure is the sum of their own peaks: an upper bound of the total.
        ("converter + encoders (sum of peaks)", RED, |r| {
            (r.peak_rss + r.encoders_peak) as f64 / MB
        }),
    ];
    for (name, color, f) in series {
        let pts: Vec<(f64, f64)> = sorted.iter().map(|r| (r.chunk_secs, f(r))).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;

    let fps_top = sorted
        .iter()
        .map(|r| r.frames_per_second())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&lower)
        .caption("throughput against chunk size", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(ticks),
            0f64..fps_top * 1.15,
        )
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_label_formatter(&tick_label)
        .x_desc("--chunk-secs")
        .y_desc("frames per second")
        .draw()
        .map_err(|x| e(&x))?;
    let pts: Vec<(f64, f64)> = sorted
        .iter()
        .map(|r| (r.chunk_secs, r.frames_per_second()))
        .collect();
    chart
        .draw_series(LineSeries::new(pts.clone(), GREEN.stroke_width(2)))
        .map_err(|x| e(&x))?;
    chart
        .draw_series(pts.iter().map(|p| Circle::new(*p, 4, GREEN.filled())))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_plot_labels_the_chunk_sizes_measured() {
        let run = |chunk_secs: f64| SweepRun {
            chunk_secs,
            peak_rss: 20 << 20,
            end_anon: 5 << 20,
            encoders_peak: 0,
            seconds: 1.0,
            frames: 100,
            bag_bytes: 1 << 20,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.svg");
        sweep_svg(&path, &[run(0.05), run(0.3), run(0.7), run(4.0)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
            .filter_map(|t| t.split_once("</text>").map(|(text, _)| text.trim()))
            .collect();
        for want in ["0.05", "0.3", "0.7", "4"] {
            // One tick label in each of the two charts.
            assert_eq!(
                texts.iter().filter(|t| **t == want).count(),
                2,
                "{want}: {texts:?}"
            );
        }
        assert!(
            !texts.iter().any(|t| t.contains("0000000")),
            "a computed label: {texts:?}"
        );
        assert!(texts.contains(&"peak RSS (MiB)"), "{texts:?}");
    }
}
