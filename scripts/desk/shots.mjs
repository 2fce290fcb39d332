// Drives Chromium over a running demo site: logs in, takes the README's screenshots of the
// queue (1280 and 390 px) and the dashboard, and renders each kind of email's HTML part to PNG.
// Usage: node shots.mjs BASE_URL EMAIL PASSWORD OUT_DIR [EMAIL_PREVIEW_DIR]
import { chromium } from "playwright-core";
import { readdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, email, password, out, mailDir] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});

async function session(width, height, scheme = "light") {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme });
  const page = await context.newPage();
  await page.goto(base + "/admin/login");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("form[action='/admin/login'] button")]);
  return page;
}

const wide = await session(1280, 900);
// The pending queue just after an approval: the notice with Undo and View at the top.
await wide.goto(base + "/admin/comments");
await Promise.all([wide.waitForNavigation(), wide.click("tr[data-comment] button.action-approve")]);
await wide.screenshot({ path: join(out, "queue-1280.png") });
await wide.goto(base + "/admin");
await wide.screenshot({ path: join(out, "dashboard.png"), fullPage: true });
const phone = await session(390, 844);
await phone.goto(base + "/admin/comments");
await phone.screenshot({ path: join(out, "queue-390.png") });

if (mailDir) {
  // Each kind of email's HTML part, as `cargo run --example email_previews` wrote it, in light
  // and dark mode.
  for (const scheme of ["light", "dark"]) {
    const page = await (await browser.newContext({ viewport: { width: 680, height: 600 }, colorScheme: scheme })).newPage();
    for (const name of readdirSync(mailDir).filter((n) => n.endsWith(".html")).sort()) {
      await page.goto("file://" + join(mailDir, name));
      const suffix = scheme === "dark" ? "-dark" : "";
      await page.screenshot({ path: join(out, `email-${name.replace(/\.html$/, "")}${suffix}.png`), fullPage: true });
    }
  }
}
await browser.close();
