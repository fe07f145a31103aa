//! `sensorctl`: see `sensorctl --help`.

use clap::Parser;

fn main() {
    let cli = sc_cli::sensorctl::Cli::parse();
    sc_cli::private_umask();
    let level =
        match sc_cli::logging::check_level(cli.global.log_level.as_deref().unwrap_or("warn")) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        };
    sc_cli::logging::init(&level);
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(sc_cli::sensorctl::run(cli)));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
