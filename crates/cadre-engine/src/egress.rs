//! The one way agents reach the network. Every address a request would
//! connect to — after DNS resolution, and again for every redirect — must be
//! public: loopback, private, link-local (cloud metadata), CGNAT, multicast,
//! reserved and the IPv6 forms that embed such an IPv4 address
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are refused. Hosts on the
//! allow-list (`egress.allow`, `host` or `host:port`) skip the check, for
//! on-premises services. Bodies and time are capped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Largest response body kept (the rest is cut, and the cut is said).
pub const MAX_BODY: usize = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 5;

/// Why an address is refused.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified (0.0.0.0/8)",
        (10, ..) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, ..) => "loopback",
        (169, 254, _) => "link-local (cloud metadata lives here)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved or broadcast",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // Forms that carry an IPv4 address: judge the IPv4 address.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d).
        return forbidden_v4(embedded(s[6], s[7])).or(if s[5] == 0 {
            Some("IPv4-compatible")
        } else {
            None
        });
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48).
        return forbidden_v4(embedded(s[6], s[7])).or(Some("NAT64"));
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2])).or(Some("6to4"));
    }
    Some(match s[0] {
        0x2001 if s[1] == 0 => "Teredo",
        x if x & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local",
        x if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// Hosts that skip the address check.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<(String, Option<u16>)>,
}

impl AllowList {
    /// From `host` or `host:port` entries (case-insensitive hosts).
    pub fn new(entries: &[String]) -> Self {
        Self {
            entries: entries
                .iter()
                .map(|e| {
                    let e = e.trim().to_ascii_lowercase();
                    match e.rsplit_once(':') {
                        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                            match port.parse() {
                                Ok(p) => (host.trim_matches(['[', ']']).to_owned(), Some(p)),
                                Err(_) => (e.clone(), None),
                            }
                        }
                        _ => (e.trim_matches(['[', ']']).to_owned(), None),
                    }
                })
                .collect(),
        }
    }

    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.entries
            .iter()
            .any(|(h, p)| *h == host && (p.is_none() || *p == port))
    }
}

/// Why a request was refused before or while connecting.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("request failed: {0}")]
    Failed(String),
}

/// Resolves names and drops forbidden addresses (all of them forbidden:
/// an error naming why), unless the name is allow-listed.
#[derive(Debug)]
struct GuardedResolver {
    allow: AllowList,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.allow.allows(&host, None);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allowed {
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            let mut refused = None;
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match forbidden(a.ip()) {
                    Some(why) => {
                        refused = Some(format!("{host} resolves to {} ({why})", a.ip()));
                        false
                    }
                    None => true,
                })
                .collect();
            if ok.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(
                    Box::new(EgressError::Refused(why)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL's scheme and, for an IP literal (in any spelling the URL
/// parser accepts: decimal, octal, hex, IPv6), its address.
pub fn check_url(url: &Url, allow: &AllowList) -> Result<(), EgressError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EgressError::Refused(format!(
            "scheme {:?} is not allowed; use http or https",
            url.scheme()
        )));
    }
    let port = url.port_or_known_default();
    let Some(host) = url.host() else {
        return Err(EgressError::Refused("the URL has no host".into()));
    };
    let host_text = host.to_string();
    if allow.allows(&host_text, port) || allow.allows(&host_text, None) {
        return Ok(());
    }
    let ip = match host {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = ip
        && let Some(why) = forbidden(ip)
    {
        return Err(EgressError::Refused(format!("{ip} is {why}")));
    }
    Ok(())
}

/// The egress HTTP client.
#[derive(Debug, Clone)]
pub struct Egress {
    client: reqwest::Client,
    allow: Arc<AllowList>,
}

/// What a request returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
    pub truncated: bool,
}

impl Egress {
    pub fn new(allow: AllowList) -> Result<Self, EgressError> {
        let allow = Arc::new(allow);
        Ok(Self {
            client: client(Arc::clone(&allow))?,
            allow,
        })
    }

    /// Sends a request; `idempotency_key` goes in the `Idempotency-Key`
    /// header. `org_allow` adds the organization's own allow-list to the
    /// instance's.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<String>,
        idempotency_key: &str,
        org_allow: &AllowList,
    ) -> Result<Response, EgressError> {
        let url = Url::parse(url).map_err(|e| EgressError::Refused(format!("not a URL: {e}")))?;
        let (client, allow) = if org_allow.entries.is_empty() {
            (self.client.clone(), Arc::clone(&self.allow))
        } else {
            let mut merged = (*self.allow).clone();
            merged.entries.extend(org_allow.entries.iter().cloned());
            let merged = Arc::new(merged);
            (client(Arc::clone(&merged))?, merged)
        };
        check_url(&url, &allow)?;
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| EgressError::Refused(format!("method {method:?} is not allowed")))?;
        let mut request = client
            .request(method, url)
            .header("Idempotency-Key", idempotency_key);
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("host") {
                continue;
            }
            request = request.header(k, v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            let room = MAX_BODY - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
            truncated,
        })
    }
}

/// A client whose every connection and redirect is checked against `allow`.
fn client(allow: Arc<AllowList>) -> Result<reqwest::Client, EgressError> {
    let for_redirects = Arc::clone(&allow);
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            allow: (*allow).clone(),
        }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(EgressError::Refused("too many redirects".into()));
            }
            match check_url(attempt.url(), &for_redirects) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        }))
        .timeout(TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| EgressError::Failed(e.to_string()))
}

/// The refusal inside a reqwest error, if there is one, else the error.
fn describe(e: reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(EgressError::Refused(why)) = s.downcast_ref::<EgressError>() {
            return EgressError::Refused(why.clone());
        }
        source = s.source();
    }
    EgressError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(&Url::parse(url).unwrap(), &AllowList::default()).is_err()
    }

    #[test]
    fn internal_addresses_in_every_spelling_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::]/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            assert!(refused(url), "{url} must be refused");
        }
        for url in [
            "https://example.com/",
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
        ] {
            assert!(!refused(url), "{url} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_named_hosts_and_ports() {
        let allow = AllowList::new(&["127.0.0.1:8080".into(), "intranet.local".into()]);
        assert!(check_url(&Url::parse("http://127.0.0.1:8080/x").unwrap(), &allow).is_ok());
        assert!(check_url(&Url::parse("http://127.0.0.1:9090/x").unwrap(), &allow).is_err());
        assert!(allow.allows("INTRANET.local", Some(443)));
    }
}
