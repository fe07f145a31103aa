//! `sensorctl`: see `sensorctl --help`.

use clap::Parser;

fn main() {
    let cli = sc_cli::sensorctl::Cli::parse();
    sc_cli::logging::init(cli.global.log_level.as_deref().unwrap_or("warn"));
    if let Err(e) = sc_cli::sensorctl::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
