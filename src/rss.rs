//! Resident memory of this process, read from `/proc/self/status`.

/// Read one `Vm*`/`Rss*` line of /proc/self/status, in bytes.
fn status_field(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_field(&text, name)
}

fn parse_status_field(text: &str, name: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))?;
    let kb: u64 = line[name.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The resident memory figures of one process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// VmRSS: resident now.
    pub rss: u64,
    /// RssAnon: the anonymous part of it (heap and stacks, not file pages).
    pub anon: u64,
    /// VmHWM: the peak of `rss` so far.
    pub hwm: u64,
}

/// This process's [`Status`] in one read of /proc/self/status.
pub fn status() -> Option<Status> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(Status {
        rss: parse_status_field(&text, "VmRSS")?,
        anon: parse_status_field(&text, "RssAnon").unwrap_or(0),
        hwm: parse_status_field(&text, "VmHWM")?,
    })
}

/// Resident set size of another process (e.g. an encoder child), in bytes.
pub fn pid_rss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&text, "VmRSS")
}

/// A size as people write it: `512M`, `2G`, `1.5GiB`, `4096K`, or bytes. `K`, `M`, `G`, `T`
/// and `KiB` .. `TiB` are binary (M = 2^20), as for `ulimit` and cgroup limits and as
/// [`format_bytes`] prints; `kB`, `MB`, `GB` and `TB` are decimal (MB = 10^6), as SI has them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 512M, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        "T" | "TIB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit (use K, M, G or T, binary as MiB; or MB, GB decimal)"
            ))
        }
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok(bytes.round() as u64)
}

/// Peak resident set size (VmHWM), in bytes; None where /proc is not available.
pub fn peak_rss() -> Option<u64> {
    status_field("VmHWM")
}

/// Current resident set size (VmRSS), in bytes.
pub fn current_rss() -> Option<u64> {
    status_field("VmRSS")
}

/// `12.3 MiB` style: binary units, as `--max-rss` and the other size options read them, so
/// that a printed size given back as an option is the same size (to the digit printed).
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else if b >= MIB {
        format!("{:.1} MiB", b / MIB)
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Bytes in a MiB, for figures printed in MiB beside [`format_bytes`]'s.
pub const MIB: f64 = 1048576.0;
const KIB: f64 = 1024.0;
const GIB: f64 = 1073741824.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let text = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\n";
        assert_eq!(parse_status_field(text, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_status_field(text, "RssAnon"), Some(512 * 1024));
        assert_eq!(parse_status_field(text, "VmSwap"), None);
        assert!(peak_rss().unwrap() >= current_rss().unwrap() / 2);
        assert_eq!(format_bytes(12_345_678), "11.8 MiB");
        let st = status().unwrap();
        assert!(st.rss > 0 && st.hwm >= st.rss && st.anon <= st.rss);
        assert_eq!(pid_rss(std::process::id()).map(|r| r > 0), Some(true));
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("300MB"), Ok(300_000_000));
        assert_eq!(parse_size("14M"), Ok(14 << 20));
        assert_eq!(parse_size(" 4096k "), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("0M").is_err());
    }

    #[test]
    fn printed_sizes_parse_back_to_the_same_size() {
        // The reported bug: `--max-rss 14M` read as 14 MiB and printed as 14.7 MB.
        assert_eq!(format_bytes(parse_size("14M").unwrap()), "14.0 MiB");
        assert_eq!(format_bytes(parse_size("2G").unwrap()), "2.00 GiB");
        assert_eq!(format_bytes(parse_size("512K").unwrap()), "512.0 KiB");
        for bytes in [
            1u64,
            1000,
            4096,
            999_999,
            14 << 20,
            27_461_632,
            3 << 29,
            5 << 40,
        ] {
            let printed = format_bytes(bytes);
            let back = parse_size(&printed).unwrap();
            // Within half a unit of the last digit printed.
            let unit = if bytes >= 1 << 30 {
                (1u64 << 30) / 100
            } else if bytes >= 1 << 20 {
                (1 << 20) / 10
            } else {
                1024 / 10
            };
            assert!(
                back.abs_diff(bytes) <= unit / 2 + 1,
                "{bytes} -> {printed} -> {back}"
            );
        }
    }
}
