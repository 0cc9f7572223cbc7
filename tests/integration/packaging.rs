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

/// The unit's `[Service]` settings, in order (a key may repeat).
fn unit_settings() -> (String, Vec<(String, String)>) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/systemd/sockscope.service");
    let text = std::fs::read_to_string(path).unwrap();
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if section == "Service" {
            let (k, v) = line.split_once('=').expect("key=value");
            settings.push((k.to_string(), v.to_string()));
        }
    }
    (text, settings)
}

#[test]
fn systemd_unit_serves_on_loopback_with_only_the_capabilities_to_read_fd_tables() {
    let (text, settings) = unit_settings();
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1);
    let argv: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(argv[0], "/usr/bin/sockscope", "the package's path");
    // The arguments are ones the binary accepts, and say loopback.
    use clap::Parser;
    let cli = sockscope::cli::Cli::try_parse_from(&argv).expect("ExecStart parses");
    match cli.command {
        Some(sockscope::cli::Command::Serve(args)) => {
            assert!(args.listen.ip().is_loopback(), "{}", args.listen);
            assert_eq!(args.listen.port(), 10737);
        }
        other => panic!("ExecStart runs {other:?}, not serve"),
    }
    assert!(cli.read_only);

    let bounding = get("CapabilityBoundingSet").join(" ");
    let caps: std::collections::BTreeSet<&str> = bounding.split_whitespace().collect();
    assert_eq!(
        caps,
        ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]
            .into_iter()
            .collect(),
        "exactly the capabilities that read other users' /proc/PID/fd"
    );
    assert_eq!(
        get("AmbientCapabilities"),
        ["CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"]
    );
    assert!(
        !text.contains("CAP_NET_ADMIN="),
        "never able to destroy sockets"
    );
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("DynamicUser", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("SystemCallArchitectures", "native"),
        ("IPAddressDeny", "any"),
        ("IPAddressAllow", "localhost"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
        ),
    ] {
        assert_eq!(get(key), [value], "{key}");
    }
    // What would blind it: another network namespace, hidden processes, no /proc/net.
    for key in ["PrivateNetwork", "ProtectProc", "ProcSubset", "User"] {
        assert!(get(key).is_empty(), "{key} is set");
    }
    assert!(text.contains("\n[Install]\nWantedBy=multi-user.target\n"));
}

/// `systemd-analyze verify` accepts the unit and `security --offline`
/// rates it; where systemd-analyze is missing (containers without systemd)
/// the content test above is what checks it.
#[test]
fn systemd_analyze_verifies_the_unit_and_rates_its_exposure_low() {
    let Some(analyze) = find_program("systemd-analyze") else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"\nSKIPPED systemd_analyze_verifies_the_unit_and_rates_its_exposure_low: no systemd-analyze (the unit's content is tested anyway)\n",
        );
        return;
    };
    let (text, _) = unit_settings();
    let dir = tempfile::tempdir().unwrap();
    // The unit as installed, but running the binary under test, and with
    // the man page its Documentation= names where man finds it.
    let unit = dir.path().join("sockscope.service");
    std::fs::write(&unit, text.replace("/usr/bin/sockscope", common::bin())).unwrap();
    std::fs::create_dir_all(dir.path().join("man/man1")).unwrap();
    std::fs::write(dir.path().join("man/man1/sockscope.1"), stdout_of(&["man"])).unwrap();

    let verify = common::output(
        std::process::Command::new(&analyze)
            .arg("verify")
            .arg(&unit)
            .env("MANPATH", dir.path().join("man")),
    );
    assert_eq!(
        verify.status.code(),
        Some(0),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = common::output(
        std::process::Command::new(&analyze)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&unit),
    );
    let out = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for sockscope.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure figure in:\n{out}{}",
                String::from_utf8_lossy(&security.stderr)
            )
        });
    // README: 2.0 ("OK") with systemd 252; 10 is an unhardened service.
    assert!(exposure <= 2.5, "exposure {exposure}");
}
