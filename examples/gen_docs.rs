//! Generates the man pages and shell completions that the packages ship, from their sources of
//! truth, so that none of them is maintained by hand:
//! - `oomward.8` and the completions from the clap definition (`oomward::cli::command()`), the
//!   same one the binary parses with;
//! - `oomward.toml.5` from `config.example.toml`, the documented configuration: every table, every
//!   key with its default, and the comment paragraphs above them.
//!
//! Usage: `cargo run --release --example gen_docs -- OUTDIR`. Writes `OUTDIR/oomward.8`,
//! `OUTDIR/oomward.toml.5` and `OUTDIR/completions/{oomward.bash,_oomward,oomward.fish}`.
//! The date in the pages' title line comes from `SOURCE_DATE_EPOCH` when it is set (reproducible
//! builds; `packaging/build.sh` sets it), else it is today; nothing else depends on when or where
//! it runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

const CONFIG_EXAMPLE: &str = include_str!("../config.example.toml");

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen_docs OUTDIR");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    let date = source_date();
    let version = env!("CARGO_PKG_VERSION");

    write(&out.join("oomward.8"), &oomward_8(&date, version));
    write(
        &out.join("oomward.toml.5"),
        &oomward_toml_5(CONFIG_EXAMPLE, &date, version),
    );
    let dir = out.join("completions");
    for (shell, name) in [
        (Shell::Bash, "oomward.bash"),
        (Shell::Zsh, "_oomward"),
        (Shell::Fish, "oomward.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut oomward::cli::command(), "oomward", &mut buf);
        write(&dir.join(name), &String::from_utf8(buf).expect("UTF-8"));
    }
}

/// Writes `text` to `path` unless it already holds exactly that (so that an unchanged page keeps
/// its mtime and the packaging does not redo work).
fn write(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// `SOURCE_DATE_EPOCH` (else now) as YYYY-MM-DD, UTC.
fn source_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(0, |d| d.as_secs() as i64)
        });
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

// ------------------------------------------------------------------------------------------------
// oomward(8)

/// The whole command line in one page: clap_mangen renders the title, name, synopsis,
/// description and global options of the root command, and the synopsis, description and
/// options of every subcommand under COMMANDS (clap_mangen alone would refer to one page per
/// subcommand); FILES, EXIT STATUS and SEE ALSO are added here.
fn oomward_8(date: &str, version: &str) -> String {
    let mut root = oomward::cli::command();
    root.build();
    let man = clap_mangen::Man::new(root.clone())
        .title("OOMWARD")
        .section("8")
        .date(date)
        .source(format!("oomward {version}"))
        .manual("System Administration");
    let mut page = String::new();
    for render in [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ] {
        page.push_str(&rendered(&man, render));
    }

    page.push_str(".SH COMMANDS\n");
    // `help` is clap's own, and says nothing --help does not.
    for sub in root
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("oomward {}", sub.get_name());
        // The global options and --help are described once, above.
        let sub = sub.clone().bin_name(&name).mut_args(|a| {
            let described_above = a.is_global_set() || a.get_id() == "help";
            a.hide(described_above)
        });
        let sub_man = clap_mangen::Man::new(sub);
        let _ = writeln!(page, ".SS \"{name}\"");
        page.push_str(&without_heading(&rendered(
            &sub_man,
            clap_mangen::Man::render_synopsis_section,
        )));
        page.push_str(".PP\n");
        page.push_str(&without_heading(&rendered(
            &sub_man,
            clap_mangen::Man::render_description_section,
        )));
        let options = rendered(&sub_man, clap_mangen::Man::render_options_section);
        if !without_heading(&options).trim().is_empty() {
            page.push_str(".PP\n");
            page.push_str(&without_heading(&options));
        }
    }

    page.push_str(
        r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
A runtime failure.
.TP
.B 2
A usage or configuration error. A configuration error names the file, line and key.
.SH FILES
.TP
.I /etc/oomward/config.toml
The configuration file, read when no \fB\-\-config\fR is given; without it the built\-in
defaults apply. See \fBoomward.toml\fR(5).
.TP
.I /etc/oomward/config.d/*.toml
Drop\-ins, merged over the configuration file in name order.
.TP
.I /usr/share/oomward/presets/
Ready\-made drop\-ins; enable one by linking it into \fI/etc/oomward/config.d/\fR.
.TP
.I /usr/lib/systemd/system/oomward.service
The systemd unit that runs \fBoomward run\fR; \fBsystemctl reload oomward\fR rereads the
configuration.
.SH "SEE ALSO"
\fBoomward.toml\fR(5), \fBsystemctl\fR(1), \fBproc\fR(5)
"#,
    );
    dedup_preamble(&page)
}

/// clap_mangen starts every section it renders with the same two-line string definition; one,
/// at the top of the page, is enough.
fn dedup_preamble(page: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for line in page.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble && !seen.insert(line) {
            continue;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One clap_mangen section as text.
fn rendered(
    man: &clap_mangen::Man,
    render: fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>,
) -> String {
    let mut buf = Vec::new();
    render(man, &mut buf).expect("rendering into memory");
    String::from_utf8(buf).expect("UTF-8")
}

/// A rendered section without its `.SH` line, to be placed under a `.SS` of ours.
fn without_heading(section: &str) -> String {
    section
        .lines()
        .filter(|l| !l.starts_with(".SH"))
        .map(|l| format!("{l}\n"))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// oomward.toml(5)

/// Text escaped for roff: backslashes, and a line that would start with a control character.
fn esc(text: &str) -> String {
    let t = text.replace('\\', "\\e");
    // Options and negative numbers read better with a real minus sign.
    let t = t
        .replace(" -", " \\-")
        .replace("(-", "(\\-")
        .replace("=-", "=\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// A line of `config.example.toml`, classified.
#[derive(Debug, Clone, PartialEq)]
enum Line<'a> {
    /// `# ====...`: a new part of the file.
    Rule,
    /// `[table]` or `[[table]]`, active.
    Header(&'a str),
    /// `key = value`, active.
    Key(&'a str, &'a str),
    /// `# [[table]]` or `# key = value`: a line of a commented-out example.
    Code(&'a str),
    /// A comment line that is prose, without its `# ` (may be indented).
    Text(&'a str),
    /// `#` alone, or an empty line.
    Blank,
}

fn classify(line: &str) -> Line<'_> {
    let line = line.trim_end();
    if line.is_empty() || line == "#" {
        return Line::Blank;
    }
    if let Some(rest) = line.strip_prefix('#') {
        if rest.starts_with(" ===") {
            return Line::Rule;
        }
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        if table_name(rest).is_some() || key_value(rest).is_some() {
            return Line::Code(rest);
        }
        return Line::Text(rest);
    }
    if let Some(name) = table_name(line) {
        return Line::Header(name);
    }
    if let Some((k, v)) = key_value(line) {
        return Line::Key(k, v);
    }
    panic!("config.example.toml: cannot place the line {line:?}");
}

/// The name in `[name]` / `[[name]]`.
fn table_name(s: &str) -> Option<&str> {
    let name = s
        .strip_prefix("[[")
        .and_then(|r| r.strip_suffix("]]"))
        .or_else(|| s.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
    is_name(name).then_some(name)
}

/// `key = value` at column 0.
fn key_value(s: &str) -> Option<(&str, &str)> {
    let (k, v) = s.split_once(" = ")?;
    is_name(k).then_some((k, v))
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Renders a run of comment text (no blank lines inside) as roff: prose is filled, and indented
/// lines become tagged paragraphs (`  term   description`, continuation lines indented further)
/// or bullets (`  - text`).
fn prose(lines: &[&str], para: &str, out: &mut String) {
    let mut i = 0;
    let mut in_list = false;
    // The column where the descriptions of the current list start.
    let mut desc_col: Option<usize> = None;
    let _ = writeln!(out, "{para}");
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            if in_list {
                let _ = writeln!(out, ".RE\n{para}");
                in_list = false;
                desc_col = None;
            }
            let _ = writeln!(out, "{}", esc(line));
            i += 1;
            continue;
        }
        // An indented item: its first line, and the lines indented further that follow.
        let body = line.trim_start();
        let mut text: Vec<&str> = Vec::new();
        let tag;
        let mut bullet = false;
        if let Some(rest) = body.strip_prefix("- ") {
            tag = None;
            bullet = true;
            text.push(rest);
        } else if let Some((t, rest)) = body.split_once("  ") {
            tag = Some(t);
            desc_col = Some(line.len() - rest.trim_start().len());
            text.push(rest.trim_start());
        } else if let Some(c) = desc_col.filter(|&c| {
            // A term as long as the column leaves one space: `exhaustion_term default ...`.
            line.is_char_boundary(c)
                && line[..c].ends_with(' ')
                && !line[indent..c].trim().contains(' ')
        }) {
            tag = Some(line[indent..c].trim());
            text.push(&line[c..]);
        } else {
            tag = None;
            text.push(body);
        }
        i += 1;
        while i < lines.len() {
            let next = lines[i];
            let next_indent = next.len() - next.trim_start().len();
            if next_indent <= indent {
                break;
            }
            text.push(next.trim_start());
            i += 1;
        }
        if !in_list {
            out.push_str(".RS\n");
            in_list = true;
        }
        match tag {
            Some(t) => {
                let _ = writeln!(out, ".TP\n\\fB{}\\fR", esc(t));
            }
            None if bullet => out.push_str(".IP \\(bu 2\n"),
            None => out.push_str(".PP\n"),
        }
        for t in text {
            let _ = writeln!(out, "{}", esc(t));
        }
    }
    if in_list {
        out.push_str(".RE\n");
    }
}

/// A commented-out example, as a display.
fn example(lines: &[&str], para: &str, out: &mut String) {
    let _ = writeln!(out, "{para}\n.RS\n.EX");
    for l in lines {
        let _ = writeln!(out, "{}", esc(l));
    }
    out.push_str(".EE\n.RE\n");
}

/// Renders the runs of comment lines of one part of the file, in order; `para` starts a
/// paragraph (`.PP` at the left margin, `.IP` inside the description of a key).
fn comments(lines: &[Line<'_>], para: &str, out: &mut String) {
    let mut i = 0;
    while i < lines.len() {
        match lines[i] {
            Line::Text(_) => {
                let mut run = Vec::new();
                while let Some(Line::Text(t)) = lines.get(i) {
                    run.push(*t);
                    i += 1;
                }
                prose(&run, para, out);
            }
            Line::Code(_) => {
                let mut run = Vec::new();
                while let Some(Line::Code(c)) = lines.get(i) {
                    run.push(*c);
                    i += 1;
                }
                // A blank line between two blocks of one example keeps them in one display.
                while matches!(lines.get(i), Some(Line::Blank))
                    && matches!(lines.get(i + 1), Some(Line::Code(_)))
                {
                    run.push("");
                    i += 1;
                    while let Some(Line::Code(c)) = lines.get(i) {
                        run.push(*c);
                        i += 1;
                    }
                }
                example(&run, para, out);
            }
            _ => i += 1,
        }
    }
}

/// oomward.toml(5) from the text of `config.example.toml`.
fn oomward_toml_5(example_text: &str, date: &str, version: &str) -> String {
    let lines: Vec<Line<'_>> = example_text.lines().map(classify).collect();
    let mut parts = lines.split(|l| *l == Line::Rule);
    let intro = parts.next().unwrap_or_default();

    let mut page = String::new();
    let _ = writeln!(
        page,
        ".TH OOMWARD.TOML 5 \"{date}\" \"oomward {version}\" \"File Formats\""
    );
    page.push_str(
        r#".SH NAME
oomward.toml \- configuration of the oomward early\-OOM daemon
.SH SYNOPSIS
.I /etc/oomward/config.toml
.br
.I /etc/oomward/config.d/*.toml
.SH DESCRIPTION
.BR oomward (8)
reads
.I /etc/oomward/config.toml
(or the file named with \fB\-\-config\fR), then merges the drop\-ins
.I /etc/oomward/config.d/*.toml
over it in name order: a key set in a later file overrides the same key set earlier, and the
\fB[[cgroup]]\fR and \fB[[rule]]\fR entries of all files are appended in that order. Every key is
optional: a key set nowhere has the default shown below, and with no file at all the built\-in
defaults apply. \fBoomward check\-config\fR prints the effective configuration with every default
filled in, or the first error as FILE:LINE: KEY: what is wrong.
.PP
The format is TOML. The rest of this page is generated from the documented example
configuration shipped with oomward; each key is shown with its default.
"#,
    );
    // The file's own introduction from its first headed paragraph (`VALUE SYNTAX`, ...): what
    // comes before speaks of the example file itself, which the description above replaces.
    let headed = intro.iter().enumerate().position(|(i, l)| {
        let starts_paragraph = i == 0 || intro[i - 1] == Line::Blank;
        let heading = matches!(l, Line::Text(t)
        if t.split_whitespace().next().is_some_and(|w| {
            w.len() >= 3 && w.chars().all(|c| c.is_ascii_uppercase())
        }));
        starts_paragraph && heading
    });
    let intro = &intro[headed.unwrap_or(0)..];
    comments(intro, ".PP", &mut page);

    for part in parts {
        section(part, &mut page);
    }

    page.push_str(
        r#".SH FILES
.TP
.I /etc/oomward/config.toml
The main configuration file. As packaged every line is a comment: the defaults live in the
binary.
.TP
.I /etc/oomward/config.d/*.toml
Drop\-ins, merged over the main file in name order.
.TP
.I /usr/share/oomward/presets/*.toml
Ready\-made drop\-ins; enable one with
\fBln \-s /usr/share/oomward/presets/desktop.toml /etc/oomward/config.d/\fR
and \fBsystemctl reload oomward\fR.
.SH "SEE ALSO"
\fBoomward\fR(8), \fBproc\fR(5)
"#,
    );
    page
}

/// One part of the file (between two `# ====` lines): a table, or the documentation of an array
/// of tables whose entries are all commented out.
fn section(part: &[Line<'_>], page: &mut String) {
    let table = part.iter().find_map(|l| match l {
        Line::Header(name) => Some(format!("[{name}]")),
        _ => None,
    });
    // `# WATCHED CGROUPS, [[cgroup]]: ...`: the array it documents.
    let array = part.iter().find_map(|l| match l {
        Line::Text(t) => {
            let start = t.find("[[")?;
            let end = t[start..].find("]]")? + start + 2;
            table_name(&t[start..end]).map(|_| t[start..end].to_string())
        }
        _ => None,
    });
    let Some(title) = table.or(array) else {
        return;
    };
    let _ = writeln!(page, ".SS \"{title}\"");

    // Comment paragraphs are gathered until the `key = value` they describe.
    let mut pending: Vec<Line<'_>> = Vec::new();
    for line in part {
        match line {
            Line::Header(_) => {}
            Line::Key(k, v) => {
                let _ = writeln!(page, ".TP\n\\fB{}\\fR = {}", esc(k), esc(v));
                let mut body = String::new();
                comments(&pending, ".IP", &mut body);
                // The first paragraph of a tagged paragraph follows the tag directly.
                page.push_str(body.strip_prefix(".IP\n").unwrap_or(&body));
                pending.clear();
            }
            other => pending.push(other.clone()),
        }
    }
    comments(&pending, ".PP", page);
}
