//! The `pix-host` binary as a newcomer runs it: no configuration, an empty directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pix-host");

fn pix_host(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("PIX_CONFIG")
        .env("PIX_SERVER__LISTEN", "127.0.0.1:0")
        .env("PIX_LOG__FILTER", "warn")
        .env("PIX_POLICIES__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `serve` and returns the child with the URL it printed.
fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = pix_host(dir).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    let mut printed = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("pix-host listening on ") {
            url = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no URL printed; stdout was:\n{printed}"));
    (child, url)
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("pix-host did not stop on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_serves_the_demo_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = start(dir.path());
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/demo.json")).unwrap()).unwrap();
    assert!(dir.path().join("data/pix-host.db").exists(), "SQLite under ./data");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/demo.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "demo tokens are private to the owner");
    }
    let accounts = demo["sandbox"]["accounts"].as_array().expect("the simulated institution is in demo.json");
    assert!(!accounts.is_empty());
    assert!(demo["sandbox"]["otherParticipant"].is_object());
    let client = reqwest::Client::new();
    let token = demo["tenantToken"].as_str().unwrap();
    let list = client.get(format!("{url}/v1/webhooks/endpoints")).bearer_auth(token).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let ready = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let tenants = client
        .get(format!("{url}/v1/admin/tenants"))
        .bearer_auth(demo["adminToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tenants.json::<serde_json::Value>().await.unwrap()[0]["ispb"], "12345678");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join("data/secret.key");
        let mode = std::fs::metadata(&key).expect("demo mode generates the sealing key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the sealing key is private to the owner");
    }
    let key = std::fs::read_to_string(dir.path().join("data/secret.key")).unwrap();
    assert!(terminate(child).success(), "graceful exit on SIGTERM");

    // A restart keeps the same demo and its tokens.
    let (child, url) = start(dir.path());
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/demo.json")).unwrap()).unwrap();
    assert_eq!(again["tenantToken"], demo["tenantToken"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("data/secret.key")).unwrap(), key, "the key is kept");
    let list = client.get(format!("{url}/v1/webhooks/endpoints")).bearer_auth(token).send().await.unwrap();
    assert_eq!(list.status(), 200);
    assert!(terminate(child).success());
}

#[test]
fn a_bad_setting_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = pix_host(dir.path()).env("PIX_WORKERS__CONCURRENCY", "0").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("workers.concurrency"), "{stderr}");

    let out = pix_host(dir.path()).env("PIX_SERVER__LISTEN", "nowhere").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));

    let out = pix_host(dir.path()).args(["--config", "missing.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn migrate_and_admin_token_work_on_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = pix_host(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied (sqlite)"));
    let out = pix_host(dir.path()).arg("admin-token").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).trim().starts_with("pixadm_"));
}

/// Starts `pix-host sandbox --base-port <base>` and returns it with the demo JSON it printed, or
/// its stderr as the error when it exited first (another test may hold one of the four ports).
fn start_sandbox(dir: &std::path::Path, base: u16) -> Result<(Child, serde_json::Value), String> {
    let mut child = pix_host(dir).args(["sandbox", "--base-port", &base.to_string()]).spawn().unwrap();
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line == "}";
        printed.push_str(&line);
        if done {
            return Ok((child, serde_json::from_str(&printed).unwrap()));
        }
    }
    let output = child.wait_with_output().unwrap();
    Err(String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_run_standalone() {
    let dir = tempfile::tempdir().unwrap();
    // The base port is free when picked, but the three after it may belong to a parallel test:
    // a bind failure is retried on another base, any other failure is reported.
    let mut attempt = 0;
    let (mut child, demo, base) = loop {
        let base = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        match start_sandbox(dir.path(), base) {
            Ok((child, demo)) => break (child, demo, base),
            Err(stderr) if attempt < 5 && stderr.contains("in use") => attempt += 1,
            Err(stderr) => panic!("pix-host sandbox exited before printing its URLs:\n{stderr}"),
        }
    };
    let control = demo["controlUrl"].as_str().unwrap().to_owned();
    assert!(control.ends_with(&format!(":{}", base + 3)), "{control}");
    let health = reqwest::get(format!("{control}/_control/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("pix-host sandbox did not stop on SIGINT");
}

/// The embedded demo's outbound exception is exactly the simulated PSP's socket: its dynamic QR
/// codes decode, while a location on another loopback port (here the simulators' control API)
/// gets the generic refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fetches_its_simulated_qr_codes_and_nothing_else_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = start(dir.path());
    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/demo.json")).unwrap()).unwrap();
    let client = reqwest::Client::new();
    let control = demo["sandbox"]["controlUrl"].as_str().unwrap().to_owned();
    let charge: serde_json::Value = client
        .post(format!("{control}/_control/qr/charges"))
        .json(&serde_json::json!({"type": "IMMEDIATE", "key": "ana.pereira@example.com",
            "merchantName": "Ana Pereira", "merchantCity": "SAO PAULO", "amount": "12.34"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = demo["tenantToken"].as_str().unwrap();
    let account = demo["sandbox"]["accounts"][0]["accountId"].as_str().unwrap();
    let decode = |emv: String| {
        client
            .post(format!("{url}/v1/qrcodes/decode"))
            .bearer_auth(token)
            .header("X-Account-Id", account)
            .json(&serde_json::json!({"emv": emv}))
            .send()
    };
    let decoded = decode(charge["emv"].as_str().unwrap().to_owned()).await.unwrap();
    assert_eq!(decoded.status(), 200);
    assert_eq!(decoded.json::<serde_json::Value>().await.unwrap()["amount"], "12.34");

    let elsewhere = control.trim_start_matches("http://").to_owned() + "/qr/v2/cob/0123456789abcdef";
    let emv = pix_core::brcode::BrCode::dynamic_code(elsewhere, "Ana Pereira", "SAO PAULO").build().unwrap().encode();
    let refused = decode(emv).await.unwrap();
    assert_eq!(refused.status(), 502);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "PIX-0302");
    assert_eq!(body["message"], pix_server::outbound::TENANT_MESSAGE);
    assert!(terminate(child).success());
}

/// Real upstreams (unreachable here: nothing is called at start-up), inbound webhooks by mTLS.
fn production_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let file = dir.join("pix.toml");
    std::fs::write(
        &file,
        format!(
            "{extra}\n\
             [btg_webhook.mtls]\nlisten = \"127.0.0.1:0\"\ncert_file = \"{d}/cert.pem\"\nkey_file = \"{d}/key.pem\"\nclient_ca_file = \"{d}/ca.pem\"\n\
             [integrations.midaz]\nonboarding_url = \"http://127.0.0.1:9\"\norganization_id = \"o\"\nledger_id = \"l\"\n\
             [integrations.crm]\nbase_url = \"http://127.0.0.1:9\"\norganization_id = \"o\"\nledger_id = \"l\"\n\
             [integrations.btg]\nbase_url = \"http://127.0.0.1:9\"\nclient_id = \"c\"\nclient_secret = \"s\"\nispb = \"12345678\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    // Validation only checks that the mTLS files exist; the workers role starts no listener.
    for name in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::write(dir.join(name), "-").unwrap();
    }
    file
}

const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn start_up_refuses_demo_with_integrations_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "demo = true");
    let out =
        pix_host(dir.path()).arg("--config").arg(&config).env("PIX_SECURITY__SECRET_KEY", SECRET_KEY).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("demo") && stderr.contains("integrations"), "{stderr}");
    assert!(!dir.path().join("data/demo.json").exists());

    // Outside demo the key sealing secrets at rest is required, and named.
    let config = production_config(dir.path(), "");
    let out = pix_host(dir.path()).arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("security.secret_key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_demo_no_token_is_printed_and_admin_token_is_the_way_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = production_config(dir.path(), "");
    // The workers role: the same start-up (migrations, demo decision) without the mTLS listener.
    let mut child = pix_host(dir.path())
        .args(["--role", "workers", "--config"])
        .arg(&config)
        .env("PIX_SECURITY__SECRET_KEY", SECRET_KEY)
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut url = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("pix-host listening on ") {
            url = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no URL printed; stdout was:\n{printed}"));
    assert!(!printed.contains("pixadm_") && !printed.contains("pix_"), "a token was printed:\n{printed}");
    assert!(!printed.to_lowercase().contains("token"), "{printed}");
    assert!(!dir.path().join("data/demo.json").exists(), "no demo file");
    assert!(!dir.path().join("data/secret.key").exists(), "the configured key is used, none generated");
    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "ready"}));
    // No tenant was seeded.
    let out = pix_host(dir.path())
        .arg("--config")
        .arg(&config)
        .env("PIX_SECURITY__SECRET_KEY", SECRET_KEY)
        .arg("admin-token")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(admin.starts_with("pixadm_"));
    assert!(terminate(child).success());
    let store = pix_store::Store::connect(
        &format!("sqlite://{}", dir.path().join("data/pix-host.db").display()),
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(store.list_tenants().await.unwrap().is_empty(), "no demo tenant was seeded");
}
