//! Where a value came from: spans turned into files and lines across the main file and its
//! drop-ins, and keys found from the text for the TOML parser's own errors.

use std::collections::HashMap;
use std::ops::Range;

use super::ConfigError;

/// One file of a config: the main file or a drop-in. Its values' spans were moved up by `base`,
/// so that a span says which file it came from.
pub(super) struct Part {
    pub(super) file: String,
    pub(super) text: String,
    pub(super) base: usize,
}

/// A place in the config files, for an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) file: String,
    pub(super) line: usize,
}

/// Turns spans into files and lines and builds located errors, across the main file and its
/// drop-ins.
pub(super) struct Source {
    parts: Vec<Part>,
    /// Where each `[[name]]` header is, in order through the files: found once, so that
    /// placing errors and rules stays linear in the size of the config.
    headers: HashMap<String, Vec<Loc>>,
}

impl Source {
    pub(super) fn new(parts: Vec<Part>) -> Self {
        let mut headers: HashMap<String, Vec<Loc>> = HashMap::new();
        for p in &parts {
            for (line, name, _) in headers_of(&p.text).filter(|h| h.2 > 0) {
                let (file, name) = (p.file.clone(), name.to_string());
                headers.entry(name).or_default().push(Loc { file, line });
            }
        }
        Source { parts, headers }
    }

    /// File and 1-based line of a rebased offset.
    pub(super) fn loc(&self, span: Option<Range<usize>>) -> Option<Loc> {
        let start = span?.start;
        let part = self.parts.iter().rev().find(|p| p.base <= start)?;
        let line = line_of(&part.text, start - part.base);
        Some(Loc {
            file: part.file.clone(),
            line,
        })
    }

    /// The files, for an error that no single value caused.
    pub(super) fn files(&self) -> String {
        let names: Vec<&str> = self.parts.iter().map(|p| p.file.as_str()).collect();
        match names.is_empty() {
            true => "<built-in defaults>".to_string(),
            false => names.join(" + "),
        }
    }

    /// An error about `key`, placed at the value at `span` when there is one.
    pub(super) fn err(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let loc = self.loc(span);
        let file = loc
            .as_ref()
            .map_or_else(|| self.files(), |l| l.file.clone());
        ConfigError::invalid(file, loc.map(|l| l.line), key, message.into())
    }

    /// Where the `n`th (0-based) `[[name]]` header is, counting through the files in order,
    /// for errors about a whole table.
    pub(super) fn header(&self, name: &str, n: usize) -> Option<Loc> {
        self.headers.get(name)?.get(n).cloned()
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
