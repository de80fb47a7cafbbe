//! The Kubernetes manifests (deploy/kubernetes) meet `helpers::kubernetes_policy`, each of its rules
//! rejects a manifest broken on purpose, and they name only variables the binaries read. Schemas
//! (kubernetes-validate --strict, KEDA's) are checked by scripts/deploy-check.

use std::collections::BTreeSet;

use crate::helpers::every_var as all_vars;
use serde_yaml_ng::Value;

use crate::helpers::compose::strings;
use crate::helpers::kubernetes_policy::{
    DIR, EXECUTOR, FETCHER, Manifests, gitignore, k8s_policy, manifests,
};
use crate::helpers::monitoring::repo_file;

#[test]
fn kubernetes_manifests_meet_the_policy() {
    let m = manifests();
    for file in strings(&m.kustomization["resources"]) {
        assert!(
            repo_file(&format!("{DIR}/{file}")).exists(),
            "missing {file}"
        );
    }
    let violations = k8s_policy(&m, &gitignore());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn kubernetes_manifests_name_only_variables_the_binaries_read() {
    let known: BTreeSet<String> = all_vars()
        .flat_map(|v| {
            let file = v.secret.then(|| format!("{}_FILE", v.name));
            std::iter::once(v.name.to_owned()).chain(file)
        })
        .collect();
    let m = manifests();
    for d in m.of_kind("Deployment") {
        for var in m.env(d).keys() {
            assert!(
                known.contains(var),
                "{:?}: {var} is read by no binary",
                d["metadata"]["name"]
            );
        }
    }
}

#[test]
fn kubernetes_policy_rejects_each_production_mistake() {
    type Mutation = fn(&mut Manifests);
    fn executor(m: &mut Manifests) -> &mut Value {
        m.find_mut("Deployment", EXECUTOR)
    }
    fn set_env(m: &mut Manifests, name: &str, value: &str) {
        let env = executor(m)["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_sequence_mut()
            .unwrap();
        env.retain(|e| e["name"] != name);
        let mut e = serde_yaml_ng::Mapping::new();
        e.insert("name".into(), name.into());
        e.insert("value".into(), value.into());
        env.push(Value::Mapping(e));
    }
    let cases: &[(&str, Mutation)] = &[
        ("OOM-killed before the browser is recycled", |m| {
            executor(m)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
                "1Gi".into();
        }),
        ("PW_SHUTDOWN_GRACE_SECS 60 cuts off registrations", |m| {
            set_env(m, "PW_SHUTDOWN_GRACE_SECS", "60")
        }),
        ("terminationGracePeriodSeconds 90 under the drain", |m| {
            executor(m)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 90.into();
        }),
        ("needs PW_CHROMIUM_ARGS=no-sandbox", |m| {
            set_env(m, "PW_CHROMIUM_ARGS", "")
        }),
        ("podcast-worker-fetcher: no PodDisruptionBudget", |m| {
            m.docs.retain(|d| {
                !(d["kind"] == "PodDisruptionBudget" && d["metadata"]["name"] == FETCHER)
            });
        }),
        ("podcast-worker-executor: no podAntiAffinity", |m| {
            executor(m)["spec"]["template"]["spec"]
                .as_mapping_mut()
                .unwrap()
                .remove("affinity");
        }),
        (
            "podcast-worker-fetcher: seccompProfile RuntimeDefault missing",
            |m| {
                m.find_mut("Deployment", FETCHER)["spec"]["template"]["spec"]["securityContext"]
                    .as_mapping_mut()
                    .unwrap()
                    .remove("seccompProfile");
            },
        ),
        (
            "podcast-worker-executor: allowPrivilegeEscalation must be false",
            |m| {
                executor(m)["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                    true.into();
            },
        ),
        ("podcast-worker-executor: capabilities must drop ALL", |m| {
            executor(m)["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
                ["drop"] = Value::Sequence(vec!["NET_RAW".into()]);
        }),
        ("podcast-worker-fetcher: must run as non-root", |m| {
            m.find_mut("Deployment", FETCHER)["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] =
                false.into();
        }),
        ("never :latest", |m| {
            executor(m)["spec"]["template"]["spec"]["containers"][0]["image"] =
                "podcast-worker:latest".into();
        }),
        ("never :latest", |m| {
            m.kustomization["images"][0]["newTag"] = "latest".into();
        }),
        ("a Secret is applied from the repository", |m| {
            let secret = serde_yaml_ng::from_str("{apiVersion: v1, kind: Secret, metadata: {name: podcast-worker}, stringData: {api_key: CHANGE-ME}}").unwrap();
            m.docs.push(secret);
        }),
        ("PW_API_KEY as an environment value", |m| {
            set_env(m, "PW_API_KEY", "k")
        }),
        ("is no key of the generated Secret", |m| {
            set_env(
                m,
                "PW_OUTBOX_KEY_FILE",
                "/run/secrets/podcast-worker/outbox",
            );
        }),
        (
            "TriggerAuthentication reads podcast-worker/redis-password",
            |m| {
                m.find_mut("TriggerAuthentication", "podcast-worker-redis")["spec"]["secretTargetRef"]
                    [0]["key"] = "redis-password".into();
            },
        ),
        ("target must be PW_CONCURRENCY (4)", |m| {
            set_env(m, "PW_CONCURRENCY", "4")
        }),
        ("minReplicaCount 0 leaves nobody", |m| {
            m.find_mut("ScaledObject", EXECUTOR)["spec"]["minReplicaCount"] = 0.into();
        }),
        ("the formula must add {pw}:tasks:sub", |m| {
            m.find_mut("ScaledObject", EXECUTOR)["spec"]["advanced"]["scalingModifiers"]["formula"] =
                "max(main, sub)".into();
        }),
        ("must be measured by XLEN", |m| {
            let so = m.find_mut("ScaledObject", EXECUTOR);
            so["spec"]["triggers"][0]["metadata"]["consumerGroup"] = "executors".into();
        }),
        ("no redis-streams trigger on {pw}:tasks:main", |m| {
            let so = m.find_mut("ScaledObject", EXECUTOR);
            so["spec"]["triggers"][0]["metadata"]["stream"] = "pw:tasks:main".into();
        }),
        ("scale-down stabilization under a registration", |m| {
            let so = m.find_mut("ScaledObject", EXECUTOR);
            so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] =
                60.into();
        }),
    ];
    for (expected, mutate) in cases {
        let mut m = manifests();
        mutate(&mut m);
        let violations = k8s_policy(&m, &gitignore());
        assert!(
            violations.iter().any(|v| v.contains(expected)),
            "a manifest with \"{expected}\" passed: {violations:#?}"
        );
    }
    let violations = k8s_policy(&manifests(), "target\n");
    assert!(
        violations
            .iter()
            .any(|v| v.contains("not under a gitignored secrets/")),
        "{violations:#?}"
    );
}
