//! The ZIP of a class's submissions for one assignment: a folder per pupil
//! (`NOM Prénom/`) with their files, their text (`texte.md`) and their
//! receipt (`reçu.txt`).
//!
//! Written with the `zip` crate into an unnamed temporary file, one blob
//! stream at a time (stored, not compressed: handed-in work is mostly PDFs
//! and photos, already compressed), so no submission is ever held whole in
//! memory; the caller then streams the file.

use ardoise_core::PersonId;
use ardoise_files::{BlobHash, FileStore};
use ardoise_store::SubmissionView;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::io::{Seek, Write};

/// Builds the archive; the returned file is positioned at its start.
pub async fn build(
    files: &FileStore,
    subs: &[SubmissionView],
    pupils: &HashMap<PersonId, String>,
) -> std::io::Result<tokio::fs::File> {
    let handle = tokio::runtime::Handle::current();
    let files = files.clone();
    let subs = subs.to_vec();
    let pupils = pupils.clone();
    let std_file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let tmp = tempfile::tempfile()?;
        let mut zip = zip::ZipWriter::new(tmp);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let mut folders = HashSet::new();
        for s in &subs {
            let base = pupils
                .get(&s.pupil_id)
                .cloned()
                .unwrap_or_else(|| format!("{}", s.pupil_id.0));
            let mut folder = clean(&base);
            if !folders.insert(folder.clone()) {
                folder = format!("{folder} ({})", s.pupil_id.0);
                folders.insert(folder.clone());
            }
            let mut names = HashSet::new();
            for f in &s.files {
                let mut name = clean(&f.file_name);
                if !names.insert(name.clone()) {
                    name = format!("{}-{name}", f.id);
                    names.insert(name.clone());
                }
                zip.start_file(format!("{folder}/{name}"), options)
                    .map_err(std::io::Error::other)?;
                let hash = BlobHash::parse(&f.blob_hash).map_err(std::io::Error::other)?;
                let body = handle
                    .block_on(files.get(&hash, None))
                    .map_err(std::io::Error::other)?;
                let mut stream = body.stream;
                while let Some(chunk) = handle.block_on(stream.next()) {
                    zip.write_all(&chunk?)?;
                }
            }
            if !s.text_html.is_empty() {
                zip.start_file(format!("{folder}/texte.html"), options)
                    .map_err(std::io::Error::other)?;
                zip.write_all(s.text_html.as_bytes())?;
            }
            zip.start_file(format!("{folder}/reçu.txt"), options)
                .map_err(std::io::Error::other)?;
            let when = chrono::DateTime::from_timestamp(s.submitted_at, 0)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default();
            write!(
                zip,
                "{base}\nrendu le / handed in: {when}{}\nversion: {}\noctets / bytes: {}\nSHA-256: {}\n",
                if s.late { " (en retard / late)" } else { "" },
                s.revision,
                s.total_size,
                s.receipt_hash
            )?;
            for f in &s.files {
                writeln!(zip, "{}  {}  {}", f.blob_hash, f.size, f.file_name)?;
            }
        }
        let mut file = zip.finish().map_err(std::io::Error::other)?;
        file.flush()?;
        file.rewind()?;
        Ok(file)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(tokio::fs::File::from_std(std_file))
}

/// A name safe as a ZIP path component.
fn clean(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let s = s.trim().trim_start_matches('.').to_string();
    if s.is_empty() {
        "_".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_cannot_escape_their_folder() {
        assert_eq!(super::clean("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(super::clean("a\\b"), "a_b");
        assert_eq!(super::clean(" "), "_");
    }
}
