# v2_whole_cgroup: the whole cgroup is the unit of a kill, asked for in one of two ways (VARIANT):
#   kill_unit  kill_unit = "cgroup" in the config;
#   oom_group  memory.oom.group = 1 on the cgroup, kill_unit left at "process" (the kernel would
#              kill the whole cgroup at once, and so must oomward).
# Two idle memhogs (the second ignores SIGTERM, so the escalation after `grace` has to reach it:
# v2 writes cgroup.kill) and a fast allocator, the victim. Every process ends, cgroup.procs is
# empty, the kernel's oom_kill counter is 0, and the reports name who needed SIGKILL: the
# escalation is for the second idle process alone, the victim itself left on SIGTERM.
. /lab/lib.sh

make_cgroup app 128M
case "$VARIANT" in
kill_unit) unit='kill_unit = "cgroup"' ;;
oom_group)
    echo 1 >"$CG/memory.oom.group"
    unit=
    ;;
*)
    result FAIL reason=unknown_variant
    exit 1
    ;;
esac
{
    cgroup_config /app
    echo "$unit"
} | start_oomward

start_memhog /tmp/idle1.out --cgroup-procs "$CG/cgroup.procs" --hold 16 || { result FAIL reason=idle1_not_ready; exit 1; }
idle1=$HOG_PID
start_memhog /tmp/idle2.out --cgroup-procs "$CG/cgroup.procs" --hold 16 --ignore-term || { result FAIL reason=idle2_not_ready; exit 1; }
idle2=$HOG_PID
before=$(wc -l <"$CG/cgroup.procs")

t0=$(now_ms)
memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 300
s_hog=$STATUS
wait_exit "$idle1" 100
s_idle1=$STATUS
wait_exit "$idle2" 100
s_idle2=$STATUS
t1=$(now_ms)
# cgroup.procs empties once the exits are complete; the daemon logs the exit within a round.
wait_until 50 eval '[ -z "$(cat "$CG/cgroup.procs")" ]'
left=$(wc -l <"$CG/cgroup.procs")
wait_until 20 grep -q 'event=exit' /tmp/oomward.log
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
facts="status_hog=$s_hog status_idle1=$s_idle1 status_idle2=$s_idle2 procs_before=$before procs_left=$left oom_kill=$oom_kill victim=$(log_field term pid) hog=$hog idle2=$idle2 companions=$(log_field term companions) escalations=$(log_count escalate) escalate_victim_alive=$(log_field escalate victim_alive) escalate_sigkilled=$(log_field escalate sigkilled) exit_signal=$(log_field exit signal) exit_members=$(log_field exit members) exit_sigkilled=$(log_field exit sigkilled) ms=$((t1 - t0))"

dump "$CG/memory.events" memory.events
dump_dmesg
for p in $(cat "$CG/cgroup.procs"); do
    echo "left| $p $(cat "/proc/$p/cmdline" 2>/dev/null | tr '\0' ' ')"
    kill -9 "$p"
done

judge "$facts" '[ "$left" = 0 ] && [ "$oom_kill" = 0 ] && [ "$s_hog" = 143 ] && [ "$s_idle1" = 143 ] && [ "$s_idle2" = 137 ]'
