use clap::Parser;

use skiff::cli::{self, Cli, LogFormat};
use skiff::logging;

fn main() {
    let cli = Cli::parse();
    if cli.global.version {
        print!("{}", cli::version_text());
        return;
    }
    let g = &cli.global;
    logging::init(g.log.as_deref(), g.log_format == LogFormat::Json, g.debug);
    let code = match cli::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            logging::error(&msg);
            if logging::has_file() {
                eprintln!("skiff: {msg}");
            }
            1
        }
    };
    std::process::exit(code);
}
