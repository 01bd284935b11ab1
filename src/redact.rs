//! What a message, a log line or `config check` may show of a value that came from outside:
//! URLs without their credentials, settings only when they cannot be a secret, long texts
//! shortened.
//!
//! A leaf module (it uses no other module of this crate), so that `config` and the storage
//! connection strings it validates can both use it.

use url::Url;

/// What is shown in place of a secret.
pub const REDACTED: &str = "[REDACTED]";
/// What a problem message says instead of a value that may hold a secret.
pub const NOT_SHOWN: &str = "(value not shown: it may hold a secret)";

/// A value that is not a URL as a problem message may show it: quoted when it is short and made
/// only of what settings are written with (letters, digits, spaces, `.`, `-`, `_`, `/`);
/// otherwise [`NOT_SHOWN`], because it may be, or contain, a secret pasted into the wrong place
/// (a SAS, `AccountKey=…`, a client secret, several lines).
pub fn shown(value: &str) -> String {
    let plain = value.chars().count() <= 64
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | '/'));
    if plain {
        format!("`{value}`")
    } else {
        NOT_SHOWN.to_owned()
    }
}

/// A value meant to be a URL as a problem message may show it: quoted and passed through
/// [`redact_url`] when it is an absolute URL with a host, else as [`shown`] shows it. Whatever is
/// left that could still carry a credential (`=`, `;`, `&`, spaces) hides it whole.
pub fn shown_url(value: &str) -> String {
    match Url::parse(value) {
        Ok(url) if url.has_host() => {
            let redacted = redact_url(value);
            let rest = redacted
                .replace(&format!("{REDACTED}@"), "")
                .replace(&format!("?{REDACTED}"), "");
            let plain = rest.len() <= 200
                && rest.chars().all(|c| {
                    c.is_ascii_graphic() && !matches!(c, '=' | ';' | '&' | '@' | '?' | '`')
                });
            if plain {
                format!("`{redacted}`")
            } else {
                NOT_SHOWN.to_owned()
            }
        }
        _ => shown(value),
    }
}

/// A URL as it may be shown: no user information and no query string (a SAS), each replaced
/// by a redaction marker when present. Text that is not a URL is redacted whole.
pub fn redact_url(text: &str) -> String {
    // Without a host (`user:secret@host` parses as the scheme `user`), nothing is safe to show.
    let Some(mut url) = Url::parse(text).ok().filter(Url::has_host) else {
        return REDACTED.to_owned();
    };
    let had_user = !url.username().is_empty() || url.password().is_some();
    let had_query = url.query().is_some();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let mut shown = url.to_string();
    if had_user && let Some((scheme, rest)) = shown.split_once("://") {
        shown = format!("{scheme}://{REDACTED}@{rest}");
    }
    if had_query {
        shown.push('?');
        shown.push_str(REDACTED);
    }
    shown
}

/// Shortens text from elsewhere (a Graph error message, an SDK's reason) for inclusion in our
/// messages: at most `max_chars` characters, and `…` when something was cut.
pub fn shorten(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redact_url("https://logs.blob.core.usgovcloudapi.net/?sv=2024&sig=abc%3D"),
            "https://logs.blob.core.usgovcloudapi.net/?[REDACTED]"
        );
        assert_eq!(
            redact_url("https://user:pa55@proxy.example/path?sig=x"),
            "https://[REDACTED]@proxy.example/path?[REDACTED]"
        );
        assert_eq!(
            redact_url("https://logs.blob.core.windows.net/"),
            "https://logs.blob.core.windows.net/"
        );
        assert_eq!(redact_url("not a url sig=abc"), "[REDACTED]");
        // Parses as the scheme `user` with no host: nothing of it is shown.
        assert_eq!(redact_url("user:pa55@proxy.example"), "[REDACTED]");
        assert_eq!(
            redact_url("https://:pa55@proxy.example/"),
            "https://[REDACTED]@proxy.example/"
        );
        assert_eq!(
            shown_url("https://user:pa55@proxy.example/?sig=x"),
            "`https://[REDACTED]@proxy.example/?[REDACTED]`"
        );
        // A host that the URL parser accepts but that carries `=`: hidden whole.
        assert_eq!(shown_url("https://proxy.example;sig=x/"), NOT_SHOWN);
        assert_eq!(shown_url("graph.microsoft.us"), "`graph.microsoft.us`");
        assert_eq!(shown("AzureMoon"), "`AzureMoon`");
        assert_eq!(shown("7 days"), "`7 days`");
        for secret_like in ["a;AccountKey=k", "Abc8Q~x", "two\nlines", &"x".repeat(65)] {
            assert_eq!(shown(secret_like), NOT_SHOWN, "{secret_like:?}");
        }
    }

    #[test]
    fn shorten_keeps_short_text() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("abcdef", 3), "abc…");
    }
}
