use super::*;
use crate::policy::Action;
use std::time::Duration;

fn err(text: &str) -> String {
    Config::parse(text, "test.toml").unwrap_err().to_string()
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let c = Config::parse("", "x").unwrap();
    assert_eq!(c.daemon.max_interval, Duration::from_secs(5));
    assert_eq!(c.daemon.min_interval, Duration::from_millis(2));
    assert_eq!(c.daemon.fill_rate, 6 << 30);
    assert!(!c.daemon.dry_run);
    assert!(c.system.enabled);
    assert_eq!(c.system.mem_available_term, Amount::Percent(10.0));
    assert_eq!(c.system.mem_available_kill, Amount::Percent(5.0));
    assert_eq!(c.system.require, Require::Both);
    assert!(c.cgroups.is_empty());
    assert_eq!(c.kill.grace, Duration::from_secs(5));
    assert!(c.builtin_protection);
    assert!(c.rules.is_empty());
}

#[test]
fn a_full_config_parses() {
    let c = Config::parse(
        r#"
[daemon]
dry_run = true
fill_rate = "2GiB"
[system]
mem_available_term = "1GiB"
mem_available_kill = "512MiB"
require = "either"
psi_full_avg10_term = 20
[[cgroup]]
path = "/kubepods/**"
available_kill = "16MiB"
available_term = "32MiB"
kill_unit = "cgroup"
[[rule]]
exe = "/usr/bin/postgres"
user = 0
protect = true
[[rule]]
comm = "^java$"
adjust = 300
"#,
        "x",
    )
    .unwrap();
    assert!(c.daemon.dry_run);
    assert_eq!(c.system.mem_available_kill, Amount::Bytes(512 << 20));
    assert_eq!(c.system.psi_full_avg10_term, 20.0);
    assert_eq!(c.cgroups[0].kill_unit, KillUnit::Cgroup);
    assert!(c.cgroups[0].path.is_match("/kubepods/pod/ctr"));
    assert_eq!(c.rules[0].action, Action::Protect);
    assert_eq!(c.rules[0].uid, Some(0));
    assert_eq!(c.rules[0].line, 15);
    assert_eq!(c.rules[1].action, Action::Adjust(300));
    assert!(c.warnings.is_empty());
}

#[test]
fn kill_above_term_is_refused() {
    let e = err("[system]\nmem_available_term = \"5%\"\nmem_available_kill = \"10%\"\n");
    assert!(e.contains("at or below"), "{e}");
    let e =
        err("[[cgroup]]\npath = \"/a\"\navailable_term = \"1MiB\"\navailable_kill = \"2MiB\"\n");
    assert!(
        e.starts_with("test.toml:4: cgroup[1].available_kill:"),
        "{e}"
    );
}

#[test]
fn unknown_user_is_refused() {
    let c = Config::parse("[[rule]]\nuser = \"root\"\nadjust = -100\n", "x").unwrap();
    assert_eq!(c.rules[0].uid, Some(0));
}

#[test]
fn comm_only_protect_warns() {
    let c = Config::parse("[[rule]]\ncomm = \"^sshd$\"\nprotect = true\n", "f.toml").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].starts_with("f.toml:1: rule[1]"),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn effective_config_round_trips() {
    let text = "[system]\nmem_available_term = \"1GiB\"\n[[cgroup]]\npath = \"/a/*\"\n[[rule]]\nexe = \"/usr/bin/x\"\nuser = 0\nprotect = true\n[[rule]]\ncmdline = \"--big\"\nadjust = -20\n";
    let c = Config::parse(text, "x").unwrap();
    let again = Config::parse(&c.to_toml(), "y").unwrap();
    // Equal but for the first line (the source) and the rules' line comments.
    let body = |c: &Config| -> Vec<String> {
        c.to_toml()
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("# from line"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(body(&again), body(&c));
    assert_eq!(again.system, c.system);
    assert_eq!(again.daemon, c.daemon);
}

#[test]
fn effective_config_escapes_strings_as_toml() {
    let c = Config::parse(
        "[[rule]]\ncmdline = \"a\\u0001b \\\"q\\\"\"\nadjust = 5\n",
        "x",
    )
    .unwrap();
    let again = Config::parse(&c.to_toml(), "y").unwrap();
    assert_eq!(
        again.rules[0].cmdline.as_ref().unwrap().as_str(),
        "a\u{1}b \"q\""
    );
}

#[test]
fn min_gain_is_a_share_of_the_limit_capped_or_a_size() {
    const MIB: u64 = 1 << 20;
    let c = Config::default();
    // 2 % of a 256 MiB cgroup; of 64 GiB it would be 1.3 GiB: capped at 128 MiB.
    assert_eq!(c.min_gain_bytes(256 * MIB), 256 * MIB / 50);
    assert_eq!(c.min_gain_bytes(64 << 30), 128 * MIB);
    let c = Config::parse("[kill]\nmin_gain = \"1GiB\"\n", "x").unwrap();
    assert_eq!(
        c.min_gain_bytes(256 * MIB),
        1 << 30,
        "a size is taken as it is"
    );
    let c = Config::parse("[kill]\nmin_gain = \"10%\"\nmin_gain_max = \"8MiB\"\n", "x").unwrap();
    assert_eq!(c.min_gain_bytes(256 * MIB), 8 * MIB);
}

#[test]
fn stall_terms_parse_default_off_and_bad_values_name_their_line() {
    const MIB: u64 = 1 << 20;
    let c = Config::parse("", "x").unwrap();
    let s = &c.system;
    assert_eq!(s.stall_window, std::time::Duration::from_secs(2));
    assert_eq!((s.psi_some_term, s.psi_full_term), (0.0, 0.0));
    assert_eq!((s.refault_rate_term, s.major_fault_rate_term), (0, 0));
    assert_eq!(c.system.early_available_below, None);
    let c = Config::parse(
        "[system]\nstall_window = \"3s\"\npsi_some_term = 40\npsi_full_term = 12.5\n\
         refault_rate_term = \"64MiB\"\nmajor_fault_rate_term = 3000\n\
         early_available_below = \"512MiB\"\n",
        "x",
    )
    .unwrap();
    let s = &c.system;
    assert_eq!(s.stall_window, std::time::Duration::from_secs(3));
    assert_eq!((s.psi_some_term, s.psi_full_term), (40.0, 12.5));
    assert_eq!(
        (s.refault_rate_term, s.major_fault_rate_term),
        (64 * MIB, 3000)
    );
    assert_eq!(
        c.system.early_available_below,
        Some(Amount::Bytes(512 * MIB))
    );
    // The effective config says them back, and reads back the same.
    let again = Config::parse(&c.to_toml(), "x").unwrap();
    assert_eq!(again.system, c.system);
    for (text, key) in [
        ("[system]\npsi_full_term = 120\n", "system.psi_full_term"),
        ("[system]\npsi_some_term = -1\n", "system.psi_some_term"),
        ("[system]\nstall_window = \"10ms\"\n", "system.stall_window"),
        ("[system]\nstall_window = \"2\"\n", "system.stall_window"),
        (
            "[system]\nrefault_rate_term = \"fast\"\n",
            "system.refault_rate_term",
        ),
        (
            "[system]\nearly_available_below = \"150%\"\n",
            "system.early_available_below",
        ),
    ] {
        let e = err(text);
        assert!(
            e.starts_with(&format!("test.toml:2: {key}:")),
            "{text}: {e}"
        );
    }
}

fn files(list: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let list = list.iter().map(|(f, t)| (f.to_string(), t.to_string()));
    Config::from_files(list.collect(), &Passwd::read(Path::new("/")))
}

#[test]
fn dropins_override_keys_and_append_tables_in_order() {
    let c = files(&[
        (
            "main.toml",
            "[kill]\ngrace = \"2s\"\nstuck_timeout = \"20s\"\n[[rule]]\ncomm = \"^a$\"\nadjust = 100\n",
        ),
        (
            "d/50-x.toml",
            "[kill]\ngrace = \"3s\"\n[[rule]]\ncomm = \"^b$\"\nadjust = 200\n[[cgroup]]\npath = \"/x\"\n",
        ),
        ("d/90-y.toml", "[system]\nenabled = false\n"),
    ])
    .unwrap();
    assert_eq!(c.kill.grace, Duration::from_secs(3), "the later file wins");
    assert_eq!(
        c.kill.stuck_timeout,
        Duration::from_secs(20),
        "keys a drop-in leaves alone keep the earlier value"
    );
    let adjusts: Vec<_> = c.rules.iter().map(|r| r.action).collect();
    assert_eq!(adjusts, vec![Action::Adjust(100), Action::Adjust(200)]);
    assert_eq!(c.cgroups.len(), 1);
    assert!(!c.system.enabled);
    assert_eq!(c.source, "main.toml + d/50-x.toml + d/90-y.toml");
}

#[test]
fn errors_name_the_file_and_line_that_set_the_key() {
    // A value only wrong together with the main file: reported where the drop-in set it.
    let e = files(&[
        ("main.toml", "[system]\nmem_available_term = \"8%\"\n"),
        ("d/50-x.toml", "\n\n[system]\nmem_available_kill = \"9%\"\n"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("d/50-x.toml:4: system.mem_available_kill:"),
        "{e}"
    );
    // A syntax error in a drop-in names the drop-in.
    let e = files(&[("main.toml", ""), ("d/50-x.toml", "[kill]\ngrace = \n")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("d/50-x.toml:2: kill.grace:"), "{e}");
    // A [[rule]] without a matcher in the second file: the header of that file.
    let e = files(&[
        ("main.toml", "[[rule]]\ncomm = \"^a$\"\nadjust = 1\n"),
        ("d/50-x.toml", "# c\n[[rule]]\nprotect = true\n"),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("d/50-x.toml:2: rule[2]"), "{e}");
}

#[test]
fn type_mistakes_get_a_hint() {
    for (text, key, hint) in [
        ("[kill]\ngrace = 5\n", "kill.grace", "\"5s\""),
        (
            "[daemon]\nfill_rate = 6\n",
            "daemon.fill_rate",
            "\"512MiB\"",
        ),
        (
            "[system]\nmem_available_term = 10\n",
            "system.mem_available_term",
            "\"10%\"",
        ),
        (
            "[daemon]\ndry_run = \"true\"\n",
            "daemon.dry_run",
            "without quotes",
        ),
        (
            "[kill]\nwarn_kills_per_minute = \"10\"\n",
            "kill.warn_kills_per_minute",
            "without quotes",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(&format!("test.toml:2: {key}:")), "{e}");
        assert!(e.contains(hint), "{text:?} → {e}");
    }
}

#[test]
fn a_config_that_watches_nothing_is_warned_about() {
    let c = Config::parse("[system]\nenabled = false\n", "x.toml").unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("no scope is enabled")),
        "{:?}",
        c.warnings
    );
    let c = Config::parse(
        "[system]\nenabled = false\n[[cgroup]]\npath = \"/a\"\n",
        "x",
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn a_dropin_directory_is_read_in_name_order_and_only_toml() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("config.toml");
    std::fs::write(&main, "[kill]\ngrace = \"1s\"\n").unwrap();
    let d = dir.path().join("config.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("90-late.toml"), "[kill]\ngrace = \"9s\"\n").unwrap();
    std::fs::write(d.join("10-early.toml"), "[kill]\ngrace = \"4s\"\n").unwrap();
    std::fs::write(d.join("README"), "not toml").unwrap();
    std::fs::write(d.join("50-x.toml.dpkg-old"), "garbage [").unwrap();
    let c = Config::load_layers(Some(&main), Some(&d)).unwrap();
    assert_eq!(c.kill.grace, Duration::from_secs(9));
    assert!(c.source.contains("10-early.toml") && c.source.ends_with("90-late.toml"));
    // No directory: no drop-ins, not an error.
    let c = Config::load_layers(Some(&main), Some(&dir.path().join("none"))).unwrap();
    assert_eq!(c.kill.grace, Duration::from_secs(1));
}

#[test]
fn a_reload_is_refused_when_a_file_is_emptied_cut_short_or_gone() {
    let running = files(&[
        ("main.toml", "[[rule]]\ncomm = \"^a$\"\nadjust = 5\n"),
        ("d/50-x.toml", "[kill]\ngrace = \"2s\"\n"),
    ])
    .unwrap();
    let ok = files(&[
        ("main.toml", "[[rule]]\ncomm = \"^b$\"\nadjust = 5\n"),
        ("d/50-x.toml", "[kill]\ngrace = \"3s\"\n"),
    ])
    .unwrap();
    assert_eq!(running.may_replace(&ok), Ok(()));
    let emptied = files(&[
        ("main.toml", ""),
        ("d/50-x.toml", "[kill]\ngrace = \"2s\"\n"),
    ])
    .unwrap();
    let e = running.may_replace(&emptied).unwrap_err();
    assert!(e.contains("main.toml is empty"), "{e}");
    let cut = files(&[
        ("main.toml", "[[rule]]\ncomm = \"^a$\"\nadjust = 5\n"),
        ("d/50-x.toml", "[kill]"),
    ])
    .unwrap();
    let e = running.may_replace(&cut).unwrap_err();
    assert!(e.contains("d/50-x.toml is cut short"), "{e}");
    let gone = files(&[("main.toml", "[[rule]]\ncomm = \"^a$\"\nadjust = 5\n")]).unwrap();
    let e = running.may_replace(&gone).unwrap_err();
    assert!(e.contains("d/50-x.toml is gone"), "{e}");
    // A new drop-in, or the first load from nothing, is fine.
    let defaults = Config::default();
    assert_eq!(defaults.may_replace(&running), Ok(()));
}

#[test]
fn globs_beyond_any_path_are_refused_not_compiled() {
    let deep = format!("/{}x", "{a,".repeat(126));
    let e = err(&format!("[[cgroup]]\npath = \"{deep}\"\n"));
    assert!(e.contains("test.toml:2: cgroup[1].path:"), "{e}");
    assert!(e.contains("nested"), "{e}");
    let e = err(&format!(
        "[[rule]]\nexe = \"/{}\"\nprotect = true\n",
        "a".repeat(5000)
    ));
    assert!(
        e.contains("rule[1].exe:") && e.contains("at most 4096"),
        "{e}"
    );
}

#[test]
fn size_thresholds_must_be_below_half_of_what_the_machine_has() {
    let c = Config::parse(
        "[system]\nmem_available_term = \"8GiB\"\nmem_available_kill = \"1GiB\"\n",
        "m.toml",
    )
    .unwrap();
    assert_eq!(c.check_against_machine(32 << 30, 0), Ok(()));
    let e = c.check_against_machine(16 << 30, 0).unwrap_err();
    assert!(e.contains("m.toml: system.mem_available_term: 8GiB"), "{e}");
    let swap = Config::parse(
        "[system]\nswap_free_term = \"4GiB\"\nswap_free_kill = \"1GiB\"\n",
        "s.toml",
    )
    .unwrap();
    assert_eq!(
        swap.check_against_machine(32 << 30, 0),
        Ok(()),
        "no swap: not checked"
    );
    assert!(swap.check_against_machine(32 << 30, 4 << 30).is_err());
    let off = Config::parse("[system]\nenabled = false\nmem_available_term = \"8GiB\"\nmem_available_kill = \"1GiB\"\n[[cgroup]]\npath = \"/a\"\n", "o.toml").unwrap();
    assert_eq!(off.check_against_machine(1 << 30, 0), Ok(()));
}

/// Found by the config fuzzer: a value with a tab was echoed raw in the suggestion.
#[test]
fn messages_escape_control_characters_the_file_held() {
    let e = err("[[rule]]\nexe = \"\\t/usr/bin/x\"\nadjust = 5\n");
    assert!(!e.chars().any(char::is_control), "{e:?}");
    assert!(e.contains("\\t/usr/bin/x"), "{e}");
}

/// `"8"` read as 8 bytes once turned a threshold off without a word.
#[test]
fn a_size_without_a_unit_is_refused_with_what_to_write() {
    for (text, key) in [
        (
            "[system]\nmem_available_term = \"8\"\n",
            "system.mem_available_term",
        ),
        ("[kill]\nmin_gain_max = \"64\"\n", "kill.min_gain_max"),
        (
            "[[cgroup]]\npath = \"/a\"\navailable_kill = \"16\"\n",
            "cgroup[1].available_kill",
        ),
    ] {
        let e = err(text);
        assert!(
            e.contains(&format!("{key}: ")) && e.contains("has no unit"),
            "{e}"
        );
        assert!(e.contains("MiB\""), "{e}");
    }
    let c = Config::parse(
        "[system]\nrefault_rate_term = \"0\"\nmem_available_kill = \"8B\"\n",
        "x",
    );
    assert!(c.is_ok(), "0 and an explicit B are what they say");
}

/// Levels in two units are compared once the machine's totals are known.
#[test]
fn a_kill_level_above_its_term_level_is_refused_whatever_the_units() {
    let c = Config::parse(
        "[system]\nmem_available_term = \"1GiB\"\nmem_available_kill = \"20%\"\n",
        "m.toml",
    )
    .unwrap();
    assert_eq!(
        c.check_against_machine(4 << 30, 0),
        Ok(()),
        "20% of 4 GiB is below 1 GiB"
    );
    let e = c.check_against_machine(8 << 30, 0).unwrap_err();
    assert!(
        e.contains("m.toml: system.mem_available_kill: 20% is above mem_available_term 1GiB"),
        "{e}"
    );
    let c = Config::parse("[system]\nmem_available_warn = \"5%\"\nmem_available_term = \"512MiB\"\nmem_available_kill = \"256MiB\"\n", "w").unwrap();
    assert!(c.check_against_machine(16 << 30, 0).is_ok());
    assert!(
        c.check_against_machine(4 << 30, 0)
            .unwrap_err()
            .contains("mem_available_warn")
    );
}

/// Users are found in /etc/passwd as a file, never through NSS.
#[test]
fn users_resolve_from_the_passwd_file() {
    let read = |text: &str, passwd| Config::from_files(vec![("x".into(), text.into())], passwd);
    let passwd = Passwd::parse("root:x:0:0::/:/x\nhooky:x:1234:99::/:/x\n");
    let c = read("[hooks]\nuser = \"hooky\"\nwarn = [\"/bin/true\"]\n[notify]\nusers = [\"hooky\"]\n[[rule]]\nuser = \"hooky\"\nadjust = 5\n", &passwd).unwrap();
    assert_eq!(
        c.accounts,
        Accounts {
            hooks: Some((1234, 99)),
            notify: vec![1234]
        }
    );
    assert_eq!(c.rules[0].uid, Some(1234));
    for text in [
        "[hooks]\nuser = \"root\"\nwarn = [\"/bin/true\"]\n",
        "[hooks]\nuser = \"ghost\"\nwarn = [\"/bin/true\"]\n",
        "[notify]\nusers = [\"root\"]\n",
        "[[rule]]\nuser = \"ghost\"\nadjust = 5\n",
    ] {
        assert!(read(text, &passwd).is_err(), "{text}");
    }
    assert!(
        read("[hooks]\nuser = \"ghost\"\n", &passwd).is_ok(),
        "no hook, no user needed"
    );
}

/// A key from the table reaches the episode's timings, with its bounds.
#[test]
fn exit_settle_is_a_kill_key_with_bounds() {
    assert_eq!(
        Config::default().kill.limits().exit_settle,
        Duration::from_millis(500)
    );
    let c = Config::parse("[kill]\nexit_settle = \"2s\"\n", "x").unwrap();
    assert_eq!(c.kill.limits().exit_settle, Duration::from_secs(2));
    assert!(c.to_toml().contains("exit_settle = \"2s\""));
    let e = err("[kill]\nexit_settle = 1\n");
    assert!(
        e.contains("kill.exit_settle") && e.contains("\"500ms\""),
        "{e}"
    );
}
