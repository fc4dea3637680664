package main

import (
	"context"
	"testing"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testserver"
)

// The JSON-RPC dispatch of the server, black-box: requests/s through the WebSocket, the JSON-RPC
// layer, the session and the registry, measured with the project's client.
//
//	go test -run '^$' -bench Dispatch ./cmd/kms-bench

func benchDispatch(b *testing.B, conns, reqsPerOp int, call func(ctx context.Context, c *client.Client, obj string) error) {
	srv := testserver.Start(b)
	ctx := context.Background()
	cs := make([]*client.Client, conns)
	objs := make([]string, conns)
	for i := range cs {
		c, err := client.Dial(ctx, srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if objs[i], err = c.Create(ctx, "MediaPipeline", nil); err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	next := make(chan int, conns)
	for i := range conns {
		next <- i
	}
	b.SetParallelism(max(1, conns/2)) // GOMAXPROCS*conns/2 goroutines: each connection has requests in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var i int
		select {
		case i = <-next:
			next <- i
		default:
		}
		for pb.Next() {
			if err := call(ctx, cs[i], objs[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*reqsPerOp)/b.Elapsed().Seconds(), "req/s")
}

func getName(ctx context.Context, c *client.Client, obj string) error {
	var s string
	return c.Invoke(ctx, obj, "getName", nil, &s)
}

// BenchmarkDispatchInvoke: invoke getName, one request at a time on one connection (the round trip).
func BenchmarkDispatchInvoke(b *testing.B) {
	srv := testserver.Start(b)
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pipe, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := getName(ctx, c, pipe); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkDispatchInvokeParallel: invoke getName with requests in flight on 4 connections.
func BenchmarkDispatchInvokeParallel(b *testing.B) { benchDispatch(b, 4, 1, getName) }

// BenchmarkDispatchCreateRelease: create and release a PassThrough in a pipeline (two requests).
func BenchmarkDispatchCreateRelease(b *testing.B) {
	benchDispatch(b, 4, 2, func(ctx context.Context, c *client.Client, pipe string) error {
		id, err := c.Create(ctx, "PassThrough", map[string]any{"mediaPipeline": pipe})
		if err != nil {
			return err
		}
		return c.Release(ctx, id)
	})
}
