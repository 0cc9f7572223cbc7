//! Compact text for numbers, durations, rates and sparklines, shared by the
//! tables, the views and the one-shot outputs.

use std::time::Duration;

/// `999`, `12k`, `1.2M`: at most four characters for any count.
pub fn compact_number(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{}k", n / 1000),
        1_000_000..=9_949_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{}M", n / 1_000_000),
    }
}

/// Compact human durations: `42s`, `7m`, `3h`, `2d`.
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=99 => format!("{s}s"),
        100..=5999 => format!("{}m", s / 60),
        6000..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// A duration with the precision a transition has: `850µs`, `20ms`,
/// `1.4s`, `2m05s`.
pub fn duration_short(d: Duration) -> String {
    let us = d.as_micros();
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=9_999 => format!("{:.1}ms", us as f64 / 1e3),
        10_000..=999_999 => format!("{}ms", us / 1000),
        1_000_000..=59_999_999 => format!("{:.1}s", us as f64 / 1e6),
        _ => format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60),
    }
}

/// Bytes per second in at most 5 columns: `512`, `3.4K`, `12M`, `1.1G`.
pub fn format_bytes_rate(bps: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if bps < 1000 {
        return bps.to_string();
    }
    let mut v = bps as f64 / 1024.0;
    let mut u = 0;
    while v >= 999.5 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v < 9.95 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// A one-line sparkline from block characters, scaled between the shown
/// window's minimum (`▁`) and maximum (`█`), so that 75 → 89 is a slope and
/// not a row of full blocks; [`sparkline_range`] says what the ends mean.
/// A flat window is a row of `▁` (all zeros: blank).
pub fn sparkline_text(series: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &series[series.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0);
    let min = tail.iter().copied().min().unwrap_or(0);
    tail.iter()
        .map(|&v| {
            if max == 0 {
                ' '
            } else if max == min {
                '▁'
            } else {
                BARS[((v - min) * 7).div_ceil(max - min) as usize]
            }
        })
        .collect()
}

/// A sparkline scaled from zero to the maximum, for rates whose size
/// matters more than their wiggle (the counters view).
pub fn sparkline_from_zero(series: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &series[series.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0);
    tail.iter()
        .map(|&v| match (max, v) {
            (0, _) => ' ',
            (_, 0) => '▁',
            _ => BARS[((v * 7).div_ceil(max)) as usize],
        })
        .collect()
}

/// `75–89`: the minimum and maximum of the window [`sparkline_text`] draws
/// in `width` columns (one number when flat).
pub fn sparkline_range(series: &[u64], width: usize) -> String {
    let tail = &series[series.len().saturating_sub(width)..];
    match (tail.iter().min(), tail.iter().max()) {
        (Some(a), Some(b)) if a != b => format!("{}–{}", compact_number(*a), compact_number(*b)),
        (Some(a), _) => compact_number(*a),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rates_fit_five_columns() {
        assert_eq!(format_bytes_rate(0), "0");
        assert_eq!(format_bytes_rate(999), "999");
        assert_eq!(format_bytes_rate(3500), "3.4K");
        assert_eq!(format_bytes_rate(12 * 1024 * 1024), "12M");
        assert_eq!(format_bytes_rate(1_000_000), "977K");
        assert_eq!(format_bytes_rate(1_023_000), "999K");
        assert_eq!(format_bytes_rate(1_048_000), "1.0M");
        assert!(format_bytes_rate(u64::MAX).len() <= 5);
    }

    #[test]
    fn sparkline_scales_between_its_minimum_and_maximum() {
        assert_eq!(sparkline_text(&[0, 1, 2, 4], 10), "▁▃▅█");
        assert_eq!(sparkline_text(&[75, 80, 89], 10), "▁▄█");
        assert_eq!(sparkline_range(&[75, 80, 89], 10), "75–89");
        assert_eq!(sparkline_text(&[5, 5], 1), "▁");
        assert_eq!(sparkline_range(&[5, 5], 2), "5");
        assert_eq!(sparkline_text(&[0, 0], 4), "  ");
    }

    #[test]
    fn ages_are_compact() {
        assert_eq!(format_age(Duration::from_secs(42)), "42s");
        assert_eq!(format_age(Duration::from_secs(600)), "10m");
        assert_eq!(format_age(Duration::from_secs(7200)), "2h");
        assert_eq!(format_age(Duration::from_secs(300_000)), "3d");
    }
}
