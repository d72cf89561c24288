# v2_nested: the limit belongs to an ancestor. /parent has memory.max = 160M and no limit
# below it; oomward watches /parent/app only. A sibling /parent/other holds 80 MiB (more than
# the allocator will have when the trigger fires: the kernel would pick it), but candidates
# come from the watched subtree only: oomward must stop the allocator in /parent/app, leave
# /parent/other alone, trigger on the parent's 160M, and rank with the parent's T.
. /lab/lib.sh

make_cgroup parent 160M
P=$CG
echo +memory >"$P/cgroup.subtree_control"
mkdir "$P/app" "$P/other"

cgroup_config /parent/app | start_oomward

start_memhog /tmp/other.out --cgroup-procs "$P/other/cgroup.procs" --hold 80 || { result FAIL reason=other_not_ready; exit 1; }
other=$HOG_PID

t0=$(now_ms)
memhog --cgroup-procs "$P/app/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 600
t1=$(now_ms)
if alive "$other"; then other_state=alive; else other_state=dead; fi
stop_oomward

oom_kill=$(keyed "$P/memory.events" oom_kill)
victim=$(log_field term pid)
limit=$(log_field term limit)
total_pages=$(log_field term total_pages)
terms=$(log_count term)
facts="status=$STATUS oom_kill=$oom_kill victim=$victim hog=$hog other=$other other_state=$other_state terms=$terms limit=$limit total_pages=$total_pages ms=$((t1 - t0))"

dump "$P/memory.events" memory.events
dump_dmesg
kill -9 "$other" 2>/dev/null

judge "$facts" '[ "$STATUS" = 143 ] && [ "$oom_kill" = 0 ] && [ "$victim" = "$hog" ] && [ "$other_state" = alive ] && [ "$limit" = 167772160 ]'
