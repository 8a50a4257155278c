//! `skiff api operations`: what this build of Skiff serves, read from the server's routing table (no
//! server needed). The conformance suite takes its list of operations from here.

use crate::commands::OutputFormat;
use crate::table::Table;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List every AWS operation this build serves, by service
    Operations {
        /// Output format: a readable table, or a JSON array of {service, operation, protocol}
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Operations { output } => {
            let ops: Vec<_> = skiff_api::router::operations().collect();
            match output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&ops)?),
                OutputFormat::Table => {
                    let mut table = Table::new(&["SERVICE", "OPERATION", "PROTOCOL"]);
                    for op in &ops {
                        table.row([op.service, op.operation, op.protocol]);
                    }
                    print!("{}", table.render());
                }
            }
            Ok(())
        }
    }
}
