# Helpers for the VM lab's guest scenarios (busybox ash). The test appends this file as
# /lab/lib.sh, /lab/env.sh (SCENARIO, KERNEL) and the scenario as /scenario.sh; every scenario
# starts with `. /lab/lib.sh`.
#
# What the host reads from the serial console:
#   RESULT PASS|FAIL <scenario> key=value ...   the verdict, with the facts it rests on
#   <prefix>| ...                               logs dumped at the end (oomward|, dmesg|, ...)
. /lab/env.sh

# Milliseconds since boot.
now_ms() {
    awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# Prints the verdict line. result PASS|FAIL key=value...
result() {
    verdict=$1
    shift
    echo "RESULT $verdict $SCENARIO $*"
}

# wait_until TENTHS CMD...: runs CMD every 0.1 s until it succeeds, at most TENTHS times.
wait_until() {
    n=$1
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# alive PID: true while PID exists and is not a zombie.
alive() {
    [ -e "/proc/$1/stat" ] || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}

# The value of KEY in a flat keyed file (memory.events, memory.stat). events FILE KEY
keyed() {
    awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "NA" }' "$1"
}

# make_cgroup NAME: creates /sys/fs/cgroup/NAME; CG is its directory.
make_cgroup() {
    CG=/sys/fs/cgroup/$1
    mkdir -p "$CG"
}

# start_oomward: the config comes on stdin; the daemon logs to /tmp/oomward.log. Waits for its
# start line. Sets OOMWARD_PID.
start_oomward() {
    cat >/tmp/oomward.toml
    oomward run --config /tmp/oomward.toml 2>/tmp/oomward.log &
    OOMWARD_PID=$!
    if ! wait_until 100 grep -q 'event=start' /tmp/oomward.log; then
        dump /tmp/oomward.log oomward
        result FAIL reason=oomward_did_not_start
        exit 1
    fi
}

# start_memhog OUT ARGS...: starts memhog in the background with its stdout in OUT and waits
# until it says `ready`. Sets HOG_PID.
start_memhog() {
    out=$1
    shift
    memhog "$@" >"$out" 2>&1 &
    HOG_PID=$!
    wait_until 300 grep -q '^ready' "$out"
}

# wait_exit PID TENTHS: waits until PID ended (at most TENTHS × 0.1 s), then reaps it and sets
# STATUS to its exit status (143 = SIGTERM, 137 = SIGKILL). STATUS=timeout if still alive.
wait_exit() {
    if wait_until "$2" eval "! alive $1"; then
        wait "$1"
        STATUS=$?
    else
        STATUS=timeout
    fi
}

# stop_oomward: ends the daemon (SIGTERM) and waits for it.
stop_oomward() {
    if [ -n "$OOMWARD_PID" ]; then
        kill "$OOMWARD_PID" 2>/dev/null
        wait "$OOMWARD_PID" 2>/dev/null
        OOMWARD_PID=
    fi
}

# dump FILE PREFIX: prints FILE with every line prefixed by "PREFIX| ".
dump() {
    [ -f "$1" ] && sed "s/^/$2| /" "$1"
}

# The kernel's log lines about OOM, prefixed "dmesg| ".
dump_dmesg() {
    dmesg | grep -iE 'oom|killed process|memory cgroup' | sed 's/^/dmesg| /'
}

# The first `key=value` of the first log line with event=EVENT. log_field EVENT KEY
log_field() {
    grep -m1 "event=$1" /tmp/oomward.log | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

# Lines of the daemon's log with event=EVENT.
log_count() {
    grep -c "event=$1" /tmp/oomward.log
}
