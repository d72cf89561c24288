# v2_limit_lowered: a limit written at runtime is the limit from the next look on. /app has
# memory.max = 512M and a process holding 100 MiB that grows at 4 MiB/s: calm, looked at
# cheaply. Once the daemon has watched it calm for 8 s, memory.max is lowered to 160M (what a
# `systemctl set-property MemoryMax=` or a kubelet resize does): the kernel sends no event for
# that. The daemon must see the new limit within max_interval (5 s) plus the time the process
# takes to reach the new term level, and act on it with the normal ladder: SIGTERM first, its
# decision line saying limit=160 MiB; the kernel kills nobody.
. /lab/lib.sh

make_cgroup app 512M
cgroup_config /app | start_oomward
start_memhog /tmp/hog.out --cgroup-procs "$CG/cgroup.procs" --hold 100 --rate 4 --grow 400 || {
    result FAIL reason=hog_not_ready
    exit 1
}
hog=$HOG_PID
sleep 8
calm_decisions=$(decision_count)
t0=$(now_ms)
echo 160M >"$CG/memory.max"
wait_exit "$hog" 400
t1=$(now_ms)
[ "$STATUS" = timeout ] && kill -9 "$hog"
stop_oomward
how=$(stopped_how "$STATUS" "$hog")
oom_kill=$(keyed "$CG/memory.events" oom_kill)
victim=$(decision_field pid)
event=$(decision_field event)
limit=$(decision_field limit)
facts="calm_decisions=$calm_decisions status=$STATUS stopped=$how event=$event victim=$victim hog=$hog limit=$limit oom_kill=$oom_kill ms=$((t1 - t0))"
dump /tmp/hog.out memhog
dump_dmesg
judge "$facts" '[ "$calm_decisions" = 0 ] && [ "$how" = term ] && [ "$event" = term ] && [ "$victim" = "$hog" ] && [ "$limit" = 167772160 ] && [ "$oom_kill" = 0 ]'
