// Drives a solvequeue gateway through @2captcha/captcha-solver, 2captcha's own client from npm,
// used as a scraper uses it: the gateway key is its API key, and nothing else of it changes.
// It prints one JSON object with what the client saw; the Go test
// (cmd/solvequeue/gateway_2captcha_test.go) judges it against the queue and the fake AnySolver.
//
//   GATEWAY_URL=http://127.0.0.1:8090 GATEWAY_KEY=gk-... node e2e-2captcha.js
//
// The library has its host built in (https://2captcha.com/in.php and /res.php) and no option to
// change it. So, before it is loaded, the node-fetch module it calls is replaced in Node's module
// cache by a wrapper that sends every request for https://2captcha.com/ to GATEWAY_URL instead,
// same path, query, method, headers and body. That is the request interceptor a scraper would use;
// the library itself runs unchanged.
'use strict';

const GATEWAY_URL = process.env.GATEWAY_URL;
const GATEWAY_KEY = process.env.GATEWAY_KEY;
if (!GATEWAY_URL || !GATEWAY_KEY) {
  process.stderr.write('set GATEWAY_URL and GATEWAY_KEY\n');
  process.exit(2);
}

const TWOCAPTCHA = 'https://2captcha.com/';
const requests = []; // "GET /in.php" etc., what the library sent

function pointAtGateway() {
  const solverMain = require.resolve('@2captcha/captcha-solver');
  const fetchPath = require.resolve('node-fetch', { paths: [solverMain] });
  const realFetch = require(fetchPath);
  const redirected = function fetch(url, options) {
    let target = String(url);
    if (target.startsWith(TWOCAPTCHA)) {
      target = GATEWAY_URL.replace(/\/$/, '') + '/' + target.slice(TWOCAPTCHA.length);
    } else {
      return Promise.reject(new Error(`e2e-2captcha.js: the library asked for ${target}, not 2captcha.com`));
    }
    requests.push(`${(options && options.method) || 'GET'} ${new URL(target).pathname}`.toUpperCase());
    return realFetch(target, options);
  };
  Object.assign(redirected, realFetch);
  redirected.default = redirected;
  Object.defineProperty(redirected, '__esModule', { value: true });
  require.cache[fetchPath].exports = redirected;
}

pointAtGateway();
const { Solver } = require('@2captcha/captcha-solver');

// A 1x1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

async function attempt(fn) {
  try {
    return { value: await fn() };
  } catch (err) {
    return { thrown: `${err.constructor.name}: ${err.err || err.message}`, code: err.code };
  }
}

async function main() {
  const solver = new Solver(GATEWAY_KEY, 200); // poll res.php every 200 ms
  const recaptcha = (googlekey) => attempt(() => solver.recaptcha({ pageurl: 'https://shop.example/login', googlekey }));

  const [solved, permanent, transient, image] = await Promise.all([
    recaptcha('e2e2c-plain-site-key'),
    recaptcha('sq:id=e2e2c-permanent;create=DOMAIN_BANNED*9'),
    recaptcha('sq:id=e2e2c-transient;create=SERVICE_UNAVAILABLE*2'),
    attempt(() => solver.imageCaptcha({ body: PNG })),
  ]);
  const report = solved.value ? await attempt(() => solver.goodReport(solved.value.id)) : { thrown: 'nothing solved' };
  const balance = await attempt(() => solver.balance());
  const wrongKey = await attempt(() => new Solver('gk-not-a-key-of-this-gateway', 200).balance());

  process.stdout.write(JSON.stringify({ solved, permanent, transient, image, report, balance, wrongKey, requests }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`e2e-2captcha.js: ${err.stack || err}\n`);
  process.exit(1);
});
