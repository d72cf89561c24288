//! The package on a real systemd host: Debian 12 with systemd as PID 1, dbus and sshd, booted
//! on Debian's own 6.1 kernel under QEMU (the VM lab's machinery, `tests/vm/lab.rs`; the image
//! from `tests/vm/prepare-systemd.sh`). Each test builds the .deb with `packaging/build.sh`
//! (cheap when built), boots the guest with it and one scenario from
//! `tests/vm/systemd/scenarios/`, installs it there with `dpkg -i`, and asserts on the `RESULT`
//! line the guest prints. What it shows that no other test can: the unit as systemd runs it
//! (Type=notify, the watchdog, reload, the hardening's private mount namespace) and the
//! maintainer scripts on a live system.
//!
//! Each is `#[ignore]`d: plain `cargo test` boots nothing; the full suite runs them.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

#[path = "vm/lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use lab::{Guest, Lab};

/// `target/packages/oomward_*_amd64.deb`, built by `packaging/build.sh` once per test run.
fn deb() -> &'static Path {
    static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = DEB.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("packaging/build.sh"))
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running packaging/build.sh: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "packaging/build.sh failed ({}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // build.sh prints the .deb's path and the .rpm's as its last lines.
        stdout
            .lines()
            .map(str::trim)
            .find(|l| l.ends_with("_amd64.deb"))
            .map(PathBuf::from)
            .filter(|p| p.starts_with(root.join("target/packages")) && p.is_file())
            .ok_or_else(|| {
                format!("packaging/build.sh named no .deb in target/packages:\n{stdout}")
            })
    });
    match built {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Boots the systemd guest with scenario `name` and the .deb as `/lab/oomward.deb`.
fn run(name: &str, limit_s: u64) -> Guest {
    let deb = deb();
    Lab::get().run_systemd(
        name,
        &[("lab/oomward.deb", 0o644, deb)],
        Duration::from_secs(limit_s),
    )
}

/// package: dpkg -i enables and starts the unit, active only after READY=1; the journal
/// entries are structured; a broken config is refused on reload (by `systemctl reload` and by
/// the daemon on a bare SIGHUP) while the daemon runs on, and a fixed one is taken; a stopped
/// daemon is restarted by the watchdog; purge leaves nothing behind.
#[test]
#[ignore = "boots the systemd VM lab (QEMU and a Debian root filesystem, prepared by tests/vm/prepare-systemd.sh): minutes"]
fn package() {
    let g = run("package", 300);
    g.expect_pass();
    for (key, want) in [
        ("dpkg_rc", "0"),
        ("active", "active"),
        ("enabled", "enabled"),
        ("type", "notify"),
        ("start_before_active", "yes"),
        ("conf_active_lines", "0"),
        ("bad_reload_active", "active"),
        ("hup_refused", "yes"),
        ("hup_active", "active"),
        ("good_reload_rc", "0"),
        ("good_reload_logged", "yes"),
        ("watchdog", "3s"),
        ("new_comm", "oomward"),
        ("old_gone", "yes"),
        ("purge_rc", "0"),
        ("leftover", "0"),
        ("unit_files", "0"),
        ("process_left", "no"),
    ] {
        g.expect_kv(key, want);
    }
    let v = g.expect_pass();
    assert!(
        !v.kv["status"].is_empty(),
        "no STATUS= text\n{}",
        g.transcript()
    );
    // A refused reload keeps the very same process; so does a good one.
    let pid = g.num("pid");
    assert!(pid > 1);
    for key in ["bad_reload_pid", "hup_pid", "good_reload_pid"] {
        assert_eq!(
            g.num(key),
            pid,
            "{key}: the daemon was replaced\n{}",
            g.transcript()
        );
    }
    assert_ne!(
        g.num("bad_reload_rc"),
        0,
        "systemctl reload took a broken config"
    );
    assert!(
        g.num("bad_reload_logged") > 0,
        "the journal does not name the bad key\n{}",
        g.transcript()
    );
    // Every entry the daemon wrote is structured.
    assert!(g.num("own_entries") > 0);
    assert_eq!(g.num("own_structured"), g.num("own_entries"));
    assert!((0..=7).contains(&g.num("start_priority")));
    // The watchdog: a new process, counted as an automatic restart, within WatchdogSec (3 s)
    // + RestartSec (1 s) + the new process's first round, with room for software emulation.
    assert_ne!(g.num("new_pid"), g.num("wd_pid"));
    assert_eq!(g.num("nr_after"), g.num("nr_before") + 1);
    assert!(
        g.num("watchdog_logged") > 0,
        "no watchdog timeout in the journal"
    );
    let restart_ms = g.num("restart_ms");
    assert!(
        (3_000..20_000).contains(&restart_ms),
        "restarted {restart_ms} ms after SIGSTOP, WatchdogSec=3s\n{}",
        g.transcript()
    );
    assert!(g.num("files") > 10, "dpkg -L listed too little");
}

/// system_short: the whole machine short of memory, the package at its defaults: the transient
/// hog unit is stopped by oomward (its first decision names the hog), the kernel kills nobody,
/// and sshd, journald and dbus-daemon at oom_score_adj 1000 (the kernel's first choices) are
/// untouched, protected by the built-in exe rules alone; so is a 200 MiB process at a path of
/// the built-in set (`/usr/lib/openssh/sshd-session`), which unprotected would be the victim.
/// With the shipped hooks drop-in linked, a `post_kill` hook runs as nobody and knows the
/// victim; `oomward status` works for nobody, `history` and `why` name the hog.
#[test]
#[ignore = "boots the systemd VM lab (QEMU and a Debian root filesystem, prepared by tests/vm/prepare-systemd.sh): minutes"]
fn system_short() {
    let g = run("system_short", 300);
    g.expect_pass();
    g.expect_kvs(&[
        ("dpkg_rc", "0"),
        ("oomward", "active"),
        ("hog_result", "signal"),
    ]);
    let sig = g.num("hog_signal");
    assert!(sig == 15 || sig == 9, "the hog died of signal {sig}");
    assert_eq!(
        g.num("victim"),
        g.num("hog"),
        "oomward's first victim was not the hog"
    );
    assert!(g.num("decisions") >= 1);
    // Every kill at warning or above: `journalctl -p warning` lists each decision.
    assert_eq!(
        g.num("warn_decisions"),
        g.num("decisions"),
        "a decision below warning\n{}",
        g.transcript()
    );
    g.expect_kvs(&[
        ("others", "0"),
        ("oom_kill", "0"),
        ("bystanders_ok", "yes"),
        ("sshd_exe", "/usr/sbin/sshd"),
        ("sshd_adj", "1000"),
    ]);
    // At adj 1000 the kernel's own ranking puts them first.
    assert!(g.num("sshd_score") >= 1000 && g.num("journald_score") >= 1000);
    // The protection mattered: the large stand-in at a path of the built-in set ranks first
    // and its kill alone would end the shortage, so only its exe rule spared it.
    g.expect_kv("protected_exe", "/usr/lib/openssh/sshd-session");
    assert!(g.num("protected_score") >= 1000);
    assert!(
        g.num("protected_rss_mib") >= 150,
        "the protected stand-in holds too little to matter\n{}",
        g.transcript()
    );
    assert_eq!(
        g.num("oomward_pid_after"),
        g.num("oomward_pid"),
        "the daemon restarted"
    );
    // The reports under the unit: the shipped hooks drop-in lets a post_kill hook run as
    // nobody with the victim in its environment; `status` works for nobody; `history` and
    // `why` read the kill journal in the StateDirectory.
    g.expect_kvs(&[
        ("hook_caps", "yes"),
        ("hook_ok", "yes"),
        ("status_ok", "yes"),
        ("history_ok", "yes"),
        ("why_ok", "yes"),
        ("why_user_ok", "yes"),
    ]);
    // A typo and a restart: active on the last good config (the hog above was stopped on it),
    // the error at err with file, line and key, `status` says so, check-config refuses, and no
    // restart loop.
    g.expect_kvs(&[
        ("typo_active", "active"),
        ("typo_restarts", "0"),
        ("typo_logged", "yes"),
        ("typo_status", "yes"),
        ("typo_check", "2"),
    ]);
}

/// postgres (issue 18): a real PostgreSQL 15 in a transient service with `MemoryMax=512M` on
/// cgroup v2, the package at its defaults with that service's cgroup watched. Per run one
/// session's sort (`work_mem = 2GB`) runs the cgroup out of memory, five runs with a cold page
/// cache and five with a warm one (a ~200 MiB table read first): the sort's backend is the
/// only process signalled, by SIGTERM alone and never escalated, its session is told
/// "terminating connection due to administrator command", the postmaster's log shows no crash
/// and no reinitialization, the three idle sessions keep their backends, and the kernel kills
/// nobody (the cgroup's `memory.events` and `/proc/vmstat`). A backend killed by SIGKILL would
/// have made the postmaster end all of them.
#[test]
#[ignore = "boots the systemd VM lab (QEMU and a Debian root filesystem, prepared by tests/vm/prepare-systemd.sh): minutes"]
fn postgres() {
    let g = run("postgres", 600);
    let v = g.expect_pass();
    g.expect_kv("dpkg_rc", "0");
    g.expect_kv("oomward", "active");
    let runs = g.num("runs");
    assert!(runs >= 1);
    for variant in ["cold", "warm"] {
        assert_eq!(
            g.num(&format!("{variant}_clean")),
            runs,
            "{variant}: not every sort was stopped by SIGTERM alone with the sessions intact\n{}",
            g.transcript()
        );
        println!(
            "postgres on cgroup v2, {variant}: {runs}/{runs} SIGTERM only; exit ms {}; signal_rule {}; room_ms {}; eta_ms {}",
            v.kv[&format!("{variant}_exit_ms")],
            v.kv[&format!("{variant}_signal_rule")],
            v.kv[&format!("{variant}_room_ms")],
            v.kv[&format!("{variant}_eta_ms")],
        );
    }
    assert_eq!(v.kv["idle_final"], v.kv["idle_backends"]);
    assert_eq!(g.num("postmaster_final"), g.num("postmaster"));
}

/// k8s_node (issue 13): a Kubernetes node with the systemd cgroup driver on cgroup v2, made by
/// hand the way kubelet and runc make it (pod slices by QoS class, `cri-containerd-<id>.scope`
/// per container, kubelet's oom_score_adj values and limits, its log directories naming the
/// pods), runs short of memory while oomward runs exactly as `packaging/kubernetes/oomward.yaml`
/// says: the DaemonSet's command, args and env, the ConfigMap's files where its volume mounts
/// them (kubelet's layout of a configMap volume), the pod at its QoS class's slice and adj. The
/// test reads all of that from the manifest ([`daemonset`]), never from a copy. One pod of each
/// class: the BestEffort one grows until the node is short; it is oomward's first and only
/// victim, and the kill report names its QoS class, namespace and pod. The Guaranteed and
/// Burstable pods live; so do stand-ins for kubelet, containerd and the runc shim at adj 1000
/// (kubelet's large enough to rank first while the grower is small): only the config's exe rules
/// keep them off the list. The kernel kills nobody.
#[test]
#[ignore = "boots the systemd VM lab (QEMU and a Debian root filesystem, prepared by tests/vm/prepare-systemd.sh): minutes"]
fn k8s_node() {
    let name = "k8s_node";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = "packaging/kubernetes/oomward.yaml";
    let text = std::fs::read_to_string(root.join(manifest))
        .unwrap_or_else(|e| panic!("reading {manifest}: {e}"));
    let ds = daemonset(manifest, &text);
    println!(
        "{manifest}: argv {:?}, env {:?}, qos {}, files {:?}",
        ds.argv,
        ds.env,
        ds.qos,
        ds.files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    let deb = deb();
    let lab = Lab::get();
    // The guest's share: the files as /lab/k8s-file-N and the shell that places them and
    // starts the container's command line.
    let dir = lab.cache().join("runs").join("k8s_node");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut hosted = Vec::new();
    for (i, f) in ds.files.iter().enumerate() {
        let p = dir.join(format!("file-{i}"));
        std::fs::write(&p, &f.content).unwrap();
        hosted.push((format!("lab/k8s-file-{i}"), p));
    }
    let shell = dir.join("daemonset.sh");
    std::fs::write(&shell, ds.shell(manifest)).unwrap();
    let mut files: Vec<(&str, u32, &Path)> = vec![
        ("lab/oomward.deb", 0o644, deb),
        ("lab/k8s-daemonset.sh", 0o644, shell.as_path()),
    ];
    for (g, h) in &hosted {
        files.push((g.as_str(), 0o644, h.as_path()));
    }
    let g = lab.run_systemd(name, &files, Duration::from_secs(420));
    g.expect_pass();
    g.expect_kv("dpkg_rc", "0");
    g.expect_kv("ds_qos", ds.qos);
    // kubelet's -997 for the critical Guaranteed pod, lowered by the daemon itself to -1000
    // with the container's CAP_SYS_RESOURCE; the pod's cgroup is where kubelet puts it.
    g.expect_kv("ds_adj", "-1000");
    let pod_slice = match ds.qos {
        "guaranteed" => "/kubepods.slice/kubepods-pod".to_string(),
        q => format!("/kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod"),
    };
    assert!(
        g.expect_pass().kv["ds_cgroup"].starts_with(&pod_slice),
        "the daemon's pod is not in its QoS class's slice\n{}",
        g.transcript()
    );
    // The metrics endpoint answers where the config has one, and the liveness probe's
    // command, run as kubelet would in the container, says the daemon is alive.
    if ds
        .files
        .iter()
        .any(|f| f.content.contains("metrics_listen"))
    {
        g.expect_kv("metrics_status", "200");
    }
    if !ds.liveness.is_empty() {
        g.expect_kv("liveness_rc", "0");
    }
    // The first decision named the BestEffort process, and no decision another.
    assert_eq!(
        g.num("victim"),
        g.num("besteffort"),
        "oomward's first victim was not the BestEffort process"
    );
    assert!(g.num("decisions") >= 1);
    g.expect_kv("others", "0");
    g.expect_kv("oom_kill", "0");
    let status = &g.expect_pass().kv["besteffort_status"];
    assert!(
        status == "143" || status == "137",
        "the BestEffort process ended with {status}\n{}",
        g.transcript()
    );
    assert!(
        g.expect_pass().kv["report_cgroup"]
            .starts_with("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"),
        "the victim's cgroup is not where the systemd driver puts a BestEffort container\n{}",
        g.transcript()
    );
    // The report names the pod.
    assert_eq!(g.num("report_pid"), g.num("besteffort"));
    g.expect_kvs(&[
        ("report_qos", "besteffort"),
        ("report_namespace", "batch"),
        ("report_pod", "thumbs-28391040-q9z4m"),
        ("report_container", "thumbs"),
    ]);
    // The others.
    g.expect_kvs(&[
        ("guaranteed_alive", "yes"),
        ("burstable_alive", "yes"),
        ("runtime_ok", "yes"),
        ("kubelet_exe", "/usr/bin/kubelet"),
        ("kubelet_adj", "1000"),
    ]);
    // kubelet's stand-in is the kernel's first choice and holds enough to matter.
    assert!(g.num("kubelet_score") >= 1000);
    assert!(
        g.num("kubelet_rss_mib") >= 100,
        "the kubelet stand-in holds too little to matter\n{}",
        g.transcript()
    );
    // Unprotected, it would have been chosen: its badness exceeds the victim's when chosen.
    assert!(
        g.num("kubelet_badness") > g.num("victim_badness"),
        "the kubelet stand-in would not have ranked first: its protection was not tested\n{}",
        g.transcript()
    );
    assert_eq!(
        g.num("oomward_pid_after"),
        g.num("oomward_pid"),
        "the daemon restarted"
    );
}

/// The oomward container of the DaemonSet, as a node would run it.
struct DaemonSet {
    /// `command` then `args`, `$(VAR)` expanded from `env` as kubelet does.
    argv: Vec<String>,
    /// The liveness probe's `exec` command (empty: none, or not an exec probe).
    liveness: Vec<String>,
    env: Vec<(String, String)>,
    /// Files of configMap volumes at their paths in the container.
    files: Vec<MountedFile>,
    /// configMap volumes mounted as directories: (mountPath, the files' paths in it).
    config_dirs: Vec<(String, Vec<String>)>,
    /// hostPath volumes mounted at another path: (mountPath, host path).
    host_links: Vec<(String, String)>,
    /// hostPath volumes of type DirectoryOrCreate: kubelet makes them.
    host_creates: Vec<String>,
    /// emptyDir volumes: (mountPath, in memory).
    empty_dirs: Vec<(String, bool)>,
    /// The container's mounts that are read-only, and the others.
    ro_paths: Vec<String>,
    rw_paths: Vec<String>,
    /// securityContext: the capabilities when `drop: ["ALL"]` (None: the runtime's default
    /// set, not modelled), allowPrivilegeEscalation false, readOnlyRootFilesystem.
    caps: Option<Vec<String>>,
    no_new_privs: bool,
    read_only_root: bool,
    /// The pod's QoS class, by kubelet's rules.
    qos: &'static str,
    /// priorityClassName system-node-critical or system-cluster-critical: adj -997 whatever
    /// the class.
    critical: bool,
    /// The container's memory request and limit, bytes.
    memory_request: u64,
    memory_limit: Option<u64>,
}

struct MountedFile {
    /// Where the container sees it.
    path: String,
    content: String,
    mode: u32,
    /// In a configMap directory mount (kubelet's symlink layout) or alone (subPath).
    dir_mount: Option<String>,
}

/// `s` quoted for the shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl DaemonSet {
    /// The guest's `/lab/k8s-daemonset.sh`: DS_* variables, `ds_files` (the volumes) and
    /// `ds_run SYSTEMD_RUN_OPTIONS...` (the container's command line).
    fn shell(&self, manifest: &str) -> String {
        let mut s = format!(
            "# Written by tests/systemd_lab.rs from {manifest}: the oomward container of its DaemonSet.\n"
        );
        let argv: Vec<String> = self.argv.iter().map(|a| sh_quote(a)).collect();
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("--setenv={}", sh_quote(&format!("{k}={v}"))))
            .collect();
        s += &format!("DS_EXE={}\n", sh_quote(&self.argv[0]));
        s += &format!("DS_ARGV={}\n", sh_quote(&argv.join(" ")));
        let liveness: Vec<String> = self.liveness.iter().map(|a| sh_quote(a)).collect();
        s += &format!("DS_LIVENESS={}\n", sh_quote(&liveness.join(" ")));
        s += &format!("DS_ENV={}\n", sh_quote(&env.join(" ")));
        s += &format!("DS_QOS={}\n", self.qos);
        s += &format!("DS_CRITICAL={}\n", if self.critical { "yes" } else { "no" });
        s += &format!("DS_MEMORY_REQUEST={}\n", self.memory_request);
        s += &format!(
            "DS_MEMORY_LIMIT={}\n",
            self.memory_limit.map_or(String::new(), |l| l.to_string())
        );
        // A configMap volume as kubelet writes it: the mount point (an emptyDir, mode 0777)
        // holds a timestamped directory with the files, `..data` pointing at it, and one
        // symlink per top-level name through `..data`. A subPath mount is the file alone.
        s += "ds_files() {\n";
        for (dir, paths) in &self.config_dirs {
            let d = sh_quote(dir);
            let ts = "..2026_12_02_12_00_00.000000001";
            s += &format!("    rm -rf {d}\n    mkdir -p {d}/{ts}\n    chmod 0777 {d}\n");
            s += &format!("    chmod 0755 {d}/{ts}\n    ln -s {ts} {d}/..data\n");
            let mut tops: Vec<&str> = paths.iter().map(|p| p.split('/').next().unwrap()).collect();
            tops.sort_unstable();
            tops.dedup();
            for t in tops {
                s += &format!("    ln -s ..data/{t} {d}/{t}\n");
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            let (target, what) = match &f.dir_mount {
                Some(dir) => {
                    let rel = f.path.strip_prefix(&format!("{dir}/")).unwrap();
                    (
                        format!(
                            "{}/..2026_12_02_12_00_00.000000001/{rel}",
                            dir.trim_end_matches('/')
                        ),
                        "in a configMap volume",
                    )
                }
                None => (f.path.clone(), "a subPath mount"),
            };
            s += &format!(
                "    install -D -m {:o} /lab/k8s-file-{i} {}  # {} ({what})\n",
                f.mode,
                sh_quote(&target),
                f.path
            );
        }
        // kubelet's directories in a configMap volume are 0755.
        for (dir, _) in &self.config_dirs {
            s += &format!(
                "    find {}/..2026_12_02_12_00_00.000000001 -type d -exec chmod 0755 {{}} +\n",
                sh_quote(dir)
            );
        }
        for (mount, host) in &self.host_links {
            let m = sh_quote(mount);
            s += &format!(
                "    [ -e {m} ] || {{ mkdir -p \"$(dirname {m})\" && ln -s {} {m}; }}\n",
                sh_quote(host)
            );
        }
        for h in &self.host_creates {
            s += &format!("    mkdir -p {}\n", sh_quote(h));
        }
        for (d, memory) in &self.empty_dirs {
            let d = sh_quote(d);
            let mode = if *memory { "1777" } else { "0777" };
            s += &format!("    rm -rf {d}\n    mkdir -p {d}\n    chmod {mode} {d}\n");
        }
        s += "    :\n}\n";
        // The container's confinement, as far as systemd can say it: its capabilities, no new
        // privileges, a read-only root with its writable volumes, its read-only volumes.
        let mut props = Vec::new();
        if let Some(caps) = &self.caps {
            let set: Vec<String> = caps.iter().map(|c| format!("CAP_{c}")).collect();
            props.push(format!("CapabilityBoundingSet={}", set.join(" ")));
        }
        if self.no_new_privs {
            props.push("NoNewPrivileges=yes".to_string());
        }
        if self.read_only_root {
            props.push("ProtectSystem=strict".to_string());
            if !self.rw_paths.is_empty() {
                props.push(format!("ReadWritePaths={}", self.rw_paths.join(" ")));
            }
        }
        if !self.ro_paths.is_empty() {
            props.push(format!("ReadOnlyPaths={}", self.ro_paths.join(" ")));
        }
        let props: Vec<String> = props
            .iter()
            .map(|p| format!("-p {}", sh_quote(p)))
            .collect();
        s += &format!("DS_PROPERTIES={}\n", sh_quote(&props.join(" ")));
        s += &format!(
            "ds_run() {{\n    systemd-run \"$@\" {} {} -- {}\n}}\n",
            props.join(" "),
            env.join(" "),
            argv.join(" ")
        );
        s
    }
}

/// Reads the DaemonSet's oomward container and the ConfigMaps it mounts from the manifest.
fn daemonset(file: &str, text: &str) -> DaemonSet {
    let docs = yaml_documents(file, text);
    let kind = |d: &Yaml| d.get("kind").and_then(Yaml::str).unwrap_or("").to_string();
    let mut config_maps = std::collections::BTreeMap::new();
    for d in &docs {
        if kind(d) == "ConfigMap" {
            let name = d
                .at(&["metadata", "name"])
                .and_then(Yaml::str)
                .unwrap_or("");
            let data: Vec<(String, String)> = d
                .get("data")
                .map(|m| {
                    m.entries()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            config_maps.insert(name.to_string(), data);
        }
    }
    let dss: Vec<&Yaml> = docs.iter().filter(|d| kind(d) == "DaemonSet").collect();
    assert_eq!(dss.len(), 1, "{file}: {} DaemonSets, want one", dss.len());
    let ds = dss[0];
    let ds_namespace = ds
        .at(&["metadata", "namespace"])
        .and_then(Yaml::str)
        .unwrap_or("default");
    let ds_name = ds
        .at(&["metadata", "name"])
        .and_then(Yaml::str)
        .unwrap_or("oomward");
    let pod = ds
        .at(&["spec", "template", "spec"])
        .unwrap_or_else(|| panic!("{file}: the DaemonSet has no spec.template.spec"));
    let containers = pod.get("containers").map(Yaml::items).unwrap_or(&[]);
    let c = containers
        .iter()
        .find(|c| {
            c.get("name").and_then(Yaml::str) == Some("oomward")
                || c.strings("command").iter().any(|w| w.contains("oomward"))
        })
        .unwrap_or_else(|| panic!("{file}: no oomward container in the DaemonSet"));
    let command = c.strings("command");
    assert!(
        !command.is_empty(),
        "{file}: the container has no command: the image's entrypoint is not in the manifest"
    );
    // env: values, and the downward API fields a node would fill in.
    let mut env = Vec::new();
    for e in c.get("env").map(Yaml::items).unwrap_or(&[]) {
        let name = e
            .get("name")
            .and_then(Yaml::str)
            .expect("env without a name")
            .to_string();
        let value = if let Some(v) = e.get("value") {
            v.str().unwrap_or("").to_string()
        } else {
            match e
                .at(&["valueFrom", "fieldRef", "fieldPath"])
                .and_then(Yaml::str)
            {
                Some("spec.nodeName") => "lab-node".to_string(),
                Some("metadata.namespace") => ds_namespace.to_string(),
                Some("metadata.name") => format!("{ds_name}-lab01"),
                other => panic!("{file}: env {name}: {other:?} is not filled in by this test"),
            }
        };
        env.push((name, value));
    }
    // kubelet expands $(VAR) in command and args from the container's env; $$ is a $.
    let expand = |w: &str| -> String {
        let mut out = String::new();
        let mut rest = w;
        while let Some(i) = rest.find('$') {
            out += &rest[..i];
            let after = &rest[i + 1..];
            if let Some(a) = after.strip_prefix('$') {
                out.push('$');
                rest = a;
            } else if let Some((var, tail)) = after
                .strip_prefix('(')
                .and_then(|a| a.split_once(')'))
                .filter(|(v, _)| env.iter().any(|(k, _)| k == v))
            {
                out += &env.iter().find(|(k, _)| k == var).unwrap().1;
                rest = tail;
            } else {
                out.push('$');
                rest = after;
            }
        }
        out + rest
    };
    let argv: Vec<String> = command
        .iter()
        .chain(c.strings("args").iter())
        .map(|w| expand(w))
        .collect();
    let liveness: Vec<String> = c
        .at(&["livenessProbe", "exec"])
        .map(|e| e.strings("command"))
        .unwrap_or_default()
        .iter()
        .map(|w| expand(w))
        .collect();
    // Volumes.
    let volumes = pod.get("volumes").map(Yaml::items).unwrap_or(&[]);
    let mut files = Vec::new();
    let mut config_dirs = Vec::new();
    let mut host_links = Vec::new();
    let mut host_creates = Vec::new();
    let mut empty_dirs = Vec::new();
    let mut ro_paths = Vec::new();
    let mut rw_paths = Vec::new();
    for m in c.get("volumeMounts").map(Yaml::items).unwrap_or(&[]) {
        let vname = m.get("name").and_then(Yaml::str).unwrap_or("");
        let mount = m
            .get("mountPath")
            .and_then(Yaml::str)
            .unwrap_or_else(|| panic!("{file}: volumeMount {vname} without mountPath"))
            .trim_end_matches('/')
            .to_string();
        let sub = m.get("subPath").and_then(Yaml::str);
        if m.get("readOnly").and_then(Yaml::str) == Some("true") {
            ro_paths.push(mount.clone());
        } else {
            rw_paths.push(mount.clone());
        }
        let v = volumes
            .iter()
            .find(|v| v.get("name").and_then(Yaml::str) == Some(vname))
            .unwrap_or_else(|| panic!("{file}: volume {vname} not in the pod"));
        if let Some(cm) = v.get("configMap") {
            let cm_name = cm.get("name").and_then(Yaml::str).unwrap_or("");
            let data = config_maps
                .get(cm_name)
                .unwrap_or_else(|| panic!("{file}: ConfigMap {cm_name} is not in the manifest"));
            let default_mode = cm
                .get("defaultMode")
                .and_then(Yaml::str)
                .map_or(0o644, parse_mode);
            // (path in the volume, content, mode)
            let entries: Vec<(String, String, u32)> = match cm.get("items") {
                Some(items) => items
                    .items()
                    .iter()
                    .map(|it| {
                        let key = it.get("key").and_then(Yaml::str).unwrap_or("");
                        let (_, content) = data
                            .iter()
                            .find(|(k, _)| k == key)
                            .unwrap_or_else(|| panic!("{file}: ConfigMap {cm_name} has no {key}"));
                        let path = it.get("path").and_then(Yaml::str).unwrap_or(key);
                        let mode = it
                            .get("mode")
                            .and_then(Yaml::str)
                            .map_or(default_mode, parse_mode);
                        (path.to_string(), content.clone(), mode)
                    })
                    .collect(),
                None => data
                    .iter()
                    .map(|(k, c)| (k.clone(), c.clone(), default_mode))
                    .collect(),
            };
            match sub {
                Some(sub) => {
                    let (_, content, mode) = entries
                        .iter()
                        .find(|(p, _, _)| p == sub)
                        .unwrap_or_else(|| {
                            panic!("{file}: subPath {sub} not in ConfigMap {cm_name}")
                        });
                    files.push(MountedFile {
                        path: mount.clone(),
                        content: content.clone(),
                        mode: *mode,
                        dir_mount: None,
                    });
                }
                None => {
                    config_dirs.push((
                        mount.clone(),
                        entries.iter().map(|(p, _, _)| p.clone()).collect(),
                    ));
                    for (p, content, mode) in entries {
                        files.push(MountedFile {
                            path: format!("{mount}/{p}"),
                            content,
                            mode,
                            dir_mount: Some(mount.clone()),
                        });
                    }
                }
            }
        } else if let Some(hp) = v.get("hostPath") {
            let host = hp.get("path").and_then(Yaml::str).unwrap_or("");
            let host = match sub {
                Some(s) => format!("{}/{s}", host.trim_end_matches('/')),
                None => host.trim_end_matches('/').to_string(),
            };
            let host = if host.is_empty() {
                "/".to_string()
            } else {
                host
            };
            if hp.get("type").and_then(Yaml::str) == Some("DirectoryOrCreate") {
                host_creates.push(host.clone());
            }
            if host != mount {
                host_links.push((mount, host));
            }
        } else if let Some(e) = v.get("emptyDir") {
            empty_dirs.push((mount, e.get("medium").and_then(Yaml::str) == Some("Memory")));
        }
    }
    // The QoS class by kubelet's rules, from every container's requests and limits (a request
    // not given is the limit).
    let qty = |c: &Yaml, kind: &str, res: &str| -> Option<f64> {
        c.at(&["resources", kind, res])
            .and_then(Yaml::str)
            .map(parse_quantity)
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        for res in ["cpu", "memory"] {
            let limit = qty(c, "limits", res);
            let request = qty(c, "requests", res).or(limit);
            any |= limit.is_some() || request.is_some();
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    let qos = match (any, guaranteed) {
        (false, _) => "besteffort",
        (true, true) => "guaranteed",
        (true, false) => "burstable",
    };
    let critical = matches!(
        pod.get("priorityClassName").and_then(Yaml::str),
        Some("system-node-critical" | "system-cluster-critical")
    );
    let sc = c.get("securityContext");
    let flag = |k: &str| sc.and_then(|s| s.get(k)).and_then(Yaml::str) == Some("true");
    let caps = sc.and_then(|s| s.get("capabilities")).and_then(|caps| {
        caps.strings("drop")
            .iter()
            .any(|d| d == "ALL")
            .then(|| caps.strings("add"))
    });
    let no_new_privs = sc
        .and_then(|s| s.get("allowPrivilegeEscalation"))
        .and_then(Yaml::str)
        == Some("false");
    let read_only_root = flag("readOnlyRootFilesystem");
    let memory_limit = qty(c, "limits", "memory").map(|b| b as u64);
    let memory_request = qty(c, "requests", "memory")
        .map(|b| b as u64)
        .or(memory_limit)
        .unwrap_or(0);
    DaemonSet {
        argv,
        liveness,
        env,
        files,
        config_dirs,
        host_links,
        host_creates,
        empty_dirs,
        ro_paths,
        rw_paths,
        caps,
        no_new_privs,
        read_only_root,
        qos,
        critical,
        memory_request,
        memory_limit,
    }
}

/// A file mode as the manifest writes it: decimal (420), octal with a leading 0 (0644) or 0o.
fn parse_mode(s: &str) -> u32 {
    let s = s.trim();
    let parsed = if let Some(o) = s.strip_prefix("0o") {
        u32::from_str_radix(o, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    parsed.unwrap_or_else(|_| panic!("file mode {s:?}"))
}

/// A Kubernetes quantity (`128Mi`, `1G`, `250m`, `0.5`) as a number of units.
fn parse_quantity(s: &str) -> f64 {
    let s = s.trim();
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (n, suffix) = s.split_at(at);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("quantity {s:?}"));
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => panic!("quantity {s:?}: unknown suffix"),
    };
    n * mult
}

/// The part of YAML Kubernetes manifests are written in: block mappings and sequences,
/// `- key: value` items, plain and quoted scalars, flow sequences of scalars (`["a", "b"]`),
/// literal block scalars (`|`, `|-`, `|+`) and comments. Enough for the project's manifest;
/// anything else is an error, not a guess.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        self.entries()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
    fn at(&self, path: &[&str]) -> Option<&Yaml> {
        path.iter().try_fold(self, |v, k| v.get(k))
    }
    fn str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }
    fn items(&self) -> &[Yaml] {
        match self {
            Yaml::Seq(v) => v,
            _ => &[],
        }
    }
    fn entries(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(v) => v,
            _ => &[],
        }
    }
    /// The scalars of the sequence at `key` (a command, its args, a capability list); none
    /// where there is no such key, and mappings in it left out, as the manifest checks want.
    fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.items()
                    .iter()
                    .filter_map(Yaml::str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The documents of a multi-document YAML file (separated by `---` lines).
fn yaml_documents(file: &str, text: &str) -> Vec<Yaml> {
    let mut docs = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut first = 1;
    let mut flush = |cur: &mut Vec<String>, first: usize| {
        if cur.iter().any(|l| !yaml_blank(l)) {
            let mut p = YamlParser {
                file,
                first,
                lines: std::mem::take(cur),
                i: 0,
            };
            let doc = p.node(0);
            p.skip_blank();
            if p.i < p.lines.len() {
                p.fail("unexpected indentation");
            }
            docs.push(doc);
        }
        cur.clear();
    };
    for (n, l) in text.lines().enumerate() {
        if l == "---" || l.starts_with("--- ") {
            flush(&mut cur, first);
            first = n + 2;
        } else {
            cur.push(l.trim_end().to_string());
        }
    }
    flush(&mut cur, first);
    docs
}

struct YamlParser<'a> {
    file: &'a str,
    /// The file's line number of `lines[0]`.
    first: usize,
    lines: Vec<String>,
    i: usize,
}

fn yaml_indent(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

/// `l` without a `# comment` (outside quotes; `#` starts one at the line's start or after a
/// space), trimmed.
fn yaml_uncomment(l: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in l.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) if prev == ' ' || prev == '[' || prev == ',' => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('#', None) if prev == ' ' || prev == '\t' => return l[..i].trim(),
            _ => {}
        }
        prev = c;
    }
    l.trim()
}

fn yaml_blank(l: &str) -> bool {
    yaml_uncomment(l).is_empty()
}

/// `key: value` split at the first `: ` (or a final `:`) outside quotes.
fn yaml_key(text: &str) -> Option<(String, String)> {
    if text.starts_with('[') || text.starts_with('{') {
        return None;
    }
    let mut quote = None;
    let b = text.as_bytes();
    for (i, c) in text.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) if i == 0 => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            (':', None) if i + 1 == b.len() || b[i + 1] == b' ' => {
                return Some((
                    yaml_scalar_str(text[..i].trim()),
                    text[i + 1..].trim().to_string(),
                ));
            }
            _ => {}
        }
    }
    None
}

/// A quoted or plain scalar's text.
fn yaml_scalar_str(t: &str) -> String {
    if let Some(inner) = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if let Some(inner) = t.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else {
        t.to_string()
    }
}

impl YamlParser<'_> {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{}:{}: {what}: {:?}",
            self.file,
            self.first + self.i,
            self.lines.get(self.i).map_or("", String::as_str)
        )
    }

    fn skip_blank(&mut self) {
        while self.i < self.lines.len() && yaml_blank(&self.lines[self.i]) {
            self.i += 1;
        }
    }

    /// The next line with content: its indentation and its text (comment removed).
    fn peek(&mut self) -> Option<(usize, String)> {
        self.skip_blank();
        let l = self.lines.get(self.i)?;
        Some((yaml_indent(l), yaml_uncomment(l).to_string()))
    }

    fn is_item(t: &str) -> bool {
        t == "-" || t.starts_with("- ")
    }

    /// The node starting at the next line, if it is indented at least `min`.
    fn node(&mut self, min: usize) -> Yaml {
        let Some((ind, text)) = self.peek() else {
            return Yaml::Str(String::new());
        };
        if ind < min {
            return Yaml::Str(String::new());
        }
        if Self::is_item(&text) {
            return self.seq(ind);
        }
        if yaml_key(&text).is_some() {
            return self.map(ind);
        }
        self.i += 1;
        self.scalar(&text)
    }

    fn seq(&mut self, ind: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some((n, text)) = self.peek() {
            if n != ind || !Self::is_item(&text) {
                break;
            }
            if text == "-" {
                self.i += 1;
                items.push(self.node(ind + 1));
            } else {
                // The item's content in place of the dash: `- a: 1` then `  b: 2` is a map.
                let l = &self.lines[self.i];
                self.lines[self.i] = format!("{} {}", &l[..ind], &l[ind + 1..]);
                items.push(self.node(ind + 1));
            }
        }
        Yaml::Seq(items)
    }

    fn map(&mut self, ind: usize) -> Yaml {
        let mut entries = Vec::new();
        while let Some((n, text)) = self.peek() {
            if n < ind || (n == ind && Self::is_item(&text)) {
                break;
            }
            if n > ind {
                self.fail("unexpected indentation");
            }
            let Some((key, value)) = yaml_key(&text) else {
                self.fail("not a key: value");
            };
            self.i += 1;
            let v = if value.is_empty() {
                match self.peek() {
                    Some((n, _)) if n > ind => self.node(ind + 1),
                    Some((n, t)) if n == ind && Self::is_item(&t) => self.seq(ind),
                    _ => Yaml::Str(String::new()),
                }
            } else if let Some(chomp) = value.strip_prefix('|') {
                self.literal(ind, chomp)
            } else if value.starts_with('>') || value.starts_with('&') || value.starts_with('*') {
                self.i -= 1;
                self.fail("folded scalars, anchors and aliases are not read by this test");
            } else {
                self.scalar(&value)
            };
            if entries.iter().any(|(k, _)| *k == key) {
                self.fail(&format!("{key} given twice"));
            }
            entries.push((key, v));
        }
        Yaml::Map(entries)
    }

    /// A literal block scalar below a key at `ind`; `chomp` is what followed the `|`.
    fn literal(&mut self, ind: usize, chomp: &str) -> Yaml {
        if !matches!(chomp, "" | "-" | "+") {
            self.i -= 1;
            self.fail("only |, |- and |+ block scalars are read by this test");
        }
        let mut body: Vec<&str> = Vec::new();
        let mut j = self.i;
        while j < self.lines.len() {
            let l = &self.lines[j];
            if !l.trim().is_empty() && yaml_indent(l) <= ind {
                break;
            }
            body.push(l);
            j += 1;
        }
        self.i = j;
        let at = body
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| yaml_indent(l));
        let mut text: String = body
            .iter()
            .map(|l| l.get(at..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        match chomp {
            "+" => {}
            "-" => text = text.trim_end_matches('\n').to_string(),
            _ => text = format!("{}\n", text.trim_end_matches('\n')),
        }
        Yaml::Str(text)
    }

    fn scalar(&mut self, t: &str) -> Yaml {
        if let Some(inner) = t.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                self.fail("a flow sequence must end on its line");
            };
            let mut items = Vec::new();
            let mut cur = String::new();
            let mut quote = None;
            for c in inner.chars() {
                match (c, quote) {
                    ('"' | '\'', None) => {
                        quote = Some(c);
                        cur.push(c);
                    }
                    (q, Some(open)) if q == open => {
                        quote = None;
                        cur.push(c);
                    }
                    (',', None) => items.push(Yaml::Str(yaml_scalar_str(cur.trim()))),
                    _ => cur.push(c),
                }
                if c == ',' && quote.is_none() {
                    cur.clear();
                }
            }
            if !cur.trim().is_empty() {
                items.push(Yaml::Str(yaml_scalar_str(cur.trim())));
            }
            return Yaml::Seq(items);
        }
        if let Some(inner) = t.strip_prefix('{') {
            // A flow mapping of scalars: `{cpu: 100m, memory: 64Mi}`.
            let Some(inner) = inner.strip_suffix('}') else {
                self.i -= 1;
                self.fail("a flow mapping must end on its line");
            };
            let mut entries = Vec::new();
            for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match yaml_key(part) {
                    Some((k, v)) if !v.starts_with(['[', '{']) => {
                        entries.push((k, Yaml::Str(yaml_scalar_str(&v))));
                    }
                    _ => {
                        self.i -= 1;
                        self.fail("only flow mappings of plain scalars are read by this test");
                    }
                }
            }
            return Yaml::Map(entries);
        }
        Yaml::Str(yaml_scalar_str(t))
    }
}

/// The manifest reader of [`k8s_node`] on the shapes a DaemonSet manifest takes (no VM).
#[test]
fn k8s_node_manifest_reader() {
    let text = r#"# a comment
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  namespace: kube-system
data:
  node.toml: |
    # oomward on a node
    [[rule]]
    exe = "/usr/bin/kubelet"   # kubelet
    protect = true

  extra.toml: |-
    [report]
    metrics_listen = "0.0.0.0:9101"
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: oomward
  namespace: kube-system
spec:
  template:
    spec:
      hostPID: true
      priorityClassName: system-node-critical
      containers:
      - name: oomward
        image: "example/oomward:1"
        command: ["/usr/bin/oomward", 'run']
        args:
          - --config-dir
          - /etc/oomward/config.d   # drop-ins
          - "--node=$(NODE_NAME)"
        env:
          - name: NODE_NAME
            valueFrom:
              fieldRef:
                fieldPath: spec.nodeName
          - name: A
            value: "x # not a comment"
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits:
            memory: 64Mi
            cpu: "0.1"
        volumeMounts:
          - name: config
            mountPath: /etc/oomward/config.d
            readOnly: true
          - name: extra
            mountPath: /etc/oomward/extra.toml
            subPath: extra.toml
          - name: logs
            mountPath: /host/var/log
          - name: run
            mountPath: /run/x
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: ["ALL"]
            add: ["KILL", "SYS_PTRACE"]
      volumes:
        - name: config
          configMap:
            name: cm
            defaultMode: 0644
        - name: extra
          configMap:
            name: cm
            items:
              - key: extra.toml
                path: extra.toml
                mode: 420
        - name: logs
          hostPath:
            path: /var/log
            type: DirectoryOrCreate
        - name: run
          emptyDir:
            medium: Memory
"#;
    let d = yaml_documents("t.yaml", text);
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0].at(&["data", "node.toml"]).and_then(Yaml::str),
        Some(
            "# oomward on a node\n[[rule]]\nexe = \"/usr/bin/kubelet\"   # kubelet\nprotect = true\n"
        )
    );
    assert_eq!(
        d[0].at(&["data", "extra.toml"]).and_then(Yaml::str),
        Some("[report]\nmetrics_listen = \"0.0.0.0:9101\"")
    );
    let ds = daemonset("t.yaml", text);
    assert_eq!(
        ds.argv,
        [
            "/usr/bin/oomward",
            "run",
            "--config-dir",
            "/etc/oomward/config.d",
            "--node=lab-node"
        ]
    );
    assert_eq!(
        ds.env,
        [
            ("NODE_NAME".to_string(), "lab-node".to_string()),
            ("A".to_string(), "x # not a comment".to_string())
        ]
    );
    assert_eq!(ds.qos, "guaranteed");
    assert!(ds.critical);
    assert_eq!(ds.memory_limit, Some(64 << 20));
    assert_eq!(ds.memory_request, 64 << 20);
    let paths: Vec<(&str, u32, bool)> = ds
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode, f.dir_mount.is_some()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/etc/oomward/config.d/node.toml", 0o644, true),
            ("/etc/oomward/config.d/extra.toml", 0o644, true),
            ("/etc/oomward/extra.toml", 0o644, false)
        ]
    );
    assert_eq!(
        ds.host_links,
        [("/host/var/log".to_string(), "/var/log".to_string())]
    );
    assert_eq!(ds.host_creates, ["/var/log"]);
    assert_eq!(ds.empty_dirs, [("/run/x".to_string(), true)]);
    assert_eq!(ds.ro_paths, ["/etc/oomward/config.d"]);
    assert_eq!(
        ds.rw_paths,
        ["/etc/oomward/extra.toml", "/host/var/log", "/run/x"]
    );
    assert_eq!(
        ds.caps,
        Some(vec!["KILL".to_string(), "SYS_PTRACE".to_string()])
    );
    assert!(ds.no_new_privs && ds.read_only_root);
    let sh = ds.shell("t.yaml");
    assert!(
        sh.contains("-p 'CapabilityBoundingSet=CAP_KILL CAP_SYS_PTRACE'"),
        "{sh}"
    );
    assert!(sh.contains("'--node=lab-node'"), "{sh}");
    assert!(
        sh.contains("ln -s ..data/node.toml '/etc/oomward/config.d'/node.toml"),
        "{sh}"
    );
}

/// The defenders of the desktop scenario, in the table's order.
const DESKTOP_VARIANTS: [&str; 5] = ["kernel", "earlyoom", "nohang", "systemd-oomd", "oomward"];

/// The numeric facts of a desktop run that the benchmark summarises (median and worst).
const DESKTOP_NUMBERS: [&str; 6] = [
    "ui_max_us",
    "ui_p99_us",
    "touch_max_us",
    "psi_full_ms",
    "psi_some_ms",
    "runaway_ms",
];

/// The stand-ins whose death is a loss to the user: everything but the runaway.
const DESKTOP_INNOCENTS: [&str; 8] = [
    "renderer",
    "browser",
    "launcher",
    "compositor",
    "xwayland",
    "session",
    "pipewire",
    "reader",
];

/// One desktop run: the variant, the trial, the verdict's facts, wall-clock seconds.
struct DesktopRun {
    variant: &'static str,
    trial: usize,
    pass: bool,
    kv: std::collections::BTreeMap<String, String>,
    wall_s: f64,
}

/// The per-run table: one row per variant (and trial).
fn desktop_table(runs: &[DesktopRun]) -> String {
    let cols = [
        "first_victim",
        "victims",
        "runaway_dead",
        "compositor_alive",
        "session_alive",
        "other_renderers_alive",
        "oom_kill",
        "ui_p99_us",
        "ui_max_us",
        "touch_p99_us",
        "touch_max_us",
        "psi_full_ms",
        "psi_some_ms",
        "runaway_ms",
        "guest_s",
    ];
    let mut t = String::from("| variant | trial | verdict |");
    for c in cols {
        t += &format!(" {c} |");
    }
    t += " wall_s |\n|---|---|---|";
    t += &"---|".repeat(cols.len() + 1);
    t += "\n";
    for r in runs {
        t += &format!(
            "| {} | {} | {} |",
            r.variant,
            r.trial,
            if r.pass { "PASS" } else { "FAIL" }
        );
        for c in cols {
            t += &format!(" {} |", r.kv.get(c).map_or("?", String::as_str));
        }
        t += &format!(" {:.1} |\n", r.wall_s);
    }
    t
}

/// The benchmark's table: per variant, median and worst of [`DESKTOP_NUMBERS`] over the
/// trials (worst: the largest; a run whose runaway never died counts as the largest), the
/// victims seen (name ×count, over all trials) and how many innocents died in all.
fn desktop_summary(runs: &[DesktopRun]) -> String {
    let mut t = String::from("| variant | trials |");
    for c in DESKTOP_NUMBERS {
        t += &format!(" {c} median | {c} worst |");
    }
    t += " victims seen | innocents killed |\n|---|---|";
    t += &"---|".repeat(DESKTOP_NUMBERS.len() * 2 + 2);
    t += "\n";
    for variant in DESKTOP_VARIANTS {
        let mine: Vec<&DesktopRun> = runs.iter().filter(|r| r.variant == variant).collect();
        if mine.is_empty() {
            continue;
        }
        t += &format!("| {variant} | {} |", mine.len());
        for c in DESKTOP_NUMBERS {
            // Missing or `-` (the runaway never died; the compositor died before its summary):
            // worse than any number.
            let mut v: Vec<f64> = mine
                .iter()
                .map(|r| {
                    r.kv.get(c)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(f64::INFINITY)
                })
                .collect();
            v.sort_by(f64::total_cmp);
            let show = |x: f64| {
                if x.is_finite() {
                    format!("{x:.0}")
                } else {
                    "-".to_string()
                }
            };
            let median = v[(v.len() - 1) / 2];
            t += &format!(" {} | {} |", show(median), show(v[v.len() - 1]));
        }
        let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
        let mut innocents = 0;
        for r in &mine {
            // A run without a result line (the guest hung or timed out) counts as such.
            for victim in
                r.kv.get("victims")
                    .map_or("no-result", String::as_str)
                    .split(',')
            {
                if victim == "none" {
                    continue;
                }
                *seen.entry(victim.to_string()).or_default() += 1;
                if DESKTOP_INNOCENTS.contains(&victim) || victim.starts_with("pid") {
                    innocents += 1;
                }
            }
        }
        let seen: Vec<String> = seen.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        let seen = if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(" ")
        };
        t += &format!(" {seen} | {innocents} |\n");
    }
    t
}

/// desktop (issue 14): a GNOME-like session under alice's user manager (gnome-shell as uiprobe,
/// measuring its frame wake-ups and file-backed page reads; Xwayland, gnome-session, pipewire;
/// a browser scope with three renderers) on 1 GiB with zram swap of half of it and a disk's
/// page cache, one renderer running away at 80 MiB/s. Five defenders one after another, each as
/// Debian packages it: the kernel alone, earlyoom, nohang-desktop, systemd-oomd with Fedora's
/// drop-ins, oomward with its desktop preset. Prints a markdown table of the facts (one row per
/// run, also in `desktop.md` in the lab's cache); the others are measured, not judged: the test
/// asserts that each run's setup worked and that oomward's run passed (the runaway its first and
/// only victim, the session and the other renderers alive, no kernel OOM kill).
/// `OOMWARD_BENCH_TRIALS=N` (`bash benches/run.sh desktop N`) runs every variant N times and adds
/// the benchmark's table (median and worst per variant); `OOMWARD_DESKTOP_VARIANTS=a,b` runs
/// only those.
#[test]
#[ignore = "boots the systemd VM lab (QEMU and a Debian root filesystem, prepared by tests/vm/prepare-systemd.sh): minutes"]
fn desktop() {
    let trials: usize = std::env::var("OOMWARD_BENCH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1)
        .max(1);
    // OOMWARD_DESKTOP_VARIANTS=kernel,oomward: only those (a comma list), for a quick look.
    let only = std::env::var("OOMWARD_DESKTOP_VARIANTS").unwrap_or_default();
    let variants: Vec<&'static str> = DESKTOP_VARIANTS
        .into_iter()
        .filter(|v| only.is_empty() || only.split(',').any(|o| o.trim() == *v))
        .collect();
    let deb = deb();
    let lab = Lab::get();
    let mut runs = Vec::new();
    let mut guests = Vec::new();
    for trial in 1..=trials {
        for &variant in &variants {
            let name = format!("desktop:{variant}");
            let g = lab.run_systemd(
                &name,
                &[("lab/oomward.deb", 0o644, deb)],
                Duration::from_secs(150),
            );
            // Each trial's transcript of its own: the lab keeps only the last per variant.
            let _ = std::fs::write(
                lab.cache().join("logs").join(format!(
                    "{}-systemd-desktop-{variant}-t{trial}.log",
                    lab::SYSTEMD_KERNEL
                )),
                g.transcript(),
            );
            let verdict = g.results.iter().find(|r| r.name == name);
            runs.push(DesktopRun {
                variant,
                trial,
                pass: verdict.is_some_and(|v| v.pass),
                kv: verdict.map(|v| v.kv.clone()).unwrap_or_default(),
                wall_s: g.wall.as_secs_f64(),
            });
            guests.push(g);
        }
    }
    let mut report = format!(
        "desktop on {} (systemd guest, 1 GiB, zram 512M, runaway renderer at 80 MiB/s):\n{}",
        lab::SYSTEMD_KERNEL,
        desktop_table(&runs)
    );
    if trials > 1 {
        report += &format!("\nover {trials} trials:\n{}", desktop_summary(&runs));
    }
    lab::notice(&report);
    println!("{report}");
    let _ = std::fs::write(lab.cache().join("desktop.md"), &report);
    // Every run set up its machine and session (a FAIL of another variant is a broken setup:
    // those are not judged), and oomward's passed.
    for (r, g) in runs.iter().zip(&guests) {
        if r.variant == "oomward" {
            g.expect_pass();
        } else if !r.pass {
            g.fail(&format!(
                "the setup failed: {}",
                r.kv.get("reason").map_or("no result", String::as_str)
            ));
        }
    }
}
