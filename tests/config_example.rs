//! The shipped `config.example.toml` must keep three promises:
//! - as shipped it means exactly the built-in defaults;
//! - every commented-out example (`# [[cgroup]]` / `# [[rule]]` followed by `# key = value`
//!   lines) is valid, alone and all together;
//! - it documents every table and key the config code accepts, so a new key cannot be added
//!   without documenting it here.
//!
//! Convention in the file: a commented-out line of TOML is `# ` followed directly by a table
//! header or by `key = value`; prose never starts that way (explanations are indented or start
//! with a word that is not followed by ` = `).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oomward::config::Config;

const CGROUP_EXAMPLES: usize = 3;
const RULE_EXAMPLES: usize = 9;

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config.example.toml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).expect("config.example.toml is readable")
}

/// `to_toml()` without its first line, which names the source.
fn body(c: &Config) -> Vec<String> {
    c.to_toml().lines().skip(1).map(str::to_string).collect()
}

/// `[name]` or `[[name]]` (optionally followed by a comment): the table name and whether it is
/// an array of tables.
fn header_of(line: &str) -> Option<(&str, bool)> {
    let code = line.split('#').next().unwrap_or("").trim_end();
    if let Some(name) = code.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        return is_name(name).then_some((name, true));
    }
    let name = code.strip_prefix('[')?.strip_suffix(']')?;
    is_name(name).then_some((name, false))
}

/// The key of a `key = value` line that starts at column 0.
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once(" = ")?;
    is_name(key).then_some(key)
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The TOML of a commented-out line of code, `None` for prose and for active lines.
fn commented_code(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    (header_of(rest).is_some() || key_of(rest).is_some()).then_some(rest)
}

/// A commented-out example: a `# [[table]]` header and the `# key = value` lines right after it.
struct Block {
    table: String,
    /// 0-based line indexes in the file, header first.
    lines: Vec<usize>,
}

fn example_blocks(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        match commented_code(line) {
            Some(code) => {
                if let Some((table, _)) = header_of(code) {
                    blocks.push(Block {
                        table: table.to_string(),
                        lines: vec![i],
                    });
                    open = true;
                } else {
                    assert!(
                        open,
                        "config.example.toml:{}: commented-out key {code:?} outside an \
                         example block (uncommented, it would land in the table above it)",
                        i + 1
                    );
                    blocks.last_mut().unwrap().lines.push(i);
                }
            }
            None => open = false,
        }
    }
    blocks
}

/// The file with the given lines uncommented.
fn uncomment(text: &str, which: &BTreeSet<usize>) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = if which.contains(&i) {
            commented_code(line).expect("only code lines are uncommented")
        } else {
            line
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The file with every commented-out line of code uncommented.
fn uncomment_all(text: &str) -> String {
    let code: BTreeSet<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| commented_code(l).is_some())
        .map(|(i, _)| i)
        .collect();
    uncomment(text, &code)
}

/// Table → keys written in `text`, active or commented out (`# key = ...`), by the table header
/// (active or commented out) above them. Keys before any header go under "".
fn documented_keys(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        let code = commented_code(line).unwrap_or(line);
        if let Some((name, _)) = header_of(code) {
            table = name.to_string();
            keys.entry(table.clone()).or_default();
        } else if let Some(key) = key_of(code) {
            keys.entry(table.clone())
                .or_default()
                .insert(key.to_string());
        }
    }
    keys
}

/// Every table the config code accepts, with its keys and whether it is an array of tables,
/// from the key table the config code is generated from (not from a list kept in this test).
fn accepted_schema() -> BTreeMap<String, (bool, BTreeSet<String>)> {
    let schema: BTreeMap<String, (bool, BTreeSet<String>)> = oomward::config::keys::tables()
        .into_iter()
        .map(|t| {
            let keys = t.keys.iter().map(|k| k.to_string()).collect();
            (t.name.to_string(), (t.array, keys))
        })
        .collect();
    // The key table is what the parser accepts: each key is known, a key beside it is not.
    for (table, (array, keys)) in &schema {
        let header = if *array {
            format!("[[{table}]]")
        } else {
            format!("[{table}]")
        };
        let unknown = Config::parse(&format!("{header}\nzzz_probe = 1\n"), "probe.toml")
            .expect_err("an unknown key is refused")
            .to_string();
        assert!(unknown.contains("unknown field `zzz_probe`"), "{unknown}");
        for key in keys {
            assert!(
                unknown.contains(&format!("`{key}`")),
                "{table}.{key} is not accepted: {unknown}"
            );
        }
    }
    for table in ["daemon", "system", "cgroup", "kill", "policy", "rule"] {
        assert!(schema.contains_key(table), "no [{table}]: {schema:?}");
    }
    assert!(
        schema["cgroup"].0 && schema["rule"].0 && !schema["daemon"].0,
        "{schema:?}"
    );
    schema
}

#[test]
fn example_as_shipped_means_the_defaults() {
    let c = Config::load(&example_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body(&c), body(&Config::default()));
    assert!(c.cgroups.is_empty() && c.rules.is_empty());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn every_example_block_is_valid_alone() {
    let text = example_text();
    let blocks = example_blocks(&text);
    let count = |t: &str| blocks.iter().filter(|b| b.table == t).count();
    assert_eq!(count("cgroup"), CGROUP_EXAMPLES, "[[cgroup]] examples");
    assert_eq!(count("rule"), RULE_EXAMPLES, "[[rule]] examples");
    assert_eq!(
        blocks.len(),
        CGROUP_EXAMPLES + RULE_EXAMPLES,
        "examples of other tables"
    );
    for b in &blocks {
        let header = b.lines[0] + 1;
        assert!(
            b.lines.len() > 1,
            "config.example.toml:{header}: example without keys"
        );
        let one = uncomment(&text, &b.lines.iter().copied().collect());
        let c = Config::parse(&one, "config.example.toml")
            .unwrap_or_else(|e| panic!("the example at line {header}, uncommented alone: {e}"));
        assert_eq!(
            c.cgroups.len(),
            usize::from(b.table == "cgroup"),
            "line {header}"
        );
        assert_eq!(
            c.rules.len(),
            usize::from(b.table == "rule"),
            "line {header}"
        );
        if let Some(r) = c.rules.first() {
            assert_eq!(r.line, header, "the rule is located at its header");
        }
        assert!(c.warnings.is_empty(), "line {header}: {:?}", c.warnings);
    }
}

#[test]
fn all_examples_uncommented_together_are_valid() {
    let text = example_text();
    let all = uncomment_all(&text);
    assert_ne!(all, text);
    let c = Config::parse(&all, "config.example.toml (examples uncommented)")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.cgroups.len(), CGROUP_EXAMPLES);
    assert_eq!(c.rules.len(), RULE_EXAMPLES);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The examples add cgroups and rules; they must not change the tables around them.
    let d = Config::default();
    assert_eq!(c.daemon, d.daemon);
    assert_eq!(c.system, d.system);
    assert_eq!(c.kill, d.kill);
    assert_eq!(c.builtin_protection, d.builtin_protection);
    // Each rule is reported at the line of its header in the shipped file.
    let headers: Vec<usize> = example_blocks(&text)
        .iter()
        .filter(|b| b.table == "rule")
        .map(|b| b.lines[0] + 1)
        .collect();
    let lines: Vec<usize> = c.rules.iter().map(|r| r.line).collect();
    assert_eq!(lines, headers);
}

#[test]
fn every_key_of_the_effective_config_is_documented() {
    let documented = documented_keys(&example_text());
    let examples =
        Config::parse(&uncomment_all(&example_text()), "x").unwrap_or_else(|e| panic!("{e}"));
    for printed in [Config::default().to_toml(), examples.to_toml()] {
        let mut table = String::new();
        let mut seen = 0;
        for line in printed.lines() {
            if let Some((name, _)) = header_of(line) {
                table = name.to_string();
            } else if let Some(key) = key_of(line) {
                seen += 1;
                assert!(
                    documented
                        .get(&table)
                        .is_some_and(|keys| keys.contains(key)),
                    "`{key} =` of [{table}] is not in config.example.toml"
                );
            }
        }
        assert!(seen >= 15, "too few keys read from to_toml():\n{printed}");
    }
}

#[test]
fn every_accepted_table_and_key_is_documented_and_nothing_else() {
    let schema = accepted_schema();
    let documented = documented_keys(&example_text());
    for (table, (array, keys)) in &schema {
        let Some(doc) = documented.get(table) else {
            let h = if *array {
                format!("[[{table}]]")
            } else {
                format!("[{table}]")
            };
            panic!("config.example.toml has no {h} header, active or commented out");
        };
        let missing: Vec<&String> = keys.difference(doc).collect();
        assert!(
            missing.is_empty(),
            "[{table}] keys not documented as `key =`: {missing:?}"
        );
        let stale: Vec<&String> = doc.difference(keys).collect();
        assert!(
            stale.is_empty(),
            "[{table}] documents keys the code does not accept: {stale:?}"
        );
    }
    let unknown: Vec<&String> = documented
        .keys()
        .filter(|t| !schema.contains_key(*t))
        .collect();
    assert!(
        unknown.is_empty(),
        "tables the code does not accept: {unknown:?}"
    );
}

/// The presets the package ships as drop-ins: each loads over the built-in defaults without
/// warnings, says how to enable it, and they load together (a later one overriding).
#[test]
fn presets_load_as_dropins_and_say_how_to_enable_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/presets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::parse(&text, &path.display().to_string())
            .unwrap_or_else(|e| panic!("preset {name}: {e}"));
        assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
        let enable = format!(
            "ln -s /usr/share/oomward/presets/{name}.toml /etc/oomward/config.d/50-{name}.toml"
        );
        assert!(text.contains(&enable), "{name} must say: {enable}");
        assert_ne!(
            body(&c),
            body(&Config::default()),
            "{name} changes something"
        );
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["desktop", "kubernetes-node", "server"]);
    Config::load_layers(None, Some(&dir)).expect("the presets load together");
}
