//! The system tool's surface: `--version` with the commit, shell
//! completions and the man page, all generated from the CLI definition and
//! checked against it (every subcommand appears), the page rendered by the
//! real `man`.

use crate::common;
use clap::CommandFactory;
use common::{find_program, sockscope};

/// Every subcommand the binary accepts, from the same definition it parses with.
fn subcommands() -> Vec<String> {
    let names: Vec<String> = sockscope::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for expected in ["snapshot", "diagnose", "serve", "completions", "man"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

fn stdout_of(args: &[&str]) -> String {
    let out = common::output(&mut sockscope(args));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn version_names_the_package_version_and_the_commit_it_was_built_from() {
    let version = stdout_of(&["--version"]);
    let line = version.trim();
    assert!(
        line.starts_with(&format!("sockscope {} (", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    let commit = line
        .rsplit_once('(')
        .and_then(|(_, c)| c.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no commit in {line:?}"));
    // Built from a checkout (as CI's fresh clone is), it is HEAD's short hash.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(out) if out.status.success() => {
            assert_eq!(
                commit,
                String::from_utf8_lossy(&out.stdout).trim(),
                "{line}"
            )
        }
        _ => assert_eq!(commit, "unknown commit", "{line}"),
    }
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for sub in &subs {
            assert!(
                script.contains(sub.as_str()),
                "{shell} script lacks `{sub}`"
            );
        }
        assert!(script.contains("read-only"), "{shell}: global flags");
    }
    let out = common::output(&mut sockscope(&["completions", "powershell"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// The bash script is valid bash: sourcing it defines the completion function.
#[test]
fn bash_completion_script_loads_in_bash() {
    let Some(bash) = find_program("bash") else {
        common::skipped(
            "bash_completion_script_loads_in_bash",
            "the bash completion script",
            "bash is not on PATH",
            "install bash",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("sockscope.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    let out = common::output(std::process::Command::new(bash).args([
        "-c",
        &format!(
            "source {} && complete -p sockscope",
            script.to_str().unwrap()
        ),
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sockscope"));
}

#[test]
fn man_page_has_a_section_per_subcommand_and_the_reference_sections() {
    let roff = stdout_of(&["man"]);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH sockscope 1"),
        "{}",
        &roff[..200.min(roff.len())]
    );
    for sub in subcommands() {
        assert!(
            roff.contains(&format!(".SH \"SOCKSCOPE {}\"", sub.to_uppercase())),
            "no section for `{sub}`"
        );
    }
    for section in [
        "FILTER LANGUAGE",
        "KEYS",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
    ] {
        assert!(
            roff.contains(&format!(".SH {section}"))
                || roff.contains(&format!(".SH \"{section}\"")),
            "no {section} section"
        );
    }
    // Every action of the keymap is documented under KEYS, by its config name.
    for action in sockscope::app::keymap::Action::ALL {
        assert!(
            roff.contains(&format!("({})", action.name())),
            "{}",
            action.name()
        );
    }
    // Every line of roff text is plain ASCII (non-ASCII is escaped), so the
    // page renders without preconv.
    assert!(roff.is_ascii(), "non-ASCII in the roff source");
}

/// `man -l` (man-db, with groff) renders the page, with groff's warnings
/// on, and the rendered text names every subcommand.
#[test]
fn man_page_renders_with_man_and_groff_without_warnings() {
    let (Some(man), Some(groff)) = (find_program("man"), find_program("groff")) else {
        common::skipped(
            "man_page_renders_with_man_and_groff_without_warnings",
            "the man page",
            "man or groff is not on PATH",
            ".ci/run installs them: Debian packages man-db and groff-base",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("sockscope.1");
    std::fs::write(&page, stdout_of(&["man"])).unwrap();

    let lint = common::output(
        std::process::Command::new(groff)
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page),
    );
    assert_eq!(lint.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&lint.stderr),
        "",
        "groff warns about the page"
    );

    let out = common::output(
        std::process::Command::new(man)
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LANG", "C.UTF-8"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // man may embolden with backspaces when not writing to a terminal.
    let text: String = {
        let mut plain = String::new();
        for c in text.chars() {
            if c == '\u{8}' {
                plain.pop();
            } else {
                plain.push(c);
            }
        }
        plain
    };
    for sub in subcommands() {
        assert!(
            text.contains(&format!("SOCKSCOPE {}", sub.to_uppercase())),
            "rendered page lacks the `{sub}` section"
        );
        assert!(text.contains(&format!("sockscope {sub}")), "{sub}");
    }
    for heading in [
        "FILTER LANGUAGE",
        "KEYS",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
    ] {
        assert!(text.contains(heading), "rendered page lacks {heading}");
    }
    assert!(
        text.contains("close-wait"),
        "the filter language is rendered"
    );
}
