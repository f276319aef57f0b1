//! The `[documents]` settings: quotas and upload limits per role, and the
//! optional virus scanner. Each can also be set as
//! `ARDOISE_DOCUMENTS_<NAME IN CAPITALS>`.

use super::ConfigError;
use ardoise_core::documents::{RoleLimits, DEFAULT_QUOTAS, DEFAULT_UPLOAD_LIMITS};
use serde::{Deserialize, Serialize};

/// The `[documents]` table. Sizes are in MiB.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsSettings {
    /// Documents a pupil may keep, in MiB (a person with several roles
    /// gets the largest of their roles' quotas).
    pub quota_pupil_mib: u64,
    /// The same for a parent.
    pub quota_parent_mib: u64,
    /// The same for a teacher.
    pub quota_teacher_mib: u64,
    /// The same for staff.
    pub quota_staff_mib: u64,
    /// The same for an administrator.
    pub quota_admin_mib: u64,
    /// Largest document a pupil may upload, in MiB.
    pub upload_pupil_mib: u64,
    /// The same for a parent.
    pub upload_parent_mib: u64,
    /// The same for a teacher (at most the surge layer's request limit).
    pub upload_teacher_mib: u64,
    /// The same for staff.
    pub upload_staff_mib: u64,
    /// The same for an administrator.
    pub upload_admin_mib: u64,
    /// ClamAV's clamd: the path of its Unix socket, or `tcp://HOST:PORT`.
    /// Empty: no scanning. When set, every uploaded file (documents,
    /// attachments, hand-ins) is scanned before it is kept, and refused if
    /// clamd finds a virus or cannot be reached.
    pub clamd: String,
}

const MIB: u64 = 1 << 20;

impl Default for DocumentsSettings {
    fn default() -> Self {
        let q = DEFAULT_QUOTAS;
        let u = DEFAULT_UPLOAD_LIMITS;
        DocumentsSettings {
            quota_pupil_mib: q.pupil / MIB,
            quota_parent_mib: q.parent / MIB,
            quota_teacher_mib: q.teacher / MIB,
            quota_staff_mib: q.staff / MIB,
            quota_admin_mib: q.admin / MIB,
            upload_pupil_mib: u.pupil / MIB,
            upload_parent_mib: u.parent / MIB,
            upload_teacher_mib: u.teacher / MIB,
            upload_staff_mib: u.staff / MIB,
            upload_admin_mib: u.admin / MIB,
            clamd: String::new(),
        }
    }
}

/// The commented defaults of the `[documents]` table.
pub const DEFAULT_TOML: &str = r#"
# Documents: quotas and largest upload per role, in MiB (a person holding
# several roles gets the largest), and the optional virus scanner.
# Environment: ARDOISE_DOCUMENTS_<NAME> (ARDOISE_DOCUMENTS_QUOTA_PUPIL_MIB...).
[documents]
quota_pupil_mib = 200
quota_parent_mib = 50
quota_teacher_mib = 2048
quota_staff_mib = 2048
quota_admin_mib = 1024
upload_pupil_mib = 20
upload_parent_mib = 20
upload_teacher_mib = 100
upload_staff_mib = 100
upload_admin_mib = 100
# ClamAV's clamd: its Unix socket path, or tcp://HOST:PORT. Empty: no scan.
clamd = ""
"#;

impl DocumentsSettings {
    /// Applies one `ARDOISE_DOCUMENTS_*` variable.
    pub fn apply_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let Some(field) = name.strip_prefix("ARDOISE_DOCUMENTS_") else {
            return Ok(());
        };
        let num = |v: &str| -> Result<u64, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Env {
                name: name.into(),
                message: format!("'{v}' is not a number"),
            })
        };
        match field {
            "QUOTA_PUPIL_MIB" => self.quota_pupil_mib = num(value)?,
            "QUOTA_PARENT_MIB" => self.quota_parent_mib = num(value)?,
            "QUOTA_TEACHER_MIB" => self.quota_teacher_mib = num(value)?,
            "QUOTA_STAFF_MIB" => self.quota_staff_mib = num(value)?,
            "QUOTA_ADMIN_MIB" => self.quota_admin_mib = num(value)?,
            "UPLOAD_PUPIL_MIB" => self.upload_pupil_mib = num(value)?,
            "UPLOAD_PARENT_MIB" => self.upload_parent_mib = num(value)?,
            "UPLOAD_TEACHER_MIB" => self.upload_teacher_mib = num(value)?,
            "UPLOAD_STAFF_MIB" => self.upload_staff_mib = num(value)?,
            "UPLOAD_ADMIN_MIB" => self.upload_admin_mib = num(value)?,
            "CLAMD" => self.clamd = value.trim().to_string(),
            _ => {
                return Err(ConfigError::Env {
                    name: name.into(),
                    message: "unknown documents setting".into(),
                })
            }
        }
        Ok(())
    }

    /// The web layer's part.
    pub fn web(&self) -> ardoise_web::state::DocumentsConfig {
        let b = |mib: u64| mib.saturating_mul(MIB);
        ardoise_web::state::DocumentsConfig {
            quotas: RoleLimits {
                pupil: b(self.quota_pupil_mib),
                parent: b(self.quota_parent_mib),
                teacher: b(self.quota_teacher_mib),
                staff: b(self.quota_staff_mib),
                admin: b(self.quota_admin_mib),
            },
            upload_limits: RoleLimits {
                pupil: b(self.upload_pupil_mib),
                parent: b(self.upload_parent_mib),
                teacher: b(self.upload_teacher_mib),
                staff: b(self.upload_staff_mib),
                admin: b(self.upload_admin_mib),
            },
        }
    }

    /// The scanner's address, if one is set.
    pub fn clamd(&self) -> Option<ardoise_web::clamd::ClamdAddress> {
        Some(self.clamd.trim())
            .filter(|s| !s.is_empty())
            .map(|s| ardoise_web::clamd::ClamdAddress(s.to_string()))
    }
}
