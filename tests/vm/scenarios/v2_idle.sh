# v2_idle: the daemon's idle cost with one idle watched cgroup v2 (memory.max = 256M, one
# sleeping process, the system scope off): its wake-ups (context switches of every thread,
# /proc/PID/task/*/status) and CPU time (schedstat) over WINDOW s, scaled to a minute. A figure
# for the benchmark, not a verdict: it passes unless the daemon died or spins (more than 200
# wake-ups a second). Guest time: WINDOW s plus about 5 s.
. /lab/lib.sh

WINDOW=30

make_cgroup idle 256M
sh -c "echo \$\$ >$CG/cgroup.procs && exec sleep 3600" &
sleeper=$!
# Not through a pipe: start_oomward would run in a subshell and OOMWARD_PID be lost.
cgroup_config /idle >/tmp/config.toml
start_oomward </tmp/config.toml
wait_until 50 eval '[ "$(log_count events_armed)" -ge 1 ]'
sleep 2

# Context switches (voluntary + involuntary) and CPU ns, summed over the daemon's threads.
switches() {
    cat /proc/"$OOMWARD_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'
}
cpu_ns() {
    cat /proc/"$OOMWARD_PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
threads=$(ls /proc/"$OOMWARD_PID"/task | wc -l)
w0=$(switches)
c0=$(cpu_ns)
t0=$(now_ms)
sleep "$WINDOW"
w1=$(switches)
c1=$(cpu_ns)
ms=$(($(now_ms) - t0))
wakeups_per_min=$(((w1 - w0) * 60000 / ms))
cpu_ms_per_min=$(awk -v c="$((c1 - c0))" -v ms="$ms" 'BEGIN { printf "%.1f\n", c / 1e6 * 60000 / ms }')
sleeper_state=dead
alive "$sleeper" && sleeper_state=alive
daemon=dead
alive "$OOMWARD_PID" && daemon=alive
stop_oomward
kill "$sleeper" 2>/dev/null

facts="window_ms=$ms wakeups_per_min=$wakeups_per_min cpu_ms_per_min=$cpu_ms_per_min threads=$threads daemon=$daemon sleeper=$sleeper_state decisions=$(grep -cE 'event=(term|kill) ' /tmp/oomward.log)"
judge "$facts" '[ "$daemon" = alive ] && [ "$sleeper_state" = alive ] && [ "$wakeups_per_min" -le 12000 ]'
