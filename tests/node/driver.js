// Drives the official Cronofy Node SDK (unmodified) for Calgate's tests.
//
// stdin: {"base": "<Calgate base URL>", "config": {client_id, client_secret, access_token,
//          refresh_token, ...}, "calls": [{"method": "listCalendars", "args": {...}}, ...]}
// stdout: {"config": <the SDK's config after the calls>,
//          "results": [{"ok": true, "value": ...} | {"ok": false, "status": n, "body": ...}]}
//
// The SDK is re-pointed the way its README tells apps to: `client.urls.api = base` after
// construction. Calls run in order; a failed call does not stop the ones after it.
'use strict';

const Cronofy = require('cronofy');

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const client = new Cronofy(request.config);
  client.urls.api = request.base;
  const results = [];
  for (const call of request.calls) {
    const method = client[call.method];
    if (typeof method !== 'function') {
      results.push({ ok: false, status: null, body: 'no such SDK method: ' + call.method });
      continue;
    }
    try {
      const value = await method.call(client, call.args || {});
      results.push({ ok: true, value: value === undefined ? null : value });
    } catch (err) {
      const entity = err.error ? err.error.entity : String(err && err.message);
      results.push({ ok: false, status: err.statusCode || null, body: entity === undefined ? null : entity });
    }
  }
  process.stdout.write(JSON.stringify({ config: client.config, results }));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(2);
});
