# v2_memcg: a fast allocator in a cgroup v2 with memory.max = 128M is stopped by oomward's
# SIGTERM before the kernel's OOM killer acts (memory.events oom_kill stays 0).
. /lab/lib.sh

make_cgroup app
echo 128M >"$CG/memory.max"

start_oomward <<'TOML'
[daemon]
log = "stderr"
[system]
enabled = false
[kill]
grace = "1s"
[[cgroup]]
path = "/app"
TOML

t0=$(now_ms)
memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 600
t1=$(now_ms)
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
oom=$(keyed "$CG/memory.events" oom)
max=$(keyed "$CG/memory.events" max)
peak=$(cat "$CG/memory.peak" 2>/dev/null || echo NA)
terms=$(log_count term)
victim=$(log_field term pid)
limit=$(log_field term limit)
available=$(log_field term available)
facts="status=$STATUS oom_kill=$oom_kill oom=$oom max_events=$max peak=$peak term_lines=$terms victim=$victim hog=$hog limit=$limit available=$available ms=$((t1 - t0))"

dump /tmp/oomward.log oomward
dump /tmp/hog.out memhog
dump "$CG/memory.events" memory.events
dump_dmesg

if [ "$STATUS" = 143 ] && [ "$oom_kill" = 0 ] && [ "$victim" = "$hog" ]; then
    result PASS "$facts"
else
    result FAIL "$facts"
fi
