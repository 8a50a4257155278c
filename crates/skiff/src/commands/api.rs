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
            let text = match output {
                OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(&ops)?),
                OutputFormat::Table => {
                    let mut table = Table::new(&["SERVICE", "OPERATION", "PROTOCOL"]);
                    for op in &ops {
                        table.row([op.service, op.operation, op.protocol]);
                    }
                    table.render()
                }
            };
            // A reader that stops early (`| head`) is not an error.
            use std::io::Write as _;
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
            Ok(())
        }
    }
}
