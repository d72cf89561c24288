#!/bin/sh
# desktop: a desktop session like GNOME's runs out of memory, one browser tab running away, and
# five defenders are measured side by side, each as its Debian package ships it. VARIANT:
#   kernel        nobody: the kernel's OOM killer;
#   earlyoom      earlyoom.service as packaged (/etc/default/earlyoom: -r 3600);
#   nohang        nohang-desktop.service (/etc/nohang/nohang-desktop.conf);
#   systemd-oomd  Fedora Workstation's drop-ins (ManagedOOMSwap=kill on -.slice,
#                 ManagedOOMMemoryPressure=kill at 50 % on user@.service; Debian's package
#                 ships the same files under /usr/lib, written here to /etc as Fedora's admin
#                 would see them), systemd-oomd enabled, user@1000 restarted to take them;
#   oomward       dpkg -i of the package under test, the desktop preset linked as the README
#                 says (/etc/oomward/config.d/50-desktop.toml), the daemon restarted.
# The machine, the same for every variant: 1 GiB of RAM; zram swap of half of it (lzo-rle,
# the kernel's default, priority 100, as Fedora's zram-generator makes it); the lab's scratch
# disk as /mnt with 384 MiB of files and the compositor's 64 MiB file (page cache that can be
# dropped and read again, as a real disk's).
# The session: alice (uid 1000, lingering) with her user manager, the stand-ins started as her
# with `systemd-run --user`, in the units GNOME puts them in:
#   session.slice/org.gnome.Shell@wayland.service  gnome-shell (uiprobe at /usr/bin/gnome-shell:
#       every 10 ms it wakes and reads 64 pages of its file mapping, measuring how late it woke
#       and how long the reads took) and its child Xwayland (memhog, 20 MiB);
#   session.slice/gnome-session-manager@gnome.service  gnome-session-binary (memhog, 20 MiB);
#   session.slice/pipewire.service  pipewire (memhog, 10 MiB);
#   app.slice/app-gnome-chromium-N.scope  a launcher shell (the browser's zygote), the browser
#       (memhog at /usr/lib/chromium/chromium, 60 MiB) and three renderers (`--type=renderer`,
#       50 MiB each); then, once everything is ready, a fourth renderer in the same scope, the
#       runaway: 40 MiB, growing at 80 MiB/s towards 2000 MiB (more than RAM and swap);
#   app.slice/app-gnome-reader-N.scope  a shell reading the disk's files to /dev/null in a loop.
# Nobody's oom_score_adj is set: each keeps what the user manager gives it.
# Measured from the runaway's start until it died + 3 s (at most 40 s): who died and in which
# order (lib.sh's monitor, every 20 ms; it also notes when MemAvailable and SwapFree both fell
# to 10 %, and zram's mm_stat at its peak), the kernel's oom_kill count, PSI memory some/full
# stall totals, gnome-shell's summary (SIGTERM at the end), the defender's journal.
# Verdict: for oomward PASS only if the runaway was the first and only victim (everything else
# alive: compositor, Xwayland, session, pipewire, the browser and its other renderers, the
# reader) and the kernel killed nobody; the other variants are measured, not judged: PASS
# whenever the setup worked.
#@ mem=1024M
#@ disk
. /lab/lib.sh
. /lab/systemd.sh

journal_unit=
# fail REASON: the setup failed; what the defender logged and the kernel's kills explain it.
fail() {
    mark "failing: $1"
    for f in /tmp/desk/*.out; do
        [ -e "$f" ] && dump "$f" "$(basename "$f" .out)"
    done
    if [ -n "$journal_unit" ]; then
        timeout 20 journalctl --no-pager -u "$journal_unit" -o short-monotonic >/tmp/fail-journal.txt 2>&1
        tail -n 60 /tmp/fail-journal.txt | sed 's/^/journal| /'
    fi
    dmesg | grep -iE 'killed process' | sed 's/^/dmesg| /'
    result FAIL "variant=$VARIANT reason=$1"
    exit 1
}
mark() {
    read -r up _ </proc/uptime
    echo "step| $up $*"
    echo "$up $*" >/tmp/step
}
# A heartbeat on the console every 5 s; when no step was marked for 25 s, the kernel's view of
# the tasks (sysrq w: blocked ones; m: memory) once, so that a stuck guest explains itself.
heartbeat() {
    echo 1 >/proc/sys/kernel/sysrq
    told=
    while :; do
        sleep 5
        read -r up _ </proc/uptime
        read -r last _ </tmp/step
        echo "beat| $up last_step=$last"
        if [ -z "$told" ] && [ "${up%.*}" -gt $((${last%.*} + 25)) ]; then
            told=yes
            dmesg -n 7
            echo w >/proc/sysrq-trigger
            echo m >/proc/sysrq-trigger
            dmesg -n 1
        fi
    done
}

mark start
heartbeat &
beat=$!
lab_modules
# The scratch disk and the zram swap.
setup_disk /mnt || fail no_disk
[ -s /mnt/ui.dat ] && [ -s /mnt/files/f0 ] || fail disk_without_files
mt_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
modprobe lzo-rle 2>/dev/null
{
    modprobe zram num_devices=1 &&
        echo lzo-rle >/sys/block/zram0/comp_algorithm &&
        echo "$((mt_kb / 2))K" >/sys/block/zram0/disksize &&
        mkswap /dev/zram0 >/dev/null &&
        swapon -p 100 /dev/zram0
} 2>/tmp/zram.err || {
    dump /tmp/zram.err zram
    fail no_zram
}
swapon --show=NAME,SIZE,PRIO --noheadings | sed 's/^/swap| /'
mark "disk and zram"

# alice's user manager (started by logind for the linger file).
wait_active user@1000.service 300 || fail no_user_manager
wait_until 100 test -S /run/user/1000/systemd/private || fail no_user_manager_socket

# The defender.
case "$VARIANT" in
kernel) ;;
earlyoom)
    journal_unit=earlyoom.service
    systemctl unmask -q earlyoom.service
    systemctl enable -q --now earlyoom.service 2>&1 | sed 's/^/systemctl| /'
    wait_until 200 sh -c 'journalctl -q -u earlyoom -o cat | grep -q "mem total"' || fail earlyoom_not_started
    ;;
nohang)
    journal_unit=nohang-desktop.service
    systemctl unmask -q nohang-desktop.service
    systemctl enable -q --now nohang-desktop.service 2>&1 | sed 's/^/systemctl| /'
    wait_until 300 sh -c 'journalctl -q -u nohang-desktop -o cat | grep -qi "monitoring has started"' || fail nohang_not_started
    ;;
systemd-oomd)
    journal_unit=systemd-oomd.service
    mkdir -p /etc/systemd/system/-.slice.d /etc/systemd/system/user@.service.d
    printf '[Slice]\nManagedOOMSwap=kill\n' >/etc/systemd/system/-.slice.d/10-oomd-root-slice-defaults.conf
    printf '[Service]\nManagedOOMMemoryPressure=kill\nManagedOOMMemoryPressureLimit=50%%\n' \
        >/etc/systemd/system/user@.service.d/10-oomd-user-service-defaults.conf
    systemctl unmask -q systemd-oomd.service systemd-oomd.socket
    systemctl daemon-reload
    systemctl enable -q --now systemd-oomd.socket systemd-oomd.service 2>&1 | sed 's/^/systemctl| /'
    systemctl restart user@1000.service
    wait_active user@1000.service 300 || fail no_user_manager_after_restart
    wait_until 100 test -S /run/user/1000/systemd/private || fail no_user_manager_socket
    wait_active systemd-oomd.service 200 || fail oomd_not_started
    # Both units monitored, as oomctl reports them.
    wait_until 100 sh -c 'oomctl dump | grep -q "Path: /user.slice/user-1000.slice/user@1000.service"' || true
    oomctl dump >/tmp/oomctl.txt 2>&1
    dump /tmp/oomctl.txt oomctl
    grep -q 'Swap Monitored CGroups' /tmp/oomctl.txt && grep -q 'Path: /$' /tmp/oomctl.txt || fail oomd_not_monitoring_root
    grep -q 'Path: /user.slice/user-1000.slice/user@1000.service' /tmp/oomctl.txt || fail oomd_not_monitoring_user
    ;;
oomward)
    journal_unit=oomward.service
    install_package
    [ "$DPKG_RC" = 0 ] || fail dpkg
    mkdir -p /etc/oomward/config.d
    ln -s /usr/share/oomward/presets/desktop.toml /etc/oomward/config.d/50-desktop.toml
    oomward check-config >/tmp/check.txt 2>&1 || {
        dump /tmp/check.txt check
        fail config
    }
    systemctl restart oomward
    wait_active oomward 300 || fail oomward_not_active
    ;;
*) fail unknown_variant ;;
esac
mark "defender $VARIANT"
# The kernel's kills count from here: the session's start included.
oom0=$(keyed /proc/vmstat oom_kill)

# The session's files.
D=/tmp/desk
mkdir -p "$D" /usr/libexec /usr/lib/chromium
chown alice "$D"
cp /usr/local/bin/uiprobe /usr/bin/gnome-shell
cp /usr/local/bin/memhog /usr/bin/Xwayland
cp /usr/local/bin/memhog /usr/libexec/gnome-session-binary
cp /usr/local/bin/memhog /usr/bin/pipewire
cp /usr/local/bin/memhog /usr/lib/chromium/chromium
cat >"$D/shell.sh" <<'EOF'
cd /tmp/desk || exit 1
/usr/bin/Xwayland --hold 20 >xwayland.out 2>&1 &
echo $! >xwayland.pid
echo $$ >shell.pid
exec /usr/bin/gnome-shell --file /mnt/ui.dat --file-mib 64 --touch-pages 64 >shell.out 2>&1
EOF
# The apps' scopes are made by `systemd-run --scope`, which runs its command itself: it would
# carry this script's oom_score_adj (-1000). GNOME's apps are gnome-shell's children and carry
# its adj: so do these.
cat >"$D/chromium.sh" <<'EOF'
cd /tmp/desk || exit 1
cat app.adj >/proc/self/oom_score_adj
echo $$ >launcher.pid
c=/usr/lib/chromium/chromium
$c --hold 60 >browser.out 2>&1 &
echo $! >browser.pid
for i in 1 2 3; do
    $c --type=renderer --hold 50 >renderer$i.out 2>&1 &
    echo $! >renderer$i.pid
done
while [ ! -e go ]; do sleep 0.05; done
$c --type=renderer --hold 40 --rate 80 --grow 2000 >runaway.out 2>&1 &
echo $! >runaway.pid
wait
EOF
cat >"$D/reader.sh" <<'EOF'
cat /tmp/desk/app.adj >/proc/self/oom_score_adj
echo $$ >/tmp/desk/reader.pid
while :; do
    cat /mnt/files/f* >/dev/null
done
EOF
# Scripts rather than `sh -c` lines: systemd would expand `$` in a command line.
cat >"$D/session.sh" <<'EOF'
echo $$ >/tmp/desk/session.pid
exec /usr/libexec/gnome-session-binary --hold 20 >/tmp/desk/session.out 2>&1
EOF
cat >"$D/pipewire.sh" <<'EOF'
echo $$ >/tmp/desk/pipewire.pid
exec /usr/bin/pipewire --hold 10 >/tmp/desk/pipewire.out 2>&1
EOF
chmod 755 "$D"/*.sh

run_user() {
    timeout 30 runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/1000 \
        DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus \
        systemd-run --user --quiet "$@" >/tmp/run_user.out 2>&1
    rc=$?
    dump /tmp/run_user.out systemd-run
    mark "systemd-run $1: rc=$rc"
}
run_user --unit=org.gnome.Shell@wayland.service --slice=session.slice /bin/sh "$D/shell.sh"
run_user --unit=gnome-session-manager@gnome.service --slice=session.slice \
    /bin/sh "$D/session.sh"
run_user --unit=pipewire.service --slice=session.slice \
    /bin/sh "$D/pipewire.sh"
# settled NAME...: each said `ready`, or is already gone (a defender may act while the session
# starts: that is a fact, recorded below, not a broken setup).
settled() {
    for f in "$@"; do
        grep -qs '^ready' "$D/$f.out" && continue
        [ -s "$D/$f.pid" ] && ! alive "$(cat "$D/$f.pid")" && continue
        return 1
    done
}
wait_until 300 settled shell xwayland session pipewire || fail session_not_ready
# gnome-shell's adj (if it is gone already: 200, what alice's user manager gives its units).
cat "/proc/$(cat "$D/shell.pid")/oom_score_adj" >"$D/app.adj" 2>/dev/null || echo 200 >"$D/app.adj"
as_alice systemd-run --user --quiet --scope --unit="app-gnome-chromium-$$.scope" --slice=app.slice \
    /bin/sh "$D/chromium.sh" >/dev/null 2>&1 &
as_alice systemd-run --user --quiet --scope --unit="app-gnome-reader-$$.scope" --slice=app.slice \
    /bin/sh "$D/reader.sh" >/dev/null 2>&1 &

# Ready: every memhog said so, gnome-shell too (or is gone).
ready() {
    settled shell xwayland session pipewire browser renderer1 renderer2 renderer3 &&
        test -s "$D/reader.pid" && test -s "$D/launcher.pid"
}
if ! wait_until 600 ready; then
    as_alice systemctl --user list-units --no-legend --plain 2>&1 | sed 's/^/user-units| /'
    fail session_not_ready
fi
pid_of() {
    cat "$D/$1.pid"
}
compositor=$(pid_of shell)
xwayland=$(pid_of xwayland)
session=$(pid_of session)
pipewire=$(pid_of pipewire)
browser=$(pid_of browser)
r1=$(pid_of renderer1)
r2=$(pid_of renderer2)
r3=$(pid_of renderer3)
reader=$(pid_of reader)
launcher=$(pid_of launcher)
mark "session ready"
# Where each one runs, at which adj.
for p in $compositor $xwayland $session $pipewire $launcher $browser $r1 $reader; do
    echo "proc| $p $(cat /proc/$p/comm) adj=$(cat /proc/$p/oom_score_adj) score=$(cat /proc/$p/oom_score) $(cut -d: -f3 /proc/$p/cgroup)"
done
# Let the reader fill the cache for a moment.
sleep 2
grep -E '^(MemTotal|MemAvailable|Cached|SwapTotal|SwapFree):' /proc/meminfo | sed 's/^/meminfo| /'

# Any stand-in already gone (a defender acting on the session's start)?
pre_go=
for p in $compositor $xwayland $session $pipewire $browser $r1 $r2 $r3 $launcher $reader; do
    alive "$p" || pre_go="$pre_go${pre_go:+,}$p"
done
full0=$(psi_total full)
some0=$(psi_total some)
rm -f /tmp/monitor.out /tmp/monitor.stop
read -r t_go _ </proc/uptime
touch "$D/go"
wait_until 50 test -s "$D/runaway.pid" || fail runaway_not_started
runaway=$(pid_of runaway)
monitor "$runaway" "$r1" "$r2" "$r3" "$browser" "$launcher" "$compositor" "$xwayland" \
    "$session" "$pipewire" "$reader" &
mon=$!
mark "runaway $runaway started"
# Until the runaway died, then 3 s more; at most 40 s.
end=$(($(now_ms) + 40000))
while [ "$(now_ms)" -lt "$end" ] && alive "$runaway"; do
    sleep 0.2
    read -r up _ </proc/uptime
    echo "$up waiting" >/tmp/step
done
runaway_dead=no
if ! alive "$runaway"; then
    runaway_dead=yes
    sleep 3
fi
read -r t_end _ </proc/uptime
touch /tmp/monitor.stop
wait "$mon"
full1=$(psi_total full)
some1=$(psi_total some)
oom1=$(keyed /proc/vmstat oom_kill)
mark "run over"
kill "$beat" 2>/dev/null
yes_if_alive() { if alive "$1"; then echo yes; else echo no; fi; }
compositor_alive=$(yes_if_alive "$compositor")
session_alive=$(yes_if_alive "$session")
xwayland_alive=$(yes_if_alive "$xwayland")
pipewire_alive=$(yes_if_alive "$pipewire")
browser_alive=$(yes_if_alive "$browser")
reader_alive=$(yes_if_alive "$reader")
renderers_alive=0
for p in "$r1" "$r2" "$r3"; do alive "$p" && renderers_alive=$((renderers_alive + 1)); done
# gnome-shell's summary, if it lives; then the runaway goes, if it is still there.
if alive "$compositor"; then
    kill -TERM "$compositor"
    wait_until 100 grep -qs '^uiprobe ' "$D/shell.out"
fi
alive "$runaway" && kill -KILL "$runaway"

name_of() {
    case "$1" in
    "$runaway") echo runaway ;;
    "$r1" | "$r2" | "$r3") echo renderer ;;
    "$browser") echo browser ;;
    "$launcher") echo launcher ;;
    "$compositor") echo compositor ;;
    "$xwayland") echo xwayland ;;
    "$session") echo session ;;
    "$pipewire") echo pipewire ;;
    "$reader") echo reader ;;
    *) echo "pid$1" ;;
    esac
}
victims=
for p in $(sed -n 's/^death=.* pid=\([0-9]*\)$/\1/p' /tmp/monitor.out); do
    victims="$victims${victims:+,}$(name_of "$p")"
done
first_victim=${victims%%,*}
[ -n "$first_victim" ] || first_victim=none
[ -n "$victims" ] || victims=none
# Those dead before the runaway started, by name.
before=
for p in $(echo "$pre_go" | tr , ' '); do
    before="$before${before:+,}$(name_of "$p")"
done
[ -n "$before" ] || before=none
runaway_death=$(sed -n "s/^death=\([0-9.]*\) pid=$runaway\$/\1/p" /tmp/monitor.out)
runaway_ms=$(awk -v a="$t_go" -v b="$runaway_death" 'BEGIN { if (b == "") print "-"; else printf "%d\n", (b - a) * 1000 }')
ui=$(grep -m1 '^uiprobe ' "$D/shell.out")
ui_field() {
    v=$(echo "$ui" | tr ' ' '\n' | sed -n "s/^$1=//p")
    echo "${v:--}"
}
cross=$(sed -n 's/^cross=\([0-9.]*\).*/\1/p' /tmp/monitor.out)
cross_ms=$(awk -v a="$t_go" -v b="$cross" 'BEGIN { if (b == "") print "-"; else printf "%d\n", (b - a) * 1000 }')
zram_peak=$(sed -n 's/^zram_peak=//p' /tmp/monitor.out)
zram_orig_mib=$(echo "$zram_peak" | awk '{ printf "%d\n", $1 / 1048576 }')
zram_used_mib=$(echo "$zram_peak" | awk '{ printf "%d\n", $3 / 1048576 }')

dump /tmp/monitor.out monitor
echo "uiprobe| $ui"
dump "$D/runaway.out" runaway
grep -E '^(MemTotal|MemAvailable|Cached|SwapTotal|SwapFree):' /proc/meminfo | sed 's/^/meminfo| /'
if [ -n "$journal_unit" ]; then
    timeout 20 journalctl --no-pager -u "$journal_unit" -o short-monotonic >/tmp/journal.txt 2>&1
    dump /tmp/journal.txt journal
fi
dmesg_oom

facts="variant=$VARIANT first_victim=$first_victim victims=$victims runaway_dead=$runaway_dead"
facts="$facts compositor_alive=$compositor_alive session_alive=$session_alive"
facts="$facts xwayland_alive=$xwayland_alive pipewire_alive=$pipewire_alive"
facts="$facts browser_alive=$browser_alive reader_alive=$reader_alive"
facts="$facts other_renderers_alive=$renderers_alive oom_kill=$((oom1 - oom0)) died_before_runaway=$before"
facts="$facts ui_p99_us=$(ui_field late_p99_us) ui_max_us=$(ui_field late_max_us)"
facts="$facts touch_p99_us=$(ui_field touch_p99_us) touch_max_us=$(ui_field touch_max_us)"
facts="$facts ui_wakes=$(ui_field wakes) ui_missed=$(ui_field missed) majflt=$(ui_field majflt)"
facts="$facts psi_full_ms=$(((full1 - full0) / 1000)) psi_some_ms=$(((some1 - some0) / 1000))"
facts="$facts runaway_ms=$runaway_ms cross_ms=$cross_ms zram_orig_mib=$zram_orig_mib"
facts="$facts zram_used_mib=$zram_used_mib run_s=$(awk -v a="$t_go" -v b="$t_end" 'BEGIN { printf "%.1f\n", b - a }')"
facts="$facts guest_s=$(awk '{ printf "%.1f\n", $1 }' /proc/uptime)"
if [ "$VARIANT" = oomward ]; then
    if [ "$victims" = runaway ] && [ "$compositor_alive" = yes ] && [ "$session_alive" = yes ] &&
        [ "$xwayland_alive" = yes ] && [ "$pipewire_alive" = yes ] && [ "$renderers_alive" = 3 ] &&
        [ "$oom1" = "$oom0" ]; then
        result PASS "$facts"
    else
        result FAIL "$facts"
    fi
else
    result PASS "$facts"
fi
