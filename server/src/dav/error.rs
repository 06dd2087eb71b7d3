//! The one mapping from errors to HTTP: status codes and RFC 4918 condition bodies.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use dav_model::{DavPath, Error};

use super::uri::href;

/// Errors of the WebDAV layer: the model's, plus what only HTTP can get wrong.
#[derive(Debug)]
pub enum DavError {
    Model(Error),
    BadRequest(String),
    MethodNotAllowed,
    UnsupportedMediaType,
    PayloadTooLarge,
    /// The Destination names another server.
    BadGateway,
}

impl From<Error> for DavError {
    fn from(e: Error) -> Self {
        DavError::Model(e)
    }
}

impl From<crate::xml::XmlError> for DavError {
    fn from(e: crate::xml::XmlError) -> Self {
        DavError::BadRequest(format!("XML body: {e}"))
    }
}

impl DavError {
    pub fn into_response(self, method: &Method) -> Response<Body> {
        let (status, condition) = match self {
            DavError::Model(e) => model_status(e, method),
            DavError::BadRequest(msg) => {
                tracing::debug!(%msg, "bad request");
                (StatusCode::BAD_REQUEST, None)
            }
            DavError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, None),
            DavError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, None),
            DavError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, None),
            DavError::BadGateway => (StatusCode::BAD_GATEWAY, None),
        };
        let mut resp = match condition {
            Some(Detail::Xml(xml)) => {
                let mut r = Response::new(Body::from(xml));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
                r
            }
            Some(Detail::Text(text)) => {
                let mut r = Response::new(Body::from(format!("{text}\n")));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                r
            }
            None => Response::new(Body::empty()),
        };
        *resp.status_mut() = status;
        if status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(super::options::ALLOW));
        }
        resp
    }
}

/// RFC 4918 section 16 `DAV:error` body naming a precondition, optionally with hrefs.
fn condition(name: &str, hrefs: &[DavPath]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:");
    s.push_str(name);
    if hrefs.is_empty() {
        s.push_str("/></D:error>");
        return s;
    }
    s.push('>');
    for p in hrefs {
        s.push_str("<D:href>");
        s.push_str(&crate::dav::multistatus::escape(&href(p, false)));
        s.push_str("</D:href>");
    }
    s.push_str("</D:");
    s.push_str(name);
    s.push_str("></D:error>");
    s
}

/// The status a model error answers with, for a member of a multistatus.
pub fn member_status(e: Error, method: &Method) -> StatusCode {
    model_status(e, method).0
}

/// What an error response says besides its status: an RFC 4918 condition, or a sentence
/// for a person (why a write was refused, what is wrong with an archive).
enum Detail {
    Xml(String),
    Text(String),
}

fn model_status(e: Error, method: &Method) -> (StatusCode, Option<Detail>) {
    use StatusCode as S;
    match e {
        Error::NotFound => (S::NOT_FOUND, None),
        Error::BadPath(_) | Error::BadRequest(_) | Error::Aborted(_) => (S::BAD_REQUEST, None),
        Error::Conflict(_) => (S::CONFLICT, None),
        Error::AlreadyExists if method.as_str() == "MKCOL" => (S::METHOD_NOT_ALLOWED, None),
        Error::AlreadyExists => (S::PRECONDITION_FAILED, None),
        Error::NotAllowed(_) => (S::METHOD_NOT_ALLOWED, None),
        Error::Forbidden(why) => (S::FORBIDDEN, Some(Detail::Text(why))),
        Error::Unprocessable(why) => (S::UNPROCESSABLE_ENTITY, Some(Detail::Text(why))),
        Error::PreconditionFailed => (S::PRECONDITION_FAILED, None),
        Error::NotModified => (S::NOT_MODIFIED, None),
        Error::Locked(roots) => (S::LOCKED, Some(Detail::Xml(condition("lock-token-submitted", &roots)))),
        Error::ConflictingLock(roots) => (S::LOCKED, Some(Detail::Xml(condition("no-conflicting-lock", &roots)))),
        Error::LockTokenMismatch => (S::CONFLICT, Some(Detail::Xml(condition("lock-token-matches-request-uri", &[])))),
        Error::InfiniteDepthTooLarge(_) => (S::FORBIDDEN, Some(Detail::Xml(condition("propfind-finite-depth", &[])))),
        Error::ProtectedProperty => {
            (S::FORBIDDEN, Some(Detail::Xml(condition("cannot-modify-protected-property", &[]))))
        }
        Error::InsufficientStorage => (S::INSUFFICIENT_STORAGE, None),
        Error::TooLarge(_) => (S::PAYLOAD_TOO_LARGE, None),
        Error::RangeNotSatisfiable { .. } => (S::RANGE_NOT_SATISFIABLE, None),
        e @ (Error::Db(_) | Error::Migrate(_) | Error::Blob(_) | Error::Internal(_)) => {
            tracing::error!(error = %e, "internal error");
            (S::INTERNAL_SERVER_ERROR, None)
        }
    }
}
