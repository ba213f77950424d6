//! The recipes of docs/guide/recipes.md, run: every `sh` block in an
//! empty folder with vimg on the PATH, under `bash -euo pipefail`.

use std::path::Path;

use crate::support::*;

/// The `sh` blocks of a Markdown page, with the heading each is under.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match (&mut block, line) {
            (None, l) if l.starts_with("## ") => heading = l[3..].to_string(),
            (None, "```sh") => block = Some(String::new()),
            (Some(b), "```") => {
                out.push((heading.clone(), std::mem::take(b)));
                block = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_recipe_in_the_guide_runs() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide/recipes.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let recipes = blocks(&text);
    assert!(recipes.len() >= 7, "{} recipes", recipes.len());
    let bin = Path::new(VIMG).parent().unwrap().display().to_string();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    for (heading, script) in recipes {
        let dir = tempdir();
        let out = cmd!("env")
            .arg(format!("PATH={path}"))
            .arg("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .run();
        assert_eq!(
            out.code(),
            Some(0),
            "the recipe \"{heading}\" failed: {out:?}\n{script}"
        );
    }
}
