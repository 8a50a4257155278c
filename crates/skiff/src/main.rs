//! The `skiff` binary: `skiff server` runs the all-in-one server (`skiff-api`); the other subcommands are a
//! client for people, speaking the same public AWS API as the AWS CLI (`skiff-client`). This crate only
//! parses arguments, resolves configuration and prints; it holds no logic of the server.

mod commands;
mod credentials;
mod server;
mod table;

use clap::{Parser, Subcommand};
use commands::{api, clusters, deploy, images, logs, node, services, task_definitions, ClientArgs, Context};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Client commands find credentials in this order: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
SKIFF_ROOT_ACCESS_KEY_ID + SKIFF_ROOT_SECRET_ACCESS_KEY; the server's generated credentials.json in --data-dir.

Exit status: 0 success; 1 the command failed (an AWS error, an unreachable server, a bad input file, or a
failure reported for some of the names given); 2 usage error.";

#[derive(Debug, Parser)]
#[command(name = "skiff", version, about = "Skiff: a self-hosted Fargate that speaks the AWS APIs", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the all-in-one server: the API, controllers and agent, state in the data directory
    Server(server::ServerArgs),
    /// ECS clusters: ls, describe, create, delete
    Clusters {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: clusters::Command,
    },
    /// ECS task definitions: ls, describe, register, deregister, delete
    #[command(name = "task-definitions", visible_alias = "td")]
    TaskDefinitions {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: task_definitions::Command,
    },
    /// ECS services: ls (the default), describe, events
    Services {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        scope: services::ClusterArg,
        #[command(subcommand)]
        command: Option<services::Command>,
    },
    /// Deploy a new image to a service and follow the rollout until it completes or fails
    ///
    /// Registers a new revision of the service's task definition with the image of one container replaced
    /// (every other setting and the tags copied), moves the service to it (UpdateService) and, unless
    /// --no-wait, follows the new deployment: its running/pending/failed tasks and rollout state, and the
    /// service's events as they come. Exit status 0 when the rollout COMPLETED; 1 when it FAILED (the
    /// circuit breaker may have rolled the service back), when --timeout passed first, or on any error.
    /// --output json prints no progress, then {taskDefinitionArn, service} (the UpdateService response with
    /// --no-wait).
    Deploy {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: deploy::DeployArgs,
    },
    /// A task's container logs (reads DATA_DIR/agent/runtime/logs: run it on the server's host)
    ///
    /// Asks the server for the task's containers (DescribeTasks), then reads their log files directly under
    /// DATA_DIR/agent/runtime/logs (--data-dir or SKIFF_DATA_DIR: the server's data directory), so it runs on
    /// the server's host. With several containers each line starts with its awslogs stream name,
    /// PREFIX/CONTAINER/TASK_ID (CONTAINER/TASK_ID without an awslogs-stream-prefix); stdout and stderr lines
    /// both go to standard output. --output json prints one JSON object per line.
    Logs {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: logs::LogsArgs,
    },
    /// The node's image cache: pull, ls, rm (works on DATA_DIR/agent/images directly)
    Images {
        #[command(flatten)]
        store: images::StoreArgs,
        #[command(subcommand)]
        command: images::Command,
    },
    /// This host's side of the server: `skiff node reset` (works on DATA_DIR/agent directly)
    Node {
        #[command(flatten)]
        args: node::NodeArgs,
        #[command(subcommand)]
        command: node::Command,
    },
    /// What this build serves: `skiff api operations`
    Api {
        #[command(subcommand)]
        command: api::Command,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(args),
        Command::Api { command } => api::run(command),
        Command::Images { store, command } => images::run(store, command),
        Command::Node { args, command } => node::run(args, command),
        Command::Clusters { client, command } => {
            run_client(&client, |ctx| async move { clusters::run(&ctx, command).await })
        }
        Command::TaskDefinitions { client, command } => {
            run_client(&client, |ctx| async move { task_definitions::run(&ctx, command).await })
        }
        Command::Services { client, scope, command } => {
            run_client(&client, |ctx| async move { services::run(&ctx, scope.cluster, command).await })
        }
        Command::Deploy { client, args } => run_client(&client, |ctx| async move { deploy::run(&ctx, args).await }),
        Command::Logs { client, args } => {
            let data_dir = client.data_dir.clone();
            run_client(&client, |ctx| async move { logs::run(&ctx, &data_dir, args).await })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs one client command on a single-threaded runtime.
fn run_client<F, Fut>(args: &ClientArgs, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let ctx = Context::from_args(args)?;
        command(ctx).await
    })
}

/// Output cut short by a closed pipe (`skiff … | head`) is not an error worth reporting.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_exit_2() {
        let err = Cli::try_parse_from(["skiff", "clusters", "describe"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from(["skiff", "clusters", "create", "x", "--tag", "novalue"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn service_commands_parse() {
        let cli = Cli::try_parse_from(["skiff", "services", "--cluster", "prod"]).unwrap();
        let Command::Services { scope, command, .. } = cli.command else { panic!("not services") };
        assert_eq!(scope.cluster.as_deref(), Some("prod"));
        assert!(command.is_none());
        let cli = Cli::try_parse_from(["skiff", "services", "events", "web", "--cluster", "prod", "-n", "3"]).unwrap();
        let Command::Services { scope, command, .. } = cli.command else { panic!("not services") };
        assert_eq!(scope.cluster.as_deref(), Some("prod"));
        assert!(matches!(command, Some(services::Command::Events { ref service, limit: Some(3) }) if service == "web"));

        let cli = Cli::try_parse_from(["skiff", "deploy", "web", "--image", "busybox:2", "--no-wait"]).unwrap();
        let Command::Deploy { args, .. } = cli.command else { panic!("not deploy") };
        assert_eq!(
            (args.service.as_str(), args.image.as_str(), args.no_wait, args.timeout),
            ("web", "busybox:2", true, 600)
        );
        assert!(Cli::try_parse_from(["skiff", "deploy", "web"]).is_err());
        assert!(Cli::try_parse_from(["skiff", "deploy", "web", "--image", "x", "--timeout", "0"]).is_err());
    }

    #[test]
    fn task_definition_commands_parse() {
        let cli = Cli::try_parse_from(["skiff", "td", "ls", "--family-prefix", "web", "--status", "inactive"]).unwrap();
        let Command::TaskDefinitions { command, .. } = cli.command else { panic!("not task-definitions") };
        assert!(matches!(
            command,
            task_definitions::Command::Ls { family_prefix: Some(ref p), status: Some(task_definitions::Status::Inactive) }
                if p == "web"
        ));
        let cli = Cli::try_parse_from(["skiff", "task-definitions", "delete", "web:1", "web:2"]).unwrap();
        let Command::TaskDefinitions { command, .. } = cli.command else { panic!("not task-definitions") };
        assert!(
            matches!(command, task_definitions::Command::Delete { ref task_definitions } if task_definitions.len() == 2)
        );
    }
}
