// kafkajs against an eddy broker: keys + headers over 3 partitions (idempotent, plain and
// gzip batches), then a group consumer.
// Usage: node roundtrip.js BOOTSTRAP TOPIC N. Prints `ok ...` and exits 0, or exits 1.
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [addr, topic, nArg] = process.argv.slice(2);
const n = Number(nArg);
const BASE_TS = 1700000000000;

async function main() {
  const kafka = new Kafka({ clientId: 'eddy-test', brokers: [addr], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let start = 0; start < n; start += 500) {
    const messages = [];
    for (let i = start; i < Math.min(n, start + 500); i++) {
      messages.push({ key: `k${i}`, value: `v${i}-js`, headers: { idx: String(i), tag: 'js' },
                      timestamp: String(BASE_TS + i) });
    }
    // Every other batch gzip-compressed (the codec kafkajs ships with).
    const compression = (start / 500) % 2 ? CompressionTypes.GZIP : CompressionTypes.None;
    await producer.send({ topic, acks: -1, compression, messages });
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `g-${topic}`, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  let failure = null;
  const done = new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const i = Number(message.key.toString().slice(1));
        const ok = message.value.toString() === `v${i}-js`
          && message.headers.idx.toString() === String(i)
          && message.headers.tag.toString() === 'js'
          && Number(message.timestamp) === BASE_TS + i;
        if (!ok) failure = `bad message ${i}`;
        if (seen.has(i)) failure = `duplicate ${i}`;
        seen.set(i, partition);
        if (seen.size === n || failure) resolve();
      },
    });
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, 60000));
  await Promise.race([done, timeout]);
  await consumer.disconnect();
  const partitions = new Set(seen.values());
  if (failure) throw new Error(failure);
  if (seen.size !== n) throw new Error(`consumed ${seen.size} of ${n}`);
  if (partitions.size !== 3) throw new Error(`partitions used: ${[...partitions]}`);
  console.log(`ok ${n} kafkajs`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
