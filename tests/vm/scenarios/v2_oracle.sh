#@ parallel
# v2_oracle: the kernel's memcg OOM killer as the oracle for `oomward rank --scope`, with
# negative oom_score_adj. A 160M cgroup v2 holds three idle processes:
#   big    60 MiB, adj -100   memcg T (40960 pages): 15360 - 4096  = ~11264 + page tables
#   mid    40 MiB, adj    0                          10240         + page tables
#   small  20 MiB, adj -500                          5120 - 20480 < 0
# With the machine's T (512M: 131072 pages) `mid` would rank first (big: 15360 - 13107); with
# the cgroup's T `big` does. oomward ranks the cgroup (`rank --scope /app --json`), then a
# trigger at adj -1000 (never a victim) grows until the cgroup is out of memory, and the
# kernel kills one of the three: it must be oomward's first.
. /lab/lib.sh

make_cgroup app 160M
procs=$CG/cgroup.procs
start_memhog /tmp/big.out --cgroup-procs "$procs" --hold 60 --adj=-100 || { result FAIL reason=big_not_ready; exit 1; }
big=$HOG_PID
start_memhog /tmp/mid.out --cgroup-procs "$procs" --hold 40 --adj 0 || { result FAIL reason=mid_not_ready; exit 1; }
mid=$HOG_PID
start_memhog /tmp/small.out --cgroup-procs "$procs" --hold 20 --adj=-500 || { result FAIL reason=small_not_ready; exit 1; }
small=$HOG_PID

oomward rank --scope /app --json >/tmp/rank.json 2>/tmp/rank.err
rc=$?
# The first row's pid, and every row's pid/badness for the log.
pids_in() { sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$1"; }
first_ranked=$(pids_in /tmp/rank.json | head -n1)
oomward rank --json >/tmp/rank_system.json 2>/dev/null
first_system=$(pids_in /tmp/rank_system.json | grep -E "^($big|$mid|$small)\$" | head -n1)

memhog --cgroup-procs "$procs" --adj=-1000 --rate 50 --grow 400 >/tmp/trigger.out 2>&1 &
trigger=$!
wait_until 300 eval 'dmesg | grep -q "Killed process"'
first_killed=$(dmesg | sed -n 's/.*Killed process \([0-9]*\).*/\1/p' | head -n1)
kill -9 "$trigger" "$big" "$mid" "$small" 2>/dev/null
wait 2>/dev/null

oom_kill=$(keyed "$CG/memory.events" oom_kill)
name() {
    case "$1" in
    "$big") echo big ;;
    "$mid") echo mid ;;
    "$small") echo small ;;
    *) echo "other:$1" ;;
    esac
}
facts="rank_rc=$rc first_ranked=$(name "$first_ranked") first_ranked_system_t=$(name "$first_system") first_killed=$(name "$first_killed") oom_kill=$oom_kill"

grep -E '"(pid|badness|oom_score_adj|rss_pages|total_pages)"' /tmp/rank.json | tr -d ' \n' | sed 's/"badness"/\n"badness"/g' | sed '/^$/d; s/^/rank| /'
dump /tmp/rank.err rank-stderr
dump "$CG/memory.events" memory.events
dump_dmesg

judge "$facts" '[ "$rc" = 0 ] && [ -n "$first_killed" ] && [ "$first_ranked" = "$first_killed" ]'
