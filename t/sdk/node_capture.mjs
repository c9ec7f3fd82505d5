// Sends events through the real posthog-node SDK: the integration tests
// run it as a client of edgehog's capture module.
//   node node_capture.mjs <host> <token> <distinct-id prefix> <count> gzip|plain
import { PostHog } from 'posthog-node';

const [host, token, prefix, count, mode] = process.argv.slice(2);

const client = new PostHog(token, {
    host,
    flushAt: 20,
    flushInterval: 0,
    disableCompression: mode !== 'gzip',
    fetchRetryCount: 0,
});

client.on('error', (err) => {
    console.error(`posthog-node error: ${err}`);
    process.exitCode = 1;
});

for (let i = 0; i < Number(count); i++) {
    client.capture({
        distinctId: `${prefix}-${i}`,
        event: 'node sdk event',
        properties: { i, mode, nested: { list: [1, 'two', null] } },
    });
}

await client.shutdown();
