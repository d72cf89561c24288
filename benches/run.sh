#!/usr/bin/env bash
# Runs oomward's benchmark (benches/compare.rs) beside its peers, printing one table:
#   bash benches/run.sh [idle] [idle_cgroups] [rank] [race] [respawn] [rescue] [config]
#   (default: all, about 9 minutes)
# Needs root and a cgroup-v1 memory controller (the race and the hang run inside memory
# cgroups with a limit; the machine as a whole is never short of memory).
# Debian's earlyoom is fetched by package name and unpacked under target/bench-cache, not
# installed: installing it would start it as a service on this machine.
#   bash benches/run.sh desktop [TRIALS]
#   (the VM lab's desktop scenario, tests/systemd_lab.rs `desktop`: a GNOME-like session in the
#   systemd guest, a runaway browser renderer, defended in turn by the kernel alone, earlyoom,
#   nohang, systemd-oomd and oomward, each as Debian packages it; TRIALS boots of each, default
#   3, about 80 s a boot under software emulation. Prints per variant the median and worst of
#   the UI and stall figures, the victims seen and how many innocents died, from the test's
#   table in target/vm-cache/desktop.md. Needs QEMU and root for the first image build, as the
#   VM lab does.)
#   bash benches/run.sh v2
#   (the VM lab's v2_many, tests/vm_lab.rs: an 8 GiB cgroup v2 guest on Debian's 6.12 kernel,
#   earlyoom's idle cost against oomward's with a hundred idle watched cgroups, ten fast
#   allocators in one of them, a page-cache reader's throughput with and without the tripwire;
#   about 2.5 minutes under software emulation)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = v2 ]; then
  exec cargo test --features lab-bench --test vm_lab v2_many -- --include-ignored --nocapture
fi
if [ "${1:-}" = desktop ]; then
  trials="${2:-3}"
  rm -f target/vm-cache/desktop.md
  rc=0
  OOMWARD_BENCH_TRIALS="$trials" cargo test --test systemd_lab -- --include-ignored --exact desktop || rc=$?
  if [ -s target/vm-cache/desktop.md ]; then
    cat target/vm-cache/desktop.md
  fi
  exit "$rc"
fi
cache=target/bench-cache
mkdir -p "$cache"
if [ ! -x "$cache/earlyoom/usr/bin/earlyoom" ]; then
  deb="$(ls "$cache"/earlyoom_*.deb 2>/dev/null | head -n1 || true)"
  if [ -z "$deb" ]; then
    apt-get update -qq
    (cd "$cache" && apt-get download -q earlyoom 2>&1 | grep -v unsandboxed || true)
    deb="$(ls "$cache"/earlyoom_*.deb | head -n1)"
  fi
  rm -rf "$cache/earlyoom"
  dpkg-deb -x "$deb" "$cache/earlyoom"
fi
export OOMWARD_EARLYOOM="$PWD/$cache/earlyoom/usr/bin/earlyoom"
echo "earlyoom: $("$OOMWARD_EARLYOOM" -v 2>&1 | head -n1)"
cargo build --release --bin oomward --example memhog --example supervisor
cargo bench --bench compare -- "$@"
