#@ mem=512M
#@ disk
#@ earlyoom
# system_desktop: the whole machine runs out, as on a desktop. 512M of RAM, 256M of zram swap,
# page cache from a file read earlier; an "sshd" (a copy of memhog at /usr/sbin/sshd, which
# oomward protects by default) of 64 MiB at oom_score_adj 1000, so that badness alone picks it
# (a stand-in for a process the machine cannot lose that the kernel's arithmetic would kill
# first); a 20 MiB bystander; then an allocator ramping at 150 MiB/s up to 1 GiB.
# VARIANT says who defends the machine, each at its packaged defaults:
#   oomward   `oomward run` with the built-in defaults (only the log goes to stderr);
#   earlyoom  Debian's earlyoom with its /etc/default/earlyoom arguments (-r 3600);
#   kernel    nobody: the kernel's own OOM killer.
# The same monitor runs in every variant (built-in shell reads, no forks, every 20 ms): when
# MemAvailable and SwapFree both fell to 10 % (the trigger oomward and earlyoom share by
# default), and when the first of the three processes died; each of them prints when SIGTERM
# reached it (memhog --say-term). Facts: who died and how, the kernel's oom_kill count, the
# reaction latencies from the trigger to the first signal and to the first death, the time the
# machine stalled on memory (PSI memory `full` and `some` totals over the run).
# oomward's verdict (PASS/FAIL) is that it stopped the allocator before the kernel did (by
# SIGTERM, or by SIGKILL at once when its decision line says reason=eta: the projected time to
# exhaustion is shorter than the 5 s grace), spared sshd and the bystander; the other variants
# PASS whenever the run completes (a benchmark).
. /lab/lib.sh

setup_disk /mnt || { result FAIL reason=no_disk; exit 1; }
setup_zram 256M || { result FAIL reason=no_zram; exit 1; }
truncate -s 256M /mnt/cache
cat /mnt/cache >/dev/null

case "$VARIANT" in
oomward)
    printf '[daemon]\nlog = "stderr"\n' | start_oomward
    ;;
earlyoom)
    earlyoom -r 3600 >/tmp/earlyoom.log 2>&1 &
    DEFENDER=$!
    wait_until 50 grep -qs 'mem total' /tmp/earlyoom.log
    ;;
kernel) ;;
*)
    result FAIL reason=unknown_variant
    exit 1
    ;;
esac

mkdir -p /usr/sbin
cp /bin/memhog /usr/sbin/sshd
MEMHOG=/usr/sbin/sshd start_memhog /tmp/sshd.out --hold 64 --adj 1000 --say-term || { result FAIL reason=sshd_not_ready; exit 1; }
sshd=$HOG_PID
start_memhog /tmp/by.out --hold 20 --say-term || { result FAIL reason=bystander_not_ready; exit 1; }
by=$HOG_PID

full0=$(psi_total full)
some0=$(psi_total some)
oom0=$(keyed /proc/vmstat oom_kill)
t0=$(now_ms)
memhog --rate 150 --grow 1024 --say-term >/tmp/hog.out 2>&1 &
hog=$!
monitor "$hog" "$sshd" "$by" &
mon=$!
wait_exit "$hog" 900
s_hog=$STATUS
t1=$(now_ms)
sleep 1
touch /tmp/monitor.stop
wait "$mon"
full1=$(psi_total full)
some1=$(psi_total some)

# Who is left, and how the others ended (reaped by this shell, which started them).
if alive "$sshd"; then s_sshd=alive; else
    wait "$sshd"
    s_sshd=$?
fi
if alive "$by"; then s_by=alive; else
    wait "$by"
    s_by=$?
fi
stop_oomward
[ -n "$DEFENDER" ] && kill "$DEFENDER" 2>/dev/null
oom_kill=$(($(keyed /proc/vmstat oom_kill) - oom0))
cross=$(sed -n 's/^cross=\([0-9.]*\).*/\1/p' /tmp/monitor.out)
death=$(sed -n 's/^death=\([0-9.]*\).*/\1/p' /tmp/monitor.out | head -n1)
first=$(sed -n 's/^death=.* pid=\([0-9]*\)/\1/p' /tmp/monitor.out | head -n1)
ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%d\n", (b - a) * 1000 }'; }
case "$first" in
"$hog") first_name=allocator out=/tmp/hog.out ;;
"$sshd") first_name=sshd out=/tmp/sshd.out ;;
"$by") first_name=bystander out=/tmp/by.out ;;
*) first_name=none out=/dev/null ;;
esac
# When SIGTERM reached the first victim (none if the kernel's SIGKILL came first), in s.
term_at=$(awk '$1 == "term-at" { printf "%.3f\n", $2 / 1000; exit }' "$out")
if [ "$oom_kill" -gt 0 ]; then killer=kernel; elif [ "$s_hog" = 143 ] || [ "$s_hog" = 137 ]; then killer=$VARIANT; else killer=none; fi
facts="variant=$VARIANT allocator=$s_hog sshd=$s_sshd bystander=$s_by first_victim=$first_name killer=$killer oom_kill=$oom_kill signal_ms=$(ms "$cross" "$term_at") exit_ms=$(ms "$cross" "$death") psi_full_ms=$(((full1 - full0) / 1000)) psi_some_ms=$(((some1 - some0) / 1000)) alloc_ms=$((t1 - t0)) hog=$hog victim=$(decision_field pid) victim_swap_pages=$(decision_field swap_pages)"

dump /tmp/monitor.out monitor
dump /tmp/earlyoom.log earlyoom
dump /tmp/hog.out memhog
dump /tmp/sshd.out sshd
grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree|Cached):' /proc/meminfo | sed 's/^/meminfo| /'
dump_dmesg

if [ "$VARIANT" = oomward ]; then
    stopped=$(stopped_how "$s_hog" "$hog")
    facts="$facts stopped=$stopped reason=$(decision_field reason) eta_ms=$(decision_field eta_ms) fill_rate=$(decision_field fill_rate)"
    judge "$facts" '[ "$stopped" != no ] && [ "$oom_kill" = 0 ] && [ "$s_sshd" = alive ] && [ "$s_by" = alive ]'
else
    judge "$facts" '[ "$s_hog" != timeout ]'
fi
