//! The optional virus-scanning hook: ClamAV's daemon, `clamd`, over its
//! Unix socket or TCP, with the `INSTREAM` command. When configured, every
//! uploaded file is streamed to clamd after its bytes are durable and
//! before any row names them; an infected file is refused, and its blob,
//! which nothing references, is removed by the sweeper.
//!
//! Protocol (clamd(8)): send `zINSTREAM\0`, then chunks each preceded by
//! its length as a 4-byte big-endian integer, then a zero length; clamd
//! answers `stream: OK\0` or `stream: <signature> FOUND\0`. A scanner that
//! cannot be reached, or answers anything else, refuses the upload: a
//! school that turned scanning on does not want it skipped silently.

use ardoise_files::{BlobHash, FileStore};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where clamd listens: a path to its Unix socket, or `tcp://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamdAddress(pub String);

/// What clamd said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// A signature matched; its name.
    Infected(String),
}

/// Why a scan did not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// clamd could not be reached or broke the connection.
    #[error("clamd: {0}")]
    Io(#[from] std::io::Error),
    /// clamd answered something unexpected (an error, a size limit).
    #[error("clamd answered: {0}")]
    Answer(String),
    /// The blob could not be read back.
    #[error("blob store: {0}")]
    Files(#[from] ardoise_files::FilesError),
    /// clamd took too long.
    #[error("clamd timed out")]
    Timeout,
}

/// Largest chunk sent at once (clamd's StreamMaxLength applies in total).
const CHUNK: usize = 64 * 1024;

async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    files: &FileStore,
    hash: &BlobHash,
) -> Result<Verdict, ScanError> {
    conn.write_all(b"zINSTREAM\0").await?;
    let mut body = files.get(hash, None).await?.stream;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        for part in chunk.chunks(CHUNK) {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            conn.write_all(&len.to_be_bytes()).await?;
            conn.write_all(part).await?;
        }
    }
    conn.write_all(&0u32.to_be_bytes()).await?;
    conn.flush().await?;
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while answer.len() < 4096 {
        if conn.read(&mut byte).await? == 0 || byte[0] == 0 {
            break;
        }
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer).trim().to_string();
    parse_answer(&answer)
}

fn parse_answer(answer: &str) -> Result<Verdict, ScanError> {
    let rest = answer.strip_prefix("stream: ").unwrap_or(answer);
    if rest == "OK" {
        Ok(Verdict::Clean)
    } else if let Some(name) = rest.strip_suffix(" FOUND") {
        Ok(Verdict::Infected(name.to_string()))
    } else {
        Err(ScanError::Answer(answer.to_string()))
    }
}

/// Streams a stored blob to clamd and returns its verdict.
pub async fn scan(
    address: &ClamdAddress,
    files: &FileStore,
    hash: &BlobHash,
) -> Result<Verdict, ScanError> {
    let work = async {
        if let Some(tcp) = address.0.strip_prefix("tcp://") {
            let conn = tokio::net::TcpStream::connect(tcp).await?;
            instream(conn, files, hash).await
        } else {
            #[cfg(unix)]
            {
                let conn = tokio::net::UnixStream::connect(&address.0).await?;
                instream(conn, files, hash).await
            }
            #[cfg(not(unix))]
            {
                Err(ScanError::Answer("unix sockets need a unix system".into()))
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .map_err(|_| ScanError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_clamd_writes_them() {
        assert_eq!(parse_answer("stream: OK").ok(), Some(Verdict::Clean));
        assert_eq!(
            parse_answer("stream: Eicar-Test-Signature FOUND").ok(),
            Some(Verdict::Infected("Eicar-Test-Signature".into()))
        );
        assert!(parse_answer("INSTREAM size limit exceeded. ERROR").is_err());
    }
}
