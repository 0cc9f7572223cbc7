//! Keys → actions, in one table. Defaults live in `assets/keymap.toml`; a
//! user's config file may rebind any action. One key, one action: a key bound
//! twice is an error that names both actions.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::{BTreeMap, HashMap};

pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Filter,
    Back,
    Enter,
    Focus,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    SortNext,
    SortPrev,
    SortReverse,
    Group,
    Pause,
    Slower,
    Faster,
    Resolve,
    Kill,
    Destroy,
    ExportCsv,
    ExportJson,
    Copy,
    ViewSockets,
    ViewFindings,
    ViewCounters,
    ViewSysctls,
    ViewDiagram,
    ViewTransitions,
    StepBack,
    StepForward,
    PlaySlower,
    PlayFaster,
    ReplayStart,
    ReplayEnd,
    JumpTo,
}

impl Action {
    pub const ALL: [Action; 40] = [
        Action::Quit,
        Action::Help,
        Action::Filter,
        Action::Back,
        Action::Enter,
        Action::Focus,
        Action::Up,
        Action::Down,
        Action::Left,
        Action::Right,
        Action::PageUp,
        Action::PageDown,
        Action::Home,
        Action::End,
        Action::SortNext,
        Action::SortPrev,
        Action::SortReverse,
        Action::Group,
        Action::Pause,
        Action::Slower,
        Action::Faster,
        Action::Resolve,
        Action::Kill,
        Action::Destroy,
        Action::ExportCsv,
        Action::ExportJson,
        Action::Copy,
        Action::ViewSockets,
        Action::ViewFindings,
        Action::ViewCounters,
        Action::ViewSysctls,
        Action::ViewDiagram,
        Action::ViewTransitions,
        Action::StepBack,
        Action::StepForward,
        Action::PlaySlower,
        Action::PlayFaster,
        Action::ReplayStart,
        Action::ReplayEnd,
        Action::JumpTo,
    ];

    /// Actions that move through a recording: only `sockscope replay` has them.
    pub const REPLAY: [Action; 7] = [
        Action::StepBack,
        Action::StepForward,
        Action::PlaySlower,
        Action::PlayFaster,
        Action::ReplayStart,
        Action::ReplayEnd,
        Action::JumpTo,
    ];

    /// Actions on the live system or its collection, which a replay refuses.
    pub const LIVE: [Action; 4] = [
        Action::Slower,
        Action::Faster,
        Action::Kill,
        Action::Destroy,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Filter => "filter",
            Action::Back => "back",
            Action::Enter => "enter",
            Action::Focus => "focus",
            Action::Up => "up",
            Action::Down => "down",
            Action::Left => "left",
            Action::Right => "right",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Home => "home",
            Action::End => "end",
            Action::SortNext => "sort_next",
            Action::SortPrev => "sort_prev",
            Action::SortReverse => "sort_reverse",
            Action::Group => "group",
            Action::Pause => "pause",
            Action::Slower => "slower",
            Action::Faster => "faster",
            Action::Resolve => "resolve",
            Action::Kill => "kill",
            Action::Destroy => "destroy",
            Action::ExportCsv => "export_csv",
            Action::ExportJson => "export_json",
            Action::Copy => "copy",
            Action::ViewSockets => "view_sockets",
            Action::ViewFindings => "view_findings",
            Action::ViewCounters => "view_counters",
            Action::ViewSysctls => "view_sysctls",
            Action::ViewDiagram => "view_diagram",
            Action::ViewTransitions => "view_transitions",
            Action::StepBack => "step_back",
            Action::StepForward => "step_forward",
            Action::PlaySlower => "play_slower",
            Action::PlayFaster => "play_faster",
            Action::ReplayStart => "replay_start",
            Action::ReplayEnd => "replay_end",
            Action::JumpTo => "jump_to_time",
        }
    }

    /// One line for the help overlay and the README.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "show or hide this help",
            Action::Filter => "filter (e.g. /6800 cw); typing replaces it, ← → edit it",
            Action::Back => "close; back from a view, drill or jump; clear the filter",
            Action::Enter => "drill into a group, or inspect a connection",
            Action::Focus => "switch focus between the table and the state strip",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::Left => "previous state (state strip) or sort column (table)",
            Action::Right => "next state (state strip) or sort column (table)",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Home => "first row",
            Action::End => "last row",
            Action::SortNext => "sort by the next column",
            Action::SortPrev => "sort by the previous column",
            Action::SortReverse => "reverse the sort order",
            Action::Group => "grouping: process, port, remote host, connections, netns",
            Action::Pause => {
                "pause the view (collection goes on into history); in a replay, play / pause"
            }
            Action::Slower => "longer refresh interval",
            Action::Faster => "shorter refresh interval",
            Action::Resolve => "reverse DNS of remote addresses on/off",
            Action::Kill => "signal the processes holding the selected row",
            Action::Destroy => "destroy the selected connection or the group's sockets",
            Action::ExportCsv => "write the view (every row after the filter) to a CSV file",
            Action::ExportJson => "write the view to a JSON file",
            Action::Copy => "copy the selected row to the clipboard (OSC 52)",
            Action::ViewSockets => "view: sockets (the main table)",
            Action::ViewFindings => "view: findings",
            Action::ViewCounters => "view: kernel counters, per second",
            Action::ViewSysctls => "view: sysctls, with advice",
            Action::ViewDiagram => "view: TCP state diagram with live counts",
            Action::ViewTransitions => {
                "view: transitions (connections opened and closed between refreshes)"
            }
            Action::StepBack => "replay: one frame back",
            Action::StepForward => "replay: one frame forward",
            Action::PlaySlower => "replay: slower playback",
            Action::PlayFaster => "replay: faster playback",
            Action::ReplayStart => "replay: go to the first frame",
            Action::ReplayEnd => "replay: go to the last frame",
            Action::JumpTo => "replay: jump to a time (90s, -1m from the end, 14:05)",
        }
    }

    fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A key as bindings see it: code plus ctrl/alt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Key {
        // Shift is already in the character ('S'); terminals differ on whether
        // they also report the modifier, so it is ignored.
        let code = match ev.code {
            KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }

    pub fn parse(text: &str) -> Option<Key> {
        let (mut ctrl, mut alt, mut rest) = (false, false, text);
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" => KeyCode::Enter,
                "esc" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "backspace" => KeyCode::Backspace,
                "space" => KeyCode::Char(' '),
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pageup" => KeyCode::PageUp,
                "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "delete" => KeyCode::Delete,
                "insert" => KeyCode::Insert,
                f if f.starts_with('f') => {
                    KeyCode::F(f[1..].parse().ok().filter(|n| (1..=12).contains(n))?)
                }
                _ => return None,
            },
        };
        Some(Key { code, ctrl, alt })
    }

    /// How the help overlay writes it.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Insert => "Ins".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        match (self.ctrl, self.alt) {
            // Ctrl-C, but Ctrl-Home.
            (true, _) if base.chars().count() == 1 => format!("Ctrl-{}", base.to_uppercase()),
            (true, _) => format!("Ctrl-{base}"),
            (_, true) => format!("Alt-{base}"),
            _ => base,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: unknown action `{action}`")]
    UnknownAction { file: String, action: String },
    #[error("{file}: `{key}` for `{action}` is not a key")]
    BadKey {
        file: String,
        action: String,
        key: String,
    },
    #[error(
        "{file}: `quit` has no key, which would leave no way out; give it at least one (the default is q, Ctrl-c)"
    )]
    NoQuit { file: String },
    #[error("key `{key}` is bound to both `{first}` and `{second}`")]
    Duplicate {
        key: String,
        first: String,
        second: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    by_key: HashMap<Key, Action>,
    by_action: BTreeMap<Action, Vec<Key>>,
}

#[derive(serde::Deserialize)]
struct KeyFile {
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

fn parse_file(text: &str, file: &str) -> Result<BTreeMap<Action, Vec<Key>>, KeymapError> {
    let parsed: KeyFile = toml::from_str(text).map_err(|e| KeymapError::Syntax {
        file: file.to_string(),
        message: e.message().to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (name, keys) in parsed.keys {
        let action = Action::from_name(&name).ok_or_else(|| KeymapError::UnknownAction {
            file: file.to_string(),
            action: name.clone(),
        })?;
        let keys = keys
            .iter()
            .map(|k| {
                Key::parse(k).ok_or_else(|| KeymapError::BadKey {
                    file: file.to_string(),
                    action: name.clone(),
                    key: k.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(action, keys);
    }
    Ok(out)
}

impl Keymap {
    /// The defaults with the user's overrides (`[keys]` in `user`) applied:
    /// an action named there gets exactly the keys listed.
    pub fn load(user: Option<(&str, &str)>) -> Result<Keymap, KeymapError> {
        let mut bindings = parse_file(DEFAULT_KEYMAP, "assets/keymap.toml")?;
        if let Some((text, file)) = user {
            bindings.extend(parse_file(text, file)?);
            if bindings.get(&Action::Quit).is_none_or(Vec::is_empty) {
                return Err(KeymapError::NoQuit {
                    file: file.to_string(),
                });
            }
        }
        let mut by_key: HashMap<Key, Action> = HashMap::new();
        for (&action, keys) in &bindings {
            for &key in keys {
                if let Some(&first) = by_key.get(&key)
                    && first != action
                {
                    return Err(KeymapError::Duplicate {
                        key: key.label(),
                        first: first.name().to_string(),
                        second: action.name().to_string(),
                    });
                }
                by_key.insert(key, action);
            }
        }
        Ok(Keymap {
            by_key,
            by_action: bindings,
        })
    }

    pub fn defaults() -> Keymap {
        Keymap::load(None).expect("the built-in keymap is valid (tested)")
    }

    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        self.by_key.get(&Key::from_event(ev)).copied()
    }

    pub fn keys(&self, action: Action) -> &[Key] {
        self.by_action.get(&action).map_or(&[], Vec::as_slice)
    }

    /// "q, Ctrl-c" style label of an action's keys.
    pub fn label(&self, action: Action) -> String {
        self.keys(action)
            .iter()
            .map(Key::label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `$XDG_CONFIG_HOME/sockscope/config.toml`, or `~/.config/sockscope/config.toml`.
pub fn config_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("sockscope").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn defaults_load_and_bind_every_action() {
        let km = Keymap::defaults();
        for a in Action::ALL {
            assert!(!km.keys(a).is_empty(), "{} has no key", a.name());
        }
        assert_eq!(
            km.action(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(&press(KeyCode::Char('/'), KeyModifiers::NONE)),
            Some(Action::Filter)
        );
        assert_eq!(
            km.action(&press(KeyCode::Char('S'), KeyModifiers::SHIFT)),
            Some(Action::SortPrev)
        );
        assert_eq!(
            km.action(&press(KeyCode::Esc, KeyModifiers::NONE)),
            Some(Action::Back)
        );
        assert_eq!(
            km.action(&press(KeyCode::Char('k'), KeyModifiers::NONE)),
            Some(Action::Kill),
            "k kills, as in htop"
        );
        assert_eq!(
            km.action(&press(KeyCode::Char('E'), KeyModifiers::SHIFT)),
            Some(Action::ExportJson)
        );
    }

    #[test]
    fn user_overrides_replace_an_actions_keys() {
        let km = Keymap::load(Some(("[keys]\nsort_next = [\"z\"]\n", "cfg"))).unwrap();
        assert_eq!(
            km.action(&press(KeyCode::Char('z'), KeyModifiers::NONE)),
            Some(Action::SortNext)
        );
        assert_eq!(
            km.action(&press(KeyCode::Char('s'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn duplicate_bindings_name_both_actions() {
        let err = Keymap::load(Some(("[keys]\ngroup = [\"q\"]\n", "cfg"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`group`") && text.contains("`quit`"),
            "{text}"
        );
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let e = Keymap::load(Some(("[keys]\nfly = [\"f\"]\n", "cfg"))).unwrap_err();
        assert!(e.to_string().contains("unknown action `fly`"));
        let e = Keymap::load(Some(("[keys]\nquit = []\n", "cfg"))).unwrap_err();
        assert!(matches!(e, KeymapError::NoQuit { .. }), "{e}");
        assert!(e.to_string().contains("no way out"), "{e}");
        let e = Keymap::load(Some(("[keys]\nquit = [\"ctrl-\"]\n", "cfg"))).unwrap_err();
        assert!(e.to_string().contains("not a key"), "{e}");
        let e = Keymap::load(Some(("[keys\n", "cfg"))).unwrap_err();
        assert!(e.to_string().starts_with("cfg: "));
    }

    #[test]
    fn readme_documents_every_action_with_its_default_keys() {
        let readme = include_str!("../../README.md");
        let km = Keymap::defaults();
        for a in Action::ALL {
            let row = readme
                .lines()
                .find(|l| l.ends_with(&format!("| {} |", a.describe())))
                .unwrap_or_else(|| panic!("README has no key row for `{}`", a.name()));
            for k in km.keys(a) {
                assert!(
                    row.contains(&format!("`{}`", k.label())),
                    "README row for {} lacks {}",
                    a.name(),
                    k.label()
                );
            }
        }
    }

    #[test]
    fn key_names_parse() {
        assert_eq!(Key::parse("f5").unwrap().code, KeyCode::F(5));
        assert!(Key::parse("ctrl-c").unwrap().ctrl);
        assert_eq!(Key::parse("space").unwrap().code, KeyCode::Char(' '));
        assert_eq!(Key::parse("nonsense"), None);
        let ctrl_home = Key::parse("ctrl-home").unwrap();
        assert_eq!((ctrl_home.code, ctrl_home.ctrl), (KeyCode::Home, true));
        assert_eq!(ctrl_home.label(), "Ctrl-Home");
        assert_eq!(Key::parse("ctrl-c").unwrap().label(), "Ctrl-C");
        assert_eq!(Key::parse("f13"), None);
    }
}
