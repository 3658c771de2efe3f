//! The embedded page: every file it names is served, nothing in it is inline, and caching works.

use actix_web::http::{header, StatusCode};
use actix_web::test::{call_service, init_service, read_body, TestRequest};
use actix_web::App;

use super::{routes, ASSETS};

fn text(name: &str) -> &'static str {
    let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
    std::str::from_utf8(asset.body).unwrap()
}

/// The files a text refers to: `/assets/x` in the page, `from './x.js'` in a module.
fn referenced_assets(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["/assets/", "from './"] {
        for after in text.split(marker).skip(1) {
            let end = after.find(['"', '\'']).unwrap_or(after.len());
            found.push(after[..end].to_string());
        }
    }
    found
}

#[test]
fn every_file_the_page_names_is_embedded() {
    let mut names = referenced_assets(text("index.html"));
    for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        names.extend(referenced_assets(text(asset.name)));
    }
    assert!(names.contains(&"app.js".to_string()), "{names:?}");
    assert!(names.contains(&"table.js".to_string()), "{names:?}");
    for name in names {
        assert!(
            ASSETS.iter().any(|a| a.name == name),
            "{name} is named but not embedded"
        );
    }
}

#[test]
fn the_page_has_no_inline_script_or_style() {
    let page = text("index.html");
    for tag in page.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains("src="), "an inline script: <script{open}>");
    }
    assert!(!page.contains("<style"), "an inline stylesheet");
    assert!(!page.contains(" style="), "an inline style attribute");
    assert!(!page.contains(" onclick="), "an inline event handler");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "an outside URL"
    );
}

#[actix_web::test]
async fn the_page_and_its_assets_are_served_with_their_types() {
    let app = init_service(App::new().configure(routes)).await;
    let page = call_service(&app, TestRequest::get().uri("/").to_request()).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/html; charset=utf-8"
    );
    let body = read_body(page).await;
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .contains("/assets/app.js"));

    let script = call_service(&app, TestRequest::get().uri("/assets/app.js").to_request()).await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/javascript; charset=utf-8"
    );

    let missing = call_service(&app, TestRequest::get().uri("/assets/nope.js").to_request()).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let outside = call_service(
        &app,
        TestRequest::get()
            .uri("/assets/..%2FCargo.toml")
            .to_request(),
    )
    .await;
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_browser_with_this_builds_copy_gets_304() {
    let app = init_service(App::new().configure(routes)).await;
    let first = call_service(
        &app,
        TestRequest::get().uri("/assets/style.css").to_request(),
    )
    .await;
    let etag = first.headers().get(header::ETAG).unwrap().clone();
    assert_eq!(
        first.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-cache"
    );
    let again = call_service(
        &app,
        TestRequest::get()
            .uri("/assets/style.css")
            .insert_header((header::IF_NONE_MATCH, etag))
            .to_request(),
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let other = call_service(
        &app,
        TestRequest::get()
            .uri("/assets/style.css")
            .insert_header((header::IF_NONE_MATCH, "\"0\""))
            .to_request(),
    )
    .await;
    assert_eq!(other.status(), StatusCode::OK);
}
