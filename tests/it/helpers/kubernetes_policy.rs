//! What production needs of the Kubernetes manifests (deploy/kubernetes), as a function over them:
//! `k8s_policy` returns one line per violated rule (memory above the browser recycle threshold, a drain as
//! long as a registration, a termination grace above the drain, PDBs and anti-affinity, Pod Security
//! "restricted", a pinned image, no example Secret, secrets as files, a KEDA ScaledObject on the real streams
//! with the executor's concurrency as its target). Used by tests/it/kubernetes.rs.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::every_var as all_vars;
use podcast_worker::streams::StreamKeys;
use podcast_worker::task::Site;
use serde_yaml_ng::Value;

use super::compose::{strings, yaml, yaml_docs};
use super::monitoring::repo_file;

pub const DIR: &str = "deploy/kubernetes";
pub const FETCHER: &str = "podcast-worker-fetcher";
pub const EXECUTOR: &str = "podcast-worker-executor";
/// Memory of the executor and a fresh browser beside the one being replaced (BENCHMARKS.md, "Browser
/// registrations": ~450 MB for the executor and one browser).
pub const BROWSER_SPARE_MIB: u64 = 450;
/// Time after the drain for the last reports and Chromium's shutdown.
pub const STOP_MARGIN_SECS: u64 = 30;
/// Where the Deployments mount the generated Secret.
pub const SECRETS_MOUNT: &str = "/run/secrets/podcast-worker/";

/// The kustomization and every document of its resources.
pub struct Manifests {
    /// kustomization.yaml.
    pub kustomization: Value,
    /// Every document of its resources.
    pub docs: Vec<Value>,
}

pub fn manifests() -> Manifests {
    let kustomization = yaml(&format!("{DIR}/kustomization.yaml"));
    let docs = strings(&kustomization["resources"])
        .iter()
        .flat_map(|file| yaml_docs(&format!("{DIR}/{file}")))
        .collect();
    Manifests {
        kustomization,
        docs,
    }
}

impl Manifests {
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    pub fn find_mut(&mut self, kind: &str, name: &str) -> &mut Value {
        self.docs
            .iter_mut()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.docs.iter().filter(move |d| d["kind"] == kind)
    }

    /// A container's environment: the ConfigMap it loads, then its own `env` values.
    pub fn env(&self, deployment: &Value) -> BTreeMap<String, String> {
        let c = &deployment["spec"]["template"]["spec"]["containers"][0];
        let mut env = BTreeMap::new();
        for from in c["envFrom"].as_sequence().into_iter().flatten() {
            let name = from["configMapRef"]["name"].as_str().unwrap_or_default();
            if let Some(cm) = self.find("ConfigMap", name) {
                for (k, v) in cm["data"].as_mapping().into_iter().flatten() {
                    env.insert(
                        k.as_str().unwrap().to_owned(),
                        v.as_str().unwrap_or_default().to_owned(),
                    );
                }
            }
        }
        for e in c["env"].as_sequence().into_iter().flatten() {
            let value = e["value"].as_str().unwrap_or_default().to_owned();
            env.insert(e["name"].as_str().unwrap().to_owned(), value);
        }
        env
    }
}

/// A value set in `env`, else the binaries' default.
pub fn setting(env: &BTreeMap<String, String>, name: &str) -> Option<u64> {
    let default = all_vars().find(|v| v.name == name).and_then(|v| v.default);
    env.get(name).map(String::as_str).or(default)?.parse().ok()
}

/// A Kubernetes memory quantity (`256Mi`, `2Gi`, `1G`, `512M`) in MiB.
pub fn mebibytes(q: &str) -> Option<u64> {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let n: u64 = q[..split].parse().ok()?;
    match &q[split..] {
        "Mi" => Some(n),
        "Gi" => Some(n * 1024),
        "M" => Some(n * 1_000_000 / 1_048_576),
        "G" => Some(n * 1_000_000_000 / 1_048_576),
        "" => Some(n / 1_048_576),
        _ => None,
    }
}

/// What production needs of the manifests; one line per violation.
pub fn k8s_policy(m: &Manifests, gitignore: &str) -> Vec<String> {
    let mut v = Vec::new();
    for name in [FETCHER, EXECUTOR] {
        match m.find("Deployment", name) {
            Some(d) => deployment_policy(m, name, d, &mut v),
            None => v.push(format!("no Deployment {name}")),
        }
    }
    if let Some(d) = m.find("Deployment", EXECUTOR) {
        executor_policy(&m.env(d), d, &mut v);
    }
    if m.find("Deployment", FETCHER)
        .is_some_and(|d| d["spec"]["replicas"].as_u64() != Some(2))
    {
        v.push("fetcher: 2 replicas (leader and standby)".into());
    }
    image_policy(m, &mut v);
    secret_policy(m, gitignore, &mut v);
    keda_policy(m, &mut v);
    v
}

pub fn deployment_policy(m: &Manifests, name: &str, d: &Value, v: &mut Vec<String>) {
    let pod = &d["spec"]["template"]["spec"];
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    let selects_me = |selector: &Value| {
        let want = selector["matchLabels"].as_mapping();
        want.is_some_and(|w| {
            !w.is_empty() && w.iter().all(|(k, x)| labels[k.as_str().unwrap()] == *x)
        })
    };
    if !m
        .of_kind("PodDisruptionBudget")
        .any(|p| selects_me(&p["spec"]["selector"]))
    {
        v.push(format!("{name}: no PodDisruptionBudget selects its pods"));
    }
    let anti = &pod["affinity"]["podAntiAffinity"];
    let terms = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|t| &t["podAffinityTerm"])
        .chain(
            anti["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_sequence()
                .into_iter()
                .flatten(),
        );
    if !terms
        .into_iter()
        .any(|t| t["topologyKey"] == "kubernetes.io/hostname" && selects_me(&t["labelSelector"]))
    {
        v.push(format!(
            "{name}: no podAntiAffinity on kubernetes.io/hostname against its own pods"
        ));
    }
    let sc = &pod["securityContext"];
    if sc["runAsNonRoot"].as_bool() != Some(true) || sc["runAsUser"].as_u64() == Some(0) {
        v.push(format!("{name}: must run as non-root (runAsNonRoot)"));
    }
    for c in pod["containers"].as_sequence().into_iter().flatten() {
        let csc = &c["securityContext"];
        let seccomp = csc["seccompProfile"]["type"]
            .as_str()
            .or(sc["seccompProfile"]["type"].as_str());
        if seccomp != Some("RuntimeDefault") && seccomp != Some("Localhost") {
            v.push(format!("{name}: seccompProfile RuntimeDefault missing"));
        }
        if csc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            v.push(format!("{name}: allowPrivilegeEscalation must be false"));
        }
        if !strings(&csc["capabilities"]["drop"]).contains(&"ALL".to_owned()) {
            v.push(format!("{name}: capabilities must drop ALL"));
        }
        if csc["privileged"].as_bool() == Some(true) || !csc["capabilities"]["add"].is_null() {
            v.push(format!("{name}: privileged or added capabilities"));
        }
        if c["resources"]["limits"]["memory"]
            .as_str()
            .and_then(mebibytes)
            .is_none()
        {
            v.push(format!("{name}: no memory limit"));
        }
    }
}

pub fn executor_policy(env: &BTreeMap<String, String>, d: &Value, v: &mut Vec<String>) {
    let pod = &d["spec"]["template"]["spec"];
    let limit = pod["containers"][0]["resources"]["limits"]["memory"]
        .as_str()
        .and_then(mebibytes);
    let pss = setting(env, "PW_BROWSER_MAX_PSS_MB").unwrap_or(0);
    if limit.is_none_or(|l| l < pss + BROWSER_SPARE_MIB) {
        v.push(format!(
            "executor: memory limit {limit:?} MiB under PW_BROWSER_MAX_PSS_MB ({pss}) + {BROWSER_SPARE_MIB} MiB: OOM-killed before the browser is recycled"
        ));
    }
    let grace = setting(env, "PW_SHUTDOWN_GRACE_SECS").unwrap_or(0);
    let timeout = setting(env, "PW_TASK_TIMEOUT_SECS").unwrap_or(u64::MAX);
    if grace < timeout {
        v.push(format!("executor: PW_SHUTDOWN_GRACE_SECS {grace} cuts off registrations (PW_TASK_TIMEOUT_SECS {timeout})"));
    }
    let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    if termination < grace + STOP_MARGIN_SECS {
        v.push(format!("executor: terminationGracePeriodSeconds {termination} under the drain {grace} s + {STOP_MARGIN_SECS} s"));
    }
    let non_root = pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
    let args = env.get("PW_CHROMIUM_ARGS").cloned().unwrap_or_default();
    if non_root && !args.split(',').any(|a| a.trim() == "no-sandbox") {
        v.push("executor: non-root under restricted seccomp needs PW_CHROMIUM_ARGS=no-sandbox (Chromium's sandbox cannot start)".into());
    }
}

pub fn image_policy(m: &Manifests, v: &mut Vec<String>) {
    let images: BTreeMap<String, &Value> = m.kustomization["images"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|i| (i["name"].as_str().unwrap_or_default().to_owned(), i))
        .collect();
    for d in m.of_kind("Deployment") {
        for c in d["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let image = c["image"].as_str().unwrap_or_default();
            let (name, tag) = image.split_once(':').unwrap_or((image, ""));
            let pinned = images.get(name).map(|i| {
                let tag = i["newTag"].as_str().unwrap_or_default();
                i["digest"].as_str().is_some() || (!tag.is_empty() && tag != "latest")
            });
            if !tag.is_empty() || pinned != Some(true) {
                v.push(format!("{image}: set the tag through kustomization images (newTag or digest), never :latest"));
            }
        }
    }
}

pub fn secret_policy(m: &Manifests, gitignore: &str, v: &mut Vec<String>) {
    if m.of_kind("Secret").next().is_some() {
        v.push("a Secret is applied from the repository (example values reach the cluster)".into());
    }
    let generated: BTreeMap<String, Vec<String>> = m.kustomization["secretGenerator"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|g| {
            let files = strings(&g["files"]);
            (g["name"].as_str().unwrap_or_default().to_owned(), files)
        })
        .collect();
    for files in generated.values() {
        for f in files {
            let path = f.split_once('=').map_or(f.as_str(), |(_, p)| p);
            if !path.starts_with("secrets/")
                || !gitignore.lines().any(|l| l == format!("/{DIR}/secrets/"))
            {
                v.push(format!(
                    "secretGenerator reads {path}, which is not under a gitignored secrets/"
                ));
            }
        }
    }
    let keys: BTreeSet<String> = generated
        .values()
        .flatten()
        .map(|f| f.split_once('=').map_or(f.clone(), |(k, _)| k.to_owned()))
        .collect();
    let secret_vars: BTreeSet<&str> = all_vars().filter(|x| x.secret).map(|x| x.name).collect();
    for d in m.of_kind("Deployment") {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        for (var, value) in m.env(d) {
            if secret_vars.contains(var.as_str()) {
                v.push(format!(
                    "{name}: {var} as an environment value; mount the Secret and use {var}_FILE"
                ));
            }
            if var.ends_with("_FILE") && secret_vars.contains(var.trim_end_matches("_FILE")) {
                let key = value.strip_prefix(SECRETS_MOUNT).unwrap_or_default();
                if !keys.contains(key) {
                    v.push(format!(
                        "{name}: {var}={value} is no key of the generated Secret"
                    ));
                }
            }
        }
        for vol in d["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let secret = vol["secret"]["secretName"].as_str();
            if secret.is_some_and(|s| !generated.contains_key(s)) {
                v.push(format!(
                    "{name}: mounts Secret {secret:?}, which nothing generates"
                ));
            }
        }
    }
    for ta in m.of_kind("TriggerAuthentication") {
        for r in ta["spec"]["secretTargetRef"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let (secret, key) = (
                r["name"].as_str().unwrap_or_default(),
                r["key"].as_str().unwrap_or_default(),
            );
            if !generated.contains_key(secret) || !keys.contains(key) {
                v.push(format!(
                    "TriggerAuthentication reads {secret}/{key}, which nothing generates"
                ));
            }
        }
    }
}

pub fn keda_policy(m: &Manifests, v: &mut Vec<String>) {
    let Some(so) = m.find("ScaledObject", EXECUTOR) else {
        v.push("no ScaledObject for the executors".into());
        return;
    };
    let spec = &so["spec"];
    if spec["scaleTargetRef"]["name"] != EXECUTOR {
        v.push("ScaledObject: does not scale the executor Deployment".into());
    }
    if spec["minReplicaCount"].as_u64().unwrap_or(0) < 1 {
        v.push("ScaledObject: minReplicaCount 0 leaves nobody to reclaim abandoned entries".into());
    }
    let env = m
        .find("Deployment", EXECUTOR)
        .map(|d| m.env(d))
        .unwrap_or_default();
    let concurrency = setting(&env, "PW_CONCURRENCY").unwrap_or(0);
    let prefix = env
        .get("PW_KEY_PREFIX")
        .cloned()
        .unwrap_or_else(|| "{pw}".into());
    let keys = StreamKeys::new(&prefix);
    let modifiers = &spec["advanced"]["scalingModifiers"];
    if modifiers["target"]
        .as_str()
        .and_then(|t| t.parse::<u64>().ok())
        != Some(concurrency)
    {
        v.push(format!(
            "ScaledObject: target must be PW_CONCURRENCY ({concurrency}) entries per executor"
        ));
    }
    let formula = modifiers["formula"].as_str().unwrap_or_default();
    let triggers = spec["triggers"].as_sequence().cloned().unwrap_or_default();
    for site in Site::ALL {
        let stream = keys.tasks(site);
        let t = triggers
            .iter()
            .find(|t| t["type"] == "redis-streams" && t["metadata"]["stream"] == stream.as_str());
        match t {
            None => v.push(format!(
                "ScaledObject: no redis-streams trigger on {stream}"
            )),
            Some(t) => {
                let named = t["name"].as_str().unwrap_or_default();
                let counted = regex::Regex::new(&format!(r"\b{}\b", regex::escape(named))).unwrap();
                if t["metadata"]["streamLength"].is_null()
                    || !t["metadata"]["consumerGroup"].is_null()
                {
                    v.push(format!("ScaledObject: {stream} must be measured by XLEN (streamLength, no consumerGroup): queued + running"));
                }
                if named.is_empty() || !counted.is_match(formula) || formula.contains("max") {
                    v.push(format!(
                        "ScaledObject: the formula must add {stream}'s trigger ({formula:?})"
                    ));
                }
            }
        }
    }
    let down = &spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"];
    let timeout = setting(&env, "PW_TASK_TIMEOUT_SECS").unwrap_or(600);
    if down["stabilizationWindowSeconds"].as_u64().unwrap_or(300) < timeout {
        v.push(format!(
            "ScaledObject: scale-down stabilization under a registration ({timeout} s) flaps drains"
        ));
    }
}

pub fn gitignore() -> String {
    std::fs::read_to_string(repo_file(".gitignore")).unwrap()
}
