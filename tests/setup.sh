#!/usr/bin/env bash
# Installs from Debian what the ignored tests use (`cargo test -- --include-ignored` calls it
# once per test program, as root; so does .ci/setup). Idempotent and quiet when everything is
# there; says what it installs. The VM lab and the packages prepare their own tools
# (tests/vm/prepare*.sh, packaging/build-deps.sh).
set -euo pipefail
need=()
command -v dmesg >/dev/null || need+=(util-linux)
# tests/protection.rs runs the genuine dbus-daemon as a user would, to show it gains nothing;
# tests/notify.rs runs a session bus.
command -v dbus-daemon >/dev/null || need+=(dbus-daemon)
# tests/notify.rs: notifications go out through systemd's busctl, to a stand-in notification
# server written on GLib's D-Bus (Debian's python3-gi).
command -v busctl >/dev/null || need+=(systemd)
/usr/bin/python3 -c 'from gi.repository import Gio' 2>/dev/null || need+=(python3-gi gir1.2-glib-2.0)
# tests/metrics.rs checks the exposition with promtool and scrapes it with a real Prometheus
# server; both come with Debian's prometheus package.
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need+=(prometheus)
# tests/domains.rs runs stress-ng's memfd stressor: memory that dies with its holder.
command -v stress-ng >/dev/null || need+=(stress-ng)
# tests/postgres.rs and tests/redis.rs run the real applications under a memory limit.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "tests/setup.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
