//! Settings: defaults, then `ardoise.toml`, then `ARDOISE_*` environment
//! variables, then command-line flags. `ardoise config print-default`
//! prints the commented defaults. Every path derives from `data_dir`.

pub mod surge;
// Documents (issue 5).
pub mod documents;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every setting of `ardoise serve`.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: String,
    /// Folder where Ardoise keeps its SQLite database, files and the demo
    /// accounts file.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://HOST/DATABASE`. Empty
    /// means SQLite at `DATA_DIR/ardoise.db`, created if missing.
    pub database_url: String,
    /// Most database connections this node opens.
    pub database_max_connections: u32,
    /// Mark cookies Secure: set when Ardoise is reached over HTTPS.
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes (forms and JSON).
    pub max_body_bytes: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Password hashes computed at once (each ~15 ms of one core); the rest
    /// of the cores stay free for signed-in users.
    pub signin_permits: usize,
    /// Days an activation code stays valid.
    pub activation_days: i64,
    /// Log filter, as in `RUST_LOG` (`info`, `ardoise=debug`…).
    pub log: String,
    /// Largest uploaded file, in bytes.
    pub max_upload_bytes: u64,
    /// Most files in one form.
    pub max_files_per_form: usize,
    /// Where file bytes go: `local` (a folder) or `s3` (an S3-compatible
    /// object store).
    pub files_backend: String,
    /// For `local`: the folder; empty means `DATA_DIR/files`.
    pub files_dir: PathBuf,
    /// For `s3`: endpoint URL (empty: AWS), bucket, region, credentials.
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    /// For `s3`: allow a plain-HTTP endpoint (a local server).
    pub s3_allow_http: bool,
    /// The surge layer (`[surge]`): admission, lobby, overload, connections.
    pub surge: surge::SurgeSettings,
    /// Documents (`[documents]`): quotas, upload limits, virus scanner.
    pub documents: documents::DocumentsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            database_max_connections: 16,
            secure_cookies: false,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            signin_permits: 1,
            activation_days: 90,
            log: "info".into(),
            max_upload_bytes: 20 * 1024 * 1024,
            max_files_per_form: 10,
            files_backend: "local".into(),
            files_dir: PathBuf::new(),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
            surge: surge::SurgeSettings::default(),
            documents: documents::DocumentsSettings::default(),
        }
    }
}

/// Database URLs may hold a password: never print them whole.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("secure_cookies", &self.secure_cookies)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("signin_permits", &self.signin_permits)
            .field("activation_days", &self.activation_days)
            .field("log", &self.log)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_files_per_form", &self.max_files_per_form)
            .field("files_backend", &self.files_backend)
            .field("files_dir", &self.files_dir)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &"****")
            .field("s3_allow_http", &self.s3_allow_http)
            .field("surge", &self.surge)
            .field("documents", &self.documents)
            .finish()
    }
}

/// The commented default configuration.
pub const DEFAULT_TOML: &str = r#"# Ardoise configuration. Every setting can also be given as an environment
# variable ARDOISE_<NAME IN CAPITALS> (ARDOISE_LISTEN, ARDOISE_DATABASE_URL...),
# which wins over this file; command-line flags win over both.

# Address and port to listen on.
listen = "127.0.0.1:8080"

# Folder where Ardoise keeps its SQLite database, files and demo-accounts.csv.
data_dir = "data"

# Database URL: sqlite://PATH or postgres://HOST/DATABASE.
# Empty: SQLite at DATA_DIR/ardoise.db, created if missing.
database_url = ""

# Most database connections this node opens.
database_max_connections = 16

# Mark cookies Secure: set to true when Ardoise is reached over HTTPS.
secure_cookies = false

# Largest request body accepted, in bytes (forms and JSON).
max_body_bytes = 65536

# Longest a request may take, in seconds.
request_timeout_secs = 30

# Password hashes computed at once (each costs ~15 ms of one core).
signin_permits = 1

# Days an activation code stays valid.
activation_days = 90

# Log filter, as in RUST_LOG.
log = "info"

# Largest uploaded file (attachments, hand-ins), in bytes, and most files
# in one form.
max_upload_bytes = 20971520
max_files_per_form = 10

# Where file bytes go: "local" (a folder) or "s3" (an S3-compatible store).
files_backend = "local"
# For "local": the folder. Empty: DATA_DIR/files.
files_dir = ""
# For "s3": endpoint (empty: AWS), bucket, region and credentials;
# s3_allow_http for a plain-HTTP endpoint such as a local server.
s3_endpoint = ""
s3_bucket = ""
s3_region = "us-east-1"
s3_access_key_id = ""
s3_secret_access_key = ""
s3_allow_http = false
"#;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
}

impl Settings {
    /// Loads settings: defaults, the file (`path`, or `./ardoise.toml` if it
    /// exists), then the environment.
    pub fn load(
        path: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let default_path = Path::new("ardoise.toml");
        let file = match path {
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        let mut s = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: p.display().to_string(),
                    source,
                })?
            }
            None => Settings::default(),
        };
        s.apply_env(env)?;
        Ok(s)
    }

    fn apply_env(
        &mut self,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Env {
                name: name.into(),
                message: format!("'{v}' is not a number"),
            })
        }
        fn boolean(name: &str, v: &str) -> Result<bool, ConfigError> {
            match v.trim() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" | "" => Ok(false),
                _ => Err(ConfigError::Env {
                    name: name.into(),
                    message: format!("'{v}' is not true or false"),
                }),
            }
        }
        for (name, v) in env {
            match name.as_str() {
                "ARDOISE_LISTEN" => self.listen = v,
                "ARDOISE_DATA_DIR" => self.data_dir = PathBuf::from(v),
                "ARDOISE_DATABASE_URL" => self.database_url = v,
                "ARDOISE_DATABASE_MAX_CONNECTIONS" => {
                    self.database_max_connections = num(&name, &v)?
                }
                "ARDOISE_SECURE_COOKIES" => self.secure_cookies = boolean(&name, &v)?,
                "ARDOISE_S3_ALLOW_HTTP" => self.s3_allow_http = boolean(&name, &v)?,
                "ARDOISE_MAX_UPLOAD_BYTES" => self.max_upload_bytes = num(&name, &v)?,
                "ARDOISE_MAX_FILES_PER_FORM" => self.max_files_per_form = num(&name, &v)?,
                "ARDOISE_FILES_BACKEND" => self.files_backend = v,
                "ARDOISE_FILES_DIR" => self.files_dir = PathBuf::from(v),
                "ARDOISE_S3_ENDPOINT" => self.s3_endpoint = v,
                "ARDOISE_S3_BUCKET" => self.s3_bucket = v,
                "ARDOISE_S3_REGION" => self.s3_region = v,
                "ARDOISE_S3_ACCESS_KEY_ID" => self.s3_access_key_id = v,
                "ARDOISE_S3_SECRET_ACCESS_KEY" => self.s3_secret_access_key = v,
                "ARDOISE_MAX_BODY_BYTES" => self.max_body_bytes = num(&name, &v)?,
                "ARDOISE_REQUEST_TIMEOUT_SECS" => self.request_timeout_secs = num(&name, &v)?,
                "ARDOISE_SIGNIN_PERMITS" => self.signin_permits = num(&name, &v)?,
                "ARDOISE_ACTIVATION_DAYS" => self.activation_days = num(&name, &v)?,
                "ARDOISE_LOG" => self.log = v,
                n if n.starts_with("ARDOISE_SURGE_") => self.surge.apply_env(n, &v)?,
                n if n.starts_with("ARDOISE_DOCUMENTS_") => self.documents.apply_env(n, &v)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The database URL in use, and whether a missing SQLite file may be
    /// created (only for the default location).
    pub fn database(&self) -> (String, bool) {
        if self.database_url.trim().is_empty() {
            (
                format!("sqlite://{}", self.data_dir.join("ardoise.db").display()),
                true,
            )
        } else {
            (self.database_url.trim().to_string(), false)
        }
    }

    /// Where the demo writes every demo account.
    pub fn demo_accounts_path(&self) -> PathBuf {
        self.data_dir.join("demo-accounts.csv")
    }

    /// The web layer's part.
    pub fn web(&self) -> ardoise_web::WebConfig {
        ardoise_web::WebConfig {
            secure_cookies: self.secure_cookies,
            max_body_bytes: self.max_body_bytes,
            request_timeout_secs: self.request_timeout_secs,
            signin_permits: self.signin_permits,
            activation_days: self.activation_days,
            max_upload_bytes: self.max_upload_bytes,
            max_files_per_form: self.max_files_per_form.max(1),
            surge: self.surge.web(),
            documents: self.documents.web(),
            clamd: self.documents.clamd(),
            partial_uploads_dir: Some(self.data_dir.join("partial-uploads")),
        }
    }

    /// The blob store's part.
    pub fn files(&self) -> Result<ardoise_files::FilesConfig, ConfigError> {
        match self.files_backend.trim() {
            "local" | "" => Ok(ardoise_files::FilesConfig::Local {
                root: if self.files_dir.as_os_str().is_empty() {
                    self.data_dir.join("files")
                } else {
                    self.files_dir.clone()
                },
            }),
            "s3" => {
                if self.s3_bucket.trim().is_empty() {
                    return Err(ConfigError::Env {
                        name: "s3_bucket".into(),
                        message: "files_backend = \"s3\" needs a bucket".into(),
                    });
                }
                Ok(ardoise_files::FilesConfig::S3 {
                    endpoint: Some(self.s3_endpoint.trim().to_string()).filter(|e| !e.is_empty()),
                    bucket: self.s3_bucket.trim().to_string(),
                    region: self.s3_region.trim().to_string(),
                    access_key_id: self.s3_access_key_id.clone(),
                    secret_access_key: self.s3_secret_access_key.clone(),
                    allow_http: self.s3_allow_http,
                    prefix: None,
                })
            }
            other => Err(ConfigError::Env {
                name: "files_backend".into(),
                message: format!("'{other}' is neither \"local\" nor \"s3\""),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_defaults_are_the_defaults() {
        let parsed: Result<Settings, _> = toml::from_str(DEFAULT_TOML);
        assert_eq!(parsed.ok(), Some(Settings::default()));
    }

    #[test]
    fn the_printed_surge_defaults_are_the_defaults() {
        let text = format!("{DEFAULT_TOML}{}", surge::DEFAULT_TOML);
        let parsed: Result<Settings, _> = toml::from_str(&text);
        assert_eq!(parsed.ok(), Some(Settings::default()));
    }

    #[test]
    fn the_printed_documents_defaults_are_the_defaults() {
        let text = format!(
            "{DEFAULT_TOML}{}{}",
            surge::DEFAULT_TOML,
            documents::DEFAULT_TOML
        );
        let parsed: Result<Settings, _> = toml::from_str(&text);
        assert_eq!(parsed.ok(), Some(Settings::default()));
        let env = vec![(
            "ARDOISE_DOCUMENTS_QUOTA_PUPIL_MIB".to_string(),
            "5".to_string(),
        )];
        let s = Settings::load(None, env.into_iter()).ok();
        assert_eq!(s.map(|s| s.documents.web().quotas.pupil), Some(5 << 20));
    }

    #[test]
    fn environment_overrides_and_bad_values_are_reported() {
        let env = vec![
            ("ARDOISE_LISTEN".to_string(), "0.0.0.0:9000".to_string()),
            ("HOME".into(), "/root".into()),
        ];
        let s = Settings::load(None, env.into_iter()).ok();
        assert_eq!(s.map(|s| s.listen), Some("0.0.0.0:9000".to_string()));
        let bad = vec![("ARDOISE_SIGNIN_PERMITS".to_string(), "many".to_string())];
        assert!(matches!(
            Settings::load(None, bad.into_iter()),
            Err(ConfigError::Env { .. })
        ));
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let parsed: Result<Settings, _> = toml::from_str("listne = \"x\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn database_passwords_are_redacted() {
        let s = Settings {
            database_url: "postgres://u:hunter2@db/x".into(),
            s3_secret_access_key: "s3cr3t-key".into(),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cr3t-key") && shown.contains("****"),
            "{shown}"
        );
    }

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let (url, create) = Settings::default().database();
        assert_eq!(url, "sqlite://data/ardoise.db");
        assert!(create);
        let s = Settings {
            database_url: "sqlite://elsewhere.db".into(),
            ..Settings::default()
        };
        assert_eq!(s.database(), ("sqlite://elsewhere.db".to_string(), false));
    }
}
