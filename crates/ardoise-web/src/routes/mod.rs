//! Every route of Ardoise, declared through [`RouteTable`] so that the
//! access-matrix test sees exactly the routes the router serves.

pub mod account;
pub mod admin;
pub mod api;
pub mod diary;
pub mod home;
pub mod signin;
pub mod surge;
pub mod system;
pub mod work;
// Documents (issue 5).
pub mod documents;
// Messaging, announcements and the timeline (issue 4).
pub mod announcements;
pub mod messages;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{delete, get, head, patch, post, put};
use axum::Router;

/// One declared route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path pattern, as axum reads it (`/classes/{id}`).
    pub path: &'static str,
}

/// A router that remembers what it was given.
pub struct RouteTable {
    router: Router<AppState>,
    entries: Vec<RouteEntry>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable {
            router: Router::new(),
            entries: Vec::new(),
        }
    }
}

impl RouteTable {
    /// A `GET` route.
    pub fn get<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, get(h));
        self.entries.push(RouteEntry {
            method: "GET",
            path,
        });
        self
    }

    /// A `POST` route.
    pub fn post<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, post(h));
        self.entries.push(RouteEntry {
            method: "POST",
            path,
        });
        self
    }

    /// A `PUT` route.
    pub fn put<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, put(h));
        self.entries.push(RouteEntry {
            method: "PUT",
            path,
        });
        self
    }

    /// A `POST` route whose body carries files: the global body limit does
    /// not apply; the upload reader bounds each file and their number.
    pub fn post_upload<H: Handler<T, AppState>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.router = self
            .router
            .route(path, post(h).layer(DefaultBodyLimit::disable()));
        self.entries.push(RouteEntry {
            method: "POST",
            path,
        });
        self
    }

    /// A `PUT` route whose body carries files (see [`Self::post_upload`]).
    pub fn put_upload<H: Handler<T, AppState>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.router = self
            .router
            .route(path, put(h).layer(DefaultBodyLimit::disable()));
        self.entries.push(RouteEntry {
            method: "PUT",
            path,
        });
        self
    }

    /// A `HEAD` route.
    pub fn head<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, head(h));
        self.entries.push(RouteEntry {
            method: "HEAD",
            path,
        });
        self
    }

    /// A `PATCH` route whose body carries file bytes (see
    /// [`Self::post_upload`]).
    pub fn patch_upload<H: Handler<T, AppState>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.router = self
            .router
            .route(path, patch(h).layer(DefaultBodyLimit::disable()));
        self.entries.push(RouteEntry {
            method: "PATCH",
            path,
        });
        self
    }

    /// A `DELETE` route.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, h: H) -> Self {
        self.router = self.router.route(path, delete(h));
        self.entries.push(RouteEntry {
            method: "DELETE",
            path,
        });
        self
    }

    /// Adds another table's routes.
    pub fn merge(mut self, other: RouteTable) -> Self {
        self.router = self.router.merge(other.router);
        self.entries.extend(other.entries);
        self
    }

    /// The declared routes.
    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    /// The router.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Every route of the application.
pub fn all() -> RouteTable {
    RouteTable::default()
        .merge(system::routes())
        .merge(signin::routes())
        .merge(account::routes())
        .merge(home::routes())
        .merge(admin::routes())
        .merge(diary::routes())
        .merge(work::routes())
        .merge(api::routes())
        .merge(surge::routes())
        // Documents (issue 5).
        .merge(documents::routes())
        .merge(messages::routes())
        .merge(announcements::routes())
}
