//! Kubernetes identity of a process, from its memory cgroup path and kubelet's log directories.
//!
//! A kill report that says `pid=4711 comm=java` leaves a cluster operator searching; one that
//! says which pod, namespace and container it was does not. Everything here comes from the node
//! itself, without the API server: kubelet encodes the pod's UID and QoS class in the cgroup it
//! creates for the pod, the container runtime encodes the container's id in the cgroup below it,
//! and kubelet names its log directories after namespace, pod and container.
//!
//! The path is parsed without I/O ([`pod_cgroup`]); the names are read once under a root
//! ([`PodNames::read`]) and joined to it ([`identity`]).
//!
//! **Trust.** A pod identity read from a path is exactly as trustworthy as whoever may create
//! cgroups at that place in the tree. On a node that is kubelet and root, but a user with a
//! delegated subtree can name a cgroup to look like a pod. The first `kubepods` part of the path
//! is the one used, since the outermost one is the one made by the host's kubelet: a cluster
//! nested inside a container (kind, a node running in a pod) shows its own `kubepods` further
//! down, and that part was written by whoever runs the container.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use super::under;

/// A pod's quality-of-service class, which decides the order in which kubelet expects its pods
/// to be killed under memory pressure (BestEffort first, Guaranteed last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Qos {
    /// Every container's requests equal its limits.
    Guaranteed,
    /// Some request or limit is set, but the pod is not Guaranteed.
    Burstable,
    /// No requests or limits at all.
    BestEffort,
}

impl Qos {
    /// `guaranteed`, `burstable` or `besteffort`: the spelling of kubelet's cgroup names, used in
    /// logs, JSON and rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "guaranteed",
            Qos::Burstable => "burstable",
            Qos::BestEffort => "besteffort",
        }
    }

    /// Parses a class as people write it: any case, so both the API's `BestEffort` and the
    /// cgroup's `besteffort` work, and `best-effort` as it is often spelled in prose. Nothing
    /// else (no `be`, no `best_effort`): a rule with a typo must be an error, not a silent miss.
    pub fn parse(s: &str) -> Option<Qos> {
        [
            ("guaranteed", Qos::Guaranteed),
            ("burstable", Qos::Burstable),
            ("besteffort", Qos::BestEffort),
            ("best-effort", Qos::BestEffort),
        ]
        .into_iter()
        .find_map(|(name, qos)| s.eq_ignore_ascii_case(name).then_some(qos))
    }
}

/// Which part of a pod a cgroup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PodPart {
    /// The pod's own cgroup, or a child of it that no runtime naming explains.
    Pod,
    /// A container's cgroup (or one the container made below it). The pod's sandbox (`pause`)
    /// is a container like any other here.
    Container,
    /// cri-o's `conmon`, the monitor that holds a container's terminal and exit status. It runs
    /// in a scope of its own named after the container it watches, but it is not that container:
    /// killing it frees nothing the container holds, and a rule about the container must not
    /// match it.
    Monitor,
}

/// What a cgroup path alone says about a pod (no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroup {
    /// The pod's UID as the API shows it: a UUID with dashes, or the 32 hex digits kubelet
    /// gives a static pod (an MD5 of its manifest).
    pub pod_uid: String,
    /// From the QoS level of the path (`burstable`, `besteffort`, or none for Guaranteed).
    pub qos: Qos,
    /// Which part of the pod the cgroup is.
    pub part: PodPart,
    /// The runtime's container id (64 hex digits): the container's own for
    /// [`PodPart::Container`], the watched container's for [`PodPart::Monitor`], `None` for
    /// [`PodPart::Pod`].
    pub container_id: Option<String>,
    /// `containerd`, `crio` or `docker` when the cgroup's name says so; `None` for a bare id
    /// (the cgroupfs driver with containerd or docker names containers by id alone).
    pub runtime: Option<&'static str>,
}

/// The pod a memory cgroup path (as `/proc/PID/cgroup` shows it, v1 or v2 alike) belongs to;
/// `None` when it is not a pod's.
///
/// Kubelet's layouts, with either cgroup driver, found anywhere in the path (so a kubelet under
/// its own root such as kind's `/kubelet.slice/kubelet-kubepods.slice/…` or `/kubelet/kubepods/…`,
/// and a cgroup namespace's leading `/../..`, are understood):
/// - cgroupfs: `kubepods/[burstable|besteffort/]pod<uid>[/<container>]`, the container named
///   by its bare id (containerd, docker) or `crio-<id>`;
/// - systemd: `<k>.slice/[<k>-<qos>.slice/]<k>[-<qos>]-pod<uid with _>.slice[/<scope>]` where
///   `<k>` is `kubepods` or ends in `-kubepods`, the scope being `cri-containerd-<id>.scope`,
///   `crio-<id>.scope`, `docker-<id>.scope` or `crio-conmon-<id>.scope`.
///
/// Cgroups below a container's are the container's (it made them). The container's name is
/// parsed the same way under either driver: the pod is already identified by then, and runtimes
/// are configured independently of kubelet's driver.
///
/// Called for every process in a ranking pass, so it allocates only the strings it returns.
pub fn pod_cgroup(path: &str) -> Option<PodCgroup> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    loop {
        let segment = segments.next()?;
        if segment == "kubepods" {
            return cgroupfs_pod(segments);
        }
        if let Some(stem) = segment.strip_suffix(".slice")
            && (stem == "kubepods" || stem.ends_with("-kubepods"))
        {
            return systemd_pod(stem, segments);
        }
    }
}

/// The QoS level a path names below `kubepods` (none for Guaranteed).
fn qos_level(segment: &str) -> Option<Qos> {
    match segment {
        "burstable" => Some(Qos::Burstable),
        "besteffort" => Some(Qos::BestEffort),
        _ => None,
    }
}

/// The part of a path after `kubepods` under the cgroupfs driver.
fn cgroupfs_pod<'a>(mut segments: impl Iterator<Item = &'a str>) -> Option<PodCgroup> {
    let mut segment = segments.next()?;
    let qos = qos_level(segment);
    if qos.is_some() {
        segment = segments.next()?;
    }
    let pod_uid = pod_uid(segment.strip_prefix("pod")?, b'-')?;
    Some(with_container(
        pod_uid,
        qos.unwrap_or(Qos::Guaranteed),
        segments.next(),
    ))
}

/// The part of a path after the `<stem>.slice` of the systemd driver.
fn systemd_pod<'a>(stem: &str, mut segments: impl Iterator<Item = &'a str>) -> Option<PodCgroup> {
    let segment = segments.next()?;
    let child = slice_child(segment, stem)?;
    let (qos, pod) = match qos_level(child) {
        Some(qos) => (
            qos,
            slice_child(segments.next()?, segment.strip_suffix(".slice")?)?,
        ),
        None => (Qos::Guaranteed, child),
    };
    let pod_uid = pod_uid(pod.strip_prefix("pod")?, b'_')?;
    Some(with_container(pod_uid, qos, segments.next()))
}

/// `x` of a systemd slice `<parent>-x.slice`: systemd names a slice after its whole path.
fn slice_child<'a>(segment: &'a str, parent: &str) -> Option<&'a str> {
    segment
        .strip_suffix(".slice")?
        .strip_prefix(parent)?
        .strip_prefix('-')
}

/// A pod identified, with the container (if any) below it.
fn with_container(pod_uid: String, qos: Qos, below: Option<&str>) -> PodCgroup {
    let (part, container_id, runtime) = match below.and_then(container_cgroup) {
        Some((part, id, runtime)) => (part, Some(id.to_owned()), runtime),
        None => (PodPart::Pod, None, None),
    };
    PodCgroup {
        pod_uid,
        qos,
        part,
        container_id,
        runtime,
    }
}

/// The runtime's name for a container's cgroup: part, id and runtime.
fn container_cgroup(segment: &str) -> Option<(PodPart, &str, Option<&'static str>)> {
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    let (part, id, runtime) = [
        ("cri-containerd-", PodPart::Container, "containerd"),
        // Before `crio-`, which it also starts with.
        ("crio-conmon-", PodPart::Monitor, "crio"),
        ("crio-", PodPart::Container, "crio"),
        ("docker-", PodPart::Container, "docker"),
    ]
    .into_iter()
    .find_map(|(prefix, part, runtime)| Some((part, name.strip_prefix(prefix)?, Some(runtime))))
    .unwrap_or((PodPart::Container, name, None));
    is_container_id(id).then_some((part, id, runtime))
}

/// containerd, cri-o and docker all make ids of 32 random bytes in hex.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID with `separator` between its UUID groups (`-` in directory names, `_` in systemd
/// slices, where `-` means nesting), returned with dashes; or a static pod's 32 hex digits.
/// Strict, so that a cgroup that merely starts with `pod` is not taken for a pod.
fn pod_uid(s: &str, separator: u8) -> Option<String> {
    let bytes = s.as_bytes();
    let valid = match bytes.len() {
        36 => bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == separator,
            _ => b.is_ascii_hexdigit(),
        }),
        32 => bytes.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    };
    valid.then(|| s.replace(separator as char, "-"))
}

/// Pod and container names from kubelet's log directories, which are the only place on a node
/// that names them without the API server: `/var/log/pods/<namespace>_<pod>_<uid>/<container>/`
/// and kubelet's symlinks `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`, the only
/// place where a runtime's container id meets the container's name.
#[derive(Debug, Clone, Default)]
pub struct PodNames {
    /// By pod UID.
    pods: HashMap<String, PodLogs>,
    /// By container id.
    containers: HashMap<String, ContainerLog>,
}

/// One `/var/log/pods` directory.
#[derive(Debug, Clone)]
struct PodLogs {
    namespace: String,
    name: String,
    /// The directories below it: one per container, init and ephemeral containers included.
    containers: Vec<String>,
    /// Whether `/var/log/containers` names any container of this pod by id. Then an id it does
    /// not name is none of the pod's logged containers (the sandbox, which logs nothing, or a
    /// container between restarts), and guessing from the directories would misname it.
    has_ids: bool,
}

/// One `/var/log/containers` symlink.
#[derive(Debug, Clone)]
struct ContainerLog {
    namespace: String,
    pod: String,
    container: String,
}

impl PodNames {
    /// Reads `<root>/var/log/pods` and `<root>/var/log/containers`, one readdir of each
    /// directory. Names are decoration, so nothing here fails: a directory that is absent (not
    /// mounted into oomward's container) or unreadable gives no names, and an entry whose name
    /// is not kubelet's is skipped.
    pub fn read(root: &Path) -> PodNames {
        let mut containers = HashMap::new();
        for (entry, _) in entries(&under(root, "/var/log/containers")) {
            if let Some((pod, namespace, container, id)) = container_log_name(&entry) {
                let log = ContainerLog {
                    namespace: namespace.to_owned(),
                    pod: pod.to_owned(),
                    container: container.to_owned(),
                };
                containers.insert(id.to_owned(), log);
            }
        }
        let with_ids: HashSet<(&str, &str)> = containers
            .values()
            .map(|c: &ContainerLog| (c.namespace.as_str(), c.pod.as_str()))
            .collect();
        let pods_dir = under(root, "/var/log/pods");
        let mut pods = HashMap::new();
        for (entry, is_dir) in entries(&pods_dir) {
            let Some((namespace, name, uid)) = pod_dir_name(&entry).filter(|_| is_dir) else {
                continue;
            };
            let mut names: Vec<String> = entries(&pods_dir.join(&entry))
                .filter(|(c, is_dir)| *is_dir && is_k8s_name(c))
                .map(|(c, _)| c)
                .collect();
            names.sort();
            let logs = PodLogs {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                containers: names,
                has_ids: with_ids.contains(&(namespace, name)),
            };
            pods.insert(uid.to_owned(), logs);
        }
        PodNames { pods, containers }
    }

    /// True when nothing was found (the log directories are not visible).
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.containers.is_empty()
    }

    /// Whether the pod with this UID has a log directory.
    pub fn knows(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// The pod's namespace and name.
    pub fn pod(&self, uid: &str) -> Option<(&str, &str)> {
        self.pods
            .get(uid)
            .map(|p| (p.namespace.as_str(), p.name.as_str()))
    }

    /// The name of a container of pod `uid`: the one kubelet's symlinks give `container_id`;
    /// failing that, the pod's only container directory, unless the symlinks name some of the
    /// pod's containers and not this id (then it is the sandbox or a container gone: `None`).
    ///
    /// With only `/var/log/pods` visible, the sandbox's `pause` process of a single-container
    /// pod is given that container's name: nothing on the node outside the runtime tells the
    /// two apart.
    pub fn container(&self, uid: &str, container_id: Option<&str>) -> Option<&str> {
        let pod = self.pods.get(uid);
        if let Some(log) = container_id.and_then(|id| self.containers.get(id)) {
            // An id belongs to one pod; a different pod under this UID means the names are of
            // another time (a pod recreated under the same name has a new UID, not a new id).
            let same_pod = pod.is_none_or(|p| p.namespace == log.namespace && p.name == log.pod);
            return same_pod.then_some(log.container.as_str());
        }
        let pod = pod?;
        if container_id.is_some() && pod.has_ids {
            return None;
        }
        match pod.containers.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

/// The names in a directory that are valid UTF-8, with whether each is a directory (not
/// following symlinks); nothing when the directory cannot be read.
fn entries(dir: &Path) -> impl Iterator<Item = (String, bool)> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            Some((e.file_name().into_string().ok()?, is_dir))
        })
}

/// `<namespace>_<pod>_<uid>`: kubelet's pod log directory. Kubernetes names hold no `_`, so the
/// split is unambiguous.
fn pod_dir_name(entry: &str) -> Option<(&str, &str, &str)> {
    let mut parts = entry.split('_');
    let (namespace, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && is_k8s_name(namespace)
        && is_k8s_name(name)
        && pod_uid(uid, b'-').is_some();
    valid.then_some((namespace, name, uid))
}

/// `<pod>_<namespace>_<container>-<id>.log`: kubelet's container log symlink.
fn container_log_name(entry: &str) -> Option<(&str, &str, &str, &str)> {
    let stem = entry.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    let mut parts = rest.split('_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && is_container_id(id)
        && is_k8s_name(pod)
        && is_k8s_name(namespace)
        && is_k8s_name(container);
    valid.then_some((pod, namespace, container, id))
}

/// Loosely, a Kubernetes object name (a DNS subdomain: lowercase letters, digits, `-`, `.`);
/// enough to tell kubelet's directories from anything else lying there.
fn is_k8s_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Everything known of a process's pod, for kill reports, `rank --json` and rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KubeIdentity {
    /// The pod's UID (always known: it is in the path).
    pub pod_uid: String,
    /// The pod's name, when its log directory is visible.
    pub pod: Option<String>,
    /// The pod's namespace, likewise.
    pub namespace: Option<String>,
    /// Which part of the pod the process is in.
    pub part: PodPart,
    /// The container's name, for a process of a container whose name is known. `None` for
    /// cri-o's monitor, which is not the container it watches.
    pub container: Option<String>,
    /// The runtime's container id, for a process of a container (not for the monitor).
    pub container_id: Option<String>,
    /// From the path.
    pub qos: Qos,
}

/// The pod identity of a process in memory cgroup `cgroup`, named from `names`; `None` when the
/// cgroup is not a pod's.
pub fn identity(cgroup: &str, names: &PodNames) -> Option<KubeIdentity> {
    let pc = pod_cgroup(cgroup)?;
    let (namespace, pod) = names
        .pod(&pc.pod_uid)
        .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
        .unzip();
    let container_id = match pc.part {
        PodPart::Container => pc.container_id,
        PodPart::Pod | PodPart::Monitor => None,
    };
    let container = container_id
        .as_deref()
        .and_then(|id| names.container(&pc.pod_uid, Some(id)))
        .map(str::to_owned);
    Some(KubeIdentity {
        pod_uid: pc.pod_uid,
        pod,
        namespace,
        part: pc.part,
        container,
        container_id,
        qos: pc.qos,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::probe::cgroup::{CgroupVersion, MemoryHierarchy};

    const UID: &str = "2c7e1c5a-8f3b-4d6e-9a1b-0c2d3e4f5a6b";
    /// A static pod's UID: kubelet's MD5 of the manifest.
    const STATIC_UID: &str = "9a4f6c0e8c7d5b2a1e3f4d6c7b8a9e0f";
    const CID: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";

    use PodPart::{Container, Monitor, Pod};
    use Qos::{BestEffort, Burstable, Guaranteed};

    /// Expected parse: QoS, part and runtime (the id is `CID` for a container or monitor).
    type Want = Option<(Qos, PodPart, Option<&'static str>)>;

    /// A path written with `{u}` for the UID as cgroupfs spells it, `{s}` as systemd does,
    /// `{static}` for a static pod's UID and `{c}` for the container id.
    fn real(template: &str) -> String {
        template
            .replace("{u}", UID)
            .replace("{s}", &UID.replace('-', "_"))
            .replace("{static}", STATIC_UID)
            .replace("{c}", CID)
    }

    /// Every driver, QoS class and runtime, with the pod's own cgroup and a container's. The
    /// same strings appear in v1 (`N:memory:<path>`) and v2 (`0::<path>`): kubelet and the
    /// runtimes name cgroups alike under both.
    #[rustfmt::skip]
    const LAYOUTS: &[(&str, Want)] = &[
        // cgroupfs driver: containerd and docker name a container by its id, cri-o `crio-<id>`.
        ("/kubepods/pod{u}", Some((Guaranteed, Pod, None))),
        ("/kubepods/pod{u}/{c}", Some((Guaranteed, Container, None))),
        ("/kubepods/pod{u}/crio-{c}", Some((Guaranteed, Container, Some("crio")))),
        ("/kubepods/burstable/pod{u}", Some((Burstable, Pod, None))),
        ("/kubepods/burstable/pod{u}/{c}", Some((Burstable, Container, None))),
        ("/kubepods/burstable/pod{u}/crio-{c}", Some((Burstable, Container, Some("crio")))),
        ("/kubepods/besteffort/pod{u}", Some((BestEffort, Pod, None))),
        ("/kubepods/besteffort/pod{u}/{c}", Some((BestEffort, Container, None))),
        ("/kubepods/besteffort/pod{u}/crio-{c}", Some((BestEffort, Container, Some("crio")))),
        ("/kubepods/besteffort/pod{u}/crio-conmon-{c}", Some((BestEffort, Monitor, Some("crio")))),
        // systemd driver: containerd, cri-o (and its conmon), docker.
        ("/kubepods.slice/kubepods-pod{s}.slice", Some((Guaranteed, Pod, None))),
        ("/kubepods.slice/kubepods-pod{s}.slice/cri-containerd-{c}.scope", Some((Guaranteed, Container, Some("containerd")))),
        ("/kubepods.slice/kubepods-pod{s}.slice/crio-{c}.scope", Some((Guaranteed, Container, Some("crio")))),
        ("/kubepods.slice/kubepods-pod{s}.slice/crio-conmon-{c}.scope", Some((Guaranteed, Monitor, Some("crio")))),
        ("/kubepods.slice/kubepods-pod{s}.slice/docker-{c}.scope", Some((Guaranteed, Container, Some("docker")))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice", Some((Burstable, Pod, None))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice/cri-containerd-{c}.scope", Some((Burstable, Container, Some("containerd")))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice/crio-{c}.scope", Some((Burstable, Container, Some("crio")))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice/crio-conmon-{c}.scope", Some((Burstable, Monitor, Some("crio")))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice/docker-{c}.scope", Some((Burstable, Container, Some("docker")))),
        ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{s}.slice", Some((BestEffort, Pod, None))),
        ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{s}.slice/cri-containerd-{c}.scope", Some((BestEffort, Container, Some("containerd")))),
        ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{s}.slice/crio-{c}.scope", Some((BestEffort, Container, Some("crio")))),
        ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{s}.slice/crio-conmon-{c}.scope", Some((BestEffort, Monitor, Some("crio")))),
        ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{s}.slice/docker-{c}.scope", Some((BestEffort, Container, Some("docker")))),
        // Kubelet under a cgroup root of its own (kind, k3s in docker): systemd names every
        // slice after its whole path.
        ("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{s}.slice/cri-containerd-{c}.scope", Some((Guaranteed, Container, Some("containerd")))),
        ("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{s}.slice", Some((BestEffort, Pod, None))),
        ("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{s}.slice/cri-containerd-{c}.scope", Some((BestEffort, Container, Some("containerd")))),
        ("/kubelet/kubepods/pod{u}/{c}", Some((Guaranteed, Container, None))),
        ("/kubelet/kubepods/burstable/pod{u}/{c}", Some((Burstable, Container, None))),
        // Cgroups a container made inside its own are still the container's.
        ("/kubepods/burstable/pod{u}/{c}/init.scope", Some((Burstable, Container, None))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice/crio-{c}.scope/container", Some((Burstable, Container, Some("crio")))),
        // A child of the pod that no runtime named: the pod's, no container.
        ("/kubepods/burstable/pod{u}/not-a-container", Some((Burstable, Pod, None))),
        ("/kubepods/burstable/pod{u}/crio-{c}0", Some((Burstable, Pod, None))),
        ("/kubepods.slice/kubepods-pod{s}.slice/libpod-{c}.scope", Some((Guaranteed, Pod, None))),
        // Static pods have 32-hex UIDs, the same under both drivers.
        ("/kubepods/burstable/pod{static}/{c}", Some((Burstable, Container, None))),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{static}.slice/crio-{c}.scope", Some((Burstable, Container, Some("crio")))),
    ];

    fn parsed(path: &str) -> Want {
        let pc = pod_cgroup(path)?;
        let want_uid = if path.contains(STATIC_UID) {
            STATIC_UID
        } else {
            UID
        };
        assert_eq!(pc.pod_uid, want_uid, "{path}");
        let want_id = (pc.part != Pod).then_some(CID);
        assert_eq!(pc.container_id.as_deref(), want_id, "{path}");
        Some((pc.qos, pc.part, pc.runtime))
    }

    #[test]
    fn every_driver_runtime_and_class() {
        for &(template, want) in LAYOUTS {
            let path = real(template);
            assert_eq!(parsed(&path), want, "{path}");
        }
    }

    #[test]
    fn cgroup_namespaces_show_paths_from_above_their_root() {
        // A process whose cgroup namespace root is below the path sees `/..` for each level
        // between them (e.g. a monitoring agent in a pod of its own reading other pods).
        for &(template, want) in LAYOUTS {
            let path = real(template);
            for prefix in ["/..", "/../..", "/../../..", "/../../kubelet"] {
                let namespaced = format!("{prefix}{path}");
                assert_eq!(parsed(&namespaced), want, "{namespaced}");
            }
        }
    }

    #[test]
    fn the_path_is_the_same_in_v1_and_v2() {
        // What /proc/PID/cgroup shows, through the reader that picks the memory line.
        let cases = [
            (
                CgroupVersion::V1,
                "12:pids:{p}\n11:memory:{p}\n4:cpu,cpuacct:{p}\n1:name=systemd:{p}\n0::/\n",
            ),
            (CgroupVersion::V2, "0::{p}\n"),
        ];
        let paths = [
            "/kubepods/burstable/pod{u}/{c}",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{s}.slice/docker-{c}.scope",
        ];
        for (version, text) in cases {
            let hierarchy = MemoryHierarchy {
                version,
                mount_point: "/sys/fs/cgroup".into(),
                mount_root: "/".into(),
            };
            for template in paths {
                let text = text.replace("{p}", &real(template));
                let cgroup = hierarchy.path_of_process(&text).unwrap();
                let runtime = template.contains("docker").then_some("docker");
                assert_eq!(
                    parsed(&cgroup),
                    Some((Burstable, Container, runtime)),
                    "{version:?} {template}"
                );
            }
        }
    }

    #[test]
    #[rustfmt::skip]
    fn what_is_not_a_pod() {
        let not_pods = [
            "",
            "/",
            "/kubepods",
            "/kubepods/burstable",
            "/kubepods/besteffort/",
            "/kubepods.slice",
            "/kubepods.slice/kubepods-burstable.slice",
            "/system.slice/kubelet.service",
            "/system.slice/containerd.service",
            "/system.slice/docker-{c}.scope",
            "/kubepods-fake/pod{u}/{c}",
            "/kubepods-fake.slice/kubepods-fake-pod{s}.slice",
            "/kubepodsx.slice/kubepodsx-pod{s}.slice",
            "/user.slice/kubepods/podnope",
            "/kubepods/pod",
            "/kubepods/pod{u}0",
            "/kubepods/pod{static}0",
            "/kubepods/pod-{u}",
            "/kubepods/burstable/{u}/{c}",
            "/kubepods/guaranteed/pod{u}",
            "/kubepods/burstable/besteffort/pod{u}",
            "/kubepods/pod2c7e1c5a-8f3b-4d6e-9a1b-0c2d3e4f5g6b",
            "/kubepods/pod2c7e1c5a8-f3b-4d6e-9a1b-0c2d3e4f5a6b",
            // Each driver spells the UID its own way.
            "/kubepods/pod{s}",
            "/kubepods.slice/kubepods-pod{u}.slice",
            // The QoS level belongs to the slice it is named after.
            "/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod{s}.slice",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-pod{s}.slice",
            "/kubepods.slice/kubepods-pod{s}",
            "/kubepods.slice/kubelet-kubepods-pod{s}.slice",
            "/kubelet.slice/kubelet-kubepods.slice/kubepods-pod{s}.slice",
            // The first `kubepods` decides: a pod-looking path below a non-pod one is not taken.
            "/kubepods/burstable/podnope/kubepods/pod{u}",
        ];
        for template in not_pods {
            let path = real(template);
            assert_eq!(pod_cgroup(&path), None, "{path}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn qos_names() {
        for qos in [Guaranteed, Burstable, BestEffort] {
            assert_eq!(Qos::parse(qos.as_str()), Some(qos));
            assert_eq!(
                serde_json::to_value(qos).unwrap(),
                serde_json::json!(qos.as_str())
            );
        }
        let parse = [
            ("Guaranteed", Some(Guaranteed)), ("BURSTABLE", Some(Burstable)), ("BestEffort", Some(BestEffort)),
            ("best-effort", Some(BestEffort)), ("best_effort", None), ("be", None), ("", None), (" burstable", None),
        ];
        for (s, want) in parse {
            assert_eq!(Qos::parse(s), want, "{s:?}");
        }
    }

    const COREDNS_UID: &str = "8f4e2a10-3b7c-4d19-a5e6-2f0b9c8d7e61";
    const COREDNS_ID: &str = "a3f1c9e07b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a";
    const CART_UID: &str = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";
    const CART_API_ID: &str = "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e";
    const ENVOY_ID: &str = "7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b";
    const ETCD_UID: &str = "3f6c1e8a9b2d4c7e5a0f1b3d6e8c9a27";
    /// In `/var/log/containers`, its pod's directory gone.
    const ORPHAN_UID: &str = "5b9d7e3c-1a2f-4e6b-8c0d-9f7a3b5c1e2d";
    const ORPHAN_ID: &str = "e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5";

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn pods_by_uid_from_their_log_directories() {
        let names = PodNames::read(&fixture("kube"));
        let pods = [
            (
                COREDNS_UID,
                Some(("kube-system", "coredns-5d78c9869d-abcde")),
            ),
            (CART_UID, Some(("shop", "cart.api-6d4b5c7f9-xk2pq"))),
            (ETCD_UID, Some(("kube-system", "etcd-node-1.example.com"))),
            // `default_two_extra_<uid>` (four parts) and a plain file of a pod's name.
            (ORPHAN_UID, None),
            ("1234", None),
        ];
        for (uid, want) in pods {
            assert_eq!(names.pod(uid), want, "{uid}");
            assert_eq!(names.knows(uid), want.is_some(), "{uid}");
        }
        // Nothing else: README, garbage-dir, default_nouid_1234 are not kubelet's.
        assert_eq!(names.pods.len(), 3);
        assert_eq!(names.containers.len(), 4);
        assert_eq!(names.pods[CART_UID].containers, ["cart-api", "envoy-proxy"]);
    }

    #[test]
    fn containers_by_id_and_by_being_the_only_one() {
        let names = PodNames::read(&fixture("kube"));
        let pause = CID;
        let cases = [
            // By id, from kubelet's symlinks.
            (COREDNS_UID, Some(COREDNS_ID), Some("coredns")),
            (CART_UID, Some(CART_API_ID), Some("cart-api")),
            (CART_UID, Some(ENVOY_ID), Some("envoy-proxy")),
            // Two containers and no id: no guess.
            (CART_UID, None, None),
            (CART_UID, Some(pause), None),
            // One container, no symlinks for the pod (a static pod's logs only): that one.
            (ETCD_UID, Some(pause), Some("etcd")),
            (ETCD_UID, None, Some("etcd")),
            // One container, but the symlinks name it under another id: this is the sandbox.
            (COREDNS_UID, Some(pause), None),
            (COREDNS_UID, None, Some("coredns")),
            // An id is one container's wherever it is asked for...
            (ORPHAN_UID, Some(ORPHAN_ID), Some("worker")),
            // ...but not under a pod that is known to be another.
            (CART_UID, Some(COREDNS_ID), None),
            (ORPHAN_UID, None, None),
        ];
        for (uid, id, want) in cases {
            assert_eq!(names.container(uid, id), want, "{uid} {id:?}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn odd_entries_are_skipped() {
        let names = [
            ("kube-system_coredns-5d78c9869d-abcde_8f4e2a10-3b7c-4d19-a5e6-2f0b9c8d7e61", true),
            ("kube-system_etcd-node-1_3f6c1e8a9b2d4c7e5a0f1b3d6e8c9a27", true),
            ("a_b_8f4e2a10-3b7c-4d19-a5e6-2f0b9c8d7e61_", false),
            ("_b_8f4e2a10-3b7c-4d19-a5e6-2f0b9c8d7e61", false),
            ("A_b_8f4e2a10-3b7c-4d19-a5e6-2f0b9c8d7e61", false),
            ("a_b_8f4e2a10_3b7c_4d19_a5e6_2f0b9c8d7e61", false),
            ("a_b", false),
            ("", false),
            ("ns_pod_é", false),
        ];
        for (entry, valid) in names {
            assert_eq!(pod_dir_name(entry).is_some(), valid, "{entry}");
        }
        let c = CID;
        let logs = [
            (format!("web-0_default_app-{c}.log"), Some(("web-0", "default", "app", CID))),
            (format!("web-0_default_side-car-{c}.log"), Some(("web-0", "default", "side-car", CID))),
            (format!("web-0_default_app-{c}"), None),
            (format!("web-0_default_app_{c}.log"), None),
            (format!("web-0_default-app-{c}.log"), None),
            (format!("web-0_default_-{c}.log"), None),
            (format!("web-0_default_app-{}.log", &c[1..]), None),
            ("-.log".into(), None),
            (".log".into(), None),
        ];
        for (entry, want) in logs {
            assert_eq!(container_log_name(&entry), want, "{entry}");
        }
    }

    #[test]
    fn no_tree_no_names() {
        // A fixture root without /var/log, as on a host where it is not mounted into oomward.
        let names = PodNames::read(&fixture("v2"));
        assert!(names.is_empty());
        assert_eq!(names.pod(COREDNS_UID), None);
        assert_eq!(names.container(COREDNS_UID, Some(COREDNS_ID)), None);
        assert!(PodNames::read(Path::new("/nonexistent/oomward")).is_empty());
    }

    #[test]
    fn names_that_are_not_utf8_do_not_panic() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;

        let root = tempfile::tempdir().unwrap();
        let pods = root.path().join("var/log/pods");
        let odd = OsStr::from_bytes(b"ns_pod\xff_8f4e2a10-3b7c-4d19-a5e6-2f0b9c8d7e61");
        fs::create_dir_all(pods.join(odd).join("app")).unwrap();
        let good = pods.join(format!("ns_pod_{COREDNS_UID}"));
        fs::create_dir_all(good.join(OsStr::from_bytes(b"app\xfe"))).unwrap();
        fs::create_dir_all(good.join("app")).unwrap();
        fs::create_dir_all(root.path().join("var/log/containers")).unwrap();
        fs::write(
            root.path()
                .join("var/log/containers")
                .join(OsStr::from_bytes(b"pod_ns_app\xff-x.log")),
            "",
        )
        .unwrap();
        let names = PodNames::read(root.path());
        assert_eq!(names.pod(COREDNS_UID), Some(("ns", "pod")));
        assert_eq!(names.container(COREDNS_UID, None), Some("app"));
        assert_eq!(names.pods.len(), 1);
        assert!(names.containers.is_empty());
    }

    #[test]
    #[rustfmt::skip]
    fn identity_joins_path_and_names() {
        let names = PodNames::read(&fixture("kube"));
        let cart = CART_UID.replace('-', "_");
        let cart_pod = Some(("shop", "cart.api-6d4b5c7f9-xk2pq"));
        let slice = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{cart}.slice");
        // (path, pod uid, namespace and name, part, container, container id, qos)
        let cases = [
            (format!("{slice}/cri-containerd-{ENVOY_ID}.scope"), CART_UID, cart_pod, Container, Some("envoy-proxy"), Some(ENVOY_ID), Burstable),
            // conmon is named after the container it watches, but is not it.
            (format!("{slice}/crio-conmon-{ENVOY_ID}.scope"), CART_UID, cart_pod, Monitor, None, None, Burstable),
            (format!("/kubepods/burstable/pod{ETCD_UID}"), ETCD_UID, Some(("kube-system", "etcd-node-1.example.com")), Pod, None, None, Burstable),
            // A pod whose logs are not visible: what the path says.
            (format!("/../../kubepods/besteffort/pod{UID}/{CID}"), UID, None, Container, None, Some(CID), BestEffort),
        ];
        for (path, uid, pod, part, container, id, qos) in cases {
            let want = KubeIdentity {
                pod_uid: uid.into(),
                namespace: pod.map(|(ns, _)| ns.into()),
                pod: pod.map(|(_, name)| name.into()),
                part,
                container: container.map(Into::into),
                container_id: id.map(Into::into),
                qos,
            };
            assert_eq!(identity(&path, &names), Some(want), "{path}");
        }
        assert_eq!(identity("/system.slice/kubelet.service", &names), None);
        let json = serde_json::to_value(identity(&format!("/kubepods/pod{UID}"), &names)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "pod_uid": UID, "pod": null, "namespace": null, "part": "pod",
                "container": null, "container_id": null, "qos": "guaranteed",
            })
        );
    }
}
