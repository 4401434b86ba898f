//! The operator page's HTML, rendered from plain values (pure, no I/O)
//! through `maud`, which escapes every value it is given: nothing from the
//! database, the broker or the request can become markup. The only markup
//! not written in `html!` is the constant style sheet.
//!
//! - `overview`: the front page (attention, batches awaiting an operator,
//!   dead letters, the search)
//! - `attention`: open items, suspects of a double payment, held batches
//! - `refund`: one refund's story

mod attention;
mod overview;
mod refund;

use maud::{DOCTYPE, Markup, PreEscaped, html};

pub use attention::Attention;
pub use overview::{DeadRow, overview};
pub use refund::refund;

/// Who is looking, for the sign-out form: their name and their session's
/// CSRF field (empty for a bearer request, which needs none).
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
}

/// The page's one style sheet, inline (the CSP allows inline styles).
const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:70em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
.flash{background:#ffd;padding:.5em}.who{float:right}.who form{display:inline}";

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · refund-worker" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                (body)
            }
        }
    }
    .into_string()
}

/// The hidden CSRF field of a changing form.
fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The token form; `error` says why the last try failed.
pub fn login(error: Option<&str>) -> String {
    page(
        "Sign in",
        html! {
            @if let Some(e) = error {
                p class="flash" id="error" { (e) }
            }
            form method="post" action="/login" {
                label { "Operator token " input type="password" name="token" id="token" autocomplete="off"; }
                " "
                button type="submit" id="sign-in" { "Sign in" }
            }
        },
    )
}

/// What a request without the credential gets.
pub fn refused() -> String {
    page(
        "Not signed in",
        html! {
            p {
                "This page needs an operator token: " a href="/login" { "sign in" }
                ", or send " code { "Authorization: Bearer …" } "."
            }
        },
    )
}

/// Who is signed in, and the sign-out button.
fn who(viewer: &Viewer<'_>) -> Markup {
    html! {
        p class="who" {
            "Signed in as " strong id="operator" { (viewer.name) } " "
            form method="post" action="/logout" {
                (csrf_field(viewer.csrf))
                button type="submit" id="sign-out" { "Sign out" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_escapes_its_error_and_keeps_its_fields() {
        let html = login(Some("<b>no</b>"));
        assert!(html.contains("&lt;b&gt;no&lt;/b&gt;"), "{html}");
        assert!(html.contains("id=\"token\"") && html.contains("id=\"sign-in\""));
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(refused().contains("Not signed in"));
    }

    #[test]
    fn the_viewer_is_named_and_the_sign_out_carries_the_csrf_field() {
        let html = who(&Viewer {
            name: "<alice>",
            csrf: "c\"1",
        })
        .into_string();
        assert!(html.contains("&lt;alice&gt;"), "{html}");
        assert!(html.contains("action=\"/logout\""));
        assert!(html.contains("name=\"csrf\" value=\"c&quot;1\""));
    }
}
