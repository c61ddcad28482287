//! Graceful shutdown: stop accepting, finish what is in flight.

use std::time::Duration;

use crate::harness::{HELD_ENTERED, TestServer};

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let app = TestServer::start().await;
    let client = app.client.clone();
    let url = app.url("/probe/held");
    #[expect(clippy::disallowed_methods, reason = "the test joins this request")]
    let in_flight = tokio::spawn(async move { client.get(url).send().await });

    HELD_ENTERED.notified().await;
    app.shutdown.cancel();

    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let health = app.url("/api/v1/health");
    let served = tokio::time::timeout(Duration::from_secs(10), app.served)
        .await
        .expect("server stops");
    served.unwrap().unwrap();

    let refused = reqwest::Client::new().get(health).send().await;
    assert!(refused.is_err(), "no new connections after shutdown");
}
