//! Realistic, deterministic task data for a scenario: uuids, demo mailboxes, passwords by the API's rule,
//! TOTP secrets in the shapes real customers paste, Gmail-style app passwords and Spintax "about" HTML.
//! Pure: a seeded RNG in, records out; no state, no I/O.

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What to generate: `requests` requests, each one main-site task and `subs_per_request` sub-site tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ScenarioSpec {
    /// Number of requests (each a main task plus its sub-site tasks).
    pub requests: u32,
    /// Sub-site tasks per request; they cycle through `sub_domains`.
    pub subs_per_request: u32,
    /// Seed of the data: the same seed gives the same ids, emails and secrets.
    pub seed: u64,
    /// Domains of the main-site tasks, one per request in turn (a `studio.` domain is the studio flavour).
    pub main_domains: Vec<String>,
    /// Domains of the sub-site tasks, used round-robin.
    pub sub_domains: Vec<String>,
}

impl Default for ScenarioSpec {
    fn default() -> Self {
        Self {
            requests: 0,
            subs_per_request: 3,
            seed: 1,
            main_domains: vec![DEFAULT_MAIN_DOMAIN.to_owned()],
            sub_domains: DEFAULT_SUB_DOMAINS
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
        }
    }
}

/// The demo main platform's domain, the default of every main-site task.
pub const DEFAULT_MAIN_DOMAIN: &str = "main.demo.test";
/// The demo main platform in the studio flavour (sign-in through the DemoMail identity provider).
pub const STUDIO_DOMAIN: &str = "studio.demo.test";

/// The usernames one task's username can come out as: each alternative of a leading Spintax group
/// (`{shopcast|podshop}7abcd`, the generated shape), or the username itself.
pub fn username_alternatives(username: &str) -> Vec<String> {
    let Some((group, rest)) = username.strip_prefix('{').and_then(|u| u.split_once('}')) else {
        return vec![username.to_owned()];
    };
    group.split('|').map(|alt| format!("{alt}{rest}")).collect()
}
/// The demo sub-platforms' domains, the default sub-site domains.
pub const DEFAULT_SUB_DOMAINS: &[&str] = &["sub-a.demo.test", "sub-b.demo.test", "sub-c.demo.test"];

/// The fields of one task as API.md's table lists them (`link_rss` is added at hand-out time).
#[derive(Debug, Clone, Serialize)]
pub struct TaskData {
    /// Task id (uuid).
    pub id: String,
    /// Parent request id (uuid).
    pub request_id: String,
    /// Always `register` in this phase.
    pub type_request: String,
    /// Platform domain.
    pub domain: String,
    /// The customer's website.
    pub website: String,
    /// Address to register with (shared by the tasks of one request).
    pub email: String,
    /// Username to register with; may hold Spintax.
    pub username: String,
    /// Password of the mailbox.
    pub pass_mail: String,
    /// Base32 TOTP secret, sometimes lowercase or spaced.
    pub twofa: String,
    /// Mail app password, `abcd efgh ijkl mnop`.
    pub app_password: String,
    /// Account password: 12 chars, uppercase first, lowercase, digits, one special.
    pub password: String,
    /// Channel description, HTML with Spintax.
    pub about: String,
    /// Cover image URL.
    pub image_url: String,
    /// The request's group (uuid).
    pub group_id: String,
    /// Accounts the request must create.
    pub target: u32,
}

/// One generated task and where it sits in its request.
#[derive(Debug, Clone)]
pub struct GeneratedTask {
    /// The wire fields.
    pub data: TaskData,
    /// Whether it is the request's main-site task.
    pub is_main: bool,
    /// The request's number (1, 2, … across every scenario of the simulator).
    pub request: u64,
}

/// Generates a scenario's tasks, main task of each request first. `first_request` numbers the requests (so
/// emails stay unique across scenarios added at runtime); `public_url` is where the simulator serves images.
pub fn scenario(spec: &ScenarioSpec, first_request: u64, public_url: &str) -> Vec<GeneratedTask> {
    let mut rng =
        StdRng::seed_from_u64(spec.seed ^ first_request.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut out = Vec::new();
    let target = 1 + spec.subs_per_request;
    for r in 0..u64::from(spec.requests) {
        let n = first_request + r;
        let request = Request::new(&mut rng, n, spec.seed, public_url);
        let main = spec
            .main_domains
            .get(r as usize % spec.main_domains.len().max(1))
            .map_or(DEFAULT_MAIN_DOMAIN, String::as_str);
        out.push(GeneratedTask {
            data: request.task(&mut rng, main, target),
            is_main: true,
            request: n,
        });
        for s in 0..spec.subs_per_request as usize {
            let domain = spec
                .sub_domains
                .get(s % spec.sub_domains.len().max(1))
                .cloned()
                .unwrap_or_else(|| DEFAULT_SUB_DOMAINS[s % DEFAULT_SUB_DOMAINS.len()].to_owned());
            out.push(GeneratedTask {
                data: request.task(&mut rng, &domain, target),
                is_main: false,
                request: n,
            });
        }
    }
    out
}

/// What the tasks of one request share: the customer, the mailbox and its second factor.
struct Request {
    n: u64,
    request_id: String,
    group_id: String,
    email: String,
    pass_mail: String,
    twofa: String,
    app_password: String,
    website: String,
    image_url: String,
}

impl Request {
    fn new(rng: &mut StdRng, n: u64, seed: u64, public_url: &str) -> Self {
        Self {
            n,
            request_id: uuid(rng),
            group_id: uuid(rng),
            email: format!("u{n}.{seed}@demo.test"),
            pass_mail: password(rng),
            twofa: totp_secret(rng),
            app_password: app_password(rng),
            website: format!("https://shop{n}.example.com"),
            image_url: format!("{}/assets/cover/{n}.png", public_url.trim_end_matches('/')),
        }
    }

    fn task(&self, rng: &mut StdRng, domain: &str, target: u32) -> TaskData {
        TaskData {
            id: uuid(rng),
            request_id: self.request_id.clone(),
            type_request: "register".to_owned(),
            domain: domain.to_owned(),
            website: self.website.clone(),
            email: self.email.clone(),
            username: username(rng, self.n),
            pass_mail: self.pass_mail.clone(),
            twofa: self.twofa.clone(),
            app_password: self.app_password.clone(),
            password: password(rng),
            about: about(rng, self.n),
            image_url: self.image_url.clone(),
            group_id: self.group_id.clone(),
            target,
        }
    }
}

/// A random (v4) uuid drawn from the seeded RNG.
pub fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
const SPECIAL: &[u8] = b"!@#$%&*?";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn pick(rng: &mut StdRng, set: &[u8]) -> char {
    char::from(set[rng.random_range(0..set.len())])
}

/// 12 characters: an uppercase letter first, then lowercase letters, three digits and one special character.
pub fn password(rng: &mut StdRng) -> String {
    let mut rest: Vec<char> = (0..7).map(|_| pick(rng, LOWER)).collect();
    rest.extend((0..3).map(|_| pick(rng, DIGITS)));
    rest.push(pick(rng, SPECIAL));
    rest.shuffle(rng);
    std::iter::once(pick(rng, UPPER)).chain(rest).collect()
}

/// A base32 TOTP secret: 80-bit (16 chars, Google style) or 160-bit (32 chars); a third of them lowercase,
/// a third spaced in groups of four, as customers paste them.
pub fn totp_secret(rng: &mut StdRng) -> String {
    let len = if rng.random_bool(0.5) { 16 } else { 32 };
    let plain: String = (0..len).map(|_| pick(rng, BASE32)).collect();
    match rng.random_range(0..3) {
        0 => plain,
        1 => plain.to_lowercase(),
        _ => spaced(&plain.to_lowercase()),
    }
}

/// A Gmail-style app password: four groups of four lowercase letters.
pub fn app_password(rng: &mut StdRng) -> String {
    let plain: String = (0..16)
        .map(|_| pick(rng, b"abcdefghijklmnopqrstuvwxyz"))
        .collect();
    spaced(&plain)
}

fn spaced(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn username(rng: &mut StdRng, n: u64) -> String {
    let tail: String = (0..4).map(|_| pick(rng, LOWER)).collect();
    if rng.random_bool(0.3) {
        format!("{{shopcast|podshop|talkshop}}{n}{tail}")
    } else {
        format!("shopcast{n}{tail}")
    }
}

fn about(rng: &mut StdRng, n: u64) -> String {
    let topic = [
        "gardening",
        "coffee",
        "cycling",
        "home cooking",
        "indie games",
    ]
    .choose(rng)
    .copied()
    .unwrap_or("stories");
    format!(
        "<p>{{Welcome to|This is}} the {{weekly|monthly}} show of <b>Shop {n}</b>.</p>\
         <p>{{Stories|Talks|Conversations}} about {topic}, {{straight from|recorded at}} our shop.</p>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_and_main_first() {
        let spec = ScenarioSpec {
            requests: 2,
            subs_per_request: 2,
            seed: 7,
            ..ScenarioSpec::default()
        };
        let a = scenario(&spec, 1, "http://h");
        let b = scenario(&spec, 1, "http://h");
        assert_eq!(a.len(), 6);
        assert_eq!(a[0].data.id, b[0].data.id);
        assert!(a[0].is_main && !a[1].is_main && a[3].is_main);
        assert_eq!(a[1].data.request_id, a[0].data.request_id);
        assert_eq!(a[0].data.email, "u1.7@demo.test");
        assert_eq!(a[2].data.domain, "sub-b.demo.test");
        assert_eq!(a[0].data.image_url, "http://h/assets/cover/1.png");
        assert_ne!(scenario(&spec, 3, "http://h")[0].data.id, a[0].data.id);
        assert_eq!((a[0].request, a[1].request, a[3].request), (1, 1, 2));
    }

    #[test]
    fn main_domains_take_turns_by_request() {
        let spec = ScenarioSpec {
            requests: 3,
            subs_per_request: 1,
            main_domains: vec!["main.demo.test".into(), STUDIO_DOMAIN.into()],
            ..ScenarioSpec::default()
        };
        let tasks = scenario(&spec, 1, "http://h");
        let mains = tasks.iter().filter(|t| t.is_main);
        let domains: Vec<&str> = mains.map(|t| t.data.domain.as_str()).collect();
        assert_eq!(domains, ["main.demo.test", STUDIO_DOMAIN, "main.demo.test"]);
    }

    #[test]
    fn username_alternatives_expand_the_leading_group() {
        assert_eq!(username_alternatives("shopcast7abcd"), ["shopcast7abcd"]);
        assert_eq!(
            username_alternatives("{shopcast|podshop}7abcd"),
            ["shopcast7abcd", "podshop7abcd"]
        );
    }

    #[test]
    fn passwords_follow_the_api_rule() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let p = password(&mut rng);
            assert_eq!(p.chars().count(), 12);
            assert!(p.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| SPECIAL.contains(&(c as u8))));
        }
    }

    #[test]
    fn secrets_have_both_lengths_and_shapes() {
        let mut rng = StdRng::seed_from_u64(5);
        let secrets: Vec<String> = (0..60).map(|_| totp_secret(&mut rng)).collect();
        let lens: Vec<usize> = secrets.iter().map(|s| s.replace(' ', "").len()).collect();
        assert!(lens.contains(&16) && lens.contains(&32));
        assert!(secrets.iter().any(|s| s.contains(' ')));
        assert!(
            secrets
                .iter()
                .any(|s| s.chars().all(|c| !c.is_ascii_lowercase()))
        );
        let app = app_password(&mut rng);
        assert_eq!(app.len(), 19);
        assert_eq!(app.split(' ').count(), 4);
    }
}
