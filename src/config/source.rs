//! Where a value came from: spans turned into files and lines across the main file and its
//! drop-ins, and keys found from the text for the TOML parser's own errors.

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
    headers: std::collections::HashMap<String, Vec<Loc>>,
}

impl Source {
    /// The part a (rebased) offset falls in.
    pub(super) fn part_of(&self, offset: usize) -> Option<&Part> {
        self.parts.iter().rev().find(|p| p.base <= offset)
    }

    /// File and 1-based line of a rebased offset.
    pub(super) fn loc(&self, span: Option<Range<usize>>) -> Option<Loc> {
        let start = span?.start;
        let part = self.part_of(start)?;
        Some(Loc {
            file: part.file.clone(),
            line: line_of(&part.text, start - part.base),
        })
    }

    /// The files, for an error that no single value caused.
    pub(super) fn files(&self) -> String {
        let names: Vec<&str> = self.parts.iter().map(|p| p.file.as_str()).collect();
        if names.is_empty() {
            "<built-in defaults>".to_string()
        } else {
            names.join(" + ")
        }
    }

    pub(super) fn err(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let loc = self.loc(span);
        ConfigError::Invalid {
            file: loc
                .as_ref()
                .map_or_else(|| self.files(), |l| l.file.clone()),
            line: loc.map(|l| l.line),
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn new(parts: Vec<Part>) -> Self {
        let mut headers: std::collections::HashMap<String, Vec<Loc>> = Default::default();
        for p in &parts {
            for (i, l) in p.text.lines().enumerate() {
                let l = strip_comment(l).replace([' ', '\t'], "");
                if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
                    headers.entry(name.to_string()).or_default().push(Loc {
                        file: p.file.clone(),
                        line: i + 1,
                    });
                }
            }
        }
        Source { parts, headers }
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

/// For an error from the TOML parser: the dotted key at the error's line of `text`, found from
/// the text (the key before `=`, the nearest table header above, and which `[[...]]` it is).
pub(super) fn key_at(text: &str, line: usize) -> String {
    let key = raw_key_at(text, line);
    // What the user wrote, not all of it: a file of one long line (carriage returns only)
    // would be echoed whole, and control characters shown raw.
    // (Control characters are escaped where the error is printed.)
    let short: String = key.chars().take(64).collect();
    if short.trim().is_empty() {
        "(line)".into()
    } else if short.len() < key.len() {
        format!("{short}...")
    } else {
        short
    }
}

fn raw_key_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(this) = lines.get(line.saturating_sub(1)) else {
        return "(file)".into();
    };
    let this = strip_comment(this).trim();
    if this.starts_with('[') {
        return this
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string();
    }
    let key = this
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    let header = lines[..line.saturating_sub(1)]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| l.trim_start().starts_with('['));
    match header {
        None => key.to_string(),
        Some((_, h)) => {
            let h = strip_comment(h).trim();
            let name = h.trim_matches(|c| c == '[' || c == ']').trim();
            if h.starts_with("[[") {
                let header = format!("[[{name}]]");
                let index = lines[..line]
                    .iter()
                    .filter(|l| strip_comment(l).replace(' ', "") == header)
                    .count();
                format!("{name}[{index}].{key}")
            } else {
                format!("{name}.{key}")
            }
        }
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
