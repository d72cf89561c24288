//! The daemon's life: load the config, protect itself, then the one loop: wait for a wake-up
//! (the adaptive timer, a kernel event or a signal, the latter two delivered over one channel),
//! run an enforcement round, repeat. SIGHUP reloads the config (an invalid one is reported and the running one kept);
//! SIGTERM and SIGINT stop it cleanly.

use crossbeam_channel::{RecvTimeoutError, bounded};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Config, ConfigError, ConfigOrigin, LogFormat, format_duration};
use crate::enforce::{Enforcer, Wake};
use crate::events::{Events, Wakeup};
use crate::probe::Host;
use crate::probe::meminfo::MemInfo;
use crate::report::metrics::{self, Metrics};
use crate::report::{Line, Logger, ServiceManager, Severity};
use crate::sys;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config at start is invalid: refuse to start.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config asks for more than this machine has.
    #[error("{0}")]
    Unfit(String),
    /// Setting up signal handling or reading the host failed.
    #[error("{0}")]
    Setup(String),
}

/// Runs until SIGTERM or SIGINT. `log_format` (from the command line) overrides the config's.
pub fn run(
    origin: &ConfigOrigin,
    force_dry_run: bool,
    log_format: Option<LogFormat>,
) -> Result<(), DaemonError> {
    let host = Host::discover(std::path::Path::new("/"))
        .map_err(|e| DaemonError::Setup(format!("cannot read the host: {e}")))?;
    let (config, fallback) = start_config(origin, &host);
    // Files only root may change, or no start at all: this is no typo a fallback could mend.
    state_dirs_safe(&config).map_err(DaemonError::Unfit)?;
    let (tx, rx) = bounded::<Wakeup>(16);
    start_signal_thread(tx.clone())?;
    let (reload, loaded) = start_loader(origin.clone())?;
    let mut log = Logger::new(config.daemon.log);
    log.set_format(log_format.unwrap_or(config.daemon.log_format));
    let locked = start_up(&mut log, &config, &host, force_dry_run, fallback.as_ref());
    let mut enforcer = Enforcer::new(config, host.clone(), force_dry_run);
    enforcer
        .set_config_error(fallback.map(|f| format!("{} (running on {})", f.error, f.running_on)));
    enforcer.record_tripwires(crate::act::tripwire::default_state(), &mut log);
    match Events::start(tx) {
        Ok(events) => enforcer.attach_events(events),
        Err(e) => log.log(
            Severity::Warning,
            &Line::new("cannot start the kernel event thread, polling only")
                .kv("event", "events_unavailable")
                .kv("error", e),
        ),
    }
    let mut service = ServiceManager::from_env();
    let mut outputs = Outputs {
        root: host.root.clone(),
        ..Outputs::default()
    };
    outputs.apply(&mut enforcer, &mut log);
    if locked {
        keep_loop_resident(&mut log);
    }
    let mut wake = Wake::Timer;
    loop {
        let mut sleep = enforcer.round(&mut log, wake);
        outputs.after_round(&mut enforcer, &mut log);
        service.after_round(std::time::Instant::now(), enforcer.status());
        if let Some(cap) = service.max_sleep() {
            sleep = sleep.min(cap);
        }
        let got = crossbeam_channel::select! {
            recv(rx) -> w => w.map(Got::Wakeup).map_err(|_| RecvTimeoutError::Disconnected),
            recv(loaded) -> c => c.map(Got::Loaded).map_err(|_| RecvTimeoutError::Disconnected),
            default(sleep) => Err(RecvTimeoutError::Timeout),
        };
        match got {
            Err(RecvTimeoutError::Timeout) => wake = Wake::Timer,
            Ok(Got::Wakeup(Wakeup::Event(source, id))) => wake = Wake::Event(source, id),
            Ok(Got::Wakeup(Wakeup::Signal(SIGHUP))) => {
                // Read and checked on the loader thread: the loop goes on sampling meanwhile.
                // A storm of SIGHUPs while one load runs is one more load, not many.
                wake = Wake::Signal;
                let _ = reload.try_send(());
            }
            Ok(Got::Loaded(result)) => {
                wake = Wake::Signal;
                let reloading = Reloading {
                    host: &host,
                    force_dry_run,
                    log_format,
                };
                reloading.apply(*result, &mut enforcer, &mut outputs, &mut log);
            }
            Ok(Got::Wakeup(Wakeup::Signal(sig))) => {
                stop(sig, &mut service, &mut enforcer, log);
                return Ok(());
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(DaemonError::Setup(
                    "the signal and event threads ended".into(),
                ));
            }
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP become wake-ups of the loop, from a thread of their own.
fn start_signal_thread(tx: crossbeam_channel::Sender<Wakeup>) -> Result<(), DaemonError> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| DaemonError::Setup(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("oomward-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(Wakeup::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .map(drop)
        .map_err(|e| DaemonError::Setup(format!("cannot start the signal thread: {e}")))
}

/// Before the first round: the daemon made safe from the OOM it fights and the subreaper of
/// its hooks' descendants, the config kept as the last good one (when it is not itself a
/// fallback), and the start said with everything that is not as asked. True when its memory
/// is locked.
fn start_up(
    log: &mut Logger,
    config: &Config,
    host: &Host,
    force_dry_run: bool,
    fallback: Option<&Fallback>,
) -> bool {
    let locked = protect_self(log, config.daemon.realtime);
    if let Err(e) = crate::act::children::contain_descendants() {
        log.log(
            Severity::Warning,
            &Line::event("subreaper", "cannot become the subreaper of the hooks' descendants: what a hook leaves behind may outlive it")
                .kv("error", e),
        );
    }
    // Kept before the start is said: a stop right after it finds it.
    if fallback.is_none() {
        save_last_good(config, log);
    }
    announce(log, config, host, force_dry_run, "start");
    if let Some(f) = fallback {
        log.log(
            Severity::Error,
            &Line::new("the config does not load: running on the last good one instead")
                .kv("event", "config_error")
                .kv("error", &f.error)
                .kv("running_on", &f.running_on),
        );
    }
    announce_namespace(log, host);
    if !sys::is_root() {
        log.log(
            Severity::Warning,
            &Line::event("unprivileged", "not running as root: other users' processes cannot be signalled, nor their executables read for exe rules; the built-in protection and oom_score_adj -1000 need root too")
                .kv("uid", sys::euid()),
        );
    }
    locked
}

/// Start-up runs code the loop never runs again (the argument parser, the TOML reader, the
/// set-up checks), and locked memory would keep it resident for the daemon's life: before the
/// first round, the clean file pages touched so far are given back, and what is touched from
/// then on is locked as it is touched. Done once: after a reload it would also give back what
/// the first rounds locked for a shortage (the process table's pass, ranking), and the parser's
/// pages a reload locks are a few hundred KiB.
fn keep_loop_resident(log: &mut Logger) {
    let released = std::fs::read_to_string("/proc/self/smaps")
        .map(|t| crate::probe::smaps::clean_file_ranges(&t))
        .and_then(|ranges| sys::release_file_pages(&ranges));
    if let Err(e) = released {
        log.log(
            Severity::Warning,
            &Line::event("resident", "cannot give back the pages start-up touched").kv("error", e),
        );
    }
}

/// What a reload is checked and applied against.
struct Reloading<'a> {
    host: &'a Host,
    force_dry_run: bool,
    log_format: Option<LogFormat>,
}

impl Reloading<'_> {
    /// A config read on the loader thread replaces the running one if it may (see
    /// [`Config::may_replace`]) and fits the machine; else the running one stays, and says why.
    fn apply(
        &self,
        result: Result<Config, String>,
        enforcer: &mut Enforcer,
        outputs: &mut Outputs,
        log: &mut Logger,
    ) {
        // A fallback's files are not the config asked for: any config that loads replaces it.
        let checked = result
            .and_then(|new| {
                if enforcer.on_fallback() {
                    return Ok(new);
                }
                enforcer.config().may_replace(&new).map(|()| new)
            })
            .and_then(|new| fits_machine(&new, self.host).map(|()| new));
        match checked {
            Ok(new) => {
                // The same writer thread, pointed at the new sink if it changed.
                log.switch(new.daemon.log);
                log.set_format(self.log_format.unwrap_or(new.daemon.log_format));
                save_last_good(&new, log);
                announce(log, &new, self.host, self.force_dry_run, "reload");
                enforcer.set_config_error(None);
                enforcer.set_config(new, self.force_dry_run);
                outputs.apply(enforcer, log);
            }
            Err(e) => log.log(
                Severity::Error,
                &Line::event("reload", "reload refused, keeping the running config").kv("error", e),
            ),
        }
    }
}

/// SIGTERM or SIGINT: the stop said, the service told, the enforcer's victims and the hooks'
/// children dealt with, and the log flushed (the last lines must not be lost at exit).
fn stop(sig: i32, service: &mut ServiceManager, enforcer: &mut Enforcer, mut log: Logger) {
    log.log(
        Severity::Info,
        &Line::event("stop", "stopping")
            .kv("signal", if sig == SIGINT { "SIGINT" } else { "SIGTERM" }),
    );
    service.stopping();
    enforcer.stop(&mut log);
    crate::act::children::stop();
    log.finish();
}

/// Whether `config` can run on this machine: its system thresholds against the machine's
/// memory (when it can be read), and every file it keeps in a directory only root can change.
pub fn fits_machine(config: &Config, host: &Host) -> Result<(), String> {
    fits_memory(config, host)?;
    state_dirs_safe(config)
}

/// Whether `config` asks for no more memory or swap than this machine has, and names hook
/// programs only root can change ([`crate::act::hook::check_program`]).
fn fits_memory(config: &Config, host: &Host) -> Result<(), String> {
    if let Ok(m) = MemInfo::read(&host.root) {
        config.check_against_machine(m.mem_total, m.swap_total)?;
    }
    crate::act::hook::check_config(&config.hooks, sys::euid())
}

/// A config that did not load at start, and what runs instead.
struct Fallback {
    /// What was wrong with it (file, line and key where the parser knows them).
    error: String,
    /// The last good config's file, or "the built-in defaults".
    running_on: String,
}

/// The config to start on. A config that does not load (a typo) or asks for more than this
/// machine has is replaced by the last config that loaded here ([`save_last_good`]), or by the
/// built-in defaults without one, and the daemon starts on that and says so: a restart after
/// a typo must leave the machine watched, and must not fail in a loop (the unit restarts a
/// failed start every second, for ever). `check-config` still refuses it.
fn start_config(origin: &ConfigOrigin, host: &Host) -> (Config, Option<Fallback>) {
    let loaded = origin
        .load()
        .map_err(|e| e.to_string())
        .and_then(|c| fits_memory(&c, host).map(|()| c));
    let error = match loaded {
        Ok(c) => return (c, None),
        Err(e) => e,
    };
    let (config, last) = last_good_or_defaults(|c| fits_memory(c, host).is_ok());
    let running_on = last.unwrap_or_else(|| "the built-in defaults (no last good config)".into());
    (config, Some(Fallback { error, running_on }))
}

/// The last config that loaded here (kept at every start and reload) if it is `fit`, with its file's name;
/// else the built-in defaults, and `None`.
pub fn last_good_or_defaults(fit: impl Fn(&Config) -> bool) -> (Config, Option<String>) {
    let path = crate::paths::last_good_path();
    let name = path.display().to_string();
    let last_good = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| Config::parse(&text, &name).ok())
        .filter(fit);
    match last_good {
        Some(c) => (c, Some(name)),
        None => (
            Config::parse("", "the built-in defaults").expect("the defaults load"),
            None,
        ),
    }
}

/// Keeps `config` as the last good one, for a start whose config does not load.
fn save_last_good(config: &Config, log: &mut Logger) {
    let path = crate::paths::last_good_path();
    let text = format!(
        "# The last config oomward loaded here, kept for a start whose config does not load.\n{}",
        config.to_toml()
    );
    let saved = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| crate::report::statefile::replace(&path, text.as_bytes(), 0o600));
    if let Err(e) = saved {
        log.log(
            Severity::Warning,
            &Line::event("last_good_error", "cannot keep the last good config")
                .kv("path", path.display())
                .kv("error", e),
        );
    }
}

/// Whether every file the daemon keeps (kill journal, status file, metrics file) lies in a
/// directory no one but root (or the daemon's own user) can change: see
/// [`crate::report::statefile`].
fn state_dirs_safe(config: &Config) -> Result<(), String> {
    let owner = sys::euid();
    let r = &config.report;
    let last_good = Some(crate::paths::last_good_path());
    let files = [
        ("[report] journal", &r.journal),
        ("[report] status_file", &r.status_file),
        ("[report] metrics_file", &r.metrics_file),
        ("the last good config", &last_good),
    ];
    for (key, path) in files {
        let Some(path) = path else { continue };
        let dir = path.parent().unwrap_or(std::path::Path::new("/"));
        crate::report::statefile::verify_dir(dir, owner)
            .map_err(|e| format!("{key} = {}: {e}", path.display()))?;
    }
    Ok(())
}

/// What the daemon tells beyond its log: metrics (an HTTP listener, a file) and desktop
/// notifications; started, changed and stopped as the config says, at start and on reload.
#[derive(Default)]
struct Outputs {
    metrics: Option<std::sync::Arc<Metrics>>,
    server: Option<(std::net::SocketAddr, metrics::Server)>,
    file: Option<(std::path::PathBuf, std::time::Duration, metrics::FileWriter)>,
    notifier: Option<crate::report::notify::Notifier>,
    /// `[notify]` as last applied.
    notify: Option<crate::config::Notify>,
    /// The host root, for logind's session files.
    root: std::path::PathBuf,
    /// Notes dropped by a full queue, as last reported.
    notes_dropped: u64,
    /// The notifier was started with the metrics on.
    notifier_counts: bool,
}

impl Outputs {
    /// Makes the outputs what `config` asks for.
    fn apply(&mut self, enforcer: &mut Enforcer, log: &mut Logger) {
        self.apply_metrics(enforcer, log);
        self.apply_notify(enforcer.config().notify.clone(), log);
    }

    /// Starts, changes or stops the metrics as `[report]` says.
    fn apply_metrics(&mut self, enforcer: &mut Enforcer, log: &mut Logger) {
        let r = enforcer.config().report.clone();
        let wanted = r.metrics_listen.is_some() || r.metrics_file.is_some();
        if !wanted {
            self.server = None;
            self.file = None;
            self.metrics = None;
            enforcer.attach_metrics(None);
            return;
        }
        let m = self
            .metrics
            .get_or_insert_with(|| std::sync::Arc::new(Metrics::new(env!("CARGO_PKG_VERSION"))))
            .clone();
        enforcer.attach_metrics(Some(m.clone()));
        if self.server.as_ref().map(|(a, _)| *a) != r.metrics_listen {
            self.server = None;
            if let Some(addr) = r.metrics_listen {
                let started = std::net::TcpListener::bind(addr)
                    .and_then(|l| metrics::Server::start(l, m.clone()));
                match started {
                    Ok(s) => {
                        log.log(
                            Severity::Info,
                            &Line::event("metrics_listen", "serving metrics")
                                .kv("address", s.local_addr()),
                        );
                        self.server = Some((addr, s));
                    }
                    Err(e) => log.log(
                        Severity::Error,
                        &Line::event("metrics_error", "cannot serve metrics")
                            .kv("address", addr)
                            .kv("error", e),
                    ),
                }
            }
        }
        let file_now = self.file.as_ref().map(|(p, i, _)| (p.clone(), *i));
        let file_wanted = r.metrics_file.clone().map(|p| (p, r.metrics_interval));
        if file_now != file_wanted {
            self.file = None;
            if let Some((path, interval)) = file_wanted {
                let shown = path.display().to_string();
                let said = std::sync::atomic::AtomicBool::new(false);
                let on_error = Box::new(move |e: &std::io::Error| {
                    // The writer thread has no logger: stderr reaches the journal under the
                    // unit; said once.
                    if !said.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        eprintln!(
                            "oomward: cannot write the metrics file event=metrics_error path={shown} error=\"{e}\""
                        );
                    }
                });
                match metrics::FileWriter::start(path.clone(), interval, m.clone(), on_error) {
                    Ok(w) => self.file = Some((path, interval, w)),
                    Err(e) => log.log(
                        Severity::Error,
                        &Line::event("metrics_error", "cannot start the metrics file writer")
                            .kv("error", e),
                    ),
                }
            }
        }
    }

    /// Starts or stops the notification thread as `[notify] desktop` says.
    fn apply_notify(&mut self, n: crate::config::Notify, log: &mut Logger) {
        use crate::report::notify::Outcome;
        if !n.desktop {
            self.notifier = None;
            self.notify = Some(n);
            return;
        }
        // Its outcomes are counted in the metrics it was started with.
        if self.notifier_counts != self.metrics.is_some() {
            self.notifier = None;
        }
        self.notifier_counts = self.metrics.is_some();
        if self.notifier.is_none() {
            let handle = log.handle();
            let metrics = self.metrics.clone();
            let tell = Box::new(move |outcome: &Outcome| {
                let (word, severity, uid, why) = match outcome {
                    Outcome::Sent { uid } => ("sent", Severity::Info, uid, None),
                    Outcome::Failed { uid, why } => ("failed", Severity::Warning, uid, Some(why)),
                };
                let line = Line::event("notify", &format!("desktop notification {word}"))
                    .kv("uid", uid)
                    .kv("outcome", word)
                    .kv_opt("error", why);
                handle.log(severity, &line);
                if let Some(m) = &metrics {
                    m.notification(word);
                }
            });
            match crate::report::notify::Notifier::start("/proc/self/exe".into(), tell) {
                Ok(t) => self.notifier = Some(t),
                Err(e) => log.log(
                    Severity::Error,
                    &Line::event("notify_error", "cannot start the notification thread")
                        .kv("error", e),
                ),
            }
        }
        self.notify = Some(n);
    }

    /// Passes the round's kill reports and warnings on (desktop notifications; the notification
    /// thread logs how each went). Nothing to do, nothing done: two empty checks.
    fn after_round(&mut self, enforcer: &mut Enforcer, log: &mut Logger) {
        let (published, warnings) = enforcer.take_reports();
        let extra = &enforcer.config().accounts.notify;
        let (Some(notifier), Some(n)) = (&self.notifier, &self.notify) else {
            return;
        };
        let warned = warnings.iter().map(|r| note(r, true));
        let notes = warned.chain(
            published
                .iter()
                .filter(|r| !r.dry_run)
                .map(|r| note(r, false)),
        );
        for (summary, body, urgency) in notes {
            let targets = crate::report::notify::targets(&self.root, &n.runtime_dir, extra);
            if targets.is_empty() {
                continue;
            }
            notifier.send(crate::report::notify::Note {
                summary,
                body,
                urgency,
                targets,
            });
        }
        let dropped = notifier.dropped();
        if dropped > self.notes_dropped {
            log.log(
                Severity::Warning,
                &Line::new("desktop notifications dropped: the queue was full")
                    .kv("event", "notify_dropped")
                    .kv("dropped", dropped - self.notes_dropped),
            );
            self.notes_dropped = dropped;
        }
    }
}

/// The notification for a warning (what will be stopped first, so that a person can act) or
/// for a kill (who was stopped and why).
fn note(r: &crate::report::kill::KillRecord, warning: bool) -> (String, String, u8) {
    use crate::report::escape_controls as e;
    use crate::report::kill::human;
    use crate::report::notify::urgency;
    let (comm, pid) = (e(&r.victim.comm), r.victim.pid);
    let scope = (r.scope != "system").then(|| e(&r.scope));
    let used = human(r.victim_bytes());
    let (left, of) = (human(r.trigger.available), human(r.trigger.limit));
    if warning {
        let place = scope.map(|s| format!(" in {s}")).unwrap_or_default();
        let body = format!(
            "{left} left of {of}{place}. If it runs out, {comm} (pid {pid}, using {used}) will be stopped first. Close something you do not need."
        );
        return ("Memory is running low".into(), body, urgency::NORMAL);
    }
    let place = scope.map_or_else(|| "the machine".into(), |s| s.into_owned());
    let body = format!(
        "{comm} (pid {pid}) used {used}; {place} had {left} left of {of}. `oomward why {pid}` explains the choice."
    );
    (
        format!("{comm} was stopped to free memory"),
        body,
        urgency::CRITICAL,
    )
}

/// What woke the loop besides its timer.
enum Got {
    Wakeup(Wakeup),
    /// A config read after a SIGHUP, or why it could not be.
    Loaded(Box<Result<Config, String>>),
}

/// The thread that reads the config on request (a SIGHUP), off the enforcement loop: a large
/// or slow config must never stop sampling. One request waits at most (the channel holds
/// one); the result comes back on the second channel.
#[allow(clippy::type_complexity)]
fn start_loader(
    origin: ConfigOrigin,
) -> Result<
    (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<Box<Result<Config, String>>>,
    ),
    DaemonError,
> {
    let (request, requests) = bounded::<()>(1);
    let (done, loaded) = bounded::<Box<Result<Config, String>>>(1);
    std::thread::Builder::new()
        .name("oomward-config".into())
        .spawn(move || {
            for () in requests {
                if done
                    .send(Box::new(origin.load().map_err(|e| e.to_string())))
                    .is_err()
                {
                    break;
                }
            }
        })
        .map_err(|e| DaemonError::Setup(format!("cannot start the config thread: {e}")))?;
    Ok((request, loaded))
}

/// The daemon must never be the victim and must run while others thrash: adj -1000, locked
/// memory, higher priority, and (unless configured off) the real-time scheduling class for the
/// loop and the threads it starts (the event poller, the reaper; the log writer and the signal
/// thread, started before, stay ordinary). Each step may be refused (no CAP_SYS_RESOURCE,
/// RLIMIT_MEMLOCK, RLIMIT_RTPRIO); that is logged and the daemon goes on. True when memory is
/// locked.
fn protect_self(log: &mut Logger, realtime: bool) -> bool {
    // Each step's word: what it set, or why it failed.
    fn said<T: std::fmt::Display>(r: std::io::Result<T>) -> Result<String, String> {
        r.map(|v| v.to_string()).map_err(|e| format!("failed: {e}"))
    }
    let adj = said(sys::set_own_oom_score_adj(crate::badness::OOM_SCORE_ADJ_MIN).map(|()| "ok"));
    let locked = said(sys::lock_memory().map(|()| "ok"));
    let nice = said(sys::raise_own_nice(-10));
    let rt = said(match realtime.then(|| sys::set_own_realtime(1)) {
        None => Ok("off"),
        Some(Ok(())) => Ok("ok"),
        // Refused by policy (the shipped unit's RestrictRealtime=yes, or RLIMIT_RTPRIO 0):
        // a choice of the administrator's, not a fault; the nice value still applies.
        Some(Err(e)) if sys::not_permitted(&e) => Ok("not_permitted"),
        Some(Err(e)) => Err(e),
    });
    let nofile = said(sys::raise_nofile_limit());
    let steps = [
        ("oom_score_adj_min", adj),
        ("mlockall", locked),
        ("nice", nice),
        ("realtime", rt),
        ("nofile", nofile),
    ];
    let all_ok = steps.iter().all(|(_, r)| r.is_ok());
    let mut line = Line::event("self_protect", "self-protection");
    for (key, r) in &steps {
        line.push(key, r.as_ref().unwrap_or_else(|e| e));
    }
    log.log(
        if all_ok {
            Severity::Info
        } else {
            Severity::Warning
        },
        &line,
    );
    steps[1].1.is_ok()
}

/// Says in which mount namespace exe rules are judged when it is not oomward's own: under the
/// shipped unit (a private mount namespace) that is expected and harmless, since exe paths are
/// judged in PID 1's; when PID 1's cannot be read, paths are judged in oomward's own view, which
/// a container's image could make wrong, so that is a warning.
fn announce_namespace(log: &mut Logger, host: &Host) {
    let own = host.mount_ns.as_deref().unwrap_or("unknown");
    let (severity, message, pid1) = match host.host_mount_ns.as_deref() {
        Some(pid1) if pid1 == own => return,
        Some(pid1) => (
            Severity::Info,
            "oomward runs in its own mount namespace; exe rules judge paths in PID 1's",
            pid1,
        ),
        None => (
            Severity::Warning,
            "cannot read PID 1's mount namespace; exe rules judge paths as oomward sees them",
            "unreadable",
        ),
    };
    let line = Line::event("mount_namespace", message)
        .kv("own", own)
        .kv("pid1", pid1)
        .kv("exe_root", host.exe_root.display());
    log.log(severity, &line);
}

fn announce(log: &mut Logger, config: &Config, host: &Host, force_dry_run: bool, event: &str) {
    for w in &config.warnings {
        log.log(
            Severity::Warning,
            &Line::event("config_warning", "config warning").kv("detail", w),
        );
    }
    let message = if event == "start" {
        "started"
    } else {
        "config reloaded"
    };
    let mut line = Line::event(event, message)
        .kv("config", &config.source)
        .kv("dry_run", config.daemon.dry_run || force_dry_run)
        .kv("events", config.daemon.events)
        .kv("min_interval", format_duration(config.daemon.min_interval))
        .kv("max_interval", format_duration(config.daemon.max_interval))
        .kv("fill_rate", config.daemon.fill_rate)
        .kv("grace", format_duration(config.kill.grace))
        .kv("rules", config.rules.len())
        .kv("builtin_protection", config.builtin_protection);
    if config.system.enabled {
        let s = &config.system;
        line.push("system_mem_available_term", s.mem_available_term);
        line.push("system_mem_available_kill", s.mem_available_kill);
        line.push("system_swap_free_term", s.swap_free_term);
        line.push("system_swap_free_kill", s.swap_free_kill);
        if let Ok(m) = MemInfo::read(&host.root) {
            line.push("mem_total", m.mem_total);
            line.push("term_at_bytes", s.mem_available_term.bytes_of(m.mem_total));
            line.push("kill_at_bytes", s.mem_available_kill.bytes_of(m.mem_total));
        }
    } else {
        line.push("system", "disabled");
    }
    for c in &config.cgroups {
        line.push(
            "cgroup",
            format!("{}:{}/{}", c.path.text, c.available_term, c.available_kill),
        );
    }
    let hier = host.memory.as_ref().map_or("none", |h| h.version.as_str());
    line.push("memory_cgroup", hier);
    log.log(Severity::Info, &line);
    if !config.cgroups.is_empty() && host.memory.is_none() {
        log.log(
            Severity::Warning,
            &Line::new("[[cgroup]] scopes configured but this host has no memory cgroup hierarchy"),
        );
    }
}
