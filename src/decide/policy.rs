//! Who may be killed, and who should go first: the administrator's rules on top of the kernel's
//! ranking.
//!
//! Rules never replace the kernel's badness; they protect a process outright or shift its
//! `oom_score_adj` by a number of adj units (see [`effective_adj`]), so that a rule means the same
//! thing as the knob the kernel and kubelet already use.
//!
//! Matchers differ in how far they can be trusted: `exe` is a root-owned link that an ordinary
//! user cannot forge for a path they cannot write; `comm` and `cmdline` are set by the process
//! itself. Protecting by `comm` or `cmdline` alone is therefore allowed but warned about.

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

use crate::badness::{OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN};
use crate::probe::oomd::OomdPreference;
use crate::probe::process::ProcessSnapshot;

/// What a rule does to the processes it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Never a candidate.
    Protect,
    /// Added to the process's `oom_score_adj`: positive prefers it as a victim, negative avoids it.
    Adjust(i32),
}

/// Which processes an `exe` matcher may match.
///
/// `/proc/PID/exe` is resolved in the process's own mount namespace, so a container can run its
/// own `/usr/sbin/sshd`; by default an exe rule matches only processes whose exe is the host's
/// file of that name (see `ProcessSnapshot::exe_in_host_mntns`): the host being PID 1's mount
/// namespace, not oomward's own, which a sandboxed unit makes private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeNamespace {
    /// Only processes running the host's file of that path.
    Host,
    /// Any process, containers included.
    Any,
}

/// Longest glob accepted: far beyond any path (PATH_MAX is 4096).
pub const GLOB_MAX_LEN: usize = 4096;
/// Deepest `{a,{b,c}}` nesting accepted.
pub const GLOB_MAX_BRACE_DEPTH: usize = 4;
/// Most `{...}` groups in one glob.
pub const GLOB_MAX_BRACES: usize = 64;

fn check_glob_size(text: &str) -> Result<(), String> {
    if text.len() > GLOB_MAX_LEN {
        return Err(format!(
            "glob of {} bytes: at most {GLOB_MAX_LEN}",
            text.len()
        ));
    }
    let (mut depth, mut deepest, mut groups) = (0usize, 0usize, 0usize);
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => {
                depth += 1;
                groups += 1;
                deepest = deepest.max(depth);
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > GLOB_MAX_BRACE_DEPTH {
        return Err(format!(
            "braces nested {deepest} deep: at most {GLOB_MAX_BRACE_DEPTH}"
        ));
    }
    if groups > GLOB_MAX_BRACES {
        return Err(format!("{groups} brace groups: at most {GLOB_MAX_BRACES}"));
    }
    Ok(())
}

/// A glob that remembers the text it was compiled from, for error messages and `check-config`.
#[derive(Debug, Clone)]
pub struct Glob {
    /// The pattern as written.
    pub text: String,
    matcher: GlobMatcher,
}

/// Two globs are the same when they were written the same.
impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Glob {
    /// Compiles a path glob: `*` stays within one path component, `**` crosses any number.
    /// Patterns beyond what a path needs (too long, braces nested too deep or too many) are
    /// refused before the glob compiler sees them: it can exhaust its stack on deep nesting,
    /// and a reload must never be able to take the daemon down.
    pub fn new(text: &str) -> Result<Self, String> {
        check_glob_size(text)?;
        let glob = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid glob {text:?}: {}", e.kind()))?;
        Ok(Glob {
            text: text.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether `path` matches.
    pub fn is_match(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

/// A rule's matchers on a process's pod: its QoS class (from the cgroup path kubelet made),
/// namespace, pod and container names (from kubelet's log directories). A rule with any of
/// them matches only processes of pods.
#[derive(Debug, Clone, Default)]
pub struct PodMatch {
    /// The pod's QoS class.
    pub qos: Option<crate::probe::kube::Qos>,
    /// Glob on the pod's namespace.
    pub namespace: Option<Glob>,
    /// Glob on the pod's name.
    pub pod: Option<Glob>,
    /// Glob on the container's name.
    pub container: Option<Glob>,
}

impl PodMatch {
    /// No pod matcher is set.
    pub fn is_empty(&self) -> bool {
        self.qos.is_none()
            && self.namespace.is_none()
            && self.pod.is_none()
            && self.container.is_none()
    }

    /// Whether every matcher set matches `k` (none matches a process outside pods, or one
    /// whose names are not known).
    pub fn matches(&self, k: Option<&crate::probe::kube::KubeIdentity>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(k) = k else {
            return false;
        };
        let name = |glob: &Option<Glob>, value: &Option<String>| match glob {
            None => true,
            Some(g) => value.as_deref().is_some_and(|v| g.is_match(v)),
        };
        self.qos.is_none_or(|q| q == k.qos)
            && name(&self.namespace, &k.namespace)
            && name(&self.pod, &k.pod)
            && name(&self.container, &k.container)
    }
}

/// One `[[rule]]`: every matcher given must match, then the action applies.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Glob on the executable path, ` (deleted)` removed.
    pub exe: Option<Glob>,
    /// Which processes `exe` may match.
    pub exe_namespace: ExeNamespace,
    /// Regex on `/proc/PID/comm`.
    pub comm: Option<Regex>,
    /// Regex on the command line, arguments joined by single spaces.
    pub cmdline: Option<Regex>,
    /// Glob on the process's memory cgroup path.
    pub cgroup: Option<Glob>,
    /// Real uid.
    pub uid: Option<u32>,
    /// Matchers on the process's pod.
    pub pod: PodMatch,
    /// What the rule does.
    pub action: Action,
    /// Where the rule was written (line of its `[[rule]]` header), for verdicts and logs.
    pub line: usize,
}

impl Rule {
    /// Whether every matcher the rule has matches the process.
    pub fn matches(&self, p: &ProcessSnapshot) -> bool {
        if let Some(glob) = &self.exe {
            let in_scope = self.exe_namespace == ExeNamespace::Any || p.exe_in_host_mntns;
            match &p.exe {
                Some(exe) if in_scope && glob.is_match(exe) => {}
                _ => return false,
            }
        }
        if let Some(re) = &self.comm
            && !re.is_match(&p.comm)
        {
            return false;
        }
        if let Some(re) = &self.cmdline
            && !re.is_match(&p.cmdline)
        {
            return false;
        }
        if let Some(glob) = &self.cgroup {
            match &p.cgroup {
                Some(cg) if glob.is_match(cg) => {}
                _ => return false,
            }
        }
        if let Some(uid) = self.uid
            && p.uid != Some(uid)
        {
            return false;
        }
        self.pod.matches(p.kube.as_ref())
    }

    /// Protects on an executable alone: anyone allowed to run the file (with `LD_PRELOAD`, any
    /// program) is protected. `user` or `cgroup` say who or where.
    pub fn protects_by_exe_alone(&self) -> bool {
        self.action == Action::Protect
            && self.exe.is_some()
            && self.cgroup.is_none()
            && self.uid.is_none()
    }

    /// Protects by what a process names itself (comm, cmdline), or by a pod or container name
    /// (whoever may create pods chooses those), with nothing it cannot choose: no exe, user,
    /// cgroup, namespace or QoS class.
    pub fn protects_by_spoofable_names_only(&self) -> bool {
        self.action == Action::Protect
            && self.exe.is_none()
            && self.cgroup.is_none()
            && self.uid.is_none()
            && self.pod.qos.is_none()
            && self.pod.namespace.is_none()
            && (self.comm.is_some()
                || self.cmdline.is_some()
                || self.pod.pod.is_some()
                || self.pod.container.is_some())
    }
}

/// Why a process is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Part of the built-in set; the string names the entry.
    Builtin(&'static str),
    /// A `[[rule]]` with `protect = true`; the line of its header.
    Rule(usize),
    /// Its unit says `ManagedOOMPreference=omit` (a root-owned cgroup's `user.oomd_omit`).
    OomdOmit,
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protection::Builtin(what) => write!(f, "builtin:{what}"),
            Protection::Rule(line) => write!(f, "rule@{line}"),
            Protection::OomdOmit => write!(f, "oomd_omit"),
        }
    }
}

/// The policy's word on one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Set when the process must never be chosen.
    pub protected: Option<Protection>,
    /// Sum of the `adjust` of every matching rule, in `oom_score_adj` units.
    pub adjust: i32,
}

/// Executables protected by default on any machine: losing them loses the machine (init, the
/// journal, device and session managers, the bus) or the way in to repair it (sshd).
pub const BUILTIN_PROTECTED_EXES: &[&str] = &[
    "/sbin/init",
    "/usr/sbin/init",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
    "/lib/systemd/systemd-journald",
    "/usr/lib/systemd/systemd-journald",
    "/lib/systemd/systemd-udevd",
    "/usr/lib/systemd/systemd-udevd",
    "/lib/systemd/systemd-logind",
    "/usr/lib/systemd/systemd-logind",
    "/usr/bin/dbus-daemon",
    "/usr/bin/dbus-broker",
    "/usr/bin/dbus-broker-launch",
    "/usr/sbin/sshd",
    "/usr/bin/sshd",
    "/usr/lib/openssh/sshd-session",
    "/usr/libexec/openssh/sshd-session",
    "/usr/sbin/oomward",
    "/usr/bin/oomward",
];

/// A process no sane rule should match: control characters and no letter in every field a
/// rule can look at (and no uid). A `protect` rule that matches it matches anything, which the
/// config refuses.
pub fn sentinel_process() -> ProcessSnapshot {
    ProcessSnapshot {
        pid: i32::MAX,
        comm: "\u{1}\u{2}".into(),
        exe: Some("/\u{1}/\u{2}".into()),
        exe_in_host_mntns: true,
        cmdline: "\u{1} \u{2}".into(),
        cgroup: Some("/\u{1}/\u{2}".into()),
        has_mm: true,
        ..ProcessSnapshot::default()
    }
}

/// The compiled policy: the built-in protected set (unless disabled) and the user's rules.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether the built-in protected set applies.
    pub builtin: bool,
    /// The `[[rule]]` entries, in file order.
    pub rules: Vec<Rule>,
    /// oomward's own pid: never a candidate, whatever the config says.
    pub self_pid: i32,
    /// oomward's own executable, so a second instance is protected too.
    pub self_exe: Option<String>,
    /// The first uid of ordinary users (`UID_MIN` of /etc/login.defs, 1000 by default): the
    /// built-in set protects only processes whose real and effective uids are below it.
    pub first_user_uid: u32,
}

/// The adjustment of a process whose unit says `ManagedOOMPreference=avoid`: low enough that
/// no adj and no rule can lift it off the floor, so it is chosen only when nothing else is.
pub const OOMD_AVOID_ADJUST: i32 = -4000;

/// `UID_MIN` when /etc/login.defs does not say: Debian's and Fedora's.
pub const DEFAULT_FIRST_USER_UID: u32 = 1000;

impl Policy {
    /// Decides protection and adjustment for one process. Pure: the facts come in the snapshot.
    pub fn evaluate(&self, p: &ProcessSnapshot) -> Verdict {
        let mut verdict = Verdict::default();
        if p.pid == self.self_pid {
            // Not even `builtin = false` makes oomward its own victim.
            verdict.protected = Some(Protection::Builtin("self"));
            return verdict;
        }
        if self.builtin
            && let Some(what) = builtin_protection(p, self.self_exe.as_deref(), self.first_user_uid)
        {
            verdict.protected = Some(Protection::Builtin(what));
            return verdict;
        }
        match p.oomd.as_ref().map(|o| o.0) {
            Some(OomdPreference::Omit) => {
                verdict.protected = Some(Protection::OomdOmit);
                return verdict;
            }
            // Below every other candidate whatever its own adj and the rules say: the
            // kernel's floor (-999 after `effective_adj`) short of never.
            Some(OomdPreference::Avoid) => verdict.adjust = OOMD_AVOID_ADJUST,
            None => {}
        }
        for rule in &self.rules {
            if !rule.matches(p) {
                continue;
            }
            match rule.action {
                Action::Protect => {
                    verdict.protected = Some(Protection::Rule(rule.line));
                    return verdict;
                }
                Action::Adjust(n) => verdict.adjust = verdict.adjust.saturating_add(n),
            }
        }
        verdict
    }
}

/// The built-in set, and the evidence each entry needs. A path alone proves nothing: any user
/// may run `/usr/bin/dbus-daemon` (with `LD_PRELOAD` making it a memory hog), through a symlink
/// or through another namespace's root, and every one of those shows the genuine file in
/// `/proc/PID/exe`. What a user cannot fake is the kernel's record of who runs it and where:
/// - the file is the host's (see `exe_in_host_mntns`);
/// - real and effective uid are system uids (below `first_user_uid`), which a user cannot
///   take: setuid helpers keep the caller's real uid, and the dynamic loader ignores
///   `LD_PRELOAD` for them; a user namespace's root shows as the user's own uid. A process that
///   root started with `LD_PRELOAD` was root's choice. (The environment is not read: reading
///   another process's memory waits on its mmap lock, which the process itself can hold.)
/// - it is not in a user's login session (`user.slice`, `user-UID.slice`), where system
///   daemons never run.
///
/// Other oomward instances need uid 0 besides.
fn builtin_protection(
    p: &ProcessSnapshot,
    self_exe: Option<&str>,
    first_user_uid: u32,
) -> Option<&'static str> {
    if p.pid == 1 {
        return Some("init");
    }
    if p.is_kernel_thread() {
        return Some("kthread");
    }
    let exe = p.exe.as_deref().filter(|_| p.exe_in_host_mntns)?;
    let system_uid = |id: Option<u32>| id.is_some_and(|u| u < first_user_uid);
    if !system_uid(p.uid) || !system_uid(p.euid) || in_user_session(p.cgroup.as_deref()) {
        return None;
    }
    if Some(exe) == self_exe || exe.ends_with("/oomward") && BUILTIN_PROTECTED_EXES.contains(&exe) {
        return (p.uid == Some(0) && p.euid == Some(0)).then_some("oomward");
    }
    BUILTIN_PROTECTED_EXES.contains(&exe).then_some("system")
}

/// Whether a cgroup path lies in a user's login session: below `user.slice` or a
/// `user-UID.slice` (systemd's layout; on a host without it nothing is).
pub fn in_user_session(cgroup: Option<&str>) -> bool {
    cgroup.is_some_and(|path| {
        path.split('/')
            .any(|c| c == "user.slice" || (c.starts_with("user-") && c.ends_with(".slice")))
    })
}

/// The adj a rule-adjusted process is ranked with: the process's own `oom_score_adj` plus the
/// rules' adjustment, clamped to -999..=1000 so a rule can never turn a killable process into an
/// adj-min one (only the administrator's own -1000 does that, and no rule undoes it).
pub fn effective_adj(oom_score_adj: i32, adjust: i32) -> i32 {
    if oom_score_adj == OOM_SCORE_ADJ_MIN {
        return OOM_SCORE_ADJ_MIN;
    }
    oom_score_adj
        .saturating_add(adjust)
        .clamp(OOM_SCORE_ADJ_MIN + 1, OOM_SCORE_ADJ_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(pid: i32, comm: &str, exe: Option<&str>, uid: u32) -> ProcessSnapshot {
        ProcessSnapshot {
            pid,
            comm: comm.into(),
            exe: exe.map(Into::into),
            exe_in_host_mntns: true,
            uid: Some(uid),
            euid: Some(uid),
            cmdline: format!("{comm} --flag"),
            cgroup: Some(if uid < DEFAULT_FIRST_USER_UID {
                "/system.slice/x.service".into()
            } else {
                "/user.slice/user-1000.slice/app".into()
            }),
            has_mm: true,
            ..ProcessSnapshot::default()
        }
    }

    fn rule(action: Action) -> Rule {
        Rule {
            exe: None,
            exe_namespace: ExeNamespace::Host,
            comm: None,
            cmdline: None,
            cgroup: None,
            uid: None,
            pod: PodMatch::default(),
            action,
            line: 10,
        }
    }

    fn policy(rules: Vec<Rule>) -> Policy {
        Policy {
            builtin: true,
            rules,
            self_pid: 4242,
            self_exe: Some("/opt/oomward/bin/oomward".into()),
            first_user_uid: DEFAULT_FIRST_USER_UID,
        }
    }

    #[test]
    fn builtin_set_protects_init_self_and_system_daemons() {
        let p = policy(vec![]);
        assert!(
            p.evaluate(&proc_(1, "init", Some("/x"), 0))
                .protected
                .is_some()
        );
        assert_eq!(
            p.evaluate(&proc_(4242, "oomward", None, 0)).protected,
            Some(Protection::Builtin("self"))
        );
        assert_eq!(
            p.evaluate(&proc_(77, "oomward", Some("/opt/oomward/bin/oomward"), 0))
                .protected,
            Some(Protection::Builtin("oomward"))
        );
        assert_eq!(
            p.evaluate(&proc_(50, "sshd", Some("/usr/sbin/sshd"), 0))
                .protected,
            Some(Protection::Builtin("system"))
        );
        assert_eq!(
            p.evaluate(&proc_(51, "sshd", Some("/home/u/sshd"), 1000))
                .protected,
            None
        );
    }

    #[test]
    fn systemd_preferences_omit_protects_avoid_sinks_to_the_floor() {
        let p = policy(vec![]);
        let with = |pref: Option<OomdPreference>, adj: i32| ProcessSnapshot {
            oomd: pref.map(|o| (o, "/system.slice/db.service".to_string())),
            oom_score_adj: adj,
            ..proc_(90, "db", Some("/usr/bin/db"), 0)
        };
        assert_eq!(
            p.evaluate(&with(Some(OomdPreference::Omit), 1000))
                .protected,
            Some(Protection::OomdOmit)
        );
        for adj in [-500, 0, 1000] {
            let v = p.evaluate(&with(Some(OomdPreference::Avoid), adj));
            assert_eq!(v.protected, None);
            assert_eq!(
                effective_adj(adj, v.adjust),
                OOM_SCORE_ADJ_MIN + 1,
                "adj {adj}"
            );
        }
        let v = p.evaluate(&with(None, 0));
        assert_eq!((v.protected, v.adjust), (None, 0));
        // The administrator's own -1000 stays what it is.
        let v = p.evaluate(&with(Some(OomdPreference::Avoid), OOM_SCORE_ADJ_MIN));
        assert_eq!(
            effective_adj(OOM_SCORE_ADJ_MIN, v.adjust),
            OOM_SCORE_ADJ_MIN
        );
    }

    /// A protected path is not enough: what a user can arrange (their own uid running the
    /// genuine file, with LD_PRELOAD, through a symlink or another namespace's root; a root
    /// process in a user's session; a setuid helper) gets no built-in protection.
    #[test]
    fn builtin_protection_needs_a_system_uid_outside_user_sessions() {
        let p = policy(vec![]);
        let dbus = |uid: u32, euid: u32, cgroup: &str| ProcessSnapshot {
            euid: Some(euid),
            cgroup: Some(cgroup.into()),
            ..proc_(70, "dbus-daemon", Some("/usr/bin/dbus-daemon"), uid)
        };
        let sys = "/system.slice/dbus.service";
        let session = "/user.slice/user-1000.slice/session-2.scope";
        for (what, snap, want) in [
            (
                "messagebus in its service",
                dbus(101, 101, sys),
                Some("system"),
            ),
            ("root in its service", dbus(0, 0, sys), Some("system")),
            (
                "a user's copy in a session",
                dbus(1000, 1000, session),
                None,
            ),
            (
                "a user's copy outside a session",
                dbus(1000, 1000, sys),
                None,
            ),
            ("root in a user's session", dbus(0, 0, session), None),
            ("setuid root run by a user", dbus(1000, 0, sys), None),
            ("a user dropped from root", dbus(0, 1000, sys), None),
            (
                "no cgroup information (no memory hierarchy)",
                ProcessSnapshot {
                    cgroup: None,
                    ..dbus(0, 0, sys)
                },
                Some("system"),
            ),
            (
                "uids unreadable",
                ProcessSnapshot {
                    uid: None,
                    ..dbus(0, 0, sys)
                },
                None,
            ),
        ] {
            let got = p.evaluate(&snap).protected;
            assert_eq!(got, want.map(Protection::Builtin), "{what}");
        }
        let oomward = |exe: &str, uid: u32| ProcessSnapshot {
            cgroup: Some("/system.slice/x.service".into()),
            ..proc_(80, "oomward", Some(exe), uid)
        };
        for (what, snap, want) in [
            (
                "installed, root",
                oomward("/usr/bin/oomward", 0),
                Some("oomward"),
            ),
            (
                "installed, a system uid",
                oomward("/usr/bin/oomward", 5),
                None,
            ),
            (
                "the running binary, root",
                oomward("/opt/oomward/bin/oomward", 0),
                Some("oomward"),
            ),
            (
                "the running binary, a system uid",
                oomward("/opt/oomward/bin/oomward", 5),
                None,
            ),
        ] {
            assert_eq!(
                p.evaluate(&snap).protected,
                want.map(Protection::Builtin),
                "{what}"
            );
        }
    }

    #[test]
    fn user_sessions_are_told_by_their_slices() {
        for (path, want) in [
            ("/user.slice/user-1000.slice/session-3.scope", true),
            ("/user.slice", true),
            ("/user-1000.slice/app.scope", true),
            ("/system.slice/sshd.service", false),
            ("/kubepods/pod1/c1", false),
            ("/userdata.slice", false),
        ] {
            assert_eq!(in_user_session(Some(path)), want, "{path}");
        }
        assert!(!in_user_session(None));
    }

    #[test]
    fn builtin_false_clears_the_set_but_never_self() {
        let mut p = policy(vec![]);
        p.builtin = false;
        assert_eq!(
            p.evaluate(&proc_(50, "sshd", Some("/usr/sbin/sshd"), 0))
                .protected,
            None
        );
        assert!(
            p.evaluate(&proc_(4242, "oomward", None, 0))
                .protected
                .is_some()
        );
    }

    #[test]
    fn exe_in_another_mount_namespace_does_not_match_by_default() {
        let p = policy(vec![]);
        let mut container_sshd = proc_(60, "sshd", Some("/usr/sbin/sshd"), 0);
        container_sshd.exe_in_host_mntns = false;
        assert_eq!(p.evaluate(&container_sshd).protected, None);

        let mut r = rule(Action::Protect);
        r.exe = Some(Glob::new("/usr/sbin/sshd").unwrap());
        r.exe_namespace = ExeNamespace::Any;
        assert!(
            policy(vec![r])
                .evaluate(&container_sshd)
                .protected
                .is_some()
        );
    }

    #[test]
    fn all_matchers_must_match() {
        let mut r = rule(Action::Protect);
        r.exe = Some(Glob::new("/usr/bin/*").unwrap());
        r.uid = Some(0);
        let p = policy(vec![r]);
        assert!(
            p.evaluate(&proc_(70, "x", Some("/usr/bin/x"), 0))
                .protected
                .is_some()
        );
        // another user running the same program
        assert!(
            p.evaluate(&proc_(71, "x", Some("/usr/bin/x"), 1000))
                .protected
                .is_none()
        );
        // a user's own binary that merely takes the name
        assert!(
            p.evaluate(&proc_(72, "x", Some("/home/u/x"), 0))
                .protected
                .is_none()
        );
        // an unreadable exe never matches an exe rule
        assert!(p.evaluate(&proc_(73, "x", None, 0)).protected.is_none());
    }

    #[test]
    fn star_stays_in_one_component_and_double_star_crosses() {
        let one = Glob::new("/kubepods/*").unwrap();
        let any = Glob::new("/kubepods/**").unwrap();
        assert!(one.is_match("/kubepods/pod1"));
        assert!(!one.is_match("/kubepods/pod1/ctr"));
        assert!(any.is_match("/kubepods/pod1/ctr"));
        assert!(!any.is_match("/system.slice"));
    }

    #[test]
    fn adjustments_add_up_and_protect_wins() {
        let mut prefer = rule(Action::Adjust(300));
        prefer.comm = Some(Regex::new("^java$").unwrap());
        let mut also = rule(Action::Adjust(-100));
        also.cgroup = Some(Glob::new("/user.slice/**").unwrap());
        let p = policy(vec![prefer.clone(), also.clone()]);
        assert_eq!(p.evaluate(&proc_(80, "java", None, 1000)).adjust, 200);
        assert_eq!(p.evaluate(&proc_(81, "javac", None, 1000)).adjust, -100);

        let mut protect = rule(Action::Protect);
        protect.cmdline = Some(Regex::new("--flag").unwrap());
        protect.line = 33;
        let p = policy(vec![prefer, protect, also]);
        assert_eq!(
            p.evaluate(&proc_(82, "java", None, 1000)).protected,
            Some(Protection::Rule(33))
        );
    }

    #[test]
    fn spoofable_protect_rules_are_recognised() {
        let mut r = rule(Action::Protect);
        r.comm = Some(Regex::new("sshd").unwrap());
        assert!(r.protects_by_spoofable_names_only());
        r.uid = Some(0);
        assert!(!r.protects_by_spoofable_names_only());
        let mut a = rule(Action::Adjust(-500));
        a.comm = Some(Regex::new("sshd").unwrap());
        assert!(!a.protects_by_spoofable_names_only());
    }

    #[test]
    fn effective_adj_clamps_and_keeps_adj_min() {
        assert_eq!(effective_adj(0, 300), 300);
        assert_eq!(effective_adj(900, 300), 1000);
        assert_eq!(effective_adj(-500, -900), -999);
        assert_eq!(effective_adj(-1000, 2000), -1000);
        assert_eq!(effective_adj(0, i32::MIN), -999);
    }
}
