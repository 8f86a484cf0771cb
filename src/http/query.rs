//! Query strings read strictly: `application/x-www-form-urlencoded` pairs
//! whose percent-escapes must decode to UTF-8. A malformed query is an
//! error, never a lossy guess.

/// Why a query string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the query string is malformed: {0}")]
pub struct BadQuery(&'static str);

fn decode(part: &str) -> Result<String, BadQuery> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BadQuery("a % is not followed by two hex digits"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BadQuery("a value is not UTF-8 once decoded"))
}

/// The query's `key=value` pairs, in order.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, BadQuery> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded_in_order() {
        assert_eq!(
            pairs("filter=userName+eq+%22a%40b%22&count=2&x").unwrap(),
            vec![
                ("filter".into(), "userName eq \"a@b\"".into()),
                ("count".into(), "2".into()),
                ("x".into(), String::new()),
            ]
        );
        assert_eq!(pairs("").unwrap(), vec![]);
        assert_eq!(pairs("a=%C3%A9").unwrap(), vec![("a".into(), "é".into())]);
    }

    #[test]
    fn invalid_utf8_and_broken_escapes_are_refused() {
        assert!(pairs("filter=%FF%FE").is_err());
        assert!(pairs("a=%C3").is_err());
        assert!(pairs("a=%zz").is_err());
        assert!(pairs("a=%4").is_err());
    }
}
