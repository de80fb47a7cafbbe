//! Image type detection by magic bytes (PNG, JPEG, GIF, WebP) and the pixel size from the header; no decoding.

/// An accepted image type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `\x89PNG\r\n\x1a\n`.
    Png,
    /// `FF D8 FF`.
    Jpeg,
    /// `GIF87a` / `GIF89a`.
    Gif,
    /// `RIFF....WEBP`.
    Webp,
}

impl ImageKind {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Gif => "gif",
            ImageKind::Webp => "webp",
        }
    }
}

/// The image type of `bytes`, by magic bytes; `None` when it is none of the accepted ones.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageKind::Webp)
    } else {
        None
    }
}

/// The first few characters of a body for an error message: printable ASCII kept, the rest shown as `.`.
pub(super) fn preview(bytes: &[u8]) -> String {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let shown: String = bytes[start..]
        .iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    if shown.is_empty() {
        "nothing: the body is empty".into()
    } else if bytes.len() - start > 16 {
        format!("{}...", shown.trim_end())
    } else {
        shown
    }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as u32)
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]) as u32)
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        0,
    ]))
}

/// Width and height in pixels from the header, when it can be read.
pub(super) fn dimensions(kind: ImageKind, b: &[u8]) -> Option<(u32, u32)> {
    match kind {
        ImageKind::Png if b.get(12..16)? == b"IHDR" => {
            let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
            let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
            Some((w, h))
        }
        ImageKind::Png => None,
        ImageKind::Gif => Some((le16(b, 6)?, le16(b, 8)?)),
        ImageKind::Jpeg => jpeg_dimensions(b),
        ImageKind::Webp => match b.get(12..16)? {
            b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
            b"VP8 " => Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff)),
            b"VP8L" => {
                let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            _ => None,
        },
    }
}

/// Walks the JPEG segments to the first start-of-frame marker.
fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            return Some((be16(b, at + 7)?, be16(b, at + 5)?));
        }
        at += 2 + be16(b, at + 2)? as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid 1x1 PNG.
    pub(crate) const PNG_1X1: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89,
    ];

    #[test]
    fn magic_bytes_are_recognised() {
        assert_eq!(sniff(PNG_1X1), Some(ImageKind::Png));
        assert_eq!(dimensions(ImageKind::Png, PNG_1X1), Some((1, 1)));
        let gif = b"GIF89a\x20\x00\x10\x00rest";
        assert_eq!(sniff(gif), Some(ImageKind::Gif));
        assert_eq!(dimensions(ImageKind::Gif, gif), Some((32, 16)));
        let webp =
            b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\x3f\x00\x00\x1f\x00\x00";
        assert_eq!(sniff(webp), Some(ImageKind::Webp));
        assert_eq!(dimensions(ImageKind::Webp, webp), Some((64, 32)));
        // SOI, an APP0 segment of length 4, then SOF0 with height 0x0102 and width 0x0304.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01,
            0x02, 0x03, 0x04,
        ];
        assert_eq!(sniff(&jpeg), Some(ImageKind::Jpeg));
        assert_eq!(dimensions(ImageKind::Jpeg, &jpeg), Some((0x0304, 0x0102)));
    }

    #[test]
    fn other_content_is_refused_with_a_preview() {
        let html = b"\n  <html><head><title>x</title></head></html>";
        assert_eq!(sniff(html), None);
        assert_eq!(preview(html), "<html><head><tit...");
        assert_eq!(preview(b"\x00\x01ab"), "..ab");
        assert_eq!(preview(b""), "nothing: the body is empty");
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WAVE"), None);
    }

    #[test]
    fn truncated_headers_do_not_panic() {
        for kind in [
            ImageKind::Png,
            ImageKind::Jpeg,
            ImageKind::Gif,
            ImageKind::Webp,
        ] {
            for len in 0..30 {
                let _ = dimensions(kind, &PNG_1X1[..len.min(PNG_1X1.len())]);
                let _ = dimensions(kind, &[0xFF; 30][..len]);
            }
        }
    }
}
