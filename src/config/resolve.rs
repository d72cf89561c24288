//! The second step of loading: what the config names on this machine. User names become uids
//! from the system's `/etc/passwd` (read as a file, see [`Passwd`]), and each `[[rule]]`'s keys
//! become a [`Rule`] once the checks that involve more than one of its keys hold.

use super::keys::RuleKeys;
use super::kind::UserRef;
use super::source::{Keys, Layers};
use super::{Config, ConfigError};
use crate::policy::{Action, ExeNamespace, PodMatch, Rule};
use crate::probe::passwd::Passwd;

/// Who hooks run as and whom notifications go to, found in the system's accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// The hooks' uid and primary gid (`None` when no hook is set and the user does not exist).
    pub hooks: Option<(u32, u32)>,
    /// The uids of `notify.users`, in order.
    pub notify: Vec<u32>,
}

/// The hooks' user, which must exist when a hook is set, and the users to notify, which must
/// exist; none of them root.
pub(super) fn accounts(
    c: &Config,
    layers: &Layers,
    passwd: &Passwd,
) -> Result<Accounts, ConfigError> {
    let h = &c.hooks;
    let any_hook = [&h.pre_kill, &h.post_kill, &h.warn]
        .iter()
        .any(|argv| !argv.is_empty());
    let (name, keys) = (&h.user, layers.table("hooks"));
    let hooks = match passwd.by_name(name) {
        Some(a) if a.uid == 0 => {
            let why = format!(
                "{name:?} is root: hooks run without privileges (a hook that needs them can ask a service that has them)"
            );
            return Err(keys.err("user", "hooks.user", why));
        }
        Some(a) => Some((a.uid, a.gid)),
        None if any_hook => {
            let why = format!("no user named {name:?} in /etc/passwd");
            return Err(keys.err("user", "hooks.user", why));
        }
        None => None,
    };
    let notify = c
        .notify
        .users
        .iter()
        .map(|name| match passwd.by_name(name) {
            Some(a) if a.uid != 0 => Ok(a.uid),
            Some(_) => Err(format!(
                "{name:?} is root: notifications go to users' session buses"
            )),
            None => Err(format!("no user named {name:?} in /etc/passwd")),
        });
    let notify = notify.collect::<Result<_, _>>();
    let notify = notify.map_err(|why| layers.table("notify").err("users", "notify.users", why))?;
    Ok(Accounts { hooks, notify })
}

/// The `i`th (0-based) rule, compiled: one action, at least one matcher, `exe_namespace` only
/// beside an `exe`, a user name that exists, not protecting everything. Protection a local user
/// can claim is warned about.
pub(super) fn rule(
    (keys, raw): (&RuleKeys, &Keys),
    i: usize,
    passwd: &Passwd,
    warnings: &mut Vec<String>,
) -> Result<Rule, ConfigError> {
    let name = format!("rule[{}]", i + 1);
    let err = |key: &str, why: String| raw.err(key, &format!("{name}.{key}"), why);
    if keys.exe.is_none() && keys.exe_namespace.is_some() {
        let why = "exe_namespace applies to an exe matcher, and this rule has none";
        return Err(err("exe_namespace", why.into()));
    }
    let uid = match &keys.user {
        Some(UserRef::Name(n)) => Some(passwd.by_name(n).map(|a| a.uid).ok_or_else(|| {
            let why = format!("no user named {n:?} in /etc/passwd (a numeric uid is accepted too)");
            err("user", why)
        })?),
        Some(UserRef::Uid(uid)) => Some(*uid),
        None => None,
    };
    let pod = PodMatch {
        qos: keys.qos,
        namespace: keys.namespace.clone(),
        pod: keys.pod.clone(),
        container: keys.container.clone(),
    };
    let globs = [
        keys.exe.is_some(),
        keys.comm.is_some(),
        keys.cmdline.is_some(),
        keys.cgroup.is_some(),
    ];
    if !globs.contains(&true) && uid.is_none() && pod.is_empty() {
        let why = "a rule needs at least one of exe, comm, cmdline, cgroup, user, qos, namespace, pod, container";
        return Err(raw.err("", &name, why));
    }
    let action = match (keys.adjust, keys.protect == Some(true)) {
        (Some(_), true) => {
            let why = "a rule either protects or adjusts, not both";
            return Err(err("adjust", why.into()));
        }
        (Some(a), false) => Action::Adjust(a),
        (None, true) => Action::Protect,
        (None, false) => {
            let why = "the rule does nothing: set protect = true or an adjust";
            return Err(err("protect", why.into()));
        }
    };
    let rule = Rule {
        exe: keys.exe.clone(),
        exe_namespace: keys.exe_namespace.unwrap_or(ExeNamespace::Host),
        comm: keys.comm.clone(),
        cmdline: keys.cmdline.clone(),
        cgroup: keys.cgroup.clone(),
        uid,
        pod,
        action,
        line: raw.place.line.unwrap_or(0),
    };
    if action == Action::Protect && rule.matches(&crate::policy::sentinel_process()) {
        let why = "protects every process (its matchers match anything): narrow it with an exact exe, a user or a cgroup";
        return Err(raw.err("", &name, why));
    }
    let place = format!("{}:{}: {name}", raw.place.file, rule.line);
    if rule.protects_by_spoofable_names_only() {
        warnings.push(format!("{place}: protects by comm/cmdline alone; any user can give a process that name. Add exe, user or cgroup."));
    }
    if rule.protects_by_exe_alone() {
        warnings.push(format!("{place}: protects by exe alone; any user allowed to run it gets the protection (with LD_PRELOAD, for any program). Add user or cgroup (e.g. cgroup = \"/system.slice/**\")."));
    }
    Ok(rule)
}
