//! What `PW_REDIS_URL` points at ([`RedisAddress`]): one Redis server, or the master a set of Redis
//! Sentinels names. Parsing never echoes any part of the URL, which may hold a password.
//!
//! A Sentinel address is
//! `redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]…]/<master-name>[/<db>][?sentinel_username=…&sentinel_password=…]`
//! (`rediss+sentinel://` for TLS to the sentinels and the master). The credentials before `@` are the
//! master's (and its replicas'); the sentinels are asked without any unless `sentinel_password` (and
//! `sentinel_username`) are given. A port left out is 26379. Reserved characters in a password (`@ / ? # % ,
//! :`) must be percent-encoded, as in any URL.

use secrecy::SecretString;

/// The default port of a Redis Sentinel.
pub const SENTINEL_PORT: u16 = 26379;

/// Where the Redis of `PW_REDIS_URL` is.
#[derive(Debug, Clone)]
pub enum RedisAddress {
    /// One server (`redis://`, `rediss://`, `unix://`, `redis+unix://`): the URL goes to redis-rs as it is.
    Direct,
    /// The master of a Sentinel-monitored group.
    Sentinel(SentinelAddress),
}

/// A parsed `redis+sentinel://` address. `Debug` hides the passwords.
#[derive(Clone)]
pub struct SentinelAddress {
    /// The sentinels, `(host, port)`, asked in this order.
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the master under (`sentinel monitor <name> …`).
    pub master: String,
    /// The database number on the master.
    pub db: i64,
    /// TLS to the sentinels and to the master (`rediss+sentinel://`).
    pub tls: bool,
    /// The master's ACL user, if any.
    pub username: Option<String>,
    /// The master's password, if any.
    pub password: Option<SecretString>,
    /// The sentinels' ACL user, if any.
    pub sentinel_username: Option<String>,
    /// The sentinels' password, if any.
    pub sentinel_password: Option<SecretString>,
}

impl std::fmt::Debug for SentinelAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelAddress")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The URL schemes of one server.
const DIRECT_SCHEMES: [&str; 4] = ["redis://", "rediss://", "unix://", "redis+unix://"];

impl RedisAddress {
    /// Parses a Redis URL. The error says what is wrong without repeating any part of the URL.
    ///
    /// # Errors
    /// A reason, for a [`super::ConfigError::Invalid`] naming the variable.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return parse_sentinel(rest, false).map(Self::Sentinel);
        }
        if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            return parse_sentinel(rest, true).map(Self::Sentinel);
        }
        if !DIRECT_SCHEMES.iter().any(|s| url.starts_with(s)) {
            return Err(
                "must start with redis://, rediss://, unix:// or redis+sentinel:// \
                 (rediss+sentinel:// for TLS)"
                    .into(),
            );
        }
        redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|_| "is not a valid Redis URL".to_owned())?;
        Ok(Self::Direct)
    }
}

fn parse_sentinel(rest: &str, tls: bool) -> Result<SentinelAddress, String> {
    const SHAPE: &str =
        "a Sentinel URL is redis+sentinel://[:password@]host1:port1,host2:port2/<master-name>[/db]";
    if rest.contains('#') {
        return Err(format!("has a fragment (#); {SHAPE}"));
    }
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = main
        .split_once('/')
        .ok_or_else(|| format!("names no master; {SHAPE}"))?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user = decode(user, "the user name")?;
            let pass = pass.map(|p| decode(p, "the password")).transpose()?;
            (
                Some(user).filter(|u| !u.is_empty()),
                pass.filter(|p| !p.is_empty()).map(SecretString::from),
            )
        }
    };
    let mut sentinels = Vec::new();
    for (i, host) in hosts.split(',').enumerate() {
        sentinels
            .push(parse_host(host).map_err(|why| format!("sentinel {}: {why}; {SHAPE}", i + 1))?);
    }
    let mut parts = path.split('/');
    let master = parts.next().unwrap_or_default();
    if master.is_empty() {
        return Err(format!("names no master; {SHAPE}"));
    }
    if !master
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err("the master name may hold only letters, digits, '-', '_' and '.'".into());
    }
    let db = match parts.next() {
        None | Some("") => 0,
        Some(db) => db.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
            format!("the database after the master name is not a number; {SHAPE}")
        })?,
    };
    if parts.next().is_some_and(|p| !p.is_empty()) {
        return Err(format!("has more path after the database; {SHAPE}"));
    }
    let mut address = SentinelAddress {
        sentinels,
        master: master.to_owned(),
        db,
        tls,
        username,
        password,
        sentinel_username: None,
        sentinel_password: None,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sentinel_username" => {
                address.sentinel_username =
                    Some(decode(value, "sentinel_username")?).filter(|u| !u.is_empty());
            }
            "sentinel_password" => {
                address.sentinel_password = Some(decode(value, "sentinel_password")?)
                    .filter(|p| !p.is_empty())
                    .map(SecretString::from);
            }
            _ => {
                return Err(
                    "knows only the query parameters sentinel_username and sentinel_password"
                        .into(),
                );
            }
        }
    }
    Ok(address)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_host(raw: &str) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = raw.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address without ']'")?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or("junk after ']'")?)),
        }
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || "@/?#%,[]".contains(c))
    {
        return Err("not a host name");
    }
    let port = match port {
        None => SENTINEL_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the port is not a number from 1 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

/// Percent-decodes `raw`; `what` names it in the error.
fn decode(raw: &str, what: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{what} has a '%' not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what} is not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn sentinel(url: &str) -> SentinelAddress {
        match RedisAddress::parse(url) {
            Ok(RedisAddress::Sentinel(s)) => s,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn sentinel_urls_parse_hosts_master_db_and_credentials() {
        let s = sentinel("redis+sentinel://:p%40ss%2Fw@h1:26380,h2,[::1]:5000/mymaster/3");
        assert_eq!(
            s.sentinels,
            vec![
                ("h1".to_owned(), 26380),
                ("h2".to_owned(), SENTINEL_PORT),
                ("::1".to_owned(), 5000)
            ]
        );
        assert_eq!((s.master.as_str(), s.db, s.tls), ("mymaster", 3, false));
        assert_eq!(s.username, None);
        assert_eq!(s.password.unwrap().expose_secret(), "p@ss/w");
        assert!(s.sentinel_password.is_none());

        let s = sentinel(
            "rediss+sentinel://app:pw@10.0.0.1:26379/pw-main?sentinel_password=sp&sentinel_username=mon",
        );
        assert!(s.tls);
        assert_eq!((s.master.as_str(), s.db), ("pw-main", 0));
        assert_eq!(s.username.as_deref(), Some("app"));
        assert_eq!(s.sentinel_username.as_deref(), Some("mon"));
        assert_eq!(s.sentinel_password.unwrap().expose_secret(), "sp");
        assert!(!format!("{:?}", sentinel("redis+sentinel://:hunter2@h/m")).contains("hunter2"));
    }

    #[test]
    fn bad_urls_say_why_without_repeating_the_password() {
        for bad in [
            "redis+sentinel://:hunter2@h1:26379",
            "redis+sentinel://:hunter2@h1:26379/",
            "redis+sentinel://:hunter2@/mymaster",
            "redis+sentinel://:hunter2@h1:port/mymaster",
            "redis+sentinel://:hunter2@h1:0/mymaster",
            "redis+sentinel://:hunter2@h1:26379,/mymaster",
            "redis+sentinel://:hunter2@h1/mymaster/x",
            "redis+sentinel://:hunter2@h1/mymaster/1/2",
            "redis+sentinel://:hunter2@h1/my master",
            "redis+sentinel://:hunter2%zz@h1/mymaster",
            "redis+sentinel://:hunter2@h1/mymaster?password=hunter2",
            "redis+sentinel://:hunter2@h1/mymaster#hunter2",
            "redis+sentinel://:hunter2@[::1/mymaster",
            "sentinel://:hunter2@h1/mymaster",
            "http://:hunter2@h1/",
            "",
            "redis://:hunter2@h1:notaport",
        ] {
            let why = RedisAddress::parse(bad).expect_err(bad);
            assert!(!why.contains("hunter2"), "{bad}: {why}");
            assert!(!why.is_empty());
        }
        assert!(matches!(
            RedisAddress::parse("redis://:pw@127.0.0.1:6379/2"),
            Ok(RedisAddress::Direct)
        ));
        assert!(matches!(
            RedisAddress::parse("unix:///run/redis.sock"),
            Ok(RedisAddress::Direct)
        ));
    }
}
