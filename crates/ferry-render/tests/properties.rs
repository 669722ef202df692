//! Properties over many specs: whatever the configuration values and commands hold, every
//! target renders, every YAML file parses, and values reach the output unchanged.

mod common;

use ferry_render::{RenderOptions, Target, render};
use proptest::prelude::*;

fn yaml_docs(text: &str) -> Vec<yaml_rust2::Yaml> {
    yaml_rust2::YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_env_values_and_commands_render_and_round_trip(
        values in proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", any::<String>(), 0..5),
        command in proptest::collection::vec(any::<String>(), 0..4),
        replicas in 1u32..20,
        port in 1u16..,
    ) {
        let mut spec = common::hello();
        spec.env = values
            .iter()
            .map(|(k, v)| (k.parse().expect("valid name"), v.clone()))
            .collect();
        let web = spec.web.as_mut().expect("web");
        web.replicas = replicas;
        web.port = port;
        web.command = (!command.is_empty()).then(|| command.clone());
        for target in Target::ALL {
            let r = render(target, &spec, Some("staging"), &RenderOptions::default())
                .unwrap_or_else(|e| panic!("{target}: {e}"));
            for (path, content) in &r.files {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
                if ext == "json" {
                    serde_json::from_str::<serde_json::Value>(content).expect("valid JSON");
                } else {
                    yaml_docs(content);
                }
            }
            if target == Target::K8s {
                // The overlay's ConfigMap patch holds exactly the values given.
                let overlay = r.get("overlays/staging/kustomization.yaml").expect("overlay");
                let docs = yaml_docs(overlay);
                let patch = docs[0]["patches"][1]["patch"].as_str().expect("patch text");
                let cm = &yaml_docs(patch)[0];
                for (k, v) in &values {
                    prop_assert_eq!(cm["data"][k.as_str()].as_str(), Some(v.as_str()));
                }
                let deployment = r.get("base/rollout.yaml").expect("rollout");
                let args = &yaml_docs(deployment)[0]["spec"]["template"]["spec"]["containers"][0]["args"];
                if !command.is_empty() {
                    let got: Vec<&str> = args.as_vec().expect("args").iter().map(|a| a.as_str().expect("str")).collect();
                    prop_assert_eq!(got, command.iter().map(String::as_str).collect::<Vec<_>>());
                }
            }
        }
    }
}
