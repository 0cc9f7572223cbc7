//! Puts the commit into `sockscope --version`: `git rev-parse --short HEAD`
//! when building from a checkout, `SOCKSCOPE_COMMIT` when a packager sets it,
//! and "unknown commit" from a tarball without git.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOCKSCOPE_COMMIT");
    let commit = std::env::var("SOCKSCOPE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]));
    // Rebuild when HEAD moves: HEAD itself, and the refs it may point through
    // (in a worktree these live in the common directory).
    for dir in [
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ]
    .into_iter()
    .flatten()
    {
        for file in ["HEAD", "packed-refs"] {
            let path = std::path::Path::new(&dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &head])
        && std::path::Path::new(&path).exists()
    {
        println!("cargo:rerun-if-changed={path}");
    }
    // The man page's date: the commit's, so that a rebuild gives the same page.
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_default();
    println!("cargo:rustc-env=SOCKSCOPE_DATE={date}");
    let commit = commit.unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=SOCKSCOPE_COMMIT={commit}");
}
