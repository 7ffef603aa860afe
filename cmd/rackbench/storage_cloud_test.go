package main

import (
	"errors"
	"testing"
)

func TestStoragePlanBoundsEveryCase(t *testing.T) {
	sizes := []objectSize{{"4KiB", 4 << 10}, {"64MiB", 64 << 20}}
	p := planStorageCases(sizes, []int{1, 32}, 4, 2)
	tests := map[string]struct{ size, conc, want int }{
		"small objects stop at the count": {4 << 10, 1, maxCaseObjects},
		"large objects stop at the bytes": {64 << 20, 1, maxCaseBytes / (64 << 20)},
		"every worker writes one":         {64 << 20, 32, 32},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := p.limit[tc.size][tc.conc]; got != tc.want {
				t.Fatalf("limit = %d, want %d", got, tc.want)
			}
		})
	}
	// 32 workers × 64 MiB with 4+2 coding is 3 GiB at once.
	if want := uint64(32*64<<20) * 6 / 4; p.need != want {
		t.Fatalf("need = %d, want %d", p.need, want)
	}
	if err := p.fits(4 << 30); !errors.Is(err, errNoCapacity) {
		t.Fatalf("4 GiB free for a 3 GiB case: %v, want a refusal", err)
	}
	if err := p.fits(8 << 30); err != nil {
		t.Fatalf("8 GiB free: %v", err)
	}
}

func TestParseInts(t *testing.T) {
	if got, err := parseInts("--concurrency", "1, 8,32"); err != nil || len(got) != 3 || got[2] != 32 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,x", "-3"} {
		if _, err := parseInts("--concurrency", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStorageBounds(t *testing.T) {
	if err := checkStorageBounds([]objectSize{{"1MiB", 1 << 20}}, []int{1, 32}); err != nil {
		t.Fatal(err)
	}
	if err := checkStorageBounds([]objectSize{{"2GiB", 2 << 30}}, []int{1}); err == nil {
		t.Error("a 2 GiB object was accepted")
	}
	if err := checkStorageBounds([]objectSize{{"1MiB", 1 << 20}}, []int{maxConcurrency + 1}); err == nil {
		t.Error("too many clients were accepted")
	}
}
