//! The system's accounts, read from `etc/passwd` under a root as a file: never through NSS,
//! which may ask a directory service over the network and hang the daemon that must act in
//! seconds (and, on a config reload, hang it while memory runs out).

use std::path::Path;

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// The accounts of `etc/passwd`, in file order.
#[derive(Debug, Clone, Default)]
pub struct Passwd(Vec<Account>);

impl Passwd {
    /// `root/etc/passwd`; a missing or unreadable file has no accounts.
    pub fn read(root: &Path) -> Passwd {
        std::fs::read_to_string(root.join("etc/passwd"))
            .map_or_else(|_| Passwd::default(), |t| Passwd::parse(&t))
    }

    /// `name:password:uid:gid:...` lines; a line that is not one is skipped.
    pub fn parse(text: &str) -> Passwd {
        Passwd(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?.to_string();
                    let _password = f.next()?;
                    let uid = f.next()?.parse().ok()?;
                    let gid = f.next()?.parse().ok()?;
                    (!name.is_empty()).then_some(Account { name, uid, gid })
                })
                .collect(),
        )
    }

    /// The first account of that name.
    pub fn by_name(&self, name: &str) -> Option<&Account> {
        self.0.iter().find(|a| a.name == name)
    }

    /// The first account with that uid.
    pub fn by_uid(&self, uid: u32) -> Option<&Account> {
        self.0.iter().find(|a| a.uid == uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_read_by_name_and_uid_and_odd_lines_skipped() {
        let p = Passwd::parse(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nnobody:x:65534:65534::/:/x\n+ldap\nu:x:notanumber:1::/:/x\n",
        );
        assert_eq!(
            p.by_name("nobody").map(|a| (a.uid, a.gid)),
            Some((65534, 65534))
        );
        assert_eq!(p.by_uid(0).map(|a| a.name.as_str()), Some("root"));
        assert!(p.by_name("u").is_none() && p.by_name("+ldap").is_none());
        assert!(Passwd::read(Path::new("/nonexistent")).by_uid(0).is_none());
    }
}
