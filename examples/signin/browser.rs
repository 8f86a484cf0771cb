//! A browser as far as the sign-in pages need one: a cookie jar (by name;
//! paths and expiry are not modelled, a cookie set empty or with
//! `Max-Age=0` is dropped), redirects handed back rather than followed, and
//! the form's CSRF value read from the page. Also the invitation links,
//! read from the `.eml` files the folder transport writes.
//!
//! It never retries, and never sends anything but to the server it was
//! given (absolute URLs elsewhere are refused).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// What the server answered.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The `Location` of a 303, or an error naming `step`.
    pub fn see_other(&self, step: &str) -> Result<&str> {
        match (self.status, &self.location) {
            (303, Some(to)) => Ok(to),
            _ => bail!(
                "{step}: expected 303, got {} {}",
                self.status,
                snippet(&self.body)
            ),
        }
    }

    /// The page's CSRF form value, when it is a 200 page with a form.
    pub fn csrf(&self, step: &str) -> Result<String> {
        if self.status != 200 {
            bail!(
                "{step}: expected 200, got {} {}",
                self.status,
                snippet(&self.body)
            );
        }
        let marker = r#"name="csrf" value=""#;
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .with_context(|| format!("{step}: the page has no CSRF field"))?;
        let len = self.body[start..].find('"').unwrap_or(0);
        Ok(self.body[start..start + len].to_string())
    }
}

/// The text of a page, short, for error messages.
fn snippet(body: &str) -> String {
    let text: String = body.chars().take(300).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One person's browser, on one shared client (its connections, its source
/// address).
pub struct Browser {
    http: reqwest::Client,
    base: String,
    jar: HashMap<String, String>,
}

impl Browser {
    pub fn new(http: reqwest::Client, base: &str) -> Browser {
        Browser {
            http,
            base: base.to_string(),
            jar: HashMap::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.insert(name.to_string(), value.to_string());
    }

    fn url(&self, target: &str) -> Result<String> {
        if target.starts_with('/') {
            Ok(format!("{}{target}", self.base))
        } else if target.starts_with(&format!("{}/", self.base)) {
            Ok(target.to_string())
        } else {
            bail!("refusing to leave the server under test for {target}")
        }
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }

    pub async fn get(&mut self, target: &str) -> Result<Page> {
        let req = self.http.get(self.url(target)?);
        self.send(req, target).await
    }

    pub async fn post(&mut self, target: &str, form: &[(&str, &str)]) -> Result<Page> {
        let req = self.http.post(self.url(target)?).form(form);
        self.send(req, target).await
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, target: &str) -> Result<Page> {
        let res = req
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .with_context(|| format!("{target}: no answer"))?;
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        for set in res.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap_or_default();
            let pair = set.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if value.is_empty() || set.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        let body = res
            .text()
            .await
            .with_context(|| format!("{target}: body"))?;
        Ok(Page {
            status,
            location,
            body,
        })
    }
}

/// The invitation links in the mail folder, by recipient (lowercased), as
/// paths (`/join/<token>`). A later mail to the same person wins.
pub fn invitation_links(dir: &Path, base: &str) -> Result<HashMap<String, String>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("mail folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let prefix = format!("{base}/join/");
    let mut links = HashMap::new();
    for path in names {
        // Quoted-printable soft line breaks may cut the link; the token
        // itself is base64url, which quoted-printable leaves alone.
        let raw = std::fs::read_to_string(&path)?
            .replace("=\r\n", "")
            .replace("=\n", "");
        let to = raw
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .map(|v| {
                let v = v.trim();
                match (v.rfind('<'), v.rfind('>')) {
                    (Some(a), Some(b)) if a < b => &v[a + 1..b],
                    _ => v,
                }
            })
            .map(str::to_lowercase);
        let token = raw.find(&prefix).map(|i| {
            raw[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        });
        if let (Some(to), Some(token)) = (to, token)
            && !token.is_empty()
        {
            links.insert(to, format!("/join/{token}"));
        }
    }
    Ok(links)
}
