//! The log schema: every field a log entry may carry, with its type, and every kind of entry
//! (`event=`) with the `MESSAGE_ID` its journal entries carry (systemd's catalog convention).
//!
//! It is what `--log-format json` and the journal promise a reader: a field has one type in
//! every entry, and a number is a number, never a placeholder word. The schema's version is
//! raised when a field changes meaning or type or goes away; adding one does not raise it.
//! `oomward log-schema` prints it. Lines are checked against it as they are built (in debug
//! builds, which every test runs), so a field cannot drift from what is written here.

use super::Value;

/// The schema's version: JSON lines carry it as `schema`, journal entries as
/// `OOMWARD_SCHEMA`.
pub const VERSION: u32 = 1;

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: names, paths, words.
    Text,
    /// A whole number.
    Count,
    /// A number of bytes (shown in MiB to people).
    Bytes,
    /// A number of pages (shown in MiB to people).
    Pages,
    /// Milliseconds.
    Millis,
    /// A number with a fraction.
    Float,
    /// true or false.
    Flag,
}

impl Kind {
    /// The name `log-schema` prints.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Count => "integer",
            Kind::Bytes => "integer (bytes)",
            Kind::Pages => "integer (pages)",
            Kind::Millis => "integer (ms)",
            Kind::Float => "number",
            Kind::Flag => "boolean",
        }
    }

    /// Whether `v` is of this type.
    pub fn holds(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (Kind::Text, Value::Text(_))
                | (Kind::Float, Value::Float(_))
                | (Kind::Flag, Value::Bool(_))
                | (
                    Kind::Count | Kind::Bytes | Kind::Pages | Kind::Millis,
                    Value::Int(_) | Value::UInt(_)
                )
        )
    }
}

use Kind::*;

/// Every field: its name, type and meaning.
#[rustfmt::skip]
pub const FIELDS: &[(&str, Kind, &str)] = &[
    ("address", Text, "where the metrics server listens"),
    ("adj", Count, "an oom_score_adj"),
    ("after_ms", Millis, "how long after the first signal"),
    ("available", Bytes, "the scope's available memory when sampled"),
    ("available_after", Bytes, "available memory after the victim's memory came back"),
    ("available_at_exit", Bytes, "available memory at the sample that saw the victim's exit"),
    ("badness", Count, "the kernel's oom_badness of the process, in points"),
    ("builtin_protection", Flag, "whether the built-in protection is on"),
    ("candidates", Text, "the processes considered, best first, comma-separated"),
    ("cause", Text, "why nothing could be done: where the memory is"),
    ("cgroup", Text, "a cgroup path"),
    ("comm", Text, "the process's name (/proc/PID/comm), odd bytes as \\xNN"),
    ("companions", Count, "processes sharing the victim's memory, signalled with it"),
    ("config", Text, "the config files, in order"),
    ("container", Text, "the container's name (Kubernetes)"),
    ("container_id", Text, "the container's id (Kubernetes)"),
    ("count", Count, "how many"),
    ("detail", Text, "what the warning says"),
    ("domain", Text, "the OOM domain: the cgroup whose limit is reached, or system"),
    ("dropped", Count, "how many were dropped"),
    ("dry_run", Flag, "whether the daemon decides and reports without signalling"),
    ("eligible", Count, "candidates that may be chosen"),
    ("enough", Flag, "whether the victim's kill is expected to free what the domain needs"),
    ("error", Text, "what failed"),
    ("eta_ms", Millis, "the projected time until the domain runs out; absent when not filling"),
    ("event", Text, "the kind of entry (see the events)"),
    ("events", Flag, "whether kernel events wake the loop"),
    ("exe", Text, "the executable's path, odd bytes as \\xNN"),
    ("exe_root", Text, "where executables are read from (PID 1's root)"),
    ("exit_code", Count, "a hook's exit code"),
    ("exit_ms", Millis, "from the signal to the victim's exit"),
    ("expected", Bytes, "what the victim's kill was expected to free"),
    ("expected_gain", Bytes, "what the victim's kill was expected to free"),
    ("file", Text, "a file"),
    ("fill_rate", Bytes, "bytes a second at which the domain fills"),
    ("freed", Bytes, "what came back after the victim's exit (negative: the domain kept filling)"),
    ("full_avg10", Float, "PSI full avg10, percent"),
    ("gain", Bytes, "what killing this process would free"),
    ("gain_total", Bytes, "what killing every candidate would free"),
    ("grace", Text, "kill.grace"),
    ("high", Bytes, "the memory.high set"),
    ("hook", Text, "which hook: warn, pre_kill, post_kill"),
    ("instead_of", Count, "the pid of the process that was ranked first (its own child was chosen instead)"),
    ("kernel_kills", Count, "kills by the kernel's OOM killer"),
    ("kill_at_bytes", Bytes, "the system's kill level in bytes"),
    ("kills", Count, "kills by oomward"),
    ("kills_last_minute", Count, "kills in the last minute"),
    ("largest_outside", Text, "the largest cgroup in the domain that is not watched"),
    ("largest_outside_usage", Bytes, "its usage"),
    ("leftovers_killed", Count, "processes a hook left behind, killed"),
    ("level", Text, "the scope's level: ok, warn, term, kill"),
    ("limit", Bytes, "the domain's limit (memory.max, limit_in_bytes, or MemTotal + swap)"),
    ("limited", Count, "watched cgroups with a limit"),
    ("lines", Count, "log lines"),
    ("max_interval", Text, "daemon.max_interval"),
    ("max_per_minute", Count, "hooks.max_per_minute"),
    ("mem_total", Bytes, "MemTotal"),
    ("members", Count, "processes of a victim signalled together"),
    ("members_fill_rate", Bytes, "bytes a second at which the watched members fill"),
    ("memory_cgroup", Text, "the memory cgroup hierarchy: v1, v2 or hybrid"),
    ("message", Text, "the entry's text for people"),
    ("min_gain", Bytes, "the least a kill must free"),
    ("min_interval", Text, "daemon.min_interval"),
    ("mlockall", Text, "whether the daemon's memory is locked, or why not"),
    ("mrelease", Text, "what process_mrelease did with the victim's memory"),
    ("namespace", Text, "the pod's namespace (Kubernetes)"),
    ("need", Bytes, "what the domain needs to leave its level"),
    ("nice", Text, "the daemon's nice value, or why it could not be set"),
    ("nofile", Text, "the daemon's descriptor limit, or why it could not be raised"),
    ("oom_score_adj", Count, "the process's oom_score_adj"),
    ("oom_score_adj_min", Text, "whether the daemon's oom_score_adj is -1000, or why not"),
    ("outcome", Text, "how it ended"),
    ("own", Text, "the daemon's mount namespace"),
    ("path", Text, "a path"),
    ("pgtables_pages", Pages, "the process's page tables"),
    ("pid", Count, "a process id"),
    ("pid1", Text, "PID 1's mount namespace, or unreadable"),
    ("pod", Text, "the pod's name (Kubernetes)"),
    ("pod_uid", Text, "the pod's uid (Kubernetes)"),
    ("policy_adjust", Count, "what the policy's rules add to the badness"),
    ("processes", Count, "processes considered"),
    ("program", Text, "a hook's program"),
    ("qos", Text, "the pod's QoS class (Kubernetes)"),
    ("ran_ms", Millis, "how long a hook ran"),
    ("rank_score", Count, "the badness after policy, as ranked"),
    ("realtime", Text, "the daemon's scheduling class, or why it could not be set"),
    ("reason", Text, "why this signal: term, kill, eta, stall, rescue, keep_up"),
    ("records", Count, "kill records"),
    ("rescue", Flag, "whether it was a rescue of a hung cgroup"),
    ("room_ms", Millis, "the headroom the projection left for an exit; absent when not filling"),
    ("root", Text, "the root the daemon reads"),
    ("rss_anon_pages", Pages, "the process's private anonymous memory"),
    ("rss_pages", Pages, "the process's resident memory, as oom_badness counts it"),
    ("rss_shmem_pages", Pages, "the process's resident shared memory"),
    ("rules", Count, "the config's rules"),
    ("running_on", Text, "the config the daemon runs on instead"),
    ("scope", Text, "the watched scope: system or a cgroup path"),
    ("shmem", Bytes, "shared memory and tmpfs charged to the domain; absent when unknown"),
    ("shmem_mib", Count, "the same in MiB"),
    ("sigkilled", Text, "the processes sent SIGKILL, comma-separated"),
    ("signal", Text, "a signal's name"),
    ("signal_rule", Text, "which rule chose the signal: term_level, room, no_room, kill_level, stall, rescue"),
    ("signals", Text, "the signals sent, comma-separated"),
    ("skipped", Count, "how many were skipped"),
    ("some_avg10", Float, "PSI some avg10, percent"),
    ("source", Text, "which kernel event"),
    ("sources", Text, "the kernel events armed, comma-separated"),
    ("stall", Text, "the stall term that fired and its value"),
    ("state", Text, "the process's state (/proc/PID/stat)"),
    ("stderr", Text, "what a hook wrote on stderr (bounded)"),
    ("swap_pages", Pages, "the process's swap"),
    ("system", Text, "the system scope's state"),
    ("system_mem_available_kill", Text, "system.mem_available_kill"),
    ("system_mem_available_term", Text, "system.mem_available_term"),
    ("system_swap_free_kill", Text, "system.swap_free_kill"),
    ("system_swap_free_term", Text, "system.swap_free_term"),
    ("term_at_bytes", Bytes, "the system's term level in bytes"),
    ("term_exit_ms", Millis, "how long an exit after SIGTERM is expected to take"),
    ("total_pages", Pages, "T: the scope's RAM + swap or limit, as oom_badness counts it"),
    ("uid", Count, "a user id (-1: unknown)"),
    ("unreadable", Count, "processes that could not be read"),
    ("used", Bytes, "the victim's memory"),
    ("user", Text, "the user's name"),
    ("vanished", Count, "processes gone during the scan"),
    ("version", Text, "the daemon's version"),
    ("victim_alive", Flag, "whether the victim is still there"),
    ("wait_ms", Millis, "how long the daemon waits"),
    ("waited_ms", Millis, "how long the daemon waited"),
    ("wake", Text, "what woke the loop"),
    ("warn_at", Count, "kill.warn_kills_per_minute"),
];

/// Every kind of entry: its `event=` word, its `MESSAGE_ID`, and what it says.
#[rustfmt::skip]
pub const EVENTS: &[(&str, &str, &str)] = &[
    ("start", "67d378b0ada444898b3c1b41a963f469", "the daemon started, with its config and what it could set up"),
    ("reload", "0fa2af8d27b04e1e9c59762c4f3284cf", "a new config replaced the running one, or a reload was refused"),
    ("stop", "e392f7e74a48402090804fd60a13cf43", "the daemon is stopping on a signal"),
    ("config_error", "2c6223a13289401c8c1ee0ab5edfac4f", "the config does not load; the daemon runs on the last good one"),
    ("config_warning", "b3b0b9569e0c473bab1df94b137223c3", "the config loads but probably does not say what was meant"),
    ("last_good_error", "a74d79d5b01e49cf9fa7d332189d7d32", "the last good config could not be kept"),
    ("self_protect", "d7593c3a5f5c4e84a556aae573eb5711", "what the daemon did to survive the shortage it fights"),
    ("mount_namespace", "19c49dc20d934481a2adbe6e30e8baf4", "the daemon runs in a mount namespace of its own; exe rules read the host's files"),
    ("unprivileged", "e5dca9349fba420ea07adfc51f1ef4b5", "not running as root: what that leaves out"),
    ("subreaper", "6ac33818bf694cd087f09ea4d9f753f2", "the daemon could not become the subreaper of its hooks' descendants"),
    ("resident", "4a23eb3845e046809018b099bd3427ef", "the daemon could not give back the pages start-up touched, or lock what it keeps"),
    ("events_armed", "bccf9b9acdd54da885641056aabd1aca", "kernel events (memcg thresholds, PSI triggers) wake the loop for a scope"),
    ("events_unavailable", "be6dbb80306049518ea66810b22c863a", "kernel events could not be started; the loop polls"),
    ("scope_added", "b32b0775bf764e3eae8091bd56608e52", "a watched cgroup appeared"),
    ("scope_removed", "6d8804c5e6ea4c6b88e56cd984e7d9b1", "a watched cgroup went away"),
    ("scope_unreadable", "883ea3a382ed4887988ad0da2a2816d8", "a watched cgroup could not be read"),
    ("pressure", "e46fe4941df5433fa2b7fcf6269c4d84", "a scope crossed into or out of a level"),
    ("warn", "ea020057224a4181a275486a42135b4d", "a scope reached its warn level; the likely victim is named"),
    ("term", "ccb668d3f9e848bdbd051b8e74a587c2", "a process was chosen and sent SIGTERM"),
    ("kill", "b0cb3849d838473bab29f98169b4c775", "a process was chosen and sent SIGKILL"),
    ("rescue", "4334e30ae19347ce89544cd4d0d2b765", "a process of a cgroup hung in OOM was sent SIGKILL"),
    ("escalate", "d12b1e1ec6364fc7ad2b3984aaee8769", "a victim asked to exit did not, and got SIGKILL"),
    ("exit", "294cf82d419d4b9db53c7576e624cdb6", "a victim exited"),
    ("stuck", "d5293acb86da4dfda60095b36b608e76", "a SIGKILLed victim did not exit in time and was given up on"),
    ("gone_before_signal", "90f52aa76d384d349b4bcb659719f886", "the chosen process exited before it was signalled"),
    ("unverifiable", "abdbdb002843454a9eade896c8cf532e", "the chosen process could not be verified as the one ranked, and was not signalled"),
    ("report", "282dcc9002ea418a822834b90c1dfef8", "the whole story of one kill, as the kill journal keeps it"),
    ("no_candidate", "d544295cabbb451fb8de5fe8581b93b3", "nothing in the scope could be chosen"),
    ("futile", "b56fc4818287444abea45392897d2a17", "no kill could free what the domain needs; the daemon leaves it to the kernel"),
    ("barren", "e5e2e2957c674438b98f3640e7792a3d", "a kill gave back less than expected while the domain kept filling"),
    ("kill_rate", "3b6c881734dd493181e5c80d770578ef", "more kills in a minute than kill.warn_kills_per_minute"),
    ("kernel_oom_kill", "458ba6f160534360961b7c3b839a006c", "the kernel's OOM killer acted in a watched scope"),
    ("under_oom_cleared", "891b63ec4ae141669336f70543828abd", "a cgroup hung in OOM is no longer"),
    ("recovered", "4bc40102ce284fafb0f6bdf6c4172b85", "a scope left its levels after an episode"),
    ("steady", "a7a8c75dd95c499fb74a7ea2046fb4ae", "a domain is no longer filling after an episode"),
    ("hook", "ceea630854b14d80ac6f4bdd4a5e3445", "a hook ran, and how it ended"),
    ("hook_skipped", "d6a7573cc5474ff48060fe488600290a", "hooks were skipped by hooks.max_per_minute"),
    ("hook_late", "8b55a402d09f43899fb4048ca3b7c4e3", "a kill went on without waiting for its pre_kill hook"),
    ("hook_alongside", "5b2d04fe5bc049e09db9be1a2c5aaa0a", "a pre_kill hook runs alongside its kill: there was no time to wait"),
    ("notify", "b0552a448b514fd4b82c8447b71d3e09", "a desktop notification was sent or failed"),
    ("notify_error", "88c4ed60a8cc481da33d4b26e76521d7", "the notification thread could not start"),
    ("notify_dropped", "bb49fb033f0c445c89c41cb0453839da", "notifications were dropped by a full queue"),
    ("journal_error", "aaf33e6d5f93456ca8f86fec54be3d29", "the kill journal could not be written"),
    ("journal_dropped", "4d2706d3f726457592d63c2d04693c39", "kill records were dropped: the journal's writer was behind"),
    ("log_dropped", "2919fcfd8ff945e385310b2dab659abb", "log lines were dropped: the log writer was behind"),
    ("metrics_listen", "1bcfaafa09f84853adbc623ba287c298", "the metrics server listens here"),
    ("metrics_error", "5667124eeff84f55b8e2df91f9962fed", "the metrics could not be served or written"),
    ("status_error", "917f8f9948f3411e87622eea9e7e3ee9", "the status file could not be written"),
    ("tripwire_set", "de1c5aa1a85a474396122aea505e49a5", "memory.high was set just below a cgroup's term level"),
    ("tripwire_restored", "cfad65ff79d44d9cb7cfa32f7873c598", "a cgroup's memory.high was given back"),
    ("tripwire_refused", "96e9326a02bc405ab8c923961429d214", "memory.high could not be set as a tripwire"),
    ("tripwire_yielded", "2366b4ae4b6349e9b0a4bc9778ecb541", "someone else set memory.high; the tripwire stepped aside"),
    ("tripwire_state", "da867fc1f66449b8a6b624635e258674", "the record of tripwires set could not be read or written"),
    ("tripwires_lifted", "7778a079dd6345d4868350284de5a106", "tripwires left by an earlier run were lifted"),
];

/// A field's type, when the schema has it.
pub fn kind_of(key: &str) -> Option<Kind> {
    FIELDS.iter().find(|(n, ..)| *n == key).map(|(_, k, _)| *k)
}

/// An event's `MESSAGE_ID`.
pub fn message_id(event: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|(n, ..)| *n == event)
        .map(|(_, id, _)| *id)
}

/// The schema as text, for `oomward log-schema`.
pub fn describe() -> String {
    let mut o = format!("oomward log schema, version {VERSION}\n\nFIELDS\n");
    for (name, kind, doc) in FIELDS {
        o.push_str(&format!("  {name:<26} {:<16} {doc}\n", kind.name()));
    }
    o.push_str("\nEVENTS (event=, MESSAGE_ID)\n");
    for (name, id, doc) in EVENTS {
        o.push_str(&format!("  {name:<20} {id}  {doc}\n"));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_are_unique_and_ids_are_128_bit_hex() {
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len(), "a field twice");
        let mut ids: Vec<&str> = EVENTS.iter().map(|e| e.1).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), EVENTS.len(), "an id or an event twice");
        for (_, id, _) in EVENTS {
            assert!(
                id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
        }
    }
}
