# v2_memcg: a fast allocator in a cgroup v2 with memory.max = 128M is stopped by oomward
# before the kernel's OOM killer acts (memory.events oom_kill stays 0), five times in a row
# under one daemon (each trial a new episode): by SIGTERM, or by SIGKILL at once when the
# decision line says reason=eta (once the daemon has measured the allocator's fill rate, the
# projected time to the limit is shorter than the 1 s grace).
. /lab/lib.sh

trials=5
make_cgroup app 128M

cgroup_config /app | start_oomward

stopped=0
by_term=0
by_eta=0
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
    statuses="$statuses${statuses:+,}$STATUS"
    hogs="$hogs${hogs:+,}$hog"
    # The next trial starts once the daemon has seen this victim's exit.
    wait_until 50 eval '[ "$(log_count exit)" -ge "$i" ]'
    how=$(stopped_how "$STATUS" "$hog")
    case $how in
    term) by_term=$((by_term + 1)) ;;
    eta | escalated) by_eta=$((by_eta + 1)) ;;
    esac
    [ "$how" != no ] && stopped=$((stopped + 1))
done
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
oom=$(keyed "$CG/memory.events" oom)
max=$(keyed "$CG/memory.events" max)
peak=$(cat "$CG/memory.peak" 2>/dev/null || echo NA)
terms=$(log_count term)
decisions=$(decision_count)
victims=$(decisions | tr ' ' '\n' | sed -n 's/^pid=//p' | tr '\n' ',' | sed 's/,$//')
limit=$(decision_field limit)
available=$(decision_field available)
facts="trials=$trials stopped=$stopped by_term=$by_term by_eta=$by_eta statuses=$statuses oom_kill=$oom_kill oom=$oom max_events=$max peak=$peak term_lines=$terms decision_lines=$decisions victims=$victims hogs=$hogs limit=$limit available=$available worst_ms=$worst_ms"

dump "$CG/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$stopped" = "$trials" ] && [ "$oom_kill" = 0 ] && [ "$victims" = "$hogs" ]'
