# v2_tripwire: cgroup v2 has no usage thresholds; oomward writes memory.high below the term
# level of a calm watched cgroup (a tripwire) and is woken by the kernel's `high` event instead
# of looking every few milliseconds. Shown here, in order:
#   - /app (memory.max 256M, a 20 MiB process): a tripwire is set (memory.high between its
#     usage and its term level), and the daemon then wakes a few times a minute, not
#     hundreds of times;
#   - /theirs (memory.max 256M, memory.high 150M set by its "manager"): never written;
#   - a paced grower in /app (40 MiB/s): announced by the tripwire, asked first (SIGTERM), the
#     kernel kills nobody; once it is gone the tripwire is back;
#   - the daemon SIGKILLed: the tripwire stays (nobody took it off), and the next start takes
#     it off before setting its own (event=tripwire_restored); `oomward lift-tripwires` (the
#     unit's ExecStopPost) does the same; a clean stop leaves memory.high at max.
. /lab/lib.sh

WINDOW=20

make_cgroup app 256M
APP=$CG
make_cgroup theirs 256M 150M
THEIRS=$CG
start_memhog /tmp/idle.out --cgroup-procs "$APP/cgroup.procs" --hold 20 || {
    result FAIL reason=idle_not_ready
    exit 1
}
idle=$HOG_PID
sh -c "echo \$\$ >$THEIRS/cgroup.procs && exec sleep 3600" &
sleeper=$!

# Not through a pipe: start_oomward would run in a subshell and OOMWARD_PID be lost.
printf '[daemon]\nlog = "stderr"\n[system]\nenabled = false\n[kill]\ngrace = "1s"\n[[cgroup]]\npath = "/app"\n[[cgroup]]\npath = "/theirs"\n' >/tmp/config.toml
start_oomward </tmp/config.toml
wait_until 50 eval '[ "$(log_count tripwire_set)" -ge 1 ]'
set_lines=$(log_count tripwire_set)
high=$(cat "$APP/memory.high")
# Past its first few looks (a new cgroup is looked at often for 2 s).
sleep 3

switches() {
    cat /proc/"$OOMWARD_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'
}
w0=$(switches)
t0=$(now_ms)
sleep "$WINDOW"
wakeups_per_min=$((($(switches) - w0) * 60000 / ($(now_ms) - t0)))

start_memhog /tmp/hog.out --cgroup-procs "$APP/cgroup.procs" --rate 40 --grow 400 || {
    result FAIL reason=hog_not_ready
    exit 1
}
hog=$HOG_PID
wait_exit "$hog" 200
[ "$STATUS" = timeout ] && kill -9 "$hog"
how=$(stopped_how "$STATUS" "$hog")
wake=$(decision_field wake)
# Set again at its first rung once the grower is gone.
wait_until 50 eval '[ "$(cat $APP/memory.high)" = "$high" ]' && back=yes || back=no

# A crash: nothing takes the tripwire off ...
kill -9 "$OOMWARD_PID"
wait "$OOMWARD_PID" 2>/dev/null
OOMWARD_PID=
after_crash=$(cat "$APP/memory.high")
# ... until the next start.
mv /tmp/oomward.log /tmp/oomward.1.log
start_oomward </tmp/config.toml
wait_until 50 eval '[ "$(log_count tripwire_set)" -ge 1 ]'
restored=$(log_count tripwire_restored)
kill -9 "$OOMWARD_PID"
wait "$OOMWARD_PID" 2>/dev/null
OOMWARD_PID=
oomward lift-tripwires 2>/tmp/lift.log
after_lift=$(cat "$APP/memory.high")
mv /tmp/oomward.log /tmp/oomward.2.log
start_oomward </tmp/config.toml
wait_until 50 eval '[ "$(log_count tripwire_set)" -ge 1 ]'
stop_oomward
after_stop=$(cat "$APP/memory.high")
theirs=$(cat "$THEIRS/memory.high")
oom_kill=$(keyed "$APP/memory.events" oom_kill)
alive "$idle" && idle_alive=yes || idle_alive=no
kill "$idle" "$sleeper" 2>/dev/null
cat /tmp/oomward.1.log /tmp/oomward.2.log /tmp/oomward.log >/tmp/all.log
mv /tmp/all.log /tmp/oomward.log
dump /tmp/lift.log lift
dump /tmp/hog.out memhog
dump_dmesg

facts="set_lines=$set_lines high=$high wakeups_per_min=$wakeups_per_min status=$STATUS stopped=$how wake=$wake back=$back after_crash=$after_crash restored=$restored after_lift=$after_lift after_stop=$after_stop theirs=$theirs oom_kill=$oom_kill idle_alive=$idle_alive"
judge "$facts" '[ "$set_lines" = 1 ] && [ "$high" -ge 200000000 ] && [ "$high" -le 240000000 ] && [ "$how" = term ] && [ "$back" = yes ] && [ "$after_crash" = "$high" ] && [ "$restored" = 1 ] && [ "$after_lift" = max ] && [ "$after_stop" = max ] && [ "$theirs" = 157286400 ] && [ "$oom_kill" = 0 ] && [ "$idle_alive" = yes ]'
