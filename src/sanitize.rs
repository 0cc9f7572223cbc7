//! Text that came from another process (names, command lines, hostnames) is
//! never written to a terminal as-is: a process can name itself `ESC ]0;...`.

use std::borrow::Cow;

/// True for characters that must not reach a terminal: C0 and C1 controls,
/// DEL, and the bidirectional overrides and isolates that reorder what follows.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Replaces every unsafe character with `?`. Borrows when nothing changes,
/// which is almost always.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_unsafe(c) { '?' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_controls_are_replaced() {
        assert_eq!(clean("a\x1b]0;pwned\x07b"), "a?]0;pwned?b");
        assert_eq!(clean("\x1b[2J"), "?[2J");
        assert_eq!(clean("x\u{9b}31m"), "x?31m", "8-bit CSI");
        assert_eq!(clean("line\nbreak\r\t"), "line?break??");
        assert_eq!(clean("evil\u{202e}txt.exe"), "evil?txt.exe");
        assert_eq!(clean("del\x7f"), "del?");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        assert!(matches!(clean("nginx: worker (x)"), Cow::Borrowed(_)));
        assert_eq!(clean("名前 \u{fffd}"), "名前 \u{fffd}");
    }
}
