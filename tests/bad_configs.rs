//! What a careless administrator (or a fuzzer) writes: every config below is refused by
//! `oomward check-config` with exit code 2 and a message naming the file, the line (when the
//! mistake has one) and the key, with the reason; never a panic, never exit 101.

mod support;

use support::{check_config, check_config_says};

/// (config text, the key the message must name, the line it must name (0: none), a word of
/// the reason), one a line.
#[rustfmt::skip]
const CASES: &[(&str, &str, usize, &str)] = &[
    // Found by attacking it (issue 11).
    ("[system]\nmem_available_term = \"100%\"\n", "system.mem_available_term", 2, "at most 50%"),
    ("[kill]\nstuck_timeout = \"8760h\"\n", "kill.stuck_timeout", 2, "at most"),
    ("[system]\nmem_available_term = \"1000TiB\"\nmem_available_kill = \"1GiB\"\n", "", 0, "system.mem_available_term: 1000TiB is at least half of this machine's MemTotal"),
    ("[daemon]\nmax_interval = \"8760h\"\n", "daemon.max_interval", 2, "at most"),
    ("[daemon]\nfill_rate = \"1KiB\"\n", "daemon.fill_rate", 2, "plausible"),
    ("[[rule]]\nexe = \"**\"\nprotect = true\n", "rule[1]", 1, "every process"),
    ("[[rule]]\ncgroup = \"/**\"\nprotect = true\n", "rule[1]", 1, "every process"),
    ("[[rule]]\ncomm = \".*\"\nprotect = true\n", "rule[1]", 1, "every process"),
    ("[[cgroup]]\npath = \"/a\"\n[[cgroup]]\npath = \"/a\"\n", "cgroup[2].path", 4, "already watched"),
    ("[[rule]]\nuser = 4294967295\nprotect = true\n", "rule[1].user", 2, "not a uid"),
    ("[kill]\ngrace = \"0.5us\"\n", "kill.grace", 2, "microsecond"),
    ("[system]\nmem_available_term = \"3%\"\n", "system.mem_available_kill", 2, "above"),
    // Types.
    ("[kill]\ngrace = 5\n", "kill.grace", 2, "\"5s\""),
    ("[kill]\ngrace = \"5\"\n", "kill.grace", 2, "unit"),
    ("[daemon]\ndry_run = \"yes\"\n", "daemon.dry_run", 2, "true or false"),
    ("[daemon]\nevents = 1\n", "daemon.events", 2, "boolean"),
    ("[system]\nenabled = \"false\"\n", "system.enabled", 2, "without quotes"),
    ("[system]\npsi_full_avg10_term = \"20\"\n", "system.psi_full_avg10_term", 2, "without quotes"),
    ("[kill]\nwarn_kills_per_minute = -1\n", "kill.warn_kills_per_minute", 2, "invalid"),
    ("[[rule]]\ncomm = \"^a$\"\nadjust = \"5\"\n", "rule[1].adjust", 3, "without quotes"),
    ("[[rule]]\nexe = \"/usr/bin/x\"\nprotect = \"true\"\n", "rule[1].protect", 3, "without quotes"),
    ("[[cgroup]]\npath = 5\n", "cgroup[1].path", 2, "string"),
    ("[system]\nmem_available_kill = 5\n", "system.mem_available_kill", 2, "\"10%\""),
    ("[kill]\nmin_gain_max = 128\n", "kill.min_gain_max", 2, "\"512MiB\""),
    // Values.
    ("[daemon]\nmin_interval = \"10us\"\n", "daemon.min_interval", 2, "100us"),
    ("[daemon]\nmin_interval = \"2s\"\n", "daemon.min_interval", 2, "at most"),
    ("[daemon]\nmin_interval = \"1s\"\nmax_interval = \"500ms\"\n", "daemon.min_interval", 2, "longer"),
    ("[daemon]\nfill_rate = \"2TiB\"\n", "daemon.fill_rate", 2, "plausible"),
    ("[daemon]\nfill_rate = \"6GB\"\n", "daemon.fill_rate", 2, "ambiguous"),
    ("[daemon]\nlog = \"file\"\n", "daemon.log", 2, "auto"),
    ("[system]\nrequire = \"all\"\n", "system.require", 2, "both"),
    ("[system]\nswap_free_term = \"60%\"\n", "system.swap_free_term", 2, "at most 50%"),
    ("[system]\nswap_free_kill = \"20%\"\n", "system.swap_free_kill", 2, "above"),
    ("[system]\npsi_full_avg10_term = 150\n", "system.psi_full_avg10_term", 2, "0 to 100"),
    ("[system]\nexhaustion_term = \"1h\"\n", "system.exhaustion_term", 2, "at most"),
    ("[system]\nmem_available_term = \"-5%\"\n", "system.mem_available_term", 2, "invalid"),
    ("[system]\nmem_available_term = \"1.5GiB\"\n", "system.mem_available_term", 2, "invalid"),
    ("[kill]\ngrace = \"0s\"\n", "kill.grace", 2, "above 0"),
    ("[kill]\ngrace = \"11m\"\n", "kill.grace", 2, "at most"),
    ("[kill]\nstuck_timeout = \"0s\"\n", "kill.stuck_timeout", 2, "above 0"),
    ("[kill]\nwarn_kills_per_minute = 0\n", "kill.warn_kills_per_minute", 2, "at least 1"),
    ("[system]\nmem_available_term = \"8\"\n", "system.mem_available_term", 2, "has no unit"),
    ("[kill]\nmin_gain = \"80%\"\n", "kill.min_gain", 2, "at most 50%"),
    ("[[cgroup]]\navailable_term = \"10%\"\n", "cgroup[1].path", 1, "needs a path"),
    ("[[cgroup]]\npath = \"kubepods\"\n", "cgroup[1].path", 2, "start with /"),
    ("[[cgroup]]\npath = \"/a\"\navailable_term = \"70%\"\n", "cgroup[1].available_term", 3, "at most 50%"),
    ("[[cgroup]]\npath = \"/a\"\navailable_kill = \"20%\"\n", "cgroup[1].available_kill", 3, "above"),
    ("[[cgroup]]\npath = \"/a\"\non_under_oom = \"panic\"\n", "cgroup[1].on_under_oom", 3, "kill"),
    ("[[cgroup]]\npath = \"/a\"\nkill_unit = \"pod\"\n", "cgroup[1].kill_unit", 3, "process"),
    ("[[cgroup]]\npath = \"/a[\"\n", "cgroup[1].path", 2, "glob"),
    ("[[rule]]\nprotect = true\n", "rule[1]", 1, "at least one"),
    ("[[rule]]\ncomm = \"^a$\"\n", "rule[1].protect", 1, "does nothing"),
    ("[[rule]]\ncomm = \"(\"\nprotect = true\n", "rule[1].comm", 2, "regex"),
    ("[[rule]]\ncmdline = \"[\"\nadjust = 5\n", "rule[1].cmdline", 2, "regex"),
    ("[[rule]]\nexe = \"sshd\"\nprotect = true\n", "rule[1].exe", 2, "absolute"),
    ("[[rule]]\ncgroup = \"system.slice\"\nprotect = true\n", "rule[1].cgroup", 2, "start it with /"),
    ("[[rule]]\ncomm = \"^a$\"\nadjust = 2000\n", "rule[1].adjust", 3, "-1000..=1000"),
    ("[[rule]]\ncomm = \"^a$\"\nadjust = 0\n", "rule[1].adjust", 3, "0 excluded"),
    ("[[rule]]\ncomm = \"^a$\"\nadjust = 5\nprotect = true\n", "rule[1].adjust", 3, "not both"),
    ("[[rule]]\ncomm = \"^a$\"\nexe_namespace = \"any\"\nprotect = true\n", "rule[1].exe_namespace", 3, "has none"),
    ("[[rule]]\nexe = \"/x\"\nexe_namespace = \"all\"\nprotect = true\n", "rule[1].exe_namespace", 3, "host"),
    ("[[rule]]\nuser = \"no-such-user-oomward\"\nprotect = true\n", "rule[1].user", 2, "no user named"),
    ("[[rule]]\nuser = -1\nprotect = true\n", "rule[1].user", 2, "not a uid"),
    ("[[rule]]\nuser = [1]\nprotect = true\n", "rule[1].user", 2, "user name or a numeric uid"),
    // Places: lines after a blank line or a comment, the second of two tables, the key of two
    // that the user wrote.
    ("[daemon]\n\ndry_run = \"yes\"\n", "daemon.dry_run", 3, "true or false"),
    ("[daemon]\nmax_interval = \"1s\"\nmin_interval = \"2s\"\n", "daemon.min_interval", 3, "at most 1s"),
    ("[system]\nmem_available_term = \"5%\"\nmem_available_kill = \"10%\"\n", "system.mem_available_kill", 3, "above mem_available_term"),
    ("[[rule]]\ncomm = \"a\"\nprotect = true\n\n[[rule]]\nprotect = true\n", "rule[2]", 5, "at least one"),
    ("[[rule]]\ncomm = \"a\"\nadjust = 1\n[[rule]]\ncomm = \"b\"\nprotekt = true\n", "rule[2].protekt", 6, "unknown field"),
    ("[[rule]] # db\ncomm = \"a\"\nprotekt = true\n", "rule[1].protekt", 3, "unknown field"),
    ("[system] # machine\nmem_availble_term = \"1%\"\n", "system.mem_availble_term", 2, "unknown field"),
    ("[[rule]] # empty\nprotect = true\n", "rule[1]", 1, "at least one"),
    // More values.
    ("[system]\nmem_available_term = \"10 furlongs\"\n", "system.mem_available_term", 2, "unknown unit"),
    ("[kill]\nmin_gain = \"lots\"\n", "kill.min_gain", 2, "invalid size"),
    ("[kill]\nexit_settle = \"10s\"\n", "kill.exit_settle", 2, "at most 5s"),
    ("[[cgroup]]\npath = \"/a\"\nexhaustion_term = \"2\"\n", "cgroup[1].exhaustion_term", 3, "unit is required"),
    ("[[rule]]\ncgroup = \"/a/[z-a]\"\nadjust = 10\n", "rule[1].cgroup", 2, "invalid glob"),
    ("[[rule]]\nexe = \"\\t/usr/bin/x\"\nadjust = 5\n", "rule[1].exe", 2, "absolute path"),
    // Structure and syntax.
    ("[deamon]\ndry_run = true\n", "deamon", 1, "unknown field"),
    ("[daemon]\ndryrun = true\n", "daemon.dryrun", 2, "unknown field"),
    ("[daemon]\ndry_run = true\ndry_run = false\n", "daemon.dry_run", 3, "duplicate"),
    ("[daemon\n", "daemon", 1, "unclosed"),
    ("[kill]\ngrace = \n", "kill.grace", 2, "string"),
    ("[kill]\ngrace = \"5s\n", "kill.grace", 2, "invalid"),
    ("[[cgroup]]\npath = \"/a\"\n[cgroup]\n", "cgroup", 3, "duplicate"),
    ("grace = \"5s\"\n", "grace", 1, "unknown field"),
    ("[daemon]\n\x07 = 1\n", "daemon.\\x07", 2, "invalid"),
    ("\r[kill]\r\rgrace = 5\r", "", 0, ""),
    ("[[cgroup]]\npath = \"/{a,{a,{a,{a,{a,{a,{a,{a,x}}}}}}}}\"\n", "cgroup[1].path", 2, "nested"),
];

#[test]
fn every_bad_config_is_refused_with_file_line_key_and_reason() {
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (text, key, line, reason)) in CASES.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let said = check_config(&path);
        let err = said.stderr;
        let file = path.display().to_string();
        let place = if *line > 0 {
            format!("{file}:{line}: {key}")
        } else {
            file.clone()
        };
        let ok = said.code == Some(2)
            && !err.contains("panicked")
            && err.contains(&place)
            && err.contains(reason)
            && err.lines().count() <= 3;
        if !ok {
            failures.push(format!(
                "case {i} {text:?}: exit {:?}, want {place:?} and {reason:?}, got: {err}",
                said.code
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn text_that_is_not_utf8_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"[kill]\ngrace = \"5\xffs\"\n").unwrap();
    check_config_says(
        &path,
        2,
        &format!("{}:2: (file): not UTF-8", path.display()),
    );
}

#[test]
#[ignore = "needs root: the ownership rule applies to root"]
fn a_config_others_can_write_is_refused_when_running_as_root() {
    support::need_root("the ownership rule applies to root");
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "").unwrap();
    let check = || {
        let said = check_config(&path);
        (said.code, said.stderr)
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is writable by anyone"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is owned by uid 65534"), "{err}");
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{} is writable by anyone", dir.path().display())),
        "{err}"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(0), "{err}");
}
