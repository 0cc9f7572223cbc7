//! Copying text to the clipboard of the terminal the user sits at, with the
//! OSC 52 escape sequence: it travels over SSH (and through tmux with
//! `set-clipboard on`), where no local clipboard tool could reach.

use base64::Engine;

/// `ESC ] 52 ; c ; BASE64 BEL` for `text`, after every control, C1 and bidi
/// character in it became `?`: what lands in the clipboard is what the
/// table showed, and nothing in it can act on a terminal it is pasted into.
pub fn sequence(text: &str) -> String {
    let clean = crate::sanitize::clean(text);
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_base64_in_an_osc_52_sequence() {
        assert_eq!(sequence("hello"), "\x1b]52;c;aGVsbG8=\x07");
        assert_eq!(sequence(""), "\x1b]52;c;\x07");
        assert_eq!(
            sequence("1000 redis-server 名前"),
            "\x1b]52;c;MTAwMCByZWRpcy1zZXJ2ZXIg5ZCN5YmN\x07"
        );
    }

    #[test]
    fn control_characters_are_replaced_before_encoding() {
        // ESC ] 0 ; x BEL and a bidi override: "?]0;x??"
        assert_eq!(sequence("\x1b]0;x\x07\u{202e}"), sequence("?]0;x??"));
        let seq = sequence("a\nb\u{9b}");
        let body = seq
            .strip_prefix("\x1b]52;c;")
            .and_then(|s| s.strip_suffix('\x07'))
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(decoded, b"a?b?");
    }
}
