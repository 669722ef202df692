//! The ECS target: a Fargate task definition (hardened container, health check, awslogs,
//! secrets by ARN) and a service with the deployment circuit breaker and rollback on, in the
//! JSON `aws ecs register-task-definition` / `create-service --cli-input-json` read.

use serde_json::{Value, json};

use crate::app::{App, Limits, secs};
use crate::{Error, Rendered, yaml};

/// Fargate's task sizes: (vCPU units, the memory sizes in MiB allowed with them).
const FARGATE_SIZES: [(u64, u64, u64); 5] = [
    (256, 512, 2048),
    (512, 1024, 4096),
    (1024, 2048, 8192),
    (2048, 4096, 16384),
    (4096, 8192, 30720),
];

/// The smallest Fargate size fitting the limits: (cpu units, memory MiB).
fn fargate_size(limits: Limits) -> (u64, u64) {
    let cpu = (limits.cpus * 1024.0).ceil() as u64;
    let mem = limits.memory_mib();
    for (units, min_mem, max_mem) in FARGATE_SIZES {
        if cpu <= units && mem <= max_mem {
            // Memory comes in 1 GiB steps above the minimum (512 MiB only at 0.25 vCPU).
            let mem = if mem <= min_mem {
                min_mem
            } else {
                mem.div_ceil(1024) * 1024
            };
            return (units, mem);
        }
    }
    (4096, 30720)
}

fn clamp(x: u64, lo: u64, hi: u64) -> u64 {
    x.clamp(lo, hi)
}

pub(crate) fn render(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    let web = app.web("ecs")?;
    let opts = app.opts;
    let env = app.env_name().to_owned();
    let family = format!("{}-{env}", app.name);
    let region = &opts.aws_region;
    let account = &opts.aws_account_id;
    let limits = Limits::of(&web.resources);
    let (cpu, memory) = fargate_size(limits);
    let (uid, gid) = app.user();
    let sec = &app.spec.security;

    let environment: Vec<Value> = app
        .spec
        .env
        .iter()
        .map(|(k, v)| json!({ "name": k.as_str(), "value": v }))
        .collect();
    let secrets: Vec<Value> = app
        .spec
        .secrets
        .iter()
        .map(|s| {
            json!({
                "name": s.as_str(),
                "valueFrom": format!("arn:aws:secretsmanager:{region}:{account}:secret:{}/{}", app.name, s.as_str()),
            })
        })
        .collect();
    // Fargate has no tmpfs: writable paths are task-local (ephemeral) volumes.
    let tmp_paths: Vec<&String> = if sec.read_only_root_fs {
        sec.tmpfs.iter().collect()
    } else {
        Vec::new()
    };
    let volumes: Vec<Value> = (0..tmp_paths.len())
        .map(|i| json!({ "name": format!("tmp-{i}") }))
        .collect();
    let mounts: Vec<Value> = tmp_paths
        .iter()
        .enumerate()
        .map(|(i, p)| json!({ "sourceVolume": format!("tmp-{i}"), "containerPath": p, "readOnly": false }))
        .collect();

    let mut container = json!({
        "name": "web",
        "image": app.image.full(),
        "essential": true,
        "portMappings": [{ "name": "http", "containerPort": web.port, "hostPort": web.port, "protocol": "tcp", "appProtocol": "http" }],
        "environment": environment,
        "secrets": secrets,
        "readonlyRootFilesystem": sec.read_only_root_fs,
        "privileged": false,
        "user": format!("{uid}:{gid}"),
        "linuxParameters": {
            "capabilities": { "drop": ["ALL"], "add": sec.cap_add },
            "initProcessEnabled": true,
        },
        "mountPoints": mounts,
        "stopTimeout": clamp(secs(web.drain_timeout, 0) + secs(web.stop_timeout, 1), 2, 120),
        "ulimits": [{ "name": "nofile", "softLimit": 65536, "hardLimit": 65536 }],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": format!("/ferry/{}/{env}", app.name),
                "awslogs-region": region,
                "awslogs-stream-prefix": "web",
                "awslogs-create-group": "true",
                "mode": "non-blocking",
                "max-buffer-size": "25m",
            },
        },
        "dockerLabels": { "generated-by": "ferry render", "app": app.name, "env": env },
    });
    if let Some(cmd) = &web.command {
        container["command"] = json!(cmd);
    }
    if let Some(h) = &web.health {
        let command = opts.healthcheck_command.clone().unwrap_or_else(|| {
            vec![
                "CMD".to_owned(),
                "ferry".to_owned(),
                "healthcheck".to_owned(),
                format!("http://127.0.0.1:{}{}", web.port, h.path),
            ]
        });
        if opts.healthcheck_command.is_none() {
            app.note("ECS: the container health check runs `ferry healthcheck` inside the image; pass --healthcheck-command when the image has another probe binary");
        }
        // ECS bounds: interval 5..=300 s, timeout 2..=60 s, retries 1..=10, start 0..=300 s.
        container["healthCheck"] = json!({
            "command": command,
            "interval": clamp(secs(h.interval, 5), 5, 300),
            "timeout": clamp(secs(h.timeout, 2), 2, 60),
            "retries": clamp(u64::from(h.unhealthy_threshold), 1, 10),
            "startPeriod": clamp(secs(h.start_period, 0), 0, 300),
        });
    }
    let task = json!({
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": cpu.to_string(),
        "memory": memory.to_string(),
        "runtimePlatform": { "operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64" },
        "executionRoleArn": format!("arn:aws:iam::{account}:role/{}-execution", app.name),
        "taskRoleArn": format!("arn:aws:iam::{account}:role/{}-task", app.name),
        "containerDefinitions": [container],
        "volumes": volumes,
        "tags": [
            { "key": "generated-by", "value": "ferry render from ferry.toml - do not edit" },
            { "key": "app", "value": app.name },
            { "key": "env", "value": env },
        ],
    });
    let health_grace = web
        .health
        .as_ref()
        .map_or(30, |h| secs(h.start_period, 0) + 30);
    let service = json!({
        "cluster": format!("{env}"),
        "serviceName": app.name,
        "taskDefinition": family,
        "desiredCount": web.replicas,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "deploymentConfiguration": {
            // A failed deployment stops and the last good task definition comes back.
            "deploymentCircuitBreaker": { "enable": true, "rollback": true },
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "networkConfiguration": { "awsvpcConfiguration": {
            "subnets": ["subnet-REPLACE-ME"],
            "securityGroups": ["sg-REPLACE-ME"],
            "assignPublicIp": "DISABLED",
        }},
        "loadBalancers": [{
            "targetGroupArn": format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{}-{env}/REPLACE-ME", app.name),
            "containerName": "web",
            "containerPort": web.port,
        }],
        "healthCheckGracePeriodSeconds": health_grace,
        "enableECSManagedTags": true,
        "propagateTags": "SERVICE",
        "enableExecuteCommand": false,
        "tags": [{ "key": "app", "value": app.name }, { "key": "env", "value": env }],
    });
    out.file(format!("ecs/{family}-taskdef.json"), yaml::json_file(&task));
    out.file(
        format!("ecs/{family}-service.json"),
        yaml::json_file(&service),
    );
    out.note(
        "ECS: replace the subnet, security group and target group placeholders in the service file",
    );
    if !app.spec.accessories.is_empty() || !app.spec.workers.is_empty() {
        app.note("ECS: only the web role is rendered; run accessories as managed services (RDS, ElastiCache) and workers as their own services");
    }
    Ok(())
}
