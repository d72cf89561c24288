#@ parallel
#@ disk
# v2_hot_page_cache: clean page cache is reclaimable whether the kernel keeps it on the active
# or the inactive list. In a 128M cgroup, an idle process holds 20 MiB and a reader reads a
# 100 MiB file six times: from the second read on, the classic LRU (6.1) moves the whole cache
# to active_file. The kernel simply reclaims it when needed (no OOM), so oomward must not act:
# the idle process is still alive at the end and the daemon logged no term.
. /lab/lib.sh

setup_disk /mnt || { result FAIL reason=no_disk; exit 1; }
dd if=/dev/zero of=/mnt/hot bs=1M count=100 2>/dev/null
sync
echo 3 >/proc/sys/vm/drop_caches

make_cgroup app 128M

cgroup_config /app | start_oomward

start_memhog /tmp/idle.out --cgroup-procs "$CG/cgroup.procs" --hold 20 || { result FAIL reason=idle_not_ready; exit 1; }
idle=$HOG_PID
# The reader joins the cgroup, then reads; memory.stat after each pass goes to stat| lines.
sh -c "echo \$\$ >$CG/cgroup.procs
for i in 1 2 3 4 5 6; do
    cat /mnt/hot >/dev/null
    echo \"stat| pass \$i \$(grep -E '^(anon|active_file|inactive_file) ' $CG/memory.stat | tr '\n' ' ')\"
done"
reader=$?
if alive "$idle"; then idle_state=alive; else
    wait "$idle"
    idle_state="dead_$?"
fi
active=$(keyed "$CG/memory.stat" active_file)
inactive=$(keyed "$CG/memory.stat" inactive_file)
stop_oomward
kill -9 "$idle" 2>/dev/null

oom_kill=$(keyed "$CG/memory.events" oom_kill)
terms=$(log_count term)
facts="idle_state=$idle_state term_lines=$terms oom_kill=$oom_kill reader_rc=$reader active_file=$active inactive_file=$inactive available=$(log_field term available) limit=$(log_field term limit)"

dump "$CG/memory.events" memory.events

judge "$facts" '[ "$idle_state" = alive ] && [ "$terms" = 0 ] && [ "$oom_kill" = 0 ] && [ "$reader" = 0 ]'
