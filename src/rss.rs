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

/// A size as people write it: `512M`, `2G`, `1.5GB`, `300MB`, `4096K`, or bytes. Units are
/// binary (M = 2^20), as for `ulimit` and cgroup limits.
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
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("`{text}`: unknown unit (use K, M, G or T)")),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok(bytes as u64)
}

/// Peak resident set size (VmHWM), in bytes; None where /proc is not available.
pub fn peak_rss() -> Option<u64> {
    status_field("VmHWM")
}

/// Current resident set size (VmRSS), in bytes.
pub fn current_rss() -> Option<u64> {
    status_field("VmRSS")
}

/// `12.3 MB` style, in decimal megabytes as `/usr/bin/time` users expect.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

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
        assert_eq!(format_bytes(12_345_678), "12.3 MB");
        let st = status().unwrap();
        assert!(st.rss > 0 && st.hwm >= st.rss && st.anon <= st.rss);
        assert_eq!(pid_rss(std::process::id()).map(|r| r > 0), Some(true));
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_size(" 4096k "), Ok(4 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("0M").is_err());
    }
}
