# v2_memory_high: memory.high is where the kernel throttles and reclaims, never where it kills;
# the limit oomward defends is memory.max's.
# /app: memory.high = 256M, memory.max = 512M, an allocator paced at 100 MiB/s towards 700 MiB.
# Phase 1 (12 s): above memory.high the kernel throttles it (memory.events `high` rises) and
# oomward makes no decision at all, however long it crawls there. Phase 2: memory.high is
# raised to max; the allocator runs on to memory.max's term level, where oomward stops it,
# asking first (SIGTERM; or SIGKILL at the last safe moment), and its decision line says
# limit=512 MiB with T memory.max's (131072 pages); the kernel kills nobody.
# /idle: memory.max = 512M, a 100 MiB process standing still, then memory.high lowered to 50M
# below its usage (as `systemctl set-property MemoryHigh=` does): no decision names it, it lives.
#@ mem=1024M
. /lab/lib.sh

make_cgroup idle 512M
idle=$CG
make_cgroup app 512M 256M

{
    printf '[daemon]\nlog = "stderr"\n[system]\nenabled = false\n[kill]\ngrace = "1s"\n'
    printf '[[cgroup]]\npath = "/app"\n[[cgroup]]\npath = "/idle"\n'
} | start_oomward

start_memhog /tmp/idle.out --cgroup-procs "$idle/cgroup.procs" --hold 100 || {
    result FAIL reason=idle_not_ready
    exit 1
}
still=$HOG_PID
echo 50M >"$idle/memory.high"

t0=$(now_ms)
memhog --cgroup-procs "$CG/cgroup.procs" --rate 100 --grow 700 >/tmp/hog.out 2>&1 &
hog=$!
sleep 12
crawl_current=$(cat "$CG/memory.current")
crawl_high=$(keyed "$CG/memory.events" high)
crawl_decisions=$(decision_count)
alive "$hog" && crawl_alive=yes || crawl_alive=no
echo max >"$CG/memory.high"
wait_exit "$hog" 300
t1=$(now_ms)
[ "$STATUS" = timeout ] && kill -9 "$hog"
how=$(stopped_how "$STATUS" "$hog")
sleep 0.5
alive "$still" && idle_alive=yes || idle_alive=no
stop_oomward

oom_kill=$(($(keyed "$CG/memory.events" oom_kill) + $(keyed "$idle/memory.events" oom_kill)))
victim=$(decision_field pid)
limit=$(decision_field limit)
available=$(decision_field available)
total_pages=$(decision_field total_pages)
decisions=$(decision_count)
idle_high=$(keyed "$idle/memory.events" high)
facts="crawl_alive=$crawl_alive crawl_current=$crawl_current crawl_high_events=$crawl_high crawl_decisions=$crawl_decisions"
facts="$facts status=$STATUS how=$how victim=$victim hog=$hog limit=$limit available=$available total_pages=$total_pages"
facts="$facts decisions=$decisions oom_kill=$oom_kill idle=$still idle_alive=$idle_alive idle_high_events=$idle_high ms=$((t1 - t0))"

dump /tmp/hog.out memhog
dump "$CG/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$crawl_alive" = yes ] && [ "$crawl_decisions" = 0 ] && [ "$crawl_high" -gt 0 ] && [ "$how" != no ] && [ "$victim" = "$hog" ] && [ "$limit" = 536870912 ] && [ "$oom_kill" = 0 ] && [ "$idle_alive" = yes ] && [ "$decisions" = 1 ]'
