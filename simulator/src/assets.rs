//! Images the generated tasks point at (`image_url`): a small PNG per request, drawn and encoded here (stored
//! deflate blocks, no compression library), plus a broken "image" for tests of image checks.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Side of the square cover, in pixels.
pub const COVER_SIDE: u32 = 64;

/// `GET /assets/cover/{n}.png`: a striped cover whose colours depend on `n`.
pub async fn cover(Path(file): Path<String>) -> Response {
    let Some(n) = file
        .strip_suffix(".png")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    ([(header::CONTENT_TYPE, "image/png")], cover_png(n)).into_response()
}

/// `GET /assets/broken.png`: text served as `image/png`.
pub async fn broken() -> Response {
    (
        [(header::CONTENT_TYPE, "image/png")],
        "this is not an image",
    )
        .into_response()
}

/// A `COVER_SIDE`² RGB PNG, colours derived from `n`.
pub fn cover_png(n: u64) -> Vec<u8> {
    let a = [
        (n * 53 % 200) as u8 + 30,
        (n * 97 % 200) as u8 + 30,
        (n * 31 % 200) as u8 + 30,
    ];
    let b = [255 - a[0], 255 - a[1], 255 - a[2]];
    let side = COVER_SIDE as usize;
    let mut raw = Vec::with_capacity(side * (side * 3 + 1));
    for y in 0..side {
        raw.push(0); // filter: none
        for x in 0..side {
            raw.extend_from_slice(if (x + y) / 8 % 2 == 0 { &a } else { &b });
        }
    }
    png(COVER_SIDE, COVER_SIDE, &raw)
}

fn png(width: u32, height: u32, raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut s1, mut s2) = (1u32, 0u32);
    for &byte in data {
        s1 = (s1 + u32::from(byte)) % 65_521;
        s2 = (s2 + s1) % 65_521;
    }
    out.extend_from_slice(&((s2 << 16) | s1).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_reference_value() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        let png = cover_png(3);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }
}
