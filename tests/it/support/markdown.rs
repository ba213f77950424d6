//! The fenced code blocks of the Markdown pages in docs/guide/, and their
//! `sh` blocks run as a reader would run them: in an empty folder, with
//! vimg on the PATH, under `bash -euo pipefail`.

use std::path::Path;

use super::{cmd, Run, VIMG};

/// One fenced code block of a page.
#[derive(Clone, Debug)]
pub struct Block {
    /// What follows the opening fence: `sh`, `json`, `text`, or nothing.
    pub lang: String,
    /// The last `## ` heading above the block.
    pub heading: String,
    /// The lines between the fences, each ending in a newline.
    pub body: String,
    /// The line of the opening fence, from 1.
    pub line: usize,
    /// The lines (0-based, end excluded) of the body in the page.
    pub body_lines: std::ops::Range<usize>,
}

/// Every fenced block of a page (fences of three backquotes at the start
/// of a line), in page order.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line) {
            (None, l) if l.starts_with("## ") => heading = l[3..].to_string(),
            (None, l) if l.starts_with("```") => {
                open = Some(Block {
                    lang: l[3..].trim().to_string(),
                    heading: heading.clone(),
                    body: String::new(),
                    line: i + 1,
                    body_lines: i + 1..i + 1,
                })
            }
            (Some(b), "```") => {
                b.body_lines.end = i;
                out.push(open.take().expect("a block is open"));
            }
            (Some(b), l) => {
                b.body.push_str(l);
                b.body.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The `sh` blocks of a page, with the heading each is under.
pub fn sh_blocks(text: &str) -> Vec<(String, String)> {
    blocks(text)
        .into_iter()
        .filter(|b| b.lang == "sh")
        .map(|b| (b.heading, b.body))
        .collect()
}

/// Run `script` in `dir` under `bash -euo pipefail`, with the vimg under
/// test first on the PATH.
pub fn run_sh(script: &str, dir: &Path) -> Run {
    let bin = Path::new(VIMG).parent().unwrap().display().to_string();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    cmd!("env")
        .arg(format!("PATH={path}"))
        .arg("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .run()
}
