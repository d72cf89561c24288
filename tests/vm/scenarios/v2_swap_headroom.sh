# v2_swap_headroom: with swap, memory.max is not an OOM: the kernel swaps the excess out. A
# cgroup with memory.max = 64M and memory.swap.max = 64M (zram swap on):
# 1. one process holds 80 MiB and sits still: it fits in memory + swap, the kernel never
#    OOM-kills it, and neither may oomward (still alive after 3 s, no decision line);
# 2. that one gone, a fast allocator grows to 400 MiB: once memory and the cgroup's swap are
#    both nearly used up, oomward stops it, before the kernel's OOM killer (memory.events
#    oom_kill stays 0), with some of it already in swap: by SIGTERM, or by SIGKILL at once
#    when its decision line says reason=eta (the fill rate seen in phase 1 can project the
#    limit within the 1 s grace).
. /lab/lib.sh

setup_zram 256M || { result FAIL reason=no_zram; exit 1; }
make_cgroup app 64M
echo 64M >"$CG/memory.swap.max"

cgroup_config /app | start_oomward

# Phase 1. (If oomward stops it while it is still filling its 80 MiB, that is the failure.)
start_memhog /tmp/hold.out --cgroup-procs "$CG/cgroup.procs" --hold 80 && ready=1 || ready=0
holder=$HOG_PID
[ "$ready" = 1 ] && sleep 3
if alive "$holder"; then state=alive; else
    wait "$holder"
    state="dead_$?"
fi
swap_holding=$(cat "$CG/memory.swap.current")
decisions_holding=$(decision_count)
kill -9 "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# Phase 2.
memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 600
wait_until 20 grep -q 'event=exit' /tmp/oomward.log
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
stopped=$(stopped_how "$STATUS" "$hog")
facts="holder_state=$state ready=$ready decisions_holding=$decisions_holding swap_holding=$swap_holding status=$STATUS stopped=$stopped reason=$(decision_field reason) eta_ms=$(decision_field eta_ms) oom_kill=$oom_kill victim=$(decision_field pid) hog=$hog victim_swap_pages=$(decision_field swap_pages) total_pages=$(decision_field total_pages) available=$(decision_field available) limit=$(decision_field limit)"

dump "$CG/memory.events" memory.events
dump /tmp/hog.out memhog
dump_dmesg

judge "$facts" '[ "$state" = alive ] && [ "$decisions_holding" = 0 ] && [ "$stopped" != no ] && [ "$oom_kill" = 0 ]'
