// A Node.js client of Pynomaly, written as a user of another language would: the .proto files from proto/ loaded at
// run time with @grpc/proto-loader, plain objects for messages, no Pynomaly code.
//
// Usage: node client.mjs ADDRESS INPUT.json
//   INPUT.json: {"name": "...", "train": [[...], ...], "score": [[...], ...]}
// Trains an IForest on `train`, waits for the job over WatchTrainingJob, then scores `score` with Detect, explains it
// with Explain, scores it again through the Open Inference Protocol's ModelInfer, reads the rich error model's details
// (ErrorInfo reason, BadRequest field) from calls that must fail, and prints one JSON object with every result.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { getProtoPath } from "google-proto-files";
import protobuf from "protobufjs";

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

// The gRPC rich error model: a failed call's trailer grpc-status-details-bin is a google.rpc.Status whose details
// are Any-packed google.rpc messages (googleapis' protos from the google-proto-files package).
const RPC = protobuf.loadSync([getProtoPath("rpc", "status.proto"), getProtoPath("rpc", "error_details.proto")]);
const STATUS = RPC.lookupType("google.rpc.Status");

function readError(error) {
  const out = { code: grpc.status[error.code], message: error.details, reason: null, domain: null, violations: [] };
  const [raw] = error.metadata.get("grpc-status-details-bin");
  for (const any of raw ? STATUS.decode(raw).details : []) {
    // protobufjs bundles google.protobuf.Any with its .proto field names (type_url), whatever keepCase says.
    const name = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    const detail = RPC.lookupType(name).decode(any.value);
    if (name === "google.rpc.ErrorInfo") Object.assign(out, { reason: detail.reason, domain: detail.domain });
    if (name === "google.rpc.BadRequest") out.violations = detail.fieldViolations.map((v) => v.field);
  }
  return out;
}

async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return readError(error);
  }
  throw new Error("the call succeeded where it must fail");
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

  // Rows one column short, and a model that does not exist: read why from the status details.
  const narrow = input.score.map((row) => row.slice(0, -1));
  const wrongWidth = await failure(call(detect, "Detect", { model, rows: matrix(narrow) }));
  const unknownModel = await failure(call(detect, "Detect", { model: `${input.name}-missing`, rows: matrix(input.score) }));

  const result = {
    wrong_width: wrongWidth,
    unknown_model: unknownModel,
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
