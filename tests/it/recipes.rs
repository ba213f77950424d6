//! The recipes of docs/guide/recipes.md, run: every `sh` block in an
//! empty folder with vimg on the PATH, under `bash -euo pipefail`.

use std::path::Path;

use crate::support::markdown::{run_sh, sh_blocks};
use crate::support::*;

#[test]
fn every_recipe_in_the_guide_runs() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide/recipes.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let recipes = sh_blocks(&text);
    assert!(recipes.len() >= 7, "{} recipes", recipes.len());
    for (heading, script) in recipes {
        let dir = tempdir();
        let out = run_sh(&script, dir.path());
        assert_eq!(
            out.code(),
            Some(0),
            "the recipe \"{heading}\" failed: {out:?}\n{script}"
        );
    }
}
