//! The TCP state machine of the diagram view: the drawing kept in
//! `assets/tcp-states.txt`, with every state's box filled in with the live
//! count of sockets in that state. Boxes keep their width, so counts never
//! shift the drawing.

use super::socket::TcpState;
use super::view::compact_number;

const TCP_STATES_TXT: &str = include_str!("../../assets/tcp-states.txt");

/// A run of a drawing line: plain text, or a state's box (brackets included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Box { state: TcpState, text: String },
}

/// The drawing's lines, comments left out.
pub fn drawing() -> Vec<&'static str> {
    TCP_STATES_TXT
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect()
}

/// Splits each line into text and boxes, and writes `count(state)` into
/// every box. A box is `[`, a kernel state name, spaces, `]`; any other
/// bracketed text stays text.
pub fn place(lines: &[&str], count: impl Fn(TcpState) -> u64) -> Vec<Vec<Piece>> {
    lines.iter().map(|line| place_line(line, &count)).collect()
}

fn place_line(line: &str, count: &impl Fn(TcpState) -> u64) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let slot = after.find(']').and_then(|close| {
            let inner = &after[..close];
            let state = TcpState::ALL
                .into_iter()
                .find(|s| inner.trim_end() == s.kernel_name())?;
            Some((state, inner.chars().count(), close))
        });
        match slot {
            Some((state, width, close)) => {
                text.push_str(&rest[..open]);
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Box {
                    state,
                    text: format!("[{}]", fill(state, count(state), width)),
                });
                rest = &after[close + 1..];
            }
            None => {
                text.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// The inside of a box exactly `width` characters wide: the name on the
/// left, the count on the right (`CLOSE_WAIT   12`). When they do not fit:
/// a compact count (`12k`), then the short name (`ESTAB`), then a cut name.
pub fn fill(state: TcpState, n: u64, width: usize) -> String {
    let full = n.to_string();
    let compact = compact_number(n);
    let candidates = [
        (state.kernel_name(), &full),
        (state.kernel_name(), &compact),
        (state.short_name(), &full),
        (state.short_name(), &compact),
    ];
    let (name, number) = candidates
        .into_iter()
        .find(|(name, number)| name.chars().count() + 1 + number.chars().count() <= width)
        .unwrap_or((state.short_name(), &compact));
    let room = width.saturating_sub(number.chars().count() + 1);
    let name: String = name.chars().take(room).collect();
    let gap = width.saturating_sub(name.chars().count() + number.chars().count());
    let text = format!("{name}{}{number}", " ".repeat(gap));
    text.chars().take(width).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) | Piece::Box { text: t, .. } => t.as_str(),
            })
            .collect()
    }

    #[test]
    fn every_state_has_a_box_and_the_drawing_fits_80x24() {
        let lines = drawing();
        assert!(lines.len() <= 18, "{} rows", lines.len());
        for l in &lines {
            assert!(l.chars().count() <= 79, "too wide: {l:?}");
        }
        let placed = place(&lines, |_| 0);
        for s in TcpState::ALL {
            assert!(
                placed
                    .iter()
                    .flatten()
                    .any(|p| matches!(p, Piece::Box { state, .. } if *state == s)),
                "no box for {s}"
            );
        }
    }

    #[test]
    fn counts_are_written_in_place_without_moving_anything() {
        let lines = drawing();
        for n in [0, 7, 1234, 56_789, 130_000, 12_345_678] {
            let placed = place(&lines, |_| n);
            for (line, pieces) in lines.iter().zip(&placed) {
                let text = text_of(pieces);
                assert_eq!(text.chars().count(), line.chars().count(), "{n}: {text:?}");
                // Everything outside the boxes is untouched.
                let outside = |s: &str| {
                    let mut depth = false;
                    s.chars()
                        .map(|c| {
                            let inside = depth;
                            if c == '[' {
                                depth = true;
                            } else if c == ']' {
                                depth = false;
                            }
                            if inside && c != ']' { '.' } else { c }
                        })
                        .collect::<String>()
                };
                assert_eq!(outside(&text), outside(line));
            }
        }
    }

    #[test]
    fn a_box_shows_its_state_and_count() {
        let placed = place(&["  [CLOSE_WAIT     ]--[LISTEN        ]"], |s| match s {
            TcpState::CloseWait => 42,
            _ => 3,
        });
        assert_eq!(
            placed[0],
            vec![
                Piece::Text("  ".into()),
                Piece::Box {
                    state: TcpState::CloseWait,
                    text: "[CLOSE_WAIT   42]".into()
                },
                Piece::Text("--".into()),
                Piece::Box {
                    state: TcpState::Listen,
                    text: "[LISTEN       3]".into()
                },
            ]
        );
    }

    #[test]
    fn large_counts_are_shortened_then_the_name() {
        assert_eq!(fill(TcpState::CloseWait, 1234, 15), "CLOSE_WAIT 1234");
        assert_eq!(fill(TcpState::CloseWait, 12_345, 15), "CLOSE_WAIT  12k");
        assert_eq!(fill(TcpState::Established, 9, 15), "ESTABLISHED   9");
        assert_eq!(fill(TcpState::Established, 12_345, 15), "ESTABLISHED 12k");
        assert_eq!(fill(TcpState::Established, 100_080, 15), "ESTAB    100080");
        assert_eq!(fill(TcpState::Established, 12_345_678, 6), "ES 12M");
        assert_eq!(fill(TcpState::TimeWait, 5, 3), "T 5");
    }

    #[test]
    fn other_brackets_are_text() {
        let placed = place(&["a [note] b [LISTEN  ] c [x"], |_| 1);
        assert_eq!(placed[0][0], Piece::Text("a [note] b ".into()));
        assert!(matches!(
            placed[0][1],
            Piece::Box {
                state: TcpState::Listen,
                ..
            }
        ));
        assert_eq!(placed[0][2], Piece::Text(" c [x".into()));
    }
}
