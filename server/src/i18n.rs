//! The request's language, zh-CN by default and English on request.
//!
//! A middleware reads `Accept-Language` (or the `lang` cookie set by the web
//! client) and runs the handler inside a task-local scope, so that error
//! responses can be translated without threading the language through every
//! function.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// A supported interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

tokio::task_local! {
    static LANG: Lang;
}

/// The language of the request being handled, zh-CN outside a request.
pub fn current_lang() -> Lang {
    LANG.try_with(|lang| *lang).unwrap_or_default()
}

/// Picks the language from the `lang` cookie, else the first supported
/// entry of `Accept-Language`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let cookie_lang = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("lang="))
        .next();
    if let Some(lang) = cookie_lang {
        return parse_tag(lang).unwrap_or_default();
    }
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .into_iter()
        .flat_map(|value| value.split(','))
        .filter_map(|tag| parse_tag(tag.split(';').next().unwrap_or("").trim()))
        .next()
        .unwrap_or_default()
}

fn parse_tag(tag: &str) -> Option<Lang> {
    let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    match primary.as_str() {
        "zh" => Some(Lang::Zh),
        "en" => Some(Lang::En),
        _ => None,
    }
}

/// Middleware that scopes the handler in the request's language.
pub async fn scope_lang(request: Request, next: Next) -> Response {
    let lang = lang_of(request.headers());
    LANG.scope(lang, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn accept_language_picks_first_supported() {
        assert_eq!(
            lang_of(&headers(&[("accept-language", "fr, en-US;q=0.8")])),
            Lang::En
        );
        assert_eq!(
            lang_of(&headers(&[("accept-language", "zh-CN,zh;q=0.9")])),
            Lang::Zh
        );
        assert_eq!(lang_of(&headers(&[])), Lang::Zh);
    }

    #[test]
    fn cookie_overrides_header() {
        let map = headers(&[("accept-language", "zh-CN"), ("cookie", "a=1; lang=en")]);
        assert_eq!(lang_of(&map), Lang::En);
    }
}
