#!/bin/sh
# postgres: a real PostgreSQL 15 under a cgroup-v2 memory limit on a systemd host, the package
# at its defaults with the database's cgroup watched (a drop-in of two lines). What it shows: a
# sort that runs the cgroup out of memory is stopped by SIGTERM alone, so that its backend ends
# its own session and the postmaster carries on; a backend killed by SIGKILL makes the
# postmaster end every other session and reinitialize.
# The cluster: Debian's postgresql-15 files, unpacked on the scratch disk by
# tests/vm/prepare-systemd.sh (pg/), run in place (LD_LIBRARY_PATH), its data directory on the
# same disk (writes discarded with the guest). The postmaster runs as alice in a transient
# service `pg` with MemoryMax=512M (memory.high stays max), unix socket only, 32 MB
# shared_buffers, no JIT. Three idle psql sessions stay connected from outside the cgroup.
# Runs: RUNS cold (the cgroup's page cache holds the cluster's files only), then RUNS warm (a
# ~200 MiB table read before each run, so the cgroup sits near its limit in page cache the sort
# must reclaim). Each run is one session's `work_mem = 2GB` sort; then: the decision names the
# sort's backend, by SIGTERM, never escalated; the session got "terminating connection due to
# administrator command"; the postmaster's log has no crash words; the three idle sessions
# keep their backends; memory.events oom_kill and /proc/vmstat oom_kill did not move.
# The verdict line: per variant the count of clean runs, and per run the facts the decision
# gave (eta_ms, signal_rule, room_ms, term_exit_ms) and the backend's exit time after SIGTERM.
#@ mem=1536M
#@ disk
. /lab/lib.sh
. /lab/systemd.sh

RUNS=5
PG=/mnt/pg
BIN=$PG/usr/lib/postgresql/15/bin
LIBS=$PG/usr/lib/x86_64-linux-gnu
DATA=/mnt/pgdata
SOCK=/run/pg
CG=/sys/fs/cgroup/system.slice/pg.service
SORT="set work_mem = '2GB'; select g from generate_series(1, 40000000) g order by g desc limit 1;"

fail() {
    echo "step| failing: $1"
    journalctl --no-pager -u pg -o cat 2>&1 | tail -n 40 | sed 's/^/pg| /'
    dump_journal | tail -n 60
    dmesg_oom
    result FAIL "reason=$1"
    exit 1
}

# psql as alice against the cluster; the arguments follow.
pg_sql() {
    runuser -u alice -- env LD_LIBRARY_PATH="$LIBS" "$BIN/psql" -X -q -A -t -h "$SOCK" -U postgres "$@"
}

install_package
wait_active oomward 300 || fail "oomward not active"
lab_modules
setup_disk /mnt || fail "no scratch disk"
[ -x "$BIN/postgres" ] || fail "no $BIN/postgres on the scratch disk"
# Debian's PostgreSQL reads time zones from /usr/share/zoneinfo; tzdata came with it.
[ -e /usr/share/zoneinfo ] || ln -s "$PG/usr/share/zoneinfo" /usr/share/zoneinfo
mkdir -p "$DATA"
chown alice:alice "$DATA"
runuser -u alice -- env LD_LIBRARY_PATH="$LIBS" "$BIN/initdb" -D "$DATA" -U postgres \
    --auth=trust --locale=C -E UTF8 --no-sync >/tmp/initdb.log 2>&1 || {
    dump /tmp/initdb.log initdb
    fail "initdb"
}
cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$SOCK'
shared_buffers = 32MB
jit = off
fsync = off
EOF
systemd-run --unit=pg --quiet -p User=alice -p RuntimeDirectory=pg -p MemoryMax=512M \
    -p "Environment=LD_LIBRARY_PATH=$LIBS" "$BIN/postgres" -D "$DATA"
wait_until 300 runuser -u alice -- env LD_LIBRARY_PATH="$LIBS" "$BIN/pg_isready" -q -h "$SOCK" ||
    fail "postgres not ready"
postmaster=$(main_pid pg)

# The daemon watches the database's cgroup; everything else stays at the package's defaults.
cat >/etc/oomward/config.d/50-lab-pg.toml <<'EOF'
[[cgroup]]
path = "/system.slice/pg.service"
EOF
systemctl restart oomward
wait_active oomward 300 || fail "oomward not active after the restart"
wait_until 100 sh -c 'journalctl -q -u oomward -o json | grep -q "\"OOMWARD_EVENT\":\"scope_added\".*pg.service"' ||
    fail "oomward does not watch pg.service"

# Three idle sessions, each a psql reading from a fifo this shell keeps open (fds 3 to 5).
for i in 1 2 3; do
    mkfifo "/tmp/idle$i"
    runuser -u alice -- env LD_LIBRARY_PATH="$LIBS" PGAPPNAME="idle$i" "$BIN/psql" -X -q \
        -h "$SOCK" -U postgres <"/tmp/idle$i" >"/tmp/idle$i.out" 2>&1 &
done
exec 3>/tmp/idle1 4>/tmp/idle2 5>/tmp/idle3
idle_sql="select string_agg(pid::text, ',' order by pid) from pg_stat_activity where application_name like 'idle%'"
wait_until 100 sh -c "[ \"\$(runuser -u alice -- env LD_LIBRARY_PATH=$LIBS $BIN/psql -X -q -A -t -h $SOCK -U postgres -c \"$idle_sql\" | tr ',' '\n' | grep -c .)\" = 3 ]" ||
    fail "the idle sessions did not connect"
idle_backends=$(pg_sql -c "$idle_sql")
echo "step| idle backends $idle_backends, postmaster $postmaster"

# A count of the daemon's journal entries with OOMWARD_EVENT=EVENT.
event_count() {
    journalctl -q -u oomward -o json | grep -c "\"OOMWARD_EVENT\":\"$1\""
}

clean_total=0
# run VARIANT N: one sort; appends its facts to $runs_facts and counts a clean run.
run_once() {
    variant=$1
    n=$2
    if [ "$variant" = warm ]; then
        pg_sql -c "select count(*) from t" >/dev/null
    fi
    file_kb=$(($(keyed "$CG/memory.stat" file) / 1024))
    recovered_before=$(event_count recovered)
    journal_json
    decisions_before=$(decision_entries | grep -c .)
    esc_before=$(events escalate | grep -c .)
    pg_lines_before=$(journalctl -q -u pg -o cat | grep -c .)
    cg_oom_before=$(keyed "$CG/memory.events" oom_kill)
    oom_before=$(keyed /proc/vmstat oom_kill)
    rm -f /tmp/sortpid
    printf "select pg_backend_pid() \\\\g /tmp/sortpid\n%s\n" "$SORT" |
        runuser -u alice -- env LD_LIBRARY_PATH="$LIBS" PGAPPNAME=sort "$BIN/psql" -X -q -A -t \
            -h "$SOCK" -U postgres >/tmp/sort.out 2>&1
    backend=$(tr -dc 0-9 </tmp/sortpid 2>/dev/null)
    # The episode's end, then the journal has every line of it.
    wait_until 100 sh -c "[ \$(journalctl -q -u oomward -o json | grep -c '\"OOMWARD_EVENT\":\"recovered\"') -gt $recovered_before ]"
    sleep 0.5
    journal_json
    decision_entries | tail -n "+$((decisions_before + 1))" >/tmp/run-decisions.json
    decisions=$(grep -c . /tmp/run-decisions.json)
    first=$(head -n1 /tmp/run-decisions.json)
    victim=$(echo "$first" | json_field OOMWARD_PID)
    event=$(echo "$first" | json_field OOMWARD_EVENT)
    signal=$(echo "$first" | json_field OOMWARD_SIGNAL)
    eta=$(echo "$first" | json_field OOMWARD_ETA_MS)
    rule=$(echo "$first" | json_field OOMWARD_SIGNAL_RULE)
    room=$(echo "$first" | json_field OOMWARD_ROOM_MS)
    term_exit=$(echo "$first" | json_field OOMWARD_TERM_EXIT_MS)
    exit_ms=$(events exit | grep "\"OOMWARD_PID\":\"$backend\"" | tail -n1 | json_field OOMWARD_AFTER_MS)
    escalated=$(($(events escalate | grep -c .) - esc_before))
    journalctl -q -u pg -o cat | tail -n "+$((pg_lines_before + 1))" >/tmp/pg-run.log
    crash=$(grep -cE 'terminating any other active server processes|was terminated by signal|reinitializing' /tmp/pg-run.log)
    admin=$(grep -c 'terminating connection due to administrator command' /tmp/sort.out)
    idle_now=$(pg_sql -c "$idle_sql")
    cg_oom=$(($(keyed "$CG/memory.events" oom_kill) - cg_oom_before))
    oom=$(($(keyed /proc/vmstat oom_kill) - oom_before))
    pm_now=$(main_pid pg)
    echo "run| $variant $n backend=$backend file_kib=$file_kb decisions=$decisions victim=$victim event=$event signal=$signal eta_ms=$eta signal_rule=$rule room_ms=$room term_exit_ms=$term_exit exit_ms=$exit_ms escalated=$escalated crash=$crash admin=$admin idle=$idle_now cg_oom_kill=$cg_oom oom_kill=$oom"
    dump /tmp/sort.out sort
    dump /tmp/pg-run.log pg
    if [ -n "$backend" ] && [ "$decisions" = 1 ] && [ "$victim" = "$backend" ] &&
        [ "$event" = term ] && [ "$signal" = SIGTERM ] && [ "$escalated" = 0 ] &&
        [ "$crash" = 0 ] && [ "$admin" -ge 1 ] && [ "$idle_now" = "$idle_backends" ] &&
        [ "$cg_oom" = 0 ] && [ "$oom" = 0 ] && [ "$pm_now" = "$postmaster" ]; then
        clean=$((clean + 1))
    fi
    exit_list="$exit_list${exit_list:+,}${exit_ms:--}"
    rule_list="$rule_list${rule_list:+,}${rule:--}"
    room_list="$room_list${room_list:+,}${room:--}"
    eta_list="$eta_list${eta_list:+,}${eta:--}"
}

facts="dpkg_rc=$DPKG_RC runs=$RUNS"
# variant NAME: RUNS runs of run_once, then NAME's facts on the verdict line.
variant() {
    clean=0 exit_list= rule_list= room_list= eta_list=
    i=1
    while [ "$i" -le "$RUNS" ]; do
        run_once "$1" "$i"
        i=$((i + 1))
    done
    facts="$facts ${1}_clean=$clean ${1}_exit_ms=$exit_list ${1}_signal_rule=$rule_list"
    facts="$facts ${1}_room_ms=$room_list ${1}_eta_ms=$eta_list"
    clean_total=$((clean_total + clean))
}

# Cold first: only the cluster's own files in the cgroup's page cache.
variant cold
pg_sql -c "create unlogged table t as select g, repeat('x', 200) as pad from generate_series(1, 800000) g" >/dev/null ||
    fail "create table"
variant warm

idle_final=$(pg_sql -c "$idle_sql")
facts="$facts idle_backends=$idle_backends idle_final=$idle_final postmaster=$postmaster postmaster_final=$(main_pid pg)"
facts="$facts oomward=$(systemctl is-active oomward)"
exec 3>&- 4>&- 5>&-
systemctl stop pg
dump_journal | grep -E 'OOMWARD|term|kill|exit|futile|steady|recovered' | tail -n 80
if [ "$clean_total" = $((2 * RUNS)) ] && [ "$idle_final" = "$idle_backends" ]; then
    result PASS "$facts"
else
    result FAIL "$facts"
fi
