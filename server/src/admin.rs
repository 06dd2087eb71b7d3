//! `wharf user ...` and `wharf share ...`: administering users and shares from the command
//! line, on the same data directory as `wharf serve` and while it runs. The repository is
//! opened with [`Repository::open_admin`], which leaves the running server's uploads and
//! blobs alone; the server picks changes up within a couple of seconds.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use dav_model::identity::{Rights, UserOptions};
use dav_model::{Error, Repository};

/// The data directory, as for `wharf serve`.
#[derive(Debug, Args)]
pub struct DataDir {
    /// Directory holding the database and the blobs.
    #[arg(long, env = "WHARF_DATA", default_value = "data", global = true)]
    data: PathBuf,
    /// The server's database, if it is PostgreSQL (`--database` of `wharf serve`).
    #[arg(long, env = "WHARF_DATABASE", global = true)]
    database: Option<String>,
}

/// Manage users.
#[derive(Debug, Args)]
pub struct UserCommand {
    #[command(flatten)]
    dir: DataDir,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Create a user and their home folder (the password is asked for twice).
    Add {
        name: String,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// Only read rights, at home and in every share.
        #[arg(long)]
        read_only: bool,
        /// Mark the user as an administrator.
        #[arg(long)]
        admin: bool,
        /// Also store the HTTP Digest secret, so the user can log in with Digest.
        #[arg(long)]
        digest: bool,
        /// Serve this folder of the host, in place, as the user's home.
        #[arg(long, value_name = "DIR")]
        home: Option<PathBuf>,
    },
    /// List users with their flags and shares.
    List,
    /// Change a user's password.
    Passwd {
        name: String,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// Also store the HTTP Digest secret (without it, any Digest secret is removed).
        #[arg(long)]
        digest: bool,
    },
    /// Delete a user, their grants, and their home folder with everything in it.
    Del { name: String },
    /// Change a user's flags.
    Set {
        name: String,
        #[arg(long, value_name = "true|false")]
        read_only: Option<bool>,
        #[arg(long, value_name = "true|false")]
        admin: Option<bool>,
        /// Serve this folder of the host as the user's home (`none`: their home in the store again).
        #[arg(long, value_name = "DIR|none")]
        home: Option<PathBuf>,
    },
}

/// Manage shares: folders under `/shares` that users are granted rights on.
#[derive(Debug, Args)]
pub struct ShareCommand {
    #[command(flatten)]
    dir: DataDir,
    #[command(subcommand)]
    action: ShareAction,
}

#[derive(Debug, Subcommand)]
enum ShareAction {
    /// Create a share and its folder, a share of a folder of the host (`--host DIR`), or of
    /// an archive file (`--archive FILE`).
    Add {
        name: String,
        /// Serve this existing folder of the host in place, instead of a folder in the store.
        #[arg(long, value_name = "DIR")]
        host: Option<PathBuf>,
        /// Serve this archive file of the host (zip, tar, tar.gz, tar.zst) as a read-only
        /// folder of its members.
        #[arg(long, value_name = "FILE", conflicts_with = "host")]
        archive: Option<PathBuf>,
        /// With --host: nobody may change anything in the folder, whatever their grant.
        #[arg(long, requires = "host")]
        read_only: bool,
        /// With --host: most bytes the folder's files may hold (507 beyond).
        #[arg(long, requires = "host", value_name = "N")]
        quota_bytes: Option<u64>,
    },
    /// Delete a share, its grants, and its folder with everything in it.
    Del { name: String },
    /// Give a user rights on a share: letters of r(ead) w(rite) d(elete) l(ock) a(dmin).
    Grant { share: String, user: String, rights: String },
    /// Take a share away from a user.
    Revoke { share: String, user: String },
    /// List shares with who may use them.
    List,
}

pub async fn user(cmd: UserCommand) -> Result<(), String> {
    // Ask for the password before touching the repository: a typo or Ctrl-C then changes nothing.
    let password = match &cmd.action {
        UserAction::Add { password_stdin, .. } | UserAction::Passwd { password_stdin, .. } => {
            Some(read_password(*password_stdin)?)
        }
        _ => None,
    };
    let repo = open(&cmd.dir).await?;
    let result = run_user(&repo, cmd.action, password.unwrap_or_default()).await;
    repo.close().await;
    result
}

async fn run_user(repo: &Repository, action: UserAction, password: String) -> Result<(), String> {
    match action {
        UserAction::Add { name, read_only, admin, digest, home, .. } => {
            if let Some(dir) = &home {
                // Refuse a bad folder before the user exists.
                let home = dav_model::identity::home_of(&name).map_err(message)?;
                repo.host_folder(dir, &home).await.map_err(message)?;
            }
            let opts = UserOptions { read_only, admin, digest };
            repo.add_user(&name, &password, opts).await.map_err(|e| match e {
                Error::AlreadyExists => format!("user {name} already exists"),
                e => user_error(&name, e),
            })?;
            match home {
                Some(dir) => {
                    repo.set_home_folder(&name, Some(&dir)).await.map_err(|e| user_error(&name, e))?;
                    println!("user {name} created, home {}", dir.display());
                }
                None => println!("user {name} created, home /home/{name}"),
            }
        }
        UserAction::List => print_users(repo).await?,
        UserAction::Passwd { name, digest, .. } => {
            repo.set_password(&name, &password, digest).await.map_err(|e| user_error(&name, e))?;
            println!("password of {name} changed");
        }
        UserAction::Del { name } => {
            repo.delete_user(&name).await.map_err(|e| user_error(&name, e))?;
            println!("user {name} deleted, with their home");
        }
        UserAction::Set { name, read_only, admin, home } => {
            if read_only.is_none() && admin.is_none() && home.is_none() {
                return Err("nothing to change: give --read-only, --admin (true or false) or --home".into());
            }
            if let Some(dir) = home {
                let dir = (dir.as_os_str() != "none").then_some(dir);
                repo.set_home_folder(&name, dir.as_deref()).await.map_err(|e| user_error(&name, e))?;
                match dir {
                    Some(d) => println!("user {name}: home {}", d.display()),
                    None => println!("user {name}: home /home/{name} in the store"),
                }
            }
            if read_only.is_some() || admin.is_some() {
                let u = repo.set_user_flags(&name, read_only, admin).await.map_err(|e| user_error(&name, e))?;
                println!("user {name}: {}", flags(u.read_only, u.admin, u.digest));
            }
        }
    }
    Ok(())
}

pub async fn share(cmd: ShareCommand) -> Result<(), String> {
    let repo = open(&cmd.dir).await?;
    let result = run_share(&repo, cmd.action).await;
    repo.close().await;
    result
}

async fn run_share(repo: &Repository, action: ShareAction) -> Result<(), String> {
    match action {
        ShareAction::Add { name, archive: Some(file), .. } => {
            repo.add_archive_share(&name, &file).await.map_err(|e| share_error(&name, e))?;
            println!("share {name} created, serving the archive {} (read-only)", file.display());
        }
        ShareAction::Add { name, host: None, .. } => {
            repo.add_share(&name).await.map_err(|e| share_error(&name, e))?;
            println!("share {name} created, folder /shares/{name}");
        }
        ShareAction::Add { name, host: Some(dir), read_only, quota_bytes, .. } => {
            repo.add_host_share(&name, &dir, read_only, quota_bytes).await.map_err(|e| share_error(&name, e))?;
            let ro = if read_only { " (read-only)" } else { "" };
            println!("share {name} created, serving {}{ro}", dir.display());
        }
        ShareAction::Del { name } => {
            let host =
                repo.list_shares().await.map_err(message)?.into_iter().any(|s| s.name == name && s.mount.is_some());
            repo.delete_share(&name).await.map_err(|e| share_error(&name, e))?;
            if host {
                println!("share {name} deleted; what it served on the host was left as it is");
            } else {
                println!("share {name} deleted, with its folder");
            }
        }
        ShareAction::Grant { share, user, rights } => {
            let parsed = Rights::parse(&rights).map_err(message)?;
            if let Err(e) = repo.grant(&share, &user, parsed).await {
                return Err(grant_error(repo, &share, &user, e, "not found").await);
            }
            println!("{user} may use share {share} with rights {parsed}");
        }
        ShareAction::Revoke { share, user } => {
            if let Err(e) = repo.revoke(&share, &user).await {
                let none = format!("{user} has no grant on share {share}");
                return Err(grant_error(repo, &share, &user, e, &none).await);
            }
            println!("share {share} revoked from {user}");
        }
        ShareAction::List => print_shares(repo).await?,
    }
    Ok(())
}

async fn open(dir: &DataDir) -> Result<Repository, String> {
    let database = crate::config::parse_database(dir.database.clone())?;
    Repository::open_admin(&dir.data, database.as_deref())
        .await
        .map_err(|e| format!("cannot open the repository in {}: {e}", dir.data.display()))
}

/// The password from stdin's first line (`--password-stdin`), or typed twice at the
/// terminal without echo. Refuses to guess when stdin is neither.
fn read_password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        let password = line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line);
        return Ok(password.to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err("standard input is not a terminal: pass --password-stdin to read the password from it".into());
    }
    let first = rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))?;
    let again = rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?;
    if first != again {
        return Err("the passwords differ; nothing changed".into());
    }
    Ok(first)
}

async fn print_users(repo: &Repository) -> Result<(), String> {
    let users = repo.list_users().await.map_err(message)?;
    let shares = repo.list_shares().await.map_err(message)?;
    let mut rows = vec![["NAME".to_owned(), "FLAGS".to_owned(), "SHARES".to_owned()]];
    for u in users {
        let granted: Vec<String> = shares
            .iter()
            .flat_map(|s| {
                s.grants.iter().filter(|(who, _)| *who == u.name).map(move |(_, r)| format!("{}:{r}", s.name))
            })
            .collect();
        let granted = if granted.is_empty() { "-".to_owned() } else { granted.join(", ") };
        rows.push([u.name, flags(u.read_only, u.admin, u.digest), granted]);
    }
    print_table(&rows);
    Ok(())
}

async fn print_shares(repo: &Repository) -> Result<(), String> {
    let mut rows = vec![["SHARE".to_owned(), "FOLDER".to_owned(), "GRANTS".to_owned()]];
    for s in repo.list_shares().await.map_err(message)? {
        let grants: Vec<String> = s.grants.iter().map(|(user, r)| format!("{user}:{r}")).collect();
        let folder = match &s.mount {
            Some(m) => {
                let ro = match (m.kind.as_str(), m.read_only) {
                    ("archive", _) => ", archive, read-only",
                    (_, true) => ", read-only",
                    _ => "",
                };
                let cap = m.quota_bytes.map(|q| format!(", at most {q} bytes")).unwrap_or_default();
                let notes = format!("{ro}{cap}");
                match notes.strip_prefix(", ") {
                    Some(n) => format!("{} ({n})", m.source),
                    None => m.source.clone(),
                }
            }
            None => "(store)".to_owned(),
        };
        rows.push([s.name, folder, if grants.is_empty() { "-".to_owned() } else { grants.join(", ") }]);
    }
    print_table(&rows);
    Ok(())
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < N {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        println!("{}", line.trim_end());
    }
}

fn flags(read_only: bool, admin: bool, digest: bool) -> String {
    let set: Vec<&str> = [(admin, "admin"), (read_only, "read-only"), (digest, "digest")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    if set.is_empty() {
        "-".to_owned()
    } else {
        set.join(",")
    }
}

fn message(e: Error) -> String {
    match e {
        Error::BadRequest(m) | Error::Conflict(m) => m,
        e => e.to_string(),
    }
}

fn user_error(name: &str, e: Error) -> String {
    match e {
        Error::NotFound => format!("no user named {name}"),
        e => message(e),
    }
}

fn share_error(name: &str, e: Error) -> String {
    match e {
        Error::NotFound => format!("no share named {name}"),
        Error::AlreadyExists => format!("share {name} already exists"),
        e => message(e),
    }
}

/// Says which of `share` and `user` is missing when a grant or revoke found nothing
/// (`otherwise` when both exist).
async fn grant_error(repo: &Repository, share: &str, user: &str, e: Error, otherwise: &str) -> String {
    if !matches!(e, Error::NotFound) {
        return message(e);
    }
    let shares = repo.list_shares().await.unwrap_or_default();
    let users = repo.list_users().await.unwrap_or_default();
    if !shares.iter().any(|s| s.name == share) {
        format!("no share named {share}")
    } else if !users.iter().any(|u| u.name == user) {
        format!("no user named {user}")
    } else {
        otherwise.to_owned()
    }
}
