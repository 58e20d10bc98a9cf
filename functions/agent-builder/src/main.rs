//! The agent-builder Lambda: `GET /agents/{channel}[?format=…]`.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run_agent_builder().await
}
