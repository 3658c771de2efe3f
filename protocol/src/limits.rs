//! Resource limits of a process (`memory_max:'512M'`, `memory_high`, `cpu_max:'150%'`,
//! `pids_max:200`): their values, how they are written and read, and the cgroup v2 controller each
//! needs.

use serde::{Deserialize, Serialize};

/// The limits written to a process's cgroup; `None` is no limit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Bytes of memory past which the kernel's OOM killer kills in the cgroup (`memory.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// Bytes of memory past which the cgroup is throttled and reclaimed hard (`memory.high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<u64>,
    /// CPU time, in percent of one core (150: one and a half cores; `cpu.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<u32>,
    /// The most processes and threads in the cgroup (`pids.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
}

impl ResourceLimits {
    /// Whether no limit is set.
    pub fn is_none(&self) -> bool {
        *self == ResourceLimits::default()
    }

    /// Each limit that is set: its option name and the controller it needs.
    pub fn needs(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.memory_max.is_some() {
            out.push(("memory_max", "memory"));
        }
        if self.memory_high.is_some() {
            out.push(("memory_high", "memory"));
        }
        if self.cpu_max.is_some() {
            out.push(("cpu_max", "cpu"));
        }
        if self.pids_max.is_some() {
            out.push(("pids_max", "pids"));
        }
        out
    }
}

/// What a size is written as, for the error sentence of a bad one.
pub const SIZE_EXPECTED: &str = "a size such as 512M, 2G, 100K or a count of bytes";
/// What a CPU limit is written as.
pub const CPU_EXPECTED: &str = "a percentage of one core such as 50% or 150%";

/// Reads a size: bytes, or a number with K, M, G or T (powers of 1024; `512M`, `512MiB`, `1.5G`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, shift) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 10),
        (i, 'M' | 'm') => (&t[..i], 20),
        (i, 'G' | 'g') => (&t[..i], 30),
        (i, 'T' | 't') => (&t[..i], 40),
        _ => (t, 0),
    };
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(1u64 << shift).filter(|&b| b > 0);
    }
    let f: f64 = number
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && *f > 0.0)?;
    let bytes = f * (1u64 << shift) as f64;
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Writes a size so that [`parse_size`] reads it back: with the largest unit that divides it.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Reads a CPU limit: `150%` or `150` (percent of one core), at least 1.
pub fn parse_cpu(text: &str) -> Option<u32> {
    let t = text.trim();
    t.strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .ok()
        .filter(|&p| p >= 1)
}

/// The `cpu.max` line for a CPU limit: the quota per 100 ms period.
pub fn cpu_max_line(percent: u32) -> String {
    format!("{} 100000", u64::from(percent) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_write_back() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("100k"), Some(102_400));
        assert_eq!(parse_size("4096"), Some(4096));
        for bad in ["", "0", "-1M", "lots", "1X"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        for n in [1, 1023, 1024, 512 << 20, 3 << 29, 5 << 40] {
            assert_eq!(parse_size(&format_size(n)), Some(n));
        }
        assert_eq!(format_size(512 << 20), "512M");
    }

    #[test]
    fn cpu_reads_percent_of_one_core() {
        assert_eq!(parse_cpu("150%"), Some(150));
        assert_eq!(parse_cpu("50"), Some(50));
        assert_eq!(parse_cpu("0%"), None);
        assert_eq!(cpu_max_line(150), "150000 100000");
    }
}
