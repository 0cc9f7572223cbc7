//! Plain-language explanations of TCP states, from `assets/states.toml`.

use super::socket::TcpState;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Explanation {
    pub happened: String,
    pub closed_first: String,
    pub waits_for: String,
    pub ends: String,
}

const STATES_TOML: &str = include_str!("../../assets/states.toml");

fn table() -> &'static HashMap<String, Explanation> {
    static TABLE: OnceLock<HashMap<String, Explanation>> = OnceLock::new();
    TABLE.get_or_init(|| toml::from_str(STATES_TOML).expect("assets/states.toml is valid (tested)"))
}

/// The explanation of a state.
pub fn explain(state: TcpState) -> &'static Explanation {
    table()
        .get(state.kernel_name())
        .expect("every state is explained (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_complete_explanation() {
        for s in TcpState::ALL {
            let e = explain(s);
            for text in [&e.happened, &e.closed_first, &e.waits_for, &e.ends] {
                assert!(text.len() > 5, "{s}: empty field");
            }
        }
    }

    #[test]
    fn close_wait_blames_the_program_not_the_kernel() {
        let e = explain(TcpState::CloseWait);
        assert!(e.closed_first.contains("peer"));
        assert!(e.waits_for.contains("close()"));
        assert!(e.ends.contains("keepalive"));
    }
}
