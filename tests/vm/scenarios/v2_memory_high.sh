# v2_memory_high: memory.max = 192M but memory.high = 128M. Above memory.high the kernel
# throttles every allocation of the cgroup (it crawls for minutes and never OOMs until max), so
# oomward must take the lower limit as its trigger (its term line says limit=128 MiB) and stop
# the allocator with SIGTERM, well within the time bound below.
. /lab/lib.sh

make_cgroup app
echo 192M >"$CG/memory.max"
echo 128M >"$CG/memory.high"

cgroup_config /app | start_oomward

t0=$(now_ms)
memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
# The bound: 30 s (a crawling allocator takes minutes to reach 192M here).
wait_exit "$hog" 300
t1=$(now_ms)
if [ "$STATUS" = timeout ]; then
    peak_crawl=$(cat "$CG/memory.current")
    kill -9 "$hog"
    wait "$hog" 2>/dev/null
fi
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
oom=$(keyed "$CG/memory.events" oom)
high=$(keyed "$CG/memory.events" high)
max=$(keyed "$CG/memory.events" max)
peak=$(cat "$CG/memory.peak" 2>/dev/null || echo NA)
victim=$(log_field term pid)
limit=$(log_field term limit)
available=$(log_field term available)
facts="status=$STATUS oom_kill=$oom_kill oom=$oom high_events=$high max_events=$max peak=$peak victim=$victim hog=$hog limit=$limit available=$available ms=$((t1 - t0))${peak_crawl:+ current_at_timeout=$peak_crawl}"

dump /tmp/hog.out memhog
dump "$CG/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$STATUS" = 143 ] && [ "$oom_kill" = 0 ] && [ "$victim" = "$hog" ] && [ "$limit" = 134217728 ]'
