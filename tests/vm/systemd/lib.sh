# Helpers for the systemd guest's scenarios (dash), sourced after /lab/lib.sh:
#   . /lab/lib.sh; . /lab/systemd.sh
# The package under test is /lab/oomward.deb; memhog and supervisor are in /usr/local/bin.

# A unit's property. prop UNIT PROPERTY
prop() {
    systemctl show -p "$2" --value "$1"
}

# The journal of the oomward unit as JSON, one entry a line, into /tmp/journal.json: the
# daemon's own entries (OOMWARD_* fields) and systemd's about the unit.
journal_json() {
    journalctl --no-pager -u oomward.service -o json >/tmp/journal.json 2>/dev/null
}

# The value of FIELD in a JSON journal entry (a line) on stdin; plain strings only (journalctl
# prints a field that is not valid UTF-8 as an array of numbers). json_field FIELD
json_field() {
    sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n1
}

# Entries of /tmp/journal.json with OOMWARD_EVENT=EVENT. events EVENT
events() {
    grep "\"OOMWARD_EVENT\":\"$1\"" /tmp/journal.json
}

# The daemon's decision entries (event term: SIGTERM sent; kill: SIGKILL at once).
decision_entries() {
    grep -E '"OOMWARD_EVENT":"(term|kill)"' /tmp/journal.json
}

# The journal of the oomward unit as text lines (`journal| ...`), for the transcript.
dump_journal() {
    journalctl --no-pager -u oomward.service -o short-monotonic 2>&1 | sed 's/^/journal| /'
}

# The kernel's OOM lines (`dmesg| ...`), for the transcript.
dmesg_oom() {
    dmesg | grep -iE 'oom|killed process' | sed 's/^/dmesg| /'
}

# shellcheck disable=SC2034 # DPKG_RC is for the scenarios
# install_package: dpkg -i of the package under test, its output as `dpkg| ` lines.
# Sets DPKG_RC.
install_package() {
    dpkg -i /lab/oomward.deb >/tmp/dpkg.log 2>&1
    DPKG_RC=$?
    dump /tmp/dpkg.log dpkg
}

# wait_active UNIT TENTHS: waits until UNIT is active (at most TENTHS × 0.1 s).
wait_active() {
    wait_until "$2" systemctl -q is-active "$1"
}

# A unit's main PID. main_pid UNIT
main_pid() {
    prop "$1" MainPID
}

# lab_modules: indexes the modules the lab appended under /usr/lib/modules/$(uname -r) (zram,
# virtio_blk and what they need; no modules.dep.bin comes with them), so that modprobe, and
# the kernel's own requests for a compressor, find them.
lab_modules() {
    depmod 2>&1 | grep -v 'could not open modules\.' | sed 's/^/depmod| /'
}

# as_alice CMD...: runs CMD as the desktop user alice (uid 1000, lingering: her user manager
# runs from the boot), with her runtime directory, so that `systemd-run --user` reaches it.
as_alice() {
    runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/1000 \
        DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus "$@"
}
