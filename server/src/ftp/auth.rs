//! FTP logins through the same [`dav_model::identity::Authenticator`] WebDAV uses: the same
//! users, passwords, and brute-force guard (back-off, then lockout per user and per address).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use dav_model::identity::{Authenticator, LoginOutcome, Principal};
use dav_model::Repository;
use unftp_core::auth::{
    AuthenticationError, Authenticator as FtpAuthenticator, Credentials, Principal as FtpPrincipal, UserDetail,
    UserDetailError, UserDetailProvider,
};

/// The names FTP clients send for an anonymous login (RFC 1635).
const ANONYMOUS_NAMES: [&str; 2] = ["anonymous", "ftp"];

/// A logged-in FTP user: the model principal every storage call acts as.
#[derive(Debug)]
pub struct FtpUser {
    pub principal: Principal,
}

impl UserDetail for FtpUser {}

impl fmt::Display for FtpUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.principal.user.as_deref().unwrap_or("anonymous"))
    }
}

/// Both of libunftp's login hooks: the password check, then the user's details.
pub struct Logins {
    pub auth: Arc<Authenticator>,
    pub repo: Arc<Repository>,
    /// Whether `anonymous`/`ftp` may log in (the server's `--anonymous` setting).
    pub anonymous: bool,
}

impl fmt::Debug for Logins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logins").field("anonymous", &self.anonymous).finish()
    }
}

impl Logins {
    fn is_anonymous(&self, name: &str) -> bool {
        self.anonymous && ANONYMOUS_NAMES.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

#[async_trait]
impl FtpAuthenticator for Logins {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<FtpPrincipal, AuthenticationError> {
        if self.is_anonymous(username) {
            return Ok(FtpPrincipal { username: ANONYMOUS_NAMES[0].to_owned() });
        }
        let password = creds.password.as_deref().unwrap_or_default();
        match self.auth.login(username, password, creds.source_ip).await {
            LoginOutcome::Ok(_) => Ok(FtpPrincipal { username: username.to_owned() }),
            LoginOutcome::Rejected { delay } => {
                tokio::time::sleep(delay).await;
                Err(AuthenticationError::BadPassword)
            }
            LoginOutcome::LockedOut { retry_after } => Err(AuthenticationError::new(format!(
                "too many failed logins; try again in {} s",
                retry_after.as_secs().max(1)
            ))),
        }
    }

    fn name(&self) -> &str {
        "wharf"
    }
}

#[async_trait]
impl UserDetailProvider for Logins {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &FtpPrincipal) -> Result<FtpUser, UserDetailError> {
        if self.is_anonymous(&principal.username) {
            return Ok(FtpUser { principal: self.auth.anonymous() });
        }
        match self.repo.principal_for(&principal.username).await {
            Ok(principal) => Ok(FtpUser { principal }),
            Err(e) => Err(UserDetailError::with_source("cannot load the user", e)),
        }
    }
}
