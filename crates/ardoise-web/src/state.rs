//! The application state handed to every handler: the store, this node's
//! session table, the clock, the catalogues and the settings. Settings
//! travel here, never in a global.

use crate::auth::Passwords;
use crate::i18n::Catalogs;
use crate::session::SessionTable;
use ardoise_core::{throttle, Clock};
use ardoise_store::Store;
use std::ops::Deref;
use std::sync::Arc;

/// Web settings (the binary fills them from `Settings`).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` (when served over TLS, directly or at the edge).
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take before a 408, in seconds.
    pub request_timeout_secs: u64,
    /// Password hashes computed at once (each costs ~15 ms of one core).
    pub signin_permits: usize,
    /// Days an activation code stays valid.
    pub activation_days: i64,
    /// Largest uploaded file, in bytes.
    pub max_upload_bytes: u64,
    /// Most files in one form.
    pub max_files_per_form: usize,
    /// The surge layer: admission, lobby, overload control, connections.
    pub surge: crate::surge::SurgeConfig,
    /// Documents: quotas and upload limits per role.
    pub documents: DocumentsConfig,
    /// When set, every uploaded file is scanned by clamd before it is kept.
    pub clamd: Option<crate::clamd::ClamdAddress>,
    /// Where uploads sent in pieces wait for their last byte (this node's
    /// disk). `None`: a new folder under the system's temporary folder.
    pub partial_uploads_dir: Option<std::path::PathBuf>,
}

/// Settings of the document space.
#[derive(Debug, Clone)]
pub struct DocumentsConfig {
    /// Bytes of documents each role may own (the largest role wins).
    pub quotas: ardoise_core::documents::RoleLimits,
    /// Largest document each role may upload.
    pub upload_limits: ardoise_core::documents::RoleLimits,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            quotas: ardoise_core::documents::DEFAULT_QUOTAS,
            upload_limits: ardoise_core::documents::DEFAULT_UPLOAD_LIMITS,
        }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            signin_permits: 1,
            activation_days: 90,
            max_upload_bytes: 20 * 1024 * 1024,
            max_files_per_form: 10,
            surge: crate::surge::SurgeConfig::default(),
            documents: DocumentsConfig::default(),
            clamd: None,
            partial_uploads_dir: None,
        }
    }
}

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What the state holds.
pub struct Inner {
    /// The database.
    pub store: Store,
    /// This node's live sessions.
    pub sessions: SessionTable,
    /// Per-class diaries and pupils' ticks, kept in memory.
    pub diary: crate::diary_cache::DiaryCache,
    /// What home pages share (names, classes, announcements), in memory.
    pub home: crate::home_cache::HomeCache,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// French and English messages.
    pub catalogs: Arc<Catalogs>,
    /// Password hashing, with its own bulkhead.
    pub passwords: Passwords,
    /// Settings.
    pub config: WebConfig,
    /// Failed sign-in throttling.
    pub throttle: throttle::Policy,
    /// File bytes: attachments, submissions, documents.
    pub files: ardoise_files::FileStore,
    /// Prometheus exposition.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Admission, the lobby and overload control.
    pub surge: crate::surge::Surge,
    /// Uploads sent in pieces, not finished yet.
    pub partials: crate::partial::Partials,
    /// Who may download which document, as last decided.
    pub read_cache: crate::read_cache::ReadCache,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Store,
        files: ardoise_files::FileStore,
        clock: Arc<dyn Clock>,
        config: WebConfig,
    ) -> Result<AppState, String> {
        let catalogs = Catalogs::load()?;
        // With the surge layer on, at most as many sign-ins wait for a
        // hash per lane as its sign-in bulkhead allows (see `surge`).
        let max_waiting = if config.surge.enabled {
            config.surge.hash_queue_limit(config.signin_permits)
        } else {
            usize::MAX
        };
        let passwords =
            Passwords::new(config.signin_permits, max_waiting).map_err(|e| e.to_string())?;
        let surge = crate::surge::Surge::new(&config, clock.as_ref(), &catalogs)?;
        let partials = crate::partial::Partials::new(
            config.partial_uploads_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "ardoise-partial-{:016x}",
                    rand::Rng::gen::<u64>(&mut rand::thread_rng())
                ))
            }),
        );
        Ok(AppState(Arc::new(Inner {
            store,
            sessions: SessionTable::default(),
            diary: crate::diary_cache::DiaryCache::default(),
            home: crate::home_cache::HomeCache::default(),
            clock,
            catalogs,
            passwords,
            config,
            throttle: throttle::Policy::default(),
            files,
            metrics: crate::metrics::handle(),
            surge,
            partials,
            read_cache: crate::read_cache::ReadCache::default(),
        })))
    }

    /// The current time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
