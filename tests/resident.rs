//! What the daemon keeps in memory. Start-up runs code the loop never runs again (the
//! argument parser, the TOML reader); the daemon gives those file pages back once it is set
//! up, and locks what the loop touches from then on. What a user relies on: whatever of
//! the daemon's own code is resident is locked, after the start and after a reload, so a
//! shortage never waits for it to be read back; and giving pages back never fails.

mod support;

use std::time::Duration;

use support::{Daemon, need_root};

/// Per mapping of the daemon's own executable: (permissions, Rss KiB, Locked KiB).
fn own_mappings(pid: u32) -> Vec<(String, u64, u64)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let exe = exe.to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    let mut ours = false;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields
            .first()
            .is_some_and(|r| r.contains('-') && !r.ends_with(':'))
        {
            ours = fields.get(5) == Some(&exe.as_str());
            if ours {
                out.push((fields[1].to_string(), 0, 0));
            }
            continue;
        }
        let kib = fields.get(1).and_then(|v| v.parse::<u64>().ok());
        match (ours, fields.first(), kib, out.last_mut()) {
            (true, Some(&"Rss:"), Some(k), Some(m)) => m.1 = k,
            (true, Some(&"Locked:"), Some(k), Some(m)) => m.2 = k,
            _ => {}
        }
    }
    out
}

/// Every mapping of the daemon's executable is locked as far as it is resident, and its code
/// is resident at all (the loop ran).
fn assert_resident_is_locked(daemon: &Daemon, when: &str) {
    let maps = own_mappings(daemon.child.id());
    assert!(
        maps.iter()
            .any(|(perms, rss, _)| perms == "r-xp" && *rss > 0),
        "{when}: no code of the daemon is resident: {maps:?}"
    );
    for (perms, rss, locked) in &maps {
        assert_eq!(
            rss, locked,
            "{when}: a {perms} mapping of the daemon has {rss} KiB resident, {locked} KiB locked"
        );
    }
}

#[test]
#[ignore = "needs root (to lock the daemon's memory)"]
fn what_stays_resident_is_locked_after_the_start_and_after_a_reload() {
    need_root("to lock the daemon's memory");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[daemon]\nlog = \"stderr\"\ndry_run = true\n").unwrap();
    let daemon = Daemon::start(&config, &[]);
    daemon.wait_for("event=start", Duration::from_secs(10));
    // A few rounds: the loop's own code is touched, and locked as it is.
    std::thread::sleep(Duration::from_millis(1500));
    assert_resident_is_locked(&daemon, "after the start");
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    daemon.wait_for("config reloaded", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_resident_is_locked(&daemon, "after a reload");
    let out = daemon.wait_for("config reloaded", Duration::ZERO);
    assert!(
        !out.contains("event=resident"),
        "giving back start-up's pages failed:\n{out}"
    );
}
