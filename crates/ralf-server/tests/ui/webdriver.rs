//! Just enough of the W3C WebDriver protocol to drive Debian's chromium through chromedriver:
//! a session, navigation, finding, clicking and typing, running a script, screenshots. Plain
//! JSON over HTTP with the test's own HTTP client (no WebDriver crate needed).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key under which WebDriver hands over an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one headless browser session in it; both end when dropped.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    /// How long a wait for something on a page lasts.
    pub patience: Duration,
}

#[derive(Clone)]
pub struct Element(Value);

impl Browser {
    pub async fn start() -> Browser {
        let port = ralf_testkit::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=en-US"]
            }
        }}});
        let reply: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {reply}"))
            .to_string();
        Browser {
            driver,
            http,
            session: format!("{base}/session/{session}"),
            patience: Duration::from_secs(60),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        if let Some(error) = reply["value"]["error"].as_str() {
            panic!("webdriver {path}: {error}: {}", reply["value"]["message"]);
        }
        reply["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Makes the pages believe the system prefers a dark (or light) colour scheme.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [{"name": "prefers-color-scheme", "value": scheme}]}})),
        )
        .await;
    }

    /// Runs `script` (a function body; its arguments are `arguments[0..]`) in the page.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    pub async fn path(&self) -> String {
        self.script("return location.pathname", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `script` returns something other than `null`/`false`, and returns it.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + self.patience;
        loop {
            let value = self.script(script, args.clone()).await;
            if !(value.is_null() || value == json!(false)) {
                return value;
            }
            if Instant::now() > deadline {
                let body = self
                    .script("return document.body.innerText", json!([]))
                    .await;
                panic!(
                    "never saw {what}; the page says:\n{}",
                    body.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first visible element matching `css` whose text contains `text`, once there is one.
    pub async fn find(&self, css: &str, text: &str) -> Element {
        let value = self
            .wait_for(
                &format!("{css} containing {text:?}"),
                "return [...document.querySelectorAll(arguments[0])].find(e => e.offsetParent !== null && e.textContent.includes(arguments[1])) || null",
                json!([css, text]),
            )
            .await;
        Element(value)
    }

    /// Waits until the page shows `text` anywhere.
    pub async fn sees(&self, text: &str) {
        self.wait_for(
            &format!("the text {text:?}"),
            "return document.body.innerText.includes(arguments[0])",
            json!([text]),
        )
        .await;
    }

    fn element_path(element: &Element, rest: &str) -> String {
        format!(
            "/element/{}{rest}",
            element.0[ELEMENT].as_str().unwrap_or_default()
        )
    }

    pub async fn click(&self, css: &str, text: &str) {
        let element = self.find(css, text).await;
        self.call(
            reqwest::Method::POST,
            &Self::element_path(&element, "/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types `value` into the form control labelled `label` (emptied first); a select gets
    /// the option whose text contains `value`.
    pub async fn fill(&self, label: &str, value: &str) {
        let control = self
            .wait_for(
                &format!("a field labelled {label:?}"),
                "const l = [...document.querySelectorAll('label')].find(l => l.offsetParent !== null && l.textContent.trim().startsWith(arguments[0])); return l ? l.control : null",
                json!([label]),
            )
            .await;
        let element = Element(control.clone());
        let is_select = self
            .script("return arguments[0].tagName === 'SELECT'", json!([control]))
            .await
            == json!(true);
        if is_select {
            let chosen = self
                .script(
                    "const s = arguments[0]; const o = [...s.options].find(o => o.textContent.includes(arguments[1])); if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true})); return true",
                    json!([control, value]),
                )
                .await;
            assert_eq!(chosen, json!(true), "{label}: no option {value:?}");
            return;
        }
        self.call(
            reqwest::Method::POST,
            &Self::element_path(&element, "/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &Self::element_path(&element, "/value"),
            Some(json!({"text": value})),
        )
        .await;
    }

    /// Types `text` into the first visible element matching `css` (`\u{E007}` is Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css, "").await;
        self.call(
            reqwest::Method::POST,
            &Self::element_path(&element, "/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Saves a PNG of the window to `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        std::fs::create_dir_all(dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
