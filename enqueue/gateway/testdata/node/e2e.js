// Drives a solvequeue gateway through @zennolab_com/capmonstercloud-client, a captcha client
// from npm used exactly as a scraper uses it: only serviceUrl and clientKey point at the gateway.
// It prints one JSON object with what the client saw; the Go test (cmd/solvequeue/gateway_test.go)
// judges it against the queue and the fake AnySolver.
//
//   GATEWAY_URL=http://127.0.0.1:8090 GATEWAY_KEY=gk-... node e2e.js
'use strict';

const {
  CapMonsterCloudClientFactory,
  ClientOptions,
  RecaptchaV2Request,
  ImageToTextRequest,
} = require('@zennolab_com/capmonstercloud-client');

// A 1x1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function attempt(fn) {
  try {
    return await fn();
  } catch (err) {
    return { thrown: `${err.constructor.name}: ${err.message}`, errorType: err.errorType };
  }
}

async function main() {
  const serviceUrl = process.env.GATEWAY_URL;
  const clientKey = process.env.GATEWAY_KEY;
  if (!serviceUrl || !clientKey) {
    throw new Error('set GATEWAY_URL and GATEWAY_KEY');
  }
  const client = CapMonsterCloudClientFactory.Create(new ClientOptions({ clientKey, serviceUrl }));
  const recaptcha = (websiteKey) =>
    attempt(() => client.Solve(new RecaptchaV2Request({ websiteURL: 'https://shop.example/login', websiteKey })));

  const [solved, permanent, transient, image] = await Promise.all([
    recaptcha('e2e-plain-site-key'),
    recaptcha('sq:id=e2e-permanent;create=DOMAIN_BANNED*9'),
    recaptcha('sq:id=e2e-transient;create=SERVICE_UNAVAILABLE*2'),
    attempt(() => client.Solve(new ImageToTextRequest({ body: PNG }))),
  ]);
  const balance = await attempt(() => client.getBalance());

  const stranger = CapMonsterCloudClientFactory.Create(
    new ClientOptions({ clientKey: 'gk-not-a-key-of-this-gateway', serviceUrl }),
  );
  const wrongKey = await attempt(() => stranger.getBalance());

  process.stdout.write(JSON.stringify({ solved, permanent, transient, image, balance, wrongKey }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`e2e.js: ${err.stack || err}\n`);
  process.exit(1);
});
