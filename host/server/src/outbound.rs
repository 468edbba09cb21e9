//! The one way the host calls an address a tenant chose (webhook endpoints, dynamic QR-code
//! locations): an HTTP client that resolves names itself and connects only to public unicast
//! addresses, follows no redirects, goes through no proxy, and caps time and response size.
//!
//! Names are resolved by [`GuardedResolver`]; reqwest connects only to the addresses it returns,
//! so a name that resolves (or re-resolves, DNS rebinding) to an internal address is refused at
//! connect time. IP-literal URLs skip the resolver and are checked in [`Outbound::check_url`]
//! before each request. The caller reports one generic error to the tenant
//! ([`TENANT_MESSAGE`]); the reason goes to the host's log only.
//!
//! Exceptions: `[outbound] allow_networks` (CIDRs, empty by default) and, for the embedded demo
//! only, the exact socket addresses of the in-process simulators (`allow_sockets`, not
//! configurable from files).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::OutboundConfig;

/// What the tenant is told whatever went wrong (refused address, DNS failure, connection
/// refused, timeout, oversized answer): distinct messages would let a tenant map the network.
pub const TENANT_MESSAGE: &str = "the remote address could not be used: it is not reachable from this host or did not \
                                  answer in time";

/// IPv4 ranges never called: "this network", RFC 1918, CGNAT, loopback, link-local (cloud
/// metadata), IETF protocol assignments, documentation, 6to4 relay, benchmarking, multicast,
/// reserved and broadcast.
const DENIED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6 ranges never called inside global unicast (2000::/3; everything outside it — loopback,
/// unspecified, ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, discard — is refused
/// anyway): IETF protocol assignments (Teredo, benchmarking), documentation.
const DENIED_V6: &[&str] = &["2001::/23", "2001:db8::/32", "3fff::/20"];

static DENIED: LazyLock<Vec<IpNet>> =
    LazyLock::new(|| DENIED_V4.iter().chain(DENIED_V6).map(|n| n.parse().expect("a valid built-in CIDR")).collect());

/// The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped (::ffff:a.b.c.d),
/// IPv4-compatible (::a.b.c.d), NAT64 well-known prefix (64:ff9b::/96) and 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

/// Whether `ip` is an ordinary public unicast address the host may call for a tenant.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !DENIED.iter().any(|n| n.contains(&IpAddr::V4(v4))),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let global_unicast = (v6.segments()[0] & 0xe000) == 0x2000;
            global_unicast && !DENIED.iter().any(|n| n.contains(&IpAddr::V6(v6)))
        }
    }
}

/// Which addresses the host may connect to for a tenant.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allow_networks: Vec<IpNet>,
    allow_sockets: Vec<SocketAddr>,
}

impl OutboundPolicy {
    pub fn new(allow_networks: Vec<IpNet>, allow_sockets: Vec<SocketAddr>) -> OutboundPolicy {
        OutboundPolicy { allow_networks, allow_sockets }
    }

    /// Whether `ip` may be connected to (whatever the port).
    pub fn permits(&self, ip: IpAddr) -> bool {
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        is_public(ip) || self.allow_networks.iter().any(|n| n.contains(&ip) || n.contains(&plain))
    }

    /// Whether `socket` may be connected to: [`permits`](Self::permits), or one of the exact
    /// sockets allowed (IP-literal URLs only: a resolver never sees the port).
    pub fn permits_socket(&self, socket: SocketAddr) -> bool {
        self.permits(socket.ip()) || self.allow_sockets.contains(&socket)
    }
}

/// Why an outbound call failed; for the host's log. Tenants get [`TENANT_MESSAGE`].
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Transport(String),
    #[error("the answer exceeds {0} bytes")]
    TooLarge(usize),
}

impl OutboundError {
    fn transport(e: reqwest::Error) -> OutboundError {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        // Without the URL, which may embed a token; with the causes (the resolver's refusal).
        let e = e.without_url();
        let mut message = kind.to_owned();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        OutboundError::Transport(message.chars().take(500).collect())
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, OutboundError::Transport(m) if m.starts_with("timed out"))
    }
}

/// Resolves with the system resolver (tokio), then keeps only the addresses the policy permits.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses the outbound policy refuses")]
struct RefusedName(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found.iter().copied().filter(|a| policy.permits(a.ip())).collect();
            if permitted.len() < found.len() {
                tracing::warn!(%host, refused = ?found.iter().filter(|a| !policy.permits(a.ip())).map(|a| a.ip()).collect::<Vec<_>>(),
                    "outbound: resolved addresses refused by the policy");
            }
            if permitted.is_empty() {
                return Err(Box::new(RefusedName(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The guarded client and its limits.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    max_response_bytes: usize,
}

impl Outbound {
    /// A client whose whole exchange (connect, send, read) takes at most `total`.
    pub fn new(config: &OutboundConfig, total: Duration, user_agent: &str) -> anyhow::Result<Outbound> {
        let policy = Arc::new(OutboundPolicy::new(config.allow_networks.clone(), config.allow_sockets.clone()));
        let client = reqwest::Client::builder()
            // A redirect could lead past the address checks (and leak a webhook elsewhere).
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on our behalf, past the resolver.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms).min(total))
            .timeout(total)
            .user_agent(user_agent)
            .build()?;
        Ok(Outbound { client, policy, max_response_bytes: config.max_response_bytes })
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// The static part of the policy: http(s), a host, no credentials, and an IP-literal host
    /// that the policy permits (names are checked by the resolver at connect time).
    pub fn check_url(&self, url: &url::Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Refused(format!("scheme {}", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::Refused("the URL embeds credentials".into()));
        }
        let ip = match url.host() {
            None => return Err(OutboundError::Refused("the URL has no host".into())),
            Some(url::Host::Domain(_)) => return Ok(()),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        let port = url.port_or_known_default().unwrap_or(0);
        if self.policy.permits_socket(SocketAddr::new(ip, port)) {
            Ok(())
        } else {
            Err(OutboundError::Refused(format!("address {ip} is not public")))
        }
    }

    /// A request builder on the guarded client; send it with [`Outbound::send`].
    pub fn request(&self, method: reqwest::Method, url: url::Url) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Checks the URL, then sends.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, OutboundError> {
        let request = request.build().map_err(OutboundError::transport)?;
        self.check_url(request.url())?;
        self.client.execute(request).await.map_err(OutboundError::transport)
    }

    /// Reads the body, at most `max_response_bytes`.
    pub async fn read_limited(&self, mut response: reqwest::Response) -> Result<Vec<u8>, OutboundError> {
        let max = self.max_response_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(OutboundError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(OutboundError::transport)? {
            if body.len() + chunk.len() > max {
                return Err(OutboundError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_refused_in_every_form() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:100.64.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "100::1",
        ] {
            assert!(!is_public(ip(refused)), "{refused} must be refused");
        }
    }

    #[test]
    fn public_unicast_passes() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2800:3f0:4001:810::200e",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip(public)), "{public} must pass");
        }
    }

    #[test]
    fn the_allowlist_admits_exactly_its_networks_and_sockets() {
        let policy =
            OutboundPolicy::new(vec!["127.0.0.1/32".parse().unwrap()], vec!["127.0.0.2:9000".parse().unwrap()]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")), "the mapped form of an allowed address");
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!(policy.permits_socket("127.0.0.2:9000".parse().unwrap()));
        assert!(!policy.permits_socket("127.0.0.2:9001".parse().unwrap()));
        assert!(!OutboundPolicy::default().permits(ip("127.0.0.1")));
    }

    #[test]
    fn literal_urls_are_checked_before_any_request() {
        let outbound = Outbound::new(&OutboundConfig::default(), Duration::from_secs(1), "test").unwrap();
        for refused in [
            "http://127.0.0.1:9/x",
            "https://10.0.0.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:127.0.0.1]:80/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "https://user:pw@example.com/",
            "ftp://example.com/",
        ] {
            let url = url::Url::parse(refused).unwrap();
            assert!(matches!(outbound.check_url(&url), Err(OutboundError::Refused(_))), "{refused}");
        }
        assert!(outbound.check_url(&url::Url::parse("https://example.com/hook").unwrap()).is_ok());
        assert!(outbound.check_url(&url::Url::parse("https://8.8.8.8/hook").unwrap()).is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
        let resolver = GuardedResolver { policy: Arc::new(OutboundPolicy::default()) };
        assert!(resolver.resolve("localhost".parse().unwrap()).await.is_err());
        let allowed =
            GuardedResolver { policy: Arc::new(OutboundPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![])) };
        let addrs: Vec<SocketAddr> = allowed.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.ip().is_ipv4()), "{addrs:?}");
    }
}
