//! Peak resident memory of this process, which docs/benchmarks.md asks every
//! benchmark to report.

/// VmHWM of this process, in KiB (0 where /proc is missing).
#[must_use]
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_process_has_resident_memory() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(super::peak_rss_kib() > 0);
        }
    }
}
