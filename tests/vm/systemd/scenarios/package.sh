#!/bin/sh
# package: the .deb on a real Debian 12 with systemd as PID 1, as a user gets it.
#  1. dpkg -i enables and starts the unit; it became active only after the daemon's READY=1
#     (Type=notify: the daemon's start entry is older than the unit's activation, which came
#     measurably after the process started), with a STATUS= text; the daemon's journal entries
#     carry OOMWARD_EVENT= and PRIORITY=; the shipped config.toml is comments only.
#  2. systemctl reload with a broken config.toml fails, the journal names the bad key, and the
#     daemon runs on (same MainPID, active); a SIGHUP past systemctl is refused by the daemon
#     itself ("reload refused"); once the file is fixed, a reload works.
#  3. With WatchdogSec=3s (a drop-in), a main process stopped with SIGSTOP is restarted by the
#     watchdog: a new MainPID, NRestarts one more, within the watchdog interval plus a margin.
#  4. dpkg --purge leaves nothing of the package: no file `dpkg -L` listed, no /etc/oomward, no
#     enablement symlink, no unit, no process.
#@ mem=768M
. /lab/lib.sh
. /lab/systemd.sh

# journal_since CURSOR: the journal after CURSOR (every unit), as text.
journal_since() {
    journalctl --no-pager -q --after-cursor="$1" -o cat 2>/dev/null
}
cursor() {
    journalctl -q -n 1 --show-cursor -o cat 2>/dev/null | sed -n 's/^-- cursor: //p'
}

# 1. Install.
t0=$(now_ms)
install_package
install_ms=$(($(now_ms) - t0))
active=$(systemctl is-active oomward)
enabled=$(systemctl is-enabled oomward 2>&1)
type=$(prop oomward Type)
status_text=$(prop oomward StatusText)
exec_start=$(prop oomward ExecMainStartTimestampMonotonic)
active_enter=$(prop oomward ActiveEnterTimestampMonotonic)
pid=$(main_pid oomward)
conf_active_lines=$(grep -cv -e '^#' -e '^[[:space:]]*$' /etc/oomward/config.toml)
journal_json
start_mono=$(events start | head -n1 | json_field __MONOTONIC_TIMESTAMP)
start_priority=$(events start | head -n1 | json_field PRIORITY)
# systemd's "Started ..." entry for the unit (the catalog's unit-started message id).
started_mono=$(grep '"MESSAGE_ID":"39f53479d3a045ac8e11786248231fbf"' /tmp/journal.json | head -n1 | json_field __MONOTONIC_TIMESTAMP)
ready_ms=NA
start_before_active=no
if [ -n "$exec_start" ] && [ -n "$active_enter" ] && [ -n "$start_mono" ] && [ -n "$started_mono" ]; then
    ready_ms=$(((active_enter - exec_start) / 1000))
    if [ "$exec_start" -lt "$start_mono" ] && [ "$start_mono" -lt "$active_enter" ] &&
        [ "$start_mono" -lt "$started_mono" ]; then
        start_before_active=yes
    fi
fi
echo "install| pid=$pid exec_start=$exec_start start_entry=$start_mono active_enter=$active_enter started_entry=$started_mono"
# Every entry the daemon wrote itself (its pid) has OOMWARD_EVENT= and PRIORITY=.
own=$(grep -c "\"_PID\":\"$pid\"" /tmp/journal.json)
own_structured=$(grep "\"_PID\":\"$pid\"" /tmp/journal.json | grep '"OOMWARD_EVENT":"' | grep -c '"PRIORITY":"')

# 2. Reload: broken, refused by the daemon itself, fixed.
cp /etc/oomward/config.toml /tmp/config.good
printf '[system]\nmem_available_term = "plenty"\n' >>/etc/oomward/config.toml
c=$(cursor)
systemctl reload oomward 2>/tmp/reload.err
bad_reload_rc=$?
dump /tmp/reload.err reload
# check-config's error reaches the journal through the unit's output stream: it may trail.
wait_until 50 sh -c "journalctl --no-pager -q --after-cursor='$c' -o cat | grep -q mem_available_term"
bad_reload_pid=$(main_pid oomward)
bad_reload_active=$(systemctl is-active oomward)
bad_reload_logged=$(journal_since "$c" | grep -c 'mem_available_term')
c=$(cursor)
kill -HUP "$pid"
if wait_until 100 sh -c "journalctl --no-pager -q --after-cursor='$c' -u oomward -o cat | grep -q 'reload refused'"; then
    hup_refused=yes
else
    hup_refused=no
fi
hup_pid=$(main_pid oomward)
hup_active=$(systemctl is-active oomward)
cp /tmp/config.good /etc/oomward/config.toml
c=$(cursor)
systemctl reload oomward 2>/tmp/reload.err
good_reload_rc=$?
dump /tmp/reload.err reload
if wait_until 100 sh -c "journalctl --no-pager -q --after-cursor='$c' -u oomward -o json | grep '\"OOMWARD_EVENT\":\"reload\"' | grep -vq 'refused'"; then
    good_reload_logged=yes
else
    good_reload_logged=no
fi
good_reload_pid=$(main_pid oomward)

# 3. Watchdog.
mkdir -p /etc/systemd/system/oomward.service.d
printf '[Service]\nWatchdogSec=3s\n' >/etc/systemd/system/oomward.service.d/lab-watchdog.conf
systemctl daemon-reload
systemctl restart oomward
wait_active oomward 300
watchdog=$(prop oomward WatchdogUSec)
nr_before=$(prop oomward NRestarts)
wd_pid=$(main_pid oomward)
c=$(cursor)
kill -STOP "$wd_pid"
t0=$(now_ms)
restarted() {
    p=$(main_pid oomward)
    [ "$p" != 0 ] && [ "$p" != "$wd_pid" ] && systemctl -q is-active oomward
}
if wait_until 600 restarted; then
    restart_ms=$(($(now_ms) - t0))
else
    restart_ms=timeout
fi
new_pid=$(main_pid oomward)
new_comm=$(cat "/proc/$new_pid/comm" 2>/dev/null)
nr_after=$(prop oomward NRestarts)
watchdog_logged=$(journal_since "$c" | grep -c 'Watchdog timeout')
if alive "$wd_pid"; then old_gone=no; else old_gone=yes; fi

# 4. Purge (the admin's drop-in goes first: it is not the package's).
rm -rf /etc/systemd/system/oomward.service.d
systemctl daemon-reload
dpkg -L oomward | grep -v '^/\.$' >/tmp/package.files
files=$(grep -c . /tmp/package.files)
dpkg --purge oomward >/tmp/purge.log 2>&1
purge_rc=$?
dump /tmp/purge.log purge
systemctl daemon-reload
# Every path the remaining packages own (one read of dpkg's database, not a dpkg -S per path).
cat /var/lib/dpkg/info/*.list | sort -u >/tmp/owned.files
: >/tmp/leftover
while read -r f; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    # A directory another package owns too stays, rightly.
    if [ -d "$f" ] && [ ! -L "$f" ] && grep -qFx "$f" /tmp/owned.files; then
        continue
    fi
    echo "$f" >>/tmp/leftover
done </tmp/package.files
[ -e /etc/oomward ] && echo /etc/oomward >>/tmp/leftover
find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked -name '*oomward*' >>/tmp/leftover 2>/dev/null
dump /tmp/leftover leftover
leftover=$(grep -c . /tmp/leftover)
unit_files=$(systemctl list-unit-files --no-legend oomward.service 2>/dev/null | grep -c oomward)
if pgrep -x oomward >/dev/null; then process_left=yes; else process_left=no; fi

dump_journal
facts="dpkg_rc=$DPKG_RC install_ms=$install_ms active=$active enabled=$enabled type=$type"
facts="$facts status=\"$status_text\" ready_ms=$ready_ms start_before_active=$start_before_active"
facts="$facts start_priority=$start_priority own_entries=$own own_structured=$own_structured"
facts="$facts conf_active_lines=$conf_active_lines"
facts="$facts pid=$pid bad_reload_rc=$bad_reload_rc bad_reload_pid=$bad_reload_pid"
facts="$facts bad_reload_active=$bad_reload_active bad_reload_logged=$bad_reload_logged"
facts="$facts hup_refused=$hup_refused hup_pid=$hup_pid hup_active=$hup_active"
facts="$facts good_reload_rc=$good_reload_rc good_reload_logged=$good_reload_logged"
facts="$facts good_reload_pid=$good_reload_pid"
facts="$facts watchdog=$watchdog wd_pid=$wd_pid new_pid=$new_pid new_comm=$new_comm"
facts="$facts nr_before=$nr_before nr_after=$nr_after restart_ms=$restart_ms"
facts="$facts watchdog_logged=$watchdog_logged old_gone=$old_gone"
facts="$facts files=$files purge_rc=$purge_rc leftover=$leftover unit_files=$unit_files"
facts="$facts process_left=$process_left"
ok=true
for cond in \
    "[ $DPKG_RC = 0 ]" "[ $active = active ]" "[ $enabled = enabled ]" "[ $type = notify ]" \
    "[ -n \"$status_text\" ]" "[ $start_before_active = yes ]" "[ \"$start_priority\" != '' ]" \
    "[ $own -gt 0 ] && [ $own = $own_structured ]" "[ $conf_active_lines = 0 ]" \
    "[ $bad_reload_rc != 0 ] && [ $bad_reload_pid = $pid ] && [ $bad_reload_active = active ]" \
    "[ $bad_reload_logged -gt 0 ]" \
    "[ $hup_refused = yes ] && [ $hup_pid = $pid ] && [ $hup_active = active ]" \
    "[ $good_reload_rc = 0 ] && [ $good_reload_logged = yes ] && [ $good_reload_pid = $pid ]" \
    "[ $restart_ms != timeout ] && [ $new_comm = oomward ] && [ $old_gone = yes ]" \
    "[ $nr_after = $((nr_before + 1)) ] && [ $watchdog_logged -gt 0 ]" \
    "[ $purge_rc = 0 ] && [ $leftover = 0 ] && [ $unit_files = 0 ] && [ $process_left = no ]"; do
    if ! eval "$cond" 2>/dev/null; then
        echo "failed| $cond"
        ok=false
    fi
done
if $ok; then result PASS "$facts"; else result FAIL "$facts"; fi
