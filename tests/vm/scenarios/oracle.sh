#@ parallel
# oracle: for every process, `oomward rank --json` gives the kernel's /proc/PID/oom_score,
# with oom_score_adj -1000, -500, 0, 500 and 1000 (the guest's root has CAP_SYS_RESOURCE, so
# negative values work), one large process, and one partly swapped out to zram (so T includes
# swap and the swap term counts). The comparison is made by the host: this prints two kernel
# snapshots around the JSON, and the host compares the processes whose score did not move.
. /lab/lib.sh

swap=0
setup_zram 256M && swap=1

start_memhog /tmp/h1 --adj=-1000 --hold 8 && echo "HOG pid=$HOG_PID adj=-1000"
start_memhog /tmp/h2 --adj=-500 --hold 40 && echo "HOG pid=$HOG_PID adj=-500"
start_memhog /tmp/h3 --adj 0 --hold 20 && echo "HOG pid=$HOG_PID adj=0"
start_memhog /tmp/h4 --adj 500 --hold 10 && echo "HOG pid=$HOG_PID adj=500"
start_memhog /tmp/h5 --adj 1000 --hold 5 && echo "HOG pid=$HOG_PID adj=1000"
start_memhog /tmp/h6 --hold 150 && echo "HOG pid=$HOG_PID adj=0"
if [ "$swap" = 1 ]; then
    # 64 MiB held in a 32 MiB cgroup: the rest goes to swap.
    make_cgroup swapped 32M
    start_memhog /tmp/h7 --cgroup-procs "$CG/cgroup.procs" --hold 64 && echo "HOG pid=$HOG_PID adj=0 swapped=1"
fi

# One line per process: TAG pid= score= adj= swap_kb= (one awk, no fork per process).
snapshot() {
    awk -v tag="$1" 'BEGIN {
        for (i = 1; i < ARGC; i++) {
            d = ARGV[i]
            pid = substr(d, 7)
            score = ""; adj = ""; sw = 0
            if ((getline score < (d "/oom_score")) <= 0) continue
            close(d "/oom_score")
            if ((getline adj < (d "/oom_score_adj")) <= 0) continue
            close(d "/oom_score_adj")
            while ((getline line < (d "/status")) > 0)
                if (line ~ /^VmSwap:/) { split(line, f, " "); sw = f[2] }
            close(d "/status")
            print tag " pid=" pid " score=" score " adj=" adj " swap_kb=" sw
        }
        exit
    }' /proc/[0-9]*
}

snapshot K1
echo JSON-BEGIN
oomward rank --json 2>/tmp/rank.err
rc=$?
echo JSON-END
snapshot K2
dump /tmp/rank.err rank
grep -E '^(MemTotal|SwapTotal|SwapFree):' /proc/meminfo | sed 's/^/meminfo| /'

if [ "$rc" = 0 ]; then
    result PASS "rank_rc=$rc swap=$swap"
else
    result FAIL "rank_rc=$rc swap=$swap"
fi
