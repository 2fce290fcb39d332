// Checks the admin pages of a running demo site: saves each page's HTML for vnu and runs
// axe-core in Chromium on it (as the admin, and the queue also as a moderator). Then the
// email-link pages: the confirm page, the result page and its Undo page.
// Usage: node validate.mjs BASE_URL PASSWORD HTML_OUT_DIR MAIL_DIR
import { chromium } from "playwright-core";
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";

const [base, password, out, mailDir] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
let failures = 0;

async function check(page, name, scheme) {
  writeFileSync(join(out, `${name}.html`), await page.content());
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
  }));
  const bad = result.violations;
  failures += bad.length;
  console.log(`${bad.length === 0 ? "ok  " : "FAIL"} axe ${scheme} ${name}` +
    bad.map((v) => `\n     ${v.id}: ${v.help} (${v.nodes.length}) ${v.nodes.slice(0, 2).map((n) => n.target.join(" ")).join(" | ")}`).join(""));
}

async function session(email, scheme) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: scheme, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(base + "/admin/login");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("form[action='/admin/login'] button")]);
  return page;
}

const adminPaths = {
  dashboard: "/admin", "queue-pending": "/admin/comments", "queue-approved": "/admin/comments?status=approved",
  "queue-spam": "/admin/comments?status=spam", "queue-trash": "/admin/comments?status=trash",
  "queue-all": "/admin/comments?status=all", "editor-new": "/admin/posts/new", "editor-edit": "/admin/posts/1/edit",
  posts: "/admin/posts", settings: "/admin/settings", users: "/admin/users", blocks: "/admin/blocks",
  mail: "/admin/mail", audit: "/admin/audit", profile: "/admin/profile", privacy: "/admin/privacy",
  "comment-edit": "/admin/comments/5/edit",
};
for (const scheme of ["light", "dark"]) {
  const admin = await session("ada@example.com", scheme);
  for (const [name, path] of Object.entries(adminPaths)) {
    await admin.goto(base + path);
    await check(admin, name, scheme);
  }
  // The notice after an action, with Undo and View.
  await admin.goto(base + "/admin/comments");
  await Promise.all([admin.waitForNavigation(), admin.click("tr[data-comment] button.action-spam")]);
  await check(admin, "queue-with-notice", scheme);
  const moderator = await session("lin@example.com", scheme);
  await moderator.goto(base + "/admin/comments");
  await check(moderator, "queue-as-moderator", scheme);
  await moderator.goto(base + "/admin");
  await check(moderator, "dashboard-as-moderator", scheme);
}

// A held comment, through the public form, so the moderators get an email with links.
const plain = await (await browser.newContext({ bypassCSP: true })).newPage();
await plain.goto(base + "/posts/post-1");
await plain.waitForTimeout(3500); // the form token is valid from 3 seconds after the page
await plain.fill("#comment", "A comment to moderate from the email.\nSecond line.");
await plain.fill("#author", "Email Reader");
await plain.fill("#email", "email-reader@example.com");
await Promise.all([plain.waitForNavigation(), plain.click(".comment-form button[type=submit]")]);
let link = null;
for (let i = 0; i < 50 && !link; i++) {
  for (const name of readdirSync(mailDir)) {
    const text = readFileSync(join(mailDir, name), "utf8").replace(/=\r?\n/g, "");
    const m = text.match(/Approve it: (\S+)/);
    if (m) { link = m[1]; }
  }
  if (!link) { await plain.waitForTimeout(100); }
}
if (link) {
  for (const scheme of ["light", "dark"]) {
    const page = await (await browser.newContext({ colorScheme: scheme, bypassCSP: true })).newPage();
    if (scheme === "light") {
      await page.goto(link);
      await check(page, "link-confirm", scheme);
      await Promise.all([page.waitForNavigation(), page.click("main form button[type=submit]")]);
      await check(page, "link-done", scheme);
      const undo = await page.getAttribute("form[action^='/moderate/'] button.undo >> xpath=..", "action").catch(() => null)
        || await page.evaluate(() => document.querySelector("button.undo").closest("form").getAttribute("action"));
      await page.goto(base + undo);
      await check(page, "link-undo-confirm", scheme);
      await Promise.all([page.waitForNavigation(), page.click("main form button[type=submit]")]);
      await check(page, "link-undone", scheme);
    }
  }
} else {
  console.log("FAIL no moderation email found in " + mailDir);
  failures++;
}
await browser.close();
console.log(failures === 0 ? "axe: 0 violations" : `axe: ${failures} violation(s)`);
process.exit(failures === 0 ? 0 : 1);
