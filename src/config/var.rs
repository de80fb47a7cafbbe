//! How a variable is declared: one line of a section's `vars!` block gives its constant (a typed
//! [`Setting`]), its name (`PW_` + the constant's name), its default, its `--help` and README line ([`Var`])
//! and its parser with bounds ([`Kind`]). Read a value with [`Source::get`].

use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::Role;
use super::source::{ConfigError, Source, invalid};

/// The fetcher, in a declaration's role list.
pub(crate) const F: Role = Role::Fetcher;
/// The executor, in a declaration's role list.
pub(crate) const E: Role = Role::Executor;

/// A week in milliseconds: the longest `_MS` duration accepted unless a declaration says otherwise.
pub(crate) const WEEK_MS: u64 = 7 * 86_400_000;
/// Thirty days in seconds: the longest `_SECS` duration accepted unless a declaration says otherwise.
pub(crate) const MONTH_SECS: u64 = 30 * 86_400;

/// One documented setting: what `--help`, the README table and the unknown-name check show.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Environment variable name, `PW_…`.
    pub name: &'static str,
    /// Default when unset; `None` means required (or optional where the help says so).
    pub default: Option<&'static str>,
    /// A secret: never echoed in errors; may be read from `<name>_FILE`.
    pub secret: bool,
    /// Binaries that read it.
    pub roles: &'static [Role],
    /// One line for `--help` and the README.
    pub help: &'static str,
}

/// A declared variable and how its value is read: a `Setting<Duration>` yields a `Duration`.
#[derive(Debug)]
pub struct Setting<T: 'static> {
    /// Name, default and help.
    pub var: Var,
    kind: Kind<T>,
}

impl<T> Clone for Setting<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Setting<T> {}

impl<T> std::ops::Deref for Setting<T> {
    type Target = Var;
    fn deref(&self) -> &Var {
        &self.var
    }
}

impl<T> Setting<T> {
    /// Used by `vars!`: the declaration's kind with its name, roles and help.
    pub(crate) const fn declare(
        name: &'static str,
        roles: &'static [Role],
        help: &'static str,
        kind: Kind<T>,
    ) -> Self {
        Self {
            var: Var {
                name,
                default: kind.default,
                secret: kind.secret,
                roles,
                help,
            },
            kind,
        }
    }
}

/// How a value is parsed and checked: a parser, its bounds and the default.
#[derive(Debug)]
pub(crate) struct Kind<T: 'static> {
    default: Option<&'static str>,
    secret: bool,
    /// A value set but empty is an error (numbers, URLs, keys) instead of meaning "the default".
    refuse_empty: bool,
    min: u64,
    max: u64,
    read: fn(&Source, &Var, u64, u64) -> Result<T, ConfigError>,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Kind<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Kind<T> {}

impl<T> Kind<T> {
    const fn new(read: fn(&Source, &Var, u64, u64) -> Result<T, ConfigError>) -> Self {
        Self {
            default: None,
            secret: false,
            refuse_empty: false,
            min: 0,
            max: u64::MAX,
            read,
            _value: PhantomData,
        }
    }

    /// The value used when the variable is unset (or empty).
    pub(crate) const fn or(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }

    const fn bounded(mut self, min: u64, max: u64) -> Self {
        self.min = min;
        self.max = max;
        self.refuse_empty = true;
        self
    }

    const fn non_empty(mut self) -> Self {
        self.refuse_empty = true;
        self
    }
}

impl Source {
    /// The typed value of a declared variable, or the error naming it.
    ///
    /// # Errors
    /// [`ConfigError`] when the value is missing, malformed or out of bounds.
    pub fn get<T>(&self, setting: &Setting<T>) -> Result<T, ConfigError> {
        let var = &setting.var;
        if setting.kind.refuse_empty && self.is_set_but_empty(var.name) {
            let reason = match var.default {
                Some(_) => "is set but empty (unset it to use the default)",
                None => "is set but empty",
            };
            return Err(ConfigError::Invalid {
                var: var.name,
                reason: reason.into(),
            });
        }
        (setting.kind.read)(self, var, setting.kind.min, setting.kind.max)
    }
}

/// Text, required unless it has a default.
pub(crate) const fn text() -> Kind<String> {
    Kind::new(|src, var, _, _| src.required(var))
}

/// A URL (checked further by its section): set but empty is an error.
pub(crate) const fn url() -> Kind<String> {
    text().non_empty()
}

/// Text that may be absent.
pub(crate) const fn optional_text() -> Kind<Option<String>> {
    Kind::new(|src, var, _, _| Ok(src.raw(var)))
}

/// A file or directory path, required unless it has a default.
pub(crate) const fn path() -> Kind<PathBuf> {
    Kind::new(|src, var, _, _| src.required(var).map(PathBuf::from))
}

/// A path that may be absent.
pub(crate) const fn optional_path() -> Kind<Option<PathBuf>> {
    Kind::new(|src, var, _, _| Ok(src.raw(var).map(PathBuf::from)))
}

/// A comma-separated list, trimmed, empty items dropped.
pub(crate) const fn list() -> Kind<Vec<String>> {
    Kind::new(|src, var, _, _| Ok(src.list(var)))
}

/// Comma-separated domains, each normalised as task domains are.
pub(crate) const fn domains() -> Kind<Vec<String>> {
    Kind::new(|src, var, _, _| {
        Ok(src
            .list(var)
            .iter()
            .map(|d| crate::task::normalise_domain(d))
            .collect())
    })
}

/// A secret (from `<NAME>` or `<NAME>_FILE`), required unless it has a default.
pub(crate) const fn secret() -> Kind<SecretString> {
    let mut kind = Kind::new(|src, var, _, _| src.required_secret(var));
    kind.secret = true;
    kind.non_empty()
}

/// An integer within `min..=max`.
pub(crate) const fn int(min: u64, max: u64) -> Kind<u64> {
    Kind::new(|src, var, min, max| src.int_in(var, min, max)).bounded(min, max)
}

/// A positive count.
pub(crate) const fn count() -> Kind<NonZeroUsize> {
    Kind::new(|src, var, _, _| src.parse(var)).non_empty()
}

/// A duration in milliseconds (the name ends in `_MS`) within `min..=max` ms.
pub(crate) const fn millis(min: u64, max: u64) -> Kind<Duration> {
    Kind::new(|src, var, min, max| src.int_in(var, min, max).map(Duration::from_millis))
        .bounded(min, max)
}

/// A duration in seconds (the name ends in `_SECS`) within `min..=max` s.
pub(crate) const fn secs(min: u64, max: u64) -> Kind<Duration> {
    Kind::new(|src, var, min, max| src.int_in(var, min, max).map(Duration::from_secs))
        .bounded(min, max)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub(crate) const fn flag() -> Kind<bool> {
    Kind::new(|src, var, _, _| {
        let raw = src.required(var)?;
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(invalid(var, &raw, "true or false")),
        }
    })
}

/// Any value with a `FromStr`; its error says what was expected (a list of words, an address).
pub(crate) const fn parsed<T>() -> Kind<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    Kind::new(|src, var, _, _| {
        let raw = src.required(var)?;
        raw.trim()
            .parse()
            .map_err(|e: T::Err| invalid(var, &raw, &e.to_string()))
    })
}

/// Declares a section's variables, one line each, and the list of them:
///
/// ```ignore
/// vars! {
///     /// Every variable of this section.
///     SECTION_VARS;
///     CLAIM_IDLE_MS: Duration = millis(1, WEEK_MS).or("60000"), [F, E], "An entry idle this long is reclaimed";
/// }
/// ```
/// makes `vars::CLAIM_IDLE_MS: Setting<Duration>` for `PW_CLAIM_IDLE_MS` and `SECTION_VARS: &[Var]`.
macro_rules! vars {
    (
        $(#[doc = $list_doc:literal])*
        $list:ident;
        $( $id:ident : $ty:ty = $kind:expr, [$($role:ident),*], $help:literal; )*
    ) => {
        /// The variables of this section, by name.
        pub mod vars {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = $help]
                pub const $id: $crate::config::Setting<$ty> = $crate::config::Setting::declare(
                    concat!("PW_", stringify!($id)),
                    &[$($role),*],
                    $help,
                    $kind,
                );
            )*
        }
        $(#[doc = $list_doc])*
        pub const $list: &[$crate::config::Var] = &[$(vars::$id.var),*];
    };
}
