//! The model's one error type. Adapters map it once: to an HTTP status plus RFC 4918
//! condition body in the WebDAV layer, to a reply code in the FTP layer.

use crate::path::DavPath;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("invalid path: {0}")]
    BadPath(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The parent collection of the target does not exist (or is not a collection).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something exists where the request needs nothing (MKCOL on a mapped URL,
    /// Overwrite: F on an existing destination...). Maps to 405 or 412 by context.
    #[error("already exists")]
    AlreadyExists,
    #[error("method not allowed on this resource: {0}")]
    NotAllowed(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A conditional header (If, If-Match, ...) did not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// GET/HEAD condition said "use your cached copy".
    #[error("not modified")]
    NotModified,
    /// The resource is locked and the request did not submit the lock's token.
    /// Carries the lock roots, for the `lock-token-submitted` condition body.
    #[error("locked")]
    Locked(Vec<DavPath>),
    /// A lock request conflicts with an existing lock.
    #[error("conflicting lock")]
    ConflictingLock(Vec<DavPath>),
    /// UNLOCK or refresh named a token that does not cover the resource.
    #[error("lock token does not match the request URI")]
    LockTokenMismatch,
    /// The PROPFIND would return more members than the configured cap.
    #[error("depth infinity would exceed {0} members")]
    InfiniteDepthTooLarge(u64),
    #[error("protected property")]
    ProtectedProperty,
    #[error("insufficient storage")]
    InsufficientStorage,
    #[error("body too large (limit {0} bytes)")]
    TooLarge(u64),
    #[error("range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    #[error("client aborted the transfer: {0}")]
    Aborted(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("storage error: {0}")]
    Blob(wharf_backends::Error),
    #[error("internal error: {0}")]
    Internal(String),
    /// Well-formed, but not something the server can act on: an archive that is damaged,
    /// not an archive, or over a limit.
    #[error("{0}")]
    Unprocessable(String),
}

impl From<wharf_backends::Error> for Error {
    fn from(e: wharf_backends::Error) -> Self {
        match e {
            wharf_backends::Error::TooLarge(n) => Error::TooLarge(n),
            wharf_backends::Error::Body(e) => Error::Aborted(e.to_string()),
            wharf_backends::Error::Missing => Error::NotFound,
            wharf_backends::Error::Exists => Error::AlreadyExists,
            wharf_backends::Error::NotADirectory => Error::Conflict("a parent is not a collection".into()),
            wharf_backends::Error::IsADirectory => Error::NotAllowed("the target is a collection".into()),
            wharf_backends::Error::Escapes => Error::Forbidden("outside the folder".into()),
            wharf_backends::Error::Special => Error::Forbidden("not a regular file".into()),
            wharf_backends::Error::ReadOnly => Error::Forbidden("the folder is read-only".into()),
            wharf_backends::Error::ArchiveReadOnly => Error::Forbidden(
                "an archive opened as a folder is read-only: its members can be read, not changed".into(),
            ),
            wharf_backends::Error::Archive(why) => Error::Unprocessable(why),
            wharf_backends::Error::Unsupported(what) => Error::NotAllowed(format!("{what} is not supported here")),
            wharf_backends::Error::NoSpace => Error::InsufficientStorage,
            wharf_backends::Error::Denied => Error::Forbidden("the host's permissions refuse it".into()),
            wharf_backends::Error::NotEmpty => Error::Conflict("the folder holds more than could be moved".into()),
            wharf_backends::Error::NameTooLong => Error::BadPath("name too long for this folder".into()),
            other => Error::Blob(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
