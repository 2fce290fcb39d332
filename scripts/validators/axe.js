#!/usr/bin/env node
// Runs axe-core over pages in Debian's Chromium (through playwright-core) and prints one JSON
// array: [{ "name", "violations": [{ "id", "impact", "help", "targets": [...] }] }].
//
// Usage: node axe.js JOBS.json
// JOBS.json is an array of jobs, each either
//   { "name": "home", "url": "http://127.0.0.1:8080/", "cookies": [{ "name": "...", "value": "..." }] }
// or, for a page that only a POST answers with (a 422, a 429),
//   { "name": "422", "base": "http://127.0.0.1:8080/posts/x", "file": "/tmp/422.html" }
// which navigates to `base` first (so the stylesheet loads from the site) and then renders the
// saved HTML in place. Optional per job: "width" (default 1280).
//
// Environment: LECTERN_CHROMIUM (default /usr/bin/chromium).
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

async function check(browser, job) {
  // bypassCSP: the site's CSP forbids injected scripts, which is what axe is.
  const context = await browser.newContext({
    bypassCSP: true,
    viewport: { width: job.width || 1280, height: 900 },
  });
  try {
    if (job.cookies && job.cookies.length) {
      const url = job.url || job.base;
      await context.addCookies(job.cookies.map((c) => ({ name: c.name, value: c.value, url })));
    }
    const page = await context.newPage();
    if (job.file) {
      await page.goto(job.base, { waitUntil: 'load' });
      await page.setContent(fs.readFileSync(job.file, 'utf8'), { waitUntil: 'load' });
    } else {
      const response = await page.goto(job.url, { waitUntil: 'load' });
      if (!response) throw new Error(`${job.url}: no response`);
    }
    await page.addScriptTag({ content: AXE });
    const result = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ['violations'] })
    );
    return {
      name: job.name,
      violations: result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => n.target.join(' ')),
      })),
    };
  } finally {
    await context.close();
  }
}

async function main() {
  const jobsFile = process.argv[2];
  if (!jobsFile) {
    console.error('usage: node axe.js JOBS.json');
    process.exit(2);
  }
  const jobs = JSON.parse(fs.readFileSync(path.resolve(jobsFile), 'utf8'));
  const browser = await chromium.launch({
    executablePath: process.env.LECTERN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const results = [];
  try {
    for (const job of jobs) {
      results.push(await check(browser, job));
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
