//! The sandbox LiveChat accounts server on a fixed address, for scripts/bench.sh.
//! Usage: sandbox_accounts ADDR   (state at http://ADDR/sandbox/state)

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let addr = addr.parse().expect("an address such as 127.0.0.1:18090");
        let sandbox = tether_sandbox::livechat::SandboxAccounts::start_on(addr, Default::default())
            .await
            .expect("the sandbox starts");
        eprintln!("sandbox accounts server at {}", sandbox.url());
        std::future::pending::<()>().await;
    });
}
