//! The VM lab: boots Debian cloud kernels under QEMU with a busybox initramfs, a static
//! oomward, memhog and supervisor, and one scenario script (`tests/vm/scenarios/NAME.sh`), and
//! reads the verdict back from the serial console.
//!
//! - `tests/vm/prepare.sh` (run once per test run, cheap when cached) installs QEMU, unpacks the
//!   kernels and builds one base initramfs per kernel under `target/vm-cache/`.
//! - oomward, memhog and supervisor (the examples) are built static (`+crt-static`) into
//!   `target/vm-build/`, a target directory of their own so the inner cargo never waits on the
//!   outer one's lock.
//! - Per run, a second (uncompressed newc) cpio archive is appended to the base initramfs: the
//!   three binaries (in `/bin`), `/lab/lib.sh`, `/lab/env.sh` and the scenario as `/scenario.sh`.
//! - A scenario's header may say `#@ mem=320M` (guest RAM, default 512M), `#@ disk` (an
//!   empty ext4 image as /dev/vda, writes discarded at the end) and `#@ earlyoom` (Debian's
//!   earlyoom as /usr/bin/earlyoom, with its libraries) and `#@ parallel` (may run beside
//!   another such guest: nothing in it is timed).
//! - The guest prints `RESULT PASS|FAIL NAME key=value ...`; QEMU ends when the guest powers off
//!   (or panics: `panic=-1` + `-no-reboot`), or when the wall-clock limit kills it.
//! - The systemd guest (`Lab::run_systemd`, for `tests/systemd_lab.rs`) boots a whole Debian 12
//!   root file system with systemd as PID 1 (`tests/vm/prepare-systemd.sh`) as the initramfs,
//!   with the same runner and parser; its scenarios are in `tests/vm/systemd/scenarios/`.
//!
//! Environment: `OOMWARD_SKIP_VM=1` skips (saying so), `OOMWARD_VM_ACCEL=tcg|kvm` forces the
//! accelerator (default: KVM only if a probe boot succeeds), `OOMWARD_VM_CACHE` moves the cache.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

/// The kernels of the lab, as `prepare.sh` names them.
pub const KERNELS: [&str; 2] = ["6.12", "6.1"];

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Writes to the real stderr, past the test harness's output capture: skip notices and
/// timings must show in an ordinary `cargo test` run.
pub fn notice(msg: &str) {
    // One write, so the line is not split by the harness's own output.
    let line = format!("vm-lab: {msg}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    fn args(self) -> [&'static str; 4] {
        match self {
            // qemu64, not max: measured side by side on this machine kind, the same guests ran
            // 1.4x (oracle) to 1.7x (system_desktop) faster; every guest binary is baseline
            // x86-64 (the kernels, the static oomward, Debian's earlyoom).
            Accel::Tcg => ["-accel", "tcg", "-cpu", "qemu64"],
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        }
    }
    fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// The virtual machine of one guest run.
struct Machine<'a> {
    /// Guest RAM, as QEMU's `-m` takes it (`512M`).
    mem: &'a str,
    cpus: u32,
    /// The scratch disk as /dev/vda (QEMU's snapshot=on: the image itself is never written).
    disk: Option<&'a Path>,
    /// The kernel's command line.
    append: &'a str,
}

/// Everything a guest run needs, made once per test run.
pub struct Lab {
    cache: PathBuf,
    oomward: PathBuf,
    memhog: PathBuf,
    supervisor: PathBuf,
    uiprobe: PathBuf,
    accel: Accel,
}

static LAB: OnceLock<Result<Lab, String>> = OnceLock::new();
/// Guests whose scenario races the kernel or is timed run alone (write lock): each has one
/// vCPU and the machine has two cores, and a neighbour would make their timings noise. A
/// scenario marked `#@ parallel` (an oracle: nothing in it is timed) takes a read lock and may
/// run beside another such guest.
static GUEST: RwLock<()> = RwLock::new(());

fn vm_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests/vm")
}

impl Lab {
    /// The lab, prepared on first use; panics with the reason if it cannot be prepared.
    pub fn get() -> &'static Lab {
        match LAB.get_or_init(Lab::prepare) {
            Ok(lab) => lab,
            Err(e) => {
                panic!("VM lab not available: {e}\n(set OOMWARD_SKIP_VM=1 to skip the VM tests)")
            }
        }
    }

    fn prepare() -> Result<Lab, String> {
        let cache = std::env::var_os("OOMWARD_VM_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("target/vm-cache"));
        let t = Instant::now();
        let out = Command::new("bash")
            .arg(vm_dir().join("prepare.sh"))
            .arg(&cache)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running tests/vm/prepare.sh: {e}"))?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(format!(
                "tests/vm/prepare.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let prepared = t.elapsed();

        let t = Instant::now();
        let [oomward, memhog, supervisor, uiprobe] = build_static()?;
        let built = t.elapsed();

        let mut lab = Lab {
            cache,
            oomward,
            memhog,
            supervisor,
            uiprobe,
            accel: Accel::Tcg,
        };
        lab.accel = lab.choose_accel();
        notice(&format!(
            "prepared in {:.1} s, static oomward+memhog+supervisor+uiprobe built in {:.1} s, accel={}",
            prepared.as_secs_f64(),
            built.as_secs_f64(),
            lab.accel.name()
        ));
        Ok(lab)
    }

    /// TCG unless asked otherwise or a KVM probe boot ends with its result line.
    fn choose_accel(&self) -> Accel {
        match std::env::var("OOMWARD_VM_ACCEL").as_deref() {
            Ok("tcg") => return Accel::Tcg,
            Ok("kvm") => return Accel::Kvm,
            _ => {}
        }
        let usable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if !usable {
            return Accel::Tcg;
        }
        let probe = "echo \"RESULT PASS $SCENARIO\"\n";
        match self.boot(
            KERNELS[0],
            "kvm_probe",
            probe,
            Accel::Kvm,
            Duration::from_secs(30),
        ) {
            Ok(g) if g.done.is_some() && g.results.iter().any(|r| r.pass) => Accel::Kvm,
            Ok(g) => {
                println!(
                    "KVM probe boot failed, using TCG: {}",
                    g.qemu_stderr.lines().next().unwrap_or("no result")
                );
                Accel::Tcg
            }
            Err(e) => {
                println!("KVM probe boot failed, using TCG: {e}");
                Accel::Tcg
            }
        }
    }

    /// The cache directory (kernels, logs, benchmark printouts).
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Boots `kernel` with `tests/vm/scenarios/NAME.sh`, at most `limit` of wall-clock time.
    /// `name` may be `NAME:VARIANT`: the same script, with `VARIANT` set in its environment
    /// (and `SCENARIO` the whole `NAME:VARIANT`, as its result line names it).
    pub fn run(&self, kernel: &str, name: &str, limit: Duration) -> Guest {
        let file = name.split_once(':').map_or(name, |(f, _)| f);
        let path = vm_dir().join("scenarios").join(format!("{file}.sh"));
        let script = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let parallel = script.lines().any(|l| l.trim() == "#@ parallel");
        let _shared;
        let _alone;
        if parallel {
            _shared = GUEST.read().unwrap_or_else(|e| e.into_inner());
        } else {
            _alone = GUEST.write().unwrap_or_else(|e| e.into_inner());
        }
        let guest = self
            .boot(kernel, name, &script, self.accel, limit)
            .unwrap_or_else(|e| panic!("{name} on {kernel}: {e}"));
        self.timing(kernel, name, &guest);
        guest
    }

    /// The one timing line of a run: `NAME on KERNEL: VERDICT in S s wall (boot, scenario)`.
    fn timing(&self, kernel: &str, name: &str, guest: &Guest) {
        let verdict = match guest.results.iter().find(|r| r.name == name) {
            Some(r) if r.pass => "PASS",
            Some(_) => "FAIL",
            None if guest.timed_out => "TIMEOUT",
            None => "NO RESULT",
        };
        notice(&format!(
            "{name} on {kernel}: {verdict} in {:.1} s wall (boot {}, scenario {} guest s, accel {})",
            guest.wall.as_secs_f64(),
            guest
                .boot_uptime
                .map_or("?".into(), |u| format!("{u:.1} s")),
            match (guest.boot_uptime, guest.done) {
                (Some(b), Some((_, d))) => format!("{:.1}", d - b),
                _ => "?".into(),
            },
            self.accel.name()
        ));
    }

    fn boot(
        &self,
        kernel: &str,
        name: &str,
        script: &str,
        accel: Accel,
        limit: Duration,
    ) -> Result<Guest, String> {
        let kdir = self.cache.join("kernels").join(kernel);
        let base = std::fs::read(kdir.join("initramfs.cpio"))
            .map_err(|e| format!("base initramfs of {kernel}: {e}"))?;
        let lib = std::fs::read(vm_dir().join("lib.sh")).map_err(|e| format!("lib.sh: {e}"))?;
        let variant = name.split_once(':').map_or("", |(_, v)| v);
        let env = format!("SCENARIO={name}\nKERNEL={kernel}\nVARIANT={variant}\n");
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut initrd = base;
        // The base archive was written by cpio(1), padded to 512 bytes; ours starts aligned.
        while !initrd.len().is_multiple_of(4) {
            initrd.push(0);
        }
        // `#@ earlyoom`: Debian's earlyoom with its shared libraries (prepare.sh bundles them).
        if script.lines().any(|l| l.trim() == "#@ earlyoom") {
            initrd.extend_from_slice(&read(&self.cache.join("earlyoom.cpio"))?);
        }
        let mut cpio = Newc::default();
        cpio.dir("lab");
        cpio.file("lab/lib.sh", 0o644, &lib);
        cpio.file("lab/env.sh", 0o644, env.as_bytes());
        cpio.file("scenario.sh", 0o755, script.as_bytes());
        cpio.file("bin/oomward", 0o755, &read(&self.oomward)?);
        cpio.file("bin/memhog", 0o755, &read(&self.memhog)?);
        cpio.file("bin/supervisor", 0o755, &read(&self.supervisor)?);
        initrd.extend_from_slice(&cpio.finish());
        let log_stem = format!("{kernel}-{}", name.replace(':', "-"));
        let initrd_path = self.write_run(&log_stem, &initrd)?;

        let mem = header_mem(script).unwrap_or("512M");
        let disk_img = self.cache.join("disk.img");
        let disk = has_header(script, "#@ disk").then_some(disk_img.as_path());
        let machine = Machine {
            mem,
            cpus: 1,
            disk,
            append: "console=ttyS0 panic=-1 quiet",
        };
        self.qemu(
            kernel,
            name,
            &log_stem,
            &initrd_path,
            &machine,
            accel,
            limit,
        )
    }

    /// Writes a run's whole initramfs to `runs/STEM.cpio` in the cache; its path.
    fn write_run(&self, stem: &str, initrd: &[u8]) -> Result<PathBuf, String> {
        let runs = self.cache.join("runs");
        std::fs::create_dir_all(&runs).map_err(|e| format!("{}: {e}", runs.display()))?;
        let initrd_path = runs.join(format!("{stem}.cpio"));
        std::fs::write(&initrd_path, initrd)
            .map_err(|e| format!("{}: {e}", initrd_path.display()))?;
        Ok(initrd_path)
    }

    /// Runs QEMU on `kernel` with `initrd` (the whole initramfs, already written) on `machine`,
    /// reads the serial console until the guest powers off or `limit` of wall-clock time has
    /// passed, and keeps the transcript as `logs/LOG_STEM.log`.
    #[allow(clippy::too_many_arguments)]
    fn qemu(
        &self,
        kernel: &str,
        name: &str,
        log_stem: &str,
        initrd_path: &Path,
        machine: &Machine,
        accel: Accel,
        limit: Duration,
    ) -> Result<Guest, String> {
        let kdir = self.cache.join("kernels").join(kernel);
        let mut cmd = Command::new("qemu-system-x86_64");
        if let Some(disk) = machine.disk {
            let mut drive = std::ffi::OsString::from("file=");
            drive.push(disk);
            drive.push(",format=raw,if=virtio,snapshot=on");
            cmd.arg("-drive").arg(drive);
        }
        cmd.args(accel.args())
            .args(["-smp", &machine.cpus.to_string(), "-m", machine.mem])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(kdir.join("vmlinuz"))
            .arg("-initrd")
            .arg(initrd_path)
            .args(["-append", machine.append])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting QEMU: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = start + limit;
        let mut lines = Vec::new();
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    println!("[{kernel} {name}] {line}");
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        let status = child.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
        let wall = start.elapsed();
        // The reader ends once QEMU's stdout closes; take what it still had.
        let _ = reader.join();
        lines.extend(rx.try_iter());
        let qemu_stderr = err_reader.join().unwrap_or_default();
        let guest = Guest::new(kernel, name, lines, wall, timed_out, status, qemu_stderr);
        let logs = self.cache.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        let _ = std::fs::write(logs.join(format!("{log_stem}.log")), guest.transcript());
        Ok(guest)
    }
}

/// True if the scenario has the header line `line` (`#@ disk`).
fn has_header(script: &str, line: &str) -> bool {
    script.lines().any(|l| l.trim() == line)
}

/// The first `#@ mem=SIZE` header line of a scenario: the guest's RAM.
fn header_mem(script: &str) -> Option<&str> {
    script
        .lines()
        .find_map(|l| l.strip_prefix("#@ mem="))
        .map(str::trim)
}

/// The kernel the systemd guest boots: Debian 12's own, the one its systemd was built for.
pub const SYSTEMD_KERNEL: &str = "6.1";

/// The systemd guest's root file system, made once per test run by `prepare-systemd.sh`.
static SYSTEMD_ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The systemd guest: a real Debian 12 with systemd as PID 1, dbus and sshd, its whole root
/// file system one initramfs (`tests/vm/prepare-systemd.sh`). Its `lab-scenario.service` runs,
/// once the boot reached multi-user.target, `/lab/run.sh` (`tests/vm/systemd/run.sh`), which
/// runs the scenario `tests/vm/systemd/scenarios/NAME.sh` and prints the same `VM-BOOT`,
/// `RESULT` and `VM-DONE` lines as the busybox guest's `/init`.
impl Lab {
    /// The root file system archive, built (or found in the cache) on first use; panics with
    /// the reason if it cannot be.
    pub fn systemd_rootfs(&self) -> &'static Path {
        let built = SYSTEMD_ROOTFS.get_or_init(|| {
            let t = Instant::now();
            let out = Command::new("bash")
                .arg(vm_dir().join("prepare-systemd.sh"))
                .arg(&self.cache)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running tests/vm/prepare-systemd.sh: {e}"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            print!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
            if !out.status.success() {
                return Err(format!(
                    "tests/vm/prepare-systemd.sh failed ({}):\n{stdout}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let path = stdout.lines().last().unwrap_or_default().trim().to_string();
            notice(&format!(
                "systemd root file system ready in {:.1} s: {path}",
                t.elapsed().as_secs_f64()
            ));
            Ok(PathBuf::from(path))
        });
        match built {
            Ok(p) => p,
            Err(e) => panic!("systemd guest not available: {e}"),
        }
    }

    /// Boots the systemd guest on [`SYSTEMD_KERNEL`] with `tests/vm/systemd/scenarios/NAME.sh`
    /// (RAM from its `#@ mem=` header, default 1G), at most `limit` of wall-clock time. Appended
    /// to the root file system: the scenario as `/scenario.sh`, `/lab/run.sh`, the busybox
    /// guest's helpers as `/lab/lib.sh` with `/lab/env.sh` (SCENARIO, KERNEL), the systemd
    /// helpers as `/lab/systemd.sh`, the static memhog, supervisor and uiprobe in
    /// `/usr/local/bin`, the lab kernel's few modules (zram, virtio_blk, with what they depend
    /// on; `prepare.sh` extracts them) under `/usr/lib/modules/RELEASE/`, and `files` (path in
    /// the guest without the leading `/`, mode, host file). `name` may be `NAME:VARIANT`, as in
    /// [`Lab::run`]. A scenario with the header `#@ disk` gets the image's scratch disk
    /// (`disk-HASH.img` beside the root file system: ext4 with files, see
    /// `prepare-systemd.sh`) as /dev/vda, writes discarded. The serial transcript is kept as
    /// `logs/KERNEL-systemd-NAME[-VARIANT].log`.
    pub fn run_systemd(&self, name: &str, files: &[(&str, u32, &Path)], limit: Duration) -> Guest {
        let kernel = SYSTEMD_KERNEL;
        let rootfs = self.systemd_rootfs();
        let _alone = GUEST.write().unwrap_or_else(|e| e.into_inner());
        let guest = self
            .boot_systemd(kernel, name, rootfs, files, limit)
            .unwrap_or_else(|e| panic!("{name} on {kernel} (systemd): {e}"));
        self.timing(kernel, name, &guest);
        guest
    }

    fn boot_systemd(
        &self,
        kernel: &str,
        name: &str,
        rootfs: &Path,
        files: &[(&str, u32, &Path)],
        limit: Duration,
    ) -> Result<Guest, String> {
        let sd_dir = vm_dir().join("systemd");
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let (file, variant) = name.split_once(':').unwrap_or((name, ""));
        let script = std::fs::read_to_string(sd_dir.join("scenarios").join(format!("{file}.sh")))
            .map_err(|e| format!("scenario {file}: {e}"))?;
        let mut initrd = read(rootfs)?;
        while !initrd.len().is_multiple_of(4) {
            initrd.push(0);
        }
        let env = format!("SCENARIO={name}\nKERNEL={kernel}\nVARIANT={variant}\n");
        let mut cpio = Newc::default();
        cpio.dir("lab");
        let kdir = self.cache.join("kernels").join(kernel);
        let release = std::fs::read_to_string(kdir.join("release"))
            .map_err(|e| format!("release of {kernel}: {e}"))?;
        let modules = format!("usr/lib/modules/{}", release.trim());
        cpio.dir("usr/lib/modules");
        cpio.tree(
            &modules,
            &kdir.join("modules/lib/modules").join(release.trim()),
        )?;
        cpio.file("lab/run.sh", 0o755, &read(&sd_dir.join("run.sh"))?);
        cpio.file("lab/lib.sh", 0o644, &read(&vm_dir().join("lib.sh"))?);
        cpio.file("lab/systemd.sh", 0o644, &read(&sd_dir.join("lib.sh"))?);
        cpio.file("lab/env.sh", 0o644, env.as_bytes());
        cpio.file("scenario.sh", 0o755, script.as_bytes());
        cpio.file("usr/local/bin/memhog", 0o755, &read(&self.memhog)?);
        cpio.file("usr/local/bin/supervisor", 0o755, &read(&self.supervisor)?);
        cpio.file("usr/local/bin/uiprobe", 0o755, &read(&self.uiprobe)?);
        for (guest_path, mode, host) in files {
            cpio.file(guest_path, *mode, &read(host)?);
        }
        initrd.extend_from_slice(&cpio.finish());
        let log_stem = format!("{kernel}-systemd-{}", name.replace(':', "-"));
        let initrd_path = self.write_run(&log_stem, &initrd)?;
        // The initramfs is the root file system (rdinit: there is no /init to switch from).
        // Two vCPUs: systemd starts units in parallel, and under software emulation each vCPU
        // is a host thread (measured: multi-user.target 12 s after power-on instead of 17 s).
        // Nothing in these scenarios is timed closely enough for a neighbour's CPU to matter.
        let disk_img = systemd_disk(rootfs);
        let machine = Machine {
            mem: header_mem(&script).unwrap_or("1G"),
            cpus: 2,
            disk: has_header(&script, "#@ disk").then_some(disk_img.as_path()),
            append: "console=ttyS0 rdinit=/sbin/init panic=-1 quiet",
        };
        let result = self.qemu(
            kernel,
            name,
            &log_stem,
            &initrd_path,
            &machine,
            self.accel,
            limit,
        );
        // A copy of the whole root file system per scenario: not worth keeping.
        let _ = std::fs::remove_file(&initrd_path);
        result
    }
}

/// The systemd guest's scratch disk: `disk-HASH.img` beside `rootfs-HASH.cpio`, made with it.
fn systemd_disk(rootfs: &Path) -> PathBuf {
    let name = rootfs.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let disk = name
        .strip_prefix("rootfs-")
        .and_then(|n| n.strip_suffix(".cpio"))
        .map_or_else(|| "disk.img".to_string(), |h| format!("disk-{h}.img"));
    rootfs.with_file_name(disk)
}

/// Builds the static oomward, memhog, supervisor and uiprobe for the guest.
fn build_static() -> Result<[PathBuf; 4], String> {
    let target_dir = Path::new(MANIFEST_DIR).join("target/vm-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(MANIFEST_DIR)
        .args(["build", "--release", "--target", TARGET])
        .args(["--bin", "oomward", "--example", "memhog"])
        .args(["--example", "supervisor", "--example", "uiprobe"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "static build failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let release = target_dir.join(TARGET).join("release");
    let oomward = release.join("oomward");
    let memhog = release.join("examples").join("memhog");
    let supervisor = release.join("examples").join("supervisor");
    let uiprobe = release.join("examples").join("uiprobe");
    for p in [&oomward, &memhog, &supervisor, &uiprobe] {
        if !p.exists() {
            return Err(format!("{} missing after the build", p.display()));
        }
    }
    Ok([oomward, memhog, supervisor, uiprobe])
}

/// One `RESULT PASS|FAIL NAME key=value ...` line.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub pass: bool,
    pub name: String,
    pub kv: BTreeMap<String, String>,
    pub line: String,
}

impl Verdict {
    pub fn parse(line: &str) -> Option<Verdict> {
        let rest = line.strip_prefix("RESULT ")?;
        let mut words = split_words(rest).into_iter();
        let pass = match words.next()?.as_str() {
            "PASS" => true,
            "FAIL" => false,
            _ => return None,
        };
        let name = words.next()?;
        let kv = words
            .filter_map(|w| {
                w.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Some(Verdict {
            pass,
            name,
            kv,
            line: line.to_string(),
        })
    }
}

/// Splits on spaces, keeping double-quoted values (`key="a b"`) together, quotes removed.
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// What one guest run printed, and how it ended.
pub struct Guest {
    pub kernel: String,
    pub scenario: String,
    pub lines: Vec<String>,
    pub results: Vec<Verdict>,
    pub wall: Duration,
    /// Guest uptime (s) when /init started the scenario.
    pub boot_uptime: Option<f64>,
    /// The scenario's shell exit code and the guest uptime (s) when it ended.
    pub done: Option<(i32, f64)>,
    pub timed_out: bool,
    pub qemu_status: std::process::ExitStatus,
    pub qemu_stderr: String,
}

impl Guest {
    fn new(
        kernel: &str,
        scenario: &str,
        lines: Vec<String>,
        wall: Duration,
        timed_out: bool,
        qemu_status: std::process::ExitStatus,
        qemu_stderr: String,
    ) -> Guest {
        let results = lines.iter().filter_map(|l| Verdict::parse(l)).collect();
        let field = |prefix: &str, key: &str| -> Option<String> {
            let l = lines.iter().find(|l| l.starts_with(prefix))?;
            split_words(l)
                .into_iter()
                .find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_string))
        };
        let boot_uptime = field("VM-BOOT ", "uptime").and_then(|u| u.parse().ok());
        let done = match (field("VM-DONE ", "rc"), field("VM-DONE ", "uptime")) {
            (Some(rc), Some(up)) => rc.parse().ok().zip(up.parse().ok()),
            _ => None,
        };
        Guest {
            kernel: kernel.into(),
            scenario: scenario.into(),
            lines,
            results,
            wall,
            boot_uptime,
            done,
            timed_out,
            qemu_status,
            qemu_stderr,
        }
    }

    /// Everything the run printed, for failure messages and the log file.
    pub fn transcript(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== {} on {}: wall {:.1} s, timed_out={}, qemu {}",
            self.scenario,
            self.kernel,
            self.wall.as_secs_f64(),
            self.timed_out,
            self.qemu_status
        );
        for l in &self.lines {
            let _ = writeln!(s, "{l}");
        }
        if !self.qemu_stderr.trim().is_empty() {
            let _ = writeln!(s, "== qemu stderr\n{}", self.qemu_stderr);
        }
        s
    }

    /// The scenario's verdict; panics (with the transcript) unless there is exactly one and it
    /// says PASS.
    pub fn expect_pass(&self) -> &Verdict {
        let mine: Vec<&Verdict> = self
            .results
            .iter()
            .filter(|r| r.name == self.scenario)
            .collect();
        match mine.as_slice() {
            [v] if v.pass => v,
            [v] => panic!(
                "{} on {}: FAIL: {}\n{}",
                self.scenario,
                self.kernel,
                v.line,
                self.transcript()
            ),
            [] => panic!(
                "{} on {}: no RESULT line{}\n{}",
                self.scenario,
                self.kernel,
                if self.timed_out {
                    " (wall-clock limit reached, QEMU killed)"
                } else {
                    ""
                },
                self.transcript()
            ),
            _ => panic!(
                "{} on {}: {} RESULT lines\n{}",
                self.scenario,
                self.kernel,
                mine.len(),
                self.transcript()
            ),
        }
    }

    /// Asserts each `(key, want)` of `facts` in turn with [`Guest::expect_kv`]: a scenario's
    /// verdict is mostly such a list, read more easily as one table than as a call a fact.
    pub fn expect_kvs(&self, facts: &[(&str, &str)]) {
        for (key, want) in facts {
            self.expect_kv(key, want);
        }
    }

    /// Asserts `key` of the verdict equals `want`.
    pub fn expect_kv(&self, key: &str, want: &str) {
        let v = self.expect_pass();
        let got = v.kv.get(key).map(String::as_str);
        assert_eq!(
            got,
            Some(want),
            "{} on {}: {key} (verdict: {})\n{}",
            self.scenario,
            self.kernel,
            v.line,
            self.transcript()
        );
    }

    /// The verdict's `key` as a number; panics with the transcript if absent or not a number.
    pub fn num(&self, key: &str) -> i64 {
        let v = self.expect_pass();
        v.kv.get(key)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{} on {}: {key} missing or not a number in: {}\n{}",
                    self.scenario,
                    self.kernel,
                    v.line,
                    self.transcript()
                )
            })
    }

    /// Lines starting with `PREFIX| `, prefix removed.
    pub fn dumped(&self, prefix: &str) -> Vec<&str> {
        let p = format!("{prefix}| ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(p.as_str()))
            .collect()
    }

    /// The lines strictly between the first `begin` line and the next `end` line.
    pub fn between(&self, begin: &str, end: &str) -> Option<String> {
        let i = self.lines.iter().position(|l| l == begin)?;
        let j = i + 1 + self.lines[i + 1..].iter().position(|l| l == end)?;
        Some(self.lines[i + 1..j].join("\n"))
    }

    /// Panics with `msg` and the transcript.
    pub fn fail(&self, msg: &str) -> ! {
        panic!(
            "{} on {}: {msg}\n{}",
            self.scenario,
            self.kernel,
            self.transcript()
        )
    }
}

/// A newc (SVR4, no CRC) cpio archive, the format the kernel unpacks as an initramfs.
#[derive(Default)]
pub struct Newc {
    buf: Vec<u8>,
    ino: u32,
}

impl Newc {
    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino + 1000,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // dev major
            0, // dev minor
            0, // rdev major
            0, // rdev minor
            name.len() as u32 + 1,
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, 2, &[]);
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | perm, 1, data);
    }

    /// The directory `host` and everything below it as `name` (directories 0755, files 0644;
    /// symbolic links and other kinds are left out), in name order.
    pub fn tree(&mut self, name: &str, host: &Path) -> Result<(), String> {
        self.dir(name);
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(|e| format!("{}: {e}", host.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = format!("{name}/{}", e.file_name().to_string_lossy());
            let kind = e.file_type().map_err(|err| format!("{child}: {err}"))?;
            if kind.is_dir() {
                self.tree(&child, &e.path())?;
            } else if kind.is_file() {
                let data = std::fs::read(e.path())
                    .map_err(|err| format!("{}: {err}", e.path().display()))?;
                self.file(&child, 0o644, &data);
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, &[]);
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
}
