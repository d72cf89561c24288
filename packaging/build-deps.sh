#!/usr/bin/env bash
# Installs the Debian packages that building and checking the oomward packages need.
# Idempotent and cheap when everything is there: apt runs only for what is missing.
#   bash packaging/build-deps.sh          everything tests/packaging.rs uses
#   bash packaging/build-deps.sh build    only what packaging/build.sh needs
set -euo pipefail

# command:package pairs
build_tools=(dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev dpkg-parsechangelog:dpkg-dev
  rpmbuild:rpm gzip:gzip strip:binutils)
check_tools=(lintian:lintian rpm:rpm rpmlint:rpmlint groff:groff-base man:man-db
  systemd-analyze:systemd)

case "${1:-all}" in
build) wanted=("${build_tools[@]}") ;;
all) wanted=("${build_tools[@]}" "${check_tools[@]}") ;;
*)
  echo "usage: $0 [build|all]" >&2
  exit 2
  ;;
esac

need=()
for pair in "${wanted[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# bash-completion has no command of its own: the test sources its loader.
if [ "${1:-all}" = all ] && [ ! -f /usr/share/bash-completion/bash_completion ]; then
  need+=(bash-completion)
fi

if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "build-deps: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
