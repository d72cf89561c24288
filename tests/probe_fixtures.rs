//! The kernel readers (`oomward::probe`) on fixture trees that stand for `/`.
//!
//! Each tree under `tests/fixtures/` is a small snapshot of /proc and /sys in the kernel's own
//! formats with made-up values: `v1` (cgroup v1 memory controller, like the development host),
//! `v2` (pure unified hierarchy), `hybrid` (systemd: v1 controllers plus an empty cgroup2 mount),
//! `container` (a v1 memory mount of a subtree, as docker bind-mounts it) and `malformed/*`
//! (truncated or garbled files). Every assertion is on a value written into a fixture, so a
//! reader that picks the wrong field, line or unit fails here.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

use std::path::{Path, PathBuf};

use oomward::config::Config;
use oomward::probe::cgroup::{self, CgroupMemory, CgroupVersion, MemoryHierarchy, read_chain};
use oomward::probe::meminfo::MemInfo;
use oomward::probe::process::{
    Hidden, PF_KTHREAD, ProcessSnapshot, list_pids, read_kernel_oom_score, read_process,
};
use oomward::probe::psi::Pressure;
use oomward::probe::{Host, ProbeError};
use oomward::rank::{self, Totals};
use oomward::scope::{memcg_totalpages, oom_domain};

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;
/// System T of the v1 tree: MemTotal 8 GiB + SwapTotal 2 GiB, in pages.
const V1_TOTAL_PAGES: u64 = 2_097_152 + 524_288;
/// SwapTotal of the v1 tree in pages.
const V1_SWAP_PAGES: u64 = 524_288;
/// System T of the v2 tree: MemTotal 4 GiB + SwapTotal 1 GiB, in pages.
const V2_TOTAL_PAGES: u64 = 1_048_576 + 262_144;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A host on a fixture tree with 4 KiB pages and the memory hierarchy its mountinfo names.
fn host(name: &str) -> Host {
    let root = fixture(name);
    let memory = MemoryHierarchy::discover(&root).expect("mountinfo is readable");
    Host {
        root,
        page_size: PAGE,
        memory,
        mount_ns: None,
        host_mount_ns: None,
        exe_root: std::path::PathBuf::from("/"),
        first_user_uid: 1000,
        pods: Default::default(),
        cgroup_ns_root: None,
    }
}

fn hier(host: &Host) -> &MemoryHierarchy {
    host.memory
        .as_ref()
        .expect("the fixture has a memory hierarchy")
}

/// A process that must exist and parse.
fn process(host: &Host, pid: i32) -> ProcessSnapshot {
    let (snap, hidden) = read_process(host, pid)
        .unwrap_or_else(|e| panic!("pid {pid}: {e}"))
        .unwrap_or_else(|| panic!("pid {pid} is missing from the fixture"));
    assert_eq!(
        hidden,
        Hidden::default(),
        "pid {pid}: nothing is hidden in a fixture"
    );
    snap
}

fn all_processes(host: &Host) -> Vec<ProcessSnapshot> {
    list_pids(host)
        .unwrap()
        .into_iter()
        .map(|pid| process(host, pid))
        .collect()
}

fn cgroup_memory(host: &Host, path: &str) -> CgroupMemory {
    CgroupMemory::read(hier(host), &host.root, path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn assert_parse_error<T: std::fmt::Debug>(result: Result<T, ProbeError>, file: &str) {
    match result {
        Err(e @ ProbeError::Parse { .. }) => {
            assert!(!e.is_gone(), "a parse error is not a vanished object: {e}");
            assert!(!e.is_denied());
            let ProbeError::Parse { path, .. } = &e else {
                unreachable!()
            };
            assert!(
                path.ends_with(file),
                "the error names {}, expected …/{file}",
                path.display()
            );
        }
        other => panic!("expected a parse error in {file}, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Discovery of the memory hierarchy
// ------------------------------------------------------------------------------------------

#[test]
fn v1_host_finds_the_memory_controller_mount() {
    let h = host("v1");
    let m = hier(&h);
    assert_eq!(m.version, CgroupVersion::V1);
    assert_eq!(m.mount_point, "/sys/fs/cgroup/memory");
    assert_eq!(m.mount_root, "/");
    assert_eq!(
        m.dir(&h.root, "/app/worker"),
        Some(h.root.join("sys/fs/cgroup/memory/app/worker"))
    );
    assert_eq!(
        m.dir(&h.root, "/"),
        Some(h.root.join("sys/fs/cgroup/memory"))
    );
}

#[test]
fn v2_host_finds_the_unified_mount_with_the_memory_controller() {
    let h = host("v2");
    let m = hier(&h);
    assert_eq!(m.version, CgroupVersion::V2);
    assert_eq!(m.mount_point, "/sys/fs/cgroup");
    assert_eq!(m.mount_root, "/");
    assert_eq!(
        m.dir(&h.root, "/workload/job"),
        Some(h.root.join("sys/fs/cgroup/workload/job"))
    );
}

#[test]
fn hybrid_host_prefers_the_v1_memory_mount_over_the_earlier_cgroup2_mount() {
    let h = host("hybrid");
    let m = hier(&h);
    assert_eq!(m.version, CgroupVersion::V1);
    assert_eq!(m.mount_point, "/sys/fs/cgroup/memory");
    // /proc/PID/cgroup has a different path on the unified (0::) and name=systemd lines.
    let p = process(&h, 1234);
    assert_eq!(p.cgroup.as_deref(), Some("/user.slice/user-1000.slice"));
}

#[test]
fn host_discover_on_a_fixture_root() {
    let root = fixture("v1");
    let h = Host::discover(&root).unwrap();
    assert_eq!(h.root, root);
    assert_eq!(
        h.memory.as_ref().map(|m| m.version),
        Some(CgroupVersion::V1)
    );
    // The fixture has no /proc/self/ns/mnt link.
    assert_eq!(h.mount_ns, None);
    assert!(h.page_size.is_power_of_two());
    assert_eq!(h.path("/proc/meminfo"), root.join("proc/meminfo"));
}

#[test]
fn container_mount_root_maps_host_paths_into_the_mount() {
    let h = host("container");
    let m = hier(&h);
    assert_eq!(m.version, CgroupVersion::V1);
    assert_eq!(m.mount_root, "/docker/abc");
    let mount = h.root.join("sys/fs/cgroup/memory");
    assert_eq!(m.dir(&h.root, "/docker/abc"), Some(mount.clone()));
    assert_eq!(m.dir(&h.root, "/docker/abc/def"), Some(mount.join("def")));
    assert_eq!(cgroup_memory(&h, "/docker/abc").max, Some(512 * MIB));
    assert_eq!(cgroup_memory(&h, "/docker/abc/def").max, Some(128 * MIB));
    assert_eq!(
        m.walk(&h.root, "/docker/abc"),
        vec!["/docker/abc", "/docker/abc/def"]
    );
    // /docker lies outside the mount: the chain ends at the container's own cgroup.
    let chain = read_chain(m, &h.root, "/docker/abc/def").unwrap();
    let paths: Vec<&str> = chain.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, vec!["/docker/abc/def", "/docker/abc"]);
}

#[test]
fn container_sibling_sharing_a_name_prefix_is_not_mapped_into_the_mount() {
    let h = host("container");
    let m = hier(&h);
    let mount = h.root.join("sys/fs/cgroup/memory");
    assert_eq!(m.dir(&h.root, "/docker/abcdef"), None);
    assert_ne!(m.dir(&h.root, "/docker/abcdef"), Some(mount.join("def")));
    // /docker/abcdef is not visible through this mount: reading it must say so, not return the
    // limit of /docker/abc/def (128 MiB).
    match CgroupMemory::read(m, &h.root, "/docker/abcdef") {
        Err(e) => assert!(e.is_gone(), "{e}"),
        Ok(mem) => panic!("read another cgroup's memory: {mem:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// System-wide sources
// ------------------------------------------------------------------------------------------

#[test]
fn meminfo_fields_in_bytes_and_total_pages() {
    let m = MemInfo::read(&fixture("v1")).unwrap();
    assert_eq!(m.mem_total, 8_388_608 * 1024);
    assert_eq!(m.mem_available, 3_145_728 * 1024);
    assert_eq!(m.swap_total, 2_097_152 * 1024);
    assert_eq!(m.swap_free, 1_572_864 * 1024);
    assert_eq!(m.total_pages(PAGE), V1_TOTAL_PAGES);

    let m = MemInfo::read(&fixture("v2")).unwrap();
    assert_eq!(m.mem_total, 4 << 30);
    assert_eq!(m.mem_available, 2 << 30);
    assert_eq!(m.total_pages(PAGE), V2_TOTAL_PAGES);

    let m = MemInfo::read(&fixture("hybrid")).unwrap();
    assert_eq!((m.swap_total, m.swap_free), (0, 0));
    assert_eq!(m.total_pages(PAGE), 524_288);
}

#[test]
fn system_pressure_some_and_full() {
    let p = Pressure::read(&fixture("v1").join("proc/pressure/memory"))
        .unwrap()
        .expect("the v1 tree has PSI");
    assert_eq!(p.some.avg10, 1.25);
    assert_eq!(p.some.avg60, 0.5);
    assert_eq!(p.some.avg300, 0.1);
    assert_eq!(p.some.total_us, 123_456);
    let full = p.full.expect("a full line");
    assert_eq!(full.avg10, 0.75);
    assert_eq!(full.avg60, 0.25);
    assert_eq!(full.avg300, 0.05);
    assert_eq!(full.total_us, 65_432);
}

#[test]
fn absent_system_pressure_is_none_and_cgroup_pressure_is_read() {
    let root = fixture("v2");
    assert_eq!(
        Pressure::read(&root.join("proc/pressure/memory")).unwrap(),
        None
    );
    let p = Pressure::read(&root.join("sys/fs/cgroup/workload/memory.pressure"))
        .unwrap()
        .expect("the workload cgroup has memory.pressure");
    assert_eq!(p.some.avg10, 12.5);
    assert_eq!(p.some.total_us, 9_876_543);
    assert_eq!(
        p.full.map(|f| (f.avg10, f.total_us)),
        Some((10.0, 8_765_432))
    );
}

// ------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------

#[test]
fn list_pids_gives_numeric_entries_in_order() {
    // proc/self is not a pid; task/801 is a thread, not listed.
    assert_eq!(
        list_pids(&host("v1")).unwrap(),
        vec![1, 2, 412, 523, 600, 650, 731, 800]
    );
    assert_eq!(list_pids(&host("v2")).unwrap(), vec![1, 900, 901]);
}

#[test]
fn process_with_spaces_and_parentheses_in_comm_reads_every_field() {
    let h = host("v1");
    let expected = ProcessSnapshot {
        pid: 412,
        comm: "web (worker) 1".into(),
        state: 'S',
        ppid: 1,
        pgrp: 412,
        flags: 4_194_304,
        starttime: 1200,
        // stat field 24
        rss_pages: 38_400,
        // VmSwap 4096 kB / 4
        swap_pages: 1024,
        // VmPTE 312 kB / 4
        pgtables_pages: 78,
        // RssAnon 152000 kB / 4, RssShmem 0: what its death frees (with the swap)
        rss_anon_pages: 38_000,
        rss_shmem_pages: 0,
        has_mm: true,
        // Uid: 1000 1001 1001 1001: the real uid, then the effective one
        uid: Some(1000),
        euid: Some(1001),
        oom_score_adj: 0,
        // the link reads "/usr/bin/python3 (deleted)"
        exe: Some("/usr/bin/python3".into()),
        exe_in_host_mntns: true,
        cmdline: "python3 -m http.server 8080".into(),
        // 4:memory:/app, while name=systemd and 0:: say /system.slice/web.service
        cgroup: Some("/app".into()),
        // not a pod's
        kube: None,
        // v1: systemd's ManagedOOMPreference lives on the unified hierarchy only
        oomd: None,
    };
    assert_eq!(process(&h, 412), expected);
    assert!(!expected.is_kernel_thread());
}

#[test]
fn process_fields_of_the_other_v1_processes() {
    let h = host("v1");

    let init = process(&h, 1);
    assert_eq!(init.comm, "init");
    assert_eq!(init.ppid, 0);
    assert_eq!(init.flags, 4_194_560);
    assert_eq!(
        (init.rss_pages, init.pgtables_pages, init.swap_pages),
        (3000, 16, 0)
    );
    assert_eq!(init.uid, Some(0));
    assert_eq!(init.exe.as_deref(), Some("/sbin/init"));
    assert_eq!(init.cmdline, "/sbin/init splash");
    assert_eq!(init.cgroup.as_deref(), Some("/"));
    assert!(init.has_mm);

    let worker = process(&h, 523);
    assert_eq!(worker.comm, "worker");
    assert_eq!((worker.state, worker.ppid, worker.pgrp), ('R', 412, 412));
    assert_eq!(worker.starttime, 1500);
    assert_eq!(
        (worker.rss_pages, worker.swap_pages, worker.pgtables_pages),
        (5120, 0, 10)
    );
    assert_eq!(worker.oom_score_adj, 500);
    assert_eq!(worker.exe.as_deref(), Some("/usr/local/bin/worker"));
    assert_eq!(worker.cmdline, "/usr/local/bin/worker --jobs 4");
    assert_eq!(worker.cgroup.as_deref(), Some("/app/worker"));

    let sshd = process(&h, 600);
    assert_eq!(sshd.oom_score_adj, -1000);
    assert_eq!(sshd.exe.as_deref(), Some("/usr/sbin/sshd"));
    // one argument that itself holds spaces
    assert_eq!(
        sshd.cmdline,
        "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"
    );

    let agent = process(&h, 650);
    assert_eq!(agent.oom_score_adj, -200);
    // VmSwap 400 kB, VmPTE 24 kB
    assert_eq!(
        (agent.rss_pages, agent.swap_pages, agent.pgtables_pages),
        (1000, 100, 6)
    );
    assert_eq!(agent.uid, Some(0));
}

#[test]
fn kernel_thread_is_flagged_and_has_no_user_facts() {
    let h = host("v1");
    let k = process(&h, 2);
    assert_eq!(k.comm, "kthreadd");
    assert_eq!(k.flags, 2_129_984);
    assert_ne!(k.flags & PF_KTHREAD, 0);
    assert!(k.is_kernel_thread());
    assert!(!k.has_mm);
    assert_eq!(k.rss_pages, 0);
    assert_eq!(k.exe, None);
    assert_eq!(k.cmdline, "");
    // every process above has uid 0 or 1000 in status; a kernel thread's status is not read
    assert_eq!(k.uid, None);
}

#[test]
fn zombie_has_no_mm_and_no_exe() {
    let h = host("v1");
    let z = process(&h, 731);
    assert_eq!(z.comm, "sh");
    assert_eq!(z.state, 'Z');
    assert!(!z.is_kernel_thread());
    assert!(!z.has_mm);
    assert_eq!((z.rss_pages, z.swap_pages, z.pgtables_pages), (0, 0, 0));
    assert_eq!(z.exe, None);
    assert_eq!(z.cmdline, "");
    assert_eq!(z.uid, Some(1000));
    assert_eq!(z.cgroup.as_deref(), Some("/app"));
}

#[test]
fn exited_leader_with_a_live_thread_is_scored_through_the_thread() {
    // 800 is a zombie leader (no Vm lines, rss 0) with num_threads 2; task/801 is alive with
    // rss 10240 and VmPTE 80 kB. The kernel's find_lock_task_mm scores the group through 801.
    let h = host("v1");
    let p = process(&h, 800);
    assert_eq!(p.state, 'Z');
    assert!(p.has_mm);
    assert_eq!(
        (p.rss_pages, p.swap_pages, p.pgtables_pages),
        (10_240, 0, 20)
    );
    assert_eq!(p.comm, "java");
    assert_eq!(p.cgroup.as_deref(), Some("/app/worker"));
}

#[test]
fn v2_processes_take_their_cgroup_from_the_unified_line() {
    let h = host("v2");
    let p = process(&h, 900);
    assert_eq!(p.comm, "stress-ng");
    assert_eq!(p.cgroup.as_deref(), Some("/workload/job"));
    // VmSwap 2048 kB, VmPTE 120 kB
    assert_eq!(
        (p.rss_pages, p.swap_pages, p.pgtables_pages),
        (25_600, 512, 30)
    );
    assert_eq!(p.oom_score_adj, 200);
    assert_eq!(p.cmdline, "stress-ng --vm 1 --vm-bytes 100M");
    assert_eq!(p.exe.as_deref(), Some("/usr/bin/stress-ng"));
    assert_eq!(process(&h, 901).cgroup.as_deref(), Some("/workload"));
    assert_eq!(process(&h, 1).cgroup.as_deref(), Some("/init.scope"));
}

#[test]
fn without_a_memory_hierarchy_the_process_cgroup_is_none() {
    let mut h = host("v1");
    h.memory = None;
    let p = process(&h, 412);
    assert_eq!(p.cgroup, None);
    assert_eq!(p.rss_pages, 38_400);
}

#[test]
fn kernel_oom_score_is_read() {
    let h = host("v1");
    assert_eq!(read_kernel_oom_score(&h, 412).unwrap(), Some(676));
    assert_eq!(read_kernel_oom_score(&h, 523).unwrap(), Some(1000));
    assert_eq!(read_kernel_oom_score(&h, 2).unwrap(), Some(0));
}

// ------------------------------------------------------------------------------------------
// Cgroup memory
// ------------------------------------------------------------------------------------------

#[test]
fn v1_cgroup_memory_fields() {
    let h = host("v1");

    let app = cgroup_memory(&h, "/app");
    assert_eq!(app.max, Some(256 * MIB));
    assert_eq!(app.high, None);
    assert_eq!(app.usage, 192 * MIB);
    // total_inactive_file (32 MiB), not the cgroup-local inactive_file (1 MiB)
    assert_eq!(app.inactive_file, 32 * MIB);
    assert_eq!(app.active_file, 32 * MIB);
    assert_eq!(app.mapped_file, 3_461_120);
    assert_eq!(app.shmem, 0);
    // Both LRU lists of page cache are reclaimable, except what processes map.
    assert_eq!(app.working_set(), 128 * MIB + 3_461_120);
    // memsw.limit == limit: swap is accounted and none is allowed; memsw usage − usage is in
    // swap (the limit was lowered after it went there)
    assert!(app.swap_accounted);
    assert_eq!(app.swap_max, Some(0));
    assert_eq!(app.swap_usage, 4 * MIB);
    assert_eq!(app.swap_left(), Some(0));
    assert_eq!(app.swappiness, 30);
    assert!(app.oom_kill_disable);
    assert!(app.under_oom);
    assert_eq!(app.oom_kill, 3);
    assert_eq!(app.oom_events, 0);
    assert!(!app.oom_group);

    let worker = cgroup_memory(&h, "/app/worker");
    // 9223372036854771712 is v1's "unlimited"
    assert_eq!(worker.max, None);
    assert_eq!(worker.usage, 40 * MIB);
    assert_eq!(worker.inactive_file, 4 * MIB);
    assert!(worker.swap_accounted);
    assert_eq!(worker.swap_max, None);
    assert_eq!(worker.swappiness, 60);
    assert!(!worker.oom_kill_disable);
    assert!(!worker.under_oom);
    assert_eq!(worker.oom_kill, 0);

    let root = cgroup_memory(&h, "/");
    assert_eq!(root.max, None);
    assert_eq!(root.usage, 1024 * MIB);
    assert_eq!(root.inactive_file, 256 * MIB);

    assert_eq!(cgroup_memory(&h, "/batch").max, Some(1024 * MIB));
}

#[test]
fn v2_cgroup_memory_fields() {
    let h = host("v2");

    let w = cgroup_memory(&h, "/workload");
    assert_eq!(w.max, Some(512 * MIB));
    assert_eq!(w.high, Some(384 * MIB));
    assert_eq!(w.usage, 400 * MIB);
    assert_eq!(w.inactive_file, 50 * MIB);
    assert_eq!(w.active_file, 50 * MIB);
    assert_eq!(w.mapped_file, MIB);
    assert_eq!(w.shmem, MIB / 4);
    // 400 MiB − (50 inactive + 50 active − (1 mapped − ¼ of it shmem, not on the file lists))
    assert_eq!(w.working_set(), 300 * MIB + 3 * MIB / 4);
    assert!(w.swap_accounted);
    assert_eq!(w.swap_max, Some(64 * MIB));
    assert_eq!(w.swap_usage, 8 * MIB);
    assert_eq!(w.swap_left(), Some(56 * MIB));
    // v2 has no per-cgroup swappiness: /proc/sys/vm/swappiness
    assert_eq!(w.swappiness, 30);
    // memory.events: oom 2, oom_kill 3, oom_group_kill 1
    assert_eq!(w.oom_events, 2);
    assert_eq!(w.oom_kill, 3);
    assert!(w.oom_group);
    assert!(!w.under_oom);
    assert!(!w.oom_kill_disable);

    let job = cgroup_memory(&h, "/workload/job");
    assert_eq!(job.max, None);
    assert_eq!(job.high, None);
    assert_eq!(job.usage, 100 * MIB);
    assert_eq!(job.inactive_file, MIB);
    assert!(job.swap_accounted);
    assert_eq!(job.swap_max, None);
    assert_eq!((job.oom_events, job.oom_kill), (0, 0));
    assert!(!job.oom_group);

    // The v2 root has no memory.current, memory.max or memory.swap.max.
    let root = cgroup_memory(&h, "/");
    assert_eq!(root.max, None);
    assert_eq!(root.usage, 0);
    assert!(!root.swap_accounted);
}

#[test]
fn v1_chain_domain_and_total_pages_of_the_256_mib_app() {
    let h = host("v1");
    let chain = read_chain(hier(&h), &h.root, "/app/worker").unwrap();
    let paths: Vec<&str> = chain.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, vec!["/app/worker", "/app", "/"]);
    assert_eq!(chain[0].1.usage, 40 * MIB);
    assert_eq!(chain[1].1.max, Some(256 * MIB));
    // only /app is limited
    assert_eq!(oom_domain(&chain), Some(1));
    // 256 MiB, memsw.limit == limit: no swap on top even though the machine has 2 GiB
    assert_eq!(memcg_totalpages(&chain[1].1, V1_SWAP_PAGES, PAGE), 65_536);
    // /batch: 1 GiB plus all of the machine's swap (memsw unlimited, swappiness 60)
    let batch = cgroup_memory(&h, "/batch");
    assert_eq!(
        memcg_totalpages(&batch, V1_SWAP_PAGES, PAGE),
        262_144 + V1_SWAP_PAGES
    );
    // the chain of the root is just the root, and nothing on it is limited
    let root_chain = read_chain(hier(&h), &h.root, "/").unwrap();
    assert_eq!(root_chain.len(), 1);
    assert_eq!(oom_domain(&root_chain), None);
}

#[test]
fn v2_chain_domain_and_total_pages_with_a_swap_limit() {
    let h = host("v2");
    let chain = read_chain(hier(&h), &h.root, "/workload/job").unwrap();
    let paths: Vec<&str> = chain.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, vec!["/workload/job", "/workload", "/"]);
    assert_eq!(oom_domain(&chain), Some(1));
    // 512 MiB + memory.swap.max 64 MiB (below the machine's 1 GiB of swap)
    let swap_pages = MemInfo::read(&h.root).unwrap().swap_total / PAGE;
    assert_eq!(
        memcg_totalpages(&chain[1].1, swap_pages, PAGE),
        131_072 + 16_384
    );
}

#[test]
fn hybrid_chain_stops_at_an_unreadable_ancestor() {
    let h = host("hybrid");
    // the memory root of the hybrid tree holds no files
    let chain = read_chain(hier(&h), &h.root, "/user.slice/user-1000.slice").unwrap();
    let paths: Vec<&str> = chain.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, vec!["/user.slice/user-1000.slice", "/user.slice"]);
    assert_eq!(chain[0].1.max, Some(2048 * MIB));
    assert_eq!(chain[0].1.oom_kill, 1);
    assert_eq!(oom_domain(&chain), Some(0));
    assert_eq!(memcg_totalpages(&chain[0].1, 0, PAGE), 524_288);
}

#[test]
fn walk_lists_the_tree_depth_first() {
    let h = host("v1");
    let m = hier(&h);
    assert_eq!(
        m.walk(&h.root, "/"),
        vec!["/", "/app", "/app/worker", "/batch"]
    );
    assert_eq!(m.walk(&h.root, "/app/"), vec!["/app", "/app/worker"]);
    assert_eq!(m.walk(&h.root, "app"), vec!["/app", "/app/worker"]);
    assert!(m.walk(&h.root, "/no/such/cgroup").is_empty());

    let h = host("v2");
    assert_eq!(
        hier(&h).walk(&h.root, "/"),
        vec!["/", "/init.scope", "/workload", "/workload/job"]
    );
}

// ------------------------------------------------------------------------------------------
// Ranking over a whole fixture: the kernel's arithmetic reproduces the fixture's oom_score
// ------------------------------------------------------------------------------------------

/// Ranks every process of a tree with the system T and checks each listed candidate's
/// oom_score against the tree's /proc/PID/oom_score; returns the eligible pids in rank order.
fn check_oom_scores(name: &str) -> Vec<i32> {
    let h = host(name);
    let procs = all_processes(&h);
    let t = MemInfo::read(&h.root).unwrap().total_pages(h.page_size);
    let policy = Config::default().policy(999_999, None);
    let totals = Totals {
        scope: t,
        system: t,
    };
    let ranked = rank::rank(&procs, &policy, totals);
    for c in &ranked {
        let kernel = read_kernel_oom_score(&h, c.process.pid).unwrap().unwrap();
        assert_eq!(c.oom_score, kernel, "{name}: pid {}", c.process.pid);
    }
    // Kernel threads and zombies are not listed; their kernel score is 0, and so is ours.
    for p in procs.iter().filter(|p| p.is_kernel_thread() || !p.has_mm) {
        assert!(ranked.iter().all(|c| c.process.pid != p.pid));
        assert_eq!(read_kernel_oom_score(&h, p.pid).unwrap(), Some(0));
        assert_eq!(rank::score(p, &policy, totals).oom_score, 0);
    }
    ranked
        .iter()
        .filter(|c| c.is_eligible())
        .map(|c| c.process.pid)
        .collect()
}

#[test]
fn rank_reproduces_the_v1_oom_scores() {
    let h = host("v1");
    assert_eq!(
        MemInfo::read(&h.root).unwrap().total_pages(PAGE),
        V1_TOTAL_PAGES
    );
    // 523 (adj 500) > 412 > 800 (through its live thread) > 650 (adj -200, negative badness);
    // 1 (init) and 600 (adj -1000) score 0 and are not eligible.
    assert_eq!(check_oom_scores("v1"), vec![523, 412, 800, 650]);

    let procs = all_processes(&h);
    let policy = Config::default().policy(999_999, None);
    let totals = Totals {
        scope: V1_TOTAL_PAGES,
        system: V1_TOTAL_PAGES,
    };
    let ranked = rank::rank(&procs, &policy, totals);
    let listed: Vec<i32> = ranked.iter().map(|c| c.process.pid).collect();
    assert_eq!(listed.len(), 6);
    assert!(!listed.contains(&2) && !listed.contains(&731));
    // badness = rss + swap + pgtables + adj * (T / 1000), T / 1000 = 2621
    let badness = |pid: i32| {
        ranked
            .iter()
            .find(|c| c.process.pid == pid)
            .unwrap()
            .badness
    };
    assert_eq!(badness(412), Some(38_400 + 1024 + 78));
    assert_eq!(badness(523), Some(5120 + 10 + 500 * 2621));
    assert_eq!(badness(650), Some(1000 + 100 + 6 - 200 * 2621));
    assert_eq!(badness(600), None);
    assert_eq!(badness(1), None);
}

#[test]
fn rank_reproduces_the_v2_and_hybrid_oom_scores() {
    assert_eq!(check_oom_scores("v2"), vec![900, 901]);
    assert_eq!(check_oom_scores("hybrid"), vec![1234]);
}

#[test]
fn rank_within_the_app_cgroup_uses_the_cgroup_total() {
    // In /app (T = 65536, T / 1000 = 65) adj 500 is worth 32500 pages, not 1.3 M: 412 outranks
    // 523, the reverse of the system-wide order.
    let h = host("v1");
    let procs: Vec<ProcessSnapshot> = all_processes(&h)
        .into_iter()
        .filter(|p| {
            p.cgroup
                .as_deref()
                .is_some_and(|c| cgroup::is_within(c, "/app"))
        })
        .collect();
    let chain = read_chain(hier(&h), &h.root, "/app").unwrap();
    let domain = oom_domain(&chain).unwrap();
    let t = memcg_totalpages(&chain[domain].1, V1_SWAP_PAGES, PAGE);
    assert_eq!(t, 65_536);
    let policy = Config::default().policy(999_999, None);
    let ranked = rank::rank(
        &procs,
        &policy,
        Totals {
            scope: t,
            system: V1_TOTAL_PAGES,
        },
    );
    let order: Vec<(i32, Option<i64>)> = ranked
        .iter()
        .map(|c| (c.process.pid, c.rank_score))
        .collect();
    assert_eq!(
        order,
        vec![
            (412, Some(39_502)),
            (523, Some(5130 + 500 * 65)),
            (800, Some(10_260))
        ]
    );
    // oom_score stays in the system's terms, comparable to /proc/PID/oom_score
    assert_eq!(ranked[1].oom_score, 1000);
}

// ------------------------------------------------------------------------------------------
// Malformed and vanished inputs: errors, never panics
// ------------------------------------------------------------------------------------------

#[test]
fn mountinfo_without_a_memory_controller_gives_no_hierarchy() {
    let root = fixture("malformed/main");
    // v1 cpu,cpuacct and pids, a garbage line, and a cgroup2 mount without memory
    assert_eq!(MemoryHierarchy::discover(&root).unwrap(), None);
    assert_eq!(Host::discover(&root).unwrap().memory, None);
}

#[test]
fn missing_mountinfo_is_an_io_error() {
    let err = MemoryHierarchy::discover(&fixture("malformed/main/sys")).unwrap_err();
    assert!(matches!(err, ProbeError::Io { .. }));
}

#[test]
fn mountinfo_with_an_out_of_range_octal_escape_does_not_panic() {
    let root = fixture("malformed/bad-escape");
    let result = std::panic::catch_unwind(|| MemoryHierarchy::discover(&root));
    let hier = result.expect("discover must not panic").unwrap().unwrap();
    assert_eq!(hier.version, CgroupVersion::V1);
}

#[test]
fn meminfo_without_memtotal_is_a_parse_error() {
    let r = MemInfo::read(&fixture("malformed/main"));
    let msg = format!("{}", r.as_ref().unwrap_err());
    assert!(msg.contains("MemTotal"), "{msg}");
    assert_parse_error(r, "proc/meminfo");
}

#[test]
fn pressure_with_garbage_is_a_parse_error() {
    let r = Pressure::read(&fixture("malformed/main/proc/pressure/memory"));
    assert_parse_error(r, "proc/pressure/memory");
}

#[test]
fn truncated_stat_is_a_parse_error() {
    let h = host("malformed/main");
    let r = read_process(&h, 100);
    let msg = format!("{}", r.as_ref().unwrap_err());
    assert!(msg.contains("short"), "{msg}");
    assert_parse_error(r, "proc/100/stat");
}

#[test]
fn non_numeric_rss_is_a_parse_error() {
    let h = host("malformed/main");
    let r = read_process(&h, 103);
    let msg = format!("{}", r.as_ref().unwrap_err());
    assert!(msg.contains("24"), "{msg}");
    assert_parse_error(r, "proc/103/stat");
}

#[test]
fn garbage_oom_score_adj_and_oom_score_are_parse_errors() {
    let h = host("malformed/main");
    assert_parse_error(read_process(&h, 101), "proc/101/oom_score_adj");
    assert_parse_error(read_kernel_oom_score(&h, 101), "proc/101/oom_score");
}

#[test]
fn process_without_status_has_vanished() {
    let h = host("malformed/main");
    assert!(h.path("/proc/102/stat").exists());
    assert_eq!(read_process(&h, 102).unwrap(), None);
}

#[test]
fn missing_process_is_none() {
    let h = host("v1");
    assert_eq!(read_process(&h, 4242).unwrap(), None);
    assert_eq!(read_kernel_oom_score(&h, 4242).unwrap(), None);
}

#[test]
fn broken_cgroup_files_are_parse_errors_and_a_removed_cgroup_is_gone() {
    let root = fixture("malformed/main");
    let v1 = MemoryHierarchy {
        version: CgroupVersion::V1,
        mount_point: "/sys/fs/cgroup/memory".into(),
        mount_root: "/".into(),
    };
    // empty memory.limit_in_bytes
    assert_parse_error(
        CgroupMemory::read(&v1, &root, "/broken"),
        "broken/memory.limit_in_bytes",
    );
    assert!(read_chain(&v1, &root, "/broken").is_err());
    // memory.usage_in_bytes "n/a"
    assert_parse_error(
        CgroupMemory::read(&v1, &root, "/badusage"),
        "badusage/memory.usage_in_bytes",
    );
    // a cgroup that does not exist (removed between listing and reading)
    let gone = CgroupMemory::read(&v1, &root, "/removed").unwrap_err();
    assert!(gone.is_gone(), "{gone}");

    let v2 = MemoryHierarchy {
        version: CgroupVersion::V2,
        mount_point: "/sys/fs/cgroup/unified".into(),
        mount_root: "/".into(),
    };
    // memory.max "12abc"
    assert_parse_error(
        CgroupMemory::read(&v2, &root, "/badmax"),
        "badmax/memory.max",
    );
    let gone = CgroupMemory::read(&v2, &root, "/removed").unwrap_err();
    assert!(gone.is_gone(), "{gone}");
}

/// A desktop's system files at two moments, written into a fixture root at test time: the
/// stall counters read back as the kernel's totals, their rates over the span, and zram swap
/// counted at what compression saves.
#[test]
fn stall_counters_and_zram_swap_from_a_fixture_root() {
    use oomward::decide::stall::{StallTerms, StallWindow, judge};
    use oomward::probe::meminfo::MemInfo;
    use oomward::watch::SystemFiles;
    use std::time::{Duration, Instant};

    const MIB: u64 = 1 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for d in ["proc/pressure", "proc/self", "sys/block/zram0"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("proc/self/mountinfo"), "").unwrap();
    let meminfo = "MemTotal:        1048576 kB\nMemFree:           10240 kB\n\
                   MemAvailable:     102400 kB\nSwapTotal:        524284 kB\n\
                   SwapFree:         262140 kB\n";
    std::fs::write(root.join("proc/meminfo"), meminfo).unwrap();
    // Half the device used, holding 256 MiB in 64 MiB of RAM: a quarter of each byte stays.
    std::fs::write(
        root.join("proc/swaps"),
        "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 524284 262144 100\n",
    )
    .unwrap();
    std::fs::write(
        root.join("sys/block/zram0/mm_stat"),
        format!("{} {} {} 0 0 0 0 0 0\n", 256 * MIB, 60 * MIB, 64 * MIB),
    )
    .unwrap();
    let write_counters = |some_us: u64, full_us: u64, refaults: u64, majflt: u64| {
        std::fs::write(
            root.join("proc/pressure/memory"),
            format!(
                "some avg10=0.00 avg60=0.00 avg300=0.00 total={some_us}\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total={full_us}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("proc/vmstat"),
            format!(
                "nr_free_pages 2560\nworkingset_refault_anon 5\nworkingset_refault_file {refaults}\n\
                 pgmajfault {majflt}\noom_kill 0\n"
            ),
        )
        .unwrap();
    };
    let h = Host::discover(root).unwrap();
    let mut files = SystemFiles::new(&h);
    let mem = MemInfo::read_kept(&mut files.meminfo).unwrap();

    let swap = files.effective_swap(&mem);
    assert!(swap.zram);
    let near = |a: u64, b: u64| a.abs_diff(b) <= MIB;
    assert!(near(swap.total, 384 * MIB), "{}", swap.total / MIB);
    assert!(near(swap.free, 192 * MIB), "{}", swap.free / MIB);

    write_counters(1_000_000, 400_000, 1000, 50);
    let c0 = files.stall_counters((true, true), 4096);
    assert_eq!(c0.psi_some_us, Some(1_000_000));
    assert_eq!(c0.psi_full_us, Some(400_000));
    assert_eq!(c0.refault_file, Some(1000 * 4096));
    assert_eq!(c0.major_faults, Some(50));
    // Only what the terms need is read.
    let only_psi = files.stall_counters((true, false), 4096);
    assert_eq!((only_psi.refault_file, only_psi.major_faults), (None, None));

    // Two seconds later: 1.2 s of `some`, 0.5 s of `full`, 64 MiB of file pages read back.
    write_counters(2_200_000, 900_000, 1000 + 16384, 4050);
    let c1 = files.stall_counters((true, true), 4096);
    let t0 = Instant::now();
    let window = Duration::from_secs(2);
    let mut w = StallWindow::default();
    w.push(t0, c0, window);
    w.push(t0 + window, c1, window);
    let r = w.rates(window).unwrap();
    assert!((r.psi_some.unwrap() - 60.0).abs() < 1e-6);
    assert!((r.psi_full.unwrap() - 25.0).abs() < 1e-6);
    assert!((r.refault_rate.unwrap() - (32 * MIB) as f64).abs() < 1.0);
    assert!((r.major_fault_rate.unwrap() - 2000.0).abs() < 1e-6);
    let terms = StallTerms {
        window,
        psi_full: 20.0,
        below_available: 200 * MIB,
        ..StallTerms::default()
    };
    assert!(judge(&r, &terms, mem.mem_available).is_some());

    // A kernel without PSI: the PSI counters are absent, the rest still read.
    std::fs::remove_file(root.join("proc/pressure/memory")).unwrap();
    let mut files = SystemFiles::new(&h);
    let c = files.stall_counters((true, true), 4096);
    assert_eq!((c.psi_some_us, c.psi_full_us), (None, None));
    assert_eq!(c.major_faults, Some(4050));
    // No zram: SwapTotal and SwapFree as they are.
    std::fs::write(
        root.join("proc/swaps"),
        "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 524284 262144 -2\n",
    )
    .unwrap();
    let swap = files.effective_swap(&mem);
    assert!(!swap.zram);
    assert_eq!((swap.total, swap.free), (mem.swap_total, mem.swap_free));
}
