//! The `image_url` download against a local HTTP server: images saved, other content refused with a clear
//! message, the private-address guard in both policies (and re-checked on redirects), size and time caps.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use podcast_worker::config::ImageSettings;
use podcast_worker::image::{ImageError, ImageKind, fetch_image};

/// A 2x3 PNG header (signature + IHDR); enough for the type and size checks.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x08, 0x06, 0x00, 0x00, 0x00, 0x9D, 0x74, 0x66,
    0x1A, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

const MAX: u64 = 64 * 1024;

fn png() -> Response {
    ([(header::CONTENT_TYPE, "image/png")], PNG).into_response()
}

fn big_body() -> Vec<u8> {
    let mut body = PNG.to_vec();
    body.resize(3 * MAX as usize, 0);
    body
}

/// Serves the fixtures on 127.0.0.1:0; returns the base URL `http://127.0.0.1:<port>`.
async fn serve() -> String {
    let app = Router::new()
        .route("/cover.png", get(|| async { png() }))
        .route(
            "/page",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "image/png")],
                    "<html><body>Not found</body></html>",
                )
            }),
        )
        .route("/big", get(|| async { big_body() }))
        .route(
            "/big-chunked",
            get(|| async {
                let chunks = big_body()
                    .chunks(8 * 1024)
                    .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                    .collect::<Vec<_>>();
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/to-cover",
            get(|| async { Redirect::temporary("/cover.png") }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/to-unspecified",
            get(|| async { Redirect::temporary("http://0.0.0.0/cover.png") }),
        )
        .route(
            "/to-file",
            get(|| async { Redirect::temporary("file:///etc/passwd") }),
        )
        .route(
            "/slow",
            get(|| async {
                // The server under test being slow, not the test waiting: the client must give up first.
                tokio::time::sleep(Duration::from_secs(30)).await;
                png()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn settings(allow_private: bool) -> ImageSettings {
    ImageSettings {
        allow_private,
        max_bytes: MAX,
        timeout: Duration::from_secs(5),
        dir: None,
    }
}

#[tokio::test]
async fn image_is_saved_to_a_temp_file_that_is_removed_on_drop() {
    let base = serve().await;
    let image = fetch_image(&settings(true), &format!("{base}/cover.png"))
        .await
        .unwrap();
    assert_eq!(image.kind, ImageKind::Png);
    assert_eq!(image.dimensions, Some((2, 3)));
    assert_eq!(image.len, PNG.len() as u64);
    let path = image.path().to_owned();
    assert!(path.to_string_lossy().ends_with(".png"), "{path:?}");
    assert_eq!(std::fs::read(&path).unwrap(), PNG);
    drop(image);
    assert!(!path.exists());
}

#[tokio::test]
async fn image_on_loopback_is_refused_unless_private_addresses_are_allowed() {
    let base = serve().await;
    for url in [
        format!("{base}/cover.png"),
        base.replace("127.0.0.1", "localhost") + "/cover.png",
    ] {
        let err = fetch_image(&settings(false), &url).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("image_url points to a private address"),
            "{err}"
        );
        assert!(err.is_permanent());
        assert!(fetch_image(&settings(true), &url).await.is_ok(), "{url}");
    }
}

#[tokio::test]
async fn image_redirects_are_followed_and_each_target_rechecked() {
    let base = serve().await;
    let image = fetch_image(&settings(true), &format!("{base}/to-cover"))
        .await
        .unwrap();
    assert_eq!(image.kind, ImageKind::Png);
    // 0.0.0.0 reaches the local host on Linux: refused even where private addresses are allowed.
    let err = fetch_image(&settings(true), &format!("{base}/to-unspecified"))
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::PrivateAddress(_)), "{err}");
    let err = fetch_image(&settings(true), &format!("{base}/to-file"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only http and https"), "{err}");
    let err = fetch_image(&settings(true), &format!("{base}/loop"))
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Redirects), "{err}");
}

#[tokio::test]
async fn image_that_is_html_is_refused_with_its_start() {
    let base = serve().await;
    let err = fetch_image(&settings(true), &format!("{base}/page"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not an image (content starts with <html><body>Not...)"
    );
    assert!(err.is_permanent());
    let err = fetch_image(&settings(true), &format!("{base}/missing"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "image_url answered HTTP 404");
}

#[tokio::test]
async fn image_larger_than_the_cap_is_refused_with_or_without_a_length() {
    let base = serve().await;
    for path in ["/big", "/big-chunked"] {
        let err = fetch_image(&settings(true), &format!("{base}{path}"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("image larger than {MAX} bytes"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn image_from_a_slow_server_times_out() {
    let base = serve().await;
    let mut s = settings(true);
    s.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = fetch_image(&s, &format!("{base}/slow")).await.unwrap_err();
    assert!(matches!(err, ImageError::Timeout(_)), "{err}");
    assert!(!err.is_permanent());
    assert!(started.elapsed() < Duration::from_secs(5));
}
