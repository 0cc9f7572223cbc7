#!/usr/bin/env bash
# Builds target/debian/sockscope_*.deb: the release binary, then the man
# page and the completions generated from it (the paths the
# [package.metadata.deb] assets in Cargo.toml name), then `cargo deb`.
# Needs cargo-deb: cargo install cargo-deb --locked
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
bin=target/release/sockscope
mkdir -p target/assets
"$bin" man | gzip -9n > target/assets/sockscope.1.gz
"$bin" completions bash > target/assets/sockscope.bash
"$bin" completions zsh > target/assets/_sockscope
"$bin" completions fish > target/assets/sockscope.fish
cargo deb --no-build "$@"
