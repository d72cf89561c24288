# v2_removed: a watched cgroup is removed under the daemon while its memory.events and its
# memory.pressure trigger are armed, then created again. The removed cgroup's files report
# errors from then on; the daemon must log scope_removed, disarm them and live on without a
# wake-up spin (its CPU time over the 2 s after the removal stays under 0.2 s). When the cgroup
# comes back it is watched and armed again, and a fast allocator in it is stopped by oomward
# before the kernel's OOM killer (SIGTERM, or SIGKILL when its projection leaves no room for
# one more look: at full speed under TCG it fills the last 13 MB in 20 ms).
. /lab/lib.sh

make_cgroup app 128M
app=$CG
# Not through a pipe: start_oomward would run in a subshell and OOMWARD_PID be lost.
cgroup_config /app >/tmp/config.toml
start_oomward </tmp/config.toml
wait_until 50 eval '[ "$(log_count events_armed)" -ge 1 ]'

# A process inside for a moment; then the cgroup goes.
start_memhog /tmp/idle.out --cgroup-procs "$app/cgroup.procs" --hold 8 || {
    result FAIL reason=idle_not_ready
    exit 1
}
kill -9 "$HOG_PID"
wait "$HOG_PID" 2>/dev/null
rmdir "$app"
removed=no
wait_until 50 grep -q 'event=scope_removed scope=/app' /tmp/oomward.log && removed=yes
# utime + stime of the daemon, in clock ticks (1/100 s).
ticks() {
    awk '{ print $14 + $15 }' "/proc/$OOMWARD_PID/stat"
}
c0=$(ticks)
sleep 2
c1=$(ticks)
cpu_ticks=$((c1 - c0))

# Back again.
make_cgroup app 128M
wait_until 50 eval '[ "$(log_count events_armed)" -ge 2 ]'
rearmed=$(grep 'event=events_armed scope=/app' /tmp/oomward.log | tail -n1 | tr ' ' '\n' | sed -n 's/^sources=//p')
memhog --cgroup-procs "$app/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 300
s_hog=$STATUS
daemon=dead
alive "$OOMWARD_PID" && daemon=alive
stop_oomward

oom_kill=$(keyed "$app/memory.events" oom_kill)
decided=$(grep -c "event=\(term\|kill\) .* pid=$hog " /tmp/oomward.log)
facts="removed=$removed cpu_ticks_after_removal=$cpu_ticks rearmed=$rearmed status=$s_hog decided=$decided oom_kill=$oom_kill daemon=$daemon"
dump_dmesg
judge "$facts" '[ "$removed" = yes ] && [ "$cpu_ticks" -le 20 ] && [ "$rearmed" = v2_events,cgroup_psi ] && { [ "$s_hog" = 143 ] || [ "$s_hog" = 137 ]; } && [ "$decided" -ge 1 ] && [ "$oom_kill" = 0 ] && [ "$daemon" = alive ]'
