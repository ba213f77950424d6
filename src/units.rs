//! Sizes as people type them (`512`, `64K`, `10G`, `1.5T`: binary units, as
//! qemu-img reads them) and as vimg prints them.

/// Parse a size: a number with an optional suffix B, K, M, G, T, P or E
/// (either case; powers of 1024). A fraction needs a suffix; the result is
/// rounded down to a whole byte.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("invalid size '{text}' (examples: 512, 64K, 10G, 1.5T)");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let shift = match suffix {
        "" | "b" | "B" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return Err(bad()),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(bad());
    }
    if !fraction.is_empty() && shift == 0 {
        return Err(format!("invalid size '{text}': a fraction of a byte"));
    }
    let too_big = || format!("size '{text}' is too large");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let mut bytes = whole.checked_shl(shift).ok_or_else(too_big)?;
    if !fraction.is_empty() {
        let digits = fraction.len().min(18) as u32;
        let numerator: u128 = fraction[..digits as usize].parse().map_err(|_| bad())?;
        bytes += (numerator << shift) / 10u128.pow(digits);
    }
    u64::try_from(bytes)
        .ok()
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(too_big)
}

/// A size in binary units for people: `10 GiB`, `1.5 MiB`, `512 B`.
pub fn human_size(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_qemu_img() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("1.5T").unwrap(), 3 << 39);
        assert_eq!(parse_size("0.5K").unwrap(), 512);
        assert_eq!(parse_size("100b").unwrap(), 100);
        assert_eq!(parse_size(" 2M ").unwrap(), 2 << 20);
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            "",
            "G",
            "1.5",
            "1..5G",
            "10X",
            "-1",
            "1.2.3M",
            "99999999E",
            "10GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(10 << 30), "10 GiB");
        assert_eq!(human_size(1536 << 10), "1.50 MiB");
        assert_eq!(human_size(512), "512 B");
    }
}
