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
    }
}
