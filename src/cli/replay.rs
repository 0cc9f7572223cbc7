//! `sockscope replay FILE`: the monitor over a recording.

use super::{Failure, load_keymap, parse_filter};
use crate::record::{Recording, parse_at};
use crate::replay::SPEEDS;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = REPLAY_HELP)]
pub struct ReplayArgs {
    /// A recording written by `sockscope record FILE` or `sockscope --record FILE`.
    pub file: PathBuf,
    /// Start with the table filtered (e.g. `6800 cw`); the same terms as the monitor's.
    pub filter: Vec<String>,
    /// Where to start: `90s` (after the start), `-5m` (before the end),
    /// `14:05` or `14:05:30` (local time). Default: the last frame.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Playback speed, from 0.25 to 64 (`[` and `]` change it while replaying).
    #[arg(long, value_name = "X", value_parser = parse_speed, default_value = "1")]
    pub speed: f64,
}

const REPLAY_HELP: &str = "\
The replay starts paused. Keys, besides the monitor's (? shows them all):
  , .        one frame back / forward      p, Space   play / pause
  [ ]        slower / faster               t          jump to a time
  { }        first / last frame            1-6        views: sockets, findings, ...
Every view works on the recorded data; k and x are off (nothing is live).

Exit status: 0 success, 1 runtime failure (e.g. not a recording), 2 usage error.";

/// `2`, `0.5`, `4x`: within the speeds `[` and `]` step through.
pub fn parse_speed(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let speed: f64 = t
        .strip_suffix('x')
        .unwrap_or(t)
        .parse()
        .map_err(|_| format!("`{text}` is not a speed (try 0.5, 2, 8x)"))?;
    let (min, max) = (SPEEDS[0], SPEEDS[SPEEDS.len() - 1]);
    if !(min..=max).contains(&speed) {
        return Err(format!(
            "`{text}`: the speed must be between {min} and {max}"
        ));
    }
    Ok(speed)
}

pub fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let filter = parse_filter(&args.filter)?;
    let keymap = load_keymap()?;
    let recording = Recording::open(&args.file).map_err(anyhow::Error::from)?;
    let at = match args.at.as_deref() {
        Some(text) => {
            Some(parse_at(text, &recording).map_err(|e| Failure::Usage(format!("--at: {e}")))?)
        }
        None => None,
    };
    crate::tui::replay::run(crate::tui::replay::ReplayConfig {
        recording,
        at,
        speed: args.speed,
        filter,
        keymap,
    })
    .map_err(Failure::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_with_or_without_an_x_and_within_the_range() {
        assert_eq!(parse_speed("2"), Ok(2.0));
        assert_eq!(parse_speed("0.25"), Ok(0.25));
        assert_eq!(parse_speed("8x"), Ok(8.0));
        assert!(
            parse_speed("100")
                .unwrap_err()
                .contains("between 0.25 and 64")
        );
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").unwrap_err().contains("fast"));
    }
}
