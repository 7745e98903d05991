// What the browser tests share: Debian's Chromium through Playwright, and
// the check every page gets (axe-core finds no serious or critical
// violation, the console no CSP violation or script error; a full-page
// screenshot is saved).
import { chromium } from "playwright-core";
import { readFileSync, readdirSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const base = process.env.BASE_URL;
export const shots = process.env.SCREENSHOTS || "screenshots";
mkdirSync(shots, { recursive: true });

export const failures = [];
export const fail = (what) => failures.push(what);

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// A page in a context of this size, its console watched.
export async function open(browser, width, height, locale = "en-GB") {
  const context = await browser.newContext({ viewport: { width, height }, locale });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // The page's own status (a 404 page, a refused form) is asserted by
    // the tests where it matters; anything else failing to load is not.
    const own = m.text().startsWith("Failed to load resource") && m.location().url === page.url();
    if (!own) problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  return { context, page, problems };
}

export async function checkPage(page, name, problems) {
  // axe-core through the DevTools protocol: the page's CSP allows no
  // script of its own, and none is added to it.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] }));
  for (const v of result.violations) {
    if (v.impact === "serious" || v.impact === "critical") {
      fail(`${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
    }
  }
  // Nothing wider than the window at phone width: a page scrolls down,
  // not sideways (tables scroll inside their own region).
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) fail(`${name}: the page is ${overflow}px wider than the window`);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  for (const p of problems.splice(0)) fail(`${name}: ${p}`);
}

// The text of the main part of the page.
export const mainText = async (page) => (await page.locator("main").textContent()) || "";

// The link in the newest e-mail to `to` whose address contains `path`,
// waited for (the collector sends from its outbox) up to 30 s.
export async function mailedLink(maildir, to, path) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const sub of ["new", "cur"]) {
      let names = [];
      try { names = readdirSync(`${maildir}/${sub}`); } catch { continue; }
      for (const n of names.sort().reverse()) {
        const text = readFileSync(`${maildir}/${sub}/${n}`, "utf8")
          .replace(/=\r?\n/g, "").replace(/=3D/g, "=");
        if (!text.includes(`To: ${to}`)) continue;
        const m = text.match(new RegExp(`https?://[^\\s"<>]*${path.replace(/[?]/g, "\\?")}[^\\s"<>]*token=[0-9a-fA-F]+`));
        if (m) return m[0];
      }
    }
    if (Date.now() > deadline) throw new Error(`no e-mail to ${to} with a ${path} link`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The link's path and query, on the portal under test (the e-mail names
// the configured public address).
export const onPortal = (link) => { const u = new URL(link); return `${base}${u.pathname}${u.search}`; };

export function finish(what) {
  if (failures.length) {
    console.error(failures.join("\n"));
    process.exit(1);
  }
  console.log(`${what}: every page checked, no failures`);
}
