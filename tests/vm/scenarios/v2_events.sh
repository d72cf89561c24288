# v2_events: the cgroup v2 event sources wake the daemon (its lines say which).
# 1. memory.events: polling made slow on purpose (fill_rate 1MiB: every sleep is the longest,
#    200 ms while cgroups are watched) and thresholds at 64 / 32 KiB of a 128M cgroup: a fast
#    allocator reaches memory.max between two timer ticks; the kernel's `max` event wakes
#    oomward, whose decision line says wake=v2_events.
# 2. memory.pressure: a cgroup with memory.high = 32M (memory.max 512M, the limit oomward
#    defends) and thresholds off; an allocator growing
#    past it is throttled (a memory stall); the PSI trigger (150 ms in 2 s) fires and oomward
#    logs event=pressure for that cgroup with source=cgroup_psi.
. /lab/lib.sh

make_cgroup app 128M
app=$CG
make_cgroup slow 512M 32M
slow=$CG

start_oomward <<'TOML'
[daemon]
log = "stderr"
fill_rate = "1MiB"
[system]
enabled = false
[kill]
grace = "1s"
[[cgroup]]
path = "/app"
available_term = "64KiB"
available_kill = "32KiB"
[[cgroup]]
path = "/slow"
available_term = "0%"
available_kill = "0%"
TOML
wait_until 50 eval '[ "$(log_count events_armed)" -ge 2 ]'

# 1. A timer tick may still land in the allocator's last milliseconds and win the race (a
#    correct wake-up, but not the one shown here): up to three allocators, stopping at the first
#    decided on the kernel's event; timer_first says how many the timer took first.
timer_first=0
for attempt in 1 2 3; do
    memhog --cgroup-procs "$app/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
    hog=$!
    wait_exit "$hog" 300
    s_hog=$STATUS
    wake=$(decision_field wake "$hog")
    victim=$(decision_field pid "$hog")
    [ "$wake" = v2_events ] && break
    timer_first=$((timer_first + 1))
    sleep 2 # past the second of closer looks after an episode
done

# 2.
t0=$(now_ms)
memhog --cgroup-procs "$slow/cgroup.procs" --rate 20 --grow 64 >/tmp/slow.out 2>&1 &
slow_hog=$!
wait_until 150 grep -q 'event=pressure scope=/slow' /tmp/oomward.log
pressure_ms=$(($(now_ms) - t0))
kill -9 "$slow_hog" 2>/dev/null
wait "$slow_hog" 2>/dev/null
stop_oomward

pressure=$(grep -m1 'event=pressure scope=/slow' /tmp/oomward.log)
psi_source=$(echo "$pressure" | tr ' ' '\n' | sed -n 's/^source=//p')
armed_app=$(grep -m1 'event=events_armed scope=/app' /tmp/oomward.log | tr ' ' '\n' | sed -n 's/^sources=//p')
facts="armed_app=$armed_app status=$s_hog wake=$wake victim=$victim hog=$hog attempts=$attempt timer_first=$timer_first oom_kill=$(keyed "$app/memory.events" oom_kill) max_events=$(keyed "$app/memory.events" max) psi_source=$psi_source pressure_after_ms=$pressure_ms high_events=$(keyed "$slow/memory.events" high)"

dump "$app/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$wake" = v2_events ] && [ "$victim" = "$hog" ] && [ "$psi_source" = cgroup_psi ]'
