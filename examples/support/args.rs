//! Command-line pieces the benchmarks share.

/// `KEY=VALUE` (an `--server-env` value) as its two parts.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}
