//! The dashboard: one HTML page with its stylesheet and JavaScript modules, embedded in the
//! binary and served at `/` and `/assets/{file}` (no CDN, no build step, nothing inline, so the
//! strict Content-Security-Policy holds).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// One embedded file and how it is served.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// A hash of the bytes, computed when the binary is built: the file's ETag.
    hash: u64,
}

/// FNV-1a over the bytes: enough to tell two builds' files apart for a cache.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// A file of `assets/`, embedded with its type.
macro_rules! asset {
    ($name:literal, $type:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!("assets/", $name));
        Asset {
            name: $name,
            content_type: $type,
            body: BODY,
            hash: fnv1a(BODY),
        }
    }};
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page loads; `/assets/{name}` serves exactly these.
static ASSETS: [Asset; 9] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("format.js", JS),
    asset!("logs.js", JS),
    asset!("sparkline.js", JS),
    asset!("table.js", JS),
];

/// Mounts `GET /` and `GET /assets/{file}` (both public: the page shows a login form).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/assets/{file}", web::get().to(asset));
}

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

async fn index(req: HttpRequest) -> HttpResponse {
    match find("index.html") {
        Some(page) => serve(&req, page),
        None => HttpResponse::InternalServerError().finish(),
    }
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    match find(&file) {
        Some(found) => serve(&req, found),
        None => HttpResponse::NotFound()
            .content_type("application/json")
            .body(
                serde_json::json!({
                    "error": format!("no asset '{}'", file.as_str()),
                    "kind": "not_found",
                })
                .to_string(),
            ),
    }
}

/// The file, or 304 when the browser's copy is this build's; the browser asks again every time
/// (`no-cache`) so a new daemon's page is never mixed with an old one's modules.
fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut answer = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        answer.finish()
    } else {
        answer.content_type(asset.content_type).body(asset.body)
    }
}

#[cfg(test)]
mod tests;
