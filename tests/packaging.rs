//! The packages as a distribution receives them: `packaging/build.sh` builds the .deb and the
//! .rpm, and these tests check what a packager and an admin rely on: every file in its place
//! with its mode and owner, the configuration a conffile / `%config(noreplace)` that means "the
//! defaults", maintainer scripts that enable, start, try-restart, stop and purge as documented,
//! no lintian or rpmlint error, man pages that render without warnings, a bash completion that
//! loads from where the package puts it, and an oomward.toml(5) that documents every key.
//!
//! The tools come from `packaging/build-deps.sh`, which the tests run themselves when they are
//! root and something is missing (so in CI nothing is skipped). Elsewhere a test whose tools are
//! absent says so on stderr, in capitals, and passes without checking anything.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            std::fs::metadata(d.join(tool)).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
    })
}

/// Fails the test unless every tool is there, after installing what is missing if we are
/// root (`packaging/build-deps.sh`, once per run, saying what it installs); the tests that call
/// this are `#[ignore]`d with the same words.
fn need_tools(tools: &[&str]) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if tools.iter().any(|t| !on_path(t)) && is_root() {
        INSTALLED.get_or_init(|| {
            let st = Command::new("bash")
                .arg(repo().join("packaging/build-deps.sh"))
                .status()
                .expect("bash runs");
            assert!(st.success(), "packaging/build-deps.sh failed");
        });
    }
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    assert!(
        missing.is_empty(),
        "needs {} (run `bash packaging/build-deps.sh` as root)",
        missing.join(", ")
    );
}

/// Runs a command, panicking with its output when it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

const BUILD_TOOLS: &[&str] = &["dpkg-deb", "dpkg-shlibdeps", "rpmbuild", "rpm"];

/// The packages, built once for all the tests of this file, and the .deb's contents extracted.
struct Built {
    deb: PathBuf,
    rpm: PathBuf,
    /// `dpkg-deb -x` of the .deb.
    files: tempfile::TempDir,
    /// `dpkg-deb -e` of the .deb: the control files.
    control: tempfile::TempDir,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = run(Command::new("bash").arg(repo().join("packaging/build.sh")));
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let paths: Vec<&str> = text.lines().collect();
        let [.., deb, rpm] = paths[..] else {
            panic!("build.sh printed no paths: {text}");
        };
        let (deb, rpm) = (PathBuf::from(deb), PathBuf::from(rpm));
        let dir = repo().join("target/packages");
        assert_eq!(deb, dir.join(format!("oomward_{VERSION}-1_amd64.deb")));
        assert_eq!(rpm, dir.join(format!("oomward-{VERSION}-1.x86_64.rpm")));
        let files = tempfile::tempdir().unwrap();
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(files.path()));
        let control = tempfile::tempdir().unwrap();
        run(Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(control.path().join("DEBIAN")));
        Built {
            deb,
            rpm,
            files,
            control,
        }
    })
}

/// The presets the packages must ship: whatever `packaging/presets/*.toml` holds.
fn presets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("packaging/presets"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The files (not directories) both packages ship, with their modes; `zsh` and the docs differ.
fn common_files() -> BTreeMap<String, &'static str> {
    let mut m: BTreeMap<String, &'static str> = [
        ("/usr/bin/oomward", "-rwxr-xr-x"),
        ("/usr/lib/systemd/system/oomward.service", "-rw-r--r--"),
        ("/etc/oomward/config.toml", "-rw-r--r--"),
        ("/usr/share/man/man8/oomward.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man5/oomward.toml.5.gz", "-rw-r--r--"),
        (
            "/usr/share/bash-completion/completions/oomward",
            "-rw-r--r--",
        ),
        (
            "/usr/share/fish/vendor_completions.d/oomward.fish",
            "-rw-r--r--",
        ),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m))
    .collect();
    for p in presets() {
        m.insert(format!("/usr/share/oomward/presets/{p}"), "-rw-r--r--");
    }
    for d in unit_dropins() {
        m.insert(format!("/usr/share/oomward/systemd/{d}"), "-rw-r--r--");
    }
    m
}

/// The unit drop-ins the packages must ship: whatever `packaging/systemd/dropins/*.conf` holds.
fn unit_dropins() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("packaging/systemd/dropins"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".conf"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn deb_holds_every_file_with_its_mode_and_owner() {
    need_tools(BUILD_TOOLS);
    let b = built();
    let listing = stdout(Command::new("dpkg-deb").arg("-c").arg(&b.deb));
    let mut files = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    for line in listing.lines() {
        // drwxr-xr-x root/root         0 2026-12-02 12:00 ./etc/oomward/
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[1], "root/root", "not owned by root: {line}");
        let path = f[5].trim_start_matches('.').to_string();
        if f[0].starts_with('d') {
            assert_eq!(f[0], "drwxr-xr-x", "{line}");
            dirs.insert(path.trim_end_matches('/').to_string());
        } else {
            files.insert(path, f[0].to_string());
        }
    }
    let mut want: BTreeMap<String, String> = common_files()
        .into_iter()
        .map(|(p, m)| (p, m.to_string()))
        .collect();
    for p in [
        "/usr/share/zsh/vendor-completions/_oomward",
        "/usr/share/doc/oomward/copyright",
        "/usr/share/doc/oomward/changelog.Debian.gz",
        "/usr/share/doc/oomward/README.md.gz",
        "/usr/share/lintian/overrides/oomward",
    ] {
        want.insert(p.to_string(), "-rw-r--r--".to_string());
    }
    assert_eq!(files, want, "the .deb's files and modes:\n{listing}");
    for d in ["/etc/oomward/config.d", "/usr/share/oomward/presets"] {
        assert!(dirs.contains(d), "{d} missing:\n{listing}");
    }

    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(&b.deb));
    for field in [
        "Package: oomward\n".to_string(),
        format!("Version: {VERSION}-1\n"),
        "Architecture: amd64\n".to_string(),
        "Section: admin\n".to_string(),
    ] {
        assert!(info.contains(&field), "{field:?} missing:\n{info}");
    }
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{info}"));
    assert!(depends.contains("libc6 (>= "), "{depends}");
    let conffiles = std::fs::read_to_string(b.control.path().join("DEBIAN/conffiles")).unwrap();
    assert_eq!(conffiles, "/etc/oomward/config.toml\n");
    for s in ["postinst", "prerm", "postrm"] {
        let mode = std::fs::metadata(b.control.path().join("DEBIAN").join(s))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{s}");
    }
    // The unit is the one in the repository, unchanged.
    assert_eq!(
        std::fs::read(
            b.files
                .path()
                .join("usr/lib/systemd/system/oomward.service")
        )
        .unwrap(),
        std::fs::read(repo().join("packaging/systemd/oomward.service")).unwrap()
    );
    // The binary is the release build of this version, stripped.
    let exe = b.files.path().join("usr/bin/oomward");
    let v = stdout(Command::new(&exe).arg("--version"));
    assert!(v.contains(VERSION), "{v}");
    let sections = stdout(Command::new("objdump").arg("-h").arg(&exe));
    assert!(!sections.contains(".debug_info"), "not stripped");
}

#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn rpm_holds_every_file_with_its_mode_owner_and_config_flag() {
    need_tools(BUILD_TOOLS);
    let b = built();
    let listing = stdout(Command::new("rpm").arg("-qlp").arg(&b.rpm));
    let detail = stdout(Command::new("rpm").arg("-qp").arg(&b.rpm).args([
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} |%{FILEFLAGS:fflags}| %{FILENAMES}\\n]",
    ]));
    let mut files = BTreeMap::new();
    let mut flags = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    for line in detail.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [mode, owner, flag, path] = f[..] else {
            panic!("{line}");
        };
        assert_eq!(owner, "root:root", "{line}");
        if mode.starts_with('d') {
            assert_eq!(mode, "drwxr-xr-x", "{line}");
            dirs.insert(path.to_string());
        } else {
            files.insert(path.to_string(), mode.to_string());
            flags.insert(path.to_string(), flag.trim_matches('|').to_string());
        }
    }
    let mut want: BTreeMap<String, String> = common_files()
        .into_iter()
        .map(|(p, m)| (p, m.to_string()))
        .collect();
    for p in [
        "/usr/share/zsh/site-functions/_oomward",
        "/usr/share/doc/oomward/README.md",
        "/usr/share/licenses/oomward/LICENSE",
    ] {
        want.insert(p.to_string(), "-rw-r--r--".to_string());
    }
    assert_eq!(files, want, "the .rpm's files and modes:\n{listing}");
    for d in [
        "/etc/oomward",
        "/etc/oomward/config.d",
        "/usr/share/oomward/presets",
    ] {
        assert!(dirs.contains(d), "{d} not owned by the rpm:\n{detail}");
    }
    // %config(noreplace): c and n; %license: l; %doc: d.
    assert_eq!(flags["/etc/oomward/config.toml"], "cn", "{detail}");
    assert_eq!(
        flags["/usr/share/licenses/oomward/LICENSE"], "l",
        "{detail}"
    );
    assert_eq!(flags["/usr/share/doc/oomward/README.md"], "d", "{detail}");
    let config = stdout(Command::new("rpm").arg("-qcp").arg(&b.rpm));
    assert_eq!(config, "/etc/oomward/config.toml\n");
    let info = stdout(Command::new("rpm").arg("-qip").arg(&b.rpm));
    assert!(
        info.contains(&format!("Version     : {VERSION}\n")),
        "{info}"
    );
    assert!(info.contains("License     : MIT\n"), "{info}");
}

#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn shipped_config_is_only_comments_and_means_the_defaults() {
    need_tools(BUILD_TOOLS);
    let path = built().files.path().join("etc/oomward/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert!(
            line.is_empty() || line.starts_with('#'),
            "config.toml:{}: not a comment: {line}",
            i + 1
        );
    }
    for words in [
        "defaults live in the oomward binary",
        "/etc/oomward/config.d/",
    ] {
        assert!(text.contains(words), "the header says {words:?}");
    }
    // Every documented key is still there, commented out, for the admin to uncomment.
    let example = std::fs::read_to_string(repo().join("config.example.toml")).unwrap();
    for line in example
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(text.contains(&format!("\n# {line}\n")), "{line} missing");
    }
    let effective = |p: &Path| {
        let out = run(Command::new(env!("CARGO_BIN_EXE_oomward"))
            .arg("check-config")
            .arg(p));
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    let empty = tempfile::NamedTempFile::new().unwrap();
    assert_eq!(effective(&path), effective(empty.path()));
}

/// Runs `script` as root in a mount namespace where /etc is an overlay (writes vanish with the
/// namespace), /run is empty but for /run/systemd/system (systemd "running"), and
/// deb-systemd-helper, deb-systemd-invoke and systemctl are stubs that append their arguments
/// to $LOG and succeed. `$CTL` is the .deb's control directory. Returns the log and stderr.
fn in_sandbox(script: &str) -> (String, String) {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    let setup = r#"
set -eu
mount -t tmpfs tmpfs "$T"
mkdir "$T/upper" "$T/work" "$T/stubs"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/upper,workdir=$T/work" /etc
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
LOG=$T/log
: >"$LOG"
for s in deb-systemd-helper deb-systemd-invoke systemctl; do
    printf '#!/bin/sh\necho "%s $*" >>%s\n' "$s" "$LOG" >"$T/stubs/$s"
    chmod +x "$T/stubs/$s"
done
export PATH="$T/stubs:$PATH"
"#;
    let full = format!("{setup}\n{script}\necho '--- log'\ncat \"$LOG\"\n");
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &full])
        .env("T", t.path())
        .env("CTL", b.control.path().join("DEBIAN")));
    let text = String::from_utf8(out.stdout).unwrap();
    let log = text.split("--- log\n").nth(1).unwrap_or("").to_string();
    (log, String::from_utf8(out.stderr).unwrap())
}

/// Fails the test unless the packages' scripts can run in a throwaway sandbox here: root,
/// unshare(1) and the packaging tools.
fn need_sandbox() {
    assert!(
        is_root(),
        "needs root to run the packages' scripts in a sandbox"
    );
    assert!(on_path("unshare"), "needs unshare(1) (util-linux)");
    need_tools(BUILD_TOOLS);
}

#[test]
#[ignore = "needs root, unshare(1) and the packaging tools"]
fn deb_scripts_enable_start_try_restart_and_stop_the_unit() {
    need_sandbox();
    let (log, _) = in_sandbox(r#"sh "$CTL/postinst" configure"#);
    assert_eq!(
        log,
        "deb-systemd-helper --quiet was-enabled oomward.service\n\
         deb-systemd-helper enable oomward.service\n\
         systemctl --system daemon-reload\n\
         deb-systemd-invoke start oomward.service\n",
        "first installation: enabled (as debhelper does) and started"
    );
    let (log, _) = in_sandbox(r#"sh "$CTL/postinst" configure 0.0.1-1"#);
    assert!(
        log.ends_with(
            "systemctl --system daemon-reload\ndeb-systemd-invoke try-restart oomward.service\n"
        ),
        "upgrade: units reread, the daemon restarted only if it runs:\n{log}"
    );
    let (log, _) = in_sandbox(r#"sh "$CTL/prerm" upgrade 0.2.0-1"#);
    assert_eq!(
        log, "",
        "an upgrade leaves the old daemon running until postinst"
    );
    let (log, _) = in_sandbox(r#"sh "$CTL/prerm" remove"#);
    assert_eq!(log, "deb-systemd-invoke stop oomward.service\n");
    let (log, _) = in_sandbox(r#"sh "$CTL/postrm" remove"#);
    assert_eq!(log, "systemctl --system daemon-reload\n");
}

#[test]
#[ignore = "needs root, unshare(1) and the packaging tools"]
fn deb_purge_leaves_nothing_in_etc_but_the_admins_own_files() {
    need_sandbox();
    // dpkg has removed the conffile; config.d holds an enabled preset (a link into the removed
    // /usr/share/oomward/presets/).
    let (log, err) = in_sandbox(
        r#"
mkdir -p /etc/oomward/config.d
ln -s /usr/share/oomward/presets/desktop.toml /etc/oomward/config.d/50-desktop.toml
sh "$CTL/postrm" purge
if [ -e /etc/oomward ]; then echo "left: $(find /etc/oomward)" >&2; fi
"#,
    );
    assert_eq!(log, "deb-systemd-helper purge oomward.service\n");
    assert!(!err.contains("left:"), "purge left files behind: {err}");

    // A drop-in the admin wrote is theirs: kept, and said so.
    let (_, err) = in_sandbox(
        r#"
mkdir -p /etc/oomward/config.d
ln -s /usr/share/oomward/presets/server.toml /etc/oomward/config.d/50-server.toml
echo '[kill]' >/etc/oomward/config.d/90-local.toml
sh "$CTL/postrm" purge
ls -A /etc/oomward/config.d >&2
"#,
    );
    assert!(err.contains("90-local.toml"), "{err}");
    assert!(!err.contains("50-server.toml"), "{err}");
    assert!(err.contains("/etc/oomward kept"), "{err}");
}

#[test]
#[ignore = "needs root, unshare(1) and the packaging tools"]
fn dpkg_install_then_purge_leaves_nothing_behind() {
    need_sandbox();
    let b = built();
    let t = tempfile::tempdir().unwrap();
    // The real dpkg and deb-systemd-helper, on overlays of /etc, /usr and /var that vanish with
    // the namespace; /run without /run/systemd/system, so nothing is started. An admin enables
    // a preset in between, as the presets say.
    let script = r#"
set -eu
mount -t tmpfs tmpfs "$T"
for d in etc usr var; do
    mkdir -p "$T/$d/upper" "$T/$d/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/$d/upper,workdir=$T/$d/work" "/$d"
done
mount -t tmpfs tmpfs /run
dpkg -i "$DEB" >/dev/null
echo "installed: $(dpkg-query -W -f='${Status}' oomward)"
test -x /usr/bin/oomward && echo "binary: yes"
test -L /etc/systemd/system/multi-user.target.wants/oomward.service && echo "enabled: yes"
ln -s /usr/share/oomward/presets/desktop.toml /etc/oomward/config.d/50-desktop.toml
dpkg --purge oomward >/dev/null
echo "purged: $(dpkg-query -W -f='${Status}' oomward 2>/dev/null || echo gone)"
# What is left of the package: any file or link whose name says oomward, written since.
find "$T/etc/upper" "$T/usr/upper" "$T/var/upper" \( -type f -o -type l \) -name '*oomward*' \
    -printf 'left: %P\n'
test ! -e /etc/oomward || echo "left: /etc/oomward"
"#;
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("T", t.path())
        .env("DEB", &b.deb));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "installed: install ok installed",
        "binary: yes",
        "enabled: yes",
        "purged: gone",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(!text.contains("left:"), "{text}");
}

#[test]
#[ignore = "needs root, unshare(1) and the packaging tools"]
fn rpm_scriptlets_follow_presets_and_try_restart_on_upgrade() {
    need_sandbox();
    let b = built();
    let scripts = stdout(Command::new("rpm").arg("-qp").arg("--scripts").arg(&b.rpm));
    for s in ["postinstall", "preuninstall", "postuninstall"] {
        assert!(
            scripts.contains(&format!("{s} scriptlet")),
            "{s}:\n{scripts}"
        );
    }
    let scriptlet = |tag: &str| {
        stdout(
            Command::new("rpm")
                .arg("-qp")
                .arg("--qf")
                .arg(format!("%{{{tag}}}"))
                .arg(&b.rpm),
        )
    };
    let run_as = |tag: &str, arg: u32| {
        let body = scriptlet(tag);
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), body).unwrap();
        let (log, _) = in_sandbox(&format!("sh {} {arg}", path.path().display()));
        log
    };
    assert_eq!(
        run_as("POSTIN", 1),
        "systemctl --no-reload preset oomward.service\nsystemctl daemon-reload\n",
        "installation: enabled or not as the presets say, nothing started"
    );
    assert_eq!(run_as("POSTIN", 2), "systemctl daemon-reload\n");
    assert_eq!(
        run_as("PREUN", 0),
        "systemctl --no-reload disable --now oomward.service\n",
        "removal: disabled and stopped"
    );
    assert_eq!(run_as("PREUN", 1), "", "an upgrade keeps it");
    assert_eq!(
        run_as("POSTUN", 1),
        "systemctl daemon-reload\nsystemctl try-restart oomward.service\n",
        "upgrade: restarted if it runs"
    );
    assert_eq!(run_as("POSTUN", 0), "systemctl daemon-reload\n");
}

#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn lintian_and_rpmlint_report_no_errors() {
    need_tools(&["dpkg-deb", "rpmbuild", "lintian", "rpmlint"]);
    let b = built();
    // Every override says why.
    let overrides =
        std::fs::read_to_string(repo().join("packaging/deb/lintian-overrides")).unwrap();
    let mut previous = "";
    for line in overrides.lines() {
        if line.starts_with("oomward: ") {
            assert!(
                previous.starts_with('#'),
                "lintian override without a comment above it: {line}"
            );
        }
        previous = line;
    }
    let out = Command::new("lintian")
        .args(["--display-info", "--display-experimental", "--pedantic"])
        .args(["--tag-display-limit", "0"])
        .arg(&b.deb)
        .output()
        .expect("lintian runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("lintian:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E: ")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    assert!(
        !text.contains("unused-override") && !text.contains("mismatched-override"),
        "an override no longer applies: remove it\n{text}"
    );

    let out = Command::new("rpmlint")
        .arg("-c")
        .arg(repo().join("packaging/rpm/rpmlint.toml"))
        .arg(&b.rpm)
        .output()
        .expect("rpmlint runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("rpmlint:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(": E: ")).collect();
    assert!(errors.is_empty(), "rpmlint errors:\n{}", errors.join("\n"));
    assert!(text.contains(" 0 errors"), "{text}");
}

#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn man_pages_render_without_warnings() {
    need_tools(&["dpkg-deb", "rpmbuild", "groff", "man"]);
    let files = built().files.path();
    for (page, title) in [
        ("usr/share/man/man8/oomward.8.gz", "OOMWARD(8)"),
        ("usr/share/man/man5/oomward.toml.5.gz", "OOMWARD.TOML(5)"),
    ] {
        let path = files.join(page);
        let out = run(Command::new("man")
            .args(["--warnings=w", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env_remove("MAN_KEEP_FORMATTING")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"));
        let text = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.is_empty(), "{page}: man warns:\n{warnings}");
        assert!(
            text.to_uppercase().starts_with(title),
            "{page}: {}",
            &text[..text.len().min(200)]
        );
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"] {
            assert!(
                text.contains(&format!("\n{section}\n")),
                "{page}: no {section}"
            );
        }
        // groff itself, every warning on.
        let roff = run(Command::new("zcat").arg(&path)).stdout;
        let mut groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        groff.stdin.take().unwrap().write_all(&roff).unwrap();
        let out = groff.wait_with_output().unwrap();
        assert!(out.status.success());
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.is_empty(), "{page}: groff warns:\n{warnings}");
    }
}

#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn bash_completion_loads_from_where_the_package_installs_it() {
    need_tools(&["dpkg-deb", "rpmbuild", "bash"]);
    let files = built().files.path();
    let file = files.join("usr/share/bash-completion/completions/oomward");
    // Sourced directly, as the brief test of a completion file.
    let out = stdout(
        Command::new("bash")
            .arg("-c")
            .arg(format!("source {}; complete -p oomward", file.display())),
    );
    assert!(out.contains("oomward"), "{out}");
    // Found by bash-completion's on-demand loader in the package's directory, and completing
    // subcommands and options.
    let loader = Path::new("/usr/share/bash-completion/bash_completion");
    if !loader.exists() {
        eprintln!("\n!!! bash-completion not installed: its loader not tried !!!\n");
        return;
    }
    let script = format!(
        r#"source {loader}
__load_completion oomward || exit 3
complete -p oomward
COMP_WORDS=(oomward che); COMP_CWORD=1; COMP_LINE="oomward che"; COMP_POINT=${{#COMP_LINE}}
$(complete -p oomward | sed -n 's/.*-F \([^ ]*\).*/\1/p') oomward che oomward
echo "words: ${{COMPREPLY[*]}}"
COMP_WORDS=(oomward rank --); COMP_CWORD=2; COMP_LINE="oomward rank --"; COMP_POINT=${{#COMP_LINE}}
$(complete -p oomward | sed -n 's/.*-F \([^ ]*\).*/\1/p') oomward -- rank
echo "rank: ${{COMPREPLY[*]}}"
"#,
        loader = loader.display()
    );
    let out = stdout(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("XDG_DATA_DIRS", files.join("usr/share"))
            .env("BASH_COMPLETION_USER_DIR", files.join("nonexistent")),
    );
    assert!(out.contains("words: check-config"), "{out}");
    let rank = out.lines().find(|l| l.starts_with("rank: ")).unwrap_or("");
    for opt in ["--scope", "--json", "--top"] {
        assert!(rank.contains(opt), "{out}");
    }
}

/// `table -> keys` of TOML printed by `check-config` (`[[x]]` and `[x]` both as `x`).
fn printed_keys(toml: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']']).to_string();
        } else if let Some((k, _)) = line.split_once(" = ") {
            keys.entry(table.clone()).or_default().insert(k.to_string());
        }
    }
    keys
}

/// `table -> keys` that oomward.toml(5) documents: the bold tags (`.TP` then `\fBkey\fR...`) in
/// the subsection (`.SS "[table]"`) of each table.
fn documented_keys(roff: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = None;
    let mut after_tp = false;
    for line in roff.lines() {
        if let Some(title) = line.strip_prefix(".SS ") {
            table = Some(title.trim_matches(['"', '[', ']']).to_string());
        } else if line.starts_with(".SH") {
            table = None;
        } else if after_tp && let (Some(t), Some(rest)) = (&table, line.strip_prefix("\\fB")) {
            let key: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            keys.entry(t.clone()).or_default().insert(key);
        }
        after_tp = line == ".TP";
    }
    keys
}

#[test]
fn toml_man_page_documents_every_key_check_config_prints() {
    let dir = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The release profile, as build.sh builds it: it does not wait for the lock of the debug
    // build directory this test runs from.
    run(Command::new(cargo)
        .args(["run", "--release", "--quiet", "--example", "gen_docs", "--"])
        .arg(dir.path())
        .current_dir(repo()));
    let roff = std::fs::read_to_string(dir.path().join("oomward.toml.5")).unwrap();
    let documented = documented_keys(&roff);

    // The built-in defaults, and one entry of each array with every key set.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        r#"
[[cgroup]]
path = "/app"
[[rule]]
exe = "/usr/bin/x"
exe_namespace = "any"
user = 0
cgroup = "/a/**"
comm = "^x$"
cmdline = "y"
adjust = 5
[[rule]]
exe = "/usr/bin/y"
protect = true
"#,
    )
    .unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_oomward"))
        .arg("check-config")
        .arg(config.path()));
    let printed = printed_keys(&String::from_utf8(out.stdout).unwrap());
    for table in ["daemon", "system", "kill", "policy", "cgroup", "rule"] {
        assert!(
            printed.contains_key(table),
            "check-config printed no [{table}]"
        );
    }
    let mut missing = Vec::new();
    for (table, keys) in &printed {
        for key in keys {
            if !documented.get(table).is_some_and(|d| d.contains(key)) {
                missing.push(format!("[{table}] {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "oomward.toml(5) does not document: {}\n(documented: {documented:?})",
        missing.join(", ")
    );
}

/// The unit as installed: `systemd-analyze verify` has nothing to say (with the packaged
/// binary and man pages in place, as on an installed system), and the sandbox's exposure
/// (`systemd-analyze security`) is no worse than the 2.3 it was rated before Type=notify, the
/// watchdog and RestrictRealtime= were added.
#[test]
#[ignore = "builds the packages: needs their tools (as root it installs them with packaging/build-deps.sh)"]
fn the_unit_verifies_and_keeps_its_security_exposure() {
    need_tools(&["systemd-analyze", "man"]);
    need_tools(BUILD_TOOLS);
    let b = built();
    let root = b.files.path();
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/oomward.service"))
        .unwrap()
        .replace(
            "/usr/bin/oomward",
            root.join("usr/bin/oomward").to_str().unwrap(),
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oomward.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", root.join("usr/share/man"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    let report = stdout(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&path),
    );
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for oomward.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(level <= 2.3, "exposure {level} > 2.3:\n{report}");
}
