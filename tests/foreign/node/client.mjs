// A Candleflow client in Node.js written only from the README ("From any language"): kafkajs and the
// Confluent Schema Registry client pointed at a worker's URL; nothing of Candleflow's code.
//
//   node client.mjs --broker HOST:PORT --registry URL --prefix PREFIX --candles FILE.jsonl
//                   --expect-predictions N --expect-dead-letters M --signal-threshold T [--timeout-s S]
//
// Publishes the candles of FILE.jsonl (one Avro Candle record as JSON per line) to <prefix>.candles.<tf>,
// encoded with the latest schema of "<topic>-value"; then consumes predictions, signals and dead-letters
// from the beginning, decoding every message by the schema id in its frame, until N predictions, the
// signals they imply (ready and confidence >= T) and M dead letters are in. Prints one JSON line per
// decoded record ({"topic", "record"}) and a last line {"done": true, counts}; exits 1 on a timeout or
// on a message it cannot decode.
import { readFileSync } from "node:fs";
import { Kafka, Partitioners, logLevel } from "kafkajs";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) =>
  arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs, []));
const prefix = args.prefix;
const expectPredictions = Number(args["expect-predictions"]);
const expectDead = Number(args["expect-dead-letters"] ?? 0);
const threshold = Number(args["signal-threshold"]);
const timeoutMs = 1000 * Number(args["timeout-s"] ?? 90);

const registry = new SchemaRegistry({ host: args.registry });
const kafka = new Kafka({ clientId: "candleflow-node-client", brokers: [args.broker], logLevel: logLevel.WARN });

// --- publish -------------------------------------------------------------------------------------
const candles = readFileSync(args.candles, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line));
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner }); // murmur2, as Java
await producer.connect();
const byTopic = new Map();
for (const candle of candles) {
  const topic = `${prefix}candles.${candle.timeframe}`;
  if (!byTopic.has(topic)) byTopic.set(topic, { id: await registry.getLatestSchemaId(`${topic}-value`), messages: [] });
  const entry = byTopic.get(topic);
  entry.messages.push({ key: candle.symbol, value: await registry.encode(entry.id, candle) });
}
for (const [topic, { messages }] of byTopic) await producer.send({ topic, messages });
await producer.disconnect();

// --- consume -------------------------------------------------------------------------------------
const names = { [`${prefix}predictions`]: "predictions", [`${prefix}signals`]: "signals",
                [`${prefix}dead-letters`]: "dead-letters" };
const counts = { predictions: 0, signals: 0, "dead-letters": 0 };
let implied = 0;
const consumer = kafka.consumer({ groupId: `node-client-${process.pid}-${Date.now()}`, sessionTimeout: 6000,
                                  heartbeatInterval: 1500 });
await consumer.connect();
await consumer.subscribe({ topics: Object.keys(names), fromBeginning: true });

const finished = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(counts)}, ${implied} signals implied`)),
                           timeoutMs);
  consumer.run({
    eachMessage: async ({ topic, message }) => {
      let record;
      try {
        record = await registry.decode(message.value); // the id in the frame picks the writer schema
      } catch (err) {
        clearTimeout(timer);
        reject(new Error(`cannot decode a message of ${topic}: ${err.message}`));
        return;
      }
      const name = names[topic];
      for (const item of record.predictions ?? [record]) { // a PredictionBatch carries many predictions
        counts[name] += 1;
        if (name === "predictions" && item.ready && item.confidence >= threshold) implied += 1;
        console.log(JSON.stringify({ topic: name, record: item }));
      }
      if (counts.predictions >= expectPredictions && counts.signals >= implied && counts["dead-letters"] >= expectDead) {
        clearTimeout(timer);
        resolve();
      }
    },
  }).catch(reject);
});

let failed = null;
try {
  await finished;
} catch (err) {
  failed = err;
}
await consumer.disconnect();
console.log(JSON.stringify({ done: failed === null, counts, implied, error: failed?.message ?? null }));
process.exit(failed === null ? 0 : 1);
