//! RSS 2.0 with the iTunes namespace: written by the main site (`itunes:owner/itunes:email` = the account's
//! email), read by the sub-sites when they import a feed (title, description, owner email).

use regex::Regex;

use super::accounts::Show;
use super::html::esc;

/// The feed of a show; `link` is the show page, `cover_url` its image.
pub fn render(show: &Show, link: &str, cover_url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel>
<title>{title}</title>
<link>{link}</link>
<description>{about}</description>
<language>en</language>
<itunes:author>{title}</itunes:author>
<itunes:owner><itunes:name>{title}</itunes:name><itunes:email>{email}</itunes:email></itunes:owner>
<itunes:image href="{cover}"/>
<itunes:explicit>false</itunes:explicit>
</channel>
</rss>
"#,
        title = esc(&show.title),
        link = esc(link),
        about = esc(&show.about),
        email = esc(&show.owner),
        cover = esc(cover_url),
    )
}

/// What an import needs from a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfo {
    /// Channel title.
    pub title: String,
    /// Channel description.
    pub about: String,
    /// Owner email.
    pub owner_email: String,
}

/// Reads title, description and owner email; the message says what is missing.
pub fn parse(xml: &str) -> Result<FeedInfo, &'static str> {
    if !xml.contains("<rss") || !xml.contains("<channel") {
        return Err("This is not a valid RSS feed");
    }
    let title =
        first(xml, r"(?s)<channel>.*?<title>(.*?)</title>").ok_or("The feed has no title")?;
    let about = first(xml, r"(?s)<channel>.*?<description>(.*?)</description>").unwrap_or_default();
    let owner_email = first(
        xml,
        r"(?s)<itunes:owner>.*?<itunes:email>(.*?)</itunes:email>",
    )
    .filter(|e| e.contains('@'))
    .ok_or("The feed has no owner email (itunes:owner)")?;
    Ok(FeedInfo {
        title,
        about,
        owner_email,
    })
}

fn first(text: &str, pattern: &str) -> Option<String> {
    let re = Regex::new(pattern).ok()?;
    let raw = re.captures(text)?.get(1)?.as_str().trim();
    let raw = raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
        .unwrap_or(raw);
    Some(unescape(raw))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_feed_parses_back() {
        let show = Show {
            id: "s1".into(),
            owner: "u1.7@demo.test".into(),
            title: "Tom & Jerry's <show>".into(),
            about: "About it".into(),
            cover: None,
            rss_enabled: true,
            imported_from: None,
        };
        let info = parse(&render(&show, "http://x/shows/s1", "http://x/c")).unwrap();
        assert_eq!(info.title, "Tom & Jerry's <show>");
        assert_eq!(info.owner_email, "u1.7@demo.test");
        assert_eq!(parse("<html></html>"), Err("This is not a valid RSS feed"));
    }
}
