package main

import "testing"

func TestParseFio(t *testing.T) {
	out := []byte("fio: file hash not empty on exit\n" +
		`{"fio version": "fio-3.33", "jobs": [{"jobname": "bench", "read": {"bw": 2048, "iops": 512.5}, "write": {"bw": 4096, "iops": 3.25}}]}`)
	cases := map[string]struct {
		job  fioJob
		want float64
	}{
		"seq read MiB/s":   {fioJob{rw: "read", bs: "1M"}, 2},
		"seq write MiB/s":  {fioJob{rw: "write", bs: "1M"}, 4},
		"random read IOPS": {fioJob{rw: "randread", bs: "4k"}, 512.5},
		"random write":     {fioJob{rw: "randwrite", bs: "4k"}, 3.25},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := parseFio(out, c.job); err != nil || got != c.want {
				t.Fatalf("parseFio = %v, %v, want %v", got, err, c.want)
			}
		})
	}
	if _, err := parseFio([]byte("fio: nbd_connect_uri failed\n"), fioJob{rw: "read", bs: "1M"}); err == nil {
		t.Fatal("output without a JSON document parsed")
	}
}
