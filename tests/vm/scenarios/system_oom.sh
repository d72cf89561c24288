#@ mem=384M
#@ disk
# system_oom: the system scope on a small machine without swap.
# 1. Page cache larger than RAM: a sparse 512 MiB file on the scratch ext4 disk, read once (its
#    holes come into the page cache as clean, reclaimable zero pages, with no disk I/O to wait
#    for). MemFree falls to the watermarks, MemAvailable stays high: oomward must not act.
# 2. A fast allocator grows past RAM beside a small bystander: oomward must stop the
#    allocator before the kernel's OOM killer acts (/proc/vmstat oom_kill stays 0), by SIGTERM
#    or, when its decision line says reason=eta (the projected time to exhaustion is shorter
#    than the grace), by SIGKILL at once; the bystander survives.
. /lab/lib.sh

setup_disk /mnt || { result FAIL reason=no_disk; exit 1; }
truncate -s 512M /mnt/cache

start_oomward <<'TOML'
[daemon]
log = "stderr"
[system]
enabled = true
mem_available_term = "10%"
mem_available_kill = "5%"
[kill]
grace = "1s"
TOML

meminfo() {
    awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo
}

# Phase 1: page cache only.
cat /mnt/cache >/dev/null
free_kb=$(meminfo MemFree)
avail_kb=$(meminfo MemAvailable)
cached_kb=$(meminfo Cached)
decisions_cache=$(decision_count)

# Phase 2: a bystander and a fast allocator.
start_memhog /tmp/by.out --hold 20 || { result FAIL reason=bystander_not_ready; exit 1; }
by=$HOG_PID
t0=$(now_ms)
memhog --rate 0 --grow 1024 >/tmp/hog.out 2>&1 &
hog=$!
wait_exit "$hog" 600
t1=$(now_ms)
if alive "$by"; then bystander=alive; else bystander=dead; fi
sleep 0.5
stop_oomward

oom_kill=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
decisions=$(decision_count)
victim=$(decision_field pid)
available=$(decision_field available)
limit=$(decision_field limit)
stopped=$(stopped_how "$STATUS" "$hog")
facts="status=$STATUS stopped=$stopped reason=$(decision_field reason) oom_kill=$oom_kill decisions_cache=$decisions_cache decisions=$decisions victim=$victim hog=$hog bystander=$bystander free_kb_cache=$free_kb avail_kb_cache=$avail_kb cached_kb=$cached_kb available=$available limit=$limit ms=$((t1 - t0))"

dump /tmp/hog.out memhog
dump_dmesg

judge "$facts" '[ "$stopped" != no ] && [ "$oom_kill" = 0 ] && [ "$decisions_cache" = 0 ] && [ "$victim" = "$hog" ] && [ "$bystander" = alive ]'
