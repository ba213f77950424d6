//! The user guide, docs/guide/: one page a subcommand. Every `sh` block
//! of every page runs (in an empty folder, vimg on the PATH, under `bash
//! -euo pipefail`); a `json` or `text` block right after an `sh` block is
//! what the block's last command prints; every flag of every subcommand is
//! in its page's tables; every page has an "Exit codes" section, the
//! index links it, and its relative links lead somewhere.
//!
//! `VIMG_UPDATE_GUIDE=1 cargo test --test it guide` rewrites the `json`
//! and `text` blocks with what the commands print now (read the diff).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::markdown::{blocks, run_sh, Block};
use crate::support::*;

/// The pages, one a subcommand (`snapshot` for `snapshot create` and
/// `snapshot list`), without `.md`.
const PAGES: [&str; 14] = [
    "create",
    "info",
    "convert",
    "map",
    "check",
    "compare",
    "amend",
    "measure",
    "compact",
    "resize",
    "snapshot",
    "commit",
    "rebase",
    "completions",
];

/// JSON keys whose values differ from one run or machine to the next:
/// the space files take on the host (it depends on the file system), the
/// random identities of VMDK (CID) and VHD (UUID) images as `info` and
/// `snapshot list` name them, and vimg's own version, which a VHD records
/// as its creator's. Their values are compared by type only.
const VARYING: [&str; 8] = [
    "actual-size",
    "cid",
    "parent-cid",
    "uuid",
    "parent-uuid",
    "id",
    "recorded-id",
    "creator-version",
];

fn guide_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide")
}

fn read_page(name: &str) -> String {
    let path = guide_dir().join(format!("{name}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The page that documents the subcommand at `path` (`["snapshot",
/// "commit"]`): `snapshot commit` and `snapshot rebase` share the pages
/// of `commit` and `rebase`, the other `snapshot` verbs are on
/// `snapshot`'s, every other subcommand has its own.
fn page_of(path: &[String]) -> String {
    match path {
        [group, verb] if group == "snapshot" && (verb == "commit" || verb == "rebase") => {
            verb.clone()
        }
        _ => path[0].clone(),
    }
}

/// Every subcommand (nested ones too, `help` left out) with the flags it
/// accepts, `--long` and `-s` spellings (visible aliases too), but
/// `--help` and `--version`.
fn subcommands() -> Vec<(Vec<String>, BTreeSet<String>)> {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &[String], out: &mut Vec<(Vec<String>, BTreeSet<String>)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut here = path.to_vec();
            here.push(sub.get_name().to_string());
            let mut flags = BTreeSet::new();
            for arg in sub.get_arguments() {
                if arg.is_positional() || ["help", "version"].contains(&arg.get_id().as_str()) {
                    continue;
                }
                let longs = arg.get_visible_aliases().unwrap_or_default();
                for long in arg.get_long().into_iter().chain(longs) {
                    flags.insert(format!("--{long}"));
                }
                let shorts = arg.get_visible_short_aliases().unwrap_or_default();
                for short in arg.get_short().into_iter().chain(shorts) {
                    flags.insert(format!("-{short}"));
                }
            }
            out.push((here.clone(), flags));
            walk(sub, &here, out);
        }
    }
    let mut cli = vimg::cmd::Cli::command();
    cli.build();
    let mut out = Vec::new();
    walk(&cli, &[], &mut out);
    out
}

/// The flags a page lists: those a code span names at the start of a
/// table row's first cell (`` | `-f FMT`, `--format FMT` | ``) or of a
/// list item (`` - `-q`, `--quiet`: ... ``). A span's first word counts,
/// when it is a flag (`-x` or `--long`; `--long=value` counts as `--long`).
fn listed_flags(page: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let mut in_block = false;
    for line in page.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let line = line.trim_start();
        let head = match (
            line.strip_prefix('|'),
            line.strip_prefix("- "),
            line.strip_prefix("* "),
        ) {
            (Some(row), _, _) => row.split('|').next().unwrap_or(""),
            (None, Some(item), _) | (None, None, Some(item)) => item,
            _ => continue,
        };
        if in_block {
            continue;
        }
        // `a`, `b` / `c`: the spans before any other text.
        let mut rest = head.trim_start();
        while let Some(after) = rest.strip_prefix('`') {
            let Some((span, tail)) = after.split_once('`') else {
                break;
            };
            let word = span.split_whitespace().next().unwrap_or("");
            let word = word.split('=').next().unwrap_or("");
            if is_flag(word) {
                flags.insert(word.to_string());
            }
            rest = tail.trim_start_matches([',', '/', ' ']);
        }
    }
    flags
}

/// `-x` (a letter) or `--long` (a letter, then letters, digits, dashes).
fn is_flag(word: &str) -> bool {
    let name_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    match word.strip_prefix("--") {
        Some(long) => long.len() > 1 && name_ok(long),
        None => word
            .strip_prefix('-')
            .is_some_and(|s| s.len() == 1 && name_ok(s)),
    }
}

#[test]
fn guide_pages_list_every_flag_of_their_commands() {
    let mut missing = Vec::new();
    for (path, flags) in subcommands() {
        let page = page_of(&path);
        assert!(
            PAGES.contains(&page.as_str()),
            "`vimg {}` has no page: add docs/guide/{page}.md (and to PAGES and the index)",
            path.join(" ")
        );
        let listed = listed_flags(&read_page(&page));
        for flag in flags.difference(&listed) {
            missing.push(format!(
                "docs/guide/{page}.md: `vimg {} {flag}`",
                path.join(" ")
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "flags the CLI accepts that their page's tables do not list (add a row to the page's options table):\n{}",
        missing.join("\n")
    );
}

#[test]
fn guide_pages_list_no_flag_their_commands_lack() {
    let commands = subcommands();
    let mut extra = Vec::new();
    for page in PAGES {
        let mut accepted: BTreeSet<String> = ["-h", "--help", "-V", "--version"]
            .into_iter()
            .map(String::from)
            .collect();
        for (_, flags) in commands.iter().filter(|(path, _)| page_of(path) == page) {
            accepted.extend(flags.iter().cloned());
        }
        for flag in listed_flags(&read_page(page)).difference(&accepted) {
            extra.push(format!("docs/guide/{page}.md: {flag}"));
        }
    }
    assert!(
        extra.is_empty(),
        "flags the pages list that none of their commands accepts:\n{}",
        extra.join("\n")
    );
}

#[test]
fn guide_pages_have_exit_codes_and_the_index_links_every_page() {
    let index = read_page("README");
    for page in PAGES {
        let text = read_page(page);
        let has_section = text.lines().any(|l| {
            l.starts_with('#')
                && l.trim_start_matches('#')
                    .trim()
                    .eq_ignore_ascii_case("exit codes")
        });
        assert!(
            has_section,
            "docs/guide/{page}.md has no \"Exit codes\" section"
        );
        assert!(
            index.contains(&format!("]({page}.md)")),
            "docs/guide/README.md does not link {page}.md"
        );
    }
    assert!(
        index.contains("](recipes.md)"),
        "the index does not link the recipes"
    );
    // Relative links lead to files that exist.
    for page in PAGES.iter().chain(&["README"]) {
        for target in read_page(page).split("](").skip(1) {
            let target = target.split([')', '#']).next().unwrap_or("");
            if target.is_empty() || target.contains("://") {
                continue;
            }
            assert!(
                guide_dir().join(target).exists(),
                "docs/guide/{page}.md links {target}, which is not there"
            );
        }
    }
    // Every page in the folder is one of these (or the index, or the
    // recipes, which tests/it/recipes.rs runs).
    for entry in std::fs::read_dir(guide_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".md") else {
            continue;
        };
        assert!(
            PAGES.contains(&stem) || stem == "README" || stem == "recipes",
            "docs/guide/{name} is not in PAGES, so nothing tests it"
        );
    }
}

/// `v` with the values of [`VARYING`] keys replaced by their type.
fn masked(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match VARYING.contains(&k.as_str()) {
                        true => Value::String(format!("<varies: {}>", type_name(v))),
                        false => masked(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `script` run so that its standard output is only what its last
/// command prints (the others' goes to standard error).
fn last_command_only(script: &str, place: &str) -> String {
    let lines: Vec<&str> = script.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .unwrap_or_else(|| panic!("{place}: an empty sh block before an output block"));
    let continued = |i: usize| lines[i].trim_end().ends_with('\\');
    assert!(
        !continued(last) && (last == 0 || !continued(last - 1)),
        "{place}: the last command of a block followed by its output must be one line"
    );
    let before = lines[..last].join("\n");
    match before.trim().is_empty() {
        true => format!("{}\n", lines[last]),
        false => format!("{{\n{before}\n}} >&2\n{}\n", lines[last]),
    }
}

/// What is wrong with `shown` as the output of the block before it, which
/// printed `printed`.
fn output_mismatch(shown: &Block, printed: &str) -> Option<String> {
    match shown.lang.as_str() {
        "json" => {
            let want: Value = match serde_json::from_str(&shown.body) {
                Ok(v) => v,
                Err(e) => return Some(format!("the json block is not JSON: {e}")),
            };
            let got: Value = match serde_json::from_str(printed) {
                Ok(v) => v,
                Err(e) => return Some(format!("the command printed no JSON ({e}):\n{printed}")),
            };
            let (want, got) = (masked(&want), masked(&got));
            (want != got).then(|| {
                format!(
                    "the page shows (varying values masked):\n{:#}\nthe command printed:\n{:#}",
                    want, got
                )
            })
        }
        _ => (shown.body != printed).then(|| {
            format!(
                "the page shows:\n{}\nthe command printed:\n{printed}",
                shown.body
            )
        }),
    }
}

#[test]
fn guide_examples_run_and_print_what_the_pages_show() {
    let update = std::env::var_os("VIMG_UPDATE_GUIDE").is_some();
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in PAGES {
        let text = read_page(page);
        let list = blocks(&text);
        let mut updates: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        for (i, block) in list.iter().enumerate() {
            let place = format!("docs/guide/{page}.md:{}", block.line);
            let is_output = |b: &Block| b.lang == "json" || b.lang == "text";
            if is_output(block) {
                assert!(
                    i > 0 && list[i - 1].lang == "sh",
                    "{place}: a {} block must follow the sh block whose output it is",
                    block.lang
                );
                continue;
            }
            if block.lang != "sh" {
                continue;
            }
            let shown = list.get(i + 1).filter(|b| is_output(b));
            let script = match shown {
                Some(_) => last_command_only(&block.body, &place),
                None => block.body.clone(),
            };
            let dir = tempdir();
            let out = run_sh(&script, dir.path());
            ran += 1;
            if out.code() != Some(0) {
                failures.push(format!("{place} failed: {out:?}\n{}", block.body));
                continue;
            }
            let Some(shown) = shown else { continue };
            let printed = out.stdout_text();
            if let Some(why) = output_mismatch(shown, &printed) {
                match update {
                    true => updates.push((shown.body_lines.clone(), printed)),
                    false => failures.push(format!(
                        "docs/guide/{page}.md:{}: {why}\n(VIMG_UPDATE_GUIDE=1 rewrites it)",
                        shown.line
                    )),
                }
            }
        }
        if !updates.is_empty() {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            for (range, printed) in updates.into_iter().rev() {
                lines.splice(range, printed.lines().map(String::from));
            }
            std::fs::write(
                guide_dir().join(format!("{page}.md")),
                lines.join("\n") + "\n",
            )
            .unwrap();
        }
    }
    assert!(ran >= 40, "only {ran} sh blocks in the guide");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
