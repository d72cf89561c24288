#!/bin/sh
# system_short: the whole machine runs short of memory on a real Debian 12 with systemd, the
# package installed at its defaults (the system scope watched, nothing configured). An
# allocator started as a transient unit (systemd-run --unit=hog) grows at 150 MiB/s towards
# 2000 MiB on a 768M machine without swap. sshd, journald and dbus-daemon, each in its own unit,
# get oom_score_adj 1000 first: by the kernel's formula they now rank above the allocator.
# They are small, though (8 MiB each): below the default kill.min_gain (2 % of RAM) and far
# from what the shortage needs, oomward would pass over them unprotected as well. So a large
# process is protected by the same built-in exe rule too: a copy of memhog holding 200 MiB at
# /usr/lib/openssh/sshd-session (a path of the built-in set that Debian 12's openssh does not
# use), at oom_score_adj 1000, in a unit of its own (`protected`). Without the exe rule it is
# the one victim whose kill alone would end the shortage and it ranks first: oomward would
# choose it. Only the exe rules, judged against the host's files while the daemon runs in the
# unit's private mount namespace, keep it (and sshd, journald, dbus-daemon) off the list.
# Facts: the hog unit ended by a signal; oomward's first decision (journal, OOMWARD_EVENT term
# or kill) names the hog's pid and no decision names anyone else; /proc/vmstat oom_kill did not
# move; the protected stand-in, sshd, journald and dbus-daemon keep their MainPID, NRestarts
# 0, still active.
# Reports under the unit (issue 12): with the shipped hooks drop-in linked and a post_kill hook
# configured, the hook ran as nobody and knew the victim (it logs through logger); the status
# file is readable by nobody (`runuser -u nobody -- oomward status`); `oomward history` and
# `oomward why PID` name the hog from the kill journal in the unit's StateDirectory.
#@ mem=768M
. /lab/lib.sh
. /lab/systemd.sh

install_package
wait_active oomward 300
# The hooks drop-in as the README says, and a post_kill hook that tells the journal who it ran
# as and what it was told.
mkdir -p /etc/systemd/system/oomward.service.d
ln -s /usr/share/oomward/systemd/hooks-and-notifications.conf /etc/systemd/system/oomward.service.d/
cat >/etc/oomward/config.d/50-lab-hooks.toml <<'EOF2'
[hooks]
post_kill = ["/bin/sh", "-c", "logger -t oomward-hook \"uid=$(id -u) pid=$OOMWARD_PID comm=$OOMWARD_COMM outcome=$OOMWARD_OUTCOME\""]
EOF2
systemctl daemon-reload
systemctl restart oomward
wait_active oomward 300
caps=$(prop oomward CapabilityBoundingSet)
case "$caps" in *cap_setuid*) hook_caps=yes ;; *) hook_caps=no ;; esac

# A typo, then a restart (issue 20): the unit comes up active on the last good config, the
# journal has the error at err with file and line, `status` says so; no restart loop.
printf '[kill]\ngrace = "5 parsecs"\n' >/etc/oomward/config.toml
systemctl restart oomward
wait_active oomward 300
sleep 3
typo_active=$(systemctl is-active oomward)
typo_restarts=$(prop oomward NRestarts)
journalctl -q -u oomward -p err -o json | grep '"OOMWARD_EVENT":"config_error"' | head -n1 >/tmp/config_error.json
typo_error=$(json_field OOMWARD_ERROR </tmp/config_error.json)
echo "typo| $typo_error"
case "$typo_error" in /etc/oomward/config.toml:2:\ kill.grace*) typo_logged=yes ;; *) typo_logged=no ;; esac
typo_status=no
oomward status 2>&1 | grep -q "CONFIG ERROR" && typo_status=yes
typo_check=0
oomward check-config >/dev/null 2>&1 || typo_check=$?
oomward_active=$(systemctl is-active oomward)
oomward_pid=$(main_pid oomward)

# The protected services, made the kernel's first choice.
for u in ssh systemd-journald dbus; do
    p=$(main_pid "$u")
    [ "$p" -gt 0 ] 2>/dev/null && echo 1000 >"/proc/$p/oom_score_adj"
done
# The large protected process.
mkdir -p /usr/lib/openssh
cp /usr/local/bin/memhog /usr/lib/openssh/sshd-session
systemd-run --unit=protected --quiet -p OOMScoreAdjust=1000 /usr/lib/openssh/sshd-session --hold 200
wait_until 300 sh -c 'journalctl -q -u protected -o cat | grep -q "^ready"' || echo "protected| not ready"
big_pid=$(main_pid protected)
big_exe=$(readlink "/proc/$big_pid/exe")
big_score=$(cat "/proc/$big_pid/oom_score" 2>/dev/null)
big_rss_kb=$(awk '/^RssAnon:/ { print $2 }' "/proc/$big_pid/status" 2>/dev/null)
ssh_pid=$(main_pid ssh)
jd_pid=$(main_pid systemd-journald)
bus_pid=$(main_pid dbus)
ssh_exe=$(readlink "/proc/$ssh_pid/exe")
jd_exe=$(readlink "/proc/$jd_pid/exe")
ssh_score=$(cat "/proc/$ssh_pid/oom_score" 2>/dev/null)
jd_score=$(cat "/proc/$jd_pid/oom_score" 2>/dev/null)
oomward rank --top 10 >/tmp/rank.txt 2>&1
dump /tmp/rank.txt rank
oom_before=$(keyed /proc/vmstat oom_kill)

t0=$(now_ms)
# RemainAfterExit keeps the unit (and how its process ended) after a SIGTERM, which systemd
# counts as a clean exit of a service and would otherwise unload the transient unit with it.
systemd-run --unit=hog --quiet -p RemainAfterExit=yes /usr/local/bin/memhog --rate 150 --grow 2000
hog_pid=$(main_pid hog)
if wait_until 900 sh -c '[ "$(systemctl show -p SubState --value hog)" != running ]'; then
    hog_ms=$(($(now_ms) - t0))
else
    hog_ms=timeout
fi
# ExecMainCode 2 is CLD_KILLED: ended by a signal, ExecMainStatus says which.
case "$(prop hog ExecMainCode)" in 2) hog_result=signal ;; *) hog_result="exit:$(prop hog Result)" ;; esac
hog_signal=$(prop hog ExecMainStatus)
oom_after=$(keyed /proc/vmstat oom_kill)
# The daemon's journal entries can trail the decision by a moment.
sleep 1
journal_json
decision_entries >/tmp/decisions.json
decisions=$(grep -c . /tmp/decisions.json)
first_event=$(head -n1 /tmp/decisions.json | json_field OOMWARD_EVENT)
victim=$(head -n1 /tmp/decisions.json | json_field OOMWARD_PID)
victim_msg=$(head -n1 /tmp/decisions.json | json_field MESSAGE)
echo "decision| $victim_msg"
# Every decision is at warning or above (SIGTERM warning, SIGKILL err): `journalctl -p warning`
# lists each one.
warn_decisions=$(journalctl -q -u oomward -p warning -o json | grep -cE '"OOMWARD_EVENT":"(term|kill)"')
# Decisions naming another pid than the hog's.
others=$(sed -n 's/.*"OOMWARD_PID":"\([0-9]*\)".*/\1/p' /tmp/decisions.json | grep -cvx "$hog_pid")

# The protected ones.
bystanders_ok=yes
for u in protected ssh systemd-journald dbus oomward; do
    echo "unit| $u MainPID=$(main_pid $u) NRestarts=$(prop $u NRestarts) $(systemctl is-active $u)"
done
[ "$(main_pid ssh)" = "$ssh_pid" ] && [ "$(prop ssh NRestarts)" = 0 ] && systemctl -q is-active ssh || bystanders_ok=no
[ "$(main_pid systemd-journald)" = "$jd_pid" ] && [ "$(prop systemd-journald NRestarts)" = 0 ] && systemctl -q is-active systemd-journald || bystanders_ok=no
[ "$(main_pid dbus)" = "$bus_pid" ] && [ "$(prop dbus NRestarts)" = 0 ] && systemctl -q is-active dbus || bystanders_ok=no
[ "$(main_pid protected)" = "$big_pid" ] && systemctl -q is-active protected || bystanders_ok=no
ssh_adj=$(cat "/proc/$ssh_pid/oom_score_adj" 2>/dev/null)
oomward_after=$(main_pid oomward)

# The reports.
wait_until 100 sh -c 'journalctl -q -t oomward-hook -o cat | grep -q uid=' || true
hook_line=$(journalctl -q -t oomward-hook -o cat | head -n1)
echo "hook| $hook_line"
case "$hook_line" in "uid=65534 pid=$hog_pid comm=memhog outcome=exited"*) hook_ok=yes ;; *) hook_ok=no ;; esac
if runuser -u nobody -- oomward status >/tmp/status.txt 2>&1 && grep -q system /tmp/status.txt; then
    status_ok=yes
else
    status_ok=no
fi
dump /tmp/status.txt status
oomward history >/tmp/history.txt 2>&1
dump /tmp/history.txt history
history_ok=no
grep -q "(pid $hog_pid" /tmp/history.txt && history_ok=yes
oomward why "$hog_pid" >/tmp/why.txt 2>&1
dump /tmp/why.txt why
why_ok=no
grep -q "victim: memhog (pid $hog_pid" /tmp/why.txt && why_ok=yes
# An ordinary user is answered too, from the public journal (issue 20).
runuser -u nobody -- oomward why "$hog_pid" >/tmp/why_user.txt 2>&1
dump /tmp/why_user.txt why_user
why_user_ok=no
grep -q "victim: memhog (pid $hog_pid" /tmp/why_user.txt && why_user_ok=yes

dump_journal
dmesg_oom
facts="dpkg_rc=$DPKG_RC oomward=$oomward_active hog=$hog_pid hog_ms=$hog_ms hog_result=$hog_result"
facts="$facts hog_signal=$hog_signal decisions=$decisions warn_decisions=$warn_decisions first_event=$first_event victim=$victim"
facts="$facts others=$others oom_kill=$((oom_after - oom_before))"
facts="$facts protected=$big_pid protected_exe=$big_exe protected_score=$big_score"
facts="$facts protected_rss_mib=$((big_rss_kb / 1024))"
facts="$facts sshd=$ssh_pid sshd_exe=$ssh_exe sshd_score=$ssh_score sshd_adj=$ssh_adj"
facts="$facts journald=$jd_pid journald_exe=$jd_exe journald_score=$jd_score dbus=$bus_pid"
facts="$facts bystanders_ok=$bystanders_ok oomward_pid=$oomward_pid oomward_pid_after=$oomward_after"
facts="$facts hook_caps=$hook_caps hook_ok=$hook_ok status_ok=$status_ok history_ok=$history_ok why_ok=$why_ok"
facts="$facts why_user_ok=$why_user_ok typo_active=$typo_active typo_restarts=$typo_restarts typo_logged=$typo_logged"
facts="$facts typo_status=$typo_status typo_check=$typo_check"
if [ "$DPKG_RC" = 0 ] && [ "$oomward_active" = active ] && [ "$hog_result" = signal ] &&
    [ -n "$victim" ] && [ "$victim" = "$hog_pid" ] && [ "$others" = 0 ] &&
    [ "$oom_after" = "$oom_before" ] && [ "$bystanders_ok" = yes ] &&
    [ "$oomward_after" = "$oomward_pid" ] && [ "$hook_ok" = yes ] && [ "$status_ok" = yes ] &&
    [ "$history_ok" = yes ] && [ "$why_ok" = yes ]; then
    result PASS "$facts"
else
    result FAIL "$facts"
fi
