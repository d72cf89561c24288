# v2_respawn: respawning workers in a cgroup v2 with memory.max = 256M. The supervisor (in the
# cgroup itself, `--join`: small, adj 0, a candidate like any other) keeps two workers alive,
# `memhog --rate 0 --grow 600` (600 MiB each, as fast as possible), restarting each the moment
# it dies; oomward watches the cgroup (default thresholds, grace 1 s). RUNS runs of SECS s
# each under one daemon, one after the other in the same cgroup. Each run must end with the
# kernel's OOM killer never having acted (memory.events oom_kill unchanged), the supervisor
# alive and printing its counts, and the workers restarted at least once (the race happened);
# the daemon must be alive at the end. Per run: the kernel's kills, oomward's decisions (term
# and kill lines), the supervisor's restarts and how its workers died.
# Guest time under TCG: about 5 x 14 s (70 s), plus the boot.
. /lab/lib.sh

RUNS=5
SECS=12

make_cgroup app 256M
# Not through a pipe: start_oomward would run in a subshell and OOMWARD_PID be lost.
cgroup_config /app >/tmp/config.toml
start_oomward </tmp/config.toml
wait_until 50 eval '[ "$(log_count events_armed)" -ge 1 ]'

count_decisions() {
    grep -cE "event=$1 " /tmp/oomward.log
}

oom_kills=
oom_events=
restarts=
w_term=
w_kill=
w_other=
terms=
kills=
supervisor=
ok=yes
run=0
while [ "$run" -lt "$RUNS" ]; do
    run=$((run + 1))
    k0=$(keyed "$CG/memory.events" oom_kill)
    o0=$(keyed "$CG/memory.events" oom)
    t0=$(count_decisions term)
    x0=$(count_decisions kill)
    supervisor --workers 2 --seconds "$SECS" --cgroup-procs "$CG/cgroup.procs" --join \
        -- memhog --rate 0 --grow 600 >/tmp/sup.out 2>/tmp/sup.err &
    sup=$!
    wait_exit "$sup" $((SECS * 10 + 300))
    s_sup=$STATUS
    line=$(grep '^supervisor ' /tmp/sup.out)
    field() {
        echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"
    }
    if [ "$s_sup" = 0 ] && [ -n "$line" ]; then
        state=ok
        r=$(field restarts)
    else
        state="died:$s_sup"
        r=NA
        ok=no
        dump /tmp/sup.err supervisor
    fi
    k=$(($(keyed "$CG/memory.events" oom_kill) - k0))
    o=$(($(keyed "$CG/memory.events" oom) - o0))
    [ "$k" = 0 ] || ok=no
    [ "$r" != NA ] && [ "$r" -ge 1 ] || ok=no
    oom_kills="$oom_kills${oom_kills:+,}$k"
    oom_events="$oom_events${oom_events:+,}$o"
    restarts="$restarts${restarts:+,}$r"
    w_term="$w_term${w_term:+,}$(field term)"
    w_kill="$w_kill${w_kill:+,}$(field kill)"
    w_other="$w_other${w_other:+,}$(field other)"
    terms="$terms${terms:+,}$(($(count_decisions term) - t0))"
    kills="$kills${kills:+,}$(($(count_decisions kill) - x0))"
    supervisor="$supervisor${supervisor:+,}$state"
    echo "run $run: oom_kill=$k oom=$o supervisor=$state restarts=$r terms=${terms##*,} kills=${kills##*,}"
    # The next run starts in an empty cgroup, once the daemon has seen the last exits.
    wait_until 50 eval '[ -z "$(cat "$CG/cgroup.procs")" ]'
    sleep 1
done
daemon=dead
alive "$OOMWARD_PID" && daemon=alive
[ "$daemon" = alive ] || ok=no
stop_oomward

# The daemon's log: everything but the decision and kill-rate lines in full (at most 150),
# then the last 40 decision lines; hundreds of them would crawl over the serial console.
grep -vE 'event=(term|kill|exit|escalate|kill_rate) ' /tmp/oomward.log | head -n 150 | sed 's/^/oomward| /'
grep -E 'event=(term|kill|exit|escalate) ' /tmp/oomward.log | tail -n 40 | sed 's/^/oomward| /'
echo "oomward| ($(grep -c 'event=kill_rate' /tmp/oomward.log) kill_rate lines left out)"
dump "$CG/memory.events" memory.events
dump_dmesg | head -n 60

facts="runs=$RUNS secs=$SECS oom_kill=$oom_kills oom=$oom_events supervisor=$supervisor restarts=$restarts worker_term=$w_term worker_kill=$w_kill worker_other=$w_other terms=$terms kills=$kills daemon=$daemon"
if [ "$ok" = yes ]; then
    result PASS "$facts"
else
    result FAIL "$facts"
fi
