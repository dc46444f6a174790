// The browser test's driver. Serves the single-page app (spa/index.html) on its own origin,
// http://localhost:<port>, then drives Debian's Chromium through playwright-core: the user
// clicks "Sign in", MSAL.js sends the browser to the emulator's /authorize, the user signs in
// on the emulator's page, and back in the app MSAL redeems the code (PKCE, cross-origin) and
// the app reads Graph with CORS. Prints what the page shows as JSON, saves a screenshot.
//
// node signin.mjs --emulator https://localhost:8443 --ca ca.pem --tenant T --client C
//                 --user U --password P --screenshot out.png [--chromium /usr/bin/chromium]

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
}
for (const name of ["emulator", "ca", "tenant", "client", "user", "password", "screenshot"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const emulator = new URL(args.emulator);

// The emulator's CA, trusted as the README tells a user to trust it for Chromium on Linux: in
// an NSS database under $HOME (a fresh one for the run), with Debian's certutil.
const home = fs.mkdtempSync(path.join(os.tmpdir(), "mtd-browser-"));
const nssdb = `sql:${path.join(home, ".pki/nssdb")}`;
fs.mkdirSync(path.join(home, ".pki/nssdb"), { recursive: true });
execFileSync("certutil", ["-N", "--empty-password", "-d", nssdb]);
execFileSync("certutil", ["-A", "-d", nssdb, "-t", "C,,", "-n", "intune-mtd-emulator", "-i", args.ca]);

const files = {
  "/": ["text/html", fs.readFileSync(path.join(here, "spa/index.html"))],
  "/msal-browser.min.js": [
    "text/javascript",
    fs.readFileSync(path.join(here, "node_modules/@azure/msal-browser/lib/msal-browser.min.js")),
  ],
  "/config.js": [
    "text/javascript",
    `window.EMULATOR = ${JSON.stringify({ emulator: emulator.origin, tenant: args.tenant, clientId: args.client })};`,
  ],
};
const server = http.createServer((req, res) => {
  const file = files[new URL(req.url, "http://localhost").pathname];
  if (!file) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const app = `http://localhost:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: args.chromium || "/usr/bin/chromium",
  headless: true,
  // Root has no sandbox (CI runs as root).
  args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  env: { ...process.env, HOME: home },
});
const log = [];
let outcome;
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
  page.on("console", (m) => log.push(`console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`page error: ${e}`));
  await page.goto(app);
  await page.click("#sign-in[data-ready]");
  // The emulator's sign-in page.
  await page.waitForURL((u) => u.pathname.endsWith("/oauth2/v2.0/authorize"));
  const signInPage = { url: page.url().split("?")[0], title: await page.title() };
  await page.fill("input[name=login]", args.user);
  await page.fill("input[name=passwd]", args.password);
  await page.click("button#sign-in");
  // Back in the app.
  await page.waitForSelector("#status[data-done]", { timeout: 20000 });
  outcome = {
    signInPage,
    app: page.url(),
    status: await page.textContent("#status"),
    rows: await page.$$eval("#connectors tbody tr", (trs) =>
      trs.map((tr) => Array.from(tr.cells, (td) => td.textContent)),
    ),
  };
  await page.screenshot({ path: args.screenshot, fullPage: true });
} catch (e) {
  outcome = { error: String(e), log };
} finally {
  await browser.close();
  server.close();
  fs.rmSync(home, { recursive: true, force: true });
}
console.log(JSON.stringify(outcome));
process.exit(outcome.error ? 1 : 0);
