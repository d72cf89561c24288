# v2_memcg: a fast allocator in a cgroup v2 with memory.max = 128M is stopped by oomward's
# SIGTERM before the kernel's OOM killer acts (memory.events oom_kill stays 0), five times in a
# row under one daemon (each trial a new episode).
. /lab/lib.sh

trials=5
make_cgroup app
echo 128M >"$CG/memory.max"

cgroup_config /app | start_oomward

stopped=0
statuses=
hogs=
worst_ms=0
i=0
while [ "$i" -lt "$trials" ]; do
    i=$((i + 1))
    t0=$(now_ms)
    memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
    hog=$!
    wait_exit "$hog" 600
    ms=$(($(now_ms) - t0))
    [ "$ms" -gt "$worst_ms" ] && worst_ms=$ms
    [ "$STATUS" = 143 ] && stopped=$((stopped + 1))
    statuses="$statuses${statuses:+,}$STATUS"
    hogs="$hogs${hogs:+,}$hog"
    # The next trial starts once the daemon has seen this victim's exit.
    wait_until 50 eval '[ "$(log_count exit)" -ge "$i" ]'
done
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
oom=$(keyed "$CG/memory.events" oom)
max=$(keyed "$CG/memory.events" max)
peak=$(cat "$CG/memory.peak" 2>/dev/null || echo NA)
terms=$(log_count term)
victims=$(grep 'event=term' /tmp/oomward.log | tr ' ' '\n' | sed -n 's/^pid=//p' | tr '\n' ',' | sed 's/,$//')
limit=$(log_field term limit)
available=$(log_field term available)
facts="trials=$trials stopped=$stopped statuses=$statuses oom_kill=$oom_kill oom=$oom max_events=$max peak=$peak term_lines=$terms victims=$victims hogs=$hogs limit=$limit available=$available worst_ms=$worst_ms"

dump "$CG/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$stopped" = "$trials" ] && [ "$oom_kill" = 0 ] && [ "$victims" = "$hogs" ]'
