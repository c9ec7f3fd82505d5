// Drives posthog-js (the published array.full.js) in headless Chromium
// against edgehog: prints one JSON line with the edgehog responses seen,
// the flag value and the page errors.  Usage:
//   node posthog_page.js <playwright-core dir> <page url> <api host>
//        <token> <flag key> <distinct id>
'use strict';

const [pwDir, pageUrl, apiHost, token, flagKey, distinctId] =
    process.argv.slice(2);
const { chromium } = require(pwDir);

(async () => {
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const out = { responses: [], errors: [], flag: null, requestFailed: [] };
    // edgehog requests under way, and capture requests sent so far
    let pending = 0, captures = 0;
    const isCapture = (url) => /\/(e|i\/v0\/e|batch)\/?(\?|$)/.test(
        new URL(url).pathname + '?');
    try {
        const page = await browser.newPage();
        page.on('pageerror', (e) => out.errors.push(String(e)));
        page.on('request', (r) => {
            if (r.url().startsWith(apiHost)) {
                pending++;
                if (isCapture(r.url())) {
                    captures++;
                }
            }
        });
        page.on('requestfinished', (r) => {
            if (r.url().startsWith(apiHost)) {
                pending--;
            }
        });
        page.on('requestfailed', (r) => {
            if (r.url().startsWith(apiHost)) {
                pending--;
                out.requestFailed.push(r.url() + ' ' +
                                       (r.failure() || {}).errorText);
            }
        });
        page.on('response', (r) => {
            if (r.url().startsWith(apiHost)) {
                out.responses.push({ url: r.url(), status: r.status(),
                                     method: r.request().method() });
            }
        });
        await page.goto(pageUrl);
        await page.evaluate(([token, apiHost, distinctId]) => {
            window.posthog.init(token, {
                api_host: apiHost,
                opt_out_useragent_filter: true,
                request_batching: false,
                disable_session_recording: true,
                bootstrap: { distinctID: distinctId },
            });
        }, [token, apiHost, distinctId]);
        out.flag = await page.evaluate((flagKey) => new Promise((resolve) => {
            // generous: Chromium on a busy 2-core machine is slow
            const t = setTimeout(() => resolve('timeout'), 60000);
            window.posthog.onFeatureFlags(() => {
                clearTimeout(t);
                resolve(window.posthog.getFeatureFlag(flagKey));
            });
        }), flagKey);
        const before = captures;
        await page.evaluate(() => window.posthog.capture('browser test',
                                                          { via: 'edgehog' }));
        // until the event's request is sent and every edgehog request has
        // its answer (capture answers once Kafka has the event)
        const deadline = Date.now() + 60000;
        while (captures === before || pending > 0) {
            if (Date.now() > deadline) {
                throw new Error(`capture request not done after 60 s ` +
                                `(${captures - before} sent, ` +
                                `${pending} pending)`);
            }
            await page.waitForTimeout(50);  // poll interval of this wait
        }
    } catch (e) {
        out.errors.push('driver: ' + String(e));
    } finally {
        await browser.close();
    }
    process.stdout.write(JSON.stringify(out) + '\n');
})();
