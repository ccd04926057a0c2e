use clap::Parser;
use ingest::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    model::service::init_tracing(config.log_json, &config.log_level);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    ingest::serve(config, listener, model::service::shutdown_signal()).await
}
