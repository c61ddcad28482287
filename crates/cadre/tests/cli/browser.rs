//! The web UI in a real browser: Debian's `chromium`, driven over WebDriver
//! by `chromedriver`, with scripts on, against `cadre serve`. Skipped, with
//! the reason printed, where no driver is installed (`.ci/run` installs
//! one and sets `CADRE_REQUIRE_BROWSER`, which turns the skip into a
//! failure). With `CADRE_SCREENSHOTS=DIR` each screen is saved there as a PNG
//! (`docs/screenshots/` holds the ones the README shows).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cadre_config::testing::browser;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::process::{Running, cadre};

/// How long a page may take to show what a test waits for. A wait, not a
/// timing assertion: the engine runs on its own schedule.
const PATIENCE: Duration = Duration::from_secs(30);

/// What assistive technology would miss on a page: a field without a
/// label, an image without alt text, a button or link without a name, an
/// unnamed chart, a page without a language or without exactly one h1,
/// repeated ids (which break label and ARIA references) — and anything the
/// page fetched from another host.
const AUDIT: &str = r#"
const problems = [];
const named = (el) => (el.getAttribute('aria-label') || '').trim() || el.getAttribute('aria-labelledby')
  || (el.labels && el.labels.length) || (el.getAttribute('title') || '').trim();
if (!document.documentElement.lang) problems.push('no lang on <html>');
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(`${h1} h1 headings`);
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  if (!named(el)) problems.push(`unlabelled ${el.tagName.toLowerCase()} name=${el.name}`);
}
for (const img of document.querySelectorAll('img:not([alt])')) problems.push(`img without alt: ${img.src}`);
for (const el of document.querySelectorAll('button, a[href]')) {
  if (!el.textContent.trim() && !named(el)) problems.push(`nameless ${el.outerHTML.slice(0, 100)}`);
}
for (const svg of document.querySelectorAll('svg')) {
  if (!svg.getAttribute('aria-label') && svg.getAttribute('aria-hidden') !== 'true'
      && !svg.closest('[aria-label], figure') && !svg.querySelector('title')) problems.push('unnamed svg');
}
for (const r of performance.getEntriesByType('resource')) {
  if (!r.name.startsWith(location.origin)) problems.push(`fetched from another host: ${r.name}`);
}
const ids = new Set();
for (const el of document.querySelectorAll('[id]')) {
  if (ids.has(el.id)) problems.push(`repeated id ${el.id}`);
  ids.add(el.id);
}
return problems;
"#;

/// A `chromedriver` of our own, on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
}

impl Driver {
    /// Starts the driver, or says why the browser tests cannot run here.
    fn start() -> Result<Driver, String> {
        let driver = browser::chromedriver().ok_or(
            "no chromedriver (apt-get install chromium chromium-driver, or set CADRE_CHROMEDRIVER)",
        )?;
        let chromium = browser::chromium()
            .ok_or("no chromium (apt-get install chromium, or set CADRE_CHROMIUM)")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{} would not start: {e}", driver.display()))?;
        let mut this = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                let _ = this.child.kill();
                return Err("chromedriver did not listen within 20 s".into());
            }
            if let Ok(Some(status)) = this.child.try_wait() {
                return Err(format!("chromedriver exited: {status}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(this)
    }

    /// A new browser window with its own cookies: one person.
    async fn person(&self, base: &str, shots: &Shots) -> Person {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": self.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--force-prefers-reduced-motion"]
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session");
        Person {
            client,
            base: base.to_owned(),
            shots: shots.clone(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go, if anywhere.
#[derive(Clone)]
struct Shots(Option<PathBuf>);

impl Shots {
    fn from_env() -> Shots {
        let dir = browser::screenshots();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).expect("the screenshot folder");
        }
        Shots(dir)
    }
}

/// One person at one browser window.
struct Person {
    client: Client,
    base: String,
    shots: Shots,
}

impl Person {
    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Types into the field `css` (after clearing it).
    async fn fill(&self, css: &str, text: &str) {
        self.act(css, |field| async move {
            field.clear().await?;
            field.send_keys(text).await
        })
        .await;
    }

    async fn click(&self, css: &str) {
        self.act(css, |element| async move { element.click().await })
            .await;
    }

    /// Finds `css` and does `what` with it. A live page redraws its regions
    /// as work happens, so an element found a moment ago may have been
    /// replaced: then it is found again, as a person's next try would.
    async fn act<F, Fut>(&self, css: &str, what: F)
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let mut tries = 0;
        loop {
            let at = self.path().await;
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css} on {at}: {e}"));
            match what(element).await {
                Ok(()) => return,
                Err(e) if e.to_string().contains("stale element") && tries < 5 => tries += 1,
                Err(e) => panic!("{css} on {at}: {e}"),
            }
        }
    }

    /// What the page shows, as a person reads it.
    async fn text(&self) -> String {
        self.client
            .execute("return document.body.innerText", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A property of the element `css` as it is now (read in one step, so
    /// a live redraw cannot come in between).
    async fn read(&self, css: &str, property: &str) -> String {
        let value = self
            .client
            .execute(
                "const el = document.querySelector(arguments[0]); return el ? String(el[arguments[1]]) : null",
                vec![json!(css), json!(property)],
            )
            .await
            .unwrap();
        match value.as_str() {
            Some(v) => v.to_owned(),
            None => panic!("no {css} on {}", self.path().await),
        }
    }

    /// Waits, without reloading, until the page shows `needle`: what
    /// appears does so by the page's own live updates.
    async fn sees(&self, needle: &str) {
        let started = Instant::now();
        loop {
            if self.text().await.contains(needle) {
                return;
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "{} never showed {needle:?}; it shows:\n{}",
                    self.path().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the window is at a path containing `part` (a form's
    /// redirect); returns the path.
    async fn arrives(&self, part: &str) -> String {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if path.contains(part) {
                return path;
            }
            assert!(started.elapsed() < PATIENCE, "never left {path} for {part}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits, without reloading, for an element.
    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let started = Instant::now();
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                return found;
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "{css} never appeared on {}; it shows:\n{}",
                    self.path().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Checks the screen for what assistive technology would miss, and
    /// saves it as `NAME.png` when screenshots are asked for.
    async fn screen(&self, name: &str) {
        let problems = self.client.execute(AUDIT, vec![]).await.unwrap();
        assert_eq!(
            problems,
            json!([]),
            "accessibility problems on {} ({name})",
            self.path().await
        );
        let Some(dir) = &self.shots.0 else { return };
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Signs up through the page; ends on "create an organization".
    async fn sign_up(&self, name: &str, email: &str) {
        self.go("/signup").await;
        self.fill("input[name=name]", name).await;
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", "correct horse battery")
            .await;
        self.click("button[type=submit]").await;
        self.sees("organization").await;
    }

    /// Creates an org through the page; returns its id.
    async fn create_org(&self, name: &str) -> String {
        self.go("/orgs/new").await;
        self.fill("input[name=name]", name).await;
        self.click("button[type=submit]").await;
        self.sees("Command center").await;
        let path = self.path().await;
        path.trim_start_matches("/o/").to_owned()
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// A local service an agent's `http_request` calls (the instance allows
/// it by `CADRE_EGRESS_ALLOW`); it counts what reaches it.
async fn pricing_service() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().route(
        "/pricing",
        axum::routing::get(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                axum::Json(
                    json!({"Notion": "$10/month", "Obsidian": "free", "Bear": "$2.99/month"}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The test's own peer, not Cadre's background work: it ends with the test.
    #[expect(
        clippy::disallowed_methods,
        reason = "a test's peer server, not Cadre's work"
    )]
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr.to_string(), hits)
}

/// The research agent's model: fetch the prices (a risky action, so it
/// waits for approval), write the output, finish. Tokens are reported so
/// the run has a cost.
fn research_script(service: &str) -> String {
    let usage = json!({"inputTokens": 1200, "outputTokens": 300});
    json!([
        { "text": "", "usage": usage, "toolCalls": [{ "id": "c1", "name": "http_request",
          "arguments": { "method": "GET", "url": format!("http://{service}/pricing") } }] },
        { "text": "", "usage": usage, "toolCalls": [{ "id": "c2", "name": "add_output",
          "arguments": { "label": "summary", "content": "Obsidian is free, Bear costs $2.99 a month and Notion $10." } }] },
        { "text": "Done: the prices are in the task's output.", "usage": usage }
    ])
    .to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn in_a_real_browser_a_person_goes_from_sign_up_to_an_approved_agents_output() {
    let driver = match Driver::start() {
        Ok(driver) => driver,
        Err(reason) if browser::required() => {
            panic!("CADRE_REQUIRE_BROWSER is set but the browser cannot run: {reason}")
        }
        Err(reason) => {
            println!("SKIPPED: the browser tests need Chromium and its driver: {reason}");
            return;
        }
    };
    let shots = Shots::from_env();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (service, hits) = rt.block_on(pricing_service());
    let mut cmd = cadre(&dir.path().join("data"));
    cmd.env("CADRE_EGRESS_ALLOW", &service);
    let server = Running::serve(cmd);
    rt.block_on(async {
        let ada = driver.person(&server.base_url, &shots).await;
        ada.sign_up("Ada Lovelace", "ada@example.com").await;
        // The audit finds what it looks for: a field without a label.
        ada.client
            .execute("document.body.append(document.createElement('textarea'))", vec![])
            .await
            .unwrap();
        let found = ada.client.execute(AUDIT, vec![]).await.unwrap();
        assert!(found.to_string().contains("unlabelled textarea"), "{found}");
        let org = ada.create_org("Acme Research").await;
        ada.screen("01-command-center-empty").await;

        // Settings → Models: the chat model and the research agent's model.
        ada.go(&format!("/o/{org}/settings/models")).await;
        let models = [
            ("assistant", json!([{ "text": "Hello! Research Agent can look into that; ask it through a task.",
                                   "usage": {"inputTokens": 200, "outputTokens": 20} }]).to_string()),
            ("researcher-model", research_script(&service)),
        ];
        for (name, script) in &models {
            ada.fill("form.stack input[name=name]", name).await;
            ada.client
                .find(Locator::Css("select[name=provider]"))
                .await
                .unwrap()
                .select_by_value("scripted")
                .await
                .unwrap();
            ada.fill("input[name=input_price_per_m_tok]", "2.5").await;
            ada.fill("input[name=output_price_per_m_tok]", "10").await;
            ada.fill("textarea[name=script]", script).await;
            ada.click("form.stack button.primary").await;
            ada.sees(name).await;
        }
        ada.screen("08-settings-models").await;

        // Agents → New: the Research Agent template, on that model.
        ada.go(&format!("/o/{org}/agents/new")).await;
        ada.fill(
            "form[aria-label='Research Agent'] input[name=model]",
            "researcher-model",
        )
        .await;
        ada.screen("03-agent-templates").await;
        ada.click("form[aria-label='Research Agent'] button[type=submit]")
            .await;
        ada.sees("Definition v1").await;
        let tools = ada.read("input[name=tools]", "value").await;
        assert!(tools.contains("http_request"), "the template's tools: {tools}");
        ada.screen("04-agent").await;

        // Tasks → New, then run it with the agent.
        ada.go(&format!("/o/{org}/tasks")).await;
        ada.fill("input[name=title]", "Compare note-taking apps' pricing")
            .await;
        ada.click("section[aria-labelledby=new-task] button.primary").await;
        ada.sees("Run with an agent").await;
        ada.click("form[action$='/run'] button[type=submit]").await;

        // The glass box: steps appear as they happen, then the pending action.
        let execution_path = ada.arrives("/executions/").await;
        ada.wait_for("article.pending-approval").await;
        let shown = ada.read("article.pending-approval", "innerText").await;
        assert!(shown.contains("http_request") && shown.contains("/pricing"), "{shown}");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing is fetched before approval");
        ada.screen("05-execution-waiting-for-approval").await;

        // Approve it inline; the rest happens live on the same page.
        ada.click("article.pending-approval button.primary").await;
        ada.sees("completed").await;
        ada.sees("Obsidian is free").await;
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the approved request ran once");
        let cost = ada.read("#exec-cost", "innerText").await;
        assert!(cost.starts_with('$') && cost != "$0.00", "the run has a cost: {cost}");
        assert!(ada.text().await.contains("verified"), "the trace verifies");
        ada.screen("06-execution-glass-box").await;

        // The task shows the output.
        ada.click(".crumbs a[href*='/tasks/']").await;
        ada.sees("Obsidian is free, Bear costs $2.99 a month and Notion $10.")
            .await;
        ada.screen("07-task").await;

        // Chat: the answer streams into the page.
        ada.go(&format!("/o/{org}/chat")).await;
        ada.fill("#message", "Which note app is cheapest?").await;
        ada.click("#composer button[type=submit]").await;
        ada.sees("Research Agent can look into that").await;
        ada.wait_for(".chat-sessions a[aria-current='page']").await;
        assert!(ada.path().await.starts_with(&format!("/o/{org}/chat/")));
        ada.screen("09-chat").await;

        ada.go(&format!("/o/{org}")).await;
        ada.sees("Spend today").await;
        ada.screen("02-command-center").await;
        ada.go(&format!("/o/{org}/approvals")).await;
        ada.sees("Recently decided").await;
        ada.screen("10-approvals").await;

        // Settings → Members: invite Vic as a viewer.
        ada.go(&format!("/o/{org}/settings/members")).await;
        ada.fill("input[name=email]", "vic@example.com").await;
        ada.client
            .find(Locator::Css("form.stack select[name=role]"))
            .await
            .unwrap()
            .select_by_value("viewer")
            .await
            .unwrap();
        ada.click("form.stack button.primary").await;
        ada.wait_for("#invite-link").await;
        let link = ada.read("#invite-link", "value").await;
        let invitation = link[link.find("/invitations/").unwrap()..].to_owned();
        ada.screen("11-settings-members").await;
        for (tab, name) in [
            ("budgets", "12-settings-budgets"),
            ("audit", "13-settings-audit"),
        ] {
            ada.go(&format!("/o/{org}/settings/{tab}")).await;
            ada.screen(name).await;
        }
        assert!(ada.text().await.contains("verifies"), "the audit chain holds");

        // Vic signs up, has an org of his own with a secret task, and joins Acme.
        let vic = driver.person(&server.base_url, &shots).await;
        vic.sign_up("Vic Viewer", "vic@example.com").await;
        let vic_org = vic.create_org("Vic's Co").await;
        vic.go(&format!("/o/{vic_org}/tasks")).await;
        vic.fill("input[name=title]", "Secret plan").await;
        vic.click("section[aria-labelledby=new-task] button.primary").await;
        vic.sees("Run with an agent").await;
        let secret_task = vic.path().await;
        vic.go(&invitation).await;
        vic.click("button[type=submit]").await;
        vic.sees("Acme Research").await;

        // A viewer sees the work and no control to change it.
        vic.go(&format!("/o/{org}/tasks")).await;
        vic.sees("Compare note-taking apps' pricing").await;
        assert!(!vic.text().await.contains("Secret plan"), "org A's tree shows only org A");
        assert_eq!(vic.count("#new-task").await, 0);
        vic.go(&execution_path).await;
        vic.sees("completed").await;
        assert_eq!(
            vic.count("form[action*='/pause'], form[action*='/cancel'], form[action*='/fork']")
                .await,
            0,
            "no execution controls for a viewer"
        );
        vic.go(&format!("/o/{org}/agents")).await;
        vic.sees("Research Agent").await;
        assert_eq!(vic.count("a[href$='/agents/new']").await, 0);
        vic.go(&format!("/o/{org}/chat")).await;
        assert_eq!(vic.count("#composer").await, 0);

        // Ada never sees Vic's org: not its task, not its pages.
        ada.go(&secret_task).await;
        ada.sees("Not found").await;
        ada.go(&format!("/o/{vic_org}")).await;
        ada.sees("Not found").await;
        ada.go(&format!("/o/{org}/tasks")).await;
        assert!(!ada.text().await.contains("Secret plan"));

        // The dark theme, chosen by the toggle and kept across pages.
        ada.go(&format!("/o/{org}")).await;
        ada.click("#theme-toggle").await;
        ada.go(&format!("/o/{org}/tasks")).await;
        let theme = ada
            .client
            .execute("return document.documentElement.dataset.theme", vec![])
            .await
            .unwrap();
        assert_eq!(theme, json!("dark"));
        ada.screen("15-dark-tasks").await;

        // The phone-sized layout, for the README.
        ada.client.set_window_size(390, 844).await.unwrap();
        ada.go(&execution_path).await;
        ada.screen("14-phone-execution").await;

        vic.close().await;
        ada.close().await;
    });
}
