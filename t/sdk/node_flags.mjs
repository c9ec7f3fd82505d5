// Evaluates feature flags through the real posthog-node SDK (remote
// evaluation against edgehog's /flags) and prints what the SDK returned, as
// JSON on stdout, for the integration tests to compare with the engine.
//   node node_flags.mjs <host> <token> <distinct id> <person properties json> <key>...
import { PostHog } from 'posthog-node';

const [host, token, distinctId, props, ...keys] = process.argv.slice(2);

const client = new PostHog(token, {
    host,
    flushAt: 1,
    flushInterval: 0,
    fetchRetryCount: 0,
    // the default 3 s is a production latency budget; a slow answer on a
    // busy test machine would read as "no flags", not what is compared
    featureFlagsRequestTimeoutMs: 30000,
    requestTimeout: 30000,
});

client.on('error', (err) => {
    console.error(`posthog-node error: ${err}`);
    process.exitCode = 1;
});

const personProperties = JSON.parse(props);
const flags = await client.evaluateFlags(distinctId, { personProperties });
const out = { evaluate: {}, legacy: {} };

for (const key of keys) {
    out.evaluate[key] = {
        enabled: flags.isEnabled(key),
        value: flags.getFlag(key) ?? null,
        payload: flags.getFlagPayload(key) ?? null,
    };
    // the deprecated one-flag calls are still what most apps use
    out.legacy[key] = {
        value: await client.getFeatureFlag(key, distinctId,
                                           { personProperties }) ?? null,
        payload: await client.getFeatureFlagPayload(key, distinctId,
                                                    undefined,
                                                    { personProperties })
                 ?? null,
    };
}

out.all = await client.getAllFlags(distinctId, { personProperties });

await client.shutdown();
console.log(JSON.stringify(out));
