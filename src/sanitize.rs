//! Text that came from another process (names, command lines, hostnames) is
//! never written out as-is: a process can name itself `ESC ]0;...`, or
//! `nginx` followed by characters that are not drawn at all. One policy for
//! every place text leaves the process: [`clean`] for the terminal, CSV and
//! Prometheus labels (replaced with `?`), [`escape`] where the exact text
//! must stay recoverable (`\u{...}`), and [`must_escape`] for JSON's
//! formatter (`\uXXXX`).

use std::borrow::Cow;
use unicode_width::UnicodeWidthChar;

/// Combining marks (and other zero-width characters) kept on one base
/// character; more are what "Zalgo" text stacks to cover the lines around.
pub const MAX_STACKED_MARKS: usize = 2;

/// True for characters that must not reach a terminal: C0 and C1 controls,
/// DEL, the bidirectional marks, overrides and isolates that reorder what
/// follows, zero-width and invisible formatting characters that make one
/// name look like another, and the line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
                | '\u{034F}' // combining grapheme joiner
                | '\u{061C}' // Arabic letter mark
                | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
                | '\u{17B4}' | '\u{17B5}' // Khmer invisible vowels
                | '\u{180B}'..='\u{180F}' // Mongolian selectors and separator
                | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
                | '\u{2028}'..='\u{202E}' // line/paragraph separators, embeddings, overrides
                | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates
                | '\u{FEFF}' // zero-width no-break space (BOM)
                | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
                | '\u{E0000}'..='\u{E007F}' // tags
        )
}

/// A character drawn on the one before it (a combining mark, or another
/// zero-width character).
fn is_mark(c: char) -> bool {
    c.width() == Some(0)
}

/// Whether the text is printable ASCII: nothing to look at.
fn plain(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Each character with whether it must not go out as it is: unsafe, or a
/// mark beyond [`MAX_STACKED_MARKS`] on one base.
pub fn must_escape(text: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let mut marks = 0usize;
    text.char_indices().map(move |(i, c)| {
        if is_unsafe(c) {
            marks = 0;
            (i, c, true)
        } else if is_mark(c) {
            marks += 1;
            (i, c, marks > MAX_STACKED_MARKS)
        } else {
            marks = 0;
            (i, c, false)
        }
    })
}

/// Replaces every unsafe character with `?`, and a run of marks beyond
/// [`MAX_STACKED_MARKS`] with one `?`. Borrows when nothing changes, which
/// is almost always.
pub fn clean(text: &str) -> Cow<'_, str> {
    if plain(text) || !must_escape(text).any(|(_, _, bad)| bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_excess = false;
    for (_, c, bad) in must_escape(text) {
        if !bad {
            in_excess = false;
            out.push(c);
        } else if is_unsafe(c) {
            in_excess = false;
            out.push('?');
        } else if !in_excess {
            in_excess = true;
            out.push('?');
        }
    }
    Cow::Owned(out)
}

/// Writes what [`clean`] would replace as `\u{XXXX}` instead, so that the
/// exact text can still be read: for files meant for other programs (CSV).
pub fn escape(text: &str) -> Cow<'_, str> {
    if plain(text) || !must_escape(text).any(|(_, _, bad)| bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (_, c, bad) in must_escape(text) {
        if bad {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        // Accents, composed or not, are text.
        assert!(matches!(clean("café cafe\u{301} ệ"), Cow::Borrowed(_)));
        assert!(matches!(clean("e\u{323}\u{302}"), Cow::Borrowed(_)));
    }

    #[test]
    fn invisible_characters_that_impersonate_a_name_are_replaced() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{2061}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{061C}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            let name = format!("nginx{c}");
            assert_eq!(clean(&name), "nginx?", "U+{:04X}", c as u32);
            assert_eq!(
                escape(&name),
                format!("nginx\\u{{{:04x}}}", c as u32),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn stacked_combining_marks_are_bounded() {
        let zalgo = format!("a{}b", "\u{0301}".repeat(40));
        assert_eq!(clean(&zalgo), "a\u{301}\u{301}?b");
        assert_eq!(escape("a\u{301}\u{302}\u{303}"), "a\u{301}\u{302}\\u{0303}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever goes in, nothing unsafe comes out, no more than the
        /// allowed marks stack, cleaning twice changes nothing, and text
        /// with nothing to clean is returned as it was.
        #[test]
        fn clean_output_is_safe_bounded_and_stable(text in "\\PC*|[\\x00-\\x7f\\u{80}-\\u{9f}\\u{200b}-\\u{206f}\\u{300}-\\u{36f}\\u{feff}a-z]{0,40}") {
            let out = clean(&text);
            prop_assert!(!out.chars().any(is_unsafe), "{:?}", out);
            let mut run = 0;
            for c in out.chars() {
                run = if is_mark(c) { run + 1 } else { 0 };
                prop_assert!(run <= MAX_STACKED_MARKS, "{:?}", out);
            }
            let twice = clean(&out).into_owned();
            prop_assert_eq!(twice.as_str(), out.as_ref());
            if !must_escape(&text).any(|(_, _, bad)| bad) {
                prop_assert_eq!(out.as_ref(), text.as_str());
            }
            let escaped = escape(&text);
            prop_assert!(!escaped.chars().any(is_unsafe), "{:?}", escaped);
        }
    }
}
