// A Node.js client of Pynomaly, written as a user of another language would: the .proto files from proto/ loaded at
// run time with @grpc/proto-loader, plain objects for messages, no Pynomaly code.
//
// Usage: node client.mjs ADDRESS INPUT.json
//   INPUT.json: {"name": "...", "train": [[...], ...], "score": [[...], ...]}
// Trains an IForest on `train`, waits for the job over WatchTrainingJob, then scores `score` with Detect, explains it
// with Explain, scores it again through the Open Inference Protocol's ModelInfer, and prints one JSON object with
// every result.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const PROTO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");
const OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

function load(files) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(files, { ...OPTIONS, includeDirs: [PROTO_ROOT] }));
}

function call(client, method, request, deadlineSeconds = 60) {
  const deadline = new Date(Date.now() + deadlineSeconds * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

function matrix(rows) {
  return { rows: rows.length, columns: rows[0].length, values: rows.flat() };
}

function watch(client, id) {
  return new Promise((resolve, reject) => {
    let last = null;
    const stream = client.WatchTrainingJob({ id });
    stream.on("data", (message) => { last = message.job; });
    stream.on("error", reject);
    stream.on("end", () => resolve(last));
  });
}

async function main() {
  const [address, inputPath] = process.argv.slice(2);
  const input = JSON.parse(readFileSync(inputPath, "utf8"));
  const v1 = load(["pynomaly/v1/train.proto", "pynomaly/v1/detect.proto", "pynomaly/v1/explain.proto"]).pynomaly.v1;
  const credentials = grpc.credentials.createInsecure();
  const train = new v1.TrainService(address, credentials);
  const detect = new v1.DetectService(address, credentials);
  const explain = new v1.ExplainService(address, credentials);

  // google.protobuf.Value comes from protobufjs's bundled well-known types, whose fields are camelCase whatever
  // keepCase says.
  const created = await call(train, "CreateTrainingJob", {
    model_name: input.name,
    algorithm: "iforest",
    params: { n_estimators: { numberValue: 50 }, random_state: { numberValue: 0 } },
    matrix: matrix(input.train),
  });
  const job = await watch(train, created.job.id);
  if (job.state !== "TRAINING_JOB_STATE_SUCCEEDED") {
    throw new Error(`training job ${job.id} ended ${job.state}: ${job.message}`);
  }
  const model = `${input.name}@${job.model_version}`;

  const detected = await call(detect, "Detect", { model, rows: matrix(input.score) });
  const explained = await call(explain, "Explain", {
    model, rows: matrix(input.score), layout: "EXPLAIN_LAYOUT_PACKED",
  });

  const result = {
    job: { id: job.id, state: job.state, params: job.params, model_version: job.model_version },
    detect: {
      model_name: detected.model_name, model_version: detected.model_version, threshold: detected.threshold,
      anomaly_scores: detected.anomaly_scores, is_anomaly: detected.is_anomaly,
    },
    explain: {
      method: explained.method, feature_names: explained.feature_names, anomaly_scores: explained.anomaly_scores,
      base_values: explained.base_values, contributions: explained.contributions,
    },
  };

  // The Open Inference Protocol v2 (inference.GRPCInferenceService), loaded from the same proto/ tree.
  const oip = load(["pynomaly/oip/v2/grpc_service.proto"]).inference;
  const inference = new oip.GRPCInferenceService(address, credentials);
  const rows = input.score;
  const infer = await call(inference, "ModelInfer", {
    model_name: input.name,
    model_version: String(job.model_version),
    inputs: [{
      name: "rows", datatype: "FP32", shape: [rows.length, rows[0].length],
      contents: { fp32_contents: rows.flat() },
    }],
  });
  result.oip = {
    model_name: infer.model_name, model_version: infer.model_version,
    outputs: Object.fromEntries(infer.outputs.map((o) => [o.name, {
      datatype: o.datatype, shape: o.shape,
      data: o.datatype === "BOOL" ? o.contents.bool_contents : o.contents.fp32_contents,
    }])),
  };
  process.stdout.write(JSON.stringify(result));
  for (const c of [train, detect, explain, inference]) c.close();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
