//! One demo platform's data: accounts, sessions, pending logins, shows and imports. Plain data with lookups;
//! the pages that change it are in [`super::accounts`], [`super::main_site`] and [`super::sub_site`].

use std::collections::{HashMap, HashSet};

use super::accounts::token;

/// One account.
#[derive(Debug, Clone)]
pub struct User {
    /// Address (as typed; compared case-insensitively).
    pub email: String,
    /// Username.
    pub username: String,
    /// Password (plain: it is a demo).
    pub password: String,
    /// Email verified (main: code entered; sub: link opened).
    pub verified: bool,
    /// The main site's mailed code, or the sub-site's confirmation token.
    pub code: String,
    /// Last TOTP step accepted (a code is accepted once).
    pub last_totp_step: Option<u64>,
}

/// A show on a platform: created (main) or imported (sub).
#[derive(Debug, Clone)]
pub struct Show {
    /// Short id.
    pub id: String,
    /// Owner's email.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub about: String,
    /// Cover bytes and content type (main).
    pub cover: Option<(Vec<u8>, String)>,
    /// Feed enabled (main).
    pub rss_enabled: bool,
    /// Feed URL it was imported from (sub).
    pub imported_from: Option<String>,
}

/// An import waiting for its ownership code (sub).
#[derive(Debug, Clone)]
pub struct Import {
    /// The importing account's email.
    pub user: String,
    /// Feed URL.
    pub rss_url: String,
    /// Title from the feed.
    pub title: String,
    /// Description from the feed.
    pub about: String,
    /// `itunes:owner/itunes:email` of the feed, where the code was mailed.
    pub owner_email: String,
    /// The mailed code.
    pub code: String,
    /// The show, once confirmed.
    pub show_id: Option<String>,
}

/// One platform's data.
#[derive(Debug, Default)]
pub struct SiteData {
    /// Accounts.
    pub users: Vec<User>,
    /// Session token → email.
    pub sessions: HashMap<String, String>,
    /// Password-checked logins waiting for their TOTP code: token → email.
    pub pending: HashMap<String, String>,
    /// Shows.
    pub shows: Vec<Show>,
    /// Imports by id.
    pub imports: HashMap<String, Import>,
    /// Usernames taken by accounts outside the demo (lowercase; a studio site refuses them).
    pub reserved: HashSet<String>,
}

impl SiteData {
    /// The account with this email or username (case-insensitive).
    pub fn user(&self, login: &str) -> Option<&User> {
        let login = login.trim();
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(login) || u.username.eq_ignore_ascii_case(login))
    }

    /// Mutable [`Self::user`].
    pub fn user_mut(&mut self, login: &str) -> Option<&mut User> {
        let login = login.trim();
        self.users
            .iter_mut()
            .find(|u| u.email.eq_ignore_ascii_case(login) || u.username.eq_ignore_ascii_case(login))
    }

    /// Whether `login`/`password` open an account (verified or not): the check behind the admin login check.
    pub fn password_ok(&self, login: &str, password: &str) -> Option<&User> {
        self.user(login).filter(|u| u.password == password)
    }

    /// Whether an account or a reservation holds this username (case-insensitive).
    pub fn username_taken(&self, username: &str) -> bool {
        self.reserved.contains(&username.to_lowercase())
            || self
                .users
                .iter()
                .any(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// Starts a session for `email`; returns the token.
    pub fn open_session(&mut self, email: &str) -> String {
        let token = token();
        self.sessions.insert(token.clone(), email.to_owned());
        token
    }
}
