# v2_dry_run: with dry_run = true oomward decides and reports but signals nothing, so the
# kernel's OOM killer acts in a 96M cgroup v2: the real oracle for the choice. Beside a fast
# allocator sits an idle process of 24 MiB with oom_score_adj 600: with the cgroup's T (24576
# pages) its adj is worth 14400 pages, so it outranks the allocator for both the kernel and
# oomward. The kernel's first victim (dmesg "Killed process PID") must be the process oomward
# said it would signal; oomward must notice the kernel's kill (event=kernel_oom_kill); then the
# allocator goes on and is killed by the kernel too.
. /lab/lib.sh

make_cgroup app 96M

start_oomward <<'TOML'
[daemon]
log = "stderr"
dry_run = true
[system]
enabled = false
[[cgroup]]
path = "/app"
TOML

start_memhog /tmp/idle.out --cgroup-procs "$CG/cgroup.procs" --hold 24 --adj 600 || { result FAIL reason=idle_not_ready; exit 1; }
idle=$HOG_PID

t0=$(now_ms)
memhog --cgroup-procs "$CG/cgroup.procs" --rate 0 --grow 400 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 600
s_hog=$STATUS
t1=$(now_ms)
wait_exit "$idle" 10
s_idle=$STATUS
wait_until 50 grep -q 'event=kernel_oom_kill' /tmp/oomward.log
stop_oomward

oom_kill=$(keyed "$CG/memory.events" oom_kill)
would=$(decision_field pid)
dry=$(decision_field dry_run)
seen=$(log_count kernel_oom_kill)
first=$(dmesg | sed -n 's/.*Killed process \([0-9]*\).*/\1/p' | head -n1)
facts="status_hog=$s_hog status_idle=$s_idle oom_kill=$oom_kill would_signal=$would dry_run=$dry first_kernel_victim=$first idle=$idle hog=$hog kernel_oom_kill_lines=$seen ms=$((t1 - t0))"

dump "$CG/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$would" = "$first" ] && [ "$first" = "$idle" ] && [ "$s_hog" = 137 ] && [ "$s_idle" = 137 ] && [ "$seen" -ge 1 ] && [ "$dry" = true ]'
