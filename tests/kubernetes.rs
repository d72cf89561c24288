//! A Kubernetes node as kubelet lays it out with the cgroupfs driver, in the real v1 memory
//! controller (issue 13): `…/kubepods/pod<uid>/<id>` (Guaranteed), `…/kubepods/burstable/…`,
//! `…/kubepods/besteffort/…`, kubelet's limits and oom_score_adj values, and kubelet's log
//! directories naming the pods (`/var/log/pods`, `/var/log/containers`). `rank --json` carries
//! pod, namespace, container and QoS; a container growing toward its own limit is stopped by
//! SIGTERM before the kernel's OOM killer (its `oom_kill` stays 0) and the report names its pod.
//!
//! The tree lives below a test cgroup (`/oomward-test-kube-PID/kubepods/…`: a kubepods tree
//! nested under another cgroup, as kind and k3s make it). The log directories are made in
//! /var/log only when this machine has none (it is no node), and removed afterwards. Races the
//! kernel: one at a time.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::need_v1;
use support::{Daemon, Proc, TestCgroup, oomward, serial};

const MIB: u64 = 1 << 20;

/// A pod of the fixture node.
struct Pod {
    namespace: &'static str,
    name: &'static str,
    uid: &'static str,
    container: &'static str,
    container_id: &'static str,
    /// Where kubelet's cgroupfs driver puts it below kubepods.
    class_dir: &'static str,
    /// The container's limit (0: none, BestEffort).
    limit: u64,
    /// kubelet's oom_score_adj for it.
    adj: &'static str,
    qos: &'static str,
}

const PODS: [Pod; 3] = [
    Pod {
        namespace: "kube-system",
        name: "coredns-5d78c9869d-8xk2p",
        uid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        container: "coredns",
        container_id: "a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
        class_dir: "",
        limit: 170 * MIB,
        adj: "-997",
        qos: "guaranteed",
    },
    Pod {
        namespace: "shop",
        name: "web-7c9d8b6f5-q2w3e",
        uid: "6fa459ea-ee8a-3ca4-894e-db77e160355e",
        container: "web",
        container_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        class_dir: "burstable",
        limit: 256 * MIB,
        adj: "500",
        qos: "burstable",
    },
    Pod {
        namespace: "batch",
        name: "report-28391040-zx9vb",
        uid: "9c5b94b1-35ad-49bb-b118-8e8fc24abf80",
        container: "report",
        container_id: "deadbeef00112233445566778899aabbccddeeff00112233445566778899aabb",
        class_dir: "besteffort",
        limit: 0,
        adj: "1000",
        qos: "besteffort",
    },
];

/// Kubelet's log directories for the pods, made only where this machine has none; removed
/// when dropped.
struct PodLogs {
    made: Vec<PathBuf>,
}

impl PodLogs {
    fn create() -> PodLogs {
        let pods = Path::new("/var/log/pods");
        let containers = Path::new("/var/log/containers");
        assert!(
            !pods.exists() && !containers.exists(),
            "needs a machine that is not a Kubernetes node: this one has kubelet's /var/log/pods, which the test does not touch"
        );
        let made = vec![pods.to_path_buf(), containers.to_path_buf()];
        let logs = PodLogs { made };
        for p in &PODS {
            let dir = pods
                .join(format!("{}_{}_{}", p.namespace, p.name, p.uid))
                .join(p.container);
            std::fs::create_dir_all(&dir).unwrap();
            let log = dir.join("0.log");
            std::fs::write(&log, "").unwrap();
            std::fs::create_dir_all(containers).unwrap();
            std::os::unix::fs::symlink(
                &log,
                containers.join(format!(
                    "{}_{}_{}-{}.log",
                    p.name, p.namespace, p.container, p.container_id
                )),
            )
            .unwrap();
        }
        logs
    }
}

impl Drop for PodLogs {
    fn drop(&mut self) {
        for d in &self.made {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The node: `<root>/kubepods` with kubelet's layout, a container cgroup per pod at the pod's
/// limit. Returns the root and each container's cgroup, in `PODS` order.
fn node() -> (TestCgroup, Vec<TestCgroup>) {
    let root = TestCgroup::create("kube", 0);
    let kubepods = root.child("kubepods", 1024 * MIB);
    let burstable = kubepods.child("burstable", 0);
    let besteffort = kubepods.child("besteffort", 0);
    let mut containers = Vec::new();
    for p in &PODS {
        let parent = match p.class_dir {
            "burstable" => &burstable,
            "besteffort" => &besteffort,
            _ => &kubepods,
        };
        let pod = parent.child(&format!("pod{}", p.uid), p.limit);
        containers.push(pod.child(p.container_id, p.limit));
        // Removed with the root (children first), after the containers.
        std::mem::forget(pod);
    }
    std::mem::forget(burstable);
    std::mem::forget(besteffort);
    std::mem::forget(kubepods);
    (root, containers)
}

/// Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff), needed to lower an
/// oom_score_adj.
fn can_lower_adj() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn pods_are_named_in_rank_and_a_container_is_stopped_before_its_own_oom_kill() {
    need_v1();
    let _serial = serial();
    let _logs = PodLogs::create();
    let (root, containers) = node();
    // One process per container, at kubelet's adj, holding a little. Lowering an adj takes
    // CAP_SYS_RESOURCE, which this machine's root may lack: Guaranteed's -997 is then 0, still
    // below the others.
    let lower = can_lower_adj();
    let mut procs = Vec::new();
    for (p, cg) in PODS.iter().zip(&containers) {
        let file = cg.procs_file();
        let adj = if p.adj.starts_with('-') && !lower {
            "0"
        } else {
            p.adj
        };
        procs.push(Proc::memhog(&[
            "--cgroup-procs",
            &file,
            "--adj",
            adj,
            "--hold",
            "20",
        ]));
    }
    let scope = format!("{}/kubepods", root.path);
    let rows = support::rank_rows(oomward().args(["rank", "--scope", &scope, "--json"]));
    for (p, proc_) in PODS.iter().zip(&procs) {
        let row = rows
            .iter()
            .find(|r| r["pid"] == proc_.pid)
            .unwrap_or_else(|| panic!("pid {} not ranked: {rows:#?}", proc_.pid));
        println!(
            "rank: pid {} pod {}/{} container {} qos {}",
            proc_.pid,
            field(row, "namespace"),
            field(row, "pod"),
            field(row, "container"),
            field(row, "qos")
        );
        assert_eq!(field(row, "pod_uid"), p.uid);
        assert_eq!(field(row, "pod"), p.name);
        assert_eq!(field(row, "namespace"), p.namespace);
        assert_eq!(field(row, "container"), p.container);
        assert_eq!(field(row, "container_id"), p.container_id);
        assert_eq!(field(row, "qos"), p.qos);
    }
    // BestEffort's adj 1000 puts it first, Guaranteed's -997 last.
    let order: Vec<i64> = rows.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    let at = |pid: i32| order.iter().position(|p| *p == i64::from(pid)).unwrap();
    assert!(at(procs[2].pid) < at(procs[1].pid) && at(procs[1].pid) < at(procs[0].pid));

    // The daemon watching every pod and container cgroup; the web container grows toward its
    // own 256 MiB limit.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("oomward.toml");
    std::fs::write(
        &conf,
        format!(
            "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[kill]\ngrace = \"300ms\"\n\
             [[cgroup]]\npath = \"{scope}/**\"\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let web = &containers[1];
    let mut grower = Proc::grower(web, "40", &["--adj", "500"]);
    let status = grower.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "the growing container was never stopped");
    let out = d.wait_for("event=report", Duration::from_secs(10));
    let report = out
        .lines()
        .find(|l| l.contains("event=report"))
        .unwrap()
        .to_string();
    println!("report: {report}");
    assert!(
        report.contains(&format!("pid={}", grower.pid)),
        "the first report is not the grower's ({}); the daemon said:\n{}",
        grower.pid,
        d.output()
    );
    assert!(
        report.contains("in pod shop/web-7c9d8b6f5-q2w3e container web (burstable)"),
        "{report}"
    );
    for kv in [
        format!("pod_uid={}", PODS[1].uid),
        "pod=web-7c9d8b6f5-q2w3e".to_string(),
        "namespace=shop".to_string(),
        "container=web".to_string(),
        "qos=burstable".to_string(),
    ] {
        assert!(report.contains(&kv), "{kv} missing: {report}");
    }
    let decision = out
        .lines()
        .find(|l| l.contains("event=term") || l.contains("event=kill "))
        .unwrap();
    assert!(decision.contains("namespace=shop"), "{decision}");
    assert_eq!(
        web.keyed("memory.oom_control", "oom_kill"),
        0,
        "the kernel killed in the container"
    );
    // The other pods' processes were not touched.
    for p in procs.iter_mut() {
        assert!(
            p.wait_exit(Duration::from_millis(1)).is_none(),
            "pid {} was killed; the daemon said:\n{}",
            p.pid,
            d.output()
        );
    }
}

/// The ConfigMap's drop-ins from `packaging/kubernetes/oomward.yaml`: each `KEY: |` block under
/// `data:`, de-indented.
fn configmap_files(yaml: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_data = false;
    for line in yaml.lines() {
        if line == "---" {
            in_data = false;
            continue;
        }
        if line == "data:" {
            in_data = true;
            continue;
        }
        if !in_data {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(": |"))
            && !key.starts_with(' ')
        {
            out.push((key.to_string(), String::new()));
        } else if let Some(body) = line.strip_prefix("    ") {
            if let Some((_, text)) = out.last_mut() {
                text.push_str(body);
                text.push('\n');
            }
        } else if line.trim().is_empty() {
            if let Some((_, text)) = out.last_mut() {
                text.push('\n');
            }
        } else if !line.starts_with(' ') {
            in_data = false;
        }
    }
    for (_, text) in &mut out {
        // YAML's `|` keeps one final newline.
        let trimmed = text.trim_end_matches('\n').len();
        text.truncate(trimmed);
        text.push('\n');
    }
    out
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The DaemonSet's promises, read from the manifest itself: the ConfigMap carries the node
/// preset exactly; its drop-ins load cleanly as oomward loads them in the pod; the pod shares
/// the host's PID namespace, is node-critical, Guaranteed, runs with exactly the six
/// capabilities the systemd unit keeps, and mounts what it reads read-only.
#[test]
fn the_daemonset_carries_the_node_preset_and_asks_only_for_what_it_uses() {
    let yaml = std::fs::read_to_string(repo("packaging/kubernetes/oomward.yaml")).unwrap();
    let files = configmap_files(&yaml);
    let preset = std::fs::read_to_string(repo("packaging/presets/kubernetes-node.toml")).unwrap();
    let node = files
        .iter()
        .find(|(k, _)| k == "50-node.toml")
        .expect("the ConfigMap has 50-node.toml");
    assert_eq!(
        node.1, preset,
        "the ConfigMap's 50-node.toml is not the preset"
    );
    // The drop-ins load as the pod loads them, with no warning.
    let dir = tempfile::tempdir().unwrap();
    let dropins = dir.path().join("config.d");
    std::fs::create_dir(&dropins).unwrap();
    for (k, text) in &files {
        std::fs::write(dropins.join(k), text).unwrap();
    }
    let out = oomward()
        .arg("--config-dir")
        .arg(&dropins)
        .args(["check-config", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The one warning meant: the listener is on the pod's own address, for the probe.
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("warning") && !l.contains("metrics_listen 0.0.0.0:9747"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let text = oomward()
        .arg("--config-dir")
        .arg(&dropins)
        .arg("check-config")
        .output()
        .unwrap();
    let effective = String::from_utf8_lossy(&text.stdout);
    for needle in [
        "namespace = \"kube-system\"",
        "protect = true",
        "path = \"/kubepods",
    ] {
        assert!(effective.contains(needle), "{needle} missing:\n{effective}");
    }
    // The pod.
    let ds = &yaml[yaml.find("kind: DaemonSet").expect("a DaemonSet")..];
    for needle in [
        "hostPID: true",
        "priorityClassName: system-node-critical",
        "drop: [\"ALL\"]",
        "add: [\"KILL\", \"SYS_PTRACE\", \"DAC_READ_SEARCH\", \"IPC_LOCK\", \"SYS_RESOURCE\", \"SYS_NICE\"]",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "mountPath: /sys/fs/cgroup",
        "mountPath: /var/log/pods",
        "command: [\"/usr/bin/oomward\", \"status\", \"--check\"]",
    ] {
        assert!(ds.contains(needle), "the DaemonSet lacks {needle:?}");
    }
    assert!(
        !ds.contains("privileged: true"),
        "the pod must not be privileged"
    );
    assert!(!yaml.contains("kind: ClusterRole"), "nothing needs RBAC");
    // Every host path it reads is mounted read-only.
    for mount in ["/sys/fs/cgroup", "/var/log/pods", "/var/log/containers"] {
        let at = ds
            .find(&format!("mountPath: {mount}\n"))
            .unwrap_or_else(|| panic!("{mount} not mounted"));
        let next = &ds[at..].lines().nth(1).unwrap_or("");
        assert!(next.contains("readOnly: true"), "{mount} is not read-only");
    }
    // Guaranteed: the requests are the limits.
    let block = |name: &str| -> Vec<String> {
        let at = ds.find(&format!("{name}:\n")).unwrap();
        ds[at..]
            .lines()
            .skip(1)
            .take(2)
            .map(|l| l.trim().to_string())
            .collect()
    };
    assert_eq!(block("requests"), block("limits"), "not Guaranteed");
}

/// The shipped manifests are valid Kubernetes objects: checked offline against the API's
/// published schemas, strictly (an unknown or misplaced field is an error), by
/// `packaging/kubernetes/validate.sh` (kubernetes-validate, installed on first use). A copy with
/// a misspelt field must fail, so the check is known to check.
#[test]
#[ignore = "installs kubernetes-validate from PyPI into target/ on first use"]
fn the_manifests_validate_against_the_kubernetes_schema() {
    let script = repo("packaging/kubernetes/validate.sh");
    let run = |file: &Path| {
        std::process::Command::new("bash")
            .arg(&script)
            .arg(file)
            .output()
            .unwrap()
    };
    let manifest = repo("packaging/kubernetes/oomward.yaml");
    let out = run(&manifest);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("daemonset/oomward"), "{text}");
    assert!(text.contains("configmap/oomward"), "{text}");

    let yaml = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        yaml.contains("hostPID: true"),
        "the DaemonSet shares the host's pids"
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, yaml.replacen("hostPID: true", "hostPid: true", 1)).unwrap();
    let out = run(&broken);
    assert!(
        !out.status.success(),
        "a misspelt field passed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
