//! The page frame, the embedded assets and small rendering helpers (money, times, JSON, charts
//! drawn as inline SVG on the server).

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use pix_core::money::Money;

use super::Operator;
use super::session::Viewer;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
}

pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], JS)
}

/// Nav entries: (path, label, admin only).
const NAV: &[(&str, &str, bool)] = &[
    ("/console/policies", "Policies", true),
    ("/console/decisions", "Decisions", true),
    ("/console/transfers", "Transfers", false),
    ("/console/refunds", "Refunds", false),
    ("/console/reviews", "Review queue", true),
    ("/console/stuck", "Stuck & incidents", false),
    ("/console/quote", "Fee quote", false),
    ("/console/webhooks", "Webhooks", false),
    ("/console/dict", "DICT", false),
    ("/console/health", "Health", false),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · pix-host console" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page for a signed-in operator: the navigation (only what the credential may open), the
/// sign-out form and `body`.
pub fn page(operator: &Operator, current: &str, title: &str, body: Markup) -> Markup {
    let admin = operator.viewer.is_admin();
    let who = match &operator.viewer {
        Viewer::Admin { .. } => "admin (all tenants)".to_owned(),
        Viewer::Tenant(t) => format!("tenant {}", t.name),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    a.brand href="/console" { "pix-host console" }
                    nav {
                        @for (path, label, admin_only) in NAV {
                            @if admin || !admin_only {
                                a href=(path) class=[(*path == current).then_some("current")] { (label) }
                            }
                        }
                    }
                    form.signout method="post" action="/console/logout" {
                        span.who { (who) }
                        (csrf(&operator.csrf))
                        button type="submit" { "Sign out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { main { h1 { (title) } (body) } }
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    bare(
        &format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
        html! {
            p.error role="alert" { (message) }
            p { a href="/console" { "Back to the console" } }
        },
    )
}

/// The hidden field every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// After a successful POST: back to `to` (a path, with or without a query) showing `notice`.
pub fn redirect_with_notice(to: &str, notice: &str) -> axum::response::Response {
    let notice: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    let separator = if to.contains('?') { '&' } else { '?' };
    axum::response::Redirect::to(&format!("{to}{separator}notice={notice}")).into_response()
}

/// A success or error notice after a POST/redirect/GET, from the `notice`/`error` query fields.
pub fn notices(notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        @if let Some(e) = error { p.error role="alert" { (e) } }
    }
}

pub fn money(centavos: i64) -> String {
    format!("R$ {}", Money::from_centavos(centavos))
}

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_else(|| "—".into())
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// JSON as recorded (decision inputs and outputs), compact.
pub fn json(value: &impl serde::Serialize) -> Markup {
    html! { code.json { (serde_json::to_string(value).unwrap_or_default()) } }
}

/// A tenant picker for admins (a GET form keeping the other query fields).
pub fn tenant_picker(
    operator: &Operator,
    tenants: &[pix_store::tenants::Tenant],
    selected: uuid::Uuid,
    action: &str,
) -> Markup {
    html! {
        @if operator.viewer.is_admin() {
            form.picker method="get" action=(action) {
                label { "Tenant "
                    select name="tenant" {
                        @for t in tenants {
                            option value=(t.id) selected[t.id == selected] { (t.name) " (" (t.ispb) ")" }
                        }
                    }
                }
                button type="submit" { "Show" }
            }
        }
    }
}

/// Vertical bars, one per (label, value), with the value above each bar.
pub fn bar_chart(title: &str, bars: &[(String, u64)]) -> Markup {
    let (width, height, pad) = (640.0_f64, 180.0_f64, 24.0_f64);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let step = (width - 2.0 * pad) / bars.len().max(1) as f64;
    html! {
        figure {
            svg.chart viewBox=(format!("0 0 {width} {}", height + 36.0)) role="img" aria-label=(title) {
                @for (i, (label, value)) in bars.iter().enumerate() {
                    @let h = (*value as f64 / max) * (height - pad);
                    @let x = pad + i as f64 * step;
                    rect x=(format!("{:.1}", x + 2.0)) y=(format!("{:.1}", height - h))
                        width=(format!("{:.1}", (step - 4.0).max(1.0))) height=(format!("{h:.1}")) {}
                    text x=(format!("{:.1}", x + step / 2.0)) y=(format!("{:.1}", height - h - 4.0)) text-anchor="middle" { (value) }
                    text x=(format!("{:.1}", x + step / 2.0)) y=(format!("{:.1}", height + 16.0)) text-anchor="middle" class="axis" { (label) }
                }
                line x1=(pad) y1=(height) x2=(width - pad) y2=(height) {}
            }
            figcaption { (title) }
        }
    }
}

/// A line of percentages (0–100) over time buckets, labelled at both ends.
pub fn percent_line(title: &str, points: &[(String, f64)]) -> Markup {
    let (width, height, pad) = (640.0_f64, 160.0_f64, 28.0_f64);
    let step = if points.len() > 1 { (width - 2.0 * pad) / (points.len() - 1) as f64 } else { 0.0 };
    let at = |i: usize, p: f64| (pad + i as f64 * step, pad + (100.0 - p) / 100.0 * (height - 2.0 * pad));
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, p))| {
            let (x, y) = at(i, *p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    html! {
        figure {
            svg.chart viewBox=(format!("0 0 {width} {}", height + 20.0)) role="img" aria-label=(title) {
                line x1=(pad) y1=(pad) x2=(width - pad) y2=(pad) class="grid" {}
                line x1=(pad) y1=(height - pad) x2=(width - pad) y2=(height - pad) {}
                text x="2" y=(pad + 4.0) class="axis" { "100%" }
                text x="2" y=(height - pad + 4.0) class="axis" { "0%" }
                polyline points=(path.join(" ")) {}
                @for (i, (label, p)) in points.iter().enumerate() {
                    @let (x, y) = at(i, *p);
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" {}
                    text x=(format!("{x:.1}")) y=(format!("{:.1}", y - 6.0)) text-anchor="middle" { (format!("{p:.0}%")) }
                    text x=(format!("{x:.1}")) y=(format!("{:.1}", height + 6.0)) text-anchor="middle" class="axis" { (label) }
                }
            }
            figcaption { (title) }
        }
    }
}
