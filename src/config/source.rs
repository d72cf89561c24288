//! Where a value came from: each file parsed into tables whose values keep their span, merged
//! over the earlier files (a later file's keys replace an earlier's, its `[[...]]` entries are
//! appended) with the file and line that set each key; and keys found from the text for the
//! TOML parser's own errors.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;

/// A place in the config files, for an error message: a file (or all of them, joined) and a
/// line when one is known.
#[derive(Debug, Clone)]
pub(super) struct Loc {
    pub(super) file: String,
    pub(super) line: Option<usize>,
}

/// One table as the files wrote it: each key's value and where it was set, and where the table
/// is (an entry's `[[name]]` header; the files, for a table that may be left out).
pub(super) struct Keys {
    pub(super) place: Loc,
    keys: BTreeMap<String, (Loc, toml::Value)>,
}

impl Keys {
    /// The value of `leaf`, as written.
    pub(super) fn value(&self, leaf: &str) -> Option<&toml::Value> {
        self.keys.get(leaf).map(|(_, v)| v)
    }

    /// An error about `key` (dotted), placed at the value of `leaf` when it was written, else
    /// at the table.
    pub(super) fn err(&self, leaf: &str, key: &str, message: impl Into<String>) -> ConfigError {
        let at = self.keys.get(leaf).map_or(&self.place, |(at, _)| at);
        ConfigError::invalid(&at.file, at.line, key, message.into())
    }

    /// `a` if it was written, else `b`: where to place an error about the two.
    pub(super) fn either<'a>(&self, a: &'a str, b: &'a str) -> &'a str {
        if self.keys.contains_key(a) { a } else { b }
    }

    /// Every key written is one of `known`, the table's.
    pub(super) fn known(&self, known: &[&str], prefix: &str) -> Result<(), ConfigError> {
        let Some(k) = self.keys.keys().find(|k| !known.contains(&k.as_str())) else {
            return Ok(());
        };
        let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
        let why = format!("unknown field `{k}`, expected one of {}", names.join(", "));
        Err(self.err(k, &format!("{prefix}.{k}"), why))
    }
}

/// One table of one file, every value spanned.
type RawTable = BTreeMap<String, Spanned<toml::Value>>;

/// One file's tables: a `[[name]]` is a list of them; a `[name]` is one or none.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    daemon: Option<Spanned<RawTable>>,
    system: Option<Spanned<RawTable>>,
    cgroup: Vec<Spanned<RawTable>>,
    kill: Option<Spanned<RawTable>>,
    report: Option<Spanned<RawTable>>,
    hooks: Option<Spanned<RawTable>>,
    notify: Option<Spanned<RawTable>>,
    policy: Option<Spanned<RawTable>>,
    rule: Vec<Spanned<RawTable>>,
}

/// The merged config as written: every table by name, a `[name]` as its one entry.
pub(super) struct Layers {
    tables: HashMap<&'static str, Vec<Keys>>,
    /// The files' names joined, for an error that no single value caused.
    pub(super) files: String,
    /// A `[name]` the files leave out: its errors name the files.
    empty: Keys,
}

impl Layers {
    /// The files, in order: `(name, text)`. A syntax or shape error names the file, line and key.
    pub(super) fn parse(files: &[(String, String)]) -> Result<Self, ConfigError> {
        let names: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
        let files_loc = Loc {
            file: match names.is_empty() {
                true => "<built-in defaults>".to_string(),
                false => names.join(" + "),
            },
            line: None,
        };
        let mut tables: HashMap<&str, Vec<Keys>> = HashMap::new();
        for (file, text) in files {
            let r: RawConfig = toml::from_str(text).map_err(|e| {
                let line = e.span().map(|s| line_of(text, s.start));
                let key = line.map_or_else(|| "(file)".to_string(), |l| key_at(text, l));
                ConfigError::invalid(file, line, &key, e.message().trim().to_string())
            })?;
            let at = |start| Loc {
                file: file.clone(),
                line: Some(line_of(text, start)),
            };
            let some = |t: Option<Spanned<RawTable>>| t.into_iter().collect::<Vec<_>>();
            for (name, entries) in [
                ("daemon", some(r.daemon)),
                ("system", some(r.system)),
                ("cgroup", r.cgroup),
                ("kill", some(r.kill)),
                ("report", some(r.report)),
                ("hooks", some(r.hooks)),
                ("notify", some(r.notify)),
                ("policy", some(r.policy)),
                ("rule", r.rule),
            ] {
                let array = name == "cgroup" || name == "rule";
                let merged = tables.entry(name).or_default();
                for entry in entries {
                    let place = match array {
                        true => at(entry.span().start),
                        false => files_loc.clone(),
                    };
                    let keys = entry.into_inner().into_iter();
                    let keys = keys.map(|(k, v)| (k, (at(v.span().start), v.into_inner())));
                    match merged.first_mut().filter(|_| !array) {
                        Some(table) => table.keys.extend(keys),
                        None => merged.push(Keys {
                            place,
                            keys: keys.collect(),
                        }),
                    }
                }
            }
        }
        Ok(Layers {
            tables,
            files: files_loc.file.clone(),
            empty: Keys {
                place: files_loc,
                keys: BTreeMap::new(),
            },
        })
    }

    /// A `[name]` table.
    pub(super) fn table(&self, name: &str) -> &Keys {
        self.tables
            .get(name)
            .and_then(|t| t.first())
            .unwrap_or(&self.empty)
    }

    /// A `[[name]]` table's entries, in order through the files.
    pub(super) fn entries(&self, name: &str) -> &[Keys] {
        self.tables.get(name).map_or(&[], |v| v.as_slice())
    }
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The table headers of `text`: each one's line (1-based), name, and which `[[name]]` of the
/// text it is (from 1; 0 for a `[name]`).
fn headers_of(text: &str) -> impl Iterator<Item = (usize, &str, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    text.lines().enumerate().filter_map(move |(i, l)| {
        let l = strip_comment(l).trim();
        let name = l.trim_matches(|c| c == '[' || c == ']').trim();
        let mut nth = 0;
        if l.starts_with("[[") {
            nth = *seen.entry(name).and_modify(|n| *n += 1).or_insert(1);
        }
        l.starts_with('[').then_some((i + 1, name, nth))
    })
}
/// For an error from the TOML parser: the dotted key at the error's line of `text`, found from
/// the text (the key before `=` under the nearest table header above, and which `[[...]]` it
/// is). Shortened, as a file of one long line (carriage returns only) would be echoed whole;
/// control characters are escaped where the error is printed.
pub(super) fn key_at(text: &str, line: usize) -> String {
    let Some(this) = text.lines().nth(line.wrapping_sub(1)) else {
        return "(file)".into();
    };
    let key = strip_comment(this)
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    let header = headers_of(text).take_while(|h| h.0 <= line).last();
    let key = match header {
        Some((l, name, _)) if l == line => name.to_string(),
        Some((_, name, 0)) => format!("{name}.{key}"),
        Some((_, name, nth)) => format!("{name}[{nth}].{key}"),
        None => key.to_string(),
    };
    let short: String = key.chars().take(64).collect();
    match () {
        () if short.trim().is_empty() => "(line)".into(),
        () if short.len() < key.len() => format!("{short}..."),
        () => short,
    }
}

/// A line without its trailing `# comment` (outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (c, in_str) {
            ('"' | '\'', None) => in_str = Some(c),
            (q, Some(open)) if q == open => in_str = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}
