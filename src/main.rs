use clap::Parser;

use skiff::cli::{self, Cli, Command, LogFormat};
use skiff::logging;

fn main() {
    let cli = Cli::parse_from(cli::go_style_args(std::env::args_os()));
    if cli.global.version {
        use std::io::Write;
        let _ = write!(std::io::stdout().lock(), "{}", cli::version_text());
        return;
    }
    // The commands that put processes into containers run from a sealed copy of skiff, so
    // no container can ever reach (and overwrite) the binary on the host (CVE-2019-5736).
    if matches!(
        cli.command,
        Some(Command::Create(_) | Command::Run(_) | Command::Exec(_))
    ) {
        if let Err(e) = skiff::sys::exe::reexec_sealed() {
            eprintln!("skiff: cannot re-execute from a sealed copy of the binary: {e}");
            std::process::exit(1);
        }
    }
    let g = &cli.global;
    if let Err(e) = logging::init(g.log.as_deref(), g.log_format == LogFormat::Json, g.debug) {
        eprintln!("skiff: {e}");
        std::process::exit(1);
    }
    let code = match cli::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            logging::error(&msg);
            // With --log the line went to the file; stderr gets the bare message, as runc's.
            if logging::has_file() {
                eprintln!("{msg}");
            }
            1
        }
    };
    std::process::exit(code);
}
