//! A static file server on the same HTTP stack as ralf (hyper, axum, tower-http), the baseline
//! for API benchmarks: `static-files DIR PORT` serves DIR on 127.0.0.1:PORT.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(port)) = (args.next(), args.next()) else {
        eprintln!("usage: static-files DIR PORT");
        std::process::exit(2);
    };
    let port: u16 = port.parse().unwrap_or_else(|_| {
        eprintln!("static-files: PORT must be a number");
        std::process::exit(2);
    });
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    axum::serve(listener, app).await
}
