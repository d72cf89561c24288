//! The second step of loading: what the config names on this machine. User names become uids
//! from the system's `/etc/passwd` (read as a file, see [`Passwd`]), and each `[[rule]]`'s keys
//! become a [`Rule`] once the checks that involve more than one of its keys hold.

use super::keys::{RawRule, RuleKeys};
use super::kind::UserRef;
use super::{ConfigError, Hooks, Notify, Source, Val};
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

fn span<T>(v: &Val<T>) -> Option<std::ops::Range<usize>> {
    v.as_ref().map(|s| s.span())
}

/// The hooks' user, which must exist when a hook is set and must not be root; and the users to
/// notify, which must exist and not be root.
pub(super) fn accounts(
    src: &Source,
    (hooks, hooks_user): (&Hooks, &Val<String>),
    (notify, notify_users): (&Notify, &Val<Vec<String>>),
    passwd: &Passwd,
) -> Result<Accounts, ConfigError> {
    let any_hook =
        !(hooks.pre_kill.is_empty() && hooks.post_kill.is_empty() && hooks.warn.is_empty());
    let name = &hooks.user;
    let hooks = match passwd.by_name(name) {
        Some(a) if a.uid == 0 => {
            return Err(src.err(
                span(hooks_user),
                "hooks.user",
                format!("{name:?} is root: hooks run without privileges (a hook that needs them can ask a service that has them)"),
            ));
        }
        Some(a) => Some((a.uid, a.gid)),
        None if any_hook => {
            return Err(src.err(
                span(hooks_user),
                "hooks.user",
                format!("no user named {name:?} in /etc/passwd"),
            ));
        }
        None => None,
    };
    let mut notify_uids = Vec::new();
    for name in &notify.users {
        let why = match passwd.by_name(name) {
            Some(a) if a.uid != 0 => {
                notify_uids.push(a.uid);
                continue;
            }
            Some(_) => format!("{name:?} is root: notifications go to users' session buses"),
            None => format!("no user named {name:?} in /etc/passwd"),
        };
        return Err(src.err(span(notify_users), "notify.users", why));
    }
    Ok(Accounts {
        hooks,
        notify: notify_uids,
    })
}

/// The `i`th (0-based) rule, compiled: one action, at least one matcher, `exe_namespace` only
/// beside an `exe`, a user name that exists.
pub(super) fn rule(
    src: &Source,
    keys: &RuleKeys,
    raw: &RawRule,
    i: usize,
    passwd: &Passwd,
) -> Result<Rule, ConfigError> {
    let name = format!("rule[{}]", i + 1);
    let key = |k: &str| format!("{name}.{k}");
    let header = src.header("rule", i);
    if keys.exe.is_none() && raw.exe_namespace.is_some() {
        return Err(src.err(
            span(&raw.exe_namespace),
            &key("exe_namespace"),
            "exe_namespace applies to an exe matcher, and this rule has none",
        ));
    }
    let uid = match &keys.user {
        None => None,
        Some(UserRef::Uid(uid)) => Some(*uid),
        Some(UserRef::Name(n)) => Some(passwd.by_name(n).map(|a| a.uid).ok_or_else(|| {
            src.err(
                span(&raw.user),
                &key("user"),
                format!("no user named {n:?} in /etc/passwd (a numeric uid is accepted too)"),
            )
        })?),
    };
    let pod = PodMatch {
        qos: keys.qos,
        namespace: keys.namespace.clone(),
        pod: keys.pod.clone(),
        container: keys.container.clone(),
    };
    let matchers = [
        keys.exe.is_some(),
        keys.comm.is_some(),
        keys.cmdline.is_some(),
    ];
    if !matchers.contains(&true) && keys.cgroup.is_none() && uid.is_none() && pod.is_empty() {
        return Err(src
            .err(None, &name, "a rule needs at least one of exe, comm, cmdline, cgroup, user, qos, namespace, pod, container")
            .at(header.clone()));
    }
    let action = match (keys.adjust, keys.protect == Some(true)) {
        (Some(_), true) => {
            return Err(src.err(
                span(&raw.adjust),
                &key("adjust"),
                "a rule either protects or adjusts, not both",
            ));
        }
        (Some(a), false) => Action::Adjust(a),
        (None, true) => Action::Protect,
        (None, false) => {
            return Err(src
                .err(
                    span(&raw.protect),
                    &key("protect"),
                    "the rule does nothing: set protect = true or an adjust",
                )
                .at(src.loc(span(&raw.protect)).or(header.clone())));
        }
    };
    Ok(Rule {
        exe: keys.exe.clone(),
        exe_namespace: keys.exe_namespace.unwrap_or(ExeNamespace::Host),
        comm: keys.comm.clone(),
        cmdline: keys.cmdline.clone(),
        cgroup: keys.cgroup.clone(),
        uid,
        pod,
        action,
        line: header.map_or(0, |l| l.line),
    })
}
