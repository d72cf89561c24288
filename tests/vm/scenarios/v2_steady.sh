# v2_steady: a process standing still at 92 % of its cgroup's memory.max (236 MiB of 256M,
# inside the term band that starts at 90 %) is one the kernel never touches: oomward watches
# it for 60 s and signals nobody, saying once why (event=steady). Then a second process starts
# growing in the same cgroup at 20 MiB/s: the cgroup no longer stands still, and oomward acts
# before the kernel (its first decision a SIGTERM), which kills nobody.
#@ mem=768M
. /lab/lib.sh

make_cgroup app 256M
# In place before the daemon starts: its own growth to 236 MiB is not what is shown here.
start_memhog /tmp/still.out --cgroup-procs "$CG/cgroup.procs" --hold 236 || {
    result FAIL reason=still_not_ready
    exit 1
}
still=$HOG_PID
cgroup_config /app | start_oomward
sleep 60
alive "$still" && still_alive=yes || still_alive=no
still_decisions=$(decision_count)
steady_lines=$(log_count steady)
current_mib=$(($(cat "$CG/memory.current") / 1048576))
memhog --cgroup-procs "$CG/cgroup.procs" --rate 20 --grow 200 >/tmp/hog.out 2>&1 &
hog=$!
wait_until 300 eval '[ "$(decision_count)" -ge 1 ]'
first_event=$(decision_field event)
sleep 3
kill -9 "$hog" "$still" 2>/dev/null
stop_oomward
oom_kill=$(keyed "$CG/memory.events" oom_kill)
facts="still_alive=$still_alive still_decisions=$still_decisions steady_lines=$steady_lines current_mib=$current_mib first_event=$first_event oom_kill=$oom_kill"
dump_dmesg
judge "$facts" '[ "$still_alive" = yes ] && [ "$still_decisions" = 0 ] && [ "$steady_lines" = 1 ] && [ "$first_event" = term ] && [ "$oom_kill" = 0 ]'
