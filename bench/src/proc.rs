//! A process's memory and CPU time, from Linux's /proc.

/// What a process used so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Usage {
    /// Resident set size now.
    pub rss_kb: u64,
    /// The highest resident set size it ever had.
    pub peak_rss_kb: u64,
    /// Of the resident set now, pages of files: the binary's code and data read from it.
    pub rss_file_kb: u64,
    /// Of the resident set now, anonymous pages: heap and stacks.
    pub rss_anon_kb: u64,
    /// User plus system CPU time.
    pub cpu_ms: f64,
}

/// `None` once the process is gone.
pub(crate) fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&status, &stat, clock_ticks_per_second())
}

fn parse(status: &str, stat: &str, ticks_per_second: f64) -> Option<Usage> {
    let kb = |field: &str| {
        status.lines().find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
    };
    // The fields after the command name (which may hold spaces): utime and stime are the 12th
    // and 13th of them (fields 14 and 15 of proc(5)).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(Usage {
        rss_kb: kb("VmRSS:")?,
        peak_rss_kb: kb("VmHWM:")?,
        rss_file_kb: kb("RssFile:")?,
        rss_anon_kb: kb("RssAnon:")?,
        cpu_ms: ticks * 1_000.0 / ticks_per_second,
    })
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_and_cpu_time() {
        let status = "Name:\tbooks-telemetry\nVmHWM:\t    6120 kB\nVmRSS:\t    5004 kB\nRssAnon:\t    1800 kB\n\
                      RssFile:\t    3204 kB\nThreads:\t1\n";
        let stat = "4242 (books telemetry) S 1 4242 4242 0 -1 4194560 500 0 0 0 37 5 0 0 20 0 1 0 123 1000 1251";
        let usage = parse(status, stat, 100.0).unwrap();
        assert_eq!(
            usage,
            Usage { rss_kb: 5004, peak_rss_kb: 6120, rss_file_kb: 3204, rss_anon_kb: 1800, cpu_ms: 420.0 }
        );
    }

    #[test]
    fn a_vanished_process_has_no_usage() {
        assert_eq!(usage(u32::MAX), None);
        assert_eq!(parse("VmRSS:\t1 kB\n", "1 (x) S", 100.0), None);
    }

    #[test]
    fn this_process_uses_memory_and_time() {
        let usage = usage(std::process::id()).unwrap();
        assert!(usage.rss_kb > 0 && usage.peak_rss_kb >= usage.rss_kb && usage.cpu_ms >= 0.0);
    }
}
