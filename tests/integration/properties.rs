//! Property-based tests of the filter parser (the recording reader's and
//! the sanitiser's are with their modules): any text parses or is refused
//! with the term at fault, never a panic; what parses reads back the same
//! from its own text, and matches without panicking.

use proptest::prelude::*;
use sockscope::model::{Filter, fixture};

/// Terms near the grammar, so that most of them parse, and some noise.
fn term() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "port", "lport", "sport", "rport", "dport", "pid", "proc", "process", "user", "state",
        "addr", "host", "laddr", "raddr", "proto", "family", "nope",
    ]);
    let value = prop::sample::select(vec![
        "0",
        "5",
        "+5",
        "-1",
        "65535",
        "65536",
        "none",
        "cw",
        "est",
        "listen",
        "tcp",
        "udp",
        "4",
        "v6",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "::/0",
        "::1",
        "fe80::1%lo",
        "",
        "ü",
        "1e3",
    ]);
    prop_oneof![
        (any::<bool>(), key, value)
            .prop_map(|(neg, k, v)| format!("{}{k}:{v}", if neg { "!" } else { "" })),
        "[!:a-z0-9./%]{0,12}",
        "\\PC{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_filter_text_parses_or_names_its_bad_term_and_round_trips(
        terms in prop::collection::vec(term(), 0..5)
    ) {
        let text = terms.join(" ");
        match Filter::parse(&text) {
            Ok(filter) => {
                let again = Filter::parse(filter.text()).expect("its own text parses");
                prop_assert_eq!(&again, &filter);
                let snap = fixture::small();
                for s in &snap.sockets {
                    let _ = filter.matches(s, &snap);
                }
                // Dropping catch-all addresses never adds a term.
                let narrow = filter.without_catch_all_addresses();
                prop_assert!(!filter.is_empty() || narrow.is_empty());
            }
            Err(e) => {
                prop_assert!(
                    text.split_whitespace().any(|t| t == e.term),
                    "the error names a term of the text: {:?} in {:?}", e.term, text
                );
            }
        }
    }
}
