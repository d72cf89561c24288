# v2_swap_headroom: with swap, memory.max is not an OOM: the kernel swaps the excess out. A
# cgroup with memory.max = 64M and memory.swap.max = 64M (zram swap on):
# 1. one process holds 80 MiB and sits still: it fits in memory + swap, the kernel never
#    OOM-kills it, and neither may oomward (still alive after 3 s, no term line);
# 2. that one gone, a fast allocator grows to 400 MiB: once memory and the cgroup's swap are
#    both nearly used up, oomward SIGTERMs it, before the kernel's OOM killer (memory.events
#    oom_kill stays 0), with some of it already in swap.
. /lab/lib.sh

setup_zram 256M || { result FAIL reason=no_zram; exit 1; }
make_cgroup app
echo 64M >"$CG/memory.max"
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
terms_holding=$(log_count term)
kill -9 "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# Phase 2.
memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 600
wait_until 20 grep -q 'event=exit' /tmp/oomward.log
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
facts="holder_state=$state ready=$ready term_lines_holding=$terms_holding swap_holding=$swap_holding status=$STATUS oom_kill=$oom_kill victim=$(log_field term pid) hog=$hog victim_swap_pages=$(log_field term swap_pages) total_pages=$(log_field term total_pages) available=$(log_field term available) limit=$(log_field term limit)"

dump "$CG/memory.events" memory.events
dump /tmp/hog.out memhog
dump_dmesg

judge "$facts" '[ "$state" = alive ] && [ "$terms_holding" = 0 ] && [ "$STATUS" = 143 ] && [ "$oom_kill" = 0 ]'
