//! What a process holds, mapping by mapping (`/proc/PID/smaps`), for what its death would free.
//!
//! `status` says how much anonymous memory a process has (`RssAnon`), not whether it alone
//! has it: a forked child (a save, a snapshot) shares most of its pages with its parent
//! copy-on-write, and killing it frees only the pages it alone maps. And `RssShmem` lumps
//! together a named tmpfs file (which outlives every process) with a shared anonymous mapping
//! or a memfd (which dies with its last holder). `smaps` tells them apart: per mapping, the
//! pages mapped once (`Private_*`), the anonymous ones, the swap, and the object behind a
//! shared mapping (its device and inode). It takes the process's mmap lock and costs a page
//! walk, so it is read for the few finalists of a decision only, never for a process in D
//! state (which may hold that lock for as long as it is stuck).

use std::path::Path;

use super::{Host, ProbeError};

/// A shared memory object that dies with its last holder: a `MAP_SHARED|MAP_ANONYMOUS`
/// mapping (`/dev/zero (deleted)`) or a memfd (`/memfd:NAME (deleted)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// Device of the internal shmem mount, as `major:minor` packed by [`dev_of`].
    pub dev: u64,
    /// Its inode.
    pub inode: u64,
}

/// What one process holds that its death could free, bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Anonymous pages of private mappings that it alone maps (copy-on-write pages still
    /// shared with a parent or child are not counted).
    pub private_anon: u64,
    /// Swap of its private mappings.
    pub swap: u64,
    /// Shared objects that die with their last holder, with the bytes of each it maps
    /// (resident and swapped), one entry per object.
    pub objects: Vec<(ObjectId, u64)>,
}

/// Packs `major:minor` (hex, as maps prints them).
pub fn dev_of(field: &str) -> Option<u64> {
    let (major, minor) = field.split_once(':')?;
    let major = u64::from_str_radix(major, 16).ok()?;
    let minor = u64::from_str_radix(minor, 16).ok()?;
    Some(major << 32 | minor)
}

/// The object behind a mapping header line of `maps` or `smaps`, when it is one that dies with
/// its last holder: a shared mapping (`s` in its permissions) of `/dev/zero (deleted)` or of a
/// memfd. A named tmpfs file, a SysV segment or any file is not: it outlives its users.
pub fn dying_object(header: &str) -> Option<ObjectId> {
    let mut f = header.split_ascii_whitespace();
    let _range = f.next()?;
    let perms = f.next()?;
    let _offset = f.next()?;
    let dev = f.next()?;
    let inode = f.next()?;
    if perms.as_bytes().get(3) != Some(&b's') {
        return None;
    }
    let path = header.splitn(6, |c: char| c.is_ascii_whitespace()).nth(5)?;
    let path = path.trim_start();
    let dies = path == "/dev/zero (deleted)"
        || (path.starts_with("/memfd:") && path.ends_with(" (deleted)"));
    dies.then_some(ObjectId {
        dev: dev_of(dev)?,
        inode: inode.parse().ok()?,
    })
}

/// Whether a line of smaps starts a mapping (its first field is an address range).
fn is_header(line: &str) -> bool {
    line.split_ascii_whitespace()
        .next()
        .is_some_and(|r| r.contains('-') && r.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
}

/// One mapping's figures as smaps gives them, KiB.
#[derive(Debug, Default, Clone, Copy)]
struct Mapping {
    private: bool,
    object: Option<ObjectId>,
    rss: u64,
    private_pages: u64,
    anonymous: u64,
    swap: u64,
}

impl Mapping {
    fn add_to(&self, held: &mut Held) {
        const KIB: u64 = 1024;
        if let Some(id) = self.object {
            let bytes = (self.rss + self.swap) * KIB;
            match held.objects.iter_mut().find(|(o, _)| *o == id) {
                Some((_, b)) => *b += bytes,
                None => held.objects.push((id, bytes)),
            }
        } else if self.private {
            held.private_anon += self.anonymous.min(self.private_pages) * KIB;
            held.swap += self.swap * KIB;
        }
    }
}

/// Parses smaps text.
pub fn parse(text: &str) -> Held {
    let mut held = Held::default();
    let mut current: Option<Mapping> = None;
    for line in text.lines() {
        if is_header(line) {
            if let Some(m) = current.take() {
                m.add_to(&mut held);
            }
            let perms = line.split_ascii_whitespace().nth(1).unwrap_or("");
            current = Some(Mapping {
                private: perms.as_bytes().get(3) == Some(&b'p'),
                object: dying_object(line),
                ..Mapping::default()
            });
            continue;
        }
        let Some(m) = current.as_mut() else { continue };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib = || {
            value
                .split_ascii_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match key {
            "Rss" => m.rss = kib(),
            "Private_Clean" | "Private_Dirty" => m.private_pages += kib(),
            "Anonymous" => m.anonymous = kib(),
            "Swap" => m.swap = kib(),
            _ => {}
        }
    }
    if let Some(m) = current {
        m.add_to(&mut held);
    }
    held
}

/// The address ranges of this process's mappings that hold clean file pages only: mapped
/// from a file, without `w` in their permissions and without one anonymous page (so none was
/// copied on write, as the dynamic linker's relocated read-only data is; a mapping smaps
/// does not say that of is left out). Unmapping such a
/// range loses nothing: a later touch reads the same bytes back from the file. These are the
/// code and constants of the binary and its libraries, which start-up touched far more of
/// than the loop ever runs.
pub fn clean_file_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    // The mapping being read, and whether smaps said it has no anonymous page.
    let mut current: Option<(std::ops::Range<usize>, bool)> = None;
    for line in text.lines() {
        if is_header(line) {
            out.extend(current.take().filter(|c| c.1).map(|c| c.0));
            current = clean_file_header(line).map(|r| (r, false));
            continue;
        }
        let anonymous = line
            .strip_prefix("Anonymous:")
            .and_then(|v| v.split_ascii_whitespace().next());
        if let (Some(c), Some(kib)) = (current.as_mut(), anonymous) {
            c.1 = kib == "0";
        }
    }
    out.extend(current.filter(|c| c.1).map(|c| c.0));
    out
}

/// The range of a mapping header that is a read-only private mapping of a file.
fn clean_file_header(header: &str) -> Option<std::ops::Range<usize>> {
    let mut f = header.split_ascii_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let perms = f.next()?.as_bytes();
    let path = header.splitn(6, |c: char| c.is_ascii_whitespace()).nth(5)?;
    let read_only_private = perms.get(1) == Some(&b'-') && perms.get(3) == Some(&b'p');
    (read_only_private && path.trim_start().starts_with('/'))
        .then_some(usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?)
}

/// Reads `/proc/PID/smaps`; `Ok(None)` when the process is gone.
pub fn read(host: &Host, pid: i32) -> Result<Option<Held>, ProbeError> {
    let path = host.path(&format!("/proc/{pid}/smaps"));
    match super::read_text(&path) {
        Ok(t) => Ok(Some(parse(&t))),
        Err(e) if e.is_gone() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The dying objects another process keeps alive: those it maps (`/proc/PID/maps`) and the
/// memfds it holds open (`/proc/PID/fd`, by the inode of the open file). Unreadable parts
/// (a process gone, denied) count as holding nothing more.
pub fn objects_kept_by(host: &Host, pid: i32, out: &mut Vec<ObjectId>) {
    let base = host.path(&format!("/proc/{pid}"));
    if let Ok(maps) = super::read_text(&base.join("maps")) {
        out.extend(maps.lines().filter_map(dying_object));
    }
    open_memfds(&base.join("fd"), out);
}

fn open_memfds(dir: &Path, out: &mut Vec<ObjectId>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let t = target.as_os_str().as_encoded_bytes();
        let is_memfd = t.starts_with(b"/memfd:") || t == b"/dev/zero (deleted)";
        if !is_memfd {
            continue;
        }
        if let Ok((dev, inode)) = crate::sys::file_id(&entry.path()) {
            out.push(ObjectId { dev, inode });
        }
    }
}

/// What a finalist holds, and which of its dying objects other processes keep alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalist {
    /// Its pid.
    pub pid: i32,
    /// What it holds.
    pub held: Held,
    /// Its objects that some other process maps or holds open.
    pub kept_elsewhere: Vec<ObjectId>,
}

/// Reads what the `finalists` hold (in order, until `budget` is spent: the rest keep the
/// estimate from `status`) and, only when one of them holds an object that dies with its last
/// holder, which of those objects the `others` (every other process that could keep one
/// alive) map or hold open.
pub fn read_finalists(
    host: &Host,
    finalists: &[i32],
    others: &[i32],
    budget: std::time::Duration,
) -> Vec<Finalist> {
    let start = std::time::Instant::now();
    let mut out: Vec<Finalist> = Vec::new();
    for &pid in finalists {
        if start.elapsed() >= budget {
            break;
        }
        if let Ok(Some(held)) = read(host, pid) {
            out.push(Finalist {
                pid,
                held,
                kept_elsewhere: Vec::new(),
            });
        }
    }
    if out.iter().all(|f| f.held.objects.is_empty()) {
        return out;
    }
    // Who keeps which object: each finalist's own mappings, and every other process's.
    let mut keepers: Vec<(ObjectId, i32)> = Vec::new();
    for f in &out {
        keepers.extend(f.held.objects.iter().map(|(id, _)| (*id, f.pid)));
    }
    let mut kept = Vec::new();
    for &pid in others {
        if out.iter().any(|f| f.pid == pid) {
            continue;
        }
        kept.clear();
        objects_kept_by(host, pid, &mut kept);
        keepers.extend(kept.iter().map(|id| (*id, pid)));
    }
    for f in &mut out {
        let pid = f.pid;
        f.kept_elsewhere = f
            .held
            .objects
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| keepers.iter().any(|(k, holder)| k == id && *holder != pid))
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0a00000-55d0c0a21000 r--p 00000000 fe:01 1311                       /usr/bin/redis-server
Rss:                 132 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0c1000000-55d0d3000000 rw-p 00000000 00:00 0                          [heap]
Rss:              294912 kB
Shared_Dirty:     196608 kB
Private_Clean:         0 kB
Private_Dirty:     98304 kB
Anonymous:        294912 kB
Swap:               2048 kB
7f0000000000-7f0004000000 rw-s 00000000 00:01 1055                       /dev/zero (deleted)
Rss:               65536 kB
Private_Dirty:     65536 kB
Anonymous:             0 kB
Swap:                  0 kB
7f0004000000-7f0006000000 rw-s 00000000 00:01 1056                       /memfd:foo (deleted)
Rss:               32768 kB
Private_Dirty:     32768 kB
Swap:               1024 kB
7f0006000000-7f0007000000 rw-s 00000000 00:01 1056                       /memfd:foo (deleted)
Rss:                1024 kB
7f0007000000-7f0008000000 rw-s 00000000 00:1a 77                         /dev/shm/named
Rss:               16384 kB
Private_Dirty:     16384 kB
7f0008000000-7f0009000000 rw-s 00000000 00:01 32769                      /SYSV0000002a (deleted)
Rss:               16384 kB
7f0009000000-7f000a000000 rw-p 00000000 fe:01 99                         /usr/lib/x (deleted)
Rss:                4096 kB
Private_Clean:      2048 kB
Private_Dirty:      1024 kB
Anonymous:          1024 kB
";

    #[test]
    fn private_anonymous_pages_and_the_objects_that_die_with_their_holder() {
        let h = parse(SMAPS);
        // The heap's pages still shared copy-on-write are not freed; a private file mapping's
        // written (anonymous) pages are.
        assert_eq!(h.private_anon, (98304 + 1024) * 1024);
        assert_eq!(h.swap, 2048 * 1024);
        let zero = ObjectId {
            dev: 1,
            inode: 1055,
        };
        let memfd = ObjectId {
            dev: 1,
            inode: 1056,
        };
        // One entry per object, its mappings added up; a named tmpfs file and a SysV segment
        // are not among them.
        assert_eq!(
            h.objects,
            vec![(zero, 65536 * 1024), (memfd, (32768 + 1024 + 1024) * 1024)]
        );
    }

    #[test]
    fn which_shared_mappings_die_with_their_holders() {
        // (header) -> dies with its holders
        let table = [
            (
                "7f00-7f01 rw-s 00000000 00:01 1055 /dev/zero (deleted)",
                true,
            ),
            ("7f00-7f01 rw-s 00000000 00:01 9 /memfd:a b (deleted)", true),
            ("7f00-7f01 rw-p 00000000 00:01 9 /memfd:x (deleted)", false),
            ("7f00-7f01 rw-s 00000000 00:01 9 /memfd:x", false),
            ("7f00-7f01 rw-s 00000000 00:1a 77 /dev/shm/named", false),
            (
                "7f00-7f01 rw-s 00000000 00:01 5 /SYSV0000002a (deleted)",
                false,
            ),
            ("7f00-7f01 rw-s 00000000 fe:01 5 /var/lib/db/file", false),
            ("7f00-7f01 rw-p 00000000 00:00 0", false),
            ("garbage", false),
        ];
        for (header, dies) in table {
            assert_eq!(dying_object(header).is_some(), dies, "{header}");
        }
        assert_eq!(dev_of("fe:01"), Some(0xfe << 32 | 1));
        assert_eq!(dev_of("x"), None);
    }

    #[test]
    fn a_short_or_odd_file_gives_what_it_has() {
        assert_eq!(parse(""), Held::default());
        assert_eq!(parse("Rss: 12 kB\n"), Held::default());
        let h = parse("7f00-7f01 rw-p 00000000 00:00 0\nAnonymous: 8 kB\nPrivate_Dirty: x kB\n");
        assert_eq!(h.private_anon, 0);
    }

    /// Only read-only private file mappings without a page copied on write are given back:
    /// not relocated data (anonymous pages), not writable data, not the heap, the stack or
    /// the vDSO, and not a shared mapping.
    #[test]
    fn clean_file_ranges_table() {
        let smaps = "\
1000-3000 r--p 00000000 fe:00 11 /usr/bin/oomward
Rss:                   8 kB
Anonymous:             0 kB
3000-9000 r-xp 00002000 fe:00 11 /usr/bin/oomward
Anonymous:             0 kB
9000-a000 r--p 00008000 fe:00 11 /usr/bin/oomward
Anonymous:             4 kB
a000-b000 rw-p 00009000 fe:00 11 /usr/bin/oomward
Anonymous:             0 kB
b000-c000 rw-p 00000000 00:00 0 [heap]
Anonymous:             4 kB
c000-d000 r--s 00000000 fe:00 12 /var/lib/data file
Anonymous:             0 kB
d000-e000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
e000-f000 r-xp 00000000 fe:00 13 /usr/lib/with space.so
Anonymous:             0 kB
";
        assert_eq!(
            clean_file_ranges(smaps),
            vec![0x1000..0x3000, 0x3000..0x9000, 0xe000..0xf000]
        );
        // A mapping smaps says nothing more of (a short read) is left alone: unmapping a
        // copied page would lose it.
        assert_eq!(
            clean_file_ranges("f000-10000 r-xp 0 fe:00 13 /lib/x.so\n"),
            Vec::<std::ops::Range<usize>>::new()
        );
    }
}
