//! Browser test fixtures: the real Chromium from `CHROMIUM_PATH`, pool settings in a temp dir, and fixture
//! sites served by the test itself on 127.0.0.1:0.

use std::path::PathBuf;

use podcast_worker::config::BrowserSettings;

/// The real Chromium binary; panics with instructions when it is missing.
pub fn chromium_path() -> PathBuf {
    let path =
        std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/lib/chromium/chromium".to_owned());
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "Chromium not found at {} (apt-get install chromium, or run scripts/test)",
        path.display()
    );
    path
}

/// Pool settings with profiles and artifacts under `dir`.
pub fn settings(dir: &std::path::Path) -> BrowserSettings {
    let mut s = BrowserSettings::for_test(chromium_path(), dir.join("profiles"));
    s.artifacts_dir = dir.join("artifacts");
    s
}

/// Serves `app` on a free port of 127.0.0.1; returns the base URL (`http://127.0.0.1:<port>`).
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
