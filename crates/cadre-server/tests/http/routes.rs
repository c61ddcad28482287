//! Every route declares its access, and every declaration names a route.

use std::collections::BTreeSet;

use cadre_server::auth::access::ROUTES;

fn served_routes() -> BTreeSet<(String, String)> {
    let doc = cadre_server::openapi::document();
    let mut routes = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    // Served outside the OpenAPI document.
    routes.insert(("GET".to_owned(), "/metrics".to_owned()));
    routes.insert(("GET".to_owned(), "/api/v1/openapi.json".to_owned()));
    routes.insert(("GET".to_owned(), "/ws".to_owned()));
    routes
}

#[test]
fn every_route_declares_its_access() {
    let declared: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let served = served_routes();
    let undeclared: Vec<_> = served.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "routes without an access declaration in auth::access::ROUTES: {undeclared:?}"
    );
    let stale: Vec<_> = declared.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "declarations for routes that do not exist: {stale:?}"
    );
}
