//! The one mapping of model errors to FTP replies. libunftp turns each [`ErrorKind`] into its
//! reply code; the kind is chosen here so that, for instance, a WebDAV lock held by someone
//! else answers 450 (try later) and a missing right answers 550.

use unftp_core::storage::{Error as FtpError, ErrorKind};

pub fn reply(e: dav_model::Error) -> FtpError {
    use dav_model::Error as E;
    let kind = match &e {
        E::NotFound | E::Conflict(_) | E::AlreadyExists | E::NotAllowed(_) | E::RangeNotSatisfiable { .. } => {
            ErrorKind::PermanentFileNotAvailable
        }
        E::BadPath(_) | E::BadRequest(_) => ErrorKind::FileNameNotAllowedError,
        E::Unprocessable(_) => ErrorKind::PermanentFileNotAvailable,
        E::Forbidden(_) | E::ProtectedProperty => ErrorKind::PermissionDenied,
        E::Locked(_) | E::ConflictingLock(_) | E::PreconditionFailed | E::LockTokenMismatch => {
            ErrorKind::TransientFileNotAvailable
        }
        E::InsufficientStorage => ErrorKind::InsufficientStorageSpaceError,
        E::TooLarge(_) => ErrorKind::ExceededStorageAllocationError,
        E::Aborted(_) => ErrorKind::ConnectionClosed,
        E::NotModified | E::InfiniteDepthTooLarge(_) | E::Db(_) | E::Migrate(_) | E::Blob(_) | E::Internal(_) => {
            ErrorKind::LocalError
        }
    };
    if kind == ErrorKind::LocalError {
        tracing::error!(error = %e, "FTP request failed");
    }
    FtpError::new(kind, e)
}

/// An error of the FTP layer's own making (wrong kind of resource for the command, say).
pub fn kind(kind: ErrorKind, why: &str) -> FtpError {
    FtpError::new(kind, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dav_model::{DavPath, Error};

    #[test]
    fn lock_held_by_someone_else_is_transient() {
        let e = reply(Error::Locked(vec![DavPath::root()]));
        assert_eq!(e.kind(), ErrorKind::TransientFileNotAvailable);
    }

    #[test]
    fn missing_right_is_permission_denied() {
        assert_eq!(reply(Error::Forbidden("no w".into())).kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn full_quota_is_insufficient_storage() {
        assert_eq!(reply(Error::InsufficientStorage).kind(), ErrorKind::InsufficientStorageSpaceError);
    }
}
