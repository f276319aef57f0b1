//! The page shell shared by every HTML page, and rendering.

use crate::i18n::Tr;
use crate::session::LiveSession;
use ardoise_core::Role;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What the shell shows of the signed-in person.
#[derive(Debug, Clone)]
pub struct NavUser {
    /// « Prénom NOM ».
    pub name: String,
    /// For the sign-out form.
    pub csrf: String,
    /// Whether to show the administration link.
    pub is_admin: bool,
}

/// The shell's data: page title and signed-in person.
#[derive(Debug, Clone)]
pub struct Nav {
    /// The page's title.
    pub title: String,
    /// The signed-in person, if any.
    pub user: Option<NavUser>,
    /// Changes with the stylesheet, so browsers may cache it forever.
    pub css_version: &'static str,
}

/// The one stylesheet, served at `/static/ardoise.css` and cached by
/// browsers: every page is that much smaller.
pub const CSS: &str = include_str!("../static/ardoise.css");

/// A short fingerprint of [`CSS`].
pub fn css_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(CSS.as_bytes())[..6])
    })
}

impl Nav {
    /// The shell for a page of a signed-in person.
    pub fn signed(title: String, session: &LiveSession) -> Nav {
        Nav {
            title,
            user: Some(NavUser {
                name: session.display_name(),
                csrf: session.csrf_token.clone(),
                is_admin: session.actor.is(Role::Admin),
            }),
            css_version: css_version(),
        }
    }

    /// The shell for a public page.
    pub fn public(title: String) -> Nav {
        Nav {
            title,
            user: None,
            css_version: css_version(),
        }
    }
}

/// Renders a template; a rendering failure is a bug, answered with 500.
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Translates a role name for display.
pub fn role_label(t: &Tr, role: Role) -> String {
    t.get(&format!("role-{}", role.as_str()))
}
