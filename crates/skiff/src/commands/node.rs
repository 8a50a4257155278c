//! `skiff node …`: the host side of the all-in-one server, worked on directly (not through the API).
//! `reset` removes everything the agent holds on the host for a data directory.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The server's data directory (the agent's state is DATA_DIR/agent)
    #[arg(long, global = true, env = "SKIFF_DATA_DIR", default_value = skiff_api::DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// The OCI runtime the server ran containers with: crun or runc
    #[arg(long, global = true, env = "SKIFF_OCI_RUNTIME", default_value = "crun", value_name = "RUNTIME", value_parser = crate::server::parse_oci_runtime)]
    pub oci_runtime: skiff_agent::runtime::OciRuntime,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Remove every task's containers, mounts, cgroups and network attachments, the subnets' bridges and
    /// the nftables table of this data directory (stop the server first; images and logs stay)
    Reset,
}

pub fn run(args: NodeArgs, command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        match command {
            Command::Reset => {
                let agent = skiff_api::open_agent(&args.data_dir, args.oci_runtime).await?;
                let removed = agent.reset().await?;
                println!("removed {removed} task(s) and the task networks of {}", args.data_dir.display());
                Ok(())
            }
        }
    })
}
