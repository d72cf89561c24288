#@ mem=8G
#@ earlyoom
#@ disk
# v2_many: what watching a node's worth of cgroup v2 cgroups costs, against earlyoom in the same
# guest, and whether a fast allocator in one of them is still stopped. One guest, four phases:
# 1. earlyoom alone at Debian's defaults (-r 3600): after 3 s, its wake-ups (context switches of
#    every thread, /proc/PID/task/*/status) and CPU time (schedstat) over WINDOW s, scaled to a
#    minute, as v2_idle measures oomward. Then it is stopped.
# 1b. oomward alone at its defaults (the system scope), the same window.
# 2. PODS cgroups /pods/p001../pods/p100, memory.max 256M, one sleeping process each; oomward
#    watching them alone (the system scope off, as the benchmark's v1 row measures it: what the
#    cgroups cost, against what watching the system costs earlyoom; with 1b the two add up),
#    grace 1 s and one `[[cgroup]] path = "/pods/*"`. Once every pod is armed (events_armed) and 5 s have passed,
#    a window of POD_WINDOW s (past the minute after which each cgroup is sampled in full again,
#    so that those samples are in it): wake-ups and CPU per minute, the ratios to earlyoom's, VmRSS and
#    descriptors. After it: no decision, every sleeper alive.
# 3. RACES allocators, one after the other in /pods/p001 under the same daemon, each growing
#    600 MiB as fast as it can past the 256M limit: its exit status (143 SIGTERM, 137 SIGKILL),
#    the kernel's kills (memory.events oom_kill delta), and from the daemon's decision line how
#    (term, eta, escalated) and why (reason=, wake=). The next starts once the daemon logged
#    the victim's exit and the cgroup is back to its sleeper.
# 4. A cache-heavy service: /cache (memory.max 256M) with a reader looping `dd bs=1M` over a
#    400 MiB file on the scratch disk (written outside the cgroup, then dropped from the cache),
#    whole passes until CACHE_SECS s have passed: MB/s (10^6 bytes a second), the cgroup's
#    memory.events `high` delta, oomward's wake-ups and CPU over the reader's time. A fresh
#    daemon watches /cache only (system scope at its defaults): after one unmeasured pass,
#    first with `tripwire = false`, then as configured by default (the memory.high tripwire on).
# PASS: earlyoom and oomward alive through their phases, the sleepers alive after phases 2 and
# 3, no decision in phase 2, and in every race the kernel killed nothing and a signal ended the
# allocator. The figures (wake-ups, CPU, throughput) are reported, not judged.
# Guest time under TCG: about 215 s after a 3 s boot.
. /lab/lib.sh

WINDOW=30
POD_WINDOW=70
PODS=100
RACES=10
CACHE_SECS=20
CACHE_MIB=400

# Context switches (voluntary + involuntary) and CPU ns, summed over the threads of PID.
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { printf "%.0f\n", s }'
}
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
# idle_window PID [SECS]: sleeps SECS s (default WINDOW); sets WAKEUPS and CPU_MS (per minute of
# PID) and MS.
idle_window() {
    local w0 c0 t0 w1 c1
    w0=$(switches "$1")
    c0=$(cpu_ns "$1")
    t0=$(now_ms)
    sleep "${2:-$WINDOW}"
    w1=$(switches "$1")
    c1=$(cpu_ns "$1")
    MS=$(($(now_ms) - t0))
    WAKEUPS=$(((w1 - w0) * 60000 / MS))
    CPU_MS=$(awk -v c="$((c1 - c0))" -v ms="$MS" 'BEGIN { printf "%.1f\n", c / 1e6 * 60000 / ms }')
}
# ratio A B: A/B with 2 decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "NA" }'
}
# Phases in which oomward was found dead, comma-separated (empty: alive whenever looked at).
ow_dead=
check_oomward() {
    alive "$OOMWARD_PID" || ow_dead="$ow_dead${ow_dead:+,}$1"
}
# How many of the sleepers are alive.
sleepers_alive() {
    local n=0 p
    for p in $sleepers; do
        alive "$p" && n=$((n + 1))
    done
    echo "$n"
}

# 1. earlyoom alone.
earlyoom -r 3600 >/tmp/earlyoom.log 2>&1 &
eo=$!
wait_until 50 grep -qs 'mem total' /tmp/earlyoom.log
sleep 3
idle_window "$eo"
eo_wakeups=$WAKEUPS
eo_cpu=$CPU_MS
eo_ms=$MS
eo_state=dead
alive "$eo" && eo_state=alive
kill "$eo" 2>/dev/null
wait "$eo" 2>/dev/null

# 1b. oomward alone at its defaults (the system scope, no cgroup): what the hundred cgroups
# below add to it.
printf '[daemon]\nlog = "stderr"\n' >/tmp/config.toml
start_oomward </tmp/config.toml
sleep 3
idle_window "$OOMWARD_PID"
sys_wakeups=$WAKEUPS
sys_cpu=$CPU_MS
check_oomward system
stop_oomward
mv /tmp/oomward.log /tmp/oomward-system.log

# 2. PODS idle cgroups.
t0=$(now_ms)
mkdir -p /sys/fs/cgroup/pods
echo +memory >/sys/fs/cgroup/pods/cgroup.subtree_control
sleepers=
i=1
while [ "$i" -le "$PODS" ]; do
    d=/sys/fs/cgroup/pods/$(printf 'p%03d' "$i")
    mkdir "$d"
    echo 256M >"$d/memory.max"
    sh -c "echo \$\$ >$d/cgroup.procs && exec sleep 3600" &
    sleepers="$sleepers $!"
    i=$((i + 1))
done
wait_until 100 eval '[ "$(cat /sys/fs/cgroup/pods/p*/cgroup.procs | wc -l)" -ge "$PODS" ]'
pods_ms=$(($(now_ms) - t0))

# Not through a pipe: start_oomward would run in a subshell and OOMWARD_PID be lost.
printf '[daemon]\nlog = "stderr"\n[system]\nenabled = false\n[kill]\ngrace = "1s"\n[[cgroup]]\npath = "/pods/*"\n' >/tmp/config.toml
t0=$(now_ms)
start_oomward </tmp/config.toml
pods_armed() {
    grep -c 'event=events_armed scope=/pods/' /tmp/oomward.log
}
wait_until 600 eval '[ "$(pods_armed)" -ge "$PODS" ]'
armed=$(pods_armed)
arm_ms=$(($(now_ms) - t0))
sleep 5
threads=$(ls /proc/"$OOMWARD_PID"/task | wc -l)
idle_window "$OOMWARD_PID" "$POD_WINDOW"
ow_wakeups=$WAKEUPS
ow_cpu=$CPU_MS
ow_ms=$MS
ow_rss_kb=$(awk '/^VmRSS:/ { print $2 }' /proc/"$OOMWARD_PID"/status)
ow_fds=$(ls /proc/"$OOMWARD_PID"/fd | wc -l)
check_oomward idle
sleepers_idle=$(sleepers_alive)
decisions_idle=$(decision_count)
ratio_wakeups=$(ratio "$ow_wakeups" "$eo_wakeups")
ratio_cpu=$(ratio "$ow_cpu" "$eo_cpu")
echo "figures| earlyoom: $eo_wakeups wake-ups, $eo_cpu ms CPU a minute ($eo_ms ms window)"
echo "figures| oomward, $PODS cgroups: $ow_wakeups wake-ups, $ow_cpu ms CPU a minute ($ow_ms ms window), $threads threads, VmRSS $ow_rss_kb kB, $ow_fds fds"
echo "figures| oomward/earlyoom: wake-ups $ratio_wakeups, CPU $ratio_cpu"

# 3. Races in /pods/p001, under the same daemon.
p1=/sys/fs/cgroup/pods/p001
race_kernel=0
race_term=0
race_kill=0
race_stopped=0
race_statuses=
race_how=
race_reasons=
race_wakes=
race_exit_ms=
run=0
while [ "$run" -lt "$RACES" ]; do
    run=$((run + 1))
    k0=$(keyed "$p1/memory.events" oom_kill)
    memhog --cgroup-procs "$p1/cgroup.procs" --rate 0 --grow 600 >/tmp/hog.out 2>&1 &
    hog=$!
    wait_exit "$hog" 600
    if [ "$STATUS" = timeout ]; then
        kill -9 "$hog" 2>/dev/null
        wait "$hog" 2>/dev/null
    fi
    k1=$(keyed "$p1/memory.events" oom_kill)
    race_kernel=$((race_kernel + k1 - k0))
    case $STATUS in
    143) race_term=$((race_term + 1)) ;;
    137) race_kill=$((race_kill + 1)) ;;
    esac
    # The daemon has seen the exit (when it signalled), and the cgroup holds its sleeper alone.
    wait_until 50 grep -q "event=exit .* pid=$hog " /tmp/oomward.log
    wait_until 50 eval '[ "$(cat $p1/memory.current)" -lt 16777216 ]'
    how=$(stopped_how "$STATUS" "$hog")
    [ "$how" != no ] && [ "$k1" = "$k0" ] && race_stopped=$((race_stopped + 1))
    reason=$(decision_field reason "$hog")
    wake=$(decision_field wake "$hog")
    exit_ms=$(grep -m1 "event=exit .* pid=$hog " /tmp/oomward.log | tr ' ' '\n' | sed -n 's/^after_ms=//p')
    race_statuses="$race_statuses${race_statuses:+,}$STATUS"
    race_how="$race_how${race_how:+,}$how"
    race_reasons="$race_reasons${race_reasons:+,}${reason:--}"
    race_wakes="$race_wakes${race_wakes:+,}${wake:--}"
    race_exit_ms="$race_exit_ms${race_exit_ms:+,}${exit_ms:--}"
    sleep 1
done
check_oomward race
sleepers_end=$(sleepers_alive)
race_decisions=$(decision_count)
stop_oomward
mv /tmp/oomward.log /tmp/oomward-pods.log
dump "$p1/memory.events" p001.events

# 4. The cache-heavy service.
setup_disk /mnt || {
    result FAIL reason=no_disk
    exit 1
}
t0=$(now_ms)
dd if=/dev/zero of=/mnt/big bs=1M count="$CACHE_MIB" 2>/dev/null
sync
write_ms=$(($(now_ms) - t0))
make_cgroup cache 256M
cache=$CG
cat >/tmp/reader.sh <<'SH'
# reader.sh CGROUP SECS: joins CGROUP, then reads /mnt/big whole with dd, pass after pass, until
# SECS s have passed; prints "PASSES MS" (the passes that completed, and the time they took).
echo $$ >"$1/cgroup.procs"
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
t0=$(ms)
passes=0
while :; do
    dd if=/mnt/big of=/dev/null bs=1M 2>/dev/null || break
    passes=$((passes + 1))
    [ $(($(ms) - t0)) -ge $(($2 * 1000)) ] && break
done
echo "$passes $(($(ms) - t0))"
SH
# cache_run TAG [KEY]: a fresh daemon watching /cache (KEY, a line such as `tripwire = false`,
# appended to its [[cgroup]]), the file out of the cache, memory.high at max, then the reader.
# Sets the cache_*_TAG figures; the daemon's log is kept as /tmp/oomward-cache-TAG.log.
cache_run() {
    local tag=$1 passes ms w0 c0 h0 t0 wall
    echo max >"$cache/memory.high"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    {
        printf '[daemon]\nlog = "stderr"\n[kill]\ngrace = "1s"\n[[cgroup]]\npath = "/cache"\n'
        [ -z "$2" ] || echo "$2"
    } >/tmp/config.toml
    start_oomward </tmp/config.toml
    wait_until 100 grep -q 'event=events_armed scope=/cache ' /tmp/oomward.log
    sleep 2
    h0=$(keyed "$cache/memory.events" high)
    w0=$(switches "$OOMWARD_PID")
    c0=$(cpu_ns "$OOMWARD_PID")
    t0=$(now_ms)
    sh /tmp/reader.sh "$cache" "$CACHE_SECS" >/tmp/reader.out 2>/tmp/reader.err
    wall=$(($(now_ms) - t0))
    eval "cache_wakeups_$tag=$(($(switches "$OOMWARD_PID") - w0))"
    eval "cache_cpu_ms_$tag=$(awk -v c="$(($(cpu_ns "$OOMWARD_PID") - c0))" 'BEGIN { printf "%.1f\n", c / 1e6 }')"
    eval "cache_high_$tag=$(($(keyed "$cache/memory.events" high) - h0))"
    read -r passes ms </tmp/reader.out
    eval "cache_passes_$tag=${passes:-0}"
    eval "cache_ms_$tag=$wall"
    eval "cache_mbps_$tag=$(awk -v p="${passes:-0}" -v mib="$CACHE_MIB" -v ms="${ms:-0}" 'BEGIN { if (ms > 0) printf "%.1f\n", p * mib * 1048576 / 1e6 / (ms / 1000); else print "NA" }')"
    eval "cache_memhigh_$tag=$(cat "$cache/memory.high")"
    eval "cache_tripwire_$tag=$(log_count tripwire_set)"
    eval "cache_decisions_$tag=$(decision_count)"
    check_oomward "cache_$tag"
    stop_oomward
    mv /tmp/oomward.log "/tmp/oomward-cache-$tag.log"
}
# One pass first, unmeasured, in the cgroup without a daemon: the first reads of a fresh disk
# image are slower in the guest (seen as 400 against 490 MB/s for the same settings), which
# would make whichever variant runs first look worse. Then without the tripwire, then with it.
sh /tmp/reader.sh "$cache" 0 >/dev/null 2>&1
tripwire_key=yes
cache_run off 'tripwire = false'
cache_run on
echo "figures| cache reader: on $cache_mbps_on MB/s (high +$cache_high_on, oomward $cache_wakeups_on wake-ups), off $cache_mbps_off MB/s (high +$cache_high_off, oomward $cache_wakeups_off wake-ups)"

facts="earlyoom=$eo_state oomward_dead=${ow_dead:-none} eo_wakeups_per_min=$eo_wakeups eo_cpu_ms_per_min=$eo_cpu eo_window_ms=$eo_ms"
facts="$facts sys_wakeups_per_min=$sys_wakeups sys_cpu_ms_per_min=$sys_cpu pods=$PODS pods_ms=$pods_ms armed=$armed arm_ms=$arm_ms threads=$threads ow_wakeups_per_min=$ow_wakeups ow_cpu_ms_per_min=$ow_cpu ow_window_ms=$ow_ms ow_rss_kb=$ow_rss_kb ow_fds=$ow_fds ratio_wakeups=$ratio_wakeups ratio_cpu=$ratio_cpu"
facts="$facts sleepers_idle=$sleepers_idle sleepers_end=$sleepers_end decisions_idle=$decisions_idle"
facts="$facts race_runs=$run race_kernel=$race_kernel race_term=$race_term race_kill=$race_kill race_stopped=$race_stopped race_decisions=$race_decisions race_statuses=$race_statuses race_how=$race_how race_reasons=$race_reasons race_wakes=$race_wakes race_exit_ms=$race_exit_ms"
facts="$facts cache_write_ms=$write_ms tripwire_key=$tripwire_key"
for tag in on off; do
    for k in mbps high wakeups cpu_ms passes ms memhigh tripwire decisions; do
        eval "facts=\"\$facts cache_${k}_$tag=\$cache_${k}_$tag\""
    done
done

dump /tmp/earlyoom.log earlyoom
dump /tmp/oomward-pods.log oomward-pods
dump /tmp/oomward-cache-on.log oomward-cache-on
dump "$cache/memory.events" cache.events
dump_dmesg
[ -f /tmp/oomward-cache-off.log ] && mv /tmp/oomward-cache-off.log /tmp/oomward.log
judge "$facts" '[ "$eo_state" = alive ] && [ -z "$ow_dead" ] && [ "$sleepers_idle" = "$PODS" ] && [ "$sleepers_end" = "$PODS" ] && [ "$decisions_idle" = 0 ] && [ "$run" = "$RACES" ] && [ "$race_kernel" = 0 ] && [ "$race_stopped" = "$RACES" ]'
