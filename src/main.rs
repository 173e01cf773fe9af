use std::process::ExitCode;

fn main() -> ExitCode {
    btsdr::cli::run(btsdr::cli::parse())
}
