//! Format options as given with `-o key=value,key2=value2,flag` (qemu-img
//! syntax, `,,` for a literal comma). Each format takes the keys it knows;
//! whatever is left over is an error, so a typo is never silently ignored.

use crate::error::{Error, Result};
use crate::units::parse_size;

/// One option a format's `create` takes, for `-o help`.
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    pub key: &'static str,
    /// What its value is: `str`, `bool (on/off)`, `size`.
    pub kind: &'static str,
    pub about: &'static str,
}

/// The options every format's `create` takes (the command takes them).
pub const SIZE: OptionDoc = OptionDoc {
    key: "size",
    kind: "size",
    about: "Virtual disk size (instead of the SIZE argument)",
};

/// qemu-img's preallocation, which `create` takes for every format.
pub const PREALLOCATION: OptionDoc = OptionDoc {
    key: "preallocation",
    kind: "str",
    about: "off (default), metadata (the same), falloc (space reserved) or full (zeros written); falloc and full for raw, fixed VHD and flat VMDK",
};

/// The parent options of the formats that make deltas.
pub const BACKING: [OptionDoc; 2] = [
    OptionDoc {
        key: "backing_file",
        kind: "str",
        about: "The parent of a delta (create's -b, convert's -B)",
    },
    OptionDoc {
        key: "backing_fmt",
        kind: "str",
        about: "The parent's format, which is the delta's own (-F)",
    },
];

/// What `-o help` prints: the options `format` takes, but the keys in
/// `leave_out` (what the command settles itself), in qemu-img's layout.
pub fn help_text(format: &str, docs: &[OptionDoc], leave_out: &[&str]) -> String {
    let mut docs: Vec<_> = docs
        .iter()
        .filter(|d| !leave_out.contains(&d.key))
        .copied()
        .collect();
    docs.sort_by_key(|d| d.key);
    let mut text = format!("Supported {format} options:\n");
    for d in docs {
        let key = format!("{}=<{}>", d.key, d.kind);
        text.push_str(&format!("  {key:<22} - {}\n", d.about));
    }
    text
}

/// Options not yet taken by a format, and the notes (warnings) the format
/// leaves for the user while taking them.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pairs: Vec<(String, Option<String>)>,
    /// Keys a command-line flag set, with the flag (`compress` by `-c`).
    flags: Vec<(String, &'static str)>,
    notes: Vec<String>,
}

impl Options {
    /// Parse one or more `-o` arguments; later values override earlier ones.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options> {
        let mut opts = Options::default();
        for arg in args {
            for item in split_unescaped(arg) {
                if item.is_empty() {
                    continue;
                }
                let (key, value) = match item.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), Some(v.to_string())),
                    None => (item.trim().to_string(), None),
                };
                if key.is_empty() {
                    return Err(Error::invalid(format!("invalid option '{item}'")));
                }
                opts.pairs.retain(|(k, _)| *k != key);
                opts.pairs.push((key, value));
            }
        }
        Ok(opts)
    }

    /// Add an option unless one with that key is already present.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if !self.pairs.iter().any(|(k, _)| k == key) {
            self.pairs.push((key.to_string(), Some(value.to_string())));
        }
    }

    /// Set an option, replacing any value given before.
    pub fn set(&mut self, key: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_string(), Some(value.to_string())));
    }

    /// Set an option on behalf of a command-line flag, so that a format
    /// without it names the flag when refusing it.
    pub fn set_by_flag(&mut self, key: &str, value: &str, flag: &'static str) {
        self.set(key, value);
        self.flags.push((key.to_string(), flag));
    }

    /// Leave a note for the user (printed by the command).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The notes left so far.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// True when `-o help` (or qemu-img's `-o ?`) asks for the list of
    /// options instead.
    pub fn wants_help(&self) -> bool {
        self.pairs
            .iter()
            .any(|(k, v)| v.is_none() && (k == "help" || k == "?"))
    }

    /// True when no option is left.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn take(&mut self, key: &str) -> Option<Option<String>> {
        let pos = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(pos).1)
    }

    /// Take a string option.
    pub fn take_str(&mut self, key: &str) -> Result<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Some(v)) => Ok(Some(v)),
            Some(None) => Err(Error::invalid(format!("option '{key}' needs a value"))),
        }
    }

    /// Take a boolean option: `key`, `key=on|off|true|false|yes|no`.
    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(None) => Ok(Some(true)),
            Some(Some(v)) => match v.as_str() {
                "on" | "true" | "yes" | "1" => Ok(Some(true)),
                "off" | "false" | "no" | "0" => Ok(Some(false)),
                _ => Err(Error::invalid(format!(
                    "option '{key}' takes on or off, not '{v}'"
                ))),
            },
        }
    }

    /// Take a size option (`64K`, `2M`, …).
    pub fn take_size(&mut self, key: &str) -> Result<Option<u64>> {
        match self.take_str(key)? {
            None => Ok(None),
            Some(v) => parse_size(&v)
                .map(Some)
                .map_err(|e| Error::invalid(format!("option '{key}': {e}"))),
        }
    }

    /// Fail when options are left that `format` does not know.
    pub fn finish(&self, format: &str) -> Result<()> {
        let Some((key, _)) = self.pairs.first() else {
            return Ok(());
        };
        Err(Error::invalid(
            match self.flags.iter().find(|(k, _)| k == key) {
                Some((_, flag)) => format!("{flag}: format '{format}' has no option '{key}'"),
                None => format!("format '{format}' has no option '{key}'"),
            },
        ))
    }
}

/// Split on single commas; `,,` stands for a literal comma.
fn split_unescaped(arg: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                items.last_mut().unwrap().push(',');
            } else {
                items.push(String::new());
            }
        } else {
            items.last_mut().unwrap().push(c);
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_flags_and_escaped_commas() {
        let mut o = Options::parse(["subformat=fixed,compat6", "name=a,,b"]).unwrap();
        assert_eq!(o.take_str("subformat").unwrap().as_deref(), Some("fixed"));
        assert_eq!(o.take_bool("compat6").unwrap(), Some(true));
        assert_eq!(o.take_str("name").unwrap().as_deref(), Some("a,b"));
        assert!(o.is_empty());
        o.finish("vmdk").unwrap();
    }

    #[test]
    fn leftovers_and_bad_values_are_errors() {
        let o = Options::parse(["sbformat=fixed"]).unwrap();
        let err = o.finish("vpc").unwrap_err().to_string();
        assert!(err.contains("sbformat"), "{err}");
        let mut o = Options::parse(["force_size=maybe"]).unwrap();
        assert!(o.take_bool("force_size").is_err());
        let mut o = Options::parse(["block_size=2M"]).unwrap();
        assert_eq!(o.take_size("block_size").unwrap(), Some(2 << 20));
        let mut o = Options::default();
        o.set_by_flag("compress", "on", "-c");
        let err = o.finish("vpc").unwrap_err().to_string();
        assert_eq!(err, "-c: format 'vpc' has no option 'compress'");
    }

    #[test]
    fn later_values_win() {
        let mut o = Options::parse(["a=1", "a=2"]).unwrap();
        assert_eq!(o.take_str("a").unwrap().as_deref(), Some("2"));
        o.set_default("b", "x");
        o.set_default("b", "y");
        assert_eq!(o.take_str("b").unwrap().as_deref(), Some("x"));
    }
}
