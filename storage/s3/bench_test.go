package s3

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	md5simd "github.com/minio/md5-simd"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

// BenchmarkPutObject64MiB PUTs 64 MiB objects through minio-go, as
// rackbench storage's SDK cases do (four 16 MiB parts at once, each an
// aws-chunked body of 64 KiB signed chunks), into one node's six disk
// directories with 1 MiB shards: S3, SigV4, MD5, coding and durable
// writes in one process. cpu-ms/MiB is the process's CPU, the client's
// included (the same in every build, so a change in it is the
// server's). The Raft state is in memory here, so the commits cost no
// fsync.
func BenchmarkPutObject64MiB(b *testing.B) {
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) { benchPutObject(b, 64<<20, conc) })
	}
}

func benchPutObject(b *testing.B, size, conc int) {
	md5s := md5simd.NewServer()
	b.Cleanup(md5s.Close)
	svc, _ := objecttest.NewWithBlobs(b, 6, 1<<20, &blob.Store{MD5: md5s})
	srv := httptest.NewServer(&Handler{Store: svc, Creds: creds})
	b.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	client, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(alice, "alice-secret", ""), Region: "us-east-1"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := client.MakeBucket(ctx, "bench", minio.MakeBucketOptions{}); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	b.SetBytes(int64(size * conc))
	b.ResetTimer()
	start := benchCPU()
	for i := 0; i < b.N; i++ {
		errs := make(chan error, conc)
		for c := 0; c < conc; c++ {
			go func() {
				_, err := client.PutObject(ctx, "bench", fmt.Sprintf("o%d", c), bytes.NewReader(data), int64(size), minio.PutObjectOptions{})
				errs <- err
			}()
		}
		for c := 0; c < conc; c++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64((benchCPU()-start).Microseconds())/1000/(float64(b.N)*float64(size*conc)/(1<<20)), "cpu-ms/MiB")
}

func benchCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
