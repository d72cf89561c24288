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
    local verdict=$1
    shift
    echo "RESULT $verdict $SCENARIO $*"
}

# wait_until TENTHS CMD...: runs CMD every 0.1 s until it succeeds, at most TENTHS times.
wait_until() {
    local n=$1
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
    local st
    [ -e "/proc/$1/stat" ] || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}

# The value of KEY in a flat keyed file (memory.events, memory.stat). events FILE KEY
keyed() {
    awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "NA" }' "$1"
}

# make_cgroup NAME [MAX [HIGH]]: creates /sys/fs/cgroup/NAME, with memory.max MAX and then
# memory.high HIGH where given (most scenarios make a cgroup and limit it at once); CG is its
# directory.
make_cgroup() {
    CG=/sys/fs/cgroup/$1
    mkdir -p "$CG"
    if [ -n "$2" ]; then echo "$2" >"$CG/memory.max"; fi
    if [ -n "$3" ]; then echo "$3" >"$CG/memory.high"; fi
}

# start_oomward: the config comes on stdin; the daemon logs to /tmp/oomward.log. Waits for its
# start line. Sets OOMWARD_PID.
start_oomward() {
    cat >/tmp/oomward.toml
    oomward run --config /tmp/oomward.toml 2>/tmp/oomward.log &
    OOMWARD_PID=$!
    if ! wait_until 100 grep -qs 'event=start' /tmp/oomward.log; then
        dump /tmp/oomward.log oomward
        result FAIL reason=oomward_did_not_start
        exit 1
    fi
}

# cgroup_config PATH: the usual config for a cgroup scenario (stderr log, no system scope, 1 s
# grace) watching PATH; [[cgroup]] is the last table, so more of its keys can follow:
#   { cgroup_config /app; echo 'kill_unit = "cgroup"'; } | start_oomward
cgroup_config() {
    printf '[daemon]\nlog = "stderr"\n[system]\nenabled = false\n[kill]\ngrace = "1s"\n[[cgroup]]\npath = "%s"\n' "$1"
}

# judge FACTS CONDITION: dumps the daemon's log and prints the verdict: PASS if the shell
# CONDITION (a string, evaluated) holds, else FAIL; FACTS go on the result line either way.
judge() {
    dump /tmp/oomward.log oomward
    if eval "$2"; then
        result PASS "$1"
    else
        result FAIL "$1"
    fi
}

# start_memhog OUT ARGS...: starts memhog in the background with its output in OUT and waits
# until it says `ready` (at most 30 s). Sets HOG_PID. Fails (printing OUT as memhog|) if memhog
# exits first. MEMHOG=PATH runs a copy of memhog at another path (another exe and comm).
start_memhog() {
    local out=$1 n
    shift
    "${MEMHOG:-memhog}" "$@" >"$out" 2>&1 &
    HOG_PID=$!
    n=300
    while [ "$n" -gt 0 ]; do
        grep -q '^ready' "$out" 2>/dev/null && return 0
        if ! alive "$HOG_PID"; then
            dump "$out" memhog
            return 1
        fi
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# shellcheck disable=SC2034 # STATUS is for the scenarios
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

# oomward's decision lines: a new victim signalled, with SIGTERM (event=term) or with SIGKILL at
# once (event=kill: the kill level, or reason=eta when the projected time to exhaustion is
# shorter than the grace, so SIGTERM could not finish in time).
decisions() {
    grep -E 'event=(term|kill) ' /tmp/oomward.log
}

# How many decision lines the daemon's log has.
decision_count() {
    decisions | grep -c .
}

# The first `key=value` of the first decision line, or of the first one naming pid=PID.
# decision_field KEY [PID]
decision_field() {
    decisions | grep -E -m1 " pid=${2:-[0-9]+} " | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'
}

# stopped_how STATUS PID: how oomward stopped PID, which exited with STATUS: `term` (143, a
# decision line event=term naming it), `eta` (137, a decision line event=kill reason=eta naming
# it), `escalated` (137, event=term followed by oomward's escalation to SIGKILL at the last safe
# moment: the projection, the kill level or the grace), else `no`.
stopped_how() {
    local ev reason
    ev=$(decision_field event "$2")
    reason=$(decision_field reason "$2")
    if [ "$1" = 143 ] && [ "$ev" = term ]; then
        echo term
    elif [ "$1" = 137 ] && [ "$ev" = kill ] && [ "$reason" = eta ]; then
        echo eta
    elif [ "$1" = 137 ] && [ "$ev" = term ] &&
        grep -E -q "event=escalate .* pid=$2 " /tmp/oomward.log; then
        echo escalated
    else
        echo no
    fi
}

# setup_zram SIZE: swap on /dev/zram0 of SIZE (e.g. 256M), from the modules the initramfs
# carries. Loads the compressors first: the kernel's own request for them would need
# modules.alias, which the initramfs lacks. Prints zram| lines and fails if it cannot.
setup_zram() {
    for m in lzo lzo-rle lz4_compress lz4; do
        modprobe "$m" 2>/dev/null
    done
    {
        modprobe zram num_devices=1 &&
            echo "$1" >/sys/block/zram0/disksize &&
            mkswap /dev/zram0 >/dev/null &&
            swapon /dev/zram0
    } 2>/tmp/zram.err && return 0
    echo "zram| comp_algorithm: $(cat /sys/block/zram0/comp_algorithm 2>/dev/null)"
    dump /tmp/zram.err zram
    return 1
}

# setup_disk DIR: mounts the lab's scratch ext4 disk (/dev/vda, from `#@ disk`) on DIR, loading
# virtio_pci and virtio_blk first where they are modules.
setup_disk() {
    modprobe virtio_pci 2>/dev/null
    modprobe virtio_blk 2>/dev/null
    wait_until 50 test -b /dev/vda || { echo "disk| no /dev/vda"; return 1; }
    mkdir -p "$1"
    mount -t ext4 /dev/vda "$1" 2>&1 | sed 's/^/disk| /'
    grep -q " $1 " /proc/mounts
}

# PSI memory totals (µs): psi_total some|full prints the `total=` of that line.
psi_total() {
    while read -r kind _ _ _ total; do
        [ "$kind" = "$1" ] && echo "${total#total=}"
    done </proc/pressure/memory
}

# monitor PIDS...: writes "cross=UPTIME ..." (once, when MemAvailable and SwapFree both fell to
# 10 %, the trigger oomward and earlyoom share by default) and "death=UPTIME pid=PID" (once per
# PID, in the order they died) to /tmp/monitor.out, polling every 20 ms with shell built-ins
# only (and sleep), until /tmp/monitor.stop exists. With zram, the largest zram0 mm_stat seen
# (by mem_used_total) is written last as "zram_peak=MM_STAT".
monitor() {
    cross=
    dead=" "
    zram_peak=
    zram_used=0
    while [ ! -e /tmp/monitor.stop ]; do
        read -r up _ </proc/uptime
        if [ -z "$cross" ]; then
            while read -r k v _; do
                case $k in
                MemTotal:) mt=$v ;;
                MemAvailable:) ma=$v ;;
                SwapTotal:) st=$v ;;
                SwapFree:) sf=$v ;;
                esac
            done </proc/meminfo
            if [ $((ma * 10)) -le "$mt" ] && [ $((sf * 10)) -le "$st" ]; then
                cross=$up
                echo "cross=$up avail_kb=$ma swap_free_kb=$sf" >>/tmp/monitor.out
            fi
        fi
        for p in "$@"; do
            case "$dead" in *" $p "*) continue ;; esac
            state=Z
            [ -r "/proc/$p/stat" ] && read -r _ _ state _ <"/proc/$p/stat" 2>/dev/null
            if [ "$state" = Z ]; then
                dead="$dead$p "
                echo "death=$up pid=$p" >>/tmp/monitor.out
            fi
        done
        if [ -r /sys/block/zram0/mm_stat ]; then
            read -r z_orig z_compr z_used z_rest </sys/block/zram0/mm_stat
            if [ "${z_used:-0}" -gt "$zram_used" ]; then
                zram_used=$z_used
                zram_peak="$z_orig $z_compr $z_used $z_rest"
            fi
        fi
        sleep 0.02
    done
    [ -z "$zram_peak" ] || echo "zram_peak=$zram_peak" >>/tmp/monitor.out
}
