// A Go client of Pynomaly, written as a user of another language would: stubs generated from proto/ with the stock
// protoc-gen-go and protoc-gen-go-grpc (no per-file flags: the files declare go_package), no Pynomaly code.
//
// Usage: client ADDRESS INPUT.json
//
//	INPUT.json: {"name": "...", "train": [[...], ...], "score": [[...], ...]}
//
// Trains an IForest on `train`, waits for the job over WatchTrainingJob, scores `score` with Detect and explains it
// with Explain, then sends rows of the wrong width and reads the rich error model's details (ErrorInfo, BadRequest)
// from the status. Prints one JSON object with every result.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	pynomalyv1 "github.com/pynomaly/pynomaly/gen/go/pynomaly/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

type input struct {
	Name  string      `json:"name"`
	Train [][]float32 `json:"train"`
	Score [][]float32 `json:"score"`
}

func matrix(rows [][]float32) *pynomalyv1.Matrix {
	m := &pynomalyv1.Matrix{Rows: int64(len(rows)), Columns: int64(len(rows[0]))}
	for _, row := range rows {
		m.Values = append(m.Values, row...)
	}
	return m
}

// rpcError is what the client reads from a failed call's google.rpc.Status.
type rpcError struct {
	Code       string            `json:"code"`
	Message    string            `json:"message"`
	Reason     string            `json:"reason"`
	Domain     string            `json:"domain"`
	Metadata   map[string]string `json:"metadata"`
	Violations [][2]string       `json:"violations"`
}

func readError(err error) rpcError {
	s := status.Convert(err)
	out := rpcError{Code: s.Code().String(), Message: s.Message()}
	for _, detail := range s.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			out.Reason, out.Domain, out.Metadata = d.Reason, d.Domain, d.Metadata
		case *errdetails.BadRequest:
			for _, v := range d.FieldViolations {
				out.Violations = append(out.Violations, [2]string{v.Field, v.Description})
			}
		}
	}
	return out
}

func run(address, inputPath string) (map[string]any, error) {
	raw, err := os.ReadFile(inputPath)
	if err != nil {
		return nil, err
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, address, grpc.WithInsecure())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	train := pynomalyv1.NewTrainServiceClient(conn)
	detect := pynomalyv1.NewDetectServiceClient(conn)
	explain := pynomalyv1.NewExplainServiceClient(conn)

	created, err := train.CreateTrainingJob(ctx, &pynomalyv1.CreateTrainingJobRequest{
		ModelName: in.Name,
		Algorithm: "iforest",
		Params: map[string]*structpb.Value{
			"n_estimators": structpb.NewNumberValue(50), "random_state": structpb.NewNumberValue(0),
		},
		Data: &pynomalyv1.CreateTrainingJobRequest_Matrix{Matrix: matrix(in.Train)},
	})
	if err != nil {
		return nil, fmt.Errorf("CreateTrainingJob: %w", err)
	}
	stream, err := train.WatchTrainingJob(ctx, &pynomalyv1.WatchTrainingJobRequest{Id: created.Job.Id})
	if err != nil {
		return nil, fmt.Errorf("WatchTrainingJob: %w", err)
	}
	var job *pynomalyv1.TrainingJob
	for {
		message, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("WatchTrainingJob: %w", err)
		}
		job = message.Job
	}
	if job == nil || job.State != pynomalyv1.TrainingJobState_TRAINING_JOB_STATE_SUCCEEDED {
		return nil, fmt.Errorf("training job %s did not succeed: %v", created.Job.Id, job)
	}
	params := map[string]float64{}
	for k, v := range job.Params {
		params[k] = v.GetNumberValue()
	}
	model := fmt.Sprintf("%s@%d", in.Name, job.ModelVersion)

	detected, err := detect.Detect(ctx, &pynomalyv1.DetectRequest{Model: model, Rows: matrix(in.Score)})
	if err != nil {
		return nil, fmt.Errorf("Detect: %w", err)
	}
	explained, err := explain.Explain(ctx, &pynomalyv1.ExplainRequest{
		Model: model, Rows: matrix(in.Score), Layout: pynomalyv1.ExplainLayout_EXPLAIN_LAYOUT_PACKED,
	})
	if err != nil {
		return nil, fmt.Errorf("Explain: %w", err)
	}

	// Rows one column short: the call must fail, and say why in a form a program can read.
	narrow := make([][]float32, len(in.Score))
	for i, row := range in.Score {
		narrow[i] = row[:len(row)-1]
	}
	_, wrongWidth := detect.Detect(ctx, &pynomalyv1.DetectRequest{Model: model, Rows: matrix(narrow)})
	if wrongWidth == nil {
		return nil, fmt.Errorf("Detect with rows one column short succeeded")
	}
	_, unknown := detect.Detect(ctx, &pynomalyv1.DetectRequest{Model: in.Name + "-missing", Rows: matrix(in.Score)})
	if unknown == nil {
		return nil, fmt.Errorf("Detect on a model that does not exist succeeded")
	}

	return map[string]any{
		"job": map[string]any{
			"id": job.Id, "state": job.State.String(), "params": params, "model_version": job.ModelVersion,
		},
		"detect": map[string]any{
			"model_name": detected.ModelName, "model_version": detected.ModelVersion,
			"threshold": detected.Threshold, "anomaly_scores": detected.AnomalyScores,
			"is_anomaly": detected.IsAnomaly,
		},
		"explain": map[string]any{
			"method": explained.Method.String(), "feature_names": explained.FeatureNames,
			"anomaly_scores": explained.AnomalyScores, "base_values": explained.BaseValues,
			"contributions": explained.Contributions,
		},
		"wrong_width":   readError(wrongWidth),
		"unknown_model": readError(unknown),
	}, nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: client ADDRESS INPUT.json")
		os.Exit(2)
	}
	result, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
