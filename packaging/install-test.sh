#!/usr/bin/env bash
# CI: installs the package built by packaging/deb.sh with dpkg, checks that
# the binary, the man page and the completions are in place and work from
# the installed paths, then purges it and checks that nothing is left.
# Refuses to run where sockscope is already installed (it would remove it).
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/debian/sockscope_*.deb | head -1)
if dpkg-query -W sockscope >/dev/null 2>&1; then
  echo "install-test: sockscope is already installed here; not touching it" >&2
  exit 1
fi
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}')
# Slim images exclude man pages and docs from every package
# (/etc/dpkg/dpkg.cfg.d); re-include ours so the check means something.
dpkg --path-include='/usr/share/man/man1/sockscope.1.gz' \
  --path-include='/usr/share/doc/sockscope/*' -i "$deb"
trap 'dpkg --purge sockscope >/dev/null 2>&1 || true' EXIT
fail() { echo "install-test: $*" >&2; exit 1; }
/usr/bin/sockscope --version | grep -Eq '^sockscope [0-9.]+ \(.+\)$' || fail "sockscope --version"
[ "$(man -w sockscope)" = /usr/share/man/man1/sockscope.1.gz ] || fail "man -w sockscope: $(man -w sockscope 2>&1)"
MANPAGER=cat MANWIDTH=100 man sockscope | grep -q 'SOCKSCOPE SERVE' || fail "man sockscope"
bash -c 'source /usr/share/bash-completion/completions/sockscope && complete -p sockscope' >/dev/null ||
  fail "bash completion"
for f in /usr/share/zsh/vendor-completions/_sockscope /usr/share/fish/vendor_completions.d/sockscope.fish \
  /lib/systemd/system/sockscope.service /usr/share/doc/sockscope/examples/keymap.toml; do
  [ -s "$f" ] || fail "$f missing"
done
dpkg --purge sockscope
trap - EXIT
for f in $files; do
  [ ! -e "$f" ] || fail "$f is left after dpkg --purge"
done
[ ! -e /usr/share/sockscope ] && [ ! -e /usr/share/doc/sockscope ] || fail "directories left after dpkg --purge"
echo "install-test: installed, used and purged $(basename "$deb")"
