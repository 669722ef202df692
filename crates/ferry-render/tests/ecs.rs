//! The ECS target against botocore's ECS service model: the task definition is valid input
//! of RegisterTaskDefinition and the service of CreateService (the same validation the AWS
//! CLI runs before sending a request).

mod common;

use common::{rendered, tool_ok, tree, write};
use ferry_render::Target;

const VALIDATE: &str = r#"
import json, sys
import botocore.session
from botocore.validate import validate_parameters
model = botocore.session.get_session().get_service_model("ecs")
for op, path in (("RegisterTaskDefinition", sys.argv[1]), ("CreateService", sys.argv[2])):
    with open(path) as f:
        validate_parameters(json.load(f), model.operation_model(op).input_shape)
    print(op, "ok")
"#;

#[test]
fn task_definition_and_service_validate_against_the_ecs_model() {
    for env in ["staging", "production"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = rendered(Target::Ecs, env);
        write(dir.path(), &r);
        let task = dir.path().join(format!("ecs/hello-{env}-taskdef.json"));
        let service = dir.path().join(format!("ecs/hello-{env}-service.json"));
        let out = tool_ok(
            "python3",
            &[
                "-c",
                VALIDATE,
                task.to_str().expect("utf-8"),
                service.to_str().expect("utf-8"),
            ],
            "the PyPI package botocore",
        );
        assert!(out.contains("CreateService ok"), "{out}");
    }
}

#[test]
fn task_definition_is_hardened() {
    let r = rendered(Target::Ecs, "production");
    let task: serde_json::Value =
        serde_json::from_str(r.get("ecs/hello-production-taskdef.json").expect("taskdef"))
            .expect("json");
    let c = &task["containerDefinitions"][0];
    assert_eq!(c["readonlyRootFilesystem"], true);
    assert_eq!(c["user"], "10001:10001");
    assert_eq!(c["linuxParameters"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
    assert!(c["healthCheck"]["command"].is_array());
    assert!(
        c["secrets"][0]["valueFrom"]
            .as_str()
            .expect("arn")
            .starts_with("arn:aws:secretsmanager:")
    );
    let service: serde_json::Value =
        serde_json::from_str(r.get("ecs/hello-production-service.json").expect("service"))
            .expect("json");
    assert_eq!(
        service["deploymentConfiguration"]["deploymentCircuitBreaker"]["rollback"],
        true
    );
}

#[test]
fn ecs_snapshot_production() {
    insta::assert_snapshot!(tree(&rendered(Target::Ecs, "production")));
}
