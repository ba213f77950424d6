//! `vimg completions SHELL`, the manual pages and `vimg --version`: the
//! scripts work in the shells, name every subcommand, and are the ones
//! checked in; every page in docs/man renders with `man -l`.

use crate::support::*;

/// Every subcommand `vimg --help` lists.
fn subcommands() -> Vec<String> {
    let help = vimg!("--help").ok();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description's wrapped lines are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// What bash completes for the words `words`, the last being the one
/// being typed.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let script = format!(
        "source <({VIMG} completions bash)\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_vimg vimg {} {}\necho \"${{COMPREPLY[@]}}\"",
        words.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = cmd!("bash", "-c").arg(script).ok();
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn bash_completes_subcommands_and_zsh_and_fish_name_them_all() {
    assert_eq!(bash_completes(&["vimg", "con"]), ["convert"]);
    assert_eq!(
        bash_completes(&["vimg", "snapshot", "c"]),
        ["create", "commit"]
    );
    let subcommands = subcommands();
    assert!(subcommands.len() >= 14, "{subcommands:?}");
    for shell in ["zsh", "fish", "bash", "elvish", "powershell"] {
        let script = vimg!("completions", shell).ok();
        for sub in &subcommands {
            assert!(script.contains(sub.as_str()), "{shell} lacks {sub}");
        }
    }
    // The scripts printed are the ones in completions/ (kept current by
    // the unit test completions_are_current).
    let checked_in = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/vimg.bash"),
    )
    .unwrap();
    assert_eq!(vimg!("completions bash").ok(), checked_in);
}

#[test]
fn version_names_the_formats() {
    let out = vimg!("--version").ok();
    assert!(
        out.starts_with(&format!("vimg {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    for format in ["vmdk", "vhd", "raw", "streamOptimized", "vpc"] {
        assert!(out.contains(format), "{out}");
    }
}

#[test]
fn every_manual_page_renders_and_every_subcommand_has_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let mut pages = dir_names(&dir);
    pages.sort();
    for sub in subcommands() {
        assert!(
            pages.contains(&format!("vimg-{sub}.1")),
            "no page for {sub}: {pages:?}"
        );
    }
    for page in &pages {
        let out = cmd!("env", "MANWIDTH=80 man -P cat -l", dir.join(page)).ok();
        let name = page.trim_end_matches(".1");
        assert!(out.contains("NAME") && out.contains(name), "{page}: {out}");
    }
    let convert = cmd!(
        "env",
        "MANWIDTH=80 man -P cat -l",
        dir.join("vimg-convert.1")
    )
    .ok();
    assert!(
        convert.contains("--target-format") && convert.contains("Examples"),
        "{convert}"
    );
}

#[test]
fn every_subcommand_s_help_gives_examples() {
    let mut commands: Vec<String> = subcommands()
        .into_iter()
        .filter(|c| c != "snapshot")
        .collect();
    commands.extend(["create", "list", "commit", "rebase"].map(|s| format!("snapshot {s}")));
    for command in commands {
        let help = vimg!().words(&command).arg("--help").ok();
        let examples = help.lines().filter(|l| l.starts_with("  vimg ")).count();
        assert!(
            (2..=4).contains(&examples),
            "`vimg {command} --help` gives {examples} examples:\n{help}"
        );
    }
}
