//! Who may use the client port: users and passwords from `--auth-file`,
//! checked by `AUTH` and `HELLO ... AUTH` as Redis checks its ACL users.
//!
//! The file holds one user per line, `NAME PASSWORD` (the password is the
//! rest of the line after the blanks that follow the name); blank lines
//! and lines starting with `#` are ignored. The user named `default` is
//! the one `AUTH password` (a password alone) authenticates as. Every user
//! may run every command: there are no per-command permissions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The reply to a wrong user or password (Redis's words).
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// The reply to a command before authentication.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// The reply to `HELLO` without `AUTH` before authentication.
pub const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
/// The reply to `AUTH` on a node without users.
pub const NO_PASSWORD_SET: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";

/// The user `AUTH password` names.
const DEFAULT_USER: &str = "default";

/// Users and their passwords.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Users {
    passwords: BTreeMap<String, Vec<u8>>,
}

impl Users {
    /// Parses an auth file's text (see the module documentation).
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut passwords = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, password) = line
                .split_once(char::is_whitespace)
                .map(|(name, rest)| (name, rest.trim_start()))
                .filter(|(_, password)| !password.is_empty())
                .ok_or_else(|| format!("line {}: expected NAME PASSWORD", number + 1))?;
            if passwords
                .insert(name.to_string(), password.as_bytes().to_vec())
                .is_some()
            {
                return Err(format!("line {}: user {name} is given twice", number + 1));
            }
        }
        if passwords.is_empty() {
            return Err("no users in it".into());
        }
        Ok(Users { passwords })
    }

    /// Whether `user` (the default user if `None`) has `password`.
    pub fn check(&self, user: Option<&[u8]>, password: &[u8]) -> bool {
        let user = user.unwrap_or(DEFAULT_USER.as_bytes());
        let known = std::str::from_utf8(user)
            .ok()
            .and_then(|user| self.passwords.get(user));
        // Compared in time that depends on the lengths only, so that a
        // client cannot find a password byte by byte from reply times.
        let expected = known.map_or(&[][..], Vec::as_slice);
        let same = expected.len() == password.len()
            && expected
                .iter()
                .zip(password)
                .fold(0u8, |differ, (a, b)| differ | (a ^ b))
                == 0;
        known.is_some() && same
    }
}

/// A node's client authentication: none, or the users of a file, which
/// [`reload`](Auth::reload) rereads.
#[derive(Debug, Default)]
pub struct Auth {
    file: Option<PathBuf>,
    users: Mutex<Option<Arc<Users>>>,
}

/// Why `AUTH` failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The node has no users: `AUTH` makes no sense.
    NoUsers,
    /// Wrong user or password.
    Wrong,
}

impl Refusal {
    /// The reply, without the leading `-`.
    pub fn reply(&self) -> &'static str {
        match self {
            Refusal::NoUsers => NO_PASSWORD_SET,
            Refusal::Wrong => WRONGPASS,
        }
    }
}

fn read(path: &Path) -> Result<Users, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the auth file {}: {error}", path.display()))?;
    Users::parse(&text).map_err(|error| format!("the auth file {}: {error}", path.display()))
}

impl Auth {
    /// No authentication: every client may use the port.
    pub fn open() -> Auth {
        Auth::default()
    }

    /// The users of the file at `path`.
    pub fn from_file(path: &Path) -> Result<Auth, String> {
        let users = read(path)?;
        Ok(Auth {
            file: Some(path.to_path_buf()),
            users: Mutex::new(Some(Arc::new(users))),
        })
    }

    /// Users in memory (tests).
    pub fn with_users(users: Users) -> Auth {
        Auth {
            file: None,
            users: Mutex::new(Some(Arc::new(users))),
        }
    }

    fn users(&self) -> Option<Arc<Users>> {
        self.users.lock().expect("auth users").clone()
    }

    /// Whether clients must authenticate.
    pub fn required(&self) -> bool {
        self.users().is_some()
    }

    /// Checks `AUTH [user] password`. A node without users takes any
    /// password for the default user named (as Redis's `nopass` default
    /// user does) but refuses a password alone, which can only be a
    /// mistake, and any other user.
    pub fn check(&self, user: Option<&[u8]>, password: &[u8]) -> Result<(), Refusal> {
        match self.users() {
            None if user == Some(DEFAULT_USER.as_bytes()) => Ok(()),
            None if user.is_none() => Err(Refusal::NoUsers),
            None => Err(Refusal::Wrong),
            Some(users) if users.check(user, password) => Ok(()),
            Some(_) => Err(Refusal::Wrong),
        }
    }

    /// Rereads the file; on an error the users in force stay. Without a
    /// file there is nothing to reread.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let users = read(path)?;
        *self.users.lock().expect("auth users") = Some(Arc::new(users));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_read_and_checked() {
        let users =
            Users::parse("# the operators\n\ndefault  s3cret\nalice correct horse battery\n")
                .unwrap();
        assert!(users.check(None, b"s3cret"));
        assert!(users.check(Some(b"default"), b"s3cret"));
        assert!(users.check(Some(b"alice"), b"correct horse battery"));
        assert!(!users.check(Some(b"alice"), b"s3cret"));
        assert!(!users.check(None, b"s3cre"));
        assert!(!users.check(None, b""));
        assert!(!users.check(Some(b"bob"), b""));
        assert!(!users.check(Some(b"\xff"), b"s3cret"));
        assert_eq!(
            Users::parse("alice\n").unwrap_err(),
            "line 1: expected NAME PASSWORD"
        );
        assert!(Users::parse("a x\na y\n").unwrap_err().contains("twice"));
        assert!(Users::parse("# nobody\n").is_err());
    }

    #[test]
    fn a_node_without_users_refuses_auth_and_a_reload_keeps_the_users_on_error() {
        assert_eq!(Auth::open().check(None, b"x"), Err(Refusal::NoUsers));
        assert_eq!(Auth::open().check(Some(b"default"), b"x"), Ok(()));
        assert_eq!(
            Auth::open().check(Some(b"alice"), b"x"),
            Err(Refusal::Wrong)
        );
        assert!(!Auth::open().required());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "default one\n").unwrap();
        let auth = Auth::from_file(&path).unwrap();
        assert!(auth.required());
        assert_eq!(auth.check(None, b"one"), Ok(()));
        std::fs::write(&path, "default two\n").unwrap();
        auth.reload().unwrap();
        assert_eq!(auth.check(None, b"one"), Err(Refusal::Wrong));
        assert_eq!(auth.check(None, b"two"), Ok(()));
        std::fs::write(&path, "garbage\n").unwrap();
        assert!(auth.reload().is_err());
        assert_eq!(auth.check(None, b"two"), Ok(()));
    }
}
