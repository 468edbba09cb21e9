use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match pix_server::cli::run(pix_server::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pix-host: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
